package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup handles a JoinGroup request from cl. The reply is called once:
// at once for errors, for MEMBER_ID_REQUIRED and for members that rejoin a
// formed generation unchanged; otherwise when the join barrier falls (every
// member rejoined, or the rebalance timeout passed), possibly during a
// later call.
func (c *Coordinator) JoinGroup(nowNs int64, cl Client, req *kmsg.JoinGroupRequest, reply func(*kmsg.JoinGroupResponse)) {
	c.begin(nowNs)
	defer c.end()
	fail := func(memberID string, err *kerr.Error) {
		reply(joinError(req.Version, memberID, err))
	}
	if err := c.groupStatus(req.Group); err != nil {
		fail(req.MemberID, err)
		return
	}
	if req.SessionTimeoutMillis < c.cfg.MinSessionTimeoutMs || req.SessionTimeoutMillis > c.cfg.MaxSessionTimeoutMs {
		fail(req.MemberID, kerr.InvalidSessionTimeout)
		return
	}
	if req.InstanceID != nil && req.Version < 5 {
		// kmsg does not decode the field below v5; this is for callers
		// that build requests by hand.
		fail(req.MemberID, kerr.UnsupportedVersion)
		return
	}
	j := joinArgs{
		client:     cl,
		req:        req,
		protos:     dedupProtocols(req.Protocols),
		session:    req.SessionTimeoutMillis,
		rebalance:  req.RebalanceTimeoutMillis,
		reply:      reply,
		newMember:  req.MemberID == "",
		requireKey: req.Version >= 4,
	}
	if req.Version == 0 {
		j.rebalance = j.session // v0 has no rebalance timeout: Kafka uses the session timeout
	}
	// A group is created only for a member without an id: an id names a
	// group that existed, so a missing group means the member is gone.
	g := c.getOrCreate(req.Group, j.newMember)
	if g == nil {
		fail(req.MemberID, kerr.UnknownMemberID)
		return
	}
	if g.cg != nil {
		// A consumer group (KIP-848): classic members may not join
		// one with members; an empty one becomes classic.
		if !g.empty() {
			fail(req.MemberID, kerr.InconsistentGroupProtocol)
			return
		}
		c.toClassic(g)
	}
	switch {
	case !c.acceptJoiningMember(g, req.MemberID):
		if m := g.byID[req.MemberID]; m != nil {
			c.dropMember(g, m, kerr.UnknownMemberID)
		}
		c.log.Info("group is full", "group", g.id, "max_size", c.cfg.MaxSize)
		fail("", kerr.GroupMaxSizeReached)
	case j.newMember:
		c.joinNewMember(g, &j)
	default:
		c.joinCurrentMember(g, &j)
	}
	c.checkJoin(g)
}

type joinArgs struct {
	client     Client
	req        *kmsg.JoinGroupRequest
	protos     []kmsg.JoinGroupRequestProtocol
	session    int32
	rebalance  int32
	reply      func(*kmsg.JoinGroupResponse)
	newMember  bool
	requireKey bool
}

// acceptJoiningMember is Kafka's group.max.size check. While the barrier is
// up only members waiting in it count, since the others may never rejoin.
func (c *Coordinator) acceptJoiningMember(g *group, memberID string) bool {
	m := g.byID[memberID]
	switch g.state {
	case Empty, Dead:
		return true
	case PreparingRebalance:
		return (m != nil && m.join != nil) || g.numAwaitingJoin() < int(c.cfg.MaxSize)
	default:
		return m != nil || len(g.members) < int(c.cfg.MaxSize)
	}
}

func (c *Coordinator) joinNewMember(g *group, j *joinArgs) {
	if !g.supportsProtocols(j.req.ProtocolType, j.protos) {
		j.reply(joinError(j.req.Version, j.req.MemberID, kerr.InconsistentGroupProtocol))
		return
	}
	if j.req.InstanceID != nil {
		id := c.newMemberID(*j.req.InstanceID)
		if old, ok := g.static[*j.req.InstanceID]; ok {
			c.log.Info("static member rejoins with a new member id", "group", g.id,
				"instance_id", *j.req.InstanceID, "old_member_id", old, "member_id", id)
			c.replaceStaticMember(g, j, old, id)
			return
		}
		c.addMemberAndRebalance(g, j, id)
		return
	}
	id := c.newMemberID(j.client.ID)
	if j.requireKey {
		// KIP-394: hand out the id and wait for the member to come back
		// with it, so a client that never does leaves no member behind.
		g.pending = append(g.pending, pendingMember{id: id, deadlineNs: c.nowNs + int64(j.session)*msNs})
		resp := joinError(j.req.Version, id, kerr.MemberIDRequired)
		j.reply(resp)
		return
	}
	c.addMemberAndRebalance(g, j, id)
}

func (c *Coordinator) joinCurrentMember(g *group, j *joinArgs) {
	id := j.req.MemberID
	if !g.supportsProtocols(j.req.ProtocolType, j.protos) {
		j.reply(joinError(j.req.Version, id, kerr.InconsistentGroupProtocol))
		return
	}
	if g.isPending(id) {
		if j.req.InstanceID != nil {
			// Pending ids are only handed to dynamic members; Kafka
			// treats this as a broken client too.
			j.reply(joinError(j.req.Version, id, kerr.UnknownMemberID))
			return
		}
		c.addMemberAndRebalance(g, j, id)
		return
	}
	if err := g.validateMember(id, j.req.InstanceID); err != nil {
		j.reply(joinError(j.req.Version, id, err))
		return
	}
	m := g.byID[id]
	switch g.state {
	case PreparingRebalance:
		c.updateMemberAndRebalance(g, m, j, "member rejoined")
	case CompletingRebalance:
		if m.matches(j.protos) {
			// The member lost the JoinGroup response of this generation:
			// give it again.
			j.reply(c.joinResult(g, m, j.req.Version, g.leader == id))
			return
		}
		c.updateMemberAndRebalance(g, m, j, "member changed its protocols")
	case Stable:
		switch {
		case g.leader == id:
			// The leader rejoins to have the group reassigned (e.g. the
			// subscribed topics changed partitions).
			c.updateMemberAndRebalance(g, m, j, "leader rejoined")
		case !m.matches(j.protos):
			c.updateMemberAndRebalance(g, m, j, "member changed its protocols")
		default:
			j.reply(c.joinResult(g, m, j.req.Version, false))
		}
	default:
		j.reply(joinError(j.req.Version, id, kerr.UnknownMemberID))
	}
}

// addMemberAndRebalance adds a member waiting in JoinGroup and starts (or
// joins) a rebalance.
func (c *Coordinator) addMemberAndRebalance(g *group, j *joinArgs, id string) {
	m := &member{
		id:                 id,
		instanceID:         j.req.InstanceID,
		clientID:           j.client.ID,
		clientHost:         j.client.Host,
		sessionTimeoutMs:   j.session,
		rebalanceTimeoutMs: j.rebalance,
		protocolType:       j.req.ProtocolType,
		protocols:          j.protos,
		join:               j.reply,
		joinVersion:        j.req.Version,
		isNew:              true,
		deadlineNs:         c.nowNs + newMemberJoinTimeoutMs*msNs,
	}
	if g.state == PreparingRebalance && g.initialJoin {
		g.newMemberAdded = true
	}
	g.add(m)
	c.maybePrepareRebalance(g, "member joined: "+id)
}

// updateMemberAndRebalance takes a known member's new join and starts (or
// joins) a rebalance.
func (c *Coordinator) updateMemberAndRebalance(g *group, m *member, j *joinArgs, reason string) {
	c.updateMember(m, j.protos, j.rebalance, j.session, j.reply, j.req.Version)
	c.maybePrepareRebalance(g, reason+": "+m.id)
}

// updateMember sets a member's protocols, timeouts and held JoinGroup.
// Kafka forgets a JoinGroup that a newer one from the same member
// replaces; Weir answers it REBALANCE_IN_PROGRESS (the client rejoins),
// since an unanswered request would stall its connection.
func (c *Coordinator) updateMember(m *member, protos []kmsg.JoinGroupRequestProtocol, rebalance, session int32, reply func(*kmsg.JoinGroupResponse), version int16) {
	m.protocols = protos
	m.rebalanceTimeoutMs = rebalance
	m.sessionTimeoutMs = session
	if m.join != nil {
		old := m.join
		m.join = nil
		old(joinError(m.joinVersion, m.id, kerr.RebalanceInProgress))
	}
	m.join, m.joinVersion = reply, version
}

// replaceStaticMember gives a static member's place, assignment included,
// to the new member id it joined with (KIP-345). Whoever still holds the
// old id is fenced. A stable group whose protocol choice is unchanged does
// not rebalance.
func (c *Coordinator) replaceStaticMember(g *group, j *joinArgs, oldID, newID string) {
	m := g.byID[oldID]
	if m.join != nil {
		old := m.join
		m.join = nil
		old(joinError(m.joinVersion, oldID, kerr.FencedInstanceID))
	}
	if m.sync != nil {
		old := m.sync
		m.sync = nil
		old(syncError(kerr.FencedInstanceID))
	}
	currentLeader := g.leader
	delete(g.byID, oldID)
	m.id = newID
	g.byID[newID] = m
	g.static[*m.instanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	m.clientID, m.clientHost = j.client.ID, j.client.Host
	m.deadlineNs = c.nowNs + int64(m.sessionTimeoutMs)*msNs
	// Kafka keeps the old member's timeouts here.
	c.updateMember(m, j.protos, m.rebalanceTimeoutMs, m.sessionTimeoutMs, j.reply, j.req.Version)

	switch g.state {
	case Stable:
		if g.protocol != nil && *g.protocol == g.selectProtocol() {
			// The new member id is stored so that a new coordinator
			// knows it; the member is answered at once (Kafka waits for
			// the write, and reverts the replacement if it fails; here a
			// lost write only makes the member rejoin after a failover).
			c.persist(g.id, []Record{groupRecord(g, c.host.WallMs())})
			reply := m.join
			m.join = nil
			skip := m.joinVersion >= 9 // KIP-814: the leader need not reassign
			resp := c.joinResult(g, m, m.joinVersion, g.leader == newID && skip)
			if g.leader == newID {
				resp.SkipAssignment = skip
			} else {
				// The old leader id: a follower must not think itself
				// leader, since a stable group would not pass on the
				// assignment it computed.
				resp.LeaderID = currentLeader
			}
			reply(resp)
			return
		}
		c.maybePrepareRebalance(g, "static member changed the group's protocol: "+newID)
	case CompletingRebalance:
		// The leader may be assigning to the old id: start over so the
		// new id gets an assignment.
		c.prepareRebalance(g, "static member rejoined during CompletingRebalance: "+newID)
	}
	// PreparingRebalance: the member simply waits in the barrier under its
	// new id.
}

// maybePrepareRebalance starts a rebalance unless one is being prepared.
func (c *Coordinator) maybePrepareRebalance(g *group, reason string) {
	switch g.state {
	case Stable, CompletingRebalance, Empty:
		c.prepareRebalance(g, reason)
	}
}

// prepareRebalance raises the join barrier. Members waiting in SyncGroup
// are told to rejoin. An empty group's first rebalance waits
// group.initial.rebalance.delay.ms (extended while members keep coming, up
// to the rebalance timeout) so that a fleet of consumers starting together
// forms one generation rather than one per arrival.
func (c *Coordinator) prepareRebalance(g *group, reason string) {
	if g.state == CompletingRebalance {
		c.resetAndPropagateAssignmentError(g, kerr.RebalanceInProgress)
	}
	g.syncDeadlineNs = 0
	rt := g.rebalanceTimeoutMs()
	if g.state == Empty {
		delay := c.cfg.InitialRebalanceDelayMs
		g.initialJoin = true
		g.newMemberAdded = false
		g.initialDelayMs = delay
		g.initialRemainingMs = max(rt-delay, 0)
		g.joinDeadlineNs = c.nowNs + int64(delay)*msNs
	} else {
		g.initialJoin = false
		g.joinDeadlineNs = c.nowNs + int64(max(rt, 0))*msNs
	}
	c.log.Info("preparing to rebalance group", "group", g.id, "generation", g.generation, "reason", reason)
	g.transition(PreparingRebalance, c.nowNs)
	c.checkJoin(g)
}

// checkJoin ends the join barrier early once every member is in it.
func (c *Coordinator) checkJoin(g *group) {
	if g.state == PreparingRebalance && !g.initialJoin && g.allJoined() {
		c.completeJoin(g)
	}
}

// joinDeadline is the join barrier's timer.
func (c *Coordinator) joinDeadline(g *group) {
	if g.initialJoin && g.newMemberAdded && g.initialRemainingMs != 0 {
		g.newMemberAdded = false
		delay := min(c.cfg.InitialRebalanceDelayMs, g.initialRemainingMs)
		g.initialRemainingMs = max(g.initialRemainingMs-g.initialDelayMs, 0)
		g.initialDelayMs = delay
		// From the deadline, not from now: a late wake-up must not
		// stretch the cap.
		g.joinDeadlineNs += int64(delay) * msNs
		return
	}
	c.completeJoin(g)
}

// completeJoin drops the barrier: dynamic members that did not rejoin are
// removed (static members keep their place), a leader is chosen, the next
// generation begins and every waiting member gets its JoinGroup answer.
func (c *Coordinator) completeJoin(g *group) {
	g.joinDeadlineNs = 0
	g.initialJoin = false
	for _, m := range append([]*member(nil), g.members...) {
		if m.join == nil && m.instanceID == nil {
			c.log.Info("removing member that did not rejoin", "group", g.id, "member_id", m.id)
			c.dropMember(g, m, kerr.UnknownMemberID)
		}
	}
	if !c.electJoinedLeader(g) && len(g.members) > 0 {
		// Only static members are left and none rejoined: wait another
		// rebalance timeout for them (or for their sessions to end).
		c.log.Warn("no member rejoined the group; waiting again", "group", g.id)
		g.joinDeadlineNs = c.nowNs + int64(max(g.rebalanceTimeoutMs(), 1))*msNs
		return
	}
	g.generation++
	for _, m := range g.members {
		m.pendingSync = false
	}
	if len(g.members) == 0 {
		g.protocol = nil
		g.leader = ""
		g.transition(Empty, c.nowNs)
		c.log.Info("group is now empty", "group", g.id, "generation", g.generation)
		// Stored so that generations keep counting up after a failover,
		// and offset retention counts from now (KIP-211).
		c.persist(g.id, []Record{groupRecord(g, c.host.WallMs())})
		return
	}
	p := g.selectProtocol()
	g.protocol = &p
	g.transition(CompletingRebalance, c.nowNs)
	c.log.Info("group formed a generation", "group", g.id, "generation", g.generation,
		"protocol", p, "leader", g.leader, "members", len(g.members))
	for _, m := range g.members {
		if m.join != nil {
			reply := m.join
			m.join = nil
			reply(c.joinResult(g, m, m.joinVersion, m.id == g.leader))
		}
		m.deadlineNs = c.nowNs + int64(m.sessionTimeoutMs)*msNs
		m.isNew = false
		m.pendingSync = true
	}
	g.syncDeadlineNs = c.nowNs + int64(max(g.rebalanceTimeoutMs(), 0))*msNs
}

// electJoinedLeader keeps the leader if it rejoined, else makes the first
// member (in join order) that rejoined the leader. It reports whether the
// group has a leader that rejoined.
func (c *Coordinator) electJoinedLeader(g *group) bool {
	if l := g.byID[g.leader]; l != nil && l.join != nil {
		return true
	}
	for _, m := range g.members {
		if m.join != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

// joinResult is a successful JoinGroup answer for m in the current
// generation; the leader also gets every member's metadata.
func (c *Coordinator) joinResult(g *group, m *member, version int16, withMembers bool) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.Generation = g.generation
	pt := g.protocolType
	resp.ProtocolType = &pt
	if g.protocol != nil {
		p := *g.protocol
		resp.Protocol = &p
	}
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	if withMembers {
		resp.Members = g.memberMetadata()
	}
	return resp
}

func joinError(version int16, memberID string, err *kerr.Error) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.ErrorCode = err.Code
	resp.Generation = -1
	resp.MemberID = memberID
	return resp
}

// dropMember answers m's held requests with err and takes it out of the
// group, without starting a rebalance.
func (c *Coordinator) dropMember(g *group, m *member, err *kerr.Error) {
	if m.join != nil {
		reply := m.join
		m.join = nil
		reply(joinError(m.joinVersion, m.id, err))
	}
	if m.sync != nil {
		reply := m.sync
		m.sync = nil
		reply(syncError(err))
	}
	g.remove(m)
}

// removeMemberAndUpdateGroup removes a member that left or failed and
// rebalances the group. Its held JoinGroup or SyncGroup is answered
// UNKNOWN_MEMBER_ID: if the client is still alive it rejoins as new.
func (c *Coordinator) removeMemberAndUpdateGroup(g *group, m *member, reason string) {
	c.dropMember(g, m, kerr.UnknownMemberID)
	switch g.state {
	case Stable, CompletingRebalance:
		c.maybePrepareRebalance(g, reason+": "+m.id)
	case PreparingRebalance:
		c.checkJoin(g)
	}
}

// expireGroup does what is due in g.
func (c *Coordinator) expireGroup(g *group) {
	if g.cg != nil {
		c.expireConsumerGroup(g)
		return
	}
	now := c.nowNs
	if len(g.pending) > 0 {
		kept := g.pending[:0]
		for _, p := range g.pending {
			if p.deadlineNs <= now {
				c.log.Info("pending member did not rejoin in its session timeout", "group", g.id, "member_id", p.id)
				continue
			}
			kept = append(kept, p)
		}
		g.pending = kept
		c.checkJoin(g)
	}
	for _, m := range append([]*member(nil), g.members...) {
		if g.byID[m.id] != m || m.deadlineNs == 0 || m.deadlineNs > now {
			continue
		}
		if m.heartbeatSatisfied() {
			m.deadlineNs = 0 // re-armed when its held request is answered
			continue
		}
		c.log.Info("member session expired", "group", g.id, "member_id", m.id, "session_timeout_ms", m.sessionTimeoutMs)
		c.removeMemberAndUpdateGroup(g, m, "session expired")
	}
	if g.syncDeadlineNs != 0 && g.syncDeadlineNs <= now {
		g.syncDeadlineNs = 0
		if g.state == CompletingRebalance || g.state == Stable {
			var late []*member
			for _, m := range g.members {
				if m.pendingSync {
					late = append(late, m)
				}
			}
			if len(late) > 0 {
				for _, m := range late {
					c.log.Info("removing member that sent no SyncGroup in the rebalance timeout", "group", g.id, "member_id", m.id)
					c.dropMember(g, m, kerr.UnknownMemberID)
				}
				c.prepareRebalance(g, "members did not sync")
			}
		}
	}
	if g.joinDeadlineNs != 0 && g.joinDeadlineNs <= now && g.state == PreparingRebalance {
		c.joinDeadline(g)
	}
}

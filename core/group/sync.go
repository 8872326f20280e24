package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/bugs"
)

// SyncGroup handles a SyncGroup request. During CompletingRebalance the
// reply is held until the leader's assignment arrives (then every waiting
// member gets its own part) or the group rebalances again; otherwise it is
// answered at once.
func (c *Coordinator) SyncGroup(nowNs int64, req *kmsg.SyncGroupRequest, reply func(*kmsg.SyncGroupResponse)) {
	c.begin(nowNs)
	defer c.end()
	if err := c.groupStatus(req.Group); err != nil {
		reply(syncError(err))
		return
	}
	g := c.getOrCreate(req.Group, false)
	if g == nil {
		reply(syncError(kerr.UnknownMemberID))
		return
	}
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		reply(syncError(err))
		return
	}
	switch {
	case req.Generation != g.generation:
		reply(syncError(kerr.IllegalGeneration))
		return
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && (g.protocol == nil || *req.Protocol != *g.protocol):
		reply(syncError(kerr.InconsistentGroupProtocol))
		return
	}
	m := g.byID[req.MemberID]
	switch g.state {
	case PreparingRebalance:
		reply(syncError(kerr.RebalanceInProgress))
	case CompletingRebalance:
		if m.sync != nil {
			// Kafka forgets the replaced request; see updateMember.
			old := m.sync
			m.sync = nil
			old(syncError(kerr.RebalanceInProgress))
		}
		m.sync = reply
		m.pendingSync = false
		if g.leader == m.id {
			c.log.Info("assignment received from the leader", "group", g.id, "generation", g.generation, "leader", m.id)
			// Members the leader left out get an empty assignment;
			// ids it names that are not members are ignored; a
			// repeated id takes its last assignment.
			for _, x := range g.members {
				if !bugs.On(bugs.AssignmentOverlap) {
					x.assignment = []byte{}
				}
			}
			for _, a := range req.GroupAssignment {
				if x := g.byID[a.MemberID]; x != nil {
					x.assignment = a.MemberAssignment
				}
			}
			c.storeAssignment(g)
		}
	case Stable:
		m.pendingSync = false
		reply(c.syncResult(g, m))
		m.deadlineNs = c.nowNs + int64(m.sessionTimeoutMs)*msNs
		c.clearSyncDeadlineIfDone(g)
	default:
		reply(syncError(kerr.UnknownMemberID))
	}
}

// storeAssignment writes the generation the leader just assigned, and
// hands the assignment to the members once it is committed, as Kafka's
// storeGroup: after a failover the new coordinator then knows the
// generation and who owns what, so it can never hand out the same
// generation number with another assignment. Members keep waiting in
// SyncGroup meanwhile; if the group moved on (a member left, the
// generation changed), the write is simply superseded.
func (c *Coordinator) storeAssignment(g *group) {
	gen := g.generation
	c.host.Append(g.id, []Record{groupRecord(g, c.host.WallMs())}, func(nowNs int64, err *kerr.Error) {
		c.begin(nowNs)
		defer c.end()
		if g.deleted || g.state != CompletingRebalance || g.generation != gen {
			return
		}
		c.touch(g)
		if err != nil {
			c.log.Warn("storing the group's assignment failed", "group", g.id, "generation", gen, "err", err)
			c.resetAndPropagateAssignmentError(g, err)
			c.maybePrepareRebalance(g, "storing the assignment failed")
			return
		}
		c.propagateAssignment(g, nil)
		g.transition(Stable, c.nowNs)
		c.clearSyncDeadlineIfDone(g)
	})
}

// clearSyncDeadlineIfDone disarms the sync timeout once every member of the
// generation has synced (Kafka lets its timer fire and do nothing).
func (c *Coordinator) clearSyncDeadlineIfDone(g *group) {
	for _, m := range g.members {
		if m.pendingSync {
			return
		}
	}
	g.syncDeadlineNs = 0
}

// propagateAssignment answers every member waiting in SyncGroup, with its
// assignment or with err, and restarts its session.
func (c *Coordinator) propagateAssignment(g *group, err *kerr.Error) {
	for _, m := range g.members {
		if m.sync == nil {
			continue
		}
		reply := m.sync
		m.sync = nil
		if err != nil {
			reply(syncError(err))
		} else {
			reply(c.syncResult(g, m))
		}
		m.deadlineNs = c.nowNs + int64(m.sessionTimeoutMs)*msNs
	}
}

// resetAndPropagateAssignmentError clears every assignment and fails the
// members waiting in SyncGroup.
func (c *Coordinator) resetAndPropagateAssignmentError(g *group, err *kerr.Error) {
	for _, m := range g.members {
		m.assignment = []byte{}
	}
	c.propagateAssignment(g, err)
}

func (c *Coordinator) syncResult(g *group, m *member) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	pt := g.protocolType
	resp.ProtocolType = &pt
	if g.protocol != nil {
		p := *g.protocol
		resp.Protocol = &p
	}
	resp.MemberAssignment = m.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

func syncError(err *kerr.Error) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ErrorCode = err.Code
	resp.MemberAssignment = []byte{}
	return resp
}

// Heartbeat handles a Heartbeat request: it keeps the member's session and
// tells it whether the group is rebalancing.
func (c *Coordinator) Heartbeat(nowNs int64, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	c.begin(nowNs)
	defer c.end()
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if err := c.groupStatus(req.Group); err != nil {
		resp.ErrorCode = err.Code
		return resp
	}
	g := c.getOrCreate(req.Group, false)
	if g == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		resp.ErrorCode = err.Code
		return resp
	}
	if req.Generation != g.generation {
		resp.ErrorCode = kerr.IllegalGeneration.Code
		return resp
	}
	m := g.byID[req.MemberID]
	switch g.state {
	case CompletingRebalance, Stable:
		// Members may heartbeat between their JoinGroup answer and their
		// SyncGroup; that keeps their session like any heartbeat.
		m.deadlineNs = c.nowNs + int64(m.sessionTimeoutMs)*msNs
	case PreparingRebalance:
		m.deadlineNs = c.nowNs + int64(m.sessionTimeoutMs)*msNs
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	default:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	}
	return resp
}

// LeaveGroup handles a LeaveGroup request: v0-v2 name one member, v3+ a
// batch, each by member id or (for static members, KIP-345) by instance id
// alone.
func (c *Coordinator) LeaveGroup(nowNs int64, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	c.begin(nowNs)
	defer c.end()
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	if err := c.groupStatus(req.Group); err != nil {
		resp.ErrorCode = err.Code
		return resp
	}
	g := c.getOrCreate(req.Group, false)
	for _, l := range leaving {
		lm := kmsg.NewLeaveGroupResponseMember()
		lm.MemberID, lm.InstanceID = l.MemberID, l.InstanceID
		lm.ErrorCode = c.leave(g, l)
		resp.Members = append(resp.Members, lm)
	}
	if req.Version < 3 {
		// v0-v2 carry the one member's error at the top.
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
	return resp
}

// leave removes one leaving member and returns its error code.
func (c *Coordinator) leave(g *group, l kmsg.LeaveGroupRequestMember) int16 {
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	reason := "member left"
	if l.Reason != nil {
		reason += " (" + *l.Reason + ")"
	}
	instance := ""
	if l.InstanceID != nil {
		instance = *l.InstanceID
	}
	c.log.Info("member leaves the group", "group", g.id, "member_id", l.MemberID, "instance_id", instance, "reason", reason)
	switch {
	case l.MemberID == "":
		// An administrator removes a static member by instance id.
		if l.InstanceID == nil {
			return kerr.UnknownMemberID.Code
		}
		id, ok := g.static[*l.InstanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		c.removeMemberAndUpdateGroup(g, g.byID[id], reason)
	case g.isPending(l.MemberID):
		g.removePending(l.MemberID)
		c.checkJoin(g)
	default:
		if err := g.validateMember(l.MemberID, l.InstanceID); err != nil {
			return err.Code
		}
		c.removeMemberAndUpdateGroup(g, g.byID[l.MemberID], reason)
	}
	return 0
}

package group

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupHeartbeat handles a ConsumerGroupHeartbeat request (KIP-848,
// v0 and v1), as Kafka's GroupMetadataManager.consumerGroupHeartbeat: a
// member joins with epoch 0, heartbeats with its epoch, and leaves with
// epoch -1 (or -2, a static member that will come back). Each heartbeat
// may move the group epoch (a new member, a changed subscription, changed
// topics), compute a new target assignment, and take the member one step
// towards its target. The reply is called once the records of everything
// the answer reveals are committed, possibly during a later call.
func (c *Coordinator) ConsumerGroupHeartbeat(nowNs int64, cl Client, req *kmsg.ConsumerGroupHeartbeatRequest, reply func(*kmsg.ConsumerGroupHeartbeatResponse)) {
	c.begin(nowNs)
	defer c.end()
	fail := func(err *kerr.Error, msg string) {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = err.Code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		reply(resp)
	}
	if err, msg := c.checkHeartbeat(req); err != nil {
		fail(err, msg)
		return
	}
	if err := c.writable(req.Group); err != nil {
		fail(err, "")
		return
	}
	if req.MemberEpoch == leaveEpoch || req.MemberEpoch == staticLeaveEpoch {
		c.consumerLeave(req, reply, fail)
		return
	}
	c.consumerHeartbeat(cl, req, reply, fail)
}

// checkHeartbeat is Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid
// with its messages: INVALID_REQUEST, INVALID_REGULAR_EXPRESSION,
// UNSUPPORTED_ASSIGNOR.
func (c *Coordinator) checkHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) (*kerr.Error, string) {
	empty := func(s *string) bool { return s != nil && *s == "" }
	switch {
	case req.Version >= 1 && req.MemberID == "",
		req.Version == 0 && req.MemberID == "" && req.MemberEpoch != joinEpoch:
		return kerr.InvalidRequest, "MemberId can't be empty."
	case req.Group == "":
		return kerr.InvalidRequest, "GroupId can't be empty."
	case empty(req.InstanceID):
		return kerr.InvalidRequest, "InstanceId can't be empty."
	case empty(req.RackID):
		return kerr.InvalidRequest, "RackId can't be empty."
	}
	switch e := req.MemberEpoch; {
	case e == joinEpoch:
		switch {
		case req.RebalanceTimeoutMillis == -1:
			return kerr.InvalidRequest, "RebalanceTimeoutMs must be provided in first request."
		case req.Topics == nil || len(req.Topics) > 0:
			return kerr.InvalidRequest, "TopicPartitions must be empty when (re-)joining."
		case req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
			return kerr.InvalidRequest, "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining."
		}
	case e == staticLeaveEpoch:
		if req.InstanceID == nil {
			return kerr.InvalidRequest, "InstanceId can't be null."
		}
	case e < staticLeaveEpoch:
		return kerr.InvalidRequest, "MemberEpoch is invalid."
	}
	if req.SubscribedTopicRegex != nil {
		if _, err := compileSubscriptionRegex(*req.SubscribedTopicRegex); err != nil {
			return kerr.InvalidRegularExpression, fmt.Sprintf("SubscribedTopicRegex `%s` is not a valid regular expression: %v.", *req.SubscribedTopicRegex, err)
		}
	}
	if a := req.ServerAssignor; a != nil && !slices.Contains(c.cfg.ConsumerAssignors, *a) {
		return kerr.UnsupportedAssignor, fmt.Sprintf("ServerAssignor %s is not supported. Supported assignors: %v.", *a, c.cfg.ConsumerAssignors)
	}
	return nil, ""
}

// consumerGroupFor finds the consumer group of a heartbeat, creating it for
// a joining member. An empty classic group becomes a consumer group,
// keeping its offsets, as Kafka converts it; any other classic group is not
// a consumer group.
func (c *Coordinator) consumerGroupFor(id string, join bool) (*group, string) {
	g := c.groups[id]
	switch {
	case g == nil && !join:
		return nil, fmt.Sprintf("Group %s not found.", id)
	case g == nil:
		g = c.getOrCreate(id, true)
		g.cg = newConsumerGroup()
	case g.cg == nil:
		if !join || g.state != Empty || len(g.pending) > 0 {
			return nil, fmt.Sprintf("Group %s is not a consumer group.", id)
		}
		c.log.Info("empty classic group becomes a consumer group", "group", id)
		c.persist(id, []Record{groupTombstone(id)})
		g.cg = newConsumerGroup()
		g.protocolType, g.protocol, g.leader = "", nil, ""
	}
	c.touch(g)
	return g, ""
}

// toClassic turns an empty consumer group into a classic one, keeping its
// offsets, as Kafka converts it when a classic member joins.
func (c *Coordinator) toClassic(g *group) {
	c.log.Info("empty consumer group becomes a classic group", "group", g.id)
	c.persist(g.id, cgTombstones(g))
	g.cg = nil
}

func (c *Coordinator) consumerHeartbeat(cl Client, req *kmsg.ConsumerGroupHeartbeatRequest, reply func(*kmsg.ConsumerGroupHeartbeatResponse), fail func(*kerr.Error, string)) {
	g, msg := c.consumerGroupFor(req.Group, req.MemberEpoch == joinEpoch)
	if g == nil {
		fail(kerr.GroupIDNotFound, msg)
		return
	}
	cg := g.cg
	memberID := req.MemberID
	if memberID == "" {
		memberID = c.newUUID() // v0: the coordinator names joining members
	}
	if cg.byID[memberID] == nil && len(cg.members) >= int(c.cfg.ConsumerMaxSize) {
		fail(kerr.GroupMaxSizeReached, fmt.Sprintf("The consumer group has reached its maximum capacity of %d members.", c.cfg.ConsumerMaxSize))
		return
	}
	owned := ownedAssignment(req.Topics)
	b := &cgBatch{g: g}
	m, replaced, err, msg := c.heartbeatMember(b, memberID, req, owned)
	if err != nil {
		fail(err, msg)
		return
	}
	isNew := cg.byID[m.id] == nil
	before := *m
	c.updateConsumerMember(cg, m, cl, req)
	if isNew {
		cg.add(m)
	}
	if isNew || replaced || !sameMetadata(&before, m) {
		b.member(m)
	}
	c.resolveRegexes(cg)
	topics := c.subscribedTopics(cg)
	if hash := metadataHash(topics); isNew || !before.subscriptionEqual(m) || hash != cg.metadataHash {
		cg.epoch++
		cg.metadataHash = hash
		b.metadata()
		c.log.Info("consumer group epoch moves", "group", g.id, "epoch", cg.epoch, "member_id", m.id, "new_member", isNew)
	}
	if cg.epoch > cg.targetEpoch {
		c.computeTarget(b, topics)
	}
	if m.state == memberUnknown && (owned == nil || len(owned) > 0) {
		// What changed above is written all the same: memory must not
		// run ahead of the log.
		c.flushConsumer(b, func(*kerr.Error) {
			fail(kerr.FencedMemberEpoch, "The consumer group member is in a unknown state. The member must abandon all its partitions and rejoin.")
		})
		return
	}
	assignedBefore := m.assigned
	if !c.advance(b, m, owned, topics) && replaced {
		b.current(m)
	}
	m.sessionDeadlineNs = c.nowNs + int64(c.cfg.ConsumerSessionTimeoutMs)*msNs

	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	id := m.id
	resp.MemberID = &id
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = c.cfg.ConsumerHeartbeatIntervalMs
	if owned != nil || req.MemberEpoch == joinEpoch || !assignedBefore.equal(m.assigned) {
		resp.Assignment = responseAssignment(m.assigned)
	}
	c.flushConsumer(b, func(err *kerr.Error) {
		if err != nil {
			fail(err, "")
			return
		}
		reply(resp)
	})
}

// heartbeatMember finds (or makes) the member a heartbeat is from and
// checks its epoch: Kafka's getOrMaybeSubscribe{Dynamic,Static}Member and
// throwIfMemberEpochIsInvalid. A static member that left with epoch -2 is
// replaced by the new member id, which takes over its assignment.
func (c *Coordinator) heartbeatMember(b *cgBatch, memberID string, req *kmsg.ConsumerGroupHeartbeatRequest, owned assignment) (m *consumerMember, replaced bool, err *kerr.Error, msg string) {
	cg := b.g.cg
	join := req.MemberEpoch == joinEpoch
	m = cg.byID[memberID]
	if req.InstanceID != nil {
		inst := *req.InstanceID
		holder := cg.byID[cg.static[inst]]
		switch {
		case !join && holder == nil:
			return nil, false, kerr.UnknownMemberID, fmt.Sprintf("Instance id %s is unknown.", inst)
		case !join && holder.id != memberID:
			return nil, false, kerr.FencedInstanceID, fmt.Sprintf("Static member %s with instance id %s was fenced by member %s.", memberID, inst, holder.id)
		case !join, holder == nil, holder.id == memberID && holder.epoch != staticLeaveEpoch:
		case holder.epoch != staticLeaveEpoch:
			return nil, false, kerr.UnreleasedInstanceID, fmt.Sprintf("Static member %s with instance id %s cannot join the group because the instance id is owned by member %s.", memberID, inst, holder.id)
		default:
			return c.replaceStaticConsumer(b, holder, memberID), true, nil, ""
		}
	}
	switch {
	case m == nil && !join:
		return nil, false, kerr.UnknownMemberID, fmt.Sprintf("Member %s is not a member of group %s.", memberID, b.g.id)
	case m == nil:
		return &consumerMember{id: memberID}, false, nil, ""
	case join:
		// A member that lost its join answer joins again: it carries
		// on as it is.
		return m, false, nil, ""
	case req.MemberEpoch > m.epoch:
		return nil, false, kerr.FencedMemberEpoch, fmt.Sprintf("The consumer group member has a greater member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", req.MemberEpoch, m.epoch)
	case req.MemberEpoch < m.epoch && (req.MemberEpoch != m.prevEpoch || owned == nil || !owned.subsetOf(m.assigned)):
		// Only the previous epoch is forgiven (the member missed the
		// answer that moved it), and only while it owns nothing more
		// than it was given.
		return nil, false, kerr.FencedMemberEpoch, fmt.Sprintf("The consumer group member has a smaller member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", req.MemberEpoch, m.epoch)
	}
	return m, false, nil, ""
}

// replaceStaticConsumer gives the place of a static member that left with
// epoch -2 to the member id it comes back with: its subscription and its
// assignment carry over, and the group epoch does not move unless the
// subscription changes.
func (c *Coordinator) replaceStaticConsumer(b *cgBatch, old *consumerMember, id string) *consumerMember {
	cg := b.g.cg
	c.log.Info("static member rejoins the consumer group", "group", b.g.id, "instance_id", *old.instanceID, "old_member_id", old.id, "member_id", id)
	target, hadTarget := cg.target[old.id]
	cg.remove(old)
	if old.id != id {
		b.removeMember(old.id)
	}
	m := &consumerMember{
		id: id, instanceID: old.instanceID, rackID: old.rackID,
		topicNames: old.topicNames, regex: old.regex, serverAssignor: old.serverAssignor,
		rebalanceTimeoutMs: old.rebalanceTimeoutMs,
		assigned:           old.assigned, pending: assignment{},
	}
	cg.add(m)
	if hadTarget {
		cg.target[id] = target
		b.target(id)
	}
	return m
}

// updateConsumerMember takes what a heartbeat says about its member; fields a
// heartbeat leaves null keep their value, as in Kafka.
func (c *Coordinator) updateConsumerMember(cg *consumerGroup, m *consumerMember, cl Client, req *kmsg.ConsumerGroupHeartbeatRequest) {
	m.clientID, m.clientHost = cl.ID, cl.Host
	if req.InstanceID != nil && (m.instanceID == nil || *m.instanceID != *req.InstanceID) {
		inst := *req.InstanceID
		if cg.byID[m.id] == m {
			if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
				delete(cg.static, *m.instanceID)
			}
			cg.static[inst] = m.id
		}
		m.instanceID = &inst
	}
	if req.RackID != nil {
		r := *req.RackID
		m.rackID = &r
	}
	if req.RebalanceTimeoutMillis != -1 {
		m.rebalanceTimeoutMs = req.RebalanceTimeoutMillis
	}
	if req.ServerAssignor != nil {
		m.serverAssignor = *req.ServerAssignor
	}
	if req.SubscribedTopicNames != nil {
		m.topicNames = normalizeTopicNames(req.SubscribedTopicNames)
	}
	if req.SubscribedTopicRegex != nil {
		m.regex = *req.SubscribedTopicRegex
	}
}

// sameMetadata reports whether the stored metadata (record type 5) of two
// versions of a member is the same.
func sameMetadata(a, b *consumerMember) bool {
	eq := func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.subscriptionEqual(b) && eq(a.instanceID, b.instanceID) && eq(a.rackID, b.rackID) &&
		a.clientID == b.clientID && a.clientHost == b.clientHost && a.rebalanceTimeoutMs == b.rebalanceTimeoutMs
}

// advance takes m one reconciliation step and records it, reporting
// whether m changed. A member that now has partitions to revoke gets its
// rebalance timeout to do so.
func (c *Coordinator) advance(b *cgBatch, m *consumerMember, owned assignment, topics []TopicMeta) bool {
	cg := b.g.cg
	names := cg.subscribedNames(m)
	ids := map[topicID]bool{}
	for _, t := range topics {
		if _, ok := slices.BinarySearch(names, t.Name); ok {
			ids[t.ID] = true
		}
	}
	next := cg.reconcile(m, owned, func(t topicID) bool { return ids[t] })
	if next.epoch == m.epoch && next.state == m.state && next.assigned.equal(m.assigned) && next.pending.equal(m.pending) {
		return false
	}
	m.prevEpoch, m.epoch, m.state = m.epoch, next.epoch, next.state
	cg.setHoldings(m, next.assigned, next.pending)
	b.current(m)
	m.revokeDeadlineNs = 0
	if m.state == memberUnrevoked {
		m.revokeDeadlineNs = c.nowNs + int64(m.rebalanceTimeoutMs)*msNs
	}
	return true
}

// responseAssignment is an assignment as a heartbeat answer carries it.
func responseAssignment(a assignment) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	ra := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	ra.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, t := range a.sortedTopics() {
		rt := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		rt.TopicID, rt.Partitions = t, slices.Clone(a[t])
		ra.Topics = append(ra.Topics, rt)
	}
	return &ra
}

// newUUID is a member id as Kafka's Uuid.randomUuid().toString() renders
// one: 16 random bytes in unpadded URL-safe base64.
func (c *Coordinator) newUUID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], c.rnd.Uint64())
	binary.BigEndian.PutUint64(b[8:], c.rnd.Uint64())
	return base64.RawURLEncoding.EncodeToString(b[:])
}

package group

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumerLeave handles a heartbeat with epoch -1 or -2, as Kafka's
// consumerGroupLeave: -1 removes the member (a static one by its instance
// id); -2 keeps a static member's place and assignment for its session
// timeout, so that it can come back without a rebalance.
func (c *Coordinator) consumerLeave(req *kmsg.ConsumerGroupHeartbeatRequest, reply func(*kmsg.ConsumerGroupHeartbeatResponse), fail func(*kerr.Error, string)) {
	g := c.groups[req.Group]
	if g == nil || g.cg == nil {
		fail(kerr.GroupIDNotFound, fmt.Sprintf("Group %s not found.", req.Group))
		return
	}
	c.touch(g)
	cg := g.cg
	m := cg.byID[req.MemberID]
	if req.InstanceID != nil {
		m = cg.byID[cg.static[*req.InstanceID]]
		if m != nil && m.id != req.MemberID {
			fail(kerr.FencedInstanceID, fmt.Sprintf("Static member %s with instance id %s was fenced by member %s.", req.MemberID, *req.InstanceID, m.id))
			return
		}
	}
	if m == nil {
		fail(kerr.UnknownMemberID, fmt.Sprintf("Member %s is not a member of group %s.", req.MemberID, g.id))
		return
	}
	b := &cgBatch{g: g}
	if req.MemberEpoch == staticLeaveEpoch {
		c.log.Info("static member leaves the consumer group for now", "group", g.id, "member_id", m.id, "instance_id", *m.instanceID)
		m.epoch = staticLeaveEpoch
		m.state, m.revokeDeadlineNs = memberStable, 0
		cg.setHoldings(m, m.assigned, assignment{})
		b.current(m)
		m.sessionDeadlineNs = c.nowNs + int64(c.cfg.ConsumerSessionTimeoutMs)*msNs
	} else {
		c.fenceMember(b, m, "member left")
	}
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	id := req.MemberID
	resp.MemberID, resp.MemberEpoch = &id, req.MemberEpoch
	c.flushConsumer(b, func(err *kerr.Error) {
		if err != nil {
			fail(err, "")
			return
		}
		reply(resp)
	})
}

// fenceMember removes m from its group and moves the group epoch, so that
// the next heartbeat computes a target without it.
func (c *Coordinator) fenceMember(b *cgBatch, m *consumerMember, reason string) {
	cg := b.g.cg
	c.log.Info("removing member from the consumer group", "group", b.g.id, "member_id", m.id, "epoch", m.epoch, "reason", reason)
	cg.remove(m)
	b.removeMember(m.id)
	cg.epoch++
	c.resolveRegexes(cg)
	cg.metadataHash = metadataHash(c.subscribedTopics(cg))
	b.metadata()
	if len(cg.members) == 0 {
		b.g.stateSinceNs = c.nowNs
	}
}

// expireConsumerGroup fences the members whose session ended or that did
// not revoke their partitions within their rebalance timeout.
func (c *Coordinator) expireConsumerGroup(g *group) {
	b := &cgBatch{g: g}
	for _, m := range slices.Clone(g.cg.members) {
		switch {
		case m.sessionDeadlineNs != 0 && m.sessionDeadlineNs <= c.nowNs:
			c.fenceMember(b, m, "session expired")
		case m.revokeDeadlineNs != 0 && m.revokeDeadlineNs <= c.nowNs:
			c.fenceMember(b, m, "partitions not revoked within the rebalance timeout")
		}
	}
	c.flushConsumer(b, nil)
}

package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumerCommitCheck is Kafka's ConsumerGroup.validateOffsetCommit: a
// commit without a member (epoch below zero) is accepted while the group
// is empty; otherwise the member must exist, commit with OffsetCommit v9 or
// above, and carry its current epoch (the generation field holds it). The
// epoch is compared with the member's last committed epoch, as Kafka
// compares with its last committed state: a member is never told an epoch
// before it is committed, so it cannot hold a newer one.
func consumerCommitCheck(cg *consumerGroup, req *kmsg.OffsetCommitRequest) *kerr.Error {
	if req.Generation < 0 && len(cg.members) == 0 {
		return nil
	}
	m := cg.byID[req.MemberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID
	case req.Version < 9:
		return kerr.UnsupportedVersion
	case req.Generation != m.durableEpoch:
		return kerr.StaleMemberEpoch
	}
	return nil
}

// consumerFetchCheck is Kafka's ConsumerGroup.validateOffsetFetch for
// OffsetFetch v9: without a member id and with a negative epoch (an admin
// client) the fetch is accepted; otherwise the member must exist and carry
// its current epoch. Classic groups and unknown groups are not checked.
func (c *Coordinator) consumerFetchCheck(rg kmsg.OffsetFetchRequestGroup) *kerr.Error {
	g := c.groups[rg.Group]
	if g == nil || g.cg == nil || (rg.MemberID == nil && rg.MemberEpoch < 0) {
		return nil
	}
	var m *consumerMember
	if rg.MemberID != nil {
		m = g.cg.byID[*rg.MemberID]
	}
	switch {
	case m == nil:
		return kerr.UnknownMemberID
	case rg.MemberEpoch != m.durableEpoch:
		return kerr.StaleMemberEpoch
	}
	return nil
}

package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumerCommitCheck is Kafka's ConsumerGroup.validateOffsetCommit: a
// commit without a member (epoch below zero) is accepted while the group
// is empty; otherwise the member must exist and commit with OffsetCommit v9
// or above. The epoch is compared with the member's last committed epoch,
// as Kafka compares with its last committed state: a member is never told
// an epoch before it is committed, so it cannot hold a newer one (that is
// STALE_MEMBER_EPOCH).
//
// An older epoch is judged partition by partition, as Kafka does since
// KIP-1251 (assignment epochs): the commit of a partition is accepted if
// the member has held it since that epoch or before, else it is
// STALE_MEMBER_EPOCH. A member whose epoch moved while its commit was on
// the way (it gained partitions, so it moved without a revocation) commits
// what it still owns; franz-go's consumer, committing in its revocation
// callback with the epoch it started with, otherwise retried for ever and
// let its session expire. perPartition is nil when every partition is
// accepted.
func consumerCommitCheck(cg *consumerGroup, req *kmsg.OffsetCommitRequest, topicID func(string) (topicID, bool)) (err *kerr.Error, perPartition func(topic string, partition int32) *kerr.Error) {
	if req.Generation < 0 && len(cg.members) == 0 {
		return nil, nil
	}
	m := cg.byID[req.MemberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID, nil
	case req.Version < 9:
		return kerr.UnsupportedVersion, nil
	case req.Generation == m.durableEpoch:
		return nil, nil
	case req.Generation > m.durableEpoch || req.Generation < 0:
		return kerr.StaleMemberEpoch, nil
	}
	return nil, func(topic string, partition int32) *kerr.Error {
		id, ok := topicID(topic)
		if !ok {
			return kerr.StaleMemberEpoch
		}
		if since, held := m.durableHeld[idPartition{id, partition}]; !held || since > req.Generation {
			return kerr.StaleMemberEpoch
		}
		return nil
	}
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

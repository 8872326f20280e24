package broker

// OffsetCommit v2-v9.
//
// Commits go to the group's coordinator (the leader of its partition of
// __consumer_offsets), which answers once the commit is replicated there
// like an acks=all produce; a write that fails or times out
// (offsets.commit.timeout.ms) answers COORDINATOR_NOT_AVAILABLE or
// NOT_COORDINATOR, as Kafka maps them, and the client retries.
//
// v9 is the first version KIP-848 consumers may use; its fields are those of
// v8. For classic groups it differs only in answering GROUP_ID_NOT_FOUND
// instead of ILLEGAL_GENERATION when a member commits to a group that does
// not exist, as Kafka does; a consumer group's member must commit with v9,
// its member id and its current epoch (UNSUPPORTED_VERSION,
// UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH otherwise). v10 (topic ids) is not
// served.
//
// Checks, in Kafka's order: a partition clients cannot see gets
// UNKNOWN_TOPIC_OR_PARTITION; then the group decides for the rest (member
// id and generation; a "simple" commit with generation -1 and no member id
// only while the group is Empty; REBALANCE_IN_PROGRESS during
// CompletingRebalance); then OFFSET_METADATA_TOO_LARGE per partition.
// Offsets expire by offsets.retention.minutes as in Kafka (KIP-211), and a
// v2-v4 retention time sets a commit's own expiry.
//
// Deliberate differences from Kafka: offset metadata length is measured in
// bytes (Kafka counts UTF-16 units); the Stable-group case of KIP-211
// (expiring offsets of topics no member subscribes to any more) is not
// done, since it needs the consumer protocol's subscriptions decoded.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleOffsetCommit(s *slot, req *kmsg.OffsetCommitRequest) {
	n.groups.OffsetCommit(n.now.MonoNs, req, func(resp *kmsg.OffsetCommitResponse) { n.respond(s, resp) })
}

// partitionExists is what OffsetCommit checks commits against: partitions
// clients can see.
func (n *Node) partitionExists(topic string, partition int32) bool {
	t := n.topics.visible(topic)
	return t != nil && t.partition(partition) != nil
}

package broker

// ConsumerGroupHeartbeat v0-v1 (KIP-848).
//
// The consumer group protocol is core/group's, after Kafka 4's
// GroupMetadataManager: members join with epoch 0 (v1: with a member id of
// their own making; v0: the coordinator names them), heartbeat with their
// epoch, and leave with -1 (-2: a static member that keeps its place for
// its session timeout). The coordinator computes each group's target
// assignment with its server assignor ("uniform" or "range",
// group.consumer.assignors) and moves each member towards it one step per
// heartbeat: partitions to revoke first, at the same epoch; new ones at the
// target epoch once no other member holds them. Subscriptions are topic
// names and/or a regex (v1; Go's RE2, as Kafka uses RE2J; internal topics
// never match). Sessions are group.consumer.session.timeout.ms; a member
// that does not revoke within its rebalance timeout is fenced. The answer
// is sent once the records it rests on are committed to
// __consumer_offsets, and still computed if the connection closed
// meanwhile (its slot then drops it).
//
// Deliberate differences from Kafka: members of the classic protocol do not
// join consumer groups (no online migration): a JoinGroup to a consumer
// group with members gets INCONSISTENT_GROUP_PROTOCOL, and other classic
// requests UNKNOWN_MEMBER_ID; a failed write is not reverted in memory but
// followed by a write of the group's whole state; topic changes are seen
// at the next heartbeat of a member (regexes are matched again at most
// every 10s); rack-aware assignment, per-group configs
// (IncrementalAlterConfigs on groups) and the regex records of Kafka 4
// (resolved again at load) are not implemented; a static member that comes
// back under a new member id keeps the target of the member it replaces
// (Kafka recomputes the target, which its sticky assignors leave the same);
// a member's change of server assignor moves the group epoch; a known
// member that joins again with epoch 0 is taken back in place with its
// assignment (franz-go's client relies on it after FENCED_MEMBER_EPOCH),
// where Kafka checks epoch 0 against the member's previous epoch.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/group"
)

func (n *Node) handleConsumerGroupHeartbeat(s *slot, req *kmsg.ConsumerGroupHeartbeatRequest) {
	cl := group.Client{ID: s.clientID, Host: clientHost(s.conn.remote)}
	n.groups.ConsumerGroupHeartbeat(n.now.MonoNs, cl, req, func(resp *kmsg.ConsumerGroupHeartbeatResponse) { n.respond(s, resp) })
}

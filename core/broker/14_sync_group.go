package broker

// SyncGroup v0-v5.
//
// During CompletingRebalance the response is held until the leader's
// assignment arrives, then every member gets its own part (members the
// leader left out get an empty assignment). In a stable group the current
// assignment is returned at once. v5 checks the protocol type and name
// against the group's (INCONSISTENT_GROUP_PROTOCOL). Members that send no
// SyncGroup within the rebalance timeout are removed and the group
// rebalances, as in Kafka 3.2+.
//
// Deliberate difference from Kafka: a SyncGroup replaced by a newer one
// from the same member is answered REBALANCE_IN_PROGRESS instead of never
// (see 11_join_group.go).

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleSyncGroup(s *slot, req *kmsg.SyncGroupRequest) {
	n.groups.SyncGroup(n.now.MonoNs, req, func(resp *kmsg.SyncGroupResponse) { n.respond(s, resp) })
}

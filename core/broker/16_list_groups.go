package broker

// ListGroups v0-v5.
//
// The groups this broker coordinates are listed by id, of type "classic"
// or "consumer" (KIP-848). The v4 state filter and the v5 type filter
// match case-insensitively, as in Kafka. While a partition of
// __consumer_offsets is loading the answer is COORDINATOR_LOAD_IN_PROGRESS,
// as Kafka's: the list would miss its groups.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleListGroups(s *slot, req *kmsg.ListGroupsRequest) {
	n.respond(s, n.groups.ListGroups(n.now.MonoNs, req))
}

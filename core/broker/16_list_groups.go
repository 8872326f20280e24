package broker

// ListGroups v0-v5.
//
// Groups are listed by id. The v4 state filter and the v5 type filter match
// case-insensitively, as in Kafka; every group here is "classic" (KIP-848
// consumer groups are not served).

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleListGroups(s *slot, req *kmsg.ListGroupsRequest) {
	n.respond(s, n.groups.ListGroups(n.now.MonoNs, req))
}

package broker

// LeaveGroup v0-v5.
//
// v0-v2 name one member and carry its error at the top; v3+ name a batch
// of members, each by member id, or by group.instance.id alone to remove a
// static member administratively (KIP-345); v5 adds a reason, which is
// logged. A member's departure starts a rebalance.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleLeaveGroup(s *slot, req *kmsg.LeaveGroupRequest) {
	n.respond(s, n.groups.LeaveGroup(n.now.MonoNs, req))
}

package broker

// Heartbeat v0-v4.
//
// Keeps a member's session (session.timeout.ms); answers
// REBALANCE_IN_PROGRESS while the group prepares a rebalance,
// ILLEGAL_GENERATION for a stale generation, UNKNOWN_MEMBER_ID for a member
// the group does not know, FENCED_INSTANCE_ID (v3+) for a static member
// whose instance id has been taken over.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleHeartbeat(s *slot, req *kmsg.HeartbeatRequest) {
	n.respond(s, n.groups.Heartbeat(n.now.MonoNs, req))
}

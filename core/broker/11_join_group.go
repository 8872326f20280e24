package broker

// JoinGroup v0-v9.
//
// The classic group protocol is core/group's: KIP-394 member ids
// (MEMBER_ID_REQUIRED from v4), KIP-345 static members (v5+), the join
// barrier with group.initial.rebalance.delay.ms, KIP-814 skipAssignment
// (v9) for a static leader that rejoins a stable group. The response is
// held until the barrier falls, and still computed if the connection
// closed meanwhile (its slot then drops it).
//
// Deliberate differences from Kafka: a JoinGroup that a newer one from the
// same member replaces is answered REBALANCE_IN_PROGRESS instead of never,
// because this broker keeps pipelined responses in order and an unanswered
// request would stall its connection; ties in the protocol vote go to the
// protocol that got its first vote earliest (members in join order), not
// to hash order; a leader that leaves is succeeded by the first member in
// join order; a static member that comes back under a new member id shows
// its new client id and host in DescribeGroups (Kafka keeps the old ones).

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/group"
)

func (n *Node) handleJoinGroup(s *slot, req *kmsg.JoinGroupRequest) {
	cl := group.Client{ID: s.clientID, Host: clientHost(s.conn.remote)}
	n.groups.JoinGroup(n.now.MonoNs, cl, req, func(resp *kmsg.JoinGroupResponse) { n.respond(s, resp) })
}

// clientHost renders a connection's remote address as Kafka shows a
// member's host: the address without the port, after a slash.
func clientHost(remote string) string {
	host := remote
	if i := strings.LastIndexByte(remote, ':'); i >= 0 {
		host = remote[:i]
	}
	return "/" + strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

package broker

// DescribeGroups v0-v5.
//
// States are Kafka's names (Empty, PreparingRebalance, CompletingRebalance,
// Stable, Dead); an unknown group is described as Dead with no error, as
// Kafka does before v6 (v6's GROUP_ID_NOT_FOUND is not served). Member
// metadata and assignments are filled only while the group is Stable, as in
// Kafka. Authorized operations are not computed (no ACLs yet) and carry
// Kafka's "not requested" value.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleDescribeGroups(s *slot, req *kmsg.DescribeGroupsRequest) {
	n.respond(s, n.groups.DescribeGroups(n.now.MonoNs, req))
}

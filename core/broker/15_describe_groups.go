package broker

// DescribeGroups v0-v5.
//
// A classic group's states are Kafka's names (Empty, PreparingRebalance,
// CompletingRebalance, Stable, Dead); a KIP-848 consumer group is
// described as Kafka's asDescribedGroup does it. A group this broker does
// not coordinate gets NOT_COORDINATOR (or COORDINATOR_LOAD_IN_PROGRESS);
// an unknown group is described as Dead with no error, as
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

package broker

// ConsumerGroupDescribe v0-v1 (KIP-848).
//
// Describes consumer groups: state (Empty, Assigning, Reconciling, Stable),
// group and assignment epochs, the assignor the members prefer, and each
// member with its subscription, current and target assignments (v1: member
// type 1, the consumer protocol). A group that does not exist or is
// classic gets GROUP_ID_NOT_FOUND, as in Kafka.
//
// Deliberate differences from Kafka: the state shown is the coordinator's
// latest, including changes whose records are still being written (Kafka
// shows its last committed state); authorized operations are not computed
// (no ACLs yet) and carry Kafka's "not requested" value.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleConsumerGroupDescribe(s *slot, req *kmsg.ConsumerGroupDescribeRequest) {
	n.respond(s, n.groups.ConsumerGroupDescribe(n.now.MonoNs, req))
}

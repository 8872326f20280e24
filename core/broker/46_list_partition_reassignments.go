package broker

// ListPartitionReassignments v0 (KIP-455): the reassignments in progress,
// answered by the controller (see core/controller).

import "github.com/twmb/franz-go/pkg/kmsg"

func (n *Node) handleListPartitionReassignments(s *slot, req *kmsg.ListPartitionReassignmentsRequest) {
	n.forwardToController(s, req, nil)
}

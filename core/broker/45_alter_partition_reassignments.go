package broker

// AlterPartitionReassignments v0 (KIP-455): moving a partition's replicas,
// decided by the controller (see core/controller). New replicas join as
// followers, catch up and enter the ISR; then the controller drops the
// replicas being removed, and a broker that no longer holds a replica
// removes its log (reconcile.go).

import "github.com/twmb/franz-go/pkg/kmsg"

func (n *Node) handleAlterPartitionReassignments(s *slot, req *kmsg.AlterPartitionAssignmentsRequest) {
	n.forwardToController(s, req, nil)
}

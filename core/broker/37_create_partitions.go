package broker

// CreatePartitions v0-v3.
//
// The controller decides and places the new partitions (see
// core/controller); the response comes once they are committed.

import "github.com/twmb/franz-go/pkg/kmsg"

func (n *Node) handleCreatePartitions(s *slot, req *kmsg.CreatePartitionsRequest) {
	n.forwardToController(s, req, nil)
}

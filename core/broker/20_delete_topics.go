package broker

// DeleteTopics v1-v6 (by name, and by topic id from v6).
//
// The controller decides (see core/controller); the response comes once the
// deletion is committed. Each broker then removes its replicas' directories
// as it replays the deletion.

import "github.com/twmb/franz-go/pkg/kmsg"

func (n *Node) handleDeleteTopics(s *slot, req *kmsg.DeleteTopicsRequest) {
	n.forwardToController(s, req, nil)
}

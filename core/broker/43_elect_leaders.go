package broker

// ElectLeaders v0-v2: preferred (and unclean) leader election, decided by
// the controller (see core/controller).

import "github.com/twmb/franz-go/pkg/kmsg"

func (n *Node) handleElectLeaders(s *slot, req *kmsg.ElectLeadersRequest) {
	n.forwardToController(s, req, nil)
}

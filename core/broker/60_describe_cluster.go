package broker

// DescribeCluster v0-v1. Endpoint type 2 (controllers) lists this node too:
// it is its own controller until the cluster issue adds a quorum.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleDescribeCluster(s *slot, req *kmsg.DescribeClusterRequest) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = n.meta.image.ClusterID
	resp.ControllerID = n.cfg.NodeID
	resp.EndpointType = req.EndpointType
	resp.ClusterAuthorizedOperations = authorizedOpsOmitted
	for _, b := range n.brokers() {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack = b.NodeID, b.Host, b.Port, b.Rack
		resp.Brokers = append(resp.Brokers, db)
	}
	n.respond(s, resp)
}

package broker

// DescribeCluster v0-v1, from the committed metadata image. The controller
// id is as in Metadata (see controllerID).

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleDescribeCluster(s *slot, req *kmsg.DescribeClusterRequest) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = n.cluster.image.ClusterID()
	brokers := n.brokers()
	resp.ControllerID = n.controllerID(brokers)
	resp.EndpointType = req.EndpointType
	resp.ClusterAuthorizedOperations = authorizedOpsOmitted
	for _, b := range brokers {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack = b.NodeID, b.Host, b.Port, b.Rack
		resp.Brokers = append(resp.Brokers, db)
	}
	n.respond(s, resp)
}

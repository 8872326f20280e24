package broker

// DescribeCluster v0-v1, from the committed metadata image. The controller
// id is the Raft leader this node knows of (-1 when none).

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleDescribeCluster(s *slot, req *kmsg.DescribeClusterRequest) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = n.cluster.image.ClusterID()
	resp.ControllerID = int32(n.cluster.raft.Leader())
	resp.EndpointType = req.EndpointType
	resp.ClusterAuthorizedOperations = authorizedOpsOmitted
	for _, b := range n.brokers() {
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.Rack = b.NodeID, b.Host, b.Port, b.Rack
		resp.Brokers = append(resp.Brokers, db)
	}
	n.respond(s, resp)
}

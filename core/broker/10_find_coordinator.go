package broker

// FindCoordinator v0-v5 (v4+ batch their keys).
//
// A group's coordinator is the leader of its partition of
// __consumer_offsets (coordinate.go), at its endpoint for the listener the
// request came through, as Metadata names brokers. While the topic is
// being created, or the partition has no live leader, the answer is
// COORDINATOR_NOT_AVAILABLE and clients retry. Transactions are not
// supported yet: key type 1 gets COORDINATOR_NOT_AVAILABLE with a message
// saying so (clients retry it; InitProducerId refuses transactional ids,
// which is what stops a transactional producer). Other key types (share
// groups are v6) get INVALID_REQUEST, as Kafka answers an unknown type.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleFindCoordinator(s *slot, req *kmsg.FindCoordinatorRequest) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		resp.Coordinators = append(resp.Coordinators, n.findCoordinator(req.CoordinatorType, key))
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
	}
	n.respond(s, resp)
}

func (n *Node) findCoordinator(keyType int8, key string) kmsg.FindCoordinatorResponseCoordinator {
	c := kmsg.NewFindCoordinatorResponseCoordinator()
	c.Key = key
	fail := func(err *kerr.Error, msg string) kmsg.FindCoordinatorResponseCoordinator {
		c.NodeID, c.Host, c.Port = -1, "", -1
		c.ErrorCode, c.ErrorMessage = err.Code, &msg
		return c
	}
	switch keyType {
	case 0:
		t := n.topics.visible(offsetsTopic)
		if t == nil {
			n.createOffsetsTopic()
			return fail(kerr.CoordinatorNotAvailable, "the group coordinator topic is being created")
		}
		p := t.partition(groupPartition(key, len(t.partitions)))
		for _, b := range n.brokers() {
			if p != nil && b.NodeID == int32(p.state.Leader) {
				c.NodeID, c.Host, c.Port = b.NodeID, b.Host, b.Port
				return c
			}
		}
		return fail(kerr.CoordinatorNotAvailable, "the group's partition of __consumer_offsets has no live leader")
	case 1:
		return fail(kerr.CoordinatorNotAvailable, "transactions are not supported by this broker yet")
	default:
		return fail(kerr.InvalidRequest, "unknown coordinator key type")
	}
}

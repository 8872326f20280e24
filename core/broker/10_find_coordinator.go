package broker

// FindCoordinator v0-v5 (v4+ batch their keys).
//
// This node coordinates every group (key type 0), so it answers with its own
// advertised listener, as Metadata lists it. Transactions are not supported
// yet: key type 1 gets COORDINATOR_NOT_AVAILABLE with a message saying so
// (clients retry it; InitProducerId refuses transactional ids, which is
// what stops a transactional producer). Other key types (share groups are
// v6) get INVALID_REQUEST, as Kafka answers an unknown type.

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
		// Every broker coordinates the groups whose members ask it, until
		// coordinators move to __consumer_offsets leaders (groups issue).
		l := n.cfg.AdvertisedListeners[0]
		c.NodeID, c.Host, c.Port = n.cfg.NodeID, l.Host, int32(l.Port)
		return c
	case 1:
		return fail(kerr.CoordinatorNotAvailable, "transactions are not supported by this broker yet")
	default:
		return fail(kerr.InvalidRequest, "unknown coordinator key type")
	}
}

package broker

// InitProducerId v0-v4, for idempotent producers.
//
// Producer ids come in blocks of 1000 that the controller hands out
// through the metadata log (AllocateProducerIds, as in KRaft), so an id is
// never handed out twice across restarts or brokers. Without a
// transactional id every request gets a fresh id at epoch 0, as Kafka's
// coordinator "blindly" does: the id and epoch a client sends (v3+,
// KIP-360) are not trusted, since a bump of an id never handed out would
// fence its future owner. Transactions are not supported yet: a
// transactional id is refused with INVALID_REQUEST, which clients do not
// retry, and a log line that says why.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type pidAllocator struct {
	next, end int64
	fetching  bool
	waiting   []func(pid int64, err *kerr.Error)
}

func (n *Node) handleInitProducerID(s *slot, req *kmsg.InitProducerIDRequest) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case req.TransactionalID != nil:
		n.log.Warn("refusing a transactional producer: transactions are not supported yet", "client_id", s.clientID)
		resp.ErrorCode = kerr.InvalidRequest.Code
	case n.storageErr != nil:
		resp.ErrorCode = kerr.KafkaStorageError.Code
	default:
		n.allocateProducerID(func(pid int64, err *kerr.Error) {
			if err != nil {
				resp.ErrorCode = err.Code
			} else {
				resp.ProducerID, resp.ProducerEpoch = pid, 0
			}
			n.respond(s, resp)
		})
		return
	}
	n.respond(s, resp)
}

// allocateProducerID hands out an id from the broker's block, asking the
// controller for a new block when it is used up.
func (n *Node) allocateProducerID(done func(pid int64, err *kerr.Error)) {
	a := &n.pids
	if a.next < a.end {
		a.next++
		done(a.next-1, nil)
		return
	}
	a.waiting = append(a.waiting, done)
	if a.fetching {
		return
	}
	epoch := n.cluster.reg.epoch
	if epoch == 0 {
		n.failPIDWaiters(kerr.CoordinatorNotAvailable)
		return
	}
	a.fetching = true
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID, req.BrokerEpoch = n.cfg.NodeID, epoch
	n.callController(req, func(kr kmsg.Response, err error) {
		a.fetching = false
		if err == nil {
			resp := kr.(*kmsg.AllocateProducerIDsResponse)
			err = kerr.ErrorForCode(resp.ErrorCode)
			if err == nil {
				a.next, a.end = resp.ProducerIDStart, resp.ProducerIDStart+int64(resp.ProducerIDLen)
			}
		}
		if err != nil {
			// Retriable for the client: the controller is moving or busy.
			n.failPIDWaiters(kerr.CoordinatorNotAvailable)
			return
		}
		waiting := a.waiting
		a.waiting = nil
		for _, w := range waiting {
			n.allocateProducerID(w)
		}
	})
}

func (n *Node) failPIDWaiters(e *kerr.Error) {
	waiting := n.pids.waiting
	n.pids.waiting = nil
	for _, w := range waiting {
		w(-1, e)
	}
}

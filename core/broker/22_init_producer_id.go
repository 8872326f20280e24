package broker

// InitProducerId v0-v4, for idempotent producers.
//
// Producer ids come from blocks reserved durably in the metadata, so an id is
// never handed out twice across restarts. A producer that sends its current
// id and epoch (v3+, KIP-360) gets the epoch bumped, or a fresh id when the
// epoch is exhausted. Transactions are not supported yet: a transactional
// id is refused with INVALID_REQUEST, which clients do not retry, and a log
// line that says why.

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleInitProducerID(s *slot, req *kmsg.InitProducerIDRequest) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case req.TransactionalID != nil:
		n.log.Warn("refusing a transactional producer: transactions are not supported yet", "client_id", s.clientID)
		resp.ErrorCode = kerr.InvalidRequest.Code
	case n.storageErr != nil:
		resp.ErrorCode = kerr.KafkaStorageError.Code
	case req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16-1:
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
	default:
		n.allocateProducerID(func(pid int64, ok bool) {
			if ok {
				resp.ProducerID, resp.ProducerEpoch = pid, 0
			} else {
				resp.ErrorCode = kerr.KafkaStorageError.Code
			}
			n.respond(s, resp)
		})
		return
	}
	n.respond(s, resp)
}

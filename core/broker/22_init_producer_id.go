package broker

// InitProducerId v0-v4, for idempotent producers.
//
// Producer ids come from blocks reserved durably in the metadata, so an id is
// never handed out twice across restarts. Without a transactional id every
// request gets a fresh id at epoch 0, as Kafka's coordinator "blindly" does:
// the id and epoch a client sends (v3+, KIP-360) are not trusted, since a
// bump of an id never handed out would fence its future owner. Transactions are not supported yet: a transactional
// id is refused with INVALID_REQUEST, which clients do not retry, and a log
// line that says why.

import (
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

package controller

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/port"
)

// producerIDBlock is how many producer ids one AllocateProducerIds hands a
// broker, as in Kafka.
const producerIDBlock = 1000

func (c *Controller) allocateProducerIDs(req *kmsg.AllocateProducerIDsRequest, resp *kmsg.AllocateProducerIDsResponse, reply func(kmsg.Response)) {
	id := port.NodeID(req.BrokerID)
	if b, ok := c.view.Broker(id); !ok || b.Epoch != req.BrokerEpoch {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		reply(resp)
		return
	}
	start := c.view.NextProducerID()
	rec := &metadata.ProducerIDsRecord{Broker: id, BrokerEpoch: req.BrokerEpoch, NextProducerID: start + producerIDBlock}
	ok := c.propose([]metadata.Record{{ProducerIDs: rec}}, func(committed bool) {
		if committed {
			resp.ProducerIDStart, resp.ProducerIDLen = start, producerIDBlock
		} else {
			resp.ErrorCode = kerr.NotController.Code
		}
		reply(resp)
	})
	if !ok {
		reply(fillError(req, resp, kerr.NotController))
	}
}

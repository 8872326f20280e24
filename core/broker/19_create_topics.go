package broker

// CreateTopics v2-v7.
//
// The active controller decides (see core/controller): any broker forwards
// the request to it, and the response comes once the topics are committed
// to the metadata log. Defaults for partitions and replication factor (-1)
// come from num.partitions and default.replication.factor.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/controller"
)

func (n *Node) handleCreateTopics(s *slot, req *kmsg.CreateTopicsRequest) {
	n.forwardToController(s, req, func(kr kmsg.Response) {
		resp := kr.(*kmsg.CreateTopicsResponse)
		for i := range resp.Topics {
			out := &resp.Topics[i]
			if out.ErrorCode != 0 || i >= len(req.Topics) {
				continue
			}
			overrides := map[string]string{}
			for _, c := range req.Topics[i].Configs {
				if c.Value != nil {
					overrides[c.Name] = *c.Value
				}
			}
			for _, e := range n.cfg.DescribeTopic(overrides, false) {
				c := kmsg.NewCreateTopicsResponseTopicConfig()
				c.Name, c.Value, c.ReadOnly, c.Source, c.IsSensitive = e.Name, e.Value, e.ReadOnly, e.Source, e.Sensitive
				out.Configs = append(out.Configs, c)
			}
		}
	})
}

// forwardToController sends a request the controller serves and answers
// the client with its response (after amend, if given), or with the
// error that kept it from the controller.
func (n *Node) forwardToController(s *slot, req kmsg.Request, amend func(kmsg.Response)) {
	if n.storageErr != nil {
		n.respond(s, controller.ErrorResponse(req, kerr.KafkaStorageError))
		return
	}
	n.callController(req, func(resp kmsg.Response, err error) {
		if err != nil {
			var ke *kerr.Error
			if !errors.As(err, &ke) {
				ke = kerr.UnknownServerError
			}
			n.respond(s, controller.ErrorResponse(req, ke))
			return
		}
		if amend != nil {
			amend(resp)
		}
		n.respond(s, resp)
	})
}

package broker

// OffsetDelete v0 (KIP-496): partitions that clients cannot see get
// UNKNOWN_TOPIC_OR_PARTITION, the group's coordinator decides for the
// rest (core/group).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleOffsetDelete(s *slot, req *kmsg.OffsetDeleteRequest) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			if !n.partitionExists(t.Topic, p.Partition) {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	n.groups.OffsetDelete(n.now.MonoNs, req, resp, func(resp *kmsg.OffsetDeleteResponse) { n.respond(s, resp) })
}

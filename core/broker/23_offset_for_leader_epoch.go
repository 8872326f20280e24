package broker

// OffsetForLeaderEpoch v0-v4 (KIP-101, KIP-320): where a leader epoch's
// batches end in this partition, so a consumer can tell whether the log it
// read was truncated (followers use Fetch's diverging epoch instead, see
// follow.go). The current leader epoch a client sends (v2+) is checked as
// Fetch checks it.
// For clients the latest epoch ends at the high watermark: they never see
// beyond it.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleOffsetForLeaderEpoch(s *slot, req *kmsg.OffsetForLeaderEpochRequest) {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		out := kmsg.NewOffsetForLeaderEpochResponseTopic()
		out.Topic = rt.Topic
		t := n.topics.visible(rt.Topic)
		for _, rp := range rt.Partitions {
			op := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			op.Partition, op.LeaderEpoch, op.EndOffset = rp.Partition, -1, -1
			current := rp.CurrentLeaderEpoch
			if req.Version < 2 {
				current = -1
			}
			if p, err := n.led(t, rp.Partition, current); err != nil {
				op.ErrorCode = err.Code
			} else {
				op.LeaderEpoch, op.EndOffset = p.log.EndOffsetForEpoch(rp.LeaderEpoch, p.hw)
			}
			out.Partitions = append(out.Partitions, op)
		}
		resp.Topics = append(resp.Topics, out)
	}
	n.respond(s, resp)
}

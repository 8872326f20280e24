package broker

// ListOffsets v1-v8: earliest (-2), latest (-1), max timestamp (-3),
// earliest local (-4, the same as earliest without tiered storage), and by
// timestamp. Latest is the high watermark (the same for read_committed
// until transactions exist); a new leader whose high watermark is still
// below its epoch start answers OFFSET_NOT_AVAILABLE (KIP-207). By timestamp, Weir answers
// with the first batch holding a timestamp ≥ the target (its base offset
// and largest timestamp); Kafka answers with the exact record inside it.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleListOffsets(s *slot, req *kmsg.ListOffsetsRequest) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		out := kmsg.NewListOffsetsResponseTopic()
		out.Topic = rt.Topic
		t := n.topics.visible(rt.Topic)
		for _, rp := range rt.Partitions {
			op := kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			op.Timestamp, op.Offset, op.LeaderEpoch = -1, -1, -1
			if p, err := n.led(t, rp.Partition, rp.CurrentLeaderEpoch); err != nil {
				op.ErrorCode = err.Code
			} else {
				n.listOffset(p, rp.Timestamp, &op)
			}
			out.Partitions = append(out.Partitions, op)
		}
		resp.Topics = append(resp.Topics, out)
	}
	n.respond(s, resp)
}

func (n *Node) listOffset(p *partition, ts int64, op *kmsg.ListOffsetsResponseTopicPartition) {
	stable, serving := servingEnd(p)
	if !serving && ts != -2 && ts != -4 {
		// KIP-207: a new leader answers nothing that depends on the high
		// watermark until it has reached its epoch's start offset.
		op.ErrorCode = kerr.OffsetNotAvailable.Code
		return
	}
	switch ts {
	case -2, -4:
		op.Offset = p.log.StartOffset()
	case -1:
		op.Offset = stable
	case -3:
		op.Timestamp, op.Offset = p.log.MaxTimestamp(stable)
	default:
		if ts < 0 {
			op.ErrorCode = kerr.InvalidRequest.Code
			return
		}
		op.Offset, op.Timestamp = p.log.OffsetForTimestamp(ts, stable)
	}
	if op.Offset >= 0 {
		// The current epoch stands in for the epoch of the batch holding
		// the offset until the log indexes epochs (replication issue).
		op.LeaderEpoch = p.state.LeaderEpoch
	}
}

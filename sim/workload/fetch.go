package workload

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/record"
	"github.com/weirmq/weir/sim/history"
)

// maxBatchBytes bounds the size of any batch the producers build, so a
// partition left less than this of a fetch's byte budget may rightly get
// nothing back.
const maxBatchBytes = 1024

// fetchPart is one partition as a fetch request names it.
type fetchPart struct {
	topic     string
	id        history.TopicID
	partition int32
	offset    int64
	maxBytes  int32
	// epoch is the leader epoch the client knows (-1: none), sent as
	// CurrentLeaderEpoch.
	epoch int32
}

// byID says whether Fetch version v names topics by id.
func byID(v int16) bool { return v >= 13 }

// fetchTarget is what the router needs of a partition a Fetch at version
// v reads: by name, the incarnation clients believe the name has; by id,
// none (the request names it).
func (w *World) fetchTarget(p fetchPart, v int16) target {
	if byID(v) {
		return target{topic: p.topic, partition: p.partition}
	}
	return w.target(p.topic, p.partition)
}

// fetchTargets maps fetchTarget over parts.
func (w *World) fetchTargets(parts []fetchPart, v int16) []target {
	ts := make([]target, len(parts))
	for i, p := range parts {
		ts[i] = w.fetchTarget(p, v)
	}
	return ts
}

// newFetch builds a fetch request for parts at version v (by topic id from
// v13), grouping partitions of one topic.
func newFetch(v int16, parts []fetchPart) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = v
	req.ReplicaID = -1
	for _, p := range parts {
		k := len(req.Topics)
		if k == 0 || req.Topics[k-1].Topic != p.topic || req.Topics[k-1].TopicID != p.id {
			rt := kmsg.NewFetchRequestTopic()
			if byID(v) {
				rt.TopicID = p.id
			} else {
				rt.Topic = p.topic
			}
			req.Topics = append(req.Topics, rt)
			k++
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p.partition
		rp.FetchOffset = p.offset
		rp.PartitionMaxBytes = p.maxBytes
		rp.CurrentLeaderEpoch = p.epoch
		req.Topics[k-1].Partitions = append(req.Topics[k-1].Partitions, rp)
	}
	return req
}

// fetchedPart is one partition of a fetch response, decoded.
type fetchedPart struct {
	topic     string
	id        history.TopicID
	partition int32
	resp      kmsg.FetchResponseTopicPartition
	// budget is the byte budget that was left for it, counting the record
	// bytes of the partitions before it in the response.
	budget int64
}

// fetchedParts flattens a fetch response in response order.
func fetchedParts(resp *kmsg.FetchResponse, maxBytes int32) []fetchedPart {
	var out []fetchedPart
	budget := int64(maxBytes)
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			out = append(out, fetchedPart{topic: rt.Topic, id: rt.TopicID, partition: rp.Partition, resp: rp, budget: budget})
			budget -= int64(len(rp.RecordBatches))
		}
	}
	return out
}

// errCorrupt: a batch failed its CRC check; the response says nothing.
var errCorrupt = errors.New("corrupt batch")

// decodeRecords decodes the batches of one partition's records, keeping
// those at or after from. A batch that fails its CRC is errCorrupt; the
// caller knows whether a fault was injected.
func decodeRecords(data []byte, from int64) (out []history.Rec, behind bool, lastEpoch int32, err error) {
	lastEpoch = -1
	for len(data) > 0 {
		h, size, err := record.ScanOne(data)
		if err != nil {
			return nil, false, -1, fmt.Errorf("%w: %v", errCorrupt, err)
		}
		recs, err := record.Records(data[:size])
		if err != nil {
			return nil, false, -1, fmt.Errorf("%w: %v", errCorrupt, err)
		}
		lastEpoch = h.PartitionLeaderEpoch
		behind = behind || h.LastOffset() < from
		for _, r := range recs {
			if r.Offset >= from {
				out = append(out, history.Rec{Offset: r.Offset, Value: string(r.Value)})
			}
		}
		data = data[size:]
	}
	return out, behind, lastEpoch, nil
}

// fetchOp turns one partition's answer into a history operation, or
// reports corruption: with flipped (an injected fault) the caller just
// retries; without, the broker served a bad batch, which is a failure.
func (w *World) fetchOp(c *router, req fetchPart, fp fetchedPart, byID bool, call int64, flipped, final bool) (*history.Fetch, bool) {
	recs, behind, lastEpoch, err := decodeRecords(fp.resp.RecordBatches, req.offset)
	if err != nil {
		if !flipped {
			w.fail("corruption", fmt.Sprintf("%s: fetch of %s[%d] at %d returned a batch that fails its check with no fault injected: %v",
				c.name, req.topic, req.partition, req.offset, err))
		}
		return nil, false
	}
	f := &history.Fetch{
		Client: c.idx, Consumer: c.name, Topic: req.topic, TopicID: req.id, ByID: byID,
		Partition: fp.partition, Offset: req.offset, Call: call, Return: w.Loop.Now(),
		ErrCode: fp.resp.ErrorCode, HW: fp.resp.HighWatermark, LogStart: fp.resp.LogStartOffset,
		Records: recs, LastEpoch: lastEpoch, Behind: behind, Limited: min(fp.budget, int64(req.maxBytes)) < maxBatchBytes, Final: final,
	}
	return f, true
}

// matches reports whether a response partition answers a requested one.
func (fp fetchedPart) matches(p fetchPart, byID bool) bool {
	if fp.partition != p.partition {
		return false
	}
	if byID {
		return fp.id == p.id
	}
	return fp.topic == p.topic
}

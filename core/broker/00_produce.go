package broker

// Produce v3-v11 (record batches v2 only). timeout_ms is not used yet: the
// only wait is for the local fsync (see pendingProduce).
//
// Each partition's records must be exactly one valid batch (core/record
// validates lengths, CRC32C, offset deltas, timestamps and size). The
// answer waits in the produce purgatory: with acks=1 until the leader has
// the batch durably (fsynced by default, which is stricter than Kafka,
// whose acks=1 waits for the page cache only; with flush.messages > 1 a
// topic gets Kafka's behaviour), with acks=-1 until the high watermark
// passes it, that is, until every member of the ISR has it durably
// (replicate.go). acks=-1 needs at least min.insync.replicas in the ISR
// when the batch arrives (else NOT_ENOUGH_REPLICAS, nothing appended) and
// when the high watermark passes it (else
// NOT_ENOUGH_REPLICAS_AFTER_APPEND), and waits at most timeout_ms (then
// REQUEST_TIMED_OUT: the batch may still commit). A retried idempotent
// batch gets its original offsets. Transactional batches are refused
// (INVALID_TXN_STATE) until transactions exist. Per-record errors (v8
// record_errors) are not itemised.

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/bugs"
	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/record"
)

// pendingProduce is a produce request waiting for its batches to be
// acknowledged. An acks=1 request has no deadline: the wait is for the
// local fsync, which the disk bounds (a failed one answers
// KAFKA_STORAGE_ERROR); acks=-1 waits for replicas at most timeout_ms.
type pendingProduce struct {
	slot           *slot
	resp           *kmsg.ProduceResponse
	waits          []produceWait
	acksAll        bool
	deadlineMonoNs int64
}

type produceWait struct {
	part *partition
	last int64
	out  *kmsg.ProduceResponseTopicPartition
}

func (n *Node) handleProduce(s *slot, req *kmsg.ProduceRequest, checked []port.CheckedBatch) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	pp := &pendingProduce{slot: s, resp: resp, acksAll: req.Acks == -1, deadlineMonoNs: math.MaxInt64}
	if pp.acksAll {
		pp.deadlineMonoNs = n.now.MonoNs + int64(max(req.TimeoutMillis, 0))*1e6
	}
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	k := 0 // index into checked
	for i, rt := range req.Topics {
		out := &resp.Topics[i]
		*out = kmsg.NewProduceResponseTopic()
		out.Topic = rt.Topic
		out.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			op := &out.Partitions[j]
			*op = kmsg.NewProduceResponseTopicPartition()
			op.Partition = rp.Partition
			var pre *port.CheckedBatch
			if k < len(checked) {
				pre = &checked[k]
			}
			k++
			part, last, err := n.produceOne(req, rt.Topic, rp, pre)
			if err != nil {
				var ke *kerr.Error
				if !errors.As(err, &ke) {
					ke = kerr.UnknownServerError
				}
				op.ErrorCode = ke.Code
				if msg := err.Error(); msg != ke.Message {
					op.ErrorMessage = &msg
				}
				continue
			}
			op.BaseOffset = last.base
			op.LogStartOffset = part.log.StartOffset()
			if last.logAppendTime {
				op.LogAppendTime = n.now.WallMs
			}
			w := produceWait{part: part, last: last.last, out: op}
			if !pp.acked(w) {
				pp.waits = append(pp.waits, w)
			}
		}
	}
	switch {
	case req.Acks == 0:
		n.respondNothing(s)
	case len(pp.waits) == 0:
		n.respond(s, resp)
	default:
		n.produces = append(n.produces, pp)
	}
}

type appended struct {
	base, last    int64
	logAppendTime bool
}

// produceOne appends one partition's batch, or says why not. pre is the
// driver's record.Check of the batch, if it made one.
func (n *Node) produceOne(req *kmsg.ProduceRequest, topicName string, rp kmsg.ProduceRequestTopicPartition, pre *port.CheckedBatch) (*partition, appended, error) {
	var a appended
	if req.Acks != 0 && req.Acks != 1 && req.Acks != -1 {
		return nil, a, kerr.InvalidRequiredAcks
	}
	t := n.topics.visible(topicName)
	p, perr := n.led(t, rp.Partition, -1)
	if perr != nil {
		return nil, a, perr
	}
	if t.name == offsetsTopic {
		return nil, a, fmt.Errorf("%w: cannot append to internal topic %s", kerr.InvalidTopicException, offsetsTopic)
	}
	if req.Acks == -1 && len(p.state.ISR) < int(t.cfg.MinInsyncReplicas) {
		return nil, a, kerr.NotEnoughReplicas
	}
	a.logAppendTime = t.cfg.MessageTimestampType == "LogAppendTime"
	// The timestamp window applies to CreateTime only: with LogAppendTime
	// the producer's timestamps are replaced, as in Kafka's LogValidator.
	before, after := timestampBound(t.cfg.MessageTimestampBeforeMaxMs), timestampBound(t.cfg.MessageTimestampAfterMaxMs)
	if a.logAppendTime {
		before, after = -1, -1
	}
	c, err := n.check(t, rp.Records, pre)
	if err == nil {
		err = c.Admit(t.cfg.MaxMessageBytes, n.now.WallMs, before, after)
	}
	if err != nil {
		return nil, a, err
	}
	h := c.Header
	if h.IsTransactional() || req.TransactionID != nil {
		return nil, a, kerr.InvalidTxnState
	}
	res, err := p.log.Append(rp.Records, h, p.state.LeaderEpoch, n.now.WallMs, a.logAppendTime)
	if err != nil {
		return nil, a, err
	}
	n.issue(p, res.Ops)
	n.queueSync(p)
	a.base, a.last = res.Base, res.Last
	return p, a, nil
}

// check returns the driver's record.Check of a batch, or makes it: when the
// driver did not check, or checked with a decompression limit below what
// this topic allows.
func (n *Node) check(t *topic, records []byte, pre *port.CheckedBatch) (record.Checked, error) {
	if pre != nil && !errors.Is(pre.Err, record.ErrDecompressedTooLarge) {
		return pre.Checked, pre.Err
	}
	return record.Check(records, record.DecompressLimit(t.cfg.MaxMessageBytes))
}

// Precheck runs record.Check on a produce request's batches and stores the
// outcomes in in.Checked. It is pure and touches no node state, so drivers
// call it on connection goroutines, in parallel, before handing the request
// to the node (DESIGN.md section 3). decompressLimit bounds the memory a
// compressed batch may take there; batches beyond it are checked again by
// the node against their topic's own limit.
func Precheck(in *port.Request, decompressLimit int64) {
	req, ok := in.Body.(*kmsg.ProduceRequest)
	if !ok {
		return
	}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			c, err := record.Check(rp.Records, decompressLimit)
			in.Checked = append(in.Checked, port.CheckedBatch{Checked: c, Err: err})
		}
	}
}

// timestampBound maps Kafka's "no bound" (Long.MAX_VALUE) to record's.
func timestampBound(ms int64) int64 {
	if ms == math.MaxInt64 {
		return -1
	}
	return ms
}

func (n *Node) queueSync(p *partition) {
	if !p.syncQueued {
		p.syncQueued = true
		n.syncing = append(n.syncing, p)
	}
}

// acked reports whether w's batch is acknowledged: below the high
// watermark for acks=-1, else below the stable offset.
func (pp *pendingProduce) acked(w produceWait) bool {
	if pp.acksAll && !bugs.On(bugs.AckBeforeReplicas) {
		return w.last < w.part.hw
	}
	return w.last < w.part.log.StableOffset()
}

// advance drops the waits on p that are now acknowledged and answers the
// request when none is left; it reports whether it answered. An acks=-1
// batch acknowledged while the ISR is below min.insync.replicas is
// answered NOT_ENOUGH_REPLICAS_AFTER_APPEND, as in Kafka: it is stored,
// but on fewer replicas than the topic asks for.
func (pp *pendingProduce) advance(n *Node, p *partition) bool {
	return pp.settle(n, func(w produceWait) bool {
		if w.part != p || p.lead == nil || !pp.acked(w) {
			return false
		}
		if pp.acksAll && len(p.maximalISR()) < int(p.topic.cfg.MinInsyncReplicas) {
			w.out.ErrorCode = kerr.NotEnoughReplicasAfterAppend.Code
		}
		return true
	})
}

// drop answers the waits on p with err (its partition is gone) and the
// request when none is left; it reports whether it answered.
func (pp *pendingProduce) drop(n *Node, p *partition, err *kerr.Error) bool {
	return pp.settle(n, func(w produceWait) bool {
		if w.part != p {
			return false
		}
		w.out.ErrorCode, w.out.BaseOffset = err.Code, -1
		return true
	})
}

// settle removes the waits done reports finished and answers the request
// once none is left; it reports whether it answered.
func (pp *pendingProduce) settle(n *Node, done func(produceWait) bool) bool {
	pp.waits = slices.DeleteFunc(pp.waits, done)
	if len(pp.waits) > 0 {
		return false
	}
	n.respond(pp.slot, pp.resp)
	return true
}

// failAll answers the request with err for every partition still waiting.
func (pp *pendingProduce) failAll(n *Node, err *kerr.Error) {
	for _, w := range pp.waits {
		w.out.ErrorCode = err.Code
		w.out.BaseOffset = -1
	}
	pp.waits = nil
	n.respond(pp.slot, pp.resp)
}

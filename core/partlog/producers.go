package partlog

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weirmq/weir/core/record"
)

// cachedBatches is how many recent batches per producer are remembered for
// deduplication: Kafka's limit, matching max.in.flight.requests=5.
const cachedBatches = 5

type cachedBatch struct {
	firstSeq, lastSeq int32
	base, last        int64
}

type producerEntry struct {
	epoch int16
	// recent holds the last batches, oldest first.
	recent []cachedBatch
}

func (e *producerEntry) lastSeq() int32 { return e.recent[len(e.recent)-1].lastSeq }

// producers is the idempotence state of one partition, as Kafka's
// ProducerStateManager keeps it. It is rebuilt from batch headers at
// recovery, so it survives restarts with the log. Only lookups touch the
// map; nothing iterates it.
type producers struct {
	byID map[int64]*producerEntry
}

func newProducers() producers { return producers{byID: map[int64]*producerEntry{}} }

// check decides whether an idempotent batch may be appended: a retry of a
// recent batch returns it (dup), a stale epoch is fenced, and a sequence gap
// is refused, all with Kafka's errors.
func (p *producers) check(h record.Header) (*cachedBatch, error) {
	e := p.byID[h.ProducerID]
	if e == nil {
		if h.BaseSequence != 0 {
			return nil, kerr.OutOfOrderSequenceNumber
		}
		return nil, nil
	}
	switch {
	case h.ProducerEpoch < e.epoch:
		return nil, kerr.InvalidProducerEpoch
	case h.ProducerEpoch > e.epoch:
		if h.BaseSequence != 0 {
			return nil, kerr.OutOfOrderSequenceNumber
		}
		return nil, nil
	}
	for i := range e.recent {
		if c := &e.recent[i]; c.firstSeq == h.BaseSequence && c.lastSeq == h.LastSequence() {
			return c, nil
		}
	}
	if h.BaseSequence != nextSeq(e.lastSeq()) {
		return nil, kerr.OutOfOrderSequenceNumber
	}
	return nil, nil
}

func nextSeq(s int32) int32 {
	if s == math.MaxInt32 {
		return 0
	}
	return s + 1
}

// producerBatch is what a stored batch adds to the idempotence state. Every
// batchEntry keeps one, so that a truncation can rebuild the state from the
// batches left, as recovery does.
type producerBatch struct {
	// id is -1 for a batch that adds nothing: one from a producer that is
	// not idempotent, or a transaction marker (a control batch names its
	// producer but carries no sequence numbers).
	id                int64
	epoch             int16
	firstSeq, lastSeq int32
}

func producerBatchOf(h record.Header) producerBatch {
	if !h.HasProducerID() || h.IsControl() {
		return producerBatch{id: -1}
	}
	return producerBatch{id: h.ProducerID, epoch: h.ProducerEpoch, firstSeq: h.BaseSequence, lastSeq: h.LastSequence()}
}

// record remembers a batch stored at offsets [base, last]. A leader's
// batch must have passed check; a follower's and a recovered one are
// recorded as they are, as Kafka's appendAsFollower and recovery do.
func (p *producers) record(b producerBatch, base, last int64) {
	if b.id < 0 {
		return
	}
	e := p.byID[b.id]
	if e == nil || b.epoch != e.epoch {
		e = &producerEntry{epoch: b.epoch}
		p.byID[b.id] = e
	}
	if len(e.recent) == cachedBatches {
		e.recent = append(e.recent[:0], e.recent[1:]...)
	}
	e.recent = append(e.recent, cachedBatch{firstSeq: b.firstSeq, lastSeq: b.lastSeq, base: base, last: last})
}

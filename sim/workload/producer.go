package workload

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/record"
	"github.com/weirmq/weir/sim/history"
	"github.com/weirmq/weir/sim/sched"
)

// producer is an idempotent producer (acks=-1 or 1, retries with the same
// sequence numbers until it learns each batch's outcome) or a plain one
// (acks 0, 1 or -1, never resends a value). Each batch goes to its
// partition's leader (see router).
//
// Acks in cluster runs. Kafka requires acks=all of idempotent producers,
// so there they always use it. A record acknowledged with acks=1 may
// rightly be lost when leadership moves to a replica that had not fetched
// it yet, so where topics have more than one replica plain producers use
// acks=0 or acks=all only. The other way, exempting acks=1 records on
// replicated topics from the checkers, would turn every acknowledged
// acks=1 write into one of unknown outcome for the durability, anomaly and
// Porcupine checkers alike; this way every acknowledged record, in every
// run, stays held to claims 1 and 2 with no exemption. acks=1 keeps its
// coverage with one replica (single-node runs, and cluster runs drawing a
// replication factor of 1 and no reassignments), where Weir acknowledges
// it only once fsynced on the one replica, so it is as durable as
// acks=all. Reassignments (Config.ReassignEvery) give a partition more
// replicas, for a while or for good, and then a leader acknowledges
// acks=1 records its followers may not have yet, above the high
// watermark: Kafka's semantics, so those runs use acks=0 or acks=all.
type producer struct {
	*router
	idem        bool
	acks        int16
	maxInFlight int
	inFlight    int
	// perConn counts requests in flight by the connection they were
	// meant for (slot: leader node index+1), which maxInFlight caps, as
	// Kafka caps max.in.flight.requests.per.connection: a broker that is
	// down holds up only its own partitions. Slot 0 counts requests
	// waiting for a leader, uncapped: Kafka keeps those batches in its
	// accumulator, on no connection.
	perConn   []int
	nextValue int

	// Idempotent state.
	pid      int64
	epoch    int16
	initing  bool
	needBump bool // the broker lost our sequence state: bump the epoch
	parts    []*ppart
}

// dedupWindow is how many of a producer's latest batches per partition the
// broker remembers for deduplication (Kafka's 5). A producer never makes a
// batch more than that many after its oldest unacknowledged one, as Kafka's
// producer caps max.in.flight.requests.per.connection at 5: a retry beyond
// the window would be refused as out of order, not recognised.
const dedupWindow = 5

// ppart is an idempotent producer's state for one partition.
type ppart struct {
	topic     string
	partition int32
	seq       int32
	made      int      // batches made for the partition so far
	queue     []*batch // unacked, in sequence order
	inFlight  int
	// blocked: a batch failed; nothing is sent until the partition's
	// in-flight requests are back, then every unacked batch is resent in
	// order (what Kafka clients do).
	blocked bool
	// gone: the topic or partition no longer exists; batches are dropped.
	gone bool
	// lostState: the broker refused the oldest unacked batch's sequence,
	// so it has no state for us (the topic is a new one under the old
	// name, or retention removed the segments our last batches were in,
	// and our state with them, as Kafka removes a producer whose last
	// batch falls below the log start): once nothing is in flight, bump
	// the epoch. A batch that may have been appended before the state
	// went is given up then, like any other (see renumber).
	lostState bool
}

type batch struct {
	op    *history.Produce
	seq   int32
	idx   int // the partition's idx-th batch
	data  []byte
	sent  bool // on the wire right now
	maybe bool // some attempt may have been appended
	slot  int  // the perConn slot it counts in while sent
}

func newProducer(w *World, name string, idem bool) *producer {
	p := &producer{router: newRouter(w, name), idem: idem, pid: -1, epoch: -1}
	p.perConn = make([]int, len(w.Nodes)+1)
	p.maxInFlight = int(p.rnd.Range(1, 5))
	rf, _ := w.cfg.EffectiveReplication()
	switch {
	case idem && rf > 0:
		p.acks = -1 // a cluster run: see producer
	case idem && p.rnd.Coin():
		p.acks = 1
	case idem:
		p.acks = -1
	case rf > 1 || w.cfg.ReassignEvery[0] > 0:
		p.acks = []int16{0, -1}[p.rnd.Pick(2)] // see producer
	default:
		p.acks = []int16{0, 1, -1}[p.rnd.Pick(3)]
	}
	return p
}

func (p *producer) start() {
	p.w.trace("%s: start (idempotent=%v acks=%d max_in_flight=%d)", p.name, p.idem, p.acks, p.maxInFlight)
	p.tick()
}

func (p *producer) tick() {
	if p.w.stopped {
		return
	}
	if p.w.active {
		p.produceNext()
	}
	if p.w.active || p.unacked() > 0 {
		lo, hi := p.w.cfg.ProduceEvery[0], p.w.cfg.ProduceEvery[1]
		p.w.Loop.After(p.rnd.Range(lo, hi), p.tick)
	}
	p.pump()
}

func (p *producer) unacked() int {
	n := 0
	for _, pp := range p.parts {
		n += len(pp.queue)
	}
	return n
}

// produceNext makes a new batch for a random live partition, if the
// producer has room for one.
func (p *producer) produceNext() {
	topics := p.w.live()
	if len(topics) == 0 {
		return
	}
	t := topics[p.rnd.Pick(len(topics))]
	part := int32(p.rnd.Pick(int(t.Partitions)))
	values := make([]string, p.rnd.Range(1, int64(p.w.cfg.MaxBatchRecords)))
	var pp *ppart
	if p.idem {
		pp = p.part(t.Name, part)
		if len(pp.queue) > 0 && pp.made-pp.queue[0].idx >= dedupWindow {
			return
		}
	} else if p.full(p.slot(t.Name, part)) {
		return
	}
	for i := range values {
		values[i] = p.name + "-" + strconv.Itoa(p.nextValue)
		p.nextValue++
	}
	op := &history.Produce{
		Client: p.idx, Producer: p.name, Idempotent: p.idem, Acks: p.acks,
		Topic: t.Name, Partition: part, Values: values, Timestamp: p.w.timestampMs(),
	}
	p.w.History.StartProduce(op)
	op.Call = p.w.Loop.Now()
	if !p.idem {
		b := &batch{op: op, seq: -1}
		p.build(b, -1, -1)
		p.sendPlain(b)
		return
	}
	pp.gone = false // the topic is (again) believed to exist
	pp.queue = append(pp.queue, &batch{op: op, seq: pp.seq, idx: pp.made})
	pp.seq += int32(len(values))
	pp.made++
}

func (p *producer) part(topic string, partition int32) *ppart {
	for _, pp := range p.parts {
		if pp.topic == topic && pp.partition == partition {
			return pp
		}
	}
	pp := &ppart{topic: topic, partition: partition}
	p.parts = append(p.parts, pp)
	return pp
}

// build encodes the batch for the producer id, epoch and its sequence.
func (p *producer) build(b *batch, pid int64, epoch int16) {
	recs := make([]record.BuildRecord, len(b.op.Values))
	for i, v := range b.op.Values {
		recs[i] = record.BuildRecord{Value: []byte(v), TimestampDelta: int64(i)}
	}
	b.data = record.Build(record.BuildSpec{
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: b.seq,
		FirstTimestamp: b.op.Timestamp, Records: recs,
	})
	b.op.Bytes = len(b.data)
}

func (p *producer) request(topic string, partition int32, data []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = p.version(3, 11)
	req.Acks = p.acks
	req.TimeoutMillis = p.w.cfg.ProduceTimeoutMs
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = data
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// result extracts the one partition's answer of a produce response.
func produceResult(r reply) (kmsg.ProduceResponseTopicPartition, bool) {
	resp, ok := r.resp.(*kmsg.ProduceResponse)
	if !ok || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return kmsg.ProduceResponseTopicPartition{}, false
	}
	return resp.Topics[0].Partitions[0], true
}

// refused lists the produce errors Weir (as Kafka) returns before
// appending anything: the batch cannot have been written.
func refused(code int16) bool {
	switch kerr.ErrorForCode(code) {
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.InvalidRequiredAcks,
		kerr.CorruptMessage, kerr.InvalidRecord, kerr.OutOfOrderSequenceNumber,
		kerr.InvalidProducerEpoch, kerr.InvalidTxnState, kerr.MessageTooLarge,
		kerr.InvalidTimestamp, kerr.RecordListTooLarge:
		return true
	}
	return false
}

// produce sends one batch to its partition's leader.
func (p *producer) produce(t target, data []byte, done func(reply)) {
	p.send(t, func(int32) kmsg.Request { return p.request(t.topic, t.partition, data) }, p.acks == 0, func(r reply) {
		if res, ok := produceResult(r); r.err == nil && ok {
			p.staleOn(t, res.ErrorCode)
		}
		done(r)
	})
}

// full reports whether a perConn slot may take no more requests.
func (p *producer) full(slot int) bool { return slot > 0 && p.perConn[slot] >= p.maxInFlight }

// slot is the perConn slot of a partition's requests now.
func (p *producer) slot(topic string, partition int32) int {
	if rt, ok := p.cached(p.w.target(topic, partition)); ok {
		return rt.node + 1
	}
	return 0
}

func (p *producer) sendPlain(b *batch) {
	op := b.op
	p.inFlight++
	b.slot = p.slot(op.Topic, op.Partition)
	p.perConn[b.slot]++
	p.produce(p.w.target(op.Topic, op.Partition), b.data, func(r reply) {
		p.inFlight--
		p.perConn[b.slot]--
		now := p.w.Loop.Now()
		if p.acks == 0 {
			if errors.Is(r.err, errNotSent) {
				op.Outcome, op.Return = history.Failed, now
			}
			op.Err = "acks=0: no answer"
			return
		}
		res, ok := produceResult(r)
		switch {
		case errors.Is(r.err, errNotSent):
			op.Outcome, op.Return, op.Err = history.Failed, now, r.err.Error()
		case r.err != nil:
			op.Err = r.err.Error()
		case !ok:
			p.w.fail("protocol", fmt.Sprintf("%s: produce response does not answer its one partition", p.name))
			return
		case res.ErrorCode == 0:
			op.Outcome, op.Return, op.Offset = history.OK, now, res.BaseOffset
		case refused(res.ErrorCode):
			op.Outcome, op.Return, op.Err = history.Failed, now, kerr.ErrorForCode(res.ErrorCode).Error()
		default:
			op.Err = kerr.ErrorForCode(res.ErrorCode).Error()
		}
		p.w.trace("%s: produce %s[%d] %v -> %s offset %d %s", p.name, op.Topic, op.Partition, op.Values, op.Outcome, op.Offset, op.Err)
		p.w.History.EndProduce(op)
	})
}

// pump sends what an idempotent producer may send now.
func (p *producer) pump() {
	if !p.idem || p.w.stopped {
		return
	}
	if p.needBump || p.pid < 0 {
		if p.inFlight == 0 && !p.initing {
			p.initProducerID()
		}
		return
	}
	for _, pp := range p.parts {
		if pp.gone {
			if pp.inFlight == 0 {
				p.abandon(pp)
			}
			continue
		}
		if pp.blocked {
			if pp.inFlight > 0 {
				continue
			}
			pp.blocked = false
			if pp.lostState {
				pp.lostState, p.needBump = false, true
				p.pump()
				return
			}
		}
		slot := p.slot(pp.topic, pp.partition)
		for _, b := range pp.queue {
			if p.full(slot) {
				if !p.routed() {
					return // one connection: nothing else can go
				}
				break
			}
			if !b.sent {
				p.sendIdem(pp, b)
			}
		}
	}
}

func (p *producer) initProducerID() {
	p.initing = true
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = p.version(0, 4)
	if p.needBump && req.Version >= 3 {
		// KIP-360: bump our own epoch.
		req.ProducerID, req.ProducerEpoch = p.pid, p.epoch
	}
	p.any(req, func(r reply) {
		p.initing = false
		resp, ok := r.resp.(*kmsg.InitProducerIDResponse)
		if r.err != nil || !ok || resp.ErrorCode != 0 {
			p.w.Loop.After(p.backoff(), p.pump)
			return
		}
		p.w.trace("%s: producer id %d epoch %d (was %d/%d)", p.name, resp.ProducerID, resp.ProducerEpoch, p.pid, p.epoch)
		renumber := p.needBump || resp.ProducerID != p.pid
		p.pid, p.epoch, p.needBump = resp.ProducerID, resp.ProducerEpoch, false
		for _, pp := range p.parts {
			if renumber {
				p.renumber(pp)
			}
			for _, b := range pp.queue {
				p.build(b, p.pid, p.epoch)
			}
		}
		p.pump()
	})
}

// renumber starts a partition at sequence 0 under a new epoch or id. A
// batch that may already be in the log under the old one cannot be sent
// again without risking a duplicate, so, as Kafka's producer fails such
// batches to the application, it is given up with its outcome unknown.
// That the broker has no state for the producer does not mean it never
// appended them: retention may have removed them, and the state with
// them, before the acknowledgment arrived (cluster seeds 660, 815).
func (p *producer) renumber(pp *ppart) {
	kept := pp.queue[:0]
	for _, b := range pp.queue {
		if b.maybe {
			p.w.trace("%s: gives up %s[%d] %v across the epoch bump", p.name, pp.topic, pp.partition, b.op.Values)
			p.w.History.EndProduce(b.op)
			continue
		}
		kept = append(kept, b)
	}
	pp.queue, pp.seq = kept, 0
	for _, b := range pp.queue {
		b.seq, b.maybe = pp.seq, false
		pp.seq += int32(len(b.op.Values))
	}
}

func (p *producer) backoff() sched.Time {
	return p.rnd.Range(10*sched.Millisecond, 200*sched.Millisecond)
}

func (p *producer) sendIdem(pp *ppart, b *batch) {
	if b.data == nil {
		p.build(b, p.pid, p.epoch)
	}
	b.sent = true
	pp.inFlight++
	p.inFlight++
	b.slot = p.slot(pp.topic, pp.partition)
	p.perConn[b.slot]++
	epoch, pid := p.epoch, p.pid
	p.produce(p.w.target(pp.topic, pp.partition), b.data, func(r reply) {
		b.sent = false
		pp.inFlight--
		p.inFlight--
		p.perConn[b.slot]--
		p.idemResult(pp, b, r, pid, epoch)
		p.pump()
	})
}

func (p *producer) idemResult(pp *ppart, b *batch, r reply, pid int64, epoch int16) {
	op := b.op
	if r.err != nil {
		if !errors.Is(r.err, errNotSent) {
			b.maybe = true
		}
		pp.blocked = true
		if (errors.Is(r.err, errNoRoute) || errors.Is(r.err, errExpired)) && p.w.gone(pp.topic, pp.partition) {
			pp.gone = true // no broker will ever lead it
		}
		return
	}
	res, ok := produceResult(r)
	if !ok {
		p.w.fail("protocol", fmt.Sprintf("%s: produce response does not answer its one partition", p.name))
		return
	}
	if res.ErrorCode == 0 {
		op.Outcome, op.Return, op.Offset = history.OK, p.w.Loop.Now(), res.BaseOffset
		p.w.trace("%s: produce %s[%d] seq %d %v -> offset %d", p.name, op.Topic, op.Partition, b.seq, op.Values, op.Offset)
		for i, q := range pp.queue {
			if q == b {
				pp.queue = append(pp.queue[:i], pp.queue[i+1:]...)
				break
			}
		}
		p.w.History.EndProduce(op)
		return
	}
	err := kerr.ErrorForCode(res.ErrorCode)
	op.Err = err.Error()
	p.w.trace("%s: produce %s[%d] seq %d: %v", p.name, op.Topic, op.Partition, b.seq, err)
	if !refused(res.ErrorCode) {
		b.maybe = true
	}
	pp.blocked = true
	switch err {
	case kerr.UnknownTopicOrPartition:
		if p.w.gone(pp.topic, pp.partition) {
			pp.gone = true
		}
	case kerr.OutOfOrderSequenceNumber, kerr.UnknownProducerID:
		// For the oldest unacked batch the broker has no state for us:
		// start a new epoch (KIP-360) once the partition is quiet.
		if len(pp.queue) > 0 && pp.queue[0] == b && pid == p.pid && epoch == p.epoch {
			pp.lostState = true
		}
	case kerr.InvalidProducerEpoch, kerr.ProducerFenced:
		if pid == p.pid && epoch == p.epoch {
			p.needBump = true
		}
	}
}

// abandon drops a vanished partition's batches: their outcome stays unknown
// if an attempt may have landed, else they failed.
func (p *producer) abandon(pp *ppart) {
	for _, b := range pp.queue {
		if !b.maybe {
			b.op.Outcome, b.op.Return = history.Failed, p.w.Loop.Now()
		}
		p.w.History.EndProduce(b.op)
	}
	pp.queue = nil
}

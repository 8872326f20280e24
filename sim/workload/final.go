package workload

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/record"
	"github.com/weirmq/weir/sim/history"
	"github.com/weirmq/weir/sim/sched"
)

// final is the heal phase's client: it reads the metadata, proves every
// partition writable and readable (liveness), then reads everything back
// from the start (the final check's input).
type final struct {
	*router
	topics []history.FinalTopic
	probes int // values written by probes so far
	// round counts the prober's passes; callbacks of an abandoned pass
	// see a newer round and stop.
	round int
}

// metadata reads the topics until it succeeds.
func (f *final) metadata(done func()) {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = f.version(10, 12)
	f.any(req, func(r reply) {
		resp, ok := r.resp.(*kmsg.MetadataResponse)
		if r.err != nil || !ok {
			f.w.Loop.After(100*sched.Millisecond, func() { f.metadata(done) })
			return
		}
		f.learn(resp)
		f.topics = f.topics[:0]
		for _, mt := range resp.Topics {
			if mt.Topic == nil || f.w.cfg.ForeignPrefix != "" && strings.HasPrefix(*mt.Topic, f.w.cfg.ForeignPrefix) {
				continue
			}
			if mt.IsInternal {
				// __consumer_offsets takes no produce from clients; the
				// group members' commits and the group checker cover it.
				continue
			}
			if mt.ErrorCode != 0 {
				// KAFKA_STORAGE_ERROR and the like: not ready yet.
				f.w.Loop.After(100*sched.Millisecond, func() { f.metadata(done) })
				return
			}
			f.topics = append(f.topics, history.FinalTopic{Name: *mt.Topic, ID: mt.TopicID, Partitions: int32(len(mt.Partitions))})
		}
		sort.Slice(f.topics, func(i, j int) bool { return f.topics[i].Name < f.topics[j].Name })
		done()
	})
}

// Probe proves every partition of every topic accepts a write and serves
// it back, then calls done with the topics it found. It starts once the
// admin client has no operation in flight, so the set of topics it reads
// is the final one, except that an operation whose outcome the admin never
// learned (its connection dropped) may still take effect at the broker: a
// topic deleted under the prober makes it start over from a fresh listing.
func (w *World) Probe(done func(topics []history.FinalTopic)) {
	if w.admin != nil && w.admin.busy {
		w.Loop.After(10*sched.Millisecond, func() { w.Probe(done) })
		return
	}
	f := &final{router: newRouter(w, "prober")}
	w.prober = f
	f.pass(done)
}

// pass is one listing and probing of every partition.
func (f *final) pass(done func(topics []history.FinalTopic)) {
	f.round++
	round := f.round
	restart := func() {
		if round == f.round {
			f.round++ // abandon this pass's other probes
			f.w.Loop.After(100*sched.Millisecond, func() { f.pass(done) })
		}
	}
	f.metadata(func() {
		left := 0
		for _, t := range f.topics {
			left += int(t.Partitions)
		}
		if left == 0 {
			done(f.topics)
			return
		}
		for _, t := range f.topics {
			for p := range t.Partitions {
				f.probe(t, p, round, restart, func() {
					if left--; left == 0 && round == f.round {
						done(f.topics)
					}
				})
			}
		}
	})
}

// gone reports whether an error says the topic no longer exists.
func gone(code int16) bool {
	err := kerr.ErrorForCode(code)
	return err == kerr.UnknownTopicOrPartition || err == kerr.UnknownTopicID
}

// probe writes a fresh value to one partition with acks=-1 until it is
// acknowledged, then fetches it back.
func (f *final) probe(t history.FinalTopic, p int32, round int, restart, done func()) {
	if round != f.round {
		return
	}
	f.probes++
	value := "probe-" + strconv.Itoa(f.probes)
	op := &history.Produce{
		Client: f.idx, Producer: f.name, Acks: -1, Topic: t.Name, Partition: p,
		Values: []string{value}, Timestamp: f.w.timestampMs(),
	}
	data := record.Build(record.BuildSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, FirstTimestamp: op.Timestamp,
		Records: []record.BuildRecord{{Value: []byte(value)}}})
	op.Bytes = len(data)
	f.w.History.StartProduce(op)
	op.Call = f.w.Loop.Now()
	tg := target{topic: t.Name, id: t.ID, partition: p}
	f.send(tg, func(int32) kmsg.Request {
		req := kmsg.NewPtrProduceRequest()
		req.Version = f.version(3, 11)
		req.Acks, req.TimeoutMillis = -1, f.w.cfg.ProduceTimeoutMs
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = t.Name
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, data
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}, false, func(r reply) {
		res, ok := produceResult(r)
		if r.err == nil && ok {
			f.staleOn(tg, res.ErrorCode)
		}
		if r.err == nil && ok && res.ErrorCode == 0 {
			op.Outcome, op.Return, op.Offset = history.OK, f.w.Loop.Now(), res.BaseOffset
			f.w.History.EndProduce(op)
			f.w.trace("prober: %s[%d] writable at offset %d", t.Name, p, op.Offset)
			f.readBack(t, p, op.Offset, value, round, restart, done)
			return
		}
		if r.err == nil && ok && refused(res.ErrorCode) {
			op.Outcome, op.Return = history.Failed, f.w.Loop.Now()
		}
		if r.err == nil && ok && gone(res.ErrorCode) || errors.Is(r.err, errNoRoute) && !f.knows(t.Name, t.ID) {
			restart()
			return
		}
		f.w.Loop.After(100*sched.Millisecond, func() { f.probe(t, p, round, restart, done) })
	})
}

func (f *final) readBack(t history.FinalTopic, p int32, offset int64, value string, round int, restart, done func()) {
	if round != f.round {
		return
	}
	part := fetchPart{topic: t.Name, id: t.ID, partition: p, offset: offset, maxBytes: 1 << 20}
	f.fetchOne(part, false, func(op *history.Fetch) {
		if op != nil && op.ErrCode == 0 && len(op.Records) > 0 && op.Records[0].Value == value {
			f.w.trace("prober: %s[%d] readable at offset %d", t.Name, p, offset)
			done()
			return
		}
		if op != nil && gone(op.ErrCode) || op == nil && !f.knows(t.Name, t.ID) {
			restart()
			return
		}
		f.w.Loop.After(100*sched.Millisecond, func() { f.readBack(t, p, offset, value, round, restart, done) })
	})
}

// fetchOne fetches one partition (sessionless, by topic id) and records
// the result; done gets nil if there was none.
func (f *final) fetchOne(part fetchPart, final bool, done func(*history.Fetch)) {
	v := f.version(13, 16)
	tg := f.w.fetchTarget(part, v)
	call := f.w.Loop.Now()
	f.send(tg, func(epoch int32) kmsg.Request {
		part.epoch = epoch
		req := newFetch(v, []fetchPart{part})
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, 1<<20
		req.SessionID, req.SessionEpoch = 0, -1
		return req
	}, false, func(r reply) {
		if r.err != nil {
			done(nil)
			return
		}
		resp := r.resp.(*kmsg.FetchResponse)
		for _, fp := range fetchedParts(resp, 1<<20) {
			if !fp.matches(part, true) {
				continue
			}
			op, ok := f.w.fetchOp(f.router, part, fp, true, call, r.flipped, final)
			if !ok {
				break
			}
			f.staleOn(tg, op.ErrCode)
			f.w.History.AddFetch(op)
			done(op)
			return
		}
		done(nil)
	})
}

// FinalRead reads every partition of topics from its log start to its high
// watermark with a fresh client; done runs when all are read.
func (w *World) FinalRead(topics []history.FinalTopic, done func()) {
	f := &final{router: newRouter(w, "final-reader"), topics: topics}
	left := 0
	for _, t := range topics {
		left += int(t.Partitions)
	}
	if left == 0 {
		done()
		return
	}
	for _, t := range topics {
		for p := range t.Partitions {
			part := fetchPart{topic: t.Name, id: t.ID, partition: p, offset: 0, maxBytes: 1 << 20}
			f.readAll(part, func() {
				if left--; left == 0 {
					done()
				}
			})
		}
	}
}

// readAll reads one partition to its high watermark. It starts at offset
// 0: an OFFSET_OUT_OF_RANGE answer carries the log start to go on from.
func (f *final) readAll(part fetchPart, done func()) {
	f.fetchOne(part, true, func(op *history.Fetch) {
		switch {
		case op == nil:
		case op.ErrCode == kerr.OffsetOutOfRange.Code && op.LogStart > part.offset:
			part.offset = op.LogStart
		case op.ErrCode != 0:
		case len(op.Records) > 0:
			part.offset = op.Records[len(op.Records)-1].Offset + 1
		case part.offset >= op.HW:
			f.w.trace("final-reader: %s[%d] read to %d", part.topic, part.partition, part.offset)
			done()
			return
		default:
			f.w.fail("final", fmt.Sprintf("final read of %s[%d] at %d below high watermark %d returned nothing", part.topic, part.partition, part.offset, op.HW))
			return
		}
		f.w.Loop.After(sched.Millisecond, func() { f.readAll(part, done) })
	})
}

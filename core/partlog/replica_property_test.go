package partlog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/weirmq/weir/core/record"
)

// TestReplicationCrashProperties runs a random mix of leader appends,
// follower appends, truncations, resets, sync rounds and disk operations,
// with crashes at any operation boundary: process crashes, which keep the
// page cache, and machine crashes, which keep what was synced and any part
// of what was not. After each crash the recovered log must be one a model
// allows: every batch that was durable and not cut since is at its offset,
// nothing cut reappears (the log is a prefix of the model's log, or of the
// log before a cut that had not reached the disk), and its epoch cache and
// producer state are those rebuilt from its batches. Between crashes the
// live log keeps its offsets in order and its state equal to a rebuild,
// and whenever the disk has caught up, the files hold what it says.
func TestReplicationCrashProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := testConfig()
		cfg.SegmentBytes = rapid.Int64Range(300, 3000).Draw(t, "segmentBytes")
		cfg.IndexIntervalBytes = rapid.Int64Range(0, 600).Draw(t, "indexInterval")
		cfg.SegmentMs = rapid.SampledFrom([]int64{cfg.SegmentMs, 5000}).Draw(t, "segmentMs")
		m := newCrashModel(t, cfg)
		for range rapid.IntRange(20, 200).Draw(t, "steps") {
			switch action := rapid.IntRange(0, 19).Draw(t, "action"); {
			case action < 5:
				m.leaderAppend()
			case action < 10:
				m.replicaAppend()
			case action < 12:
				m.truncate()
			case action < 13:
				m.reset()
			case action < 15:
				m.issue(m.l.MaybeSync(0))
			case action < 18:
				m.run(rapid.IntRange(0, len(m.queue)).Draw(t, "ops"))
			case action < 19:
				m.crash(rapid.Bool().Draw(t, "machine"))
			default: // the disk catches up
				m.run(len(m.queue))
				m.issue(m.l.MaybeSync(0))
				m.run(len(m.queue))
			}
			m.check()
		}
		m.crash(true)
	})
}

// modelLog is a log's content: the stored bytes of its batches, which
// follow each other from start.
type modelLog struct {
	start   int64
	batches [][]byte
}

func (v modelLog) end() int64 {
	if len(v.batches) == 0 {
		return v.start
	}
	h, _ := record.ParseHeader(v.batches[len(v.batches)-1])
	return h.LastOffset() + 1
}

func (v modelLog) clone() modelLog {
	return modelLog{start: v.start, batches: slices.Clone(v.batches)}
}

// hasPrefix reports whether w is v or v with batches missing at the end.
func (v modelLog) hasPrefix(w modelLog) bool {
	return v.start == w.start && len(w.batches) <= len(v.batches) &&
		slices.EqualFunc(w.batches, v.batches[:len(w.batches)], bytes.Equal)
}

// pendingCut is a truncation or reset whose operations have not all run:
// until they have, a crash may find the log as it was before it.
type pendingCut struct {
	settledAt int // the number of operations run once it is on disk
	before    modelLog
	// reset: a crash may also find no segment at all (see ResetTo).
	reset bool
}

type crashModel struct {
	t   *rapid.T
	cfg Config
	d   *memDisk
	l   *Log
	// queue holds the operations emitted and not yet run, in lane order;
	// ran counts the operations run since the start, and emitted those
	// run or in the queue.
	queue        []Op
	ran, emitted int
	log          modelLog
	// required: every batch of log ending below it was durable and has
	// not been cut since, so a crash must keep it.
	required int64
	pending  []pendingCut
	nowMs    int64
	nextID   int
}

func newCrashModel(t *rapid.T, cfg Config) *crashModel {
	m := &crashModel{t: t, cfg: cfg, d: newMemDisk(), nowMs: 1_000_000}
	l, ops := New(dir, cfg)
	m.l = l
	m.issue(ops)
	return m
}

func (m *crashModel) issue(ops []Op) {
	m.queue = append(m.queue, ops...)
	m.emitted += len(ops)
}

// run carries out the next n operations, as the driver would.
func (m *crashModel) run(n int) {
	for _, op := range m.queue[:n] {
		m.d.apply([]Op{op})
		m.l.Completed(op.Completion)
		m.ran++
		m.required = max(m.required, m.l.DurableOffset())
	}
	m.queue = m.queue[n:]
	m.pending = slices.DeleteFunc(m.pending, func(c pendingCut) bool { return c.settledAt <= m.ran })
}

// newBatch draws a batch whose bytes no other batch has.
func (m *crashModel) newBatch(pid int64, seq int32, ts int64) record.BuildSpec {
	m.nextID++
	spec := records(pid, seq, rapid.IntRange(1, 4).Draw(m.t, "records"), 0, ts)
	for i := range spec.Records {
		spec.Records[i].Value = fmt.Appendf(nil, "%d/%d%s", m.nextID, i, make([]byte, rapid.IntRange(0, 200).Draw(m.t, "valueSize")))
		spec.Records[i].TimestampDelta = int64(rapid.IntRange(0, 50).Draw(m.t, "tsDelta"))
	}
	return spec
}

func (m *crashModel) leaderAppend() {
	t := m.t
	m.nowMs += int64(rapid.IntRange(0, 100).Draw(t, "clockStep"))
	pid := rapid.SampledFrom([]int64{-1, 1, 2}).Draw(t, "pid")
	seq := int32(-1)
	if pid >= 0 {
		next := int32(0)
		if e := m.l.producers.byID[pid]; e != nil {
			next = nextSeq(e.lastSeq())
		}
		// The next sequence number, a retry of one of the last two, or a gap.
		seq = max(0, next-int32(rapid.IntRange(-1, 2).Draw(t, "seqBack")))
	}
	b := record.Build(m.newBatch(pid, seq, m.nowMs))
	h, err := record.Validate(b, 1<<20, m.nowMs, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	epoch := max(m.l.LatestEpoch(), 0) + int32(rapid.IntRange(0, 1).Draw(t, "epochStep"))
	end := m.l.EndOffset()
	res, err := m.l.Append(b, h, epoch, m.nowMs, rapid.Bool().Draw(t, "logAppendTime"))
	if err != nil || res.Duplicate {
		if m.l.EndOffset() != end || res.Ops != nil {
			t.Fatalf("a refused or duplicate append changed the log: %v", err)
		}
		return
	}
	m.appended(b, res)
}

func (m *crashModel) replicaAppend() {
	t := m.t
	pid := rapid.SampledFrom([]int64{-1, 1, 3}).Draw(t, "pid")
	seq := int32(rapid.IntRange(0, 30).Draw(t, "seq")) // a follower takes any
	ts := int64(rapid.IntRange(1_000_000, 1_010_000).Draw(t, "ts"))
	base, epoch := m.l.EndOffset(), max(m.l.LatestEpoch(), 0)+int32(rapid.IntRange(0, 2).Draw(t, "epochStep"))
	bad := rapid.IntRange(0, 9).Draw(t, "bad")
	switch {
	case bad == 0:
		base++
	case bad == 1 && m.l.LatestEpoch() > 0:
		epoch = m.l.LatestEpoch() - 1
	default:
		bad = -1
	}
	b, h := leaderBatch(t, base, epoch, m.newBatch(pid, seq, ts))
	res, err := m.l.AppendReplica(b, h)
	switch {
	case bad >= 0 && (err == nil || m.l.EndOffset() != m.log.end()):
		t.Fatalf("a bad replica batch (%d) was taken: %v", bad, err)
	case bad < 0 && err != nil:
		t.Fatal(err)
	case bad < 0:
		m.appended(b, res)
	}
}

func (m *crashModel) appended(b []byte, res AppendResult) {
	if res.Base != m.log.end() {
		m.t.Fatalf("appended at %d, log end %d", res.Base, m.log.end())
	}
	m.log.batches = append(m.log.batches, slices.Clone(b))
	m.issue(res.Ops)
}

func (m *crashModel) truncate() {
	offset := rapid.Int64Range(m.log.start-2, m.log.end()+2).Draw(m.t, "truncateTo")
	if len(m.l.segs) > 0 && rapid.Bool().Draw(m.t, "atSegment") {
		// A cut at a segment boundary removes segments that begin where
		// the kept log ends: the riskiest for a crash to bring back.
		offset = rapid.SampledFrom(m.l.segs).Draw(m.t, "segment").base
	}
	before := m.log.clone()
	newEnd, ops := m.l.TruncateTo(offset)
	keep := 0
	for keep < len(m.log.batches) && lastOffset(m.log.batches[keep]) < offset {
		keep++
	}
	m.log.batches = m.log.batches[:keep]
	if newEnd != m.log.end() {
		m.t.Fatalf("TruncateTo(%d) = %d, want %d", offset, newEnd, m.log.end())
	}
	m.cut(pendingCut{before: before}, ops)
}

func (m *crashModel) reset() {
	offset := rapid.Int64Range(0, m.log.end()+100).Draw(m.t, "resetTo")
	before := m.log.clone()
	ops := m.l.ResetTo(offset)
	m.log = modelLog{start: offset}
	m.cut(pendingCut{before: before, reset: true}, ops)
}

// cut notes a truncation or reset, which left the model's log shorter.
func (m *crashModel) cut(c pendingCut, ops []Op) {
	m.required = min(m.required, m.log.end())
	if len(ops) > 0 {
		m.issue(ops)
		c.settledAt = m.emitted
		m.pending = append(m.pending, c)
	}
}

func lastOffset(b []byte) int64 {
	h, _ := record.ParseHeader(b)
	return h.LastOffset()
}

// crash drops the operations not yet run and recovers the log.
func (m *crashModel) crash(machine bool) {
	m.queue, m.emitted = nil, m.ran
	if machine {
		seed := rapid.Uint64().Draw(m.t, "crashSeed")
		m.d.crash(rand.New(rand.NewPCG(seed, seed)))
	}
	r, repairs, err := Open(m.d, dir, m.cfg)
	if err != nil {
		m.t.Fatal(err)
	}
	got := m.readBack(r)
	allowed := []modelLog{m.log}
	for _, c := range m.pending {
		allowed = append(allowed, c.before)
	}
	resetGone := len(r.segs) == 0 && slices.ContainsFunc(m.pending, func(c pendingCut) bool { return c.reset })
	if !resetGone && !slices.ContainsFunc(allowed, func(v modelLog) bool { return v.hasPrefix(got) }) {
		m.t.Fatalf("recovered %d batches from %d: not the log (from %d) or a prefix of it, nor of the log before a pending cut",
			len(got.batches), got.start, m.log.start)
	}
	for i, b := range m.log.batches {
		if lastOffset(b) < m.required && (got.start != m.log.start || i >= len(got.batches)) {
			m.t.Fatalf("recovery lost the durable batch ending at %d", lastOffset(b))
		}
	}
	// What was durable is still durable, in so far as it is the same log.
	if m.log.hasPrefix(got) {
		m.required = min(m.required, got.end())
	} else {
		m.required = got.start
	}
	m.l, m.log = r, got
	m.checkRebuilt("recovered")
	// The driver issues the repairs and recovery's sync round before
	// anything else.
	m.issue(repairs)
	m.issue(r.MaybeSync(0))
	if machine {
		m.pending = nil // a machine crash settled the disk: nothing is pending
	} else {
		// The page cache kept the cuts that had run, and the disk may
		// still undo them until recovery's sync round has synced every
		// .log and the directory.
		for i := range m.pending {
			m.pending[i].settledAt = m.emitted
		}
	}
}

// readBack reads the batches a recovered log holds from the disk.
func (m *crashModel) readBack(r *Log) modelLog {
	v := modelLog{start: r.StartOffset()}
	for _, s := range r.segs {
		data := m.d.files[r.path(s.base, ".log")].data
		for _, b := range s.batches {
			v.batches = append(v.batches, slices.Clone(data[b.pos:b.pos+b.size]))
		}
	}
	return v
}

// checkRebuilt compares the log's epoch cache and producer state with
// those rebuilt from the model's batches.
func (m *crashModel) checkRebuilt(what string) {
	var epochs []epochStart
	ps := newProducers()
	for _, b := range m.log.batches {
		h, _ := record.ParseHeader(b)
		if e := h.PartitionLeaderEpoch; e >= 0 && (len(epochs) == 0 || e > epochs[len(epochs)-1].epoch) {
			epochs = append(epochs, epochStart{epoch: e, start: h.BaseOffset})
		}
		ps.record(producerBatchOf(h), h.BaseOffset, h.LastOffset())
	}
	if !slices.Equal(m.l.epochs, epochs) {
		m.t.Fatalf("%s: epochs %v, rebuilt %v", what, m.l.epochs, epochs)
	}
	if !reflect.DeepEqual(m.l.producers, ps) {
		m.t.Fatalf("%s: producer state differs from the rebuilt one", what)
	}
}

// check tests the live log against the model after every step.
func (m *crashModel) check() {
	l := m.l
	if !(l.StartOffset() <= l.DurableOffset() && l.DurableOffset() <= l.WrittenOffset() && l.WrittenOffset() <= l.EndOffset()) {
		m.t.Fatalf("offsets out of order: start %d durable %d written %d end %d", l.StartOffset(), l.DurableOffset(), l.WrittenOffset(), l.EndOffset())
	}
	for _, e := range l.writeEnds {
		if e < l.WrittenOffset() || e > l.EndOffset() {
			m.t.Fatalf("write in flight ends at %d, outside [%d, %d]", e, l.WrittenOffset(), l.EndOffset())
		}
	}
	if l.StartOffset() != m.log.start || l.EndOffset() != m.log.end() {
		m.t.Fatalf("log %d-%d, model %d-%d", l.StartOffset(), l.EndOffset(), m.log.start, m.log.end())
	}
	m.checkRebuilt("live")
	if len(m.queue) > 0 {
		return
	}
	// The disk has caught up: it holds what the log says.
	i := 0
	for _, s := range l.segs {
		var want []byte
		for range s.batches {
			want = append(want, m.log.batches[i]...)
			i++
		}
		if got := m.d.files[l.path(s.base, ".log")]; got == nil || !bytes.Equal(got.data, want) {
			m.t.Fatalf("segment %d: the .log does not hold its batches", s.base)
		}
	}
	if seg := l.active(); seg != nil {
		replay := &segment{base: seg.base, lastIndexedTs: -1}
		var idx, tidx []byte
		for _, b := range seg.batches {
			i, t := l.advanceIndex(replay, b.last, b.pos, b.size, b.maxTimestamp)
			idx, tidx = append(idx, i...), append(tidx, t...)
		}
		if !bytes.Equal(m.d.files[l.path(seg.base, ".index")].data, idx) ||
			!bytes.Equal(m.d.files[l.path(seg.base, ".timeindex")].data, tidx) {
			m.t.Fatalf("active segment %d: indexes differ from those its batches give", seg.base)
		}
	}
}

package partlog

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weirmq/weir/core/record"
)

const dir = "t-0"

func testConfig() Config {
	return Config{SegmentBytes: 1 << 20, SegmentMs: 7 * 24 * 3600 * 1000, RetentionMs: -1, RetentionBytes: -1,
		IndexIntervalBytes: 4096, SegmentIndexBytes: 10 << 20, FlushMessages: 1, FlushMs: 1 << 62}
}

// tester is what batch builders need of a *testing.T or *rapid.T.
type tester interface {
	Helper()
	Fatal(args ...any)
}

func batch(t tester, n int, valueSize int, ts int64) ([]byte, record.Header) {
	return idemBatch(t, -1, -1, n, valueSize, ts)
}

func idemBatch(t tester, pid int64, seq int32, n int, valueSize int, ts int64) ([]byte, record.Header) {
	t.Helper()
	spec := record.BuildSpec{ProducerID: pid, ProducerEpoch: -1, BaseSequence: seq, FirstTimestamp: ts}
	if pid >= 0 {
		spec.ProducerEpoch = 0
	}
	for i := 0; i < n; i++ {
		spec.Records = append(spec.Records, record.BuildRecord{Value: make([]byte, valueSize)})
	}
	b := record.Build(spec)
	h, err := record.Validate(b, 1<<20, ts, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	return b, h
}

// appendSynced appends and runs the disk and a sync round to completion.
func appendSynced(t *testing.T, d *memDisk, l *Log, b []byte, h record.Header, ts int64) AppendResult {
	t.Helper()
	res, err := l.Append(b, h, 0, ts, false)
	if err != nil {
		t.Fatal(err)
	}
	d.complete(l, res.Ops)
	d.complete(l, l.MaybeSync(0))
	return res
}

func TestAppendReadAndStability(t *testing.T) {
	d := newMemDisk()
	l, ops := New(dir, testConfig())
	d.apply(ops)
	b, h := batch(t, 3, 10, 1000)
	res, err := l.Append(b, h, 0, 1000, false)
	if err != nil || res.Base != 0 || res.Last != 2 {
		t.Fatalf("append: %+v %v", res, err)
	}
	if l.StableOffset() != 0 {
		t.Fatal("stable before the write and fsync completed")
	}
	d.complete(l, res.Ops)
	if l.StableOffset() != 0 || l.WrittenOffset() != 3 {
		t.Fatalf("after write: stable %d written %d", l.StableOffset(), l.WrittenOffset())
	}
	d.complete(l, l.MaybeSync(0))
	if l.StableOffset() != 3 {
		t.Fatalf("after sync: stable %d", l.StableOffset())
	}
	b2, h2 := batch(t, 2, 10, 1001)
	appendSynced(t, d, l, b2, h2, 1001)

	sl, err := l.Read(1, 1<<20, l.StableOffset(), true)
	if err != nil || sl.Pos != 0 || sl.Len != int64(len(b)+len(b2)) {
		t.Fatalf("read from 1: %+v %v", sl, err)
	}
	if sl, _ := l.Read(3, 1<<20, l.StableOffset(), true); sl.Pos != int64(len(b)) {
		t.Fatalf("read from 3 starts at %d", sl.Pos)
	}
	if sl, _ := l.Read(0, 1, l.StableOffset(), false); sl.Len != 0 {
		t.Fatal("maxBytes 1 without minOne must return nothing")
	}
	if sl, _ := l.Read(0, 1, l.StableOffset(), true); sl.Len != int64(len(b)) {
		t.Fatal("minOne must return the first batch whole (KIP-74)")
	}
	if sl, _ := l.Read(0, 1<<20, 3, true); sl.Len != int64(len(b)) {
		t.Fatal("a read must stop at limit")
	}
	if _, err := l.Read(6, 1<<20, 5, true); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("past the end: %v", err)
	}
	if sl, err := l.Read(5, 1<<20, 5, true); err != nil || sl.Len != 0 {
		t.Fatal("at the end: empty, no error")
	}
	got := d.files[sl.File].data[sl.Pos : sl.Pos+sl.Len]
	if hdr, _ := record.ParseHeader(got); hdr.BaseOffset != 0 {
		t.Fatalf("stored batch has base offset %d", hdr.BaseOffset)
	}
}

func TestRollIndexAndRetention(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 2000
	cfg.IndexIntervalBytes = 300
	cfg.RetentionBytes = 3000
	d := newMemDisk()
	l, ops := New(dir, cfg)
	d.apply(ops)
	for i := 0; i < 40; i++ {
		b, h := batch(t, 2, 100, int64(1000+i))
		appendSynced(t, d, l, b, h, int64(1000+i))
	}
	if len(l.segs) < 5 {
		t.Fatalf("only %d segments after 40 batches of ~270 bytes with segment.bytes 2000", len(l.segs))
	}
	for _, s := range l.segs {
		if s.size > cfg.SegmentBytes {
			t.Fatalf("segment %d is %d bytes", s.base, s.size)
		}
		idx := d.files[l.path(s.base, ".index")].data
		if int64(len(idx)) != s.indexEntries*8 || s.indexEntries == 0 && len(s.batches) > 2 {
			t.Fatalf("segment %d: index %d bytes for %d entries", s.base, len(idx), s.indexEntries)
		}
	}
	removed := l.ApplyRetention(0, math.MaxInt64)
	d.complete(l, removed)
	if l.Size() > cfg.RetentionBytes+cfg.SegmentBytes || len(removed) == 0 {
		t.Fatalf("size %d after retention", l.Size())
	}
	if l.StartOffset() != l.segs[0].base {
		t.Fatal("start offset is not the first segment's base")
	}
	if _, err := l.Read(0, 100, l.StableOffset(), true); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatal("a deleted offset must be out of range")
	}
	for p := range d.files {
		if _, ext, _ := parseSegmentName(p[len(dir)+1:]); ext == ".log" {
			if base, _, _ := parseSegmentName(p[len(dir)+1:]); base < l.StartOffset() {
				t.Fatalf("%s survived retention", p)
			}
		}
	}
}

func TestRetentionByTimeKeepsActive(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 500
	cfg.RetentionMs = 1000
	d := newMemDisk()
	l, ops := New(dir, cfg)
	d.apply(ops)
	for i := 0; i < 10; i++ {
		b, h := batch(t, 1, 200, 1000)
		appendSynced(t, d, l, b, h, 1000)
	}
	d.complete(l, l.ApplyRetention(1_000_000, math.MaxInt64))
	if len(l.segs) != 1 || l.StartOffset() != l.EndOffset()-int64(len(l.segs[0].batches)) {
		t.Fatalf("retention left %d segments, start %d end %d", len(l.segs), l.StartOffset(), l.EndOffset())
	}
}

func TestGroupCommit(t *testing.T) {
	d := newMemDisk()
	l, ops := New(dir, testConfig())
	d.apply(ops)
	b1, h1 := batch(t, 1, 10, 1)
	r1, _ := l.Append(b1, h1, 0, 1, false)
	d.complete(l, r1.Ops)
	round1 := l.MaybeSync(0)
	// Appends during the round wait for the next one, which starts only
	// when the first ends: one fsync in flight per log.
	b2, h2 := batch(t, 1, 10, 2)
	r2, _ := l.Append(b2, h2, 0, 2, false)
	d.complete(l, r2.Ops)
	if l.MaybeSync(0) != nil {
		t.Fatal("a second sync round started while one was in flight")
	}
	d.complete(l, round1)
	if l.StableOffset() != 1 {
		t.Fatalf("stable %d after the first round, want 1", l.StableOffset())
	}
	d.complete(l, l.MaybeSync(0))
	if l.StableOffset() != 2 {
		t.Fatalf("stable %d after the second round, want 2", l.StableOffset())
	}
}

func TestPageCacheMode(t *testing.T) {
	cfg := testConfig()
	cfg.FlushMessages = 1 << 62
	d := newMemDisk()
	l, ops := New(dir, cfg)
	d.apply(ops)
	b, h := batch(t, 1, 10, 1)
	r, _ := l.Append(b, h, 0, 1, false)
	d.complete(l, r.Ops)
	if l.StableOffset() != 1 {
		t.Fatal("page-cache mode: a written batch is stable")
	}
	if l.MaybeSync(0) != nil {
		t.Fatal("page-cache mode with no flush deadline must not sync")
	}

	cfg.FlushMs = 50
	l.SetConfig(cfg)
	if l.MaybeSync(10e6) != nil || l.FlushDueMonoNs() != 60e6 {
		t.Fatalf("flush.ms 50 at 10 ms: due %d, want 60 ms", l.FlushDueMonoNs())
	}
	if l.MaybeSync(59e6) != nil {
		t.Fatal("synced before flush.ms passed")
	}
	ops = l.MaybeSync(60e6)
	if len(ops) == 0 || l.FlushDueMonoNs() != 0 {
		t.Fatal("no sync once flush.ms passed")
	}
	d.complete(l, ops)
	if l.DurableOffset() != 1 {
		t.Fatalf("durable %d after the flush", l.DurableOffset())
	}
}

func TestRecoveryTruncatesTornTail(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1000
	for cut := 1; cut < 300; cut += 37 {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			d := newMemDisk()
			l, ops := New(dir, cfg)
			d.apply(ops)
			var acked []AppendResult
			for i := 0; i < 12; i++ {
				b, h := idemBatch(t, 7, int32(i*2), 2, 60, 1000)
				acked = append(acked, appendSynced(t, d, l, b, h, 1000))
			}
			// A torn write: part of one more batch reached the disk.
			b, h := idemBatch(t, 7, 24, 2, 60, 1000)
			res, _ := l.Append(b, h, 0, 1000, false)
			d.apply(res.Ops)
			active := d.files[l.path(l.active().base, ".log")]
			active.data = active.data[:int64(len(active.data))-int64(len(b))+int64(min(cut, len(b)-1))]

			r, repairs, err := Open(d, dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			d.complete(r, repairs)
			d.complete(r, r.MaybeSync(0))
			if r.EndOffset() != 24 || r.StableOffset() != 24 {
				t.Fatalf("recovered end %d stable %d, want 24", r.EndOffset(), r.StableOffset())
			}
			for _, a := range acked {
				sl, err := r.Read(a.Base, 1<<20, r.StableOffset(), true)
				if err != nil {
					t.Fatal(err)
				}
				hdr, _ := record.ParseHeader(d.files[sl.File].data[sl.Pos:])
				if hdr.BaseOffset != a.Base {
					t.Fatalf("offset %d reads batch %d", a.Base, hdr.BaseOffset)
				}
			}
			// Idempotence state survived: the torn batch's retry is new,
			// an acknowledged batch's retry is a duplicate.
			b, h = idemBatch(t, 7, 22, 2, 60, 1000)
			if dup, err := r.Append(b, h, 0, 1000, false); err != nil || !dup.Duplicate || dup.Base != 22 {
				t.Fatalf("retry of the last acknowledged batch: %+v %v", dup, err)
			}
			b, h = idemBatch(t, 7, 24, 2, 60, 1000)
			if res, err := r.Append(b, h, 0, 1000, false); err != nil || res.Duplicate || res.Base != 24 {
				t.Fatalf("retry of the torn batch: %+v %v", res, err)
			}
			if len(d.files[r.path(r.active().base, ".index")].data) != int(r.active().indexEntries*8) {
				t.Fatal("active index not rebuilt")
			}
		})
	}
}

func TestIdempotence(t *testing.T) {
	d := newMemDisk()
	l, ops := New(dir, testConfig())
	d.apply(ops)
	b, h := idemBatch(t, 1, 0, 3, 10, 1)
	appendSynced(t, d, l, b, h, 1)
	for _, tc := range []struct {
		seq  int32
		want error
	}{
		{5, kerr.OutOfOrderSequenceNumber}, // gap
		{0, nil},                           // duplicate of the first batch
		{3, nil},                           // next
	} {
		b, h := idemBatch(t, 1, tc.seq, 3, 10, 1)
		if _, err := l.Append(b, h, 0, 1, false); !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
			t.Fatalf("seq %d: %v, want %v", tc.seq, err, tc.want)
		}
	}
	// A stale epoch is fenced; a new epoch must start at sequence 0.
	b, h = idemBatch(t, 1, 6, 1, 10, 1)
	h.ProducerEpoch = -1
	if _, err := l.Append(b, h, 0, 1, false); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("stale epoch: %v", err)
	}
	h.ProducerEpoch = 1
	if _, err := l.Append(b, h, 0, 1, false); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("new epoch not at 0: %v", err)
	}
	// Unknown producers must start at 0.
	b, h = idemBatch(t, 99, 4, 1, 10, 1)
	if _, err := l.Append(b, h, 0, 1, false); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("unknown producer at 4: %v", err)
	}
}

// TestRemovedLogIsQuiet: once removed, a log emits no sync round or flush
// deadline, even with unsynced writes (seeds 13 and 35 found the broker
// fsyncing a deleted topic's files).
func TestRemovedLogIsQuiet(t *testing.T) {
	cfg := testConfig()
	cfg.FlushMessages, cfg.FlushMs = 1<<62, 10
	d := newMemDisk()
	l, ops := New(dir, cfg)
	d.apply(ops)
	b, h := batch(t, 1, 10, 1)
	res, _ := l.Append(b, h, 0, 1, false)
	d.complete(l, res.Ops)
	l.MaybeSync(0) // sets a flush.ms deadline
	l.Remove()
	if ops := l.MaybeSync(1e9); ops != nil || l.FlushDueMonoNs() != 0 {
		t.Fatalf("removed log still wants work: %d ops, flush due %d", len(ops), l.FlushDueMonoNs())
	}
}

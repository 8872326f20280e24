package disk_test

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/weirmq/weir/core/partlog"
	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/record"
	"github.com/weirmq/weir/sim/disk"
	"github.com/weirmq/weir/sim/fault"
	"github.com/weirmq/weir/sim/rng"
	"github.com/weirmq/weir/sim/sched"
	"github.com/weirmq/weir/sim/trace"
)

// logDriver runs one partition log against the simulated disk, as the
// broker would: it issues the log's operations and reports completions.
type logDriver struct {
	t    *rapid.T
	loop *sched.Loop
	d    *disk.Disk
	l    *partlog.Log
}

func (ld *logDriver) issue(ops []partlog.Op) {
	l := ld.l
	for _, op := range ops {
		ld.d.Submit(op.DiskOp, func(_ []byte, err error) {
			if err != nil {
				ld.t.Fatalf("%s %s: %v", op.Kind, op.Path, err)
			}
			if l == ld.l && op.Completion != partlog.NoCompletion {
				l.Completed(op.Completion)
			}
		})
	}
}

// run lets the disk work for a drawn while.
func (ld *logDriver) run(label string) {
	ld.loop.Run(ld.loop.Now()+rapid.Int64Range(0, 200*sched.Microsecond).Draw(ld.t, label), nil)
}

// TestRecoveryKeepsSynced: whatever the point at which a machine crash
// interrupts a sequence of appends and sync rounds — and a second crash
// interrupts the repairs of the first recovery — recovery finds a prefix
// of what was appended, and that prefix holds everything a completed sync
// round covered before the first crash.
func TestRecoveryKeepsSynced(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var loop sched.Loop
		var counts fault.Counts
		cfg := disk.Config{
			MinLatency: sched.Microsecond, MaxLatency: 50 * sched.Microsecond,
			KeepSector: rng.Ratio{Num: rapid.Uint64Range(0, 4).Draw(t, "keepSector"), Den: 4},
			KeepDirOps: rng.Ratio{Num: rapid.Uint64Range(0, 2).Draw(t, "keepDirOps"), Den: 2},
			Unexpected: func(msg string) { t.Fatalf("%s", msg) },
		}
		d := disk.New(&loop, rng.New(rapid.Uint64().Draw(t, "seed"), "disk"), cfg, &counts, trace.New(&loop, 0, nil))
		lcfg := partlog.Config{
			SegmentBytes:       rapid.Int64Range(100, 2000).Draw(t, "segmentBytes"),
			RetentionMs:        -1,
			RetentionBytes:     -1,
			IndexIntervalBytes: rapid.Int64Range(0, 512).Draw(t, "indexInterval"),
			SegmentIndexBytes:  1 << 20,
			FlushMessages:      1,
			FlushMs:            -1,
		}
		const dir = "t-0"
		l, ops := partlog.New(dir, lcfg)
		ld := &logDriver{t: t, loop: &loop, d: d, l: l}
		ld.issue(ops)

		var values []string // by offset
		for i := range rapid.IntRange(1, 40).Draw(t, "steps") {
			switch rapid.IntRange(0, 2).Draw(t, "action") {
			case 0:
				n := rapid.IntRange(1, 3).Draw(t, "records")
				recs := make([]record.BuildRecord, n)
				for j := range recs {
					v := fmt.Sprintf("v%d-%d", i, j)
					recs[j] = record.BuildRecord{Value: []byte(v)}
					values = append(values, v)
				}
				batch := record.Build(record.BuildSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs})
				c, err := record.Check(batch, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				res, err := l.Append(batch, c.Header, 0, 0, false)
				if err != nil {
					t.Fatal(err)
				}
				ld.issue(res.Ops)
			case 1:
				ld.issue(l.MaybeSync(loop.Now()))
			case 2:
				ld.run("work")
			}
		}
		synced := l.DurableOffset()
		d.Crash(true)

		// First recovery; its repairs and a sync round are themselves cut
		// short by a second crash.
		r1, repairs, err := partlog.Open(d.BootFS(), dir, lcfg)
		if err != nil {
			t.Fatal(err)
		}
		checkPrefix(t, d, r1, values, synced)
		ld.l = r1
		// As broker.Boot does: the directory first, then the repairs.
		ld.issue([]partlog.Op{{DiskOp: port.DiskOp{Kind: port.OpMkdir, Lane: dir, Path: dir}}})
		ld.issue(repairs)
		ld.issue(r1.MaybeSync(loop.Now()))
		ld.run("repair")
		d.Crash(true)

		r2, _, err := partlog.Open(d.BootFS(), dir, lcfg)
		if err != nil {
			t.Fatal(err)
		}
		checkPrefix(t, d, r2, values, synced)
	})
}

// checkPrefix reads the recovered log back and requires it to be values'
// prefix, at least synced long.
func checkPrefix(t *rapid.T, d *disk.Disk, l *partlog.Log, values []string, synced int64) {
	if l.StartOffset() != 0 {
		t.Fatalf("recovered log starts at %d", l.StartOffset())
	}
	if l.EndOffset() < synced || l.EndOffset() > int64(len(values)) {
		t.Fatalf("recovered end %d, synced %d, appended %d", l.EndOffset(), synced, len(values))
	}
	for off := int64(0); off < l.EndOffset(); {
		sl, err := l.Read(off, 1<<20, l.EndOffset(), true)
		if err != nil || sl.Len == 0 {
			t.Fatalf("read at %d of %d: %v (%d bytes)", off, l.EndOffset(), err, sl.Len)
		}
		buf := make([]byte, sl.Len)
		if _, err := d.BootFS().ReadAt(sl.File, buf, sl.Pos); err != nil {
			t.Fatalf("read %s: %v", sl.File, err)
		}
		for len(buf) > 0 {
			_, size, err := record.ScanOne(buf)
			if err != nil {
				t.Fatalf("recovered batch at %d: %v", off, err)
			}
			recs, err := record.Records(buf[:size])
			if err != nil {
				t.Fatalf("recovered batch at %d: %v", off, err)
			}
			for _, r := range recs {
				if r.Offset != off || string(r.Value) != values[off] {
					t.Fatalf("offset %d holds %q at offset %d, want %q", off, r.Value, r.Offset, values[off])
				}
				off++
			}
			buf = buf[size:]
		}
	}
}

// TestRecoveryGap: segments whose unsynced data a crash lost whole come back
// as empty files; recovery must not let the log end jump over them (found
// by TestRecoveryKeepsSynced).
func TestRecoveryGap(t *testing.T) {
	var loop sched.Loop
	var counts fault.Counts
	cfg := disk.Config{
		MinLatency: sched.Microsecond, MaxLatency: sched.Microsecond,
		KeepSector: rng.Never, KeepDirOps: rng.Ratio{Num: 1, Den: 1},
		Unexpected: func(msg string) { t.Fatal(msg) },
	}
	d := disk.New(&loop, rng.New(1, "disk"), cfg, &counts, trace.New(&loop, 0, nil))
	lcfg := partlog.Config{SegmentBytes: 100, RetentionMs: -1, RetentionBytes: -1, SegmentIndexBytes: 1 << 20, FlushMessages: 1, FlushMs: -1}
	l, ops := partlog.New("t-0", lcfg)
	submit := func(ops []partlog.Op) {
		for _, op := range ops {
			d.Submit(op.DiskOp, func(_ []byte, err error) {
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	submit(ops)
	for range 3 { // one batch per segment
		batch := record.Build(record.BuildSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: []record.BuildRecord{{Value: []byte("v")}}})
		c, err := record.Check(batch, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		res, err := l.Append(batch, c.Header, 0, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		submit(res.Ops)
	}
	loop.Run(sched.Second, nil)
	d.Crash(true)
	r, _, err := partlog.Open(d.BootFS(), "t-0", lcfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.EndOffset() != 0 {
		t.Fatalf("recovered end %d from segments that all came back empty, want 0", r.EndOffset())
	}
}

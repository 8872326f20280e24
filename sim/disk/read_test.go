package disk_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/record"
	"github.com/weirmq/weir/sim/disk"
	"github.com/weirmq/weir/sim/fault"
	"github.com/weirmq/weir/sim/rng"
	"github.com/weirmq/weir/sim/sched"
	"github.com/weirmq/weir/sim/trace"
)

// readDisk is a disk for the read tests; unexpected collects what the disk
// reported as a bug in the node.
type readDisk struct {
	t          *testing.T
	loop       sched.Loop
	counts     fault.Counts
	d          *disk.Disk
	unexpected []string
}

func newReadDisk(t *testing.T, cfg disk.Config) *readDisk {
	rd := &readDisk{t: t}
	cfg.MinLatency, cfg.MaxLatency = sched.Microsecond, 10*sched.Microsecond
	cfg.Unexpected = func(msg string) { rd.unexpected = append(rd.unexpected, msg) }
	rd.d = disk.New(&rd.loop, rng.New(1, "disk"), cfg, &rd.counts, trace.New(&rd.loop, 0, nil))
	return rd
}

// do runs op to completion and returns what done got.
func (rd *readDisk) do(op port.DiskOp) ([]byte, error) {
	called := false
	var data []byte
	var err error
	rd.d.Submit(op, func(b []byte, e error) { called, data, err = true, b, e })
	rd.loop.Run(rd.loop.Now()+sched.Second, nil)
	if !called {
		rd.t.Fatalf("%s %s: done not called", op.Kind, op.Path)
	}
	return data, err
}

func (rd *readDisk) mustDo(op port.DiskOp) {
	rd.t.Helper()
	if data, err := rd.do(op); err != nil || data != nil {
		rd.t.Fatalf("%s %s: %q, %v", op.Kind, op.Path, data, err)
	}
}

func TestRead(t *testing.T) {
	rd := newReadDisk(t, disk.Config{})
	rd.mustDo(port.DiskOp{Kind: port.OpMkdir, Lane: "l", Path: "t-0"})

	// Ops of one lane in one go: the read sees the write before it, not
	// the one after, and needs no sync.
	var got []byte
	var gotErr error
	rd.d.Submit(port.DiskOp{Kind: port.OpWrite, Lane: "l", Path: "t-0/f", Data: []byte("hello world")},
		func(b []byte, err error) {
			if b != nil || err != nil {
				t.Errorf("write: %q, %v", b, err)
			}
		})
	rd.d.Submit(port.DiskOp{Kind: port.OpRead, Lane: "l", Path: "t-0/f", Pos: 6, Len: 5},
		func(b []byte, err error) { got, gotErr = b, err })
	rd.d.Submit(port.DiskOp{Kind: port.OpWrite, Lane: "l", Path: "t-0/f", Pos: 6, Data: []byte("WORLD")}, ignore)
	rd.loop.Run(rd.loop.Now()+sched.Second, nil)
	if gotErr != nil || string(got) != "world" {
		t.Fatalf("read = %q, %v", got, gotErr)
	}

	rd.mustDo(port.DiskOp{Kind: port.OpSync, Lane: "l", Path: "t-0/f"})
	got, err := rd.do(port.DiskOp{Kind: port.OpRead, Lane: "l", Path: "t-0/f", Pos: 0, Len: 11})
	if err != nil || string(got) != "hello WORLD" {
		t.Fatalf("read = %q, %v", got, err)
	}
	// The data is a copy: changing it does not change the file.
	got[0] = 'J'
	if again, _ := rd.do(port.DiskOp{Kind: port.OpRead, Lane: "l", Path: "t-0/f", Len: 1}); string(again) != "h" {
		t.Fatalf("file changed through the data read: %q", again)
	}
	if got, err := rd.do(port.DiskOp{Kind: port.OpRead, Lane: "l", Path: "t-0/f", Pos: 11}); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty read at the end = %q, %v", got, err)
	}
	if len(rd.unexpected) != 0 {
		t.Fatalf("unexpected: %v", rd.unexpected)
	}

	// The node reads only what it knows exists: anything else is a bug.
	for _, c := range []struct {
		op   port.DiskOp
		want error
	}{
		{port.DiskOp{Kind: port.OpRead, Lane: "l", Path: "t-0/f", Pos: 6, Len: 6}, io.ErrUnexpectedEOF},
		{port.DiskOp{Kind: port.OpRead, Lane: "l", Path: "t-0/f", Pos: 20, Len: 1}, io.ErrUnexpectedEOF},
		{port.DiskOp{Kind: port.OpRead, Lane: "l", Path: "t-0/f", Pos: -1, Len: 1}, io.ErrUnexpectedEOF},
		{port.DiskOp{Kind: port.OpRead, Lane: "l", Path: "t-0/missing", Len: 1}, fs.ErrNotExist},
		{port.DiskOp{Kind: port.OpRead, Lane: "l", Path: "nodir/f", Len: 1}, fs.ErrNotExist},
	} {
		rd.unexpected = nil
		got, err := rd.do(c.op)
		if !errors.Is(err, c.want) || got != nil {
			t.Errorf("read %s [%d, +%d) = %q, %v; want %v", c.op.Path, c.op.Pos, c.op.Len, got, err, c.want)
		}
		if len(rd.unexpected) != 1 || !strings.Contains(rd.unexpected[0], "read "+c.op.Path) {
			t.Errorf("read %s [%d, +%d): unexpected = %q", c.op.Path, c.op.Pos, c.op.Len, rd.unexpected)
		}
	}
}

func ignore([]byte, error) {} // a done that needs nothing

// TestReadFaults: reads never fail with EIO, a bit may be flipped in the
// copy read (inside a batch's CRC-covered bytes, so the reader's check
// catches it), and the file keeps the right bytes.
func TestReadFaults(t *testing.T) {
	always := rng.Ratio{Num: 1, Den: 1}
	rd := newReadDisk(t, disk.Config{WriteEIO: always, SyncEIO: always, NoSpace: always, BitFlip: always})
	var batches []byte
	for _, v := range []string{"a", "bb", "ccc"} {
		batches = append(batches, record.Build(record.BuildSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
			Records: []record.BuildRecord{{Value: []byte(v)}}})...)
	}
	rd.mustDo(port.DiskOp{Kind: port.OpWrite, Lane: "l", Path: "f", Data: batches})
	rd.mustDo(port.DiskOp{Kind: port.OpWrite, Lane: "l", Path: "plain", Data: []byte("not a record batch")})

	rd.d.Faults = true
	read := port.DiskOp{Kind: port.OpRead, Lane: "l", Path: "f", Len: int64(len(batches))}
	for i := range 20 {
		got, err := rd.do(read)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if rd.counts[fault.DiskBitFlip] != i+1 {
			t.Fatalf("read %d: %d bit flips counted", i, rd.counts[fault.DiskBitFlip])
		}
		if diff := bitsDiffer(got, batches); diff != 1 {
			t.Fatalf("read %d: %d bits differ, want 1", i, diff)
		}
		bad := false // the flip is in one of the batches: its check fails
		for buf := got; len(buf) > 0 && !bad; {
			_, size, err := record.ScanOne(buf)
			bad = err != nil
			buf = buf[size:]
		}
		if !bad {
			t.Fatalf("read %d: the flipped bit escapes the CRCs", i)
		}
	}
	// Bytes that are not whole batches are never flipped: the flip must
	// stay detectable.
	flips := rd.counts[fault.DiskBitFlip]
	if got, err := rd.do(port.DiskOp{Kind: port.OpRead, Lane: "l", Path: "plain", Len: 18}); err != nil || string(got) != "not a record batch" {
		t.Fatalf("plain read = %q, %v", got, err)
	}
	if rd.counts[fault.DiskBitFlip] != flips {
		t.Fatal("a bit flip was counted outside a batch")
	}

	rd.d.Faults = false
	if got, err := rd.do(read); err != nil || !bytes.Equal(got, batches) {
		t.Fatalf("the file itself changed: %v", err)
	}
	if rd.counts[fault.DiskWriteEIO]+rd.counts[fault.DiskSyncEIO]+rd.counts[fault.DiskNoSpace] != 0 {
		t.Fatalf("a read injected an error fault: %s", rd.counts.String())
	}
	if len(rd.unexpected) != 0 {
		t.Fatalf("unexpected: %v", rd.unexpected)
	}
}

// TestReadCrash: a read not completed by a crash never reports.
func TestReadCrash(t *testing.T) {
	rd := newReadDisk(t, disk.Config{})
	rd.mustDo(port.DiskOp{Kind: port.OpWrite, Lane: "l", Path: "f", Data: []byte("x")})
	rd.d.Submit(port.DiskOp{Kind: port.OpRead, Lane: "l", Path: "f", Len: 1}, func([]byte, error) {
		t.Error("done called for a read the crash dropped")
	})
	rd.d.Crash(false)
	rd.loop.Run(rd.loop.Now()+sched.Second, nil)
}

func bitsDiffer(a, b []byte) int {
	n := 0
	for i := range a {
		for x := a[i] ^ b[i]; x != 0; x &= x - 1 {
			n++
		}
	}
	return n
}

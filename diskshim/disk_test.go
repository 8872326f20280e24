package diskshim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/weirmq/weir/core/port"
)

func newDisk(t *testing.T, lanes int) (*Disk, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data") // New must create it
	d, err := New(dir, lanes, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d, dir
}

// do submits op and waits for its completion.
func do(d *Disk, op port.DiskOp) error {
	ch := make(chan port.DiskDone, 1)
	d.Submit(op, func(dd port.DiskDone) { ch <- dd })
	return (<-ch).Err
}

func mustDo(t *testing.T, d *Disk, op port.DiskOp) {
	t.Helper()
	if err := do(d, op); err != nil {
		t.Fatalf("%v %s: %v", op.Kind, op.Path, err)
	}
}

func TestLaneOrder(t *testing.T) {
	d, dir := newDisk(t, 4)
	const lanes, perLane = 8, 300
	var mu sync.Mutex
	got := map[string][]port.OpID{}
	var wg sync.WaitGroup
	for l := range lanes {
		lane := fmt.Sprintf("t-%d", l)
		mustDo(t, d, port.DiskOp{Kind: port.OpMkdir, Lane: lane, Path: lane})
		p, next := lane+"/f", port.OpID(0)
		for i := range perLane {
			// Each write lands only if the truncate before it ran first.
			ops := []port.DiskOp{
				{Kind: port.OpTruncate, Path: p, Pos: 0},
				{Kind: port.OpWrite, Path: p, Pos: 0, Data: []byte(fmt.Sprint(i))},
			}
			if i == 0 {
				ops = ops[1:]
			}
			for _, op := range ops {
				op.ID, op.Lane = port.OpID(l*10000)+next, lane
				next++
				wg.Add(1)
				d.Submit(op, func(dd port.DiskDone) {
					defer wg.Done()
					if dd.Err != nil {
						t.Errorf("op %d: %v", dd.Op, dd.Err)
					}
					mu.Lock()
					got[lane] = append(got[lane], dd.Op)
					mu.Unlock()
				})
			}
		}
	}
	wg.Wait()
	for l := range lanes {
		lane := fmt.Sprintf("t-%d", l)
		for i, id := range got[lane] {
			if id != port.OpID(l*10000+i) {
				t.Fatalf("lane %s: completion %d is op %d", lane, i, id)
			}
		}
		b, err := os.ReadFile(filepath.Join(dir, lane, "f"))
		if err != nil || string(b) != fmt.Sprint(perLane-1) {
			t.Fatalf("lane %s: file = %q, %v", lane, b, err)
		}
	}
}

// TestLanesSpread: with as many workers as busy lanes, every lane gets a
// worker of its own, whatever the lanes are named (hashing names onto
// workers would make some lanes queue behind others).
func TestLanesSpread(t *testing.T) {
	const lanes = 8
	d, _ := newDisk(t, lanes)
	var started sync.WaitGroup
	started.Add(lanes)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for l := range lanes {
		wg.Add(1)
		lane := fmt.Sprintf("%s-%d", []string{"orders", "clicks"}[l%2], l/2) // partition directories
		// Each first op blocks its worker until all of them have started:
		// that happens only if the lanes run at once.
		d.Submit(port.DiskOp{Kind: port.OpMkdir, Lane: lane, Path: lane}, func(port.DiskDone) {
			started.Done()
			<-release
			wg.Done()
		})
	}
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Error("busy lanes wait for each other while workers are free")
	}
	close(release)
	wg.Wait()
}

func TestSyncCoalescing(t *testing.T) {
	d, _ := newDisk(t, 1)
	release := make(chan struct{})
	var order []port.OpID
	var wg sync.WaitGroup
	rec := func(dd port.DiskDone) {
		if dd.Err != nil {
			t.Errorf("op %d: %v", dd.Op, dd.Err)
		}
		order = append(order, dd.Op) // one worker: completions are serialized
		wg.Done()
	}
	// Hold the worker inside the first completion so the rest queue up
	// behind it and are taken as one batch.
	wg.Add(1)
	d.Submit(port.DiskOp{ID: 1, Kind: port.OpWrite, Lane: "l", Path: "a", Data: []byte("x")},
		func(dd port.DiskDone) { <-release; rec(dd) })
	batch := []port.DiskOp{
		{ID: 2, Kind: port.OpSync, Path: "a"},
		{ID: 3, Kind: port.OpSync, Path: "a"},
		{ID: 4, Kind: port.OpSync, Path: "a"}, // 2-4: one fsync
		{ID: 5, Kind: port.OpWrite, Path: "a", Pos: 1, Data: []byte("y")},
		{ID: 6, Kind: port.OpSync, Path: "a"}, // a write came between: new fsync
		{ID: 7, Kind: port.OpWrite, Path: "b", Data: []byte("z")},
		{ID: 8, Kind: port.OpSync, Path: "b"},
		{ID: 9, Kind: port.OpSync, Path: "a"}, // another path between: new fsync
	}
	for _, op := range batch {
		op.Lane = "l"
		wg.Add(1)
		d.Submit(op, rec)
	}
	close(release)
	wg.Wait()
	for i, id := range order {
		if id != port.OpID(i+1) {
			t.Fatalf("completion order %v", order)
		}
	}
	if n := d.fsyncs.Load(); n != 4 {
		t.Fatalf("fsyncs = %d, want 4", n)
	}
}

func TestRead(t *testing.T) {
	d, _ := newDisk(t, 2)
	read := func(path string, pos, n int64) port.DiskDone {
		ch := make(chan port.DiskDone, 1)
		d.Submit(port.DiskOp{ID: 7, Kind: port.OpRead, Lane: "l", Path: path, Pos: pos, Len: n},
			func(dd port.DiskDone) { ch <- dd })
		return <-ch
	}
	mustDo(t, d, port.DiskOp{Kind: port.OpWrite, Lane: "l", Path: "f", Data: []byte("hello world")})
	// Before the sync: a read sees the lane's earlier writes.
	if dd := read("f", 6, 5); dd.Err != nil || string(dd.Data) != "world" || dd.Op != 7 {
		t.Fatalf("read before sync = %d %q, %v", dd.Op, dd.Data, dd.Err)
	}
	mustDo(t, d, port.DiskOp{Kind: port.OpSync, Lane: "l", Path: "f"})
	if dd := read("f", 0, 11); dd.Err != nil || string(dd.Data) != "hello world" {
		t.Fatalf("read = %q, %v", dd.Data, dd.Err)
	}
	if dd := read("f", 11, 0); dd.Err != nil || dd.Data == nil || len(dd.Data) != 0 {
		t.Fatalf("empty read at the end = %q, %v", dd.Data, dd.Err)
	}
	for _, c := range []struct{ pos, n int64 }{{6, 6}, {11, 1}, {20, 1}} {
		if dd := read("f", c.pos, c.n); !errors.Is(dd.Err, io.ErrUnexpectedEOF) || dd.Data != nil {
			t.Errorf("read [%d, %d) past the end 11 = %q, %v; want ErrUnexpectedEOF", c.pos, c.pos+c.n, dd.Data, dd.Err)
		}
	}
	if dd := read("f", -1, 1); dd.Err == nil {
		t.Error("read at a negative position: no error")
	}
	if dd := read("f", 0, -1); dd.Err == nil {
		t.Error("read of a negative length: no error")
	}
	if dd := read("missing", 0, 1); !errors.Is(dd.Err, fs.ErrNotExist) {
		t.Errorf("read of a missing file: %v", dd.Err)
	}
	if s := port.OpRead.String(); s != "read" {
		t.Errorf("OpRead.String() = %q", s)
	}
}

// TestReadNotCoalesced: a read between syncs of its path splits the run of
// syncs, and only the read gets data.
func TestReadNotCoalesced(t *testing.T) {
	d, _ := newDisk(t, 1)
	release := make(chan struct{})
	var got []port.DiskDone
	var wg sync.WaitGroup
	rec := func(dd port.DiskDone) {
		got = append(got, dd) // one worker: completions are serialized
		wg.Done()
	}
	wg.Add(1)
	d.Submit(port.DiskOp{ID: 1, Kind: port.OpWrite, Lane: "l", Path: "a", Data: []byte("abc")},
		func(dd port.DiskDone) { <-release; rec(dd) })
	for _, op := range []port.DiskOp{
		{ID: 2, Kind: port.OpSync, Path: "a"},
		{ID: 3, Kind: port.OpRead, Path: "a", Pos: 1, Len: 2},
		{ID: 4, Kind: port.OpSync, Path: "a"},
		{ID: 5, Kind: port.OpSync, Path: "a"},
	} {
		op.Lane = "l"
		wg.Add(1)
		d.Submit(op, rec)
	}
	close(release)
	wg.Wait()
	for i, dd := range got {
		if dd.Op != port.OpID(i+1) || dd.Err != nil {
			t.Fatalf("completion %d: op %d, %v", i, dd.Op, dd.Err)
		}
		if dd.Op == 3 && string(dd.Data) != "bc" || dd.Op != 3 && dd.Data != nil {
			t.Errorf("op %d: data %q", dd.Op, dd.Data)
		}
	}
	if n := d.fsyncs.Load(); n != 2 {
		t.Fatalf("fsyncs = %d, want 2", n)
	}
}

func TestRemoveWhileAcquired(t *testing.T) {
	d, dir := newDisk(t, 2)
	mustDo(t, d, port.DiskOp{Kind: port.OpMkdir, Path: "p/q"})
	mustDo(t, d, port.DiskOp{Kind: port.OpWrite, Path: "p/q/seg.log", Data: []byte("hello world")})
	mustDo(t, d, port.DiskOp{Kind: port.OpWrite, Path: "p/q/other.log", Data: []byte("other")})
	h, err := d.Acquire("p/q/seg.log")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := d.Acquire("p/q/other.log")
	if err != nil {
		t.Fatal(err)
	}
	mustDo(t, d, port.DiskOp{Kind: port.OpRemove, Path: "p/q/seg.log"})
	mustDo(t, d, port.DiskOp{Kind: port.OpRemove, Path: "p/q/seg.log"}) // missing is fine
	mustDo(t, d, port.DiskOp{Kind: port.OpRemoveAll, Path: "p"})
	if _, err := os.Stat(filepath.Join(dir, "p")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("p still there: %v", err)
	}
	buf := make([]byte, 5)
	if _, err := h.ReadAt(buf, 6); err != nil || string(buf) != "world" {
		t.Fatalf("removed file read %q, %v", buf, err)
	}
	if _, err := h2.ReadAt(buf, 0); err != nil || string(buf) != "other" {
		t.Fatalf("removed tree file read %q, %v", buf, err)
	}
	h.Release()
	h2.Release()
	if _, err := d.Acquire("p/q/seg.log"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("acquire after remove: %v", err)
	}
}

func TestRename(t *testing.T) {
	d, _ := newDisk(t, 1)
	mustDo(t, d, port.DiskOp{Kind: port.OpWrite, Path: "a.tmp", Data: []byte("new")})
	mustDo(t, d, port.DiskOp{Kind: port.OpWrite, Path: "a", Data: []byte("old")})
	old, err := d.Acquire("a")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Release()
	mustDo(t, d, port.DiskOp{Kind: port.OpRename, Path: "a.tmp", To: "a"})
	// The registry follows the rename: a write to "a" goes to the new file.
	mustDo(t, d, port.DiskOp{Kind: port.OpWrite, Path: "a", Pos: 3, Data: []byte("!")})
	mustDo(t, d, port.DiskOp{Kind: port.OpSync, Path: "a"})
	buf := make([]byte, 4)
	n, _ := d.BootFS().ReadAt("a", buf, 0)
	if string(buf[:n]) != "new!" {
		t.Fatalf("a = %q", buf[:n])
	}
	if n, _ := old.ReadAt(buf, 0); string(buf[:n]) != "old" {
		t.Fatalf("replaced file read %q", buf[:n])
	}

	// Directory rename rekeys the files below it.
	mustDo(t, d, port.DiskOp{Kind: port.OpMkdir, Path: "d1"})
	mustDo(t, d, port.DiskOp{Kind: port.OpWrite, Path: "d1/f", Data: []byte("1")})
	mustDo(t, d, port.DiskOp{Kind: port.OpRename, Path: "d1", To: "d2"})
	mustDo(t, d, port.DiskOp{Kind: port.OpWrite, Path: "d2/f", Pos: 1, Data: []byte("2")})
	mustDo(t, d, port.DiskOp{Kind: port.OpSyncDir, Path: "d2"})
	if n, _ := d.BootFS().ReadAt("d2/f", buf, 0); string(buf[:n]) != "12" {
		t.Fatalf("d2/f = %q", buf[:n])
	}
}

func TestErrors(t *testing.T) {
	d, _ := newDisk(t, 2)
	for _, op := range []port.DiskOp{
		{Kind: port.OpWrite, Path: "missing/f", Data: []byte("x")},
		{Kind: port.OpSync, Path: "missing"},
		{Kind: port.OpSyncDir, Path: "missing"},
		{Kind: port.OpTruncate, Path: "missing"},
		{Kind: port.OpRename, Path: "missing", To: "x"},
	} {
		if err := do(d, op); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%v %s: err = %v, want not-exist", op.Kind, op.Path, err)
		}
	}
	if err := do(d, port.DiskOp{Kind: 99}); err == nil {
		t.Error("unknown kind: no error")
	}
	mustDo(t, d, port.DiskOp{Kind: port.OpWrite, Path: "f"})
	if err := do(d, port.DiskOp{Kind: port.OpMkdir, Path: "f/g"}); err == nil {
		t.Error("mkdir under a file: no error")
	}
	d.Close()
	if err := do(d, port.DiskOp{Kind: port.OpMkdir, Path: "x"}); !errors.Is(err, ErrClosed) {
		t.Errorf("after close: %v", err)
	}
	if _, err := d.Acquire("f"); !errors.Is(err, ErrClosed) {
		t.Errorf("acquire after close: %v", err)
	}
}

func TestCloseDrains(t *testing.T) {
	d, dir := newDisk(t, 3)
	var n sync.WaitGroup
	for i := range 200 {
		n.Add(1)
		d.Submit(port.DiskOp{Kind: port.OpWrite, Lane: fmt.Sprint(i % 7), Path: fmt.Sprint(i), Data: []byte("x")},
			func(port.DiskDone) { n.Done() })
	}
	d.Close()
	n.Wait() // every done already ran: Close waited for them
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 200 {
		t.Fatalf("%d files, %v", len(ents), err)
	}
}

func TestBootFS(t *testing.T) {
	d, _ := newDisk(t, 1)
	fsys := d.BootFS()
	if ents, err := fsys.List("nope"); err != nil || len(ents) != 0 {
		t.Fatalf("missing dir: %v, %v", ents, err)
	}
	mustDo(t, d, port.DiskOp{Kind: port.OpMkdir, Path: "t-0/sub"})
	for _, name := range []string{"b.log", "a.index", "c"} {
		mustDo(t, d, port.DiskOp{Kind: port.OpWrite, Path: "t-0/" + name, Data: []byte(name)})
	}
	ents, err := fsys.List("t-0")
	if err != nil {
		t.Fatal(err)
	}
	want := []port.DirEntry{{Name: "a.index", Size: 7}, {Name: "b.log", Size: 5}, {Name: "c", Size: 1}, {Name: "sub", IsDir: true}}
	if fmt.Sprint(ents) != fmt.Sprint(want) {
		t.Fatalf("List = %v, want %v", ents, want)
	}
	buf := make([]byte, 10)
	n, err := fsys.ReadAt("t-0/b.log", buf, 2)
	if n != 3 || !bytes.Equal(buf[:n], []byte("log")) || err == nil {
		t.Fatalf("short ReadAt = %d %q %v, want 3 \"log\" EOF", n, buf[:n], err)
	}
}

func BenchmarkWriteSync(b *testing.B) {
	d, err := New(b.TempDir(), 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	data := make([]byte, 256<<10)
	done := make(chan port.DiskDone, 2)
	cb := func(dd port.DiskDone) { done <- dd }
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		d.Submit(port.DiskOp{Kind: port.OpWrite, Lane: "l", Path: "f", Pos: int64(i * len(data)), Data: data}, cb)
		d.Submit(port.DiskOp{Kind: port.OpSync, Lane: "l", Path: "f"}, cb)
		<-done
		<-done
	}
}

package diskshim

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/weirmq/weir/core/port"
)

// ErrClosed is the error of ops submitted after Close.
var ErrClosed = errors.New("diskshim: disk closed")

// Disk runs disk operations for one node's data directory.
type Disk struct {
	dir     string
	log     *slog.Logger
	workers int
	wg      sync.WaitGroup
	once    sync.Once

	// The scheduler: every lane with ops queued or running has a lane;
	// ready holds those with ops queued and no worker on them, oldest
	// first. A lane is run by one worker at a time, which keeps its order.
	sched  sync.Mutex
	wake   sync.Cond // ready grew or closed was set
	lanes  map[string]*lane
	ready  []*lane
	closed bool

	mu    sync.Mutex
	files map[string]*File // by cleaned relative path; nil once closed

	fsyncs atomic.Uint64 // file syncs actually issued, to observe group commit
}

type job struct {
	op   port.DiskOp
	done func(port.DiskDone)
}

// lane is one lane's queue. Its queue is a slice rather than a channel so
// that a worker can take everything queued at once and look ahead for
// syncs to coalesce.
type lane struct {
	name    string
	queue   []job
	running bool // a worker holds the lane (it is then not in ready)
}

// New opens (creating if needed) dataDir and starts workers goroutines,
// which bounds how many ops run in parallel; workers < 1 means 1.
func New(dataDir string, workers int, log *slog.Logger) (*Disk, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	d := &Disk{dir: dataDir, log: log, workers: max(workers, 1),
		lanes: make(map[string]*lane), files: make(map[string]*File)}
	d.wake.L = &d.sched
	d.wg.Add(d.workers)
	for range d.workers {
		go d.run()
	}
	return d, nil
}

// Submit queues op on its lane and returns at once; it never blocks on IO.
// done (may be nil) is called from a worker when the op has finished.
// After Close, done gets ErrClosed.
func (d *Disk) Submit(op port.DiskOp, done func(port.DiskDone)) {
	d.sched.Lock()
	if d.closed {
		d.sched.Unlock()
		if done != nil {
			// Not inline: the caller may be the loop that done feeds.
			go done(port.DiskDone{Op: op.ID, Err: ErrClosed})
		}
		return
	}
	l := d.lanes[op.Lane]
	if l == nil {
		l = &lane{name: op.Lane}
		d.lanes[op.Lane] = l
	}
	l.queue = append(l.queue, job{op: op, done: done})
	if !l.running && len(l.queue) == 1 {
		d.ready = append(d.ready, l)
		d.sched.Unlock()
		d.wake.Signal()
		return
	}
	d.sched.Unlock()
}

// Close runs every queued op to completion, stops the workers and drops the
// registry's descriptors. Handles still acquired stay usable until released.
func (d *Disk) Close() {
	d.once.Do(func() {
		d.sched.Lock()
		d.closed = true
		d.sched.Unlock()
		d.wake.Broadcast()
		d.wg.Wait()
		d.mu.Lock()
		for _, f := range d.files {
			f.Release()
		}
		d.files = nil
		d.mu.Unlock()
	})
}

// run is a worker: it takes the lane that has waited longest, runs
// everything queued on it, and puts it back at the end of the line if
// more came meanwhile. A worker leaves only when closed and nothing is
// ready; a lane it was running and that got more ops is ready again
// before it looks, so Close loses nothing.
func (d *Disk) run() {
	defer d.wg.Done()
	var spare []job // the previous batch's array, reused to avoid allocation
	for {
		d.sched.Lock()
		for len(d.ready) == 0 && !d.closed {
			d.wake.Wait()
		}
		if len(d.ready) == 0 {
			d.sched.Unlock()
			return
		}
		l := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		l.running = true
		batch := l.queue
		l.queue = spare[:0]
		d.sched.Unlock()

		d.runBatch(batch)
		clear(batch) // drop Data and callbacks so they can be collected
		spare = batch[:0]

		d.sched.Lock()
		l.running = false
		switch {
		case len(l.queue) > 0:
			d.ready = append(d.ready, l)
			d.wake.Signal()
		default:
			delete(d.lanes, l.name) // idle lanes cost nothing
		}
		d.sched.Unlock()
	}
}

// runBatch runs one lane's ops in order, one fdatasync for each run of
// adjacent syncs of one path.
func (d *Disk) runBatch(batch []job) {
	for i := 0; i < len(batch); {
		n := 1
		if op := &batch[i].op; op.Kind == port.OpSync {
			// Adjacent syncs of one path: nothing was written to it in
			// between, so one fsync makes all of them true.
			for i+n < len(batch) && batch[i+n].op.Kind == port.OpSync && batch[i+n].op.Path == op.Path {
				n++
			}
		}
		// Only syncs are coalesced, so data (an OpRead's bytes) always
		// goes to the one op that asked for it.
		data, err := d.exec(&batch[i].op)
		if err != nil {
			d.log.Warn("disk op failed", "op", batch[i].op.Kind, "path", batch[i].op.Path, "err", err)
		}
		for _, j := range batch[i : i+n] {
			if j.done != nil {
				j.done(port.DiskDone{Op: j.op.ID, Err: err, Data: data})
			}
		}
		i += n
	}
}

// exec runs one op. data is what an OpRead read; other ops return nil.
func (d *Disk) exec(op *port.DiskOp) (data []byte, err error) {
	if op.Kind == port.OpRead {
		return d.read(op)
	}
	return nil, d.mutate(op)
}

// read carries out an OpRead: exactly op.Len bytes at op.Pos, read (pread:
// no shared offset moves) through the registry's descriptor, so from the
// page cache that the lane's earlier writes went to.
func (d *Disk) read(op *port.DiskOp) ([]byte, error) {
	if op.Len < 0 || op.Pos < 0 {
		return nil, fmt.Errorf("diskshim: read %s: bad range %d+%d", op.Path, op.Pos, op.Len)
	}
	f, err := d.open(op.Path, false)
	if err != nil {
		return nil, err
	}
	defer f.Release()
	buf := make([]byte, op.Len)
	n, err := f.ReadAt(buf, op.Pos)
	if n < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("diskshim: read %s: %d of %d bytes at %d: %w", op.Path, n, op.Len, op.Pos, io.ErrUnexpectedEOF)
		}
		return nil, err
	}
	return buf, nil // a full read is a success even if err reports EOF
}

// mutate runs every op but OpRead.
func (d *Disk) mutate(op *port.DiskOp) error {
	switch op.Kind {
	case port.OpMkdir:
		return os.MkdirAll(d.abs(op.Path), 0o755)
	case port.OpWrite:
		f, err := d.open(op.Path, true)
		if err != nil {
			return err
		}
		defer f.Release()
		_, err = f.f.WriteAt(op.Data, op.Pos)
		return err
	case port.OpSync:
		f, err := d.open(op.Path, false) // any descriptor can be synced
		if err != nil {
			return err
		}
		defer f.Release()
		d.fsyncs.Add(1)
		return datasync(f.f)
	case port.OpSyncDir:
		dir, err := os.Open(d.abs(op.Path))
		if err != nil {
			return err
		}
		err = dir.Sync()
		if cerr := dir.Close(); err == nil {
			err = cerr
		}
		return err
	case port.OpTruncate:
		return os.Truncate(d.abs(op.Path), op.Pos)
	case port.OpRename:
		if err := os.Rename(d.abs(op.Path), d.abs(op.To)); err != nil {
			return err
		}
		d.renamed(op.Path, op.To)
		return nil
	case port.OpRemove:
		err := os.Remove(d.abs(op.Path))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		d.forget(op.Path, false)
		return nil
	case port.OpRemoveAll:
		err := os.RemoveAll(d.abs(op.Path))
		d.forget(op.Path, true) // even on error: what is left is reopened on use
		return err
	}
	return fmt.Errorf("diskshim: unknown op kind %d", op.Kind)
}

// abs maps a core path (relative, forward slashes) into the data directory.
func (d *Disk) abs(rel string) string {
	return filepath.Join(d.dir, filepath.FromSlash(rel))
}

// BootFS returns the read-only view recovery uses before the node starts.
// Reads go through the registry, so descriptors opened during recovery
// are the ones the node later appends to and sends from.
func (d *Disk) BootFS() port.BootFS { return bootFS{d} }

type bootFS struct{ d *Disk }

func (b bootFS) List(dir string) ([]port.DirEntry, error) {
	ents, err := os.ReadDir(b.d.abs(dir)) // sorted by name
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]port.DirEntry, 0, len(ents))
	for _, e := range ents {
		de := port.DirEntry{Name: e.Name(), IsDir: e.IsDir()}
		if !de.IsDir {
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since ReadDir
			}
			if err != nil {
				return nil, err
			}
			de.Size = info.Size()
		}
		out = append(out, de)
	}
	return out, nil
}

// DropCache drops path's clean cached pages (port.BootFS).
func (b bootFS) DropCache(p string) error {
	f, err := b.d.Acquire(p)
	if err != nil {
		return err
	}
	defer f.Release()
	return dropCache(f.OSFile())
}

func (b bootFS) ReadAt(p string, buf []byte, off int64) (int, error) {
	f, err := b.d.Acquire(p)
	if err != nil {
		return 0, err
	}
	defer f.Release()
	return f.ReadAt(buf, off)
}

// clean makes equal paths equal keys; it does not allocate for clean input.
func clean(rel string) string { return path.Clean(rel) }

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
	workers []*worker
	wg      sync.WaitGroup
	once    sync.Once

	mu    sync.Mutex
	files map[string]*File // by cleaned relative path; nil once closed

	fsyncs atomic.Uint64 // file syncs actually issued, to observe group commit
}

type job struct {
	op   port.DiskOp
	done func(port.DiskDone)
}

// worker runs the lanes hashed onto it. Its queue is a slice rather than a
// channel so that it can take everything queued at once and look ahead for
// syncs to coalesce.
type worker struct {
	mu     sync.Mutex
	cond   sync.Cond
	queue  []job
	spare  []job // the previous batch's array, reused to avoid allocation
	closed bool
}

// New opens (creating if needed) dataDir and starts lanes worker goroutines.
// lanes bounds how many ops run in parallel; lanes < 1 means 1.
func New(dataDir string, lanes int, log *slog.Logger) (*Disk, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	lanes = max(lanes, 1)
	d := &Disk{dir: dataDir, log: log, files: make(map[string]*File)}
	d.workers = make([]*worker, lanes)
	d.wg.Add(lanes)
	for i := range d.workers {
		w := &worker{}
		w.cond.L = &w.mu
		d.workers[i] = w
		go d.run(w)
	}
	return d, nil
}

// Submit queues op on its lane's worker and returns at once; it never
// blocks on IO. done (may be nil) is called from the worker when the op
// has finished. After Close, done gets ErrClosed.
func (d *Disk) Submit(op port.DiskOp, done func(port.DiskDone)) {
	w := d.workers[laneIndex(op.Lane, len(d.workers))]
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		if done != nil {
			// Not inline: the caller may be the loop that done feeds.
			go done(port.DiskDone{Op: op.ID, Err: ErrClosed})
		}
		return
	}
	w.queue = append(w.queue, job{op: op, done: done})
	w.mu.Unlock()
	w.cond.Signal()
}

// Close runs every queued op to completion, stops the workers and drops the
// registry's descriptors. Handles still acquired stay usable until released.
func (d *Disk) Close() {
	d.once.Do(func() {
		for _, w := range d.workers {
			w.mu.Lock()
			w.closed = true
			w.mu.Unlock()
			w.cond.Signal()
		}
		d.wg.Wait()
		d.mu.Lock()
		for _, f := range d.files {
			f.Release()
		}
		d.files = nil
		d.mu.Unlock()
	})
}

// laneIndex is FNV-1a, inlined so that hashing a lane does not allocate.
func laneIndex(lane string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(lane); i++ {
		h ^= uint32(lane[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

func (d *Disk) run(w *worker) {
	defer d.wg.Done()
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closed {
			w.cond.Wait()
		}
		if len(w.queue) == 0 {
			w.mu.Unlock()
			return
		}
		batch := w.queue
		w.queue = w.spare[:0]
		w.mu.Unlock()

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

		clear(batch) // drop Data and callbacks so they can be collected
		w.mu.Lock()
		w.spare = batch[:0]
		w.mu.Unlock()
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

package diskshim

import (
	"os"
	"strings"
	"sync/atomic"
)

// File is a reference-counted open file. The registry holds one reference
// while the path names it; every Acquire adds one. The descriptor is closed
// when the last reference is released, so a file removed or renamed while
// acquired stays readable through the handle.
type File struct {
	f        *os.File
	refs     atomic.Int32
	writable bool
}

// Release drops one reference; it must be called exactly once per Acquire.
func (f *File) Release() {
	switch n := f.refs.Add(-1); {
	case n == 0:
		f.f.Close()
	case n < 0:
		// A second release could close a descriptor number that has been
		// reused by another file; failing loudly is the only safe answer.
		panic("diskshim: File released more often than acquired")
	}
}

// OSFile is the open file, for sendfile. Do not close it and do not move its
// offset: it is shared with the disk workers and other senders.
func (f *File) OSFile() *os.File { return f.f }

// Fd is the descriptor, valid until Release.
func (f *File) Fd() uintptr { return f.f.Fd() }

// ReadAt reads like io.ReaderAt (pread: no shared offset is moved).
func (f *File) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }

// Acquire returns a handle on the file at path (relative to the data
// directory), opening it read-only if the registry has no descriptor. The
// caller must Release it.
func (d *Disk) Acquire(path string) (*File, error) { return d.open(path, false) }

// open returns a counted handle on rel, registering a new descriptor if
// none is open, or if a writable one is needed and only a read-only one is
// (that one lives on for its holders).
func (d *Disk) open(rel string, write bool) (*File, error) {
	rel = clean(rel)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.files == nil {
		return nil, ErrClosed
	}
	if f := d.files[rel]; f != nil && (f.writable || !write) {
		f.refs.Add(1)
		return f, nil
	}
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR | os.O_CREATE
	}
	// Opening under the lock keeps the registry simple; it happens once per
	// file, not per op.
	of, err := os.OpenFile(d.abs(rel), flag, 0o644)
	if err != nil {
		return nil, err
	}
	f := &File{f: of, writable: write}
	f.refs.Store(2) // the registry's and the caller's
	if old := d.files[rel]; old != nil {
		old.Release()
	}
	d.files[rel] = f
	return f, nil
}

// renamed moves registry entries after a successful rename. Only files are
// registered, so a hit on the exact key is a file rename; otherwise it may
// be a directory and its entries are rekeyed. What the target replaced is
// dropped (its holders keep it).
func (d *Disk) renamed(from, to string) {
	from, to = clean(from), clean(to)
	d.mu.Lock()
	defer d.mu.Unlock()
	if f := d.files[to]; f != nil {
		delete(d.files, to)
		f.Release()
	}
	if f := d.files[from]; f != nil {
		delete(d.files, from)
		d.files[to] = f
		return
	}
	var keys []string
	for k := range d.files {
		if under(k, from) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		d.files[to+k[len(from):]] = d.files[k]
		delete(d.files, k)
	}
}

// forget drops the registry's reference to rel and, for tree, to every
// file below it.
func (d *Disk) forget(rel string, tree bool) {
	rel = clean(rel)
	d.mu.Lock()
	defer d.mu.Unlock()
	if f := d.files[rel]; f != nil {
		delete(d.files, rel)
		f.Release()
	}
	if !tree {
		return
	}
	for k, f := range d.files {
		if under(k, rel) {
			delete(d.files, k)
			f.Release()
		}
	}
}

// under reports whether path k lies below directory dir.
func under(k, dir string) bool {
	return len(k) > len(dir) && k[len(dir)] == '/' && strings.HasPrefix(k, dir)
}

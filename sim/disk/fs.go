package disk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/weirmq/weir/core/port"
)

// sectorSize is the unit a crash keeps or drops.
const sectorSize = 512

// inode is a file or a directory.
type inode struct {
	dir bool

	// Files: cur is what reads see, dur what the last fsync made stable.
	// unsynced holds the sectors that differ (or may differ) between them.
	cur, dur []byte
	unsynced sectorSet
	// failed holds sectors whose writeback an fsync reported failed. Linux
	// then marks their pages clean: reads still see cur, but the disk holds
	// dur, no later fsync writes them back unless they are written again,
	// and a machine crash (or dropping the page cache) loses them.
	failed sectorSet

	// Directories: current and durable entries.
	entries, durEntries map[string]*inode
}

func newDir() *inode {
	return &inode{dir: true, entries: map[string]*inode{}, durEntries: map[string]*inode{}}
}

// sectorSet is a set of sector numbers.
type sectorSet map[int64]struct{}

func (s *sectorSet) mark(from, to int64) { // bytes [from, to)
	if to <= from {
		return
	}
	if *s == nil {
		*s = sectorSet{}
	}
	for sec := from / sectorSize; sec*sectorSize < to; sec++ {
		(*s)[sec] = struct{}{}
	}
}

func (s sectorSet) unmark(from, to int64) { // bytes [from, to)
	for sec := from / sectorSize; sec*sectorSize < to && len(s) > 0; sec++ {
		delete(s, sec)
	}
}

// sorted lists the sectors in ascending order, so draws over them are
// deterministic.
func (s sectorSet) sorted() []int64 {
	out := make([]int64, 0, len(s))
	for sec := range s {
		out = append(out, sec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (f *inode) write(pos int64, data []byte) {
	end := pos + int64(len(data))
	if old := int64(len(f.cur)); end > old {
		f.cur = append(f.cur, make([]byte, end-old)...)
		f.unsynced.mark(old, pos) // a hole reads as zeros
	}
	copy(f.cur[pos:], data)
	f.unsynced.mark(pos, end)
	f.failed.unmark(pos, end) // dirty again: the next fsync writes them
}

func (f *inode) truncate(size int64) {
	old := int64(len(f.cur))
	switch {
	case size < old:
		f.unsynced.mark(size, old)
		f.cur = f.cur[:size]
	case size > old:
		f.cur = append(f.cur, make([]byte, size-old)...)
		f.unsynced.mark(old, size)
	}
}

// failWriteback is a failed fsync: every dirty sector becomes clean but not
// durable (see failed).
func (f *inode) failWriteback() {
	for sec := range f.unsynced {
		if f.failed == nil {
			f.failed = sectorSet{}
		}
		f.failed[sec] = struct{}{}
	}
	f.unsynced = nil
}

// revertFailed makes reads of failed sectors return what the disk holds,
// as they do once their clean pages leave the page cache.
func (f *inode) revertFailed() {
	for sec := range f.failed {
		for i := sec * sectorSize; i < min((sec+1)*sectorSize, int64(len(f.cur))); i++ {
			f.cur[i] = 0
			if i < int64(len(f.dur)) {
				f.cur[i] = f.dur[i]
			}
		}
	}
	f.failed = nil
}

// sync makes the current content durable, copying only unsynced sectors
// (failed ones stay as the disk holds them).
func (f *inode) sync() {
	n := int64(len(f.cur))
	if int64(cap(f.dur)) >= n {
		f.dur = f.dur[:n]
	} else {
		f.dur = append(f.dur[:cap(f.dur)], make([]byte, n-int64(cap(f.dur)))...)
	}
	for sec := range f.unsynced {
		from := sec * sectorSize
		if from >= n {
			continue
		}
		copy(f.dur[from:min(from+sectorSize, n)], f.cur[from:])
	}
	f.unsynced = nil
}

func (d *inode) syncDir() {
	clear(d.durEntries)
	for name, in := range d.entries {
		d.durEntries[name] = in
	}
}

// splitPath cleans a relative slash path into its components; "." and ""
// name the root.
func splitPath(p string) []string {
	var parts []string
	for _, s := range strings.Split(p, "/") {
		if s != "" && s != "." {
			parts = append(parts, s)
		}
	}
	return parts
}

var (
	errNotExist = fs.ErrNotExist
	errNotDir   = errors.New("not a directory")
	errIsDir    = errors.New("is a directory")
)

// lookup finds the inode at path in the current namespace.
func (d *Disk) lookup(path string) (*inode, error) {
	in := d.root
	for _, name := range splitPath(path) {
		if !in.dir {
			return nil, fmt.Errorf("%s: %w", path, errNotDir)
		}
		next := in.entries[name]
		if next == nil {
			return nil, fmt.Errorf("%s: %w", path, errNotExist)
		}
		in = next
	}
	return in, nil
}

// parent finds the directory holding path's last component.
func (d *Disk) parent(path string) (*inode, string, error) {
	parts := splitPath(path)
	if len(parts) == 0 {
		return nil, "", fmt.Errorf("%q names the root", path)
	}
	dir, err := d.lookup(strings.Join(parts[:len(parts)-1], "/"))
	if err != nil {
		return nil, "", err
	}
	if !dir.dir {
		return nil, "", fmt.Errorf("%s: %w", path, errNotDir)
	}
	return dir, parts[len(parts)-1], nil
}

func (d *Disk) mkdirAll(path string) error {
	in := d.root
	for _, name := range splitPath(path) {
		next := in.entries[name]
		if next == nil {
			next = newDir()
			in.entries[name] = next
		} else if !next.dir {
			return fmt.Errorf("mkdir %s: %w", path, errNotDir)
		}
		in = next
	}
	return nil
}

// file returns the file at path, creating it if create is set.
func (d *Disk) file(path string, create bool) (*inode, error) {
	dir, name, err := d.parent(path)
	if err != nil {
		return nil, err
	}
	f := dir.entries[name]
	switch {
	case f == nil && !create:
		return nil, fmt.Errorf("%s: %w", path, errNotExist)
	case f == nil:
		f = &inode{}
		dir.entries[name] = f
	case f.dir:
		return nil, fmt.Errorf("%s: %w", path, errIsDir)
	}
	return f, nil
}

func (d *Disk) remove(path string, tree bool) error {
	dir, name, err := d.parent(path)
	if errors.Is(err, errNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	in := dir.entries[name]
	if in == nil {
		return nil
	}
	if in.dir && !tree {
		return fmt.Errorf("remove %s: %w", path, errIsDir)
	}
	delete(dir.entries, name)
	return nil
}

func (d *Disk) rename(from, to string) error {
	fdir, fname, err := d.parent(from)
	if err != nil {
		return err
	}
	tdir, tname, err := d.parent(to)
	if err != nil {
		return err
	}
	if fdir != tdir {
		// The crash model keeps or drops each directory's unsynced changes
		// as a whole; a rename across directories would need both tied.
		return fmt.Errorf("rename %s to %s: the simulated disk renames within one directory only", from, to)
	}
	in := fdir.entries[fname]
	if in == nil {
		return fmt.Errorf("rename %s: %w", from, errNotExist)
	}
	delete(fdir.entries, fname)
	tdir.entries[tname] = in
	return nil
}

// bootFS is the port.BootFS view of the current namespace.
type bootFS struct{ d *Disk }

func (b bootFS) List(path string) ([]port.DirEntry, error) {
	in, err := b.d.lookup(path)
	if errors.Is(err, errNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !in.dir {
		return nil, fmt.Errorf("list %s: %w", path, errNotDir)
	}
	out := make([]port.DirEntry, 0, len(in.entries))
	for name, e := range in.entries {
		out = append(out, port.DirEntry{Name: name, IsDir: e.dir, Size: int64(len(e.cur))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (b bootFS) ReadAt(path string, buf []byte, off int64) (int, error) {
	f, err := b.d.lookup(path)
	if err != nil {
		return 0, err
	}
	if f.dir {
		return 0, fmt.Errorf("read %s: %w", path, errIsDir)
	}
	if off >= int64(len(f.cur)) {
		return 0, io.EOF
	}
	n := copy(buf, f.cur[off:])
	if n < len(buf) {
		return n, io.EOF
	}
	return n, nil
}

// DropCache returns the file's failed sectors to what the disk holds, as
// dropping its clean cached pages does in production.
func (b bootFS) DropCache(path string) error {
	f, err := b.d.lookup(path)
	if err != nil {
		return err
	}
	if !f.dir {
		f.revertFailed()
	}
	return nil
}

package metalog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/weirmq/weir/core/port"
)

// memFS is an in-memory file system with a crash model, after sim/disk's
// (which core may not import):
//   - a file has its current content (what reads see) and its durable
//     content (what the last successful fsync made stable); writes and
//     truncations mark the sectors they touch unsynced;
//   - a directory has durable entries and the list of changes made since its
//     last fsync (creates, renames, removes), in order;
//   - a machine crash keeps, in each directory, a prefix of those changes
//     (a rename is one change: atomic), and in each file, of its unsynced
//     sectors, an arbitrary subset (torn writes, in any order); a process
//     crash keeps everything;
//   - a failed fsync leaves the file's unsynced sectors clean but not
//     durable (Linux's behaviour, "fsyncgate"): reads still see them until
//     DropCache or a machine crash, and no later fsync writes them.
type memFS struct{ root *node }

// sectorSize is small so that crashes tear frames often.
const sectorSize = 16

type node struct {
	dir bool

	cur, dur         []byte
	unsynced, failed map[int64]bool

	entries, durEntries map[string]*node
	pending             []dirChange
}

// dirChange is one atomic change of a directory's entries: set each name to
// its node (nil removes it).
type dirChange []struct {
	name string
	n    *node
}

func newMemFS() *memFS { return &memFS{root: newDir()} }

func newDir() *node {
	return &node{dir: true, entries: map[string]*node{}, durEntries: map[string]*node{}}
}

func (d *node) change(c dirChange) {
	for _, kv := range c {
		if kv.n == nil {
			delete(d.entries, kv.name)
		} else {
			d.entries[kv.name] = kv.n
		}
	}
	d.pending = append(d.pending, c)
}

func (d *node) syncDir() {
	clear(d.durEntries)
	for k, v := range d.entries {
		d.durEntries[k] = v
	}
	d.pending = nil
}

func mark(set *map[int64]bool, from, to int64) {
	if *set == nil {
		*set = map[int64]bool{}
	}
	for sec := from / sectorSize; sec*sectorSize < to; sec++ {
		(*set)[sec] = true
	}
}

func (f *node) write(pos int64, data []byte) {
	end := pos + int64(len(data))
	if old := int64(len(f.cur)); end > old {
		f.cur = append(f.cur, make([]byte, end-old)...)
		mark(&f.unsynced, old, end)
	}
	copy(f.cur[pos:], data)
	mark(&f.unsynced, pos, end)
	for sec := pos / sectorSize; sec*sectorSize < end; sec++ {
		delete(f.failed, sec)
	}
}

func (f *node) truncate(size int64) {
	old := int64(len(f.cur))
	switch {
	case size < old:
		mark(&f.unsynced, size, old)
		f.cur = f.cur[:size]
	case size > old:
		f.cur = append(f.cur, make([]byte, size-old)...)
		mark(&f.unsynced, old, size)
	}
}

// sync makes the unsynced sectors durable; failed ones keep what the disk
// holds.
func (f *node) sync() {
	n := int64(len(f.cur))
	dur := make([]byte, n)
	copy(dur, f.dur)
	for sec := range f.unsynced {
		from := sec * sectorSize
		if from < n {
			copy(dur[from:min(from+sectorSize, n)], f.cur[from:])
		}
	}
	f.dur, f.unsynced = dur, nil
}

func (f *node) failSync() {
	for sec := range f.unsynced {
		mark(&f.failed, sec*sectorSize, sec*sectorSize+1)
	}
	f.unsynced = nil
}

// revertFailed makes reads of failed sectors return what the disk holds.
func (f *node) revertFailed() {
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

func sortedKeys[V any](m map[int64]V) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// crash leaves the file system as a machine crash would.
func (m *memFS) crash(rng *rand.Rand) { crashDir(m.root, rng) }

func crashDir(d *node, rng *rand.Rand) {
	if len(d.pending) > 0 {
		keep := rng.IntN(len(d.pending) + 1)
		ents := map[string]*node{}
		for k, v := range d.durEntries {
			ents[k] = v
		}
		for _, c := range d.pending[:keep] {
			for _, kv := range c {
				if kv.n == nil {
					delete(ents, kv.name)
				} else {
					ents[kv.name] = kv.n
				}
			}
		}
		d.entries = ents
		d.syncDir()
	}
	names := make([]string, 0, len(d.entries))
	for k := range d.entries {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		if n := d.entries[name]; n.dir {
			crashDir(n, rng)
		} else {
			crashFile(n, rng)
		}
	}
}

func crashFile(f *node, rng *rand.Rand) {
	f.revertFailed()
	if len(f.unsynced) == 0 {
		f.cur = append([]byte(nil), f.dur...)
		return
	}
	keep := map[int64]bool{}
	for _, sec := range sortedKeys(f.unsynced) {
		keep[sec] = rng.IntN(2) == 0
	}
	curLen, durLen := int64(len(f.cur)), int64(len(f.dur))
	size := durLen
	if curLen >= durLen {
		for _, sec := range sortedKeys(keep) {
			if keep[sec] && sec*sectorSize < curLen {
				size = max(size, min((sec+1)*sectorSize, curLen))
			}
		}
	} else if rng.IntN(2) == 0 {
		size = curLen
	}
	out := make([]byte, size)
	copy(out, f.dur)
	for sec, k := range keep {
		from := sec * sectorSize
		if !k || from >= size || from >= curLen {
			continue
		}
		to := min(from+sectorSize, size, curLen)
		copy(out[from:to], f.cur[from:to])
	}
	f.cur, f.dur, f.unsynced = out, append([]byte(nil), out...), nil
}

func split(p string) []string {
	var parts []string
	for _, s := range strings.Split(p, "/") {
		if s != "" && s != "." {
			parts = append(parts, s)
		}
	}
	return parts
}

func (m *memFS) lookup(p string) (*node, error) {
	n := m.root
	for _, name := range split(p) {
		if !n.dir {
			return nil, fmt.Errorf("%s: not a directory", p)
		}
		if n = n.entries[name]; n == nil {
			return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		}
	}
	return n, nil
}

func (m *memFS) parent(p string) (*node, string, error) {
	parts := split(p)
	if len(parts) == 0 {
		return nil, "", fmt.Errorf("%q is the root", p)
	}
	d, err := m.lookup(strings.Join(parts[:len(parts)-1], "/"))
	if err != nil {
		return nil, "", err
	}
	if !d.dir {
		return nil, "", fmt.Errorf("%s: parent not a directory", p)
	}
	return d, parts[len(parts)-1], nil
}

func (m *memFS) file(p string, create bool) (*node, error) {
	d, name, err := m.parent(p)
	if err != nil {
		return nil, err
	}
	f := d.entries[name]
	switch {
	case f == nil && !create:
		return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
	case f == nil:
		f = &node{}
		d.change(dirChange{{name, f}})
	case f.dir:
		return nil, fmt.Errorf("%s: is a directory", p)
	}
	return f, nil
}

var errInjected = errors.New("injected disk fault")

// exec applies op; fail makes an fsync (file or directory) fail.
func (m *memFS) exec(op port.DiskOp, fail bool) error {
	switch op.Kind {
	case port.OpMkdir:
		d := m.root
		for _, name := range split(op.Path) {
			next := d.entries[name]
			if next == nil {
				next = newDir()
				d.change(dirChange{{name, next}})
			} else if !next.dir {
				return fmt.Errorf("mkdir %s: not a directory", op.Path)
			}
			d = next
		}
	case port.OpWrite:
		f, err := m.file(op.Path, true)
		if err != nil {
			return err
		}
		f.write(op.Pos, op.Data)
	case port.OpSync:
		f, err := m.file(op.Path, false)
		if err != nil {
			return err
		}
		if fail {
			f.failSync()
			return errInjected
		}
		f.sync()
	case port.OpSyncDir:
		d, err := m.lookup(op.Path)
		if err != nil {
			return err
		}
		if !d.dir {
			return fmt.Errorf("syncdir %s: not a directory", op.Path)
		}
		if fail {
			return errInjected
		}
		d.syncDir()
	case port.OpTruncate:
		f, err := m.file(op.Path, false)
		if err != nil {
			return err
		}
		f.truncate(op.Pos)
	case port.OpRename:
		fd, fname, err := m.parent(op.Path)
		if err != nil {
			return err
		}
		td, tname, err := m.parent(op.To)
		if err != nil {
			return err
		}
		if fd != td {
			return fmt.Errorf("rename across directories")
		}
		n := fd.entries[fname]
		if n == nil {
			return fmt.Errorf("rename %s: %w", op.Path, fs.ErrNotExist)
		}
		fd.change(dirChange{{fname, nil}, {tname, n}})
	case port.OpRemove:
		d, name, err := m.parent(op.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if n := d.entries[name]; n != nil {
			if n.dir {
				return fmt.Errorf("remove %s: is a directory", op.Path)
			}
			d.change(dirChange{{name, nil}})
		}
	default:
		return fmt.Errorf("unexpected op %v", op.Kind)
	}
	return nil
}

// read returns a file's current content (nil, false if missing).
func (m *memFS) read(p string) ([]byte, bool) {
	f, err := m.file(p, false)
	if err != nil {
		return nil, false
	}
	return f.cur, true
}

// put creates or replaces a file with durable content (for hand-made
// fixtures).
func (m *memFS) put(p string, data []byte) {
	if err := m.exec(port.DiskOp{Kind: port.OpMkdir, Path: Dir}, false); err != nil {
		panic(err)
	}
	d, name, err := m.parent(p)
	if err != nil {
		panic(err)
	}
	d.change(dirChange{{name, &node{cur: append([]byte(nil), data...), dur: append([]byte(nil), data...)}}})
	m.root.syncDir()
	d.syncDir()
}

// BootFS.

func (m *memFS) List(p string) ([]port.DirEntry, error) {
	d, err := m.lookup(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !d.dir {
		return nil, fmt.Errorf("list %s: not a directory", p)
	}
	var out []port.DirEntry
	for name, n := range d.entries {
		out = append(out, port.DirEntry{Name: name, IsDir: n.dir, Size: int64(len(n.cur))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (m *memFS) ReadAt(p string, buf []byte, off int64) (int, error) {
	f, err := m.file(p, false)
	if err != nil {
		return 0, err
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

func (m *memFS) DropCache(p string) error {
	f, err := m.file(p, false)
	if err != nil {
		return err
	}
	f.revertFailed()
	return nil
}

package partlog

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/weirmq/weir/core/port"
)

// memDisk applies ops to in-memory files; it is a BootFS for Open. Like the
// simulator's disk (sim/disk, whose model it follows), it keeps what reads
// see (the page cache) apart from what is durable, so that crash can do
// what a machine crash does: keep the durable content of every file plus
// any subset of its unsynced sectors (torn writes), and, of the unsynced
// changes to the names, all or none. A directory sync covers the files
// directly in that directory; directories themselves are not modelled.
type memDisk struct {
	files    map[string]*memFile // the names reads see
	durNames map[string]*memFile // the names as directory syncs left them
}

// memSector is the unit a crash keeps or drops: smaller than a disk's, so
// that a test's small batches tear in many ways.
const memSector = 64

type memFile struct {
	data     []byte // what reads see
	dur      []byte // what the last fsync made durable
	unsynced map[int64]bool
}

func newMemDisk() *memDisk {
	return &memDisk{files: map[string]*memFile{}, durNames: map[string]*memFile{}}
}

// apply runs ops in order. An op that would fail on a real disk without a
// fault (fsync or truncation of a missing file) is a bug in the log, as the
// simulator reports it.
func (d *memDisk) apply(ops []Op) {
	for _, op := range ops {
		switch op.Kind {
		case port.OpWrite:
			f := d.files[op.Path]
			if f == nil {
				f = &memFile{}
				d.files[op.Path] = f
			}
			f.write(op.Pos, op.Data)
		case port.OpTruncate:
			d.existing(op).truncate(op.Pos)
		case port.OpSync:
			f := d.existing(op)
			f.dur, f.unsynced = slices.Clone(f.data), nil
		case port.OpSyncDir:
			for _, names := range []map[string]*memFile{d.files, d.durNames} {
				for p := range names {
					if parentDir(p) == op.Path {
						d.syncName(p)
					}
				}
			}
		case port.OpRemove:
			delete(d.files, op.Path)
		case port.OpRemoveAll:
			for p := range d.files {
				if strings.HasPrefix(p, op.Path+"/") {
					delete(d.files, p)
				}
			}
		}
	}
}

func (d *memDisk) existing(op Op) *memFile {
	f := d.files[op.Path]
	if f == nil {
		panic(fmt.Sprintf("%s of missing file %s", op.Kind, op.Path))
	}
	return f
}

func (d *memDisk) syncName(p string) {
	if f := d.files[p]; f != nil {
		d.durNames[p] = f
	} else {
		delete(d.durNames, p)
	}
}

// complete applies ops and reports each completion to l, as a driver would.
func (d *memDisk) complete(l *Log, ops []Op) {
	d.apply(ops)
	for _, op := range ops {
		l.Completed(op.Completion)
	}
}

// crash leaves the disk as a machine crash would, drawing from rnd what
// survives of the unsynced state.
func (d *memDisk) crash(rnd *rand.Rand) {
	if !maps.Equal(d.files, d.durNames) && rnd.IntN(2) == 0 {
		d.files = maps.Clone(d.durNames)
	}
	d.durNames = maps.Clone(d.files)
	for _, p := range slices.Sorted(maps.Keys(d.files)) {
		d.files[p].settle(rnd)
	}
}

func (f *memFile) markUnsynced(from, to int64) { // bytes [from, to)
	if f.unsynced == nil {
		f.unsynced = map[int64]bool{}
	}
	for sec := from / memSector; sec*memSector < to; sec++ {
		f.unsynced[sec] = true
	}
}

func (f *memFile) write(pos int64, data []byte) {
	end := pos + int64(len(data))
	if old := int64(len(f.data)); end > old {
		f.data = append(f.data, make([]byte, end-old)...)
		f.markUnsynced(old, pos) // a hole reads as zeros
	}
	copy(f.data[pos:], data)
	f.markUnsynced(pos, end)
}

func (f *memFile) truncate(size int64) {
	old := int64(len(f.data))
	if size < old {
		f.markUnsynced(size, old)
		f.data = f.data[:size]
	} else {
		f.write(old, make([]byte, size-old))
	}
}

// settle makes the file what survives a crash: its durable content with a
// random subset of its unsynced sectors. The length is the durable one,
// grown to cover the last sector kept or, after an unsynced truncation,
// either that or the truncated one; past the current length a sector keeps
// its durable bytes.
func (f *memFile) settle(rnd *rand.Rand) {
	curLen, durLen := int64(len(f.data)), int64(len(f.dur))
	kept := map[int64]bool{}
	for _, sec := range slices.Sorted(maps.Keys(f.unsynced)) {
		kept[sec] = rnd.IntN(2) == 0
	}
	size := durLen
	if curLen >= durLen {
		for sec, k := range kept {
			if k && sec*memSector < curLen {
				size = max(size, min((sec+1)*memSector, curLen))
			}
		}
	} else if rnd.IntN(2) == 0 {
		size = curLen
	}
	out := make([]byte, size)
	copy(out, f.dur)
	for sec, k := range kept {
		if from := sec * memSector; k && from < min(size, curLen) {
			to := min(from+memSector, size, curLen)
			copy(out[from:to], f.data[from:to])
		}
	}
	f.data, f.dur, f.unsynced = out, slices.Clone(out), nil
}

func (d *memDisk) List(dir string) ([]port.DirEntry, error) {
	var out []port.DirEntry
	for p, f := range d.files {
		if name, ok := strings.CutPrefix(p, dir+"/"); ok && !strings.Contains(name, "/") {
			out = append(out, port.DirEntry{Name: name, Size: int64(len(f.data))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (d *memDisk) DropCache(string) error { return nil }

func (d *memDisk) ReadAt(path string, buf []byte, off int64) (int, error) {
	f := d.files[path]
	if f == nil || off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	n := copy(buf, f.data[off:])
	if n < len(buf) {
		return n, io.EOF
	}
	return n, nil
}

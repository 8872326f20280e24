package partlog

import (
	"io"
	"sort"
	"strings"

	"github.com/weirmq/weir/core/port"
)

// memDisk applies ops to in-memory files; it is a BootFS for Open. It has
// no crash model: the simulator's disk does; this is for unit tests.
type memDisk struct{ files map[string][]byte }

func newMemDisk() *memDisk { return &memDisk{files: map[string][]byte{}} }

func (d *memDisk) apply(ops []Op) {
	for _, op := range ops {
		switch op.Kind {
		case port.OpWrite:
			f := d.files[op.Path]
			if end := op.Pos + int64(len(op.Data)); int64(len(f)) < end {
				f = append(f, make([]byte, end-int64(len(f)))...)
			}
			copy(f[op.Pos:], op.Data)
			d.files[op.Path] = f
		case port.OpTruncate:
			d.files[op.Path] = d.files[op.Path][:op.Pos]
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

// complete applies ops and reports each completion to l, as a driver would.
func (d *memDisk) complete(l *Log, ops []Op) {
	d.apply(ops)
	for _, op := range ops {
		l.Completed(op.Completion)
	}
}

func (d *memDisk) List(dir string) ([]port.DirEntry, error) {
	var out []port.DirEntry
	for p, f := range d.files {
		if name, ok := strings.CutPrefix(p, dir+"/"); ok && !strings.Contains(name, "/") {
			out = append(out, port.DirEntry{Name: name, Size: int64(len(f))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (d *memDisk) DropCache(string) error { return nil }

func (d *memDisk) ReadAt(path string, buf []byte, off int64) (int, error) {
	f := d.files[path]
	if off >= int64(len(f)) {
		return 0, io.EOF
	}
	n := copy(buf, f[off:])
	if n < len(buf) {
		return n, io.EOF
	}
	return n, nil
}

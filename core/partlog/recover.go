package partlog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/weirmq/weir/core/bugs"
	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/record"
)

// readChunk is how much recovery reads at a time; a batch larger than this
// is read whole.
const readChunk = 1 << 20

// Open recovers the log in dir through fs. It returns the log and the
// operations that repair the directory (truncating a torn tail, removing
// segments past it and stray files, rewriting the active segment's
// indexes); the caller must issue them before anything else on the lane.
// Everything the log reports as durable afterwards is on disk: the repairs
// are followed by a sync round.
func Open(fs port.BootFS, dir string, cfg Config) (*Log, []Op, error) {
	entries, err := fs.List(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", dir, err)
	}
	l := &Log{dir: dir, cfg: cfg, producers: newProducers()}
	var ops []Op
	sizes := map[int64]int64{}
	var bases []int64
	for _, e := range entries {
		if e.IsDir {
			continue
		}
		base, ext, ok := parseSegmentName(e.Name)
		switch {
		case ok && ext == ".log":
			sizes[base] = e.Size
			bases = append(bases, base)
		case ok && (ext == ".index" || ext == ".timeindex"):
			// Indexes of live segments are kept; orphans go below.
		default:
			if strings.HasSuffix(e.Name, ".deleted") || strings.HasSuffix(e.Name, ".cleaned") ||
				strings.HasSuffix(e.Name, ".swap") || strings.HasSuffix(e.Name, ".tmp") {
				ops = append(ops, l.removeOp(e.Name))
			}
		}
	}
	for _, e := range entries {
		if base, ext, ok := parseSegmentName(e.Name); ok && ext != ".log" {
			if _, live := sizes[base]; !live {
				ops = append(ops, l.removeOp(e.Name))
			}
		}
	}
	// List is sorted by name and names are zero-padded, so bases ascend.
	for i, base := range bases {
		if n := len(l.segs); n > 0 && base != l.segs[n-1].lastOffset()+1 {
			// The segment before lost its tail whole (an unsynced file can
			// come back empty), leaving a gap no batch fills. What follows
			// was never acknowledged, as after a torn batch; kept, it
			// would make the log end jump over offsets with no records.
			ops = append(ops, l.removeLater(bases[i:])...)
			break
		}
		seg, valid, scanErr := l.scanSegment(fs, base, sizes[base])
		if scanErr == nil && valid == sizes[base] {
			l.segs = append(l.segs, seg)
			continue
		}
		if scanErr != nil && !errors.Is(scanErr, record.ErrTorn) && !errors.Is(scanErr, record.ErrCorrupt) {
			return nil, nil, scanErr
		}
		// Torn or corrupt: nothing from here on was ever acknowledged,
		// because acknowledged data was fsynced and a sync round covers
		// every file the log wrote before it.
		l.segs = append(l.segs, seg)
		if bugs.On(bugs.KeepTornTail) {
			seg.size = sizes[base] // believe the file's length
		} else {
			ops = append(ops, Op{DiskOp: port.DiskOp{Kind: port.OpTruncate, Lane: dir, Path: l.path(base, ".log"), Pos: valid}})
		}
		l.markDirty(l.path(base, ".log"))
		ops = append(ops, l.removeLater(bases[i+1:])...)
		break
	}
	if bugs.On(bugs.ForgetProducers) {
		l.producers = newProducers()
	}
	if seg := l.active(); seg != nil {
		ops = append(ops, l.rewriteIndexes(seg)...)
		l.start = l.segs[0].base
		l.end = seg.lastOffset() + 1
	}
	// The recovered bytes may sit in the page cache only (the process
	// crashed, not the machine), so nothing counts as durable until the
	// first sync round covers them; the node serves no reads before then.
	l.written, l.durable = l.end, l.start
	for _, seg := range l.segs {
		l.markDirty(l.path(seg.base, ".log"))
	}
	// The same holds for the directory entries of the segments: the
	// directory fsync that would have made them durable may have failed,
	// or never run before the crash.
	l.dirDirty = true
	l.recoverySync, l.recoveredEnd = true, l.end
	return l, ops, nil
}

// removeLater removes the segments with the given bases.
func (l *Log) removeLater(bases []int64) []Op {
	var ops []Op
	for _, base := range bases {
		ops = append(ops, l.removeSegment(base)...)
		l.dirDirty = true
	}
	return ops
}

func (l *Log) removeOp(name string) Op {
	return Op{DiskOp: port.DiskOp{Kind: port.OpRemove, Lane: l.dir, Path: l.dir + "/" + name}}
}

// parseSegmentName splits "00000000000000000042.log" into 42 and ".log".
func parseSegmentName(name string) (int64, string, bool) {
	dot := strings.IndexByte(name, '.')
	if dot != 20 {
		return 0, "", false
	}
	base, err := strconv.ParseInt(name[:dot], 10, 64)
	if err != nil || base < 0 {
		return 0, "", false
	}
	return base, name[dot:], true
}

// scanSegment reads a segment's batches, checking lengths, CRCs and offset
// order, and returns the segment built from the valid prefix and its
// length. A non-nil error wrapping record.ErrTorn or ErrCorrupt says why the
// scan stopped early; any other error is an IO failure.
func (l *Log) scanSegment(fs port.BootFS, base, size int64) (*segment, int64, error) {
	seg := &segment{base: base, lastIndexedTs: -1, maxTimestamp: -1}
	path := l.path(base, ".log")
	// A log that acknowledges only fsynced data must see only fsynced
	// data (port.BootFS.DropCache). A page-cache-mode log acknowledged
	// what the cache held, so it keeps the cache: dropping it would lose
	// acknowledged records that a process restart otherwise keeps.
	if l.cfg.FlushMessages <= 1 && !bugs.On(bugs.TrustCacheAfterFsyncError) {
		if err := fs.DropCache(path); err != nil {
			return seg, 0, fmt.Errorf("drop cached pages of %s: %w", path, err)
		}
	}
	var buf []byte
	var bufPos int64
	need := func(pos, n int64) ([]byte, error) {
		if pos >= bufPos && pos+n <= bufPos+int64(len(buf)) {
			return buf[pos-bufPos : pos-bufPos+n], nil
		}
		want := min(max(n, readChunk), size-pos)
		buf = make([]byte, want)
		bufPos = pos
		if _, err := fs.ReadAt(path, buf, pos); err != nil {
			return nil, fmt.Errorf("read %s at %d: %w", path, pos, err)
		}
		return buf[:n], nil
	}
	prevLast := base - 1
	var pos int64
	for pos < size {
		if size-pos < record.HeaderSize {
			return seg, pos, record.ErrTorn
		}
		hb, err := need(pos, record.HeaderSize)
		if err != nil {
			return seg, pos, err
		}
		h, err := record.ParseHeader(hb)
		if err != nil {
			return seg, pos, fmt.Errorf("%w: %v", record.ErrCorrupt, err)
		}
		n := h.Size()
		if n < record.HeaderSize {
			return seg, pos, fmt.Errorf("%w: batch length %d", record.ErrCorrupt, n)
		}
		if pos+n > size {
			return seg, pos, record.ErrTorn
		}
		b, err := need(pos, n)
		if err != nil {
			return seg, pos, err
		}
		if _, _, err := record.ScanOne(b); err != nil {
			return seg, pos, err
		}
		if h.BaseOffset <= prevLast {
			return seg, pos, fmt.Errorf("%w: offset %d after %d", record.ErrCorrupt, h.BaseOffset, prevLast)
		}
		if latest := l.LatestEpoch(); h.PartitionLeaderEpoch >= 0 && h.PartitionLeaderEpoch < latest {
			// Leader epochs never fall along a log (Append and
			// AppendReplica refuse it), so a lower one is a follower's
			// truncated tail come back behind the data that replaced
			// it. TruncateTo makes that impossible on a disk that keeps
			// fsync's promises; this catches it on one that does not,
			// whenever the epochs differ. As at a torn batch, the log
			// ends there.
			return seg, pos, fmt.Errorf("%w: leader epoch %d after %d", record.ErrCorrupt, h.PartitionLeaderEpoch, latest)
		}
		l.addRecovered(seg, h, pos)
		prevLast = h.LastOffset()
		pos += n
	}
	return seg, pos, nil
}

// addRecovered records a batch found by recovery, exactly as its append
// did. segment.ms counts from a segment's first batch; after a restart that
// batch's own timestamp is the best record of when that was.
func (l *Log) addRecovered(seg *segment, h record.Header, pos int64) {
	b := batchEntry{base: h.BaseOffset, last: h.LastOffset(), pos: pos, size: h.Size(),
		maxTimestamp: h.MaxTimestamp, producer: producerBatchOf(h)}
	l.addBatch(seg, b, h.PartitionLeaderEpoch, h.FirstTimestamp)
}

// rewriteIndexes regenerates the active segment's sparse indexes from its
// batches: the files on disk may be torn or stale after a crash.
func (l *Log) rewriteIndexes(seg *segment) []Op {
	var idx, tidx []byte
	seg.bytesSinceIndex, seg.indexEntries, seg.timeIndexEntries, seg.lastIndexedTs = 0, 0, 0, -1
	for _, b := range seg.batches {
		i, t := l.advanceIndex(seg, b.last, b.pos, b.size, b.maxTimestamp)
		idx, tidx = append(idx, i...), append(tidx, t...)
	}
	var ops []Op
	for _, f := range []struct {
		ext  string
		data []byte
	}{{".index", idx}, {".timeindex", tidx}} {
		// Write first, then cut what is left of the old file: a write also
		// creates an index file that a crash (or a failed create) lost,
		// where a truncation of a missing file would fail and take the log
		// directory offline at every boot.
		p := l.path(seg.base, f.ext)
		ops = append(ops,
			Op{DiskOp: port.DiskOp{Kind: port.OpWrite, Lane: l.dir, Path: p, Pos: 0, Data: f.data}},
			Op{DiskOp: port.DiskOp{Kind: port.OpTruncate, Lane: l.dir, Path: p, Pos: int64(len(f.data))}})
		l.markDirty(p)
	}
	return ops
}

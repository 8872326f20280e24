package partlog

import (
	"fmt"
	"math"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weirmq/weir/core/bugs"
	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/record"
)

// Config is the part of a topic's configuration the log obeys.
type Config struct {
	SegmentBytes       int64
	SegmentMs          int64
	RetentionMs        int64 // -1: keep forever
	RetentionBytes     int64 // -1: no size limit
	IndexIntervalBytes int64
	SegmentIndexBytes  int64
	// FlushMessages is Kafka's flush.messages. 1 (Weir's default) means
	// every acknowledgement waits for fsync; larger values give Kafka's
	// page-cache behaviour, with an fsync once that many messages are
	// unflushed or FlushMs has passed.
	FlushMessages int64
	FlushMs       int64
}

// Completion says what a finished operation means to the log.
type Completion uint8

const (
	// NoCompletion: the log need not be told.
	NoCompletion Completion = iota
	// DataWritten: a batch write finished; the log's written end advances.
	DataWritten
	// SyncPart: one fsync of a sync round finished.
	SyncPart
)

// Op is a disk operation the log needs, and what its completion means.
type Op struct {
	port.DiskOp
	Completion Completion
}

// Slice is a contiguous run of whole batches in one segment file.
type Slice struct {
	File     string
	Pos, Len int64
}

// AppendResult tells where a batch went.
type AppendResult struct {
	Base, Last int64
	// Duplicate: an idempotent producer retried a batch the log already
	// holds; Base and Last are the original offsets and nothing was written.
	Duplicate bool
	Ops       []Op
}

// Log is one partition's log.
type Log struct {
	dir  string
	cfg  Config
	segs []*segment

	start, end int64
	written    int64
	durable    int64
	// writeEnds holds, in issue order, the end offset of each batch write
	// still in flight; completions arrive in the same order (one lane).
	writeEnds []int64

	syncing     bool
	syncTarget  int64
	syncOpsLeft int
	// dirtyFiles are files written since the last sync round began, kept
	// sorted so the ops a round emits do not depend on map order.
	dirtyFiles []string
	dirDirty   bool
	// recoverySync: Open found data that may sit in the page cache only,
	// so the first sync round is due whatever the flush policy says (the
	// node serves nothing until it is done).
	recoverySync bool
	// recoveredEnd is the log end Open found: until a sync round covers
	// it (or a truncation cuts it away), what recovery read may be in the
	// page cache only.
	recoveredEnd int64
	// removed: Remove was called; the log emits no more operations.
	removed bool
	// unflushed counts messages appended since the last sync round began,
	// and flushDueMonoNs is when flush.ms forces one (page-cache mode).
	unflushed      int64
	flushDueMonoNs int64

	producers producers
	// epochs is the leader epoch cache: where each leader epoch's batches
	// begin, ascending (Kafka's leader-epoch-checkpoint). It is rebuilt
	// from the batches themselves at recovery, which reads every batch
	// anyway, so it needs no file of its own.
	epochs []epochStart
}

// epochStart is where the batches of a leader epoch begin.
type epochStart struct {
	epoch int32
	start int64
}

// noteEpoch records that a batch of epoch starts at offset base.
func (l *Log) noteEpoch(epoch int32, base int64) {
	if epoch < 0 {
		return // written before leader epochs were stamped
	}
	if n := len(l.epochs); n == 0 || epoch > l.epochs[n-1].epoch {
		l.epochs = append(l.epochs, epochStart{epoch: epoch, start: base})
	}
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch as Kafka's leader epoch
// cache does: the largest epoch not above epoch that the log holds, and
// the offset where the epoch after it begins (for the latest epoch, end,
// which the caller bounds: the log end for followers, the high watermark
// for clients). Both are -1 when the log has nothing to say.
func (l *Log) EndOffsetForEpoch(epoch int32, end int64) (int32, int64) {
	n := len(l.epochs)
	switch {
	case epoch < 0 || n == 0:
		return -1, -1
	case epoch == l.epochs[n-1].epoch:
		return epoch, end
	}
	higher := sort.Search(n, func(i int) bool { return l.epochs[i].epoch > epoch })
	switch {
	case higher == n:
		return -1, -1 // an epoch after the latest
	case higher == 0:
		return epoch, l.epochs[0].start
	}
	return l.epochs[higher-1].epoch, l.epochs[higher].start
}

// LatestEpoch is the newest leader epoch in the epoch cache, -1 if it is
// empty: what a follower sends as Fetch's LastFetchedEpoch.
func (l *Log) LatestEpoch() int32 {
	if n := len(l.epochs); n > 0 {
		return l.epochs[n-1].epoch
	}
	return -1
}

// trimEpochs drops what the epoch cache holds before the log start.
func (l *Log) trimEpochs() {
	i := 0
	for i+1 < len(l.epochs) && l.epochs[i+1].start <= l.start {
		i++
	}
	l.epochs = l.epochs[i:]
	if len(l.epochs) > 0 {
		l.epochs[0].start = max(l.epochs[0].start, l.start)
	}
}

// New returns an empty log for a partition directory that does not exist
// yet, with the operations that create it durably.
func New(dir string, cfg Config) (*Log, []Op) {
	l := &Log{dir: dir, cfg: cfg, producers: newProducers()}
	return l, []Op{
		{DiskOp: port.DiskOp{Kind: port.OpMkdir, Lane: dir, Path: dir}},
		{DiskOp: port.DiskOp{Kind: port.OpSyncDir, Lane: dir, Path: parentDir(dir)}},
	}
}

func parentDir(dir string) string {
	for i := len(dir) - 1; i >= 0; i-- {
		if dir[i] == '/' {
			return dir[:i]
		}
	}
	return "."
}

// Dir is the partition directory; it is also the log's disk lane.
func (l *Log) Dir() string { return l.dir }

// StartOffset is the first offset still in the log.
func (l *Log) StartOffset() int64 { return l.start }

// EndOffset is the next offset the log will assign (Kafka's log end offset).
func (l *Log) EndOffset() int64 { return l.end }

// DurableOffset is the end of what a completed fsync covers.
func (l *Log) DurableOffset() int64 { return l.durable }

// RecoveryDurable reports whether everything recovery found is durable:
// the node serves nothing before (appends since, which page-cache mode
// may never sync, do not count).
func (l *Log) RecoveryDurable() bool { return l.durable >= min(l.recoveredEnd, l.end) }

// WrittenOffset is the end of completed writes.
func (l *Log) WrittenOffset() int64 { return l.written }

// StableOffset is where acknowledgement and visibility stop: the durable
// end when every message is flushed before it is acknowledged, else the
// written end (Kafka's page-cache behaviour).
func (l *Log) StableOffset() int64 {
	if l.cfg.FlushMessages <= 1 && !bugs.On(bugs.AckBeforeFsync) {
		return l.durable
	}
	return l.written
}

// SetConfig changes the configuration; it applies from the next append.
func (l *Log) SetConfig(cfg Config) { l.cfg = cfg }

func (l *Log) active() *segment {
	if len(l.segs) == 0 {
		return nil
	}
	return l.segs[len(l.segs)-1]
}

func (l *Log) path(base int64, ext string) string {
	return l.dir + "/" + segmentName(base, ext)
}

// Append stores a validated batch (record.Validate accepted it) at the end
// of the log. It edits the batch in place: base offset, leader epoch, and
// for logAppendTime the timestamp. The batch must not be changed afterwards.
//
// A leaderEpoch below LatestEpoch is refused with NOT_LEADER_OR_FOLLOWER:
// the caller's idea of the leadership is stale, and recovery would end the
// log at such a batch (see scanSegment), losing what follows it.
func (l *Log) Append(batch []byte, h record.Header, leaderEpoch int32, nowMs int64, logAppendTime bool) (AppendResult, error) {
	if latest := l.LatestEpoch(); leaderEpoch < latest {
		return AppendResult{}, fmt.Errorf("%w: leader epoch %d is older than the log's %d", kerr.NotLeaderForPartition, leaderEpoch, latest)
	}
	if h.HasProducerID() {
		dup, err := l.producers.check(h)
		if err != nil {
			return AppendResult{}, err
		}
		if dup != nil {
			return AppendResult{Base: dup.base, Last: dup.last, Duplicate: true}, nil
		}
	}
	record.SetBaseOffset(batch, l.end)
	// The leader stamps its epoch on every batch, as Kafka does: it is
	// outside the CRC, and replicas find where logs diverge by it.
	record.SetPartitionLeaderEpoch(batch, leaderEpoch)
	maxTs := h.MaxTimestamp
	if logAppendTime {
		record.SetLogAppendTime(batch, nowMs)
		maxTs = nowMs
	}
	return l.store(batch, h, leaderEpoch, maxTs, nowMs), nil
}

// store puts a batch whose bytes are final (base offset l.end, leader epoch
// and timestamps set) at the end of the log: it rolls a segment when one is
// due, writes the batch and the sparse index entries it earns, and records
// it. Append and AppendReplica differ only in how the bytes became final.
func (l *Log) store(batch []byte, h record.Header, epoch int32, maxTs, nowMs int64) AppendResult {
	var ops []Op
	size := int64(len(batch))
	if l.shouldRoll(size, h.LastOffsetDelta, nowMs) {
		ops = l.roll()
	}
	seg := l.active()
	b := batchEntry{base: l.end, last: l.end + int64(h.LastOffsetDelta), pos: seg.size, size: size,
		maxTimestamp: maxTs, producer: producerBatchOf(h)}
	idxPos, tidxPos := seg.indexEntries*8, seg.timeIndexEntries*12
	if idx, tidx := l.advanceIndex(seg, b.last, b.pos, size, maxTs); idx != nil {
		ops = append(ops, Op{DiskOp: port.DiskOp{Kind: port.OpWrite, Lane: l.dir, Path: l.path(seg.base, ".index"), Pos: idxPos, Data: idx}})
		if tidx != nil {
			ops = append(ops, Op{DiskOp: port.DiskOp{Kind: port.OpWrite, Lane: l.dir, Path: l.path(seg.base, ".timeindex"), Pos: tidxPos, Data: tidx}})
		}
	}
	ops = append(ops, Op{
		DiskOp:     port.DiskOp{Kind: port.OpWrite, Lane: l.dir, Path: l.path(seg.base, ".log"), Pos: b.pos, Data: batch},
		Completion: DataWritten,
	})
	l.addBatch(seg, b, epoch, nowMs)
	l.end = b.last + 1
	l.writeEnds = append(l.writeEnds, l.end)
	l.unflushed += int64(h.NumRecords)
	l.markDirty(l.path(seg.base, ".log"))
	return AppendResult{Base: b.base, Last: b.last, Ops: ops}
}

// addBatch records a stored batch in the in-memory state of seg, the last
// segment, and in the epoch cache and producer state: what appends and
// recovery alike learn from a batch. nowMs is when seg's age starts if the
// batch is its first.
func (l *Log) addBatch(seg *segment, b batchEntry, epoch int32, nowMs int64) {
	if len(seg.batches) == 0 {
		seg.createdMs = nowMs
	}
	seg.batches = append(seg.batches, b)
	seg.size = b.pos + b.size
	seg.maxTimestamp = max(seg.maxTimestamp, b.maxTimestamp)
	l.noteEpoch(epoch, b.base)
	l.producers.record(b.producer, b.base, b.last)
}

// advanceIndex applies Kafka's index.interval.bytes rule to a batch about
// to be placed at pos: once more than that many bytes were written since the
// last entry, the batch gets an .index entry (its last offset and position)
// and, if its timestamp is a new maximum, a .timeindex entry.
func (l *Log) advanceIndex(seg *segment, last, pos, size, maxTs int64) (idx, tidx []byte) {
	due := seg.bytesSinceIndex > l.cfg.IndexIntervalBytes
	seg.bytesSinceIndex += size
	if !due {
		return nil, nil
	}
	seg.bytesSinceIndex = size
	rel := last - seg.base
	idx = indexEntry(rel, pos)
	seg.indexEntries++
	if maxTs > seg.lastIndexedTs {
		tidx = timeIndexEntry(maxTs, rel)
		seg.timeIndexEntries++
		seg.lastIndexedTs = maxTs
	}
	return idx, tidx
}

// shouldRoll follows Kafka's LogSegment.shouldRoll: size, age, a full
// index, or a relative offset that would overflow 32 bits.
func (l *Log) shouldRoll(size int64, lastDelta int32, nowMs int64) bool {
	seg := l.active()
	if seg == nil {
		return true
	}
	if len(seg.batches) == 0 {
		return false
	}
	switch {
	case seg.size+size > l.cfg.SegmentBytes:
		return true
	case l.cfg.SegmentMs > 0 && nowMs-seg.createdMs >= l.cfg.SegmentMs:
		return true
	case (seg.indexEntries+1)*8 > l.cfg.SegmentIndexBytes || (seg.timeIndexEntries+1)*12 > l.cfg.SegmentIndexBytes:
		return true
	case l.end+int64(lastDelta)-seg.base > math.MaxInt32:
		return true
	}
	return false
}

// roll starts a new active segment at the log end. The closed segment's
// index files join the next sync round so they are durable once closed.
func (l *Log) roll() []Op {
	if old := l.active(); old != nil {
		l.markDirty(l.path(old.base, ".index"))
		l.markDirty(l.path(old.base, ".timeindex"))
	}
	seg := &segment{base: l.end, lastIndexedTs: -1, maxTimestamp: -1}
	l.segs = append(l.segs, seg)
	l.dirDirty = !bugs.On(bugs.RollSkipsDirSync)
	// Create the index files now so a closed segment always has them.
	return []Op{
		{DiskOp: port.DiskOp{Kind: port.OpWrite, Lane: l.dir, Path: l.path(seg.base, ".index")}},
		{DiskOp: port.DiskOp{Kind: port.OpWrite, Lane: l.dir, Path: l.path(seg.base, ".timeindex")}},
	}
}

// removeSegment returns the removals of a segment's files. They leave the
// next sync round too (a roll marks the closed segment's indexes), or its
// fsync would fail on a missing file.
func (l *Log) removeSegment(base int64) []Op {
	ops := make([]Op, 0, len(segmentExts))
	for _, ext := range segmentExts {
		p := l.path(base, ext)
		ops = append(ops, Op{DiskOp: port.DiskOp{Kind: port.OpRemove, Lane: l.dir, Path: p}})
		l.unmarkDirty(p)
	}
	return ops
}

func (l *Log) unmarkDirty(path string) {
	i := sort.SearchStrings(l.dirtyFiles, path)
	if i < len(l.dirtyFiles) && l.dirtyFiles[i] == path {
		l.dirtyFiles = append(l.dirtyFiles[:i], l.dirtyFiles[i+1:]...)
	}
}

func (l *Log) markDirty(path string) {
	i := sort.SearchStrings(l.dirtyFiles, path)
	if i < len(l.dirtyFiles) && l.dirtyFiles[i] == path {
		return
	}
	l.dirtyFiles = append(l.dirtyFiles, "")
	copy(l.dirtyFiles[i+1:], l.dirtyFiles[i:])
	l.dirtyFiles[i] = path
}

// MaybeSync starts a sync round if there is unsynced data, none is in
// flight, and the flush policy wants one. Calling it once after a burst of
// appends, rather than per append, is what makes group commit: one round
// covers every append issued before it.
func (l *Log) MaybeSync(nowMonoNs int64) []Op {
	if l.syncing || l.removed {
		return nil
	}
	if len(l.dirtyFiles) == 0 && !l.dirDirty {
		l.flushDueMonoNs = 0 // nothing left to flush
		return nil
	}
	if !l.recoverySync && l.cfg.FlushMessages > 1 && l.unflushed < l.cfg.FlushMessages {
		// flush.ms defaults to Long.MAX_VALUE in Kafka: no deadline at all.
		if l.cfg.FlushMs < 0 || l.cfg.FlushMs > (math.MaxInt64-nowMonoNs)/1_000_000 {
			return nil
		}
		if l.flushDueMonoNs == 0 {
			l.flushDueMonoNs = nowMonoNs + l.cfg.FlushMs*1e6
		}
		if nowMonoNs < l.flushDueMonoNs {
			return nil
		}
	}
	ops := make([]Op, 0, len(l.dirtyFiles)+1)
	for _, p := range l.dirtyFiles {
		ops = append(ops, Op{DiskOp: port.DiskOp{Kind: port.OpSync, Lane: l.dir, Path: p}, Completion: SyncPart})
	}
	if l.dirDirty {
		ops = append(ops, Op{DiskOp: port.DiskOp{Kind: port.OpSyncDir, Lane: l.dir, Path: l.dir}, Completion: SyncPart})
	}
	l.dirtyFiles = l.dirtyFiles[:0]
	l.dirDirty = false
	l.syncing = true
	l.recoverySync = false
	l.syncTarget = l.end
	l.syncOpsLeft = len(ops)
	l.unflushed = 0
	l.flushDueMonoNs = 0
	return ops
}

// FlushDueMonoNs is when a page-cache-mode log wants MaybeSync called
// again (flush.ms); zero when it has no deadline.
func (l *Log) FlushDueMonoNs() int64 {
	if l.syncing || l.removed {
		// The round's completion calls MaybeSync again; a deadline that
		// passed meanwhile would only make the node spin on wake-ups.
		return 0
	}
	return l.flushDueMonoNs
}

// Completed tells the log one of its operations finished successfully.
// Failed operations are not reported here: a disk error takes the whole log
// directory offline (DESIGN.md section 4), it is never retried or guessed at.
func (l *Log) Completed(c Completion) {
	switch c {
	case DataWritten:
		if len(l.writeEnds) == 0 {
			panic("partlog: write completion with no write in flight")
		}
		l.written = l.writeEnds[0]
		l.writeEnds = l.writeEnds[1:]
	case SyncPart:
		if !l.syncing || l.syncOpsLeft <= 0 {
			panic("partlog: sync completion with no sync in flight")
		}
		l.syncOpsLeft--
		if l.syncOpsLeft == 0 {
			if l.written < l.syncTarget {
				panic("partlog: sync finished before the writes it covers")
			}
			l.durable = l.syncTarget
			l.syncing = false
		}
	}
}

// ErrOffsetOutOfRange is Kafka's OFFSET_OUT_OF_RANGE.
var ErrOffsetOutOfRange = kerr.OffsetOutOfRange

// Read returns whole batches starting with the one that holds offset, all
// ending below limit, from one segment, totalling at most maxBytes — except
// that with minOne the first batch is returned even if larger (KIP-74).
// An empty Slice means nothing is readable yet.
func (l *Log) Read(offset, maxBytes, limit int64, minOne bool) (Slice, error) {
	if offset < l.start || offset > l.end {
		return Slice{}, ErrOffsetOutOfRange
	}
	if offset >= limit {
		return Slice{}, nil
	}
	si := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset }) - 1
	for si = max(si, 0); si < len(l.segs); si++ {
		seg := l.segs[si]
		i := seg.find(offset)
		if i == len(seg.batches) {
			continue
		}
		var n int64
		j := i
		for ; j < len(seg.batches) && seg.batches[j].last < limit; j++ {
			if n+seg.batches[j].size > maxBytes && !(j == i && minOne) {
				break
			}
			n += seg.batches[j].size
		}
		if n == 0 {
			return Slice{}, nil
		}
		return Slice{File: l.path(seg.base, ".log"), Pos: seg.batches[i].pos, Len: n}, nil
	}
	return Slice{}, nil
}

// OffsetForTimestamp returns the base offset and largest timestamp of the
// first batch below limit holding a timestamp ≥ ts, or (-1, -1). Kafka
// answers with the exact record; Weir answers with the start of its batch
// (it does not read records back), so a consumer may see a few earlier
// records of that batch.
func (l *Log) OffsetForTimestamp(ts, limit int64) (offset, timestamp int64) {
	for _, seg := range l.segs {
		if seg.maxTimestamp < ts {
			continue
		}
		for _, b := range seg.batches {
			if b.last >= limit {
				return -1, -1
			}
			if b.maxTimestamp >= ts {
				return max(b.base, l.start), b.maxTimestamp
			}
		}
	}
	return -1, -1
}

// MaxTimestamp returns the largest timestamp below limit and the base offset
// of the batch holding it, or (-1, -1) for an empty log.
func (l *Log) MaxTimestamp(limit int64) (ts, offset int64) {
	ts, offset = -1, -1
	for _, seg := range l.segs {
		for _, b := range seg.batches {
			if b.last >= limit {
				return ts, offset
			}
			if b.maxTimestamp > ts {
				ts, offset = b.maxTimestamp, b.base
			}
		}
	}
	return ts, offset
}

// ApplyRetention deletes whole closed segments that are past retention.ms
// or beyond retention.bytes, and returns the removals. The active segment
// is never deleted, and neither is anything not yet durable nor anything
// at or above limit (the high watermark: as in Kafka, what is not yet
// committed stays, since a new leader may still need it).
func (l *Log) ApplyRetention(nowMs, limit int64) []Op {
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	var ops []Op
	for len(l.segs) > 1 || bugs.On(bugs.RetentionUnsafe) && len(l.segs) > 0 {
		seg := l.segs[0]
		expired := l.cfg.RetentionMs >= 0 && seg.maxTimestamp >= 0 && nowMs-seg.maxTimestamp > l.cfg.RetentionMs
		tooBig := l.cfg.RetentionBytes >= 0 && total-seg.size >= l.cfg.RetentionBytes
		if !(expired || tooBig) || seg.lastOffset() >= min(l.StableOffset(), limit) && !bugs.On(bugs.RetentionUnsafe) {
			break
		}
		ops = append(ops, l.removeSegment(seg.base)...)
		total -= seg.size
		l.segs = l.segs[1:]
		if len(l.segs) == 0 { // only with bugs.RetentionUnsafe
			l.start = l.end
			break
		}
		l.start = l.segs[0].base
		l.dirDirty = true
	}
	l.trimEpochs()
	return ops
}

// Size is the total bytes of the log's segments.
func (l *Log) Size() int64 {
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

// Remove returns the operation that deletes the whole partition directory.
func (l *Log) Remove() []Op {
	// A sync round or flush.ms deadline queued before the removal must not
	// fsync files that no longer exist: the log does no more disk work.
	l.removed = true
	return []Op{
		{DiskOp: port.DiskOp{Kind: port.OpRemoveAll, Lane: l.dir, Path: l.dir}},
		{DiskOp: port.DiskOp{Kind: port.OpSyncDir, Lane: l.dir, Path: parentDir(l.dir)}},
	}
}

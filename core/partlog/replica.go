package partlog

import (
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/record"
)

// The follower's side of the log: appending the leader's batches as they
// are, and cutting a tail that diverged from the leader's.
//
// A cut is durable before anything is written after it. A follower cuts
// its log and then appends the leader's batches at the same offsets,
// usually in the same file at the same positions. Were the cut not on disk
// when those writes land, a crash could keep some new sectors and lose
// others, which then read back as the old ones, or undo the cut and keep
// the new data: batches the leader never had would reappear behind the new
// ones, and be served as replicated data. So TruncateTo and ResetTo emit,
// on the log's lane, their truncations and removals, then an fsync of every
// file they cut and, when they removed files, of the directory. The lane
// runs operations one at a time in order, so every later write (and sync
// round) starts after those fsyncs finished. A machine crash then leaves:
//
//   - Before they all finished: nothing written after the cut has run.
//     Each file is as it was or as cut, and as the removals go newest
//     first, the segments left begin as the old log did. A removed
//     segment that comes back past a cut one either sits after a gap,
//     where recovery drops it as it drops anything past a gap, or follows
//     the old data it followed before. Recovery finds the old log or a
//     prefix of it, and the follower cuts it again once it fetches.
//     Offsets below the cut were never touched, so what the follower
//     reported as durable there is still there.
//   - After: a cut file's durable length is the cut, so whatever a crash
//     keeps of later writes sits on the cut prefix, and what it loses reads
//     as zeros or as nothing (a torn tail, which recovery removes), never
//     as old bytes. A removed file's entry is durably gone, so a segment
//     created later under its name is a new file. Recovery finds the cut
//     log and a prefix of what was appended after it.
//
// A process crash keeps the page cache, and with it a cut whose fsyncs
// had not run: recovery builds on the cut log, and its first sync round,
// which fsyncs every .log and the directory, is what makes the cut
// durable. So that round must run before anything is appended to the
// recovered log, as it does when the caller issues it with the repairs.
//
// Recovery adds a check of its own: epochs never fall along a log, so a
// batch with an epoch below an earlier one ends it (see scanSegment).

// AppendReplica appends a batch that a follower fetched from its leader,
// exactly as the leader stored it: its base offset, partition leader epoch
// and timestamps are kept, as in Kafka's appendAsFollower. h is the header
// record.ScanOne returned for the batch, which checked its length and CRC.
//
// A batch that does not start at EndOffset, whose leader epoch is below
// LatestEpoch (a leader never sends one), or whose bytes are not those h
// was read from is refused, with an error wrapping kerr.CorruptMessage and
// no change to the log; the caller drops the rest of the fetched data and
// fetches again. Sequence numbers are not checked (the leader did), but the
// producer state learns the batch as from a leader's append, so a follower
// that becomes leader deduplicates retries of it.
//
// A follower's clock plays no part: segment.ms is measured on the batches'
// own timestamps (a segment's age is the incoming batch's max timestamp
// minus its first batch's), as Kafka's LogSegment.shouldRoll measures it
// once a segment holds data, so a replica rolls where its data says rather
// than when it happened to fetch it.
func (l *Log) AppendReplica(batch []byte, h record.Header) (AppendResult, error) {
	// Base offset and leader epoch lie outside the CRC, so they are taken
	// from the bytes that will be stored, as recovery will read them.
	stored, err := record.ParseHeader(batch)
	switch {
	case err != nil || stored != h || stored.Size() != int64(len(batch)):
		return AppendResult{}, fmt.Errorf("%w: the %d bytes to store are not the batch whose header was checked", kerr.CorruptMessage, len(batch))
	case stored.BaseOffset != l.end:
		return AppendResult{}, fmt.Errorf("%w: batch at offset %d, log end %d", kerr.CorruptMessage, stored.BaseOffset, l.end)
	case stored.PartitionLeaderEpoch < l.LatestEpoch():
		return AppendResult{}, fmt.Errorf("%w: leader epoch %d after %d", kerr.CorruptMessage, stored.PartitionLeaderEpoch, l.LatestEpoch())
	}
	return l.store(batch, h, stored.PartitionLeaderEpoch, h.MaxTimestamp, h.MaxTimestamp), nil
}

// TruncateTo removes every batch whose last offset is at or past offset,
// as Kafka's truncateTo does for a follower whose log diverged. A batch
// holding offset goes whole, so newEnd, the new log end, is a batch
// boundary at or below offset. An offset at or below StartOffset empties
// the log down to its start, keeping its first segment, empty, so that
// recovery still finds the start. An offset at or past the end removes
// nothing (newEnd is the end, ops nil), but like any truncation it drops
// the epoch cache entries from newEnd on: one that starts at the end with
// no batch (StartEpoch, from a leadership that wrote nothing) would
// otherwise claim a divergence that is not there.
//
// On disk: the segments wholly past the cut are removed; the one that
// ends at it, now the active segment, has its .log truncated and its
// indexes rewritten to the entries of the batches it keeps; then those
// three files and, if files were removed, the directory are fsynced, all
// before any later write (see the top of this file). In memory, segments,
// offsets, epoch cache and producer state become what a log that never
// held the removed batches would have, so later appends roll, and write
// index entries, exactly where that log would.
//
// It may be called with writes and a sync round in flight: they were
// emitted first and run first, and when they complete they advance the
// written and durable offsets no further than newEnd.
func (l *Log) TruncateTo(offset int64) (newEnd int64, ops []Op) {
	offset = max(offset, l.start) // there is nothing below the start to remove
	if offset >= l.end {
		l.truncateEpochs(l.end)
		return l.end, nil
	}
	// Segments are contiguous and the first begins at the start, so some
	// segment holds offset, and a batch in it ends at or past offset.
	si := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset }) - 1
	seg := l.segs[si]
	keep := sort.Search(len(seg.batches), func(i int) bool { return seg.batches[i].last >= offset })
	newEnd = seg.batches[keep].base
	if keep == 0 && si > 0 {
		// The cut is at a segment boundary: the segment goes whole, and
		// the one before, which ends at the cut, is active again, as in a
		// log that never rolled past it.
		si--
		seg = l.segs[si]
		keep = len(seg.batches)
	}

	ops = l.removeNewestFirst(l.segs[si+1:])
	removedFiles := si+1 < len(l.segs)
	l.segs = l.segs[:si+1]
	seg.cut(keep)
	ops = append(ops, Op{DiskOp: port.DiskOp{Kind: port.OpTruncate, Lane: l.dir, Path: l.path(seg.base, ".log"), Pos: seg.size}})
	// The indexes are rewritten from the kept batches rather than only cut:
	// a segment recovery left closed never had its index files checked (it
	// rewrites only the active segment's), and one may be missing, which a
	// truncation would fail on. Their entries for kept batches are
	// unchanged, so in the usual case this writes back what is there.
	ops = append(ops, l.rewriteIndexes(seg)...)
	for _, ext := range segmentExts {
		ops = append(ops, Op{DiskOp: port.DiskOp{Kind: port.OpSync, Lane: l.dir, Path: l.path(seg.base, ext)}})
	}
	if removedFiles {
		ops = append(ops, Op{DiskOp: port.DiskOp{Kind: port.OpSyncDir, Lane: l.dir, Path: l.dir}})
	}
	l.moveEnd(newEnd)
	l.truncateEpochs(newEnd)
	l.rebuildProducers()
	return newEnd, ops
}

// ResetTo empties the log and starts it again at offset, which becomes both
// its start and its end: Kafka's truncateFullyAndStartAt, for a follower
// whose fetch offset fell below its leader's log start. Every segment is
// removed, the producer state and epoch cache are cleared, and an empty
// segment is created at offset so that recovery finds the new start. The
// removals and creations are durable (a directory fsync) before any later
// write, for the reasons given at the top of this file; a crash before
// that may leave the old log, a prefix of it, or (every segment gone, the
// new one not yet there) an empty log at offset 0, each of which the
// follower resets again once it fetches. Like TruncateTo, it may be called
// with writes and a sync round in flight.
func (l *Log) ResetTo(offset int64) []Op {
	ops := l.removeNewestFirst(l.segs)
	l.segs = nil
	l.start = offset
	l.moveEnd(offset)
	l.epochs = nil
	l.producers = newProducers()
	// roll creates the index files; recovery finds segments by their .log,
	// so that is created too rather than by a first write.
	ops = append(ops, l.roll()...)
	return append(ops,
		Op{DiskOp: port.DiskOp{Kind: port.OpWrite, Lane: l.dir, Path: l.path(offset, ".log")}},
		Op{DiskOp: port.DiskOp{Kind: port.OpSyncDir, Lane: l.dir, Path: l.dir}})
}

// removeNewestFirst returns the removals of segs, the last segments of the
// log, newest first: a crash part way leaves a prefix of the log, never
// one whose beginning is gone.
func (l *Log) removeNewestFirst(segs []*segment) []Op {
	var ops []Op
	for i := len(segs) - 1; i >= 0; i-- {
		ops = append(ops, l.removeSegment(segs[i].base)...)
	}
	return ops
}

// moveEnd makes end the log end after a truncation or reset, and brings
// every other offset the log tracks within [start, end]: the ends of
// writes in flight and the target of a sync round in flight too. Those
// operations were emitted before the truncation and run before it, and
// what they covered past end is gone, so start ≤ durable ≤ written ≤ end
// holds now and still holds as they complete. What recovery found past
// end is gone too, so it need not become durable.
func (l *Log) moveEnd(end int64) {
	bound := func(offset int64) int64 { return min(max(offset, l.start), end) }
	l.end, l.recoveredEnd = end, min(l.recoveredEnd, end)
	l.written, l.durable, l.syncTarget = bound(l.written), bound(l.durable), bound(l.syncTarget)
	for i, e := range l.writeEnds {
		l.writeEnds[i] = bound(e)
	}
}

// truncateEpochs drops the epoch cache's entries that start at or after
// end (Kafka's truncateFromEnd).
func (l *Log) truncateEpochs(end int64) {
	l.epochs = l.epochs[:sort.Search(len(l.epochs), func(i int) bool { return l.epochs[i].start >= end })]
}

// rebuildProducers replays the batches the log holds into a new producer
// state, which is what recovery would build from them.
func (l *Log) rebuildProducers() {
	l.producers = newProducers()
	for _, seg := range l.segs {
		for _, b := range seg.batches {
			l.producers.record(b.producer, b.base, b.last)
		}
	}
}

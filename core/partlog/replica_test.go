package partlog

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/record"
)

// leaderBatch is a batch as a leader stored it: at base, stamped with
// epoch, with its header as record.ScanOne reads it on the follower.
func leaderBatch(t tester, base int64, epoch int32, spec record.BuildSpec) ([]byte, record.Header) {
	t.Helper()
	b := record.Build(spec)
	record.SetBaseOffset(b, base)
	record.SetPartitionLeaderEpoch(b, epoch)
	h, _, err := record.ScanOne(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, h
}

// records is a BuildSpec of n records of valueSize bytes at ts; pid -1 is
// a producer that is not idempotent.
func records(pid int64, seq int32, n, valueSize int, ts int64) record.BuildSpec {
	spec := record.BuildSpec{ProducerID: pid, ProducerEpoch: -1, BaseSequence: seq, FirstTimestamp: ts}
	if pid >= 0 {
		spec.ProducerEpoch = 0
	} else {
		spec.BaseSequence = -1
	}
	for range n {
		spec.Records = append(spec.Records, record.BuildRecord{Value: make([]byte, valueSize)})
	}
	return spec
}

// replicate appends a fetched batch and runs its writes and a sync round.
func replicate(t *testing.T, d *memDisk, l *Log, b []byte, h record.Header) AppendResult {
	t.Helper()
	res, err := l.AppendReplica(b, h)
	if err != nil {
		t.Fatal(err)
	}
	d.complete(l, res.Ops)
	d.complete(l, l.MaybeSync(0))
	return res
}

// contents maps every file of a disk to its bytes.
func contents(d *memDisk) map[string]string {
	out := map[string]string{}
	for p, f := range d.files {
		out[p] = string(f.data)
	}
	return out
}

func newLog(t *testing.T, cfg Config) (*memDisk, *Log) {
	t.Helper()
	d := newMemDisk()
	l, ops := New(dir, cfg)
	d.apply(ops)
	return d, l
}

// recovered opens the log on d as a restarted node does, and runs its
// repairs and first sync round.
func recovered(t *testing.T, d *memDisk, cfg Config) *Log {
	t.Helper()
	r, repairs, err := Open(d, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.complete(r, repairs)
	d.complete(r, r.MaybeSync(0))
	return r
}

// replicaConfig rolls and indexes often, so that small batches exercise both.
func replicaConfig() Config {
	cfg := testConfig()
	cfg.SegmentBytes = 1200
	cfg.IndexIntervalBytes = 150
	return cfg
}

// TestAppendReplicaMirrorsLeader: a follower that appends what it fetches
// ends with the leader's files byte for byte (epochs, offsets and
// LogAppendTime timestamps as the leader stamped them), the same epoch
// cache and producer state, and once leader it deduplicates a retry of a
// batch it only replicated.
func TestAppendReplicaMirrorsLeader(t *testing.T) {
	cfg := replicaConfig()
	ld, leader := newLog(t, cfg)
	var last AppendResult
	var lastSpec record.BuildSpec
	var seq int32
	for i, epoch := range []int32{0, 0, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4} {
		ts := int64(1000 + 10*i)
		spec := records(-1, 0, 1+i%3, 40+17*i, ts)
		if i%2 == 0 {
			spec = records(7, seq, 1, 40+17*i, ts)
			seq++
		}
		b := record.Build(spec)
		h, err := record.Validate(b, 1<<20, ts, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		res, err := leader.Append(b, h, epoch, ts+5, i%5 == 0)
		if err != nil {
			t.Fatal(err)
		}
		ld.complete(leader, res.Ops)
		ld.complete(leader, leader.MaybeSync(0))
		if spec.ProducerID >= 0 {
			last, lastSpec = res, spec
		}
	}

	fd, follower := newLog(t, cfg)
	for offset := int64(0); offset < leader.EndOffset(); {
		sl, err := leader.Read(offset, 1, leader.EndOffset(), true)
		if err != nil {
			t.Fatal(err)
		}
		fetched := slices.Clone(ld.files[sl.File].data[sl.Pos : sl.Pos+sl.Len])
		h, _, err := record.ScanOne(fetched)
		if err != nil {
			t.Fatal(err)
		}
		res := replicate(t, fd, follower, fetched, h)
		offset = res.Last + 1
	}
	if got, want := contents(fd), contents(ld); !maps.Equal(got, want) {
		t.Fatalf("follower files differ from the leader's:\n%v\n%v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	if !reflect.DeepEqual(follower.epochs, leader.epochs) || follower.LatestEpoch() != 4 {
		t.Fatalf("follower epochs %v, leader's %v", follower.epochs, leader.epochs)
	}
	if !reflect.DeepEqual(follower.producers, leader.producers) {
		t.Fatal("follower producer state differs from the leader's")
	}

	// Promoted, the follower knows the retry of the leader's last batch.
	b := record.Build(lastSpec)
	h, _ := record.Validate(b, 1<<20, 0, -1, -1)
	dup, err := follower.Append(b, h, 5, 2000, false)
	if err != nil || !dup.Duplicate || dup.Base != last.Base {
		t.Fatalf("retry on the promoted follower: %+v %v, want a duplicate at %d", dup, err, last.Base)
	}
}

// TestAppendReplicaRefuses: a batch that does not continue the log, comes
// with an older epoch, or is not the one whose header was checked is
// refused with CORRUPT_MESSAGE and leaves the log as it was; a leader
// append with an epoch older than the log's is NOT_LEADER_OR_FOLLOWER.
func TestAppendReplicaRefuses(t *testing.T) {
	d, l := newLog(t, testConfig())
	b, h := leaderBatch(t, 0, 3, records(-1, 0, 2, 10, 1000))
	replicate(t, d, l, b, h)

	other, otherH := leaderBatch(t, 2, 3, records(-1, 0, 1, 20, 1000))
	gap, gapH := leaderBatch(t, 3, 3, records(-1, 0, 1, 10, 1000))
	stale, staleH := leaderBatch(t, 2, 2, records(-1, 0, 1, 10, 1000))
	unstamped, unstampedH := leaderBatch(t, 2, -1, records(-1, 0, 1, 10, 1000))
	for _, c := range []struct {
		name  string
		batch []byte
		h     record.Header
	}{
		{"past the end", gap, gapH},
		{"older epoch", stale, staleH},
		{"no epoch after epochs", unstamped, unstampedH},
		{"header of another batch", other, staleH},
		{"two batches", append(slices.Clone(other), other...), otherH},
	} {
		res, err := l.AppendReplica(c.batch, c.h)
		if !errors.Is(err, kerr.CorruptMessage) || res.Ops != nil || l.EndOffset() != 2 || len(l.writeEnds) != 0 {
			t.Errorf("%s: %+v %v; end %d", c.name, res, err, l.EndOffset())
		}
	}

	lb, lh := batch(t, 1, 10, 1000)
	if _, err := l.Append(lb, lh, 2, 1000, false); !errors.Is(err, kerr.NotLeaderForPartition) || l.EndOffset() != 2 {
		t.Errorf("leader append in an older epoch: %v", err)
	}
	// The same epoch and newer ones go on.
	replicate(t, d, l, other, otherH)
	next, nextH := leaderBatch(t, 3, 4, records(-1, 0, 1, 10, 1000))
	replicate(t, d, l, next, nextH)
	if l.EndOffset() != 4 || l.LatestEpoch() != 4 {
		t.Fatalf("end %d, epoch %d", l.EndOffset(), l.LatestEpoch())
	}
}

// TestAppendReplicaSkipsSequenceChecks: a follower takes sequence numbers
// as the leader accepted them, and learns them: promoted, it refuses what
// the leader would have refused and deduplicates what it would have.
func TestAppendReplicaSkipsSequenceChecks(t *testing.T) {
	d, l := newLog(t, testConfig())
	// A leader's producer state can start anywhere: retention may have
	// removed the producer's earlier batches.
	for i, seq := range []int32{40, 41, 43} {
		b, h := leaderBatch(t, int64(i), 0, records(9, seq, 1, 10, 1000))
		replicate(t, d, l, b, h)
	}
	for _, c := range []struct {
		seq  int32
		dup  bool
		want error
	}{
		{41, true, nil},
		{45, false, kerr.OutOfOrderSequenceNumber},
		{44, false, nil},
	} {
		b, h := idemBatch(t, 9, c.seq, 1, 10, 1000)
		res, err := l.Append(b, h, 0, 1000, false)
		if !errors.Is(err, c.want) || err == nil && res.Duplicate != c.dup {
			t.Errorf("seq %d on the promoted follower: %+v %v", c.seq, res, err)
		}
	}
}

// TestAppendReplicaRollsOnBatchTime: a follower measures segment.ms on the
// batches' timestamps, not on a clock.
func TestAppendReplicaRollsOnBatchTime(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentMs = 1000
	d, l := newLog(t, cfg)
	for i, ts := range []int64{50_000, 50_999, 51_000, 40_000} {
		b, h := leaderBatch(t, int64(i), 0, records(-1, 0, 1, 10, ts))
		replicate(t, d, l, b, h)
	}
	var bases []int64
	for _, s := range l.segs {
		bases = append(bases, s.base)
	}
	if !slices.Equal(bases, []int64{0, 2}) {
		t.Fatalf("segments at %v, want [0 2]: the batch at 51000 is 1000 ms after the first", bases)
	}
}

// followerBatches is a log to cut: three leader epochs, two producers,
// batches of varied sizes across several segments.
func followerBatches(t tester, from int64, n int) [][]byte {
	var out [][]byte
	base := from
	for i := range n {
		epoch := int32(1 + (i+int(from))/6)
		spec := records(-1, 0, 1+i%3, 30+23*(i%7), 5000+int64(i)*7)
		if i%3 == 1 {
			spec = records(int64(1+i%2), int32(i), 1+i%2, 50, 5000+int64(i)*7)
		}
		b, h := leaderBatch(t, base, epoch, spec)
		out = append(out, b)
		base = h.LastOffset() + 1
	}
	return out
}

// replicateAll appends batches (rebased to follow the log) and syncs.
func replicateAll(t *testing.T, d *memDisk, l *Log, batches [][]byte) {
	t.Helper()
	for _, b := range batches {
		b = slices.Clone(b)
		record.SetBaseOffset(b, l.EndOffset())
		h, _, err := record.ScanOne(b)
		if err != nil {
			t.Fatal(err)
		}
		replicate(t, d, l, b, h)
	}
}

// sameLog fails unless two logs agree in every piece of state that decides
// what they write next.
func sameLog(t *testing.T, what string, got, want *Log) {
	t.Helper()
	if !reflect.DeepEqual(got.segs, want.segs) {
		t.Fatalf("%s: segments differ", what)
	}
	sameBatches(t, what, got, want)
}

// sameBatches fails unless two logs hold the same batches in the same
// segments, with the same offsets, epochs and producer state. (Recovery
// rebuilds only the active segment's index state, and times segment.ms
// from the first batch's timestamp: a recovered log agrees with the one
// that wrote it in these, not in every field.)
func sameBatches(t *testing.T, what string, got, want *Log) {
	t.Helper()
	batches := func(l *Log) (out [][]batchEntry) {
		for _, s := range l.segs {
			out = append(out, s.batches)
		}
		return out
	}
	switch {
	case got.StartOffset() != want.StartOffset() || got.EndOffset() != want.EndOffset() ||
		got.WrittenOffset() != want.WrittenOffset() || got.DurableOffset() != want.DurableOffset():
		t.Fatalf("%s: offsets %d %d %d %d, want %d %d %d %d", what, got.StartOffset(), got.DurableOffset(), got.WrittenOffset(), got.EndOffset(),
			want.StartOffset(), want.DurableOffset(), want.WrittenOffset(), want.EndOffset())
	case !reflect.DeepEqual(batches(got), batches(want)):
		t.Fatalf("%s: batches differ", what)
	case !reflect.DeepEqual(got.epochs, want.epochs):
		t.Fatalf("%s: epochs %v, want %v", what, got.epochs, want.epochs)
	case !reflect.DeepEqual(got.producers, want.producers):
		t.Fatalf("%s: producer states differ", what)
	}
}

// TestTruncateToMatchesShorterLog: cut anywhere, a log is what it would be
// had it never held the removed batches: the same files byte for byte
// (.index and .timeindex included), the same in-memory state, the same
// files and state after further appends, and the same log after recovery.
func TestTruncateToMatchesShorterLog(t *testing.T) {
	cfg := replicaConfig()
	all := followerBatches(t, 0, 30)
	more := followerBatches(t, 200, 8)
	var end int64
	for _, b := range all {
		h, _ := record.ParseHeader(b)
		end = h.LastOffset() + 1
	}
	for offset := int64(-1); offset <= end+1; offset++ {
		t.Run(fmt.Sprint(offset), func(t *testing.T) {
			d, l := newLog(t, cfg)
			replicateAll(t, d, l, all)
			newEnd, ops := l.TruncateTo(offset)
			d.complete(l, ops)

			var kept [][]byte
			wantEnd := int64(0)
			for _, b := range all {
				if h, _ := record.ParseHeader(b); h.LastOffset() < offset {
					kept, wantEnd = append(kept, b), h.LastOffset()+1
				}
			}
			if newEnd != wantEnd {
				t.Fatalf("TruncateTo(%d) = %d, want %d", offset, newEnd, wantEnd)
			}
			if offset >= end && ops != nil {
				t.Fatalf("truncating at or past the end emitted %d ops", len(ops))
			}
			rd, ref := newLog(t, cfg)
			replicateAll(t, rd, ref, kept)
			if newEnd == 0 {
				// Emptied to its start, the log keeps its first segment.
				for _, ext := range segmentExts {
					if f := d.files[l.path(0, ext)]; f == nil || len(f.data) != 0 || len(d.files) != 3 {
						t.Fatalf("emptied log: %v", slices.Sorted(maps.Keys(contents(d))))
					}
				}
			} else {
				if got, want := contents(d), contents(rd); !maps.Equal(got, want) {
					t.Fatalf("after the cut: files %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
				}
				sameLog(t, "after the cut", l, ref)
			}

			replicateAll(t, d, l, more)
			replicateAll(t, rd, ref, more)
			if got, want := contents(d), contents(rd); !maps.Equal(got, want) {
				t.Fatalf("after more appends: files %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
			}
			sameLog(t, "after more appends", l, ref)
			sameBatches(t, "recovered", recovered(t, d, cfg), ref)
		})
	}
}

// TestTruncateToWithWritesInFlight: writes and a sync round emitted before
// a truncation complete after it, and leave the log consistent: nothing
// above the cut counts as written or durable.
func TestTruncateToWithWritesInFlight(t *testing.T) {
	d, l := newLog(t, testConfig())
	var queued []Op
	for _, b := range followerBatches(t, 0, 4) {
		h, _, _ := record.ScanOne(b)
		res, err := l.AppendReplica(b, h)
		if err != nil {
			t.Fatal(err)
		}
		queued = append(queued, res.Ops...)
	}
	queued = append(queued, l.MaybeSync(0)...)
	cut := l.segs[0].batches[2].base
	newEnd, ops := l.TruncateTo(cut)
	if newEnd != cut || l.EndOffset() != cut || l.WrittenOffset() != 0 {
		t.Fatalf("cut to %d: end %d written %d", newEnd, l.EndOffset(), l.WrittenOffset())
	}
	d.complete(l, append(queued, ops...))
	d.complete(l, l.MaybeSync(0))
	if l.WrittenOffset() != cut || l.DurableOffset() != cut {
		t.Fatalf("after the ops ran: written %d durable %d, want %d", l.WrittenOffset(), l.DurableOffset(), cut)
	}
	if got := int64(len(d.files[l.path(0, ".log")].data)); got != l.segs[0].size {
		t.Fatalf(".log is %d bytes, the log holds %d", got, l.segs[0].size)
	}
}

// TestTruncateToPastEndDropsUnwrittenEpoch: a truncation that removes no
// batch still forgets an epoch that began at the end and wrote nothing.
func TestTruncateToPastEndDropsUnwrittenEpoch(t *testing.T) {
	d, l := newLog(t, testConfig())
	replicateAll(t, d, l, followerBatches(t, 0, 3))
	l.StartEpoch(7)
	if newEnd, ops := l.TruncateTo(l.EndOffset() + 5); newEnd != l.EndOffset() || ops != nil || l.LatestEpoch() != 1 {
		t.Fatalf("TruncateTo past the end: %d, %d ops, latest epoch %d", newEnd, len(ops), l.LatestEpoch())
	}
}

// TestTruncateToRebuildsProducers: after a cut, retries of kept batches are
// duplicates, a retry of a removed batch is appended anew, and a producer
// whose every batch was removed is unknown again.
func TestTruncateToRebuildsProducers(t *testing.T) {
	d, l := newLog(t, testConfig())
	var res []AppendResult
	for seq := range int32(5) {
		b, h := idemBatch(t, 1, seq, 1, 10, 1000)
		res = append(res, appendSynced(t, d, l, b, h, 1000))
	}
	b, h := idemBatch(t, 2, 0, 1, 10, 1000)
	appendSynced(t, d, l, b, h, 1000)
	_, ops := l.TruncateTo(res[3].Base)
	d.complete(l, ops)

	b, h = idemBatch(t, 1, 2, 1, 10, 1000)
	if r, err := l.Append(b, h, 0, 1000, false); err != nil || !r.Duplicate || r.Base != res[2].Base {
		t.Fatalf("retry of a kept batch: %+v %v", r, err)
	}
	b, h = idemBatch(t, 1, 3, 1, 10, 1000)
	if r, err := l.Append(b, h, 0, 1000, false); err != nil || r.Duplicate || r.Base != res[3].Base {
		t.Fatalf("retry of a removed batch: %+v %v", r, err)
	}
	b, h = idemBatch(t, 2, 1, 1, 10, 1000)
	if _, err := l.Append(b, h, 0, 1000, false); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("producer 2 after its only batch was removed: %v", err)
	}
}

// TestResetTo: the log starts over, empty, at any offset, with no epochs or
// producers; recovery finds the new start before anything is appended.
func TestResetTo(t *testing.T) {
	cfg := replicaConfig()
	for _, offset := range []int64{0, 5, 1000} {
		t.Run(fmt.Sprint(offset), func(t *testing.T) {
			d, l := newLog(t, cfg)
			replicateAll(t, d, l, followerBatches(t, 0, 20))
			b, h := leaderBatch(t, l.EndOffset(), 9, records(1, 0, 1, 10, 0))
			inFlight, _ := l.AppendReplica(b, h)
			ops := l.ResetTo(offset)
			if last := ops[len(ops)-1]; last.Kind != port.OpSyncDir {
				t.Fatalf("the reset ends with %s, not a directory sync", last.Kind)
			}
			d.complete(l, append(inFlight.Ops, ops...))
			want := map[string]string{}
			for _, ext := range segmentExts {
				want[l.path(offset, ext)] = ""
			}
			if got := contents(d); !maps.Equal(got, want) {
				t.Fatalf("files after the reset: %v", slices.Sorted(maps.Keys(got)))
			}
			if l.StartOffset() != offset || l.EndOffset() != offset || l.WrittenOffset() != offset ||
				l.DurableOffset() != offset || l.LatestEpoch() != -1 || len(l.producers.byID) != 0 {
				t.Fatalf("after the reset: start %d end %d written %d durable %d epoch %d, %d producers", l.StartOffset(),
					l.EndOffset(), l.WrittenOffset(), l.DurableOffset(), l.LatestEpoch(), len(l.producers.byID))
			}
			r, _, err := Open(d, dir, cfg)
			if err != nil || r.StartOffset() != offset || r.EndOffset() != offset {
				t.Fatalf("recovered the reset log at %d-%d: %v", r.StartOffset(), r.EndOffset(), err)
			}
			// An older epoch than before is fine now: the cache is empty.
			replicateAll(t, d, l, followerBatches(t, 0, 10))
			sameBatches(t, "recovered", recovered(t, d, cfg), l)
		})
	}
}

// TestRecoveryEndsAtFallingEpoch: a batch whose leader epoch is below an
// earlier batch's ends the recovered log, as a torn batch does; a batch
// without an epoch does not.
func TestRecoveryEndsAtFallingEpoch(t *testing.T) {
	cfg := replicaConfig()
	for _, c := range []struct {
		epoch int32
		cut   bool
	}{{4, true}, {-1, false}, {5, false}} {
		t.Run(fmt.Sprint(c.epoch), func(t *testing.T) {
			d, l := newLog(t, cfg)
			replicateAll(t, d, l, followerBatches(t, 0, 30)) // epochs 1 to 5
			seg := l.segs[len(l.segs)-2]
			victim := seg.batches[len(seg.batches)/2]
			record.SetPartitionLeaderEpoch(d.files[l.path(seg.base, ".log")].data[victim.pos:], c.epoch)

			r := recovered(t, d, cfg)
			want := l.EndOffset()
			if c.cut {
				want = victim.base
			}
			if r.EndOffset() != want || len(r.segs) != len(l.segs)-1 && c.cut {
				t.Fatalf("recovered end %d in %d segments, want %d", r.EndOffset(), len(r.segs), want)
			}
		})
	}
}

// TestTruncationSyncsAreNeeded shows what the fsyncs after a truncation are
// for. A follower that led in epoch 3 cuts its unreplicated tail and takes
// the new leader's epoch-2 batch in its place; a crash before that batch
// is synced must not bring the epoch-3 tail back behind it (the epochs
// rise, so recovery's epoch check cannot tell). Without the fsyncs, some
// crash does; with them, none does.
func TestTruncationSyncsAreNeeded(t *testing.T) {
	for _, c := range []struct {
		name string
		drop port.OpKind
		// tailTs are the timestamps of the tail batches at offsets 1 to 3,
		// which leave the log in segments segments.
		tailTs   []int64
		segments int
	}{
		// The new batch is written where the tail was, in the same file:
		// without the file's fsync, the tail past it can come back.
		{"file", port.OpSync, []int64{0, 0, 0}, 1},
		// segment.ms rolled a segment at offset 2, which the cut removes,
		// and the new batch ends where that segment began: without the
		// directory's fsync, the segment can come back.
		{"directory", port.OpSyncDir, []int64{0, 10_000, 10_000}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.SegmentMs = 1000
			reappeared := func(seed uint64, dropSyncs bool) bool {
				d, l := newLog(t, cfg)
				for i, ts := range append([]int64{0}, c.tailTs...) {
					b, h := leaderBatch(t, int64(i), min(int32(i)*3, 3), records(-1, 0, 1, 150, ts))
					replicate(t, d, l, b, h)
				}
				if len(l.segs) != c.segments {
					t.Fatalf("%d segments, want %d", len(l.segs), c.segments)
				}
				_, ops := l.TruncateTo(1)
				if dropSyncs {
					ops = slices.DeleteFunc(ops, func(op Op) bool { return op.Kind == c.drop })
				}
				d.apply(ops)
				b, h := leaderBatch(t, 1, 2, records(-1, 0, 1, 150, 0))
				res, err := l.AppendReplica(b, h)
				if err != nil {
					t.Fatal(err)
				}
				d.apply(res.Ops)
				d.crash(rand.New(rand.NewPCG(seed, 1)))
				r, _, err := Open(d, dir, cfg)
				if err != nil {
					t.Fatal(err)
				}
				return r.EndOffset() > 2
			}
			caught := false
			for seed := range uint64(200) {
				if reappeared(seed, false) {
					t.Fatalf("seed %d: the truncated tail came back after a crash", seed)
				}
				caught = caught || reappeared(seed, true)
			}
			if !caught {
				t.Fatal("without its fsyncs the truncation never came undone: the crash model has no teeth")
			}
		})
	}
}

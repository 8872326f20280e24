package metalog

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/raft"
)

func hs(term uint64, vote port.NodeID) *raft.HardState {
	return &raft.HardState{Term: term, Vote: vote}
}

func ents(from, to, term uint64) []raft.Entry {
	var out []raft.Entry
	for i := from; i <= to; i++ {
		out = append(out, raft.Entry{Index: i, Term: term, Data: []byte{byte(i), 'x'}})
	}
	return out
}

func recoverOK(t *testing.T, m *memFS) (*Store, State) {
	t.Helper()
	s, st, err := Recover(m)
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	return s, st
}

func kinds(ops []port.DiskOp) string {
	var b []string
	for _, op := range ops {
		b = append(b, op.Kind.String()+":"+strings.TrimPrefix(op.Path, Dir+"/"))
	}
	return strings.Join(b, " ")
}

// durable crashes the machine with every sector kept that was synced: what
// is left is exactly what the completed syncs made durable.
func crashAll(m *memFS) {
	var walk func(d *node)
	walk = func(d *node) {
		d.entries = map[string]*node{}
		for k, v := range d.durEntries {
			d.entries[k] = v
		}
		d.pending = nil
		for _, n := range d.entries {
			if n.dir {
				walk(n)
			} else {
				n.revertFailed()
				n.cur, n.unsynced = append([]byte(nil), n.dur...), nil
			}
		}
	}
	walk(m.root)
}

func TestFreshNode(t *testing.T) {
	m := newMemFS()
	s, st := recoverOK(t, m)
	if !stateEqual(st, State{}) || s.BootOps() != nil || s.Size() != 0 {
		t.Fatalf("fresh: %v boot %v size %d", st, s.BootOps(), s.Size())
	}
	if ops := s.Save(raft.Ready{Messages: []raft.Message{{Type: raft.MsgHeartbeat}}}); ops != nil {
		t.Fatalf("a Ready with nothing to persist gave %v", kinds(ops))
	}
	ops := s.Save(raft.Ready{HardState: hs(1, 2)})
	want := "mkdir:" + Dir + " syncdir:. remove:raft.log.tmp write:raft.log.tmp fsync:raft.log.tmp rename:raft.log.tmp syncdir:" + Dir + " fsync:raft.log"
	if got := kinds(ops); got != want {
		t.Fatalf("first save:\n got %s\nwant %s", got, want)
	}
	run(t, m, ops)
	crashAll(m)
	_, st = recoverOK(t, m)
	if st.HardState != *hs(1, 2) || len(st.Entries) != 0 {
		t.Fatalf("recovered %v", st)
	}
}

// One Ready is one write and one fsync; nil and empty data stay distinct.
func TestRoundTripNilAndEmptyData(t *testing.T) {
	m := newMemFS()
	s, _ := recoverOK(t, m)
	run(t, m, s.Save(raft.Ready{HardState: hs(1, 1)}))
	size := s.Size()
	rd := raft.Ready{HardState: hs(2, -1), Entries: []raft.Entry{
		{Index: 1, Term: 2, Data: nil},
		{Index: 2, Term: 2, Data: []byte{}},
		{Index: 3, Term: 2, Data: []byte("abc")},
	}}
	ops := s.Save(rd)
	if got := kinds(ops); got != "write:raft.log fsync:raft.log" {
		t.Fatalf("ops %s", got)
	}
	if ops[0].Pos != size || s.Size() != size+int64(len(ops[0].Data)) {
		t.Fatalf("write at %d of %d bytes; size was %d, is %d", ops[0].Pos, len(ops[0].Data), size, s.Size())
	}
	run(t, m, ops)
	crashAll(m)
	s2, st := recoverOK(t, m)
	want := State{HardState: *hs(2, -1), Entries: rd.Entries}
	if !stateEqual(st, want) {
		t.Fatalf("recovered %v, want %v", st, want)
	}
	if st.Entries[0].Data != nil || st.Entries[1].Data == nil {
		t.Fatalf("nil/empty data not kept apart: %#v %#v", st.Entries[0].Data, st.Entries[1].Data)
	}
	if s2.Size() != s.Size() || s2.EntriesSinceSnapshot() != 3 || s2.LastIndex() != 3 {
		t.Fatalf("size %d/%d entries %d last %d", s2.Size(), s.Size(), s2.EntriesSinceSnapshot(), s2.LastIndex())
	}
}

// An entry frame replaces the entries from its index on.
func TestTruncationByReplacement(t *testing.T) {
	m := newMemFS()
	s, _ := recoverOK(t, m)
	run(t, m, s.Save(raft.Ready{HardState: hs(1, 1), Entries: ents(1, 5, 1)}))
	run(t, m, s.Save(raft.Ready{HardState: hs(2, 2), Entries: ents(3, 3, 2)}))
	run(t, m, s.Save(raft.Ready{Entries: ents(4, 4, 2)}))
	crashAll(m)
	_, st := recoverOK(t, m)
	want := State{HardState: *hs(2, 2), Entries: append(ents(1, 2, 1), ents(3, 4, 2)...)}
	if !stateEqual(st, want) {
		t.Fatalf("recovered %v, want %v", st, want)
	}
}

func TestTornTail(t *testing.T) {
	m := newMemFS()
	s, _ := recoverOK(t, m)
	run(t, m, s.Save(raft.Ready{HardState: hs(1, 1), Entries: ents(1, 2, 1)}))
	good := s.Size()
	run(t, m, s.Save(raft.Ready{Entries: ents(3, 4, 1)}))
	f, _ := m.file(logPath, false)
	torn := len(f.cur) - 3 // the second frame of the last write lost its end
	f.cur, f.dur = f.cur[:torn], f.dur[:torn]

	s2, st := recoverOK(t, m)
	if want := (State{HardState: *hs(1, 1), Entries: ents(1, 3, 1)}); !stateEqual(st, want) {
		t.Fatalf("recovered %v, want %v", st, want)
	}
	valid := s2.Size()
	if valid <= good || valid >= int64(torn) {
		t.Fatalf("valid length %d, want between %d and %d", valid, good, torn)
	}
	// Without BootOps, the first append cuts the torn tail first.
	ops := s2.Save(raft.Ready{Entries: ents(4, 4, 1)})
	if got := kinds(ops); got != "truncate:raft.log write:raft.log fsync:raft.log" || ops[0].Pos != valid || ops[1].Pos != valid {
		t.Fatalf("ops %s (truncate at %d, write at %d; valid %d)", got, ops[0].Pos, ops[1].Pos, valid)
	}
	if ops := s2.Save(raft.Ready{Entries: ents(5, 5, 1)}); kinds(ops) != "write:raft.log fsync:raft.log" {
		t.Fatalf("second append: %s", kinds(ops))
	}

	// With BootOps, the cut is made (and synced) at boot.
	s3, _ := recoverOK(t, m)
	boot := s3.BootOps()
	if got := kinds(boot); got != "syncdir:. syncdir:"+Dir+" truncate:raft.log fsync:raft.log" || boot[2].Pos != valid {
		t.Fatalf("boot ops %s", got)
	}
	run(t, m, boot)
	if ops := s3.Save(raft.Ready{Entries: ents(4, 5, 1)}); kinds(ops) != "write:raft.log fsync:raft.log" || ops[0].Pos != valid {
		t.Fatalf("append after boot: %s at %d", kinds(ops), ops[0].Pos)
	} else {
		run(t, m, ops)
	}
	crashAll(m)
	if _, st := recoverOK(t, m); !stateEqual(st, State{HardState: *hs(1, 1), Entries: ents(1, 5, 1)}) {
		t.Fatalf("after repair: %v", st)
	}
}

// A zeroed tail (a crash kept the file's new length but not its bytes) is
// torn, not a frame: a zero length with a zero CRC is the CRC of nothing.
func TestZeroedTail(t *testing.T) {
	m := newMemFS()
	s, _ := recoverOK(t, m)
	run(t, m, s.Save(raft.Ready{HardState: hs(1, 1), Entries: ents(1, 2, 1)}))
	f, _ := m.file(logPath, false)
	f.cur = append(f.cur, make([]byte, 40)...)
	s2, st := recoverOK(t, m)
	if !stateEqual(st, State{HardState: *hs(1, 1), Entries: ents(1, 2, 1)}) || s2.Size() != s.Size() {
		t.Fatalf("recovered %v size %d, want size %d", st, s2.Size(), s.Size())
	}
}

func TestBadSnapshotChecksum(t *testing.T) {
	m := newMemFS()
	s, _ := recoverOK(t, m)
	run(t, m, s.Save(raft.Ready{HardState: hs(1, 1), Entries: ents(1, 4, 1)}))
	run(t, m, s.Compact(raft.Snapshot{Index: 2, Term: 1, Data: []byte("state machine")}))
	if _, st := recoverOK(t, m); st.Snapshot.Index != 2 || !bytes.Equal(st.Snapshot.Data, []byte("state machine")) {
		t.Fatalf("recovered %v", st)
	}
	f, _ := m.file(snapPath, false)
	f.cur[len(f.cur)-1] ^= 1
	_, _, err := Recover(m)
	if err == nil || !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), "snapshot") || !strings.Contains(err.Error(), "not a torn write") {
		t.Fatalf("got %v", err)
	}
	f.cur = f.cur[:len(f.cur)-1] // a short snapshot file is as bad
	if _, _, err := Recover(m); !errors.Is(err, errCorrupt) {
		t.Fatalf("short snapshot: %v", err)
	}
}

// frames builds a raft.log by hand: a header whose base is the first
// nBase frames after it, then the rest appended.
func handLog(snapIndex uint64, nBase int, frames ...[]byte) []byte {
	var body []byte
	for _, f := range frames[:nBase] {
		body = append(body, f...)
	}
	hl := headerFrameSize(snapIndex)
	out := appendHeader(nil, int64(hl+len(body)), snapIndex)
	out = append(out, body...)
	for _, f := range frames[nBase:] {
		out = append(out, f...)
	}
	return out
}

func entryFrame(i, term uint64) []byte { return appendEntry(nil, raft.Entry{Index: i, Term: term}) }

func TestGap(t *testing.T) {
	h := appendHardState(nil, *hs(1, 1))
	for name, log := range map[string][]byte{
		"hole":             handLog(0, 1, h, entryFrame(1, 1), entryFrame(2, 1), entryFrame(4, 1)),
		"late start":       handLog(0, 1, h, entryFrame(2, 1)),
		"before base":      handLog(5, 1, h, entryFrame(6, 1), entryFrame(5, 1)),
		"in base":          handLog(0, 3, h, entryFrame(1, 1), entryFrame(3, 1)),
		"missing snapshot": handLog(5, 1, h, entryFrame(6, 1)),
	} {
		m := newMemFS()
		m.put(logPath, log)
		_, _, err := Recover(m)
		if !errors.Is(err, errCorrupt) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	// The same frames without the hole recover.
	m := newMemFS()
	m.put(logPath, handLog(0, 1, h, entryFrame(1, 1), entryFrame(2, 1), entryFrame(3, 1)))
	if _, st := recoverOK(t, m); len(st.Entries) != 3 {
		t.Fatalf("recovered %v", st)
	}
}

// The log's base was fsynced before it was renamed into place: damage in
// it is corruption (a failed fsync whose rename still ran), not a torn
// append to be dropped silently with the hard state in it.
func TestDamagedBase(t *testing.T) {
	m := newMemFS()
	s, _ := recoverOK(t, m)
	run(t, m, s.Save(raft.Ready{HardState: hs(3, 1), Entries: ents(1, 4, 1)}))
	run(t, m, s.Compact(raft.Snapshot{Index: 1, Term: 1}))
	f, _ := m.file(logPath, false)
	orig := append([]byte(nil), f.cur...)
	for _, pos := range []int{0, 5, headerFrameSize(1) + 3, len(orig) - 2} {
		f.cur = append([]byte(nil), orig...)
		f.cur[pos] ^= 0x40
		if _, _, err := Recover(m); !errors.Is(err, errCorrupt) {
			t.Errorf("byte %d flipped: %v", pos, err)
		}
	}
	f.cur = make([]byte, len(orig)) // the whole file read back as zeros
	if _, _, err := Recover(m); !errors.Is(err, errCorrupt) {
		t.Errorf("zeroed: %v", err)
	}
}

// runUntil runs ops up to and including the n-th (1-based) of kind on path.
func runUntil(t *testing.T, m *memFS, ops []port.DiskOp, kind port.OpKind, path string, n int) {
	t.Helper()
	for _, op := range ops {
		run(t, m, []port.DiskOp{op})
		if op.Kind == kind && op.Path == path {
			if n--; n == 0 {
				return
			}
		}
	}
	t.Fatalf("no %v of %s in %s", kind, path, kinds(ops))
}

// A crash between a compaction's snapshot and the log's rewrite: the old
// log agrees with the snapshot; entries past it are kept.
func TestCompactCrashBeforeLogRewrite(t *testing.T) {
	m := newMemFS()
	s, _ := recoverOK(t, m)
	run(t, m, s.Save(raft.Ready{HardState: hs(2, 1), Entries: append(ents(1, 3, 1), ents(4, 5, 2)...)}))
	ops := s.Compact(raft.Snapshot{Index: 4, Term: 2, Data: []byte("s")})
	runUntil(t, m, ops, port.OpSyncDir, Dir, 1)
	crashAll(m)
	s2, st := recoverOK(t, m)
	if want := (State{HardState: *hs(2, 1), Snapshot: raft.Snapshot{Index: 4, Term: 2, Data: []byte("s")}, Entries: ents(5, 5, 2)}); !stateEqual(st, want) {
		t.Fatalf("recovered %v, want %v", st, want)
	}
	if !s2.rewrite || !strings.Contains(kinds(s2.BootOps()), "rename:raft.log.tmp") {
		t.Fatalf("the old log is not rewritten at boot")
	}
}

// A crash between an installed snapshot and the log's rewrite: the old
// log disagrees with the snapshot (that is why Raft installed it); its
// entries are dropped, and the log is rewritten before anything is
// appended to it, so that later entries are not taken for old ones.
func TestInstallCrashBeforeLogRewrite(t *testing.T) {
	for _, boot := range []bool{true, false} {
		m := newMemFS()
		s, _ := recoverOK(t, m)
		run(t, m, s.Save(raft.Ready{HardState: hs(1, 1), Entries: ents(1, 8, 1)}))
		snap := raft.Snapshot{Index: 5, Term: 2, Data: []byte("leader's")}
		ops := s.Save(raft.Ready{HardState: hs(2, -1), Snapshot: &snap, Entries: ents(6, 6, 2)})
		if !strings.HasPrefix(kinds(ops), "write:raft.log fsync:raft.log remove:snapshot.tmp") {
			t.Fatalf("the hard state does not go first: %s", kinds(ops))
		}
		runUntil(t, m, ops, port.OpSyncDir, Dir, 1)
		crashAll(m)
		s2, st := recoverOK(t, m)
		if want := (State{HardState: *hs(2, -1), Snapshot: snap}); !stateEqual(st, want) {
			t.Fatalf("recovered %v, want %v", st, want)
		}
		if boot {
			run(t, m, s2.BootOps())
		}
		ops = s2.Save(raft.Ready{Entries: ents(6, 7, 2)})
		if !boot && !strings.Contains(kinds(ops), "rename:raft.log.tmp") {
			t.Fatalf("append to a log that predates the snapshot: %s", kinds(ops))
		}
		run(t, m, ops)
		crashAll(m)
		if _, st := recoverOK(t, m); !stateEqual(st, State{HardState: *hs(2, -1), Snapshot: snap, Entries: ents(6, 7, 2)}) {
			t.Fatalf("boot %v: recovered %v", boot, st)
		}
	}
}

func TestLeftoverTempFilesRemovedAtBoot(t *testing.T) {
	m := newMemFS()
	s, _ := recoverOK(t, m)
	run(t, m, s.Save(raft.Ready{HardState: hs(1, 1), Entries: ents(1, 3, 1)}))
	m.put(snapTmpPath, []byte("half a snapshot"))
	m.put(logTmpPath, []byte("half a log"))
	s2, _ := recoverOK(t, m)
	got := kinds(s2.BootOps())
	if !strings.HasPrefix(got, "remove:raft.log.tmp remove:snapshot.tmp ") {
		t.Fatalf("boot ops %s", got)
	}
}

func TestCompactNoop(t *testing.T) {
	m := newMemFS()
	s, _ := recoverOK(t, m)
	run(t, m, s.Save(raft.Ready{HardState: hs(1, 1), Entries: ents(1, 3, 1)}))
	run(t, m, s.Compact(raft.Snapshot{Index: 2, Term: 1}))
	if ops := s.Compact(raft.Snapshot{Index: 2, Term: 1}); ops != nil {
		t.Fatalf("compact to the stored snapshot: %s", kinds(ops))
	}
	if s.EntriesSinceSnapshot() != 1 || s.LastIndex() != 3 {
		t.Fatalf("entries %d last %d", s.EntriesSinceSnapshot(), s.LastIndex())
	}
	if tm, ok := s.Term(2); !ok || tm != 1 {
		t.Fatalf("Term(2) = %d %v", tm, ok)
	}
	if _, ok := s.Term(1); ok {
		t.Fatalf("Term(1) known after compaction")
	}
}

func TestMisusePanics(t *testing.T) {
	for name, f := range map[string]func(s *Store){
		"gap":              func(s *Store) { s.Save(raft.Ready{Entries: ents(5, 5, 1)}) },
		"into snapshot":    func(s *Store) { s.Save(raft.Ready{Entries: ents(2, 2, 1)}) },
		"compact too far":  func(s *Store) { s.Compact(raft.Snapshot{Index: 9, Term: 1}) },
		"compact bad term": func(s *Store) { s.Compact(raft.Snapshot{Index: 3, Term: 7}) },
		"old snapshot":     func(s *Store) { s.Save(raft.Ready{Snapshot: &raft.Snapshot{Index: 2, Term: 1}}) },
		"entries past snap": func(s *Store) {
			s.Save(raft.Ready{Snapshot: &raft.Snapshot{Index: 6, Term: 1}, Entries: ents(8, 8, 1)})
		},
	} {
		m := newMemFS()
		s, _ := recoverOK(t, m)
		run(t, m, s.Save(raft.Ready{HardState: hs(1, 1), Entries: ents(1, 3, 1)}))
		run(t, m, s.Compact(raft.Snapshot{Index: 2, Term: 1}))
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f(s)
		}()
	}
}

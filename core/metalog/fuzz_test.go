package metalog

import (
	"testing"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/raft"
)

// FuzzRecover feeds Recover arbitrary raft.log (and snapshot) bytes. It must
// never panic; what it accepts must be a log raft.New accepts, and stable:
// after the boot operations, recovering again gives the same state, and an
// append to it is recovered too. With framed set, the input is split into
// payloads ([u8 n][n bytes]...) that get valid frame headers, so the
// decoders behind the checksum are reached.
func FuzzRecover(f *testing.F) {
	seed := func(build func(m *memFS, s *Store)) {
		m := newMemFS()
		s, _, _ := Recover(m)
		build(m, s)
		log, _ := m.read(logPath)
		snap, ok := m.read(snapPath)
		f.Add(append([]byte(nil), log...), append([]byte(nil), snap...), ok, false)
		// The same frames as payloads, for the framed mode (when short
		// enough for a one-byte length).
		var payloads []byte
		for rest := log; len(rest) > 0; {
			p, n, ok := nextFrame(rest)
			if !ok || len(p) > 255 {
				return
			}
			payloads = append(append(payloads, byte(len(p))), p...)
			rest = rest[n:]
		}
		f.Add(payloads, append([]byte(nil), snap...), ok, true)
	}
	seed(func(m *memFS, s *Store) {
		run(f, m, s.Save(raft.Ready{HardState: hs(2, 1), Entries: []raft.Entry{{Index: 1, Term: 1}, {Index: 2, Term: 2, Data: []byte{}}}}))
		run(f, m, s.Save(raft.Ready{Entries: ents(2, 4, 2)}))
	})
	seed(func(m *memFS, s *Store) {
		run(f, m, s.Save(raft.Ready{HardState: hs(2, 1), Entries: ents(1, 6, 2)}))
		run(f, m, s.Compact(raft.Snapshot{Index: 3, Term: 2, Data: []byte("snap")}))
		run(f, m, s.Save(raft.Ready{HardState: hs(3, -1), Entries: ents(5, 7, 3)}))
	})
	f.Add([]byte{1, 4, 1, 2}, []byte(nil), false, true)
	f.Add([]byte{}, []byte{}, true, false)

	f.Fuzz(func(t *testing.T, log, snap []byte, haveSnap, framed bool) {
		if framed {
			var out []byte
			for len(log) > 0 {
				n := min(int(log[0]), len(log)-1)
				if n > 0 {
					var at int
					out, at = beginFrame(out, log[1])
					out = endFrame(append(out, log[2:1+n]...), at)
				}
				log = log[1+n:]
			}
			log = out
		}
		m := newMemFS()
		m.put(logPath, log)
		if haveSnap {
			m.put(snapPath, snap)
		}
		s, st, err := Recover(m)
		if err != nil {
			return
		}
		for i, e := range st.Entries {
			if e.Index != st.Snapshot.Index+1+uint64(i) {
				t.Fatalf("entry %d at position %d after snapshot %d", e.Index, i, st.Snapshot.Index)
			}
		}
		raft.New(raft.Config{ID: 1, Voters: []port.NodeID{1, 2, 3}, ElectionTicks: 10, HeartbeatTicks: 1,
			Rand: func(int) int { return 0 }}, st.HardState, st.Snapshot, st.Entries)
		run(t, m, s.BootOps())
		s2, st2, err := Recover(m)
		if err != nil || !stateEqual(st, st2) {
			t.Fatalf("recovered %v, then after the boot ops %v (%v)", st, st2, err)
		}
		e := raft.Entry{Index: s2.LastIndex() + 1, Term: st.HardState.Term, Data: []byte("more")}
		run(t, m, s2.Save(raft.Ready{Entries: []raft.Entry{e}}))
		_, st3, err := Recover(m)
		want := st2
		want.Entries = append(want.Entries, e)
		if err != nil || !stateEqual(st3, want) {
			t.Fatalf("after an append: %v (%v), want %v", st3, err, want)
		}
	})
}

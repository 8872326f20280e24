package metalog

import (
	"fmt"
	"testing"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/raft"
)

func raftConfig() raft.Config {
	return raft.Config{ID: 1, Voters: []port.NodeID{1}, ElectionTicks: 10, HeartbeatTicks: 1,
		Rand: func(n int) int { return 0 }}
}

// drive runs a Raft node's Readies through the store to the disk, as the
// host does, and returns the entries applied.
func drive(t *testing.T, m *memFS, s *Store, r *raft.Raft) []raft.Entry {
	t.Helper()
	var applied []raft.Entry
	for r.HasReady() {
		rd := r.Ready()
		run(t, m, s.Save(rd))
		applied = append(applied, rd.Committed...)
		r.Advance()
	}
	return applied
}

// TestWithRaft runs a single-voter Raft over the store: elections, proposals
// and compactions survive restarts, and what Recover returns is accepted by
// raft.New.
func TestWithRaft(t *testing.T) {
	m := newMemFS()
	s, st := recoverOK(t, m)
	var sm []string // the state machine: applied data
	for round := 0; round < 4; round++ {
		r := raft.New(raftConfig(), st.HardState, st.Snapshot, st.Entries)
		run(t, m, s.BootOps())
		sm = sm[:st.Snapshot.Index]
		for _, e := range drive(t, m, s, r) {
			sm = append(sm, string(e.Data))
		}
		r.Campaign()
		for _, e := range drive(t, m, s, r) {
			sm = append(sm, string(e.Data))
		}
		if r.Status().Role != raft.Leader {
			t.Fatalf("round %d: not leader: %+v", round, r.Status())
		}
		for i := 0; i < 5; i++ {
			if _, _, err := r.Propose([]byte(fmt.Sprintf("r%d-%d", round, i))); err != nil {
				t.Fatal(err)
			}
			for _, e := range drive(t, m, s, r) {
				sm = append(sm, string(e.Data))
			}
		}
		status := r.Status()
		if round%2 == 1 {
			// Compact to what was applied, as the host does.
			idx := status.Applied - 1
			term, ok := s.Term(idx)
			if !ok {
				t.Fatalf("no term at %d", idx)
			}
			run(t, m, s.Compact(raft.Snapshot{Index: idx, Term: term, Data: []byte(fmt.Sprint(sm[:idx]))}))
			r.Compact(idx, []byte(fmt.Sprint(sm[:idx])))
		}
		crashAll(m)
		s, st = recoverOK(t, m)
		if got := st.Snapshot.Index + uint64(len(st.Entries)); got != status.LastIndex || st.HardState.Term != status.Term {
			t.Fatalf("round %d: recovered last index %d term %d, Raft had %d term %d", round, got, st.HardState.Term, status.LastIndex, status.Term)
		}
		if uint64(len(sm)) != status.Applied {
			t.Fatalf("round %d: applied %d, state machine has %d", round, status.Applied, len(sm))
		}
	}
}

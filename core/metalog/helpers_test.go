package metalog

import (
	"bytes"
	"fmt"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/raft"
)

// apply returns the state after a Ready or a compaction, as Raft sees it.
func applyReady(st State, rd raft.Ready) State {
	next := State{HardState: st.HardState, Snapshot: st.Snapshot, Entries: append([]raft.Entry(nil), st.Entries...)}
	if rd.HardState != nil {
		next.HardState = *rd.HardState
	}
	if rd.Snapshot != nil {
		next.Snapshot = *rd.Snapshot
		next.Entries = nil
	}
	if len(rd.Entries) > 0 {
		k := rd.Entries[0].Index - next.Snapshot.Index - 1
		next.Entries = append(next.Entries[:k:k], rd.Entries...)
	}
	return next
}

func applyCompact(st State, snap raft.Snapshot) State {
	if snap.Index <= st.Snapshot.Index {
		return st
	}
	return State{HardState: st.HardState, Snapshot: snap,
		Entries: append([]raft.Entry(nil), st.Entries[snap.Index-st.Snapshot.Index:]...)}
}

func entriesEqual(a, b []raft.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Index != b[i].Index || a[i].Term != b[i].Term ||
			(a[i].Data == nil) != (b[i].Data == nil) || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func snapEqual(a, b raft.Snapshot) bool {
	return a.Index == b.Index && a.Term == b.Term && bytes.Equal(a.Data, b.Data)
}

func stateEqual(a, b State) bool {
	return a.HardState == b.HardState && snapEqual(a.Snapshot, b.Snapshot) && entriesEqual(a.Entries, b.Entries)
}

func (st State) String() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "hs{%d,%d} snap{%d,%d,%dB} [", st.HardState.Term, st.HardState.Vote,
		st.Snapshot.Index, st.Snapshot.Term, len(st.Snapshot.Data))
	for i, e := range st.Entries {
		if i > 0 {
			b.WriteByte(' ')
		}
		d := fmt.Sprintf("%dB", len(e.Data))
		if e.Data == nil {
			d = "nil"
		}
		fmt.Fprintf(&b, "%d/%d:%s", e.Index, e.Term, d)
	}
	b.WriteByte(']')
	return b.String()
}

// run applies ops that must all succeed.
func run(t interface{ Fatalf(string, ...any) }, m *memFS, ops []port.DiskOp) {
	for i, op := range ops {
		if err := m.exec(op, false); err != nil {
			t.Fatalf("op %d (%v %s): %v", i, op.Kind, op.Path, err)
		}
	}
}

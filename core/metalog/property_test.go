package metalog

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/raft"
)

// call is one thing the host asks of the store.
type call struct {
	rd      *raft.Ready    // Save
	compact *raft.Snapshot // Compact
}

func (c call) String() string {
	if c.compact != nil {
		return fmt.Sprintf("Compact(%d/%d)", c.compact.Index, c.compact.Term)
	}
	s := "Save("
	if c.rd.HardState != nil {
		s += fmt.Sprintf("hs{%d,%d} ", c.rd.HardState.Term, c.rd.HardState.Vote)
	}
	if c.rd.Snapshot != nil {
		s += fmt.Sprintf("snap{%d,%d} ", c.rd.Snapshot.Index, c.rd.Snapshot.Term)
	}
	if n := len(c.rd.Entries); n > 0 {
		s += fmt.Sprintf("entries[%d..%d]/%d", c.rd.Entries[0].Index, c.rd.Entries[n-1].Index, c.rd.Entries[0].Term)
	}
	return s + ")"
}

func genData(t *rapid.T, label string) []byte {
	switch rapid.IntRange(0, 5).Draw(t, label+"kind") {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2:
		return rapid.SliceOfN(rapid.Byte(), 0, 200).Draw(t, label)
	default:
		return rapid.SliceOfN(rapid.Byte(), 0, 24).Draw(t, label)
	}
}

func lastIndex(st State) uint64 { return st.Snapshot.Index + uint64(len(st.Entries)) }

func lastTerm(st State) uint64 {
	if n := len(st.Entries); n > 0 {
		return st.Entries[n-1].Term
	}
	return st.Snapshot.Term
}

func genEntries(t *rapid.T, from uint64, term uint64, max int) []raft.Entry {
	n := rapid.IntRange(0, max).Draw(t, "n")
	var ents []raft.Entry
	for i := 0; i < n; i++ {
		ents = append(ents, raft.Entry{Index: from + uint64(i), Term: term, Data: genData(t, "data")})
	}
	return ents
}

// genCall draws a call that Raft could make of a store holding st: terms
// never decrease along the log and never exceed the hard state's; a
// snapshot is installed only where the log disagrees with it.
func genCall(t *rapid.T, st State) call {
	last := lastIndex(st)
	// A crash can pair a snapshot with an older hard state (see allowed);
	// Raft then appends nothing before it moved to a newer term.
	top := max(st.HardState.Term, lastTerm(st))
	bump := func() *raft.HardState {
		return &raft.HardState{Term: top + 1 + rapid.Uint64Range(0, 2).Draw(t, "termStep"),
			Vote: port.NodeID(rapid.IntRange(-1, 3).Draw(t, "vote"))}
	}
	switch k := rapid.IntRange(0, 9).Draw(t, "call"); {
	case k <= 4 || st.HardState.Term < max(1, top): // entries, perhaps replacing a tail
		rd := raft.Ready{}
		term := st.HardState.Term
		if st.HardState.Term < max(1, top) || rapid.IntRange(0, 3).Draw(t, "bump") == 0 {
			rd.HardState = bump()
			term = rd.HardState.Term
		}
		from := last + 1
		if last > st.Snapshot.Index && rapid.IntRange(0, 3).Draw(t, "truncate") == 0 {
			from = rapid.Uint64Range(st.Snapshot.Index+1, last).Draw(t, "from")
		}
		rd.Entries = genEntries(t, from, term, 5)
		if len(rd.Entries) == 0 && rd.HardState == nil {
			rd.HardState = bump()
		}
		return call{rd: &rd}
	case k == 5: // hard state only
		return call{rd: &raft.Ready{HardState: bump()}}
	case k <= 7 && last > st.Snapshot.Index: // compaction
		i := rapid.Uint64Range(st.Snapshot.Index+1, last).Draw(t, "compactAt")
		term := st.Entries[i-st.Snapshot.Index-1].Term
		return call{compact: &raft.Snapshot{Index: i, Term: term, Data: genData(t, "snapData")}}
	default: // snapshot install from a leader
		rd := raft.Ready{}
		idx := rapid.Uint64Range(st.Snapshot.Index+1, last+3).Draw(t, "installAt")
		var snapTerm uint64
		if idx > last && rapid.Bool().Draw(t, "sameTerm") {
			// No entry at idx: any term from the last one on disagrees.
			snapTerm = rapid.Uint64Range(lastTerm(st), st.HardState.Term).Draw(t, "snapTerm")
		} else {
			rd.HardState = bump()
			snapTerm = top + 1 // newer than any entry here
		}
		rd.Snapshot = &raft.Snapshot{Index: idx, Term: snapTerm, Data: genData(t, "snapData")}
		term := st.HardState.Term
		if rd.HardState != nil {
			term = rd.HardState.Term
		}
		rd.Entries = genEntries(t, idx+1, term, 3)
		return call{rd: &rd}
	}
}

// allowed reports whether r may be recovered after a crash during c,
// issued on a store holding prev (durably) whose next state is next.
// hsFirst: a snapshot install wrote its hard state to the log before the
// snapshot (raft.log existed when c was issued) and that write's fsync did
// not fail. Otherwise the snapshot may land with the older hard state: a
// lower term than the snapshot's, which is harmless, since nothing of the
// Ready (no vote, no acknowledgement) left the node.
// hadLog: raft.log existed when c was issued.
func allowed(prev, next, r State, c call, hadLog, hsFirst bool) error {
	if stateEqual(r, prev) || stateEqual(r, next) {
		return nil
	}
	bad := fmt.Errorf("recovered %v\n  before %v\n  after  %v\n  during %v", r, prev, next, c)
	switch {
	case c.compact != nil:
		return bad // nothing in between: the hard state is unchanged
	case c.rd.Snapshot != nil:
		switch {
		case snapEqual(r.Snapshot, prev.Snapshot):
			// The hard state went first (when there was a log to put it in).
			if entriesEqual(r.Entries, prev.Entries) && hadLog && r.HardState == next.HardState {
				return nil
			}
		case snapEqual(r.Snapshot, next.Snapshot):
			// The snapshot landed, the log's rewrite did not: the old
			// entries disagree with it and are gone.
			hsOK := r.HardState == next.HardState || !hsFirst && r.HardState == prev.HardState
			if hsOK && len(r.Entries) == 0 {
				return nil
			}
		}
		return bad
	}
	rd := c.rd
	if !snapEqual(r.Snapshot, prev.Snapshot) {
		return bad
	}
	if entriesEqual(r.Entries, prev.Entries) && (r.HardState == prev.HardState || r.HardState == next.HardState) {
		return nil
	}
	// Some of the entries landed: a prefix, after the hard state.
	if r.HardState != next.HardState || len(rd.Entries) == 0 {
		return bad
	}
	k := rd.Entries[0].Index - prev.Snapshot.Index - 1
	for j := 1; j <= len(rd.Entries); j++ {
		want := append(append([]raft.Entry(nil), prev.Entries[:k]...), rd.Entries[:j]...)
		if entriesEqual(r.Entries, want) {
			return nil
		}
	}
	return bad
}

type harness struct {
	t     *rapid.T
	fs    *memFS
	rng   *rand.Rand
	s     *Store
	model State
}

func (h *harness) do(c call) []port.DiskOp {
	var ops []port.DiskOp
	if c.compact != nil {
		ops = h.s.Compact(*c.compact)
	} else {
		ops = h.s.Save(*c.rd)
	}
	for _, op := range ops {
		if op.Lane != Lane {
			h.t.Fatalf("op %v %s on lane %q", op.Kind, op.Path, op.Lane)
		}
	}
	return ops
}

// crash crashes the machine (or, when process, only the process).
func (h *harness) crash(process bool) {
	if !process {
		h.fs.crash(h.rng)
	}
}

// boot runs the boot operations of s, which recovered want, perhaps
// crashing during them: until they completed, nothing was acted on, so a
// crash then may recover any state check accepts (the crash that led here
// could have left it too). Once they completed, what was recovered is
// durable: a machine crash changes nothing. It reports false when a
// recovery failed and check accepted that (the node is out).
func (h *harness) boot(s *Store, want State, check func(State, error) error) bool {
	for {
		ops := s.BootOps()
		if rapid.IntRange(0, 3).Draw(h.t, "crashInBoot") != 0 {
			run(h.t, h.fs, ops)
			break
		}
		cut := rapid.IntRange(0, len(ops)).Draw(h.t, "bootCut")
		run(h.t, h.fs, ops[:cut])
		h.crash(rapid.Bool().Draw(h.t, "bootProcessCrash"))
		var err error
		s, want, err = Recover(h.fs)
		if cerr := check(want, err); cerr != nil {
			h.t.Fatalf("crash at boot op %d/%d: %v", cut, len(ops), cerr)
		}
		if err != nil {
			return false
		}
	}
	h.fs.crash(h.rng)
	s2, got, err := Recover(h.fs)
	if err != nil {
		h.t.Fatalf("recover after the boot operations: %v", err)
	}
	if !stateEqual(got, want) {
		h.t.Fatalf("recovered state was not durable after the boot operations:\n  was %v\n  now %v", want, got)
	}
	h.s, h.model = s2, want
	run(h.t, h.fs, s2.BootOps())
	return true
}

func (h *harness) checkSize() {
	data, ok := h.fs.read(logPath)
	if !ok {
		data = nil
	}
	if h.s.Size() != int64(len(data)) {
		h.t.Fatalf("Size %d, raft.log holds %d bytes", h.s.Size(), len(data))
	}
	if h.s.EntriesSinceSnapshot() != len(h.model.Entries) {
		h.t.Fatalf("EntriesSinceSnapshot %d, want %d", h.s.EntriesSinceSnapshot(), len(h.model.Entries))
	}
}

// TestCrashAnywhere: random Saves and Compacts, crashes (machine or
// process) at random operation boundaries with torn writes, optionally a
// failed fsync before the crash; what Recover returns is the state before
// the interrupted call, after it, or an intermediate state Raft could
// have produced, and it is durable once the boot operations ran. A failed
// fsync may instead make recovery fail, never recover something else.
func TestCrashAnywhere(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := &harness{t: t, fs: newMemFS(), rng: rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 1))}
		s, st, err := Recover(h.fs)
		if err != nil || !stateEqual(st, State{}) {
			t.Fatalf("fresh recover: %v %v", st, err)
		}
		if ops := s.BootOps(); len(ops) != 0 {
			t.Fatalf("boot ops on a fresh node: %v", ops)
		}
		h.s = s
		steps := rapid.IntRange(1, 30).Draw(t, "steps")
		for step := 0; step < steps; step++ {
			c := genCall(t, h.model)
			prev := h.model
			var next State
			if c.compact != nil {
				next = applyCompact(prev, *c.compact)
			} else {
				next = applyReady(prev, *c.rd)
			}
			hadLog := h.s.logExists
			ops := h.do(c)
			if rapid.IntRange(0, 3).Draw(t, "crash") != 0 {
				run(t, h.fs, ops)
				h.model = next
				h.checkSize()
				continue
			}
			cut := rapid.IntRange(0, len(ops)).Draw(t, "cut")
			fault := -1
			if cut > 0 && rapid.IntRange(0, 2).Draw(t, "fault") == 0 {
				var syncs []int
				for i, op := range ops[:cut] {
					if op.Kind == port.OpSync || op.Kind == port.OpSyncDir {
						syncs = append(syncs, i)
					}
				}
				if len(syncs) > 0 {
					fault = syncs[rapid.IntRange(0, len(syncs)-1).Draw(t, "faultAt")]
				}
			}
			// Operations already queued on the lane run even after one
			// failed; the host stops only once it hears of the failure.
			for i, op := range ops[:cut] {
				if err := h.fs.exec(op, i == fault); err != nil && i != fault {
					t.Fatalf("op %d %v %s: %v", i, op.Kind, op.Path, err)
				}
			}
			h.crash(rapid.Bool().Draw(t, "processCrash"))
			check := func(r State, err error) error {
				if err != nil {
					if fault < 0 {
						return fmt.Errorf("recover after a crash in %v: %w", c, err)
					}
					if !errors.Is(err, errCorrupt) {
						return fmt.Errorf("recover after a failed fsync: error not marked corrupt: %w", err)
					}
					return nil // the node is out; its peers rebuild it
				}
				return allowed(prev, next, r, c, hadLog, hadLog && fault < 0)
			}
			s, r, err := Recover(h.fs)
			if cerr := check(r, err); cerr != nil {
				t.Fatalf("crash at op %d/%d (fault at %d): %v", cut, len(ops), fault, cerr)
			}
			if err != nil {
				return
			}
			if fault < 0 && cut == 0 && !stateEqual(r, prev) {
				t.Fatalf("nothing ran, yet recovered %v, want %v", r, prev)
			}
			if fault < 0 && cut == len(ops) && !stateEqual(r, next) {
				t.Fatalf("every op of %v completed, yet recovered %v, want %v", c, r, next)
			}
			if !h.boot(s, r, check) {
				return
			}
		}
		// All completed: a machine crash keeps everything.
		h.fs.crash(h.rng)
		_, r, err := Recover(h.fs)
		if err != nil || !stateEqual(r, h.model) {
			t.Fatalf("final recover: %v, %v; want %v", r, err, h.model)
		}
	})
}

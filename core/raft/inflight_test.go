package raft

import (
	"testing"

	"github.com/weirmq/weir/core/port"
)

// Unit tests of what happens while a Ready is being persisted: core/broker
// keeps stepping messages, ticking and proposing between Ready and Advance.

func newInflightFollower(t *testing.T) *Raft {
	t.Helper()
	return New(Config{ID: 2, Voters: []port.NodeID{1, 2, 3}, ElectionTicks: 10, HeartbeatTicks: 2,
		Rand: func(int) int { return 0 }}, HardState{}, Snapshot{}, nil)
}

func snapMsg(index, term uint64) Message {
	return Message{Type: MsgSnap, From: 1, To: 2, Term: 1,
		Snapshot: &Snapshot{Index: index, Term: term, Data: []byte("s")}}
}

// A second snapshot arriving while the Ready installing the first is being
// persisted must not make Raft forget that the host restored its state
// machine from the first one: the host applied it, and may Compact there.
// (Found by TestRaftSafetyAsyncPersistence; fixed in 1dc6b90 by
// readyMark.snapStable. Before, Status().Applied stayed behind and Compact
// panicked.)
func TestSnapshotSupersededInFlightKeepsApplied(t *testing.T) {
	r := newInflightFollower(t)
	r.Step(snapMsg(2, 1))
	rd := r.Ready()
	if rd.Snapshot == nil || rd.Snapshot.Index != 2 {
		t.Fatalf("want the snapshot at 2 in the Ready, got %+v", rd.Snapshot)
	}
	r.Step(snapMsg(3, 1)) // arrives while the host persists rd
	// The host persisted the snapshot at 2 and restored its state machine
	// from it (Ready's contract), then calls Advance.
	r.Advance()
	if got := r.Status().Applied; got != 2 {
		t.Errorf("after the host restored the snapshot at 2, Status().Applied = %d", got)
	}
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("Compact at the host's applied index panicked: %v", p)
		}
	}()
	r.Compact(2, []byte("s")) // the host's snapshot of its state machine at 2
}

// Entries replaced while the Ready that writes them is in flight: the
// Ready's own prefix becomes stable, the replaced ones do not, and the new
// entries are written by the next Ready.
func TestTruncationWhileReadyInFlight(t *testing.T) {
	r := newInflightFollower(t)
	r.Step(Message{Type: MsgApp, From: 1, To: 2, Term: 1, Index: 0, LogTerm: 0,
		Entries: []Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1, Data: []byte("a")}, {Index: 3, Term: 1, Data: []byte("b")}}})
	rd := r.Ready()
	if len(rd.Entries) != 3 {
		t.Fatalf("want entries 1..3 in the first Ready, got %v", rd.Entries)
	}
	// Node 3 leads term 2 and replaces entries 2 and 3.
	r.Step(Message{Type: MsgApp, From: 3, To: 2, Term: 2, Index: 1, LogTerm: 1,
		Entries: []Entry{{Index: 2, Term: 2}}})
	r.Advance()
	if st := r.Status(); st.Stable != 1 || st.LastIndex != 2 {
		t.Fatalf("after the truncation: stable %d last %d, want 1 and 2", st.Stable, st.LastIndex)
	}
	rd = r.Ready()
	if len(rd.Entries) != 1 || rd.Entries[0].Index != 2 || rd.Entries[0].Term != 2 {
		t.Fatalf("second Ready writes %v, want [2@2]", rd.Entries)
	}
	if rd.HardState == nil || rd.HardState.Term != 2 {
		t.Fatalf("second Ready's hard state %v, want term 2", rd.HardState)
	}
	for _, m := range rd.Messages {
		if m.Type == MsgAppResp && !m.Reject && m.Index > 2 {
			t.Fatalf("acknowledges %d of a log that ends at 2: %+v", m.Index, m)
		}
	}
	r.Advance()
	if st := r.Status(); st.Stable != 2 {
		t.Fatalf("stable %d after the second Ready, want 2", st.Stable)
	}
}

// An acknowledgement not yet handed out is withdrawn when the entries it
// acknowledges are replaced before any Ready wrote them.
func TestUnsentAckWithdrawnOnTruncation(t *testing.T) {
	r := newInflightFollower(t)
	r.Step(Message{Type: MsgApp, From: 1, To: 2, Term: 1, Index: 0, LogTerm: 0,
		Entries: []Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1}, {Index: 3, Term: 1}}})
	r.Step(Message{Type: MsgApp, From: 3, To: 2, Term: 2, Index: 1, LogTerm: 1,
		Entries: []Entry{{Index: 2, Term: 2}}})
	rd := r.Ready()
	for _, m := range rd.Messages {
		if m.Type == MsgAppResp && !m.Reject && m.Index == 3 {
			t.Fatalf("the acknowledgement of 3@1 leaves with a log that never held it durably: %+v", m)
		}
	}
	if len(rd.Entries) != 2 || rd.Entries[1].Term != 2 {
		t.Fatalf("Ready writes %v, want [1@1 2@2]", rd.Entries)
	}
}

// A snapshot message without a snapshot decodes without error (the codec
// only checks framing) and then crashes the node in Step. DecodeMessage (or
// Step) should refuse it, as the broker drops malformed messages.
func TestMalformedMessagesRejected(t *testing.T) {
	bad := map[string]Message{
		"snap without snapshot": {Type: MsgSnap, From: 1, To: 2, Term: 1},
		"app with a gap":        {Type: MsgApp, From: 1, To: 2, Term: 1, Index: 0, Entries: []Entry{{Index: 2, Term: 1}}},
		"app out of order":      {Type: MsgApp, From: 1, To: 2, Term: 1, Index: 0, Entries: []Entry{{Index: 1, Term: 1}, {Index: 3, Term: 1}}},
		"app with a later term": {Type: MsgApp, From: 1, To: 2, Term: 1, Index: 0, Entries: []Entry{{Index: 1, Term: 7}}},
	}
	for name, m := range bad {
		t.Run(name, func(t *testing.T) {
			msg, err := DecodeMessage(AppendMessage(nil, m))
			if err != nil {
				return // refused at the wire: fine
			}
			r := newInflightFollower(t)
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("DecodeMessage accepted it and Step panicked: %v", p)
					}
				}()
				r.Step(msg)
			}()
			for i := r.log.firstIndex(); i <= r.log.lastIndex(); i++ {
				if e := r.log.entries[i-r.log.firstIndex()]; e.Index != i || e.Term > r.term {
					t.Fatalf("DecodeMessage accepted it and the log now holds %d@%d at position %d (term %d)", e.Index, e.Term, i, r.term)
				}
			}
		})
	}
}

// A snapshot replaces the log while a Ready writing entries is in flight:
// those entries (now under the snapshot) must not count as stable, or the
// next Ready would hand out committed entries the log no longer holds.
func TestSnapshotReplacesEntriesInFlight(t *testing.T) {
	r := newInflightFollower(t)
	r.Step(Message{Type: MsgApp, From: 1, To: 2, Term: 1, Index: 0, LogTerm: 0,
		Entries: []Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1}, {Index: 3, Term: 1}}})
	r.Ready()
	r.Step(snapMsg(10, 1))
	r.Advance()
	if st := r.Status(); st.Stable > 0 && st.Stable < 10 {
		t.Fatalf("stable %d under a snapshot at 10 not yet persisted", st.Stable)
	}
	rd := r.Ready()
	if rd.Snapshot == nil || rd.Snapshot.Index != 10 || len(rd.Committed) != 0 {
		t.Fatalf("want the snapshot at 10 and nothing to apply, got %+v", rd)
	}
	r.Advance()
	if st := r.Status(); st.Stable != 10 || st.Applied != 10 {
		t.Fatalf("after the snapshot: stable %d applied %d, want 10 and 10", st.Stable, st.Applied)
	}
}

package raft

import (
	"testing"

	"github.com/weirmq/weir/core/port"
)

// TestFastLogRejection is etcd-io/raft's test of the same name (without its
// case of a follower compacted past its commit index, which New cannot
// express): a follower rejects the leader's first append with a hint of
// where the logs may match, and the leader's next append goes there.
func TestFastLogRejection(t *testing.T) {
	terms := func(ts ...uint64) []Entry {
		ents := make([]Entry, len(ts))
		for i, tm := range ts {
			ents[i] = Entry{Index: uint64(i + 1), Term: tm, Data: []byte{}}
		}
		return ents
	}
	tests := []struct {
		leaderLog, followerLog          []Entry
		rejectHintTerm, rejectHintIndex uint64
		nextAppendTerm, nextAppendIndex uint64
	}{
		{terms(1, 2, 2, 4, 4, 4, 4), terms(1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3), 3, 7, 2, 3},
		{terms(1, 2, 2, 3, 4, 4, 4, 5), terms(1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3), 3, 8, 3, 4},
		{terms(1, 1, 1, 1), terms(1, 2, 2, 4), 1, 1, 1, 1},
		{terms(1, 1, 1, 1, 1, 1), terms(1, 2, 2, 4), 1, 1, 1, 1},
		{terms(1, 1, 1, 1), terms(1, 2, 2, 4, 4, 4), 1, 1, 1, 1},
		{terms(1, 1, 1, 4, 5), terms(1, 1, 1, 4), 4, 4, 4, 4},
		{terms(2, 5, 5, 5, 5, 5, 5, 5, 5), terms(2, 4, 4, 4, 4, 4), 4, 6, 2, 1},
		{terms(2, 2, 2, 2, 2), terms(2, 4, 4, 4, 4, 4, 4, 4), 2, 1, 2, 1},
	}
	cfg := func(id port.NodeID) Config {
		return Config{ID: id, Voters: []port.NodeID{1, 2, 3}, ElectionTicks: 10, HeartbeatTicks: 1,
			Rand: func(int) int { return 0 }}
	}
	for i, tt := range tests {
		last := tt.leaderLog[len(tt.leaderLog)-1]
		n1 := New(cfg(1), HardState{Term: last.Term - 1}, Snapshot{}, tt.leaderLog)
		n1.becomeCandidate() // term last.Term
		n1.becomeLeader()
		n2 := New(cfg(2), HardState{Term: last.Term, Vote: 1}, Snapshot{}, tt.followerLog)
		app := takeMsg(t, n1, 2, MsgApp)
		n2.Step(app)
		resp := takeMsg(t, n2, 1, MsgAppResp)
		if !resp.Reject || resp.RejectTerm != tt.rejectHintTerm || resp.RejectHint != tt.rejectHintIndex {
			t.Errorf("case %d: follower answers %+v, want a rejection with hint %d@%d", i, resp, tt.rejectHintIndex, tt.rejectHintTerm)
			continue
		}
		n1.Step(resp)
		next := takeMsg(t, n1, 2, MsgApp)
		if next.LogTerm != tt.nextAppendTerm || next.Index != tt.nextAppendIndex {
			t.Errorf("case %d: leader's next append follows %d@%d, want %d@%d", i, next.Index, next.LogTerm, tt.nextAppendIndex, tt.nextAppendTerm)
		}
	}
}

// takeMsg removes and returns the one message of type typ to to that r
// queued, discarding the others.
func takeMsg(t *testing.T, r *Raft, to port.NodeID, typ MsgType) Message {
	t.Helper()
	var found []Message
	for _, m := range r.msgs {
		if m.To == to && m.Type == typ {
			found = append(found, m)
		}
	}
	r.msgs = nil
	if len(found) != 1 {
		t.Fatalf("want one %s to %d, got %+v", typ, to, found)
	}
	return found[0]
}

// TestLeaderCommitsOnlyCurrentTermEntries is Figure 8 of the Raft paper
// (§5.4.2; etcd-io/raft's TestLeaderOnlyCommitsLogFromCurrentTerm): a leader
// of term 4 whose entry 2 (of term 2) is held by a majority must not count
// it committed until an entry of its own term is, since a node holding an
// entry of term 3 at index 2 could still be elected and replace it. No
// property test or golden trace catches the loss of this rule. The append
// that acknowledges index 2 alone is one split by MaxMsgBytes.
func TestLeaderCommitsOnlyCurrentTermEntries(t *testing.T) {
	log := []Entry{{Index: 1, Term: 1, Data: []byte{}}, {Index: 2, Term: 2, Data: make([]byte, 100)}}
	r := New(Config{ID: 1, Voters: []port.NodeID{1, 2, 3}, ElectionTicks: 10, HeartbeatTicks: 1,
		Rand: func(int) int { return 0 }, MaxMsgBytes: 50}, HardState{Term: 3}, Snapshot{}, log)
	r.becomeCandidate()
	r.becomeLeader() // term 4; appends 3@4
	r.msgs = nil
	for _, id := range []port.NodeID{2, 3} {
		// The follower held entry 1 only: it acknowledges entry 2 alone.
		r.Step(Message{Type: MsgAppResp, From: id, To: 1, Term: 4, Index: 2})
	}
	if st := r.Status(); st.Commit >= 2 {
		t.Fatalf("leader of term 4 commits %d on a majority holding 2@2 only", st.Commit)
	}
	r.Step(Message{Type: MsgAppResp, From: 2, To: 1, Term: 4, Index: 3})
	r.Ready()
	r.Advance() // the leader's own 3@4 is durable
	if st := r.Status(); st.Commit != 3 {
		t.Fatalf("commit %d once 3@4 is on a majority, want 3", st.Commit)
	}
}

package raft

import "fmt"

// raftLog is the log as this node knows it: a snapshot standing for every
// entry up to snap.Index, then the entries after it. Which of them are
// durable is tracked by the Raft struct, not here.
type raftLog struct {
	snap    Snapshot
	entries []Entry // entries[i].Index == snap.Index+1+i
}

func (l *raftLog) firstIndex() uint64 { return l.snap.Index + 1 }

func (l *raftLog) lastIndex() uint64 { return l.snap.Index + uint64(len(l.entries)) }

func (l *raftLog) lastTerm() uint64 {
	t, _ := l.term(l.lastIndex())
	return t
}

// term returns the term of the entry at index i, if the log still knows it
// (it is the snapshot's last entry or a retained entry).
func (l *raftLog) term(i uint64) (uint64, bool) {
	switch {
	case i == l.snap.Index:
		return l.snap.Term, true
	case i < l.snap.Index || i > l.lastIndex():
		return 0, false
	default:
		return l.entries[i-l.firstIndex()].Term, true
	}
}

func (l *raftLog) matchTerm(i, term uint64) bool {
	t, ok := l.term(i)
	return ok && t == term
}

// upToDate reports whether a log ending at (lastIndex, lastTerm) is at
// least as up to date as this one (Raft §5.4.1).
func (l *raftLog) upToDate(lastIndex, lastTerm uint64) bool {
	mine := l.lastTerm()
	return lastTerm > mine || (lastTerm == mine && lastIndex >= l.lastIndex())
}

// slice returns the entries in [lo, hi], at most maxBytes of data (but at
// least one entry). The caller must not modify them.
func (l *raftLog) slice(lo, hi uint64, maxBytes int) []Entry {
	if lo < l.firstIndex() || hi > l.lastIndex() {
		panic(fmt.Sprintf("raft: slice [%d, %d] outside log [%d, %d]", lo, hi, l.firstIndex(), l.lastIndex()))
	}
	if lo > hi {
		return nil
	}
	ents := l.entries[lo-l.firstIndex() : hi-l.firstIndex()+1]
	size := 0
	for i, e := range ents {
		size += len(e.Data)
		if i > 0 && size > maxBytes {
			return ents[:i:i]
		}
	}
	return ents[:len(ents):len(ents)]
}

// truncateAndAppend puts ents into the log, dropping any entries from
// ents[0].Index on.
func (l *raftLog) truncateAndAppend(ents []Entry) {
	if len(ents) == 0 {
		return
	}
	first := ents[0].Index
	if first <= l.snap.Index || first > l.lastIndex()+1 {
		panic(fmt.Sprintf("raft: append at %d to log [%d, %d]", first, l.firstIndex(), l.lastIndex()))
	}
	if first == l.lastIndex()+1 {
		// Appending after the end writes past the length of every slice
		// handed out (slice caps their capacity), so it can share the array.
		l.entries = append(l.entries, ents...)
		return
	}
	// Replacing a tail: copy, since entries handed out may alias it.
	l.entries = append(l.entries[:first-l.firstIndex():first-l.firstIndex()], ents...)
}

// compact drops the entries the snapshot s stands for.
func (l *raftLog) compact(s Snapshot) {
	if s.Index <= l.snap.Index {
		return
	}
	if s.Index > l.lastIndex() {
		panic(fmt.Sprintf("raft: compact to %d beyond last index %d", s.Index, l.lastIndex()))
	}
	l.entries = append([]Entry(nil), l.entries[s.Index-l.firstIndex()+1:]...)
	l.snap = s
}

// restore replaces the whole log with a snapshot.
func (l *raftLog) restore(s Snapshot) {
	l.snap = s
	l.entries = nil
}

// findConflictByTerm returns the largest index ≤ index whose term is ≤
// term, with that term: where a log with (index, term) can match this one
// at best. Entries the log no longer holds count as matching (they are
// committed).
func (l *raftLog) findConflictByTerm(index, term uint64) (uint64, uint64) {
	index = min(index, l.lastIndex())
	for ; index > l.snap.Index; index-- {
		if t, _ := l.term(index); t <= term {
			return index, t
		}
	}
	return l.snap.Index, l.snap.Term
}

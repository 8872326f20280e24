package raft

import (
	"fmt"
	"slices"

	"github.com/weirmq/weir/core/bugs"
	"github.com/weirmq/weir/core/port"
)

// Config is a node's static configuration.
type Config struct {
	ID port.NodeID
	// Voters is the quorum (controller.quorum.voters). A node not in it is
	// a learner.
	Voters []port.NodeID
	// ElectionTicks is the election timeout in ticks; a follower campaigns
	// after a random timeout in [ElectionTicks, 2*ElectionTicks).
	ElectionTicks int
	// HeartbeatTicks is the leader's heartbeat interval in ticks.
	HeartbeatTicks int
	// Rand returns a uniform integer in [0, n): the seeded source the
	// host hands in.
	Rand func(n int) int
	// MaxMsgBytes bounds the entry data of one append message.
	MaxMsgBytes int
}

// Raft is one node's consensus state. It is not safe for concurrent use.
type Raft struct {
	cfg    Config
	voters []port.NodeID // sorted
	role   Role
	term   uint64
	vote   port.NodeID
	lead   port.NodeID
	log    raftLog

	// commit is the highest index known committed; applied the highest
	// handed to the host in a Ready.
	commit, applied uint64
	// stable is the last index known durable here; writeFrom the first
	// index whose entry must still be written. Entries in (stable,
	// writeFrom) are in a Ready being persisted.
	stable, writeFrom uint64
	// persisted is the HardState last handed out to be persisted.
	persisted HardState
	// pendingSnap is a snapshot received from the leader, to persist.
	pendingSnap *Snapshot
	// inReady is the Ready handed out and not yet advanced.
	inReady *readyMark

	electionElapsed   int
	heartbeatElapsed  int
	randomizedTimeout int

	votes    map[port.NodeID]bool // only counted, never iterated into output
	progress map[port.NodeID]*progress
	msgs     []Message
}

// readyMark remembers what a Ready handed out, for Advance.
type readyMark struct {
	lastWritten uint64 // last index written by it (0: none)
	// snapIndex is the snapshot it installs (0: none): the host restores
	// its state machine from it. snapStable: the log still starts there
	// (no later snapshot replaced it while the Ready was in flight).
	snapIndex  uint64
	snapStable bool
	applied    uint64
}

// New starts a node from what its storage holds: hs, the latest snapshot
// (zero if none) and the entries after it. Everything given is durable.
// The host must have restored its state machine from snap.
func New(cfg Config, hs HardState, snap Snapshot, entries []Entry) *Raft {
	if cfg.ElectionTicks <= cfg.HeartbeatTicks || cfg.HeartbeatTicks <= 0 {
		panic("raft: ElectionTicks must exceed HeartbeatTicks > 0")
	}
	if cfg.MaxMsgBytes <= 0 {
		cfg.MaxMsgBytes = 1 << 20
	}
	r := &Raft{
		cfg:    cfg,
		voters: slices.Sorted(slices.Values(cfg.Voters)),
		lead:   None,
		vote:   hs.Vote,
		term:   hs.Term,
		log:    raftLog{snap: snap},
	}
	if hs.Term == 0 {
		r.vote = None
	}
	for i, e := range entries {
		if e.Index != snap.Index+1+uint64(i) {
			panic(fmt.Sprintf("raft: stored entry %d at position of index %d", e.Index, snap.Index+1+uint64(i)))
		}
	}
	r.log.entries = slices.Clone(entries) // the caller's array is its own
	r.persisted = HardState{Term: r.term, Vote: r.vote}
	r.commit, r.applied = snap.Index, snap.Index
	r.stable = r.log.lastIndex()
	r.writeFrom = r.stable + 1
	r.becomeFollower(r.term, None)
	return r
}

func (r *Raft) isVoter(id port.NodeID) bool {
	_, ok := slices.BinarySearch(r.voters, id)
	return ok
}

func (r *Raft) quorum() int { return len(r.voters)/2 + 1 }

// Status returns the node's current state.
func (r *Raft) Status() Status {
	return Status{ID: r.cfg.ID, Role: r.role, Term: r.term, Vote: r.vote, Leader: r.lead,
		Commit: r.commit, Applied: r.applied, LastIndex: r.log.lastIndex(), Stable: r.stable}
}

// Leader returns the leader this node knows of, or None.
func (r *Raft) Leader() port.NodeID { return r.lead }

func (r *Raft) resetTimers() {
	r.electionElapsed, r.heartbeatElapsed = 0, 0
	r.randomizedTimeout = r.cfg.ElectionTicks + r.cfg.Rand(r.cfg.ElectionTicks)
}

func (r *Raft) becomeFollower(term uint64, lead port.NodeID) {
	if term > r.term {
		r.term, r.vote = term, None
	}
	r.role, r.lead = Follower, lead
	r.progress, r.votes = nil, nil
	r.resetTimers()
}

func (r *Raft) becomePreCandidate() {
	r.role, r.lead = PreCandidate, None
	r.votes = map[port.NodeID]bool{}
	r.resetTimers()
}

func (r *Raft) becomeCandidate() {
	r.term++
	r.role, r.vote, r.lead = Candidate, r.cfg.ID, None
	r.votes = map[port.NodeID]bool{}
	r.resetTimers()
}

func (r *Raft) becomeLeader() {
	r.role, r.lead, r.votes = Leader, r.cfg.ID, nil
	r.resetTimers()
	r.progress = map[port.NodeID]*progress{}
	for _, id := range r.voters {
		if id != r.cfg.ID {
			r.progress[id] = &progress{next: r.log.lastIndex() + 1, recentActive: true}
		}
	}
	// An empty entry of the new term lets the leader commit what earlier
	// terms left uncommitted (§5.4.2).
	r.appendEntries([]Entry{{Data: nil}})
	r.broadcastAppend()
}

// Tick advances the node's logical clock by one tick.
func (r *Raft) Tick() {
	r.electionElapsed++
	if r.role == Leader {
		r.heartbeatElapsed++
		if r.electionElapsed >= r.cfg.ElectionTicks {
			r.electionElapsed = 0
			if !bugs.On(bugs.NoCheckQuorum) {
				r.checkQuorum()
			}
			if r.role != Leader {
				return
			}
		}
		if r.heartbeatElapsed >= r.cfg.HeartbeatTicks {
			r.heartbeatElapsed = 0
			r.broadcastHeartbeat()
		}
		return
	}
	if r.electionElapsed < r.randomizedTimeout && !(r.isVoter(r.cfg.ID) && len(r.voters) == 1 && r.role == Follower) {
		return
	}
	r.resetTimers()
	if r.isVoter(r.cfg.ID) {
		r.campaign()
		return
	}
	// A learner that hears from no leader forgets the one it knew and
	// announces itself to the voters; whichever leads adopts it.
	r.lead = None
	for _, id := range r.voters {
		r.send(Message{Type: MsgAppResp, To: id, Reject: true, Index: r.log.lastIndex(),
			RejectHint: r.log.lastIndex(), RejectTerm: r.log.lastTerm()})
	}
}

// checkQuorum steps the leader down unless a quorum of voters was heard
// from since the previous check (leader lease, thesis §6.2).
func (r *Raft) checkQuorum() {
	active := 0
	for _, id := range r.voters {
		if id == r.cfg.ID {
			active++
			continue
		}
		if pr := r.progress[id]; pr.recentActive {
			active++
		}
	}
	for _, pr := range r.progress {
		pr.recentActive = false
	}
	if active < r.quorum() {
		r.becomeFollower(r.term, None)
	}
}

// Campaign starts an election now instead of waiting for the election
// timeout (a voter only; a leader ignores it).
func (r *Raft) Campaign() {
	if r.role != Leader && r.isVoter(r.cfg.ID) {
		r.campaign()
	}
}

// campaign starts a pre-vote: a node asks whether it could win before it
// raises its term, so a node that was partitioned away cannot depose a
// healthy leader when it returns.
func (r *Raft) campaign() {
	r.becomePreCandidate()
	r.requestVotes(MsgPreVote, r.term+1)
}

func (r *Raft) requestVotes(t MsgType, term uint64) {
	r.votes[r.cfg.ID] = true
	if r.tally() {
		return
	}
	for _, id := range r.voters {
		if id != r.cfg.ID {
			r.sendTerm(Message{Type: t, To: id, Index: r.log.lastIndex(), LogTerm: r.log.lastTerm()}, term)
		}
	}
}

// tally counts votes; it moves the node on and reports true once a
// quorum granted.
func (r *Raft) tally() bool {
	granted, rejected := 0, 0
	for _, id := range r.voters {
		v, ok := r.votes[id]
		switch {
		case ok && v:
			granted++
		case ok:
			rejected++
		}
	}
	switch {
	case granted >= r.quorum():
		if r.role == PreCandidate {
			r.becomeCandidate()
			r.requestVotes(MsgVote, r.term)
		} else {
			r.becomeLeader()
		}
		return true
	case rejected >= r.quorum():
		r.becomeFollower(r.term, None)
	}
	return false
}

// Propose appends data to the log if this node leads, and returns the
// index and term the entry will have if it commits.
func (r *Raft) Propose(data []byte) (index, term uint64, err error) {
	if r.role != Leader {
		return 0, 0, ErrNotLeader
	}
	if data == nil {
		data = []byte{} // nil marks the leader's empty entry
	}
	r.appendEntries([]Entry{{Data: data}})
	r.broadcastAppend()
	return r.log.lastIndex(), r.term, nil
}

func (r *Raft) appendEntries(ents []Entry) {
	last := r.log.lastIndex()
	for i := range ents {
		ents[i].Term, ents[i].Index = r.term, last+1+uint64(i)
	}
	r.log.truncateAndAppend(ents)
}

// Step handles a message from a peer.
func (r *Raft) Step(m Message) {
	switch {
	case m.Term > r.term:
		if (m.Type == MsgVote || m.Type == MsgPreVote) && r.inLease() {
			// A live leader was heard from within an election timeout:
			// this candidate is disruptive (check-quorum's other half).
			return
		}
		switch {
		case m.Type == MsgPreVote:
			// Answered below without adopting the term.
		case m.Type == MsgPreVoteResp && !m.Reject:
			// A granted pre-vote carries the term the node will campaign in.
		case m.Type == MsgApp || m.Type == MsgHeartbeat || m.Type == MsgSnap:
			r.becomeFollower(m.Term, m.From)
		default:
			r.becomeFollower(m.Term, None)
		}
	case m.Term < r.term && m.Type == MsgAppResp && m.Reject && !r.isVoter(m.From) && r.role == Leader:
		// A learner announcing itself does not know the term yet. Its
		// rejection only makes the leader probe it, so the old term is
		// harmless; a learner's acknowledgement still needs the term.
	case m.Term < r.term && m.Type == MsgApp && bugs.On(bugs.StaleLeaderAccepted):
		r.lead = m.From
		r.handleAppend(m)
		return
	case m.Term < r.term:
		switch m.Type {
		case MsgApp, MsgHeartbeat, MsgSnap:
			// A deposed leader: tell it the term so it steps down.
			r.send(Message{Type: MsgAppResp, To: m.From})
		case MsgPreVote:
			r.send(Message{Type: MsgPreVoteResp, To: m.From, Reject: true})
		}
		return
	}

	switch m.Type {
	case MsgPreVote, MsgVote:
		r.handleVoteRequest(m)
		return
	}
	switch r.role {
	case Leader:
		r.stepLeader(m)
	case PreCandidate, Candidate:
		r.stepCandidate(m)
	default:
		r.stepFollower(m)
	}
}

// inLease reports whether this node heard from a leader within the
// minimum election timeout.
func (r *Raft) inLease() bool {
	return r.lead != None && r.electionElapsed < r.cfg.ElectionTicks
}

func (r *Raft) handleVoteRequest(m Message) {
	canVote := r.vote == m.From ||
		(r.vote == None && r.lead == None) ||
		(m.Type == MsgPreVote && m.Term > r.term)
	grant := canVote && r.log.upToDate(m.Index, m.LogTerm) && r.isVoter(r.cfg.ID)
	resp := MsgVoteResp
	if m.Type == MsgPreVote {
		resp = MsgPreVoteResp
	}
	if grant {
		// The response carries the requested term: for a pre-vote, the
		// term the candidate is about to campaign in.
		r.sendTerm(Message{Type: resp, To: m.From}, m.Term)
		if m.Type == MsgVote {
			r.electionElapsed = 0
			r.vote = m.From
		}
		return
	}
	r.send(Message{Type: resp, To: m.From, Reject: true})
}

func (r *Raft) stepCandidate(m Message) {
	switch m.Type {
	case MsgApp, MsgHeartbeat, MsgSnap:
		r.becomeFollower(m.Term, m.From)
		r.stepFollower(m)
	case MsgPreVoteResp:
		if r.role == PreCandidate {
			r.votes[m.From] = !m.Reject
			r.tally()
		}
	case MsgVoteResp:
		if r.role == Candidate {
			r.votes[m.From] = !m.Reject
			r.tally()
		}
	}
}

func (r *Raft) stepFollower(m Message) {
	switch m.Type {
	case MsgApp:
		r.electionElapsed, r.lead = 0, m.From
		r.handleAppend(m)
	case MsgHeartbeat:
		r.electionElapsed, r.lead = 0, m.From
		// The leader sends min(its commit, our match): never beyond what
		// this log holds in agreement with it.
		r.commitTo(m.Commit)
		r.send(Message{Type: MsgHeartbeatResp, To: m.From})
	case MsgSnap:
		r.electionElapsed, r.lead = 0, m.From
		r.handleSnapshot(m)
	}
}

func (r *Raft) commitTo(c uint64) {
	if c > r.commit {
		r.commit = min(c, r.log.lastIndex())
	}
}

func (r *Raft) handleAppend(m Message) {
	if m.Index < r.commit {
		r.send(Message{Type: MsgAppResp, To: m.From, Index: r.commit})
		return
	}
	if !r.log.matchTerm(m.Index, m.LogTerm) {
		hint, hintTerm := r.log.findConflictByTerm(m.Index, m.LogTerm)
		r.send(Message{Type: MsgAppResp, To: m.From, Index: m.Index, Reject: true,
			RejectHint: hint, RejectTerm: hintTerm})
		return
	}
	ents := m.Entries
	// Skip entries the log already has; an entry that conflicts with one
	// here replaces it and everything after it.
	for len(ents) > 0 {
		t, ok := r.log.term(ents[0].Index)
		if !ok || t != ents[0].Term {
			break
		}
		ents = ents[1:]
	}
	if len(ents) > 0 {
		first := ents[0].Index
		if first <= r.commit {
			panic(fmt.Sprintf("raft %d: entry %d conflicts with committed log (commit %d)", r.cfg.ID, first, r.commit))
		}
		r.log.truncateAndAppend(slices.Clone(ents))
		r.rewriteFrom(first)
	}
	lastNew := m.Index + uint64(len(m.Entries))
	r.commitTo(min(m.Commit, lastNew))
	r.send(Message{Type: MsgAppResp, To: m.From, Index: lastNew})
}

// rewriteFrom notes that the log changed from index first on. Unsent
// acknowledgements of the replaced entries are withdrawn: messages leave
// only after the next Ready is durable, and that Ready no longer holds
// those entries, so an acknowledgement would claim what no disk has.
func (r *Raft) rewriteFrom(first uint64) {
	r.msgs = slices.DeleteFunc(r.msgs, func(m Message) bool {
		return m.Type == MsgAppResp && !m.Reject && m.Index >= first
	})
	if first <= r.stable {
		r.stable = first - 1
	}
	r.writeFrom = min(r.writeFrom, first)
	if r.inReady != nil && r.inReady.lastWritten >= first {
		r.inReady.lastWritten = first - 1
	}
}

func (r *Raft) handleSnapshot(m Message) {
	s := *m.Snapshot
	if s.Index <= r.commit {
		r.send(Message{Type: MsgAppResp, To: m.From, Index: r.commit})
		return
	}
	if r.log.matchTerm(s.Index, s.Term) {
		// The log already holds what the snapshot stands for.
		r.commitTo(s.Index)
		r.send(Message{Type: MsgAppResp, To: m.From, Index: s.Index})
		return
	}
	r.rewriteFrom(r.log.firstIndex())
	r.log.restore(s)
	r.pendingSnap = &s
	r.commit = s.Index
	r.stable = 0
	r.writeFrom = s.Index + 1
	if r.inReady != nil {
		// What the Ready in flight persists is replaced by the snapshot;
		// the host still restores any snapshot it carries.
		r.inReady.lastWritten, r.inReady.snapStable = 0, false
	}
	r.send(Message{Type: MsgAppResp, To: m.From, Index: s.Index})
}

func (r *Raft) stepLeader(m Message) {
	pr := r.progress[m.From]
	if pr == nil {
		if r.isVoter(m.From) || m.Type != MsgAppResp {
			return
		}
		// A learner announcing itself: probe from where its log ends.
		pr = &progress{next: min(m.Index, r.log.lastIndex()) + 1, learner: true, recentActive: true}
		r.progress[m.From] = pr
		r.sendAppend(m.From, pr)
		return
	}
	pr.recentActive = true
	switch m.Type {
	case MsgAppResp:
		if m.Reject && pr.learner && m.RejectHint < pr.match {
			// A learner's log ends below what it acknowledged: it lost
			// its disk, which a learner may (it counts for no quorum; a
			// voter never may). It is probed afresh, as a learner
			// announcing itself. A stale rejection taken for one only
			// costs entries sent again.
			*pr = progress{next: min(m.RejectHint, r.log.lastIndex()) + 1, learner: true, recentActive: true}
			r.sendAppend(m.From, pr)
			return
		}
		if m.Reject {
			if pr.rejected(m.Index, r.backtrack(m)) {
				r.sendAppend(m.From, pr)
			}
			return
		}
		if pr.acked(m.Index) {
			if pr.state != replicate {
				pr.becomeReplicate()
			}
			r.maybeCommit()
		} else if pr.state == probe {
			pr.paused = false // the probe was answered
		}
		for pr.canSend() && pr.next <= r.log.lastIndex() {
			if !r.sendAppend(m.From, pr) {
				break
			}
		}
	case MsgHeartbeatResp:
		switch {
		case pr.state == probe:
			pr.paused = false
		case pr.state == snapshot:
			// The follower is alive but has not acknowledged the
			// snapshot for an election timeout: it may have been lost.
			// Probe again; a follower still missing the entries rejects,
			// and the snapshot goes out anew.
			if pr.snapshotWaits++; pr.snapshotWaits*r.cfg.HeartbeatTicks >= r.cfg.ElectionTicks {
				pr.becomeProbe()
			}
		case pr.state == replicate && !pr.canSend():
			// Appends may have been lost with the pipeline full; free a
			// slot so the next append exposes the gap and resets it.
			pr.inflight = pr.inflight[1:]
		}
		if pr.match < r.log.lastIndex() && pr.canSend() {
			r.sendAppend(m.From, pr)
		}
	}
}

// backtrack picks where to probe next after a rejection: the follower's
// hint, or earlier if this log disagrees with the term at the hint.
func (r *Raft) backtrack(m Message) uint64 {
	if m.RejectTerm == 0 {
		return m.RejectHint
	}
	idx, _ := r.log.findConflictByTerm(m.RejectHint, m.RejectTerm)
	return idx
}

// maybeCommit advances the commit index to the highest entry of this
// term that a quorum of voters holds durably.
func (r *Raft) maybeCommit() {
	matches := make([]uint64, 0, len(r.voters))
	for _, id := range r.voters {
		if id == r.cfg.ID {
			matches = append(matches, r.stable)
		} else {
			matches = append(matches, r.progress[id].match)
		}
	}
	slices.Sort(matches)
	c := matches[len(matches)-r.quorum()]
	if bugs.On(bugs.CommitWithoutQuorum) {
		c = r.stable
	}
	if c <= r.commit {
		return
	}
	if t, _ := r.log.term(c); t != r.term {
		return
	}
	r.commit = c
	r.broadcastAppend() // followers learn the new commit index
}

func (r *Raft) broadcastAppend() {
	for _, id := range r.peers() {
		if pr := r.progress[id]; pr.canSend() {
			r.sendAppend(id, pr)
		}
	}
}

func (r *Raft) broadcastHeartbeat() {
	for _, id := range r.peers() {
		pr := r.progress[id]
		r.send(Message{Type: MsgHeartbeat, To: id, Commit: min(r.commit, pr.match)})
	}
}

// peers lists the nodes the leader replicates to, sorted.
func (r *Raft) peers() []port.NodeID {
	ids := make([]port.NodeID, 0, len(r.progress))
	for id := range r.progress {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// sendAppend sends the follower the entries from pr.next on (or a
// snapshot when they were compacted away); it reports whether it sent.
func (r *Raft) sendAppend(to port.NodeID, pr *progress) bool {
	prev := pr.next - 1
	prevTerm, ok := r.log.term(prev)
	if !ok {
		if r.log.snap.Data == nil && r.log.snap.Index > 0 {
			return false // no snapshot to send yet
		}
		s := r.log.snap
		pr.becomeSnapshot(s.Index)
		r.send(Message{Type: MsgSnap, To: to, Snapshot: &s})
		return true
	}
	var ents []Entry
	if pr.next <= r.log.lastIndex() {
		ents = r.log.slice(pr.next, r.log.lastIndex(), r.cfg.MaxMsgBytes)
	}
	r.send(Message{Type: MsgApp, To: to, Index: prev, LogTerm: prevTerm, Entries: ents, Commit: r.commit})
	pr.sent(prev+uint64(len(ents)), len(ents))
	return true
}

func (r *Raft) send(m Message) { r.sendTerm(m, r.term) }

func (r *Raft) sendTerm(m Message, term uint64) {
	m.From, m.Term = r.cfg.ID, term
	r.msgs = append(r.msgs, m)
}

// Compact records that the host's state machine at index (already applied)
// is captured by data, and drops the log entries before it. The leader
// sends this snapshot to followers that need those entries. The host
// persists the snapshot itself before calling Compact.
func (r *Raft) Compact(index uint64, data []byte) {
	if index > r.applied {
		panic(fmt.Sprintf("raft: compact to %d beyond applied %d", index, r.applied))
	}
	t, ok := r.log.term(index)
	if !ok {
		return
	}
	r.log.compact(Snapshot{Index: index, Term: t, Data: data})
}

// HasReady reports whether Ready would return anything.
func (r *Raft) HasReady() bool {
	if r.inReady != nil {
		return false
	}
	return r.pendingSnap != nil || r.writeFrom <= r.log.lastIndex() || len(r.msgs) > 0 ||
		r.persisted != (HardState{Term: r.term, Vote: r.vote}) || r.applied < min(r.commit, r.stable)
}

// Ready returns what the host must do next (see Ready). It must not be
// called again before Advance.
func (r *Raft) Ready() Ready {
	if r.inReady != nil {
		panic("raft: Ready called before Advance")
	}
	var rd Ready
	mark := &readyMark{}
	if hs := (HardState{Term: r.term, Vote: r.vote}); hs != r.persisted {
		rd.HardState = &hs
		r.persisted = hs
	}
	if r.pendingSnap != nil {
		rd.Snapshot = r.pendingSnap
		mark.snapIndex, mark.snapStable = r.pendingSnap.Index, true
		r.pendingSnap = nil
	}
	if last := r.log.lastIndex(); r.writeFrom <= last {
		rd.Entries = r.log.slice(r.writeFrom, last, int(^uint(0)>>1))
		mark.lastWritten = last
		r.writeFrom = last + 1
	}
	rd.Messages, r.msgs = r.msgs, nil
	if hi := min(r.commit, r.stable); r.applied < hi {
		rd.Committed = r.log.slice(r.applied+1, hi, int(^uint(0)>>1))
		mark.applied = hi
	}
	r.inReady = mark
	return rd
}

// Advance tells the node that the host carried out the last Ready.
func (r *Raft) Advance() {
	mark := r.inReady
	if mark == nil {
		panic("raft: Advance without Ready")
	}
	r.inReady = nil
	if mark.snapIndex > 0 {
		r.applied = max(r.applied, mark.snapIndex)
		if mark.snapStable {
			r.stable = max(r.stable, mark.snapIndex)
		}
	}
	if mark.lastWritten > r.stable && mark.lastWritten < r.writeFrom {
		r.stable = mark.lastWritten
	}
	if mark.applied > r.applied {
		r.applied = mark.applied
	}
	if r.role == Leader {
		r.maybeCommit()
	}
}

// TermAt returns the term of the entry at index i, if the log still holds
// it (or its snapshot ends there).
func (r *Raft) TermAt(i uint64) (uint64, bool) { return r.log.term(i) }

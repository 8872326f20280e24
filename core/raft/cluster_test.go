package raft

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/weirmq/weir/core/port"
)

// testCluster runs Raft nodes against in-memory storage and a network that
// loses, reorders and partitions messages, and checks Raft's safety
// properties after every step. Storage models the disk precisely enough
// for Raft: what a Ready persisted survives a crash, nothing else does.
type testCluster struct {
	fail  func(format string, args ...any)
	rand  *rand.Rand
	ids   []port.NodeID
	nodes map[port.NodeID]*testNode
	// net holds messages in flight, in send order.
	net []Message
	cut map[[2]port.NodeID]bool
	// leaders maps each term to the node that led in it.
	leaders map[uint64]port.NodeID
	// committed maps each index applied anywhere to its entry, and
	// hashes to the state-machine hash after applying it.
	committed map[uint64]Entry
	hashes    map[uint64]uint64
	trace     *strings.Builder
	electionT int
}

type testNode struct {
	r  *Raft
	up bool
	// Durable storage.
	hs      HardState
	snap    Snapshot
	entries []Entry
	// The state machine: how far it applied and a hash of what.
	applied uint64
	hash    uint64
	voter   bool
}

func newTestCluster(seed uint64, voters, learners int, fail func(string, ...any)) *testCluster {
	c := &testCluster{
		fail:      fail,
		rand:      rand.New(rand.NewPCG(seed, seed^0x5eed)),
		nodes:     map[port.NodeID]*testNode{},
		cut:       map[[2]port.NodeID]bool{},
		leaders:   map[uint64]port.NodeID{},
		committed: map[uint64]Entry{},
		hashes:    map[uint64]uint64{0: 0},
		electionT: 10,
	}
	for i := 1; i <= voters+learners; i++ {
		id := port.NodeID(i)
		c.ids = append(c.ids, id)
		c.nodes[id] = &testNode{voter: i <= voters}
	}
	for _, id := range c.ids {
		c.start(id)
	}
	return c
}

func (c *testCluster) voterIDs() []port.NodeID {
	var v []port.NodeID
	for _, id := range c.ids {
		if c.nodes[id].voter {
			v = append(v, id)
		}
	}
	return v
}

func (c *testCluster) logf(format string, args ...any) {
	if c.trace != nil {
		fmt.Fprintf(c.trace, format+"\n", args...)
	}
}

// start boots a node from its durable storage, as after a crash.
func (c *testCluster) start(id port.NodeID) {
	n := c.nodes[id]
	r := rand.New(rand.NewPCG(c.rand.Uint64(), uint64(id)))
	cfg := Config{ID: id, Voters: c.voterIDs(), ElectionTicks: c.electionT, HeartbeatTicks: 2,
		Rand: func(k int) int { return r.IntN(k) }, MaxMsgBytes: 64}
	n.r = New(cfg, n.hs, n.snap, slices.Clone(n.entries))
	n.up = true
	n.applied = n.snap.Index
	n.hash = snapHash(n.snap)
}

func snapHash(s Snapshot) uint64 {
	if s.Index == 0 {
		return 0
	}
	var h uint64
	fmt.Sscanf(string(s.Data), "%d", &h)
	return h
}

// wipe empties a crashed learner's storage: its disk was lost. A voter's
// never is (its log and votes are the quorum's safety).
func (c *testCluster) wipe(id port.NodeID) {
	n := c.nodes[id]
	if n.voter || n.up {
		c.fail("wipe %d: only a crashed learner may lose its disk", id)
	}
	*n = testNode{}
	c.logf("wipe %d", id)
}

func (c *testCluster) crash(id port.NodeID) {
	c.nodes[id].up = false
	c.logf("crash %d", id)
}

// process carries out a node's Readys until it has none, checking the
// safety properties as it goes.
func (c *testCluster) process(id port.NodeID) {
	n := c.nodes[id]
	for n.up && n.r.HasReady() {
		rd := n.r.Ready()
		if s := rd.Snapshot; s != nil {
			n.snap, n.entries = *s, nil
			n.applied, n.hash = s.Index, snapHash(*s)
			if want, ok := c.hashes[s.Index]; ok && want != n.hash {
				c.fail("node %d installed a snapshot at %d that disagrees with the applied history", id, s.Index)
			}
		}
		if len(rd.Entries) > 0 {
			first := rd.Entries[0].Index
			if first <= n.snap.Index || first > n.snap.Index+uint64(len(n.entries))+1 {
				c.fail("node %d writes entries from %d onto stored log [%d, %d]", id, first, n.snap.Index+1, n.snap.Index+uint64(len(n.entries)))
			}
			n.entries = append(n.entries[:first-n.snap.Index-1], rd.Entries...)
		}
		if rd.HardState != nil {
			if rd.HardState.Term < n.hs.Term {
				c.fail("node %d persists term %d after %d", id, rd.HardState.Term, n.hs.Term)
			}
			n.hs = *rd.HardState
		}
		for _, m := range rd.Messages {
			c.net = append(c.net, m)
		}
		for _, e := range rd.Committed {
			c.apply(id, e)
		}
		n.r.Advance()
		c.checkLeader(id)
	}
}

func (c *testCluster) apply(id port.NodeID, e Entry) {
	n := c.nodes[id]
	if e.Index != n.applied+1 {
		c.fail("node %d applies %d after %d", id, e.Index, n.applied)
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d/%q/%v", n.hash, e.Term, e.Data, e.Data == nil)
	n.hash, n.applied = h.Sum64(), e.Index
	if prev, ok := c.committed[e.Index]; ok {
		if prev.Term != e.Term || string(prev.Data) != string(e.Data) {
			c.fail("node %d applied %d@%d %q where another applied %d@%d %q", id, e.Index, e.Term, e.Data, prev.Index, prev.Term, prev.Data)
		}
	} else {
		c.committed[e.Index] = e
		c.hashes[e.Index] = n.hash
	}
	if c.hashes[e.Index] != n.hash {
		c.fail("node %d state after %d differs from the others'", id, e.Index)
	}
}

// checkLeader keeps election safety (one leader per term) and leader
// completeness (a leader holds every committed entry).
func (c *testCluster) checkLeader(id port.NodeID) {
	n := c.nodes[id]
	st := n.r.Status()
	if st.Role != Leader {
		return
	}
	if prev, ok := c.leaders[st.Term]; ok && prev != id {
		c.fail("two leaders in term %d: %d and %d", st.Term, prev, id)
	}
	if _, ok := c.leaders[st.Term]; ok {
		return
	}
	c.leaders[st.Term] = id
	c.logf("node %d leads term %d", id, st.Term)
	// A new leader holds every entry committed before its election. (A
	// deposed leader that has not noticed yet may lack later ones.)
	for idx, e := range c.committed {
		if idx <= n.r.log.snap.Index {
			continue
		}
		t, ok := n.r.log.term(idx)
		if !ok || t != e.Term {
			c.fail("leader %d of term %d lacks committed entry %d@%d", id, st.Term, idx, e.Term)
		}
	}
}

// checkLogMatching: two logs holding an entry with the same index and
// term agree on every entry before it.
func (c *testCluster) checkLogMatching() {
	for i, a := range c.ids {
		for _, b := range c.ids[i+1:] {
			la, lb := &c.nodes[a].r.log, &c.nodes[b].r.log
			lo := max(la.firstIndex(), lb.firstIndex())
			hi := min(la.lastIndex(), lb.lastIndex())
			matched := false
			for idx := hi; idx >= lo && idx > 0; idx-- {
				ta, _ := la.term(idx)
				tb, _ := lb.term(idx)
				if ta == tb {
					matched = true
				} else if matched {
					c.fail("logs of %d and %d match at a later index but differ at %d", a, b, idx)
				}
				if matched {
					ea, eb := la.entries[idx-la.firstIndex()], lb.entries[idx-lb.firstIndex()]
					if string(ea.Data) != string(eb.Data) {
						c.fail("logs of %d and %d hold different data at %d@%d", a, b, idx, ta)
					}
				}
			}
		}
	}
}

func (c *testCluster) reachable(from, to port.NodeID) bool {
	return c.nodes[to].up && !c.cut[[2]port.NodeID{from, to}]
}

// deliver hands message i of the network to its destination.
func (c *testCluster) deliver(i int) {
	m := c.net[i]
	c.net = append(c.net[:i], c.net[i+1:]...)
	if !c.reachable(m.From, m.To) {
		return
	}
	// Messages cross the wire encoded, so the codec is exercised too.
	wire, err := DecodeMessage(AppendMessage(nil, m))
	if err != nil {
		c.fail("codec: %v", err)
	}
	c.logf("%d->%d %s", m.From, m.To, describe(wire))
	c.nodes[m.To].r.Step(wire)
	c.process(m.To)
}

func describe(m Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s term=%d", m.Type, m.Term)
	switch m.Type {
	case MsgApp:
		fmt.Fprintf(&b, " prev=%d@%d commit=%d entries=[", m.Index, m.LogTerm, m.Commit)
		for i, e := range m.Entries {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%d@%d", e.Index, e.Term)
			if e.Data != nil {
				fmt.Fprintf(&b, ":%s", e.Data)
			}
		}
		b.WriteByte(']')
	case MsgAppResp:
		fmt.Fprintf(&b, " index=%d", m.Index)
		if m.Reject {
			fmt.Fprintf(&b, " reject hint=%d@%d", m.RejectHint, m.RejectTerm)
		}
	case MsgVote, MsgPreVote:
		fmt.Fprintf(&b, " last=%d@%d", m.Index, m.LogTerm)
	case MsgVoteResp, MsgPreVoteResp:
		if m.Reject {
			b.WriteString(" reject")
		}
	case MsgHeartbeat:
		fmt.Fprintf(&b, " commit=%d", m.Commit)
	case MsgSnap:
		fmt.Fprintf(&b, " snap=%d@%d", m.Snapshot.Index, m.Snapshot.Term)
	}
	return b.String()
}

// deliverAll delivers messages in order until the network is quiet.
func (c *testCluster) deliverAll() {
	for len(c.net) > 0 {
		c.deliver(0)
	}
}

func (c *testCluster) tick(id port.NodeID) {
	if n := c.nodes[id]; n.up {
		n.r.Tick()
		c.process(id)
	}
}

func (c *testCluster) leader() (port.NodeID, bool) {
	var best port.NodeID = None
	var bestTerm uint64
	for _, id := range c.ids {
		if st := c.nodes[id].r.Status(); c.nodes[id].up && st.Role == Leader && st.Term >= bestTerm {
			best, bestTerm = id, st.Term
		}
	}
	return best, best != None
}

func (c *testCluster) propose(id port.NodeID, data string) bool {
	n := c.nodes[id]
	if !n.up {
		return false
	}
	if _, _, err := n.r.Propose([]byte(data)); err != nil {
		return false
	}
	c.process(id)
	return true
}

// compact snapshots a node's state machine at its applied index.
func (c *testCluster) compact(id port.NodeID) {
	n := c.nodes[id]
	if !n.up || n.applied <= n.snap.Index {
		return
	}
	t, ok := n.r.log.term(n.applied)
	if !ok {
		return
	}
	data := []byte(fmt.Sprint(n.hash))
	// The host persists the snapshot before telling Raft.
	n.entries = slices.Clone(n.entries[n.applied-n.snap.Index:])
	n.snap = Snapshot{Index: n.applied, Term: t, Data: data}
	n.r.Compact(n.applied, data)
	c.logf("compact %d at %d", id, n.applied)
}

// stabilize heals everything and runs until every node applied every
// entry and the cluster has a leader, or fails after a bound.
func (c *testCluster) stabilize(rounds int) {
	c.cut = map[[2]port.NodeID]bool{}
	for _, id := range c.ids {
		if !c.nodes[id].up {
			c.start(id)
		}
	}
	for range rounds {
		for _, id := range c.ids {
			c.tick(id)
		}
		c.deliverAll()
		if lead, ok := c.leader(); ok && c.converged(lead) {
			return
		}
	}
	for _, id := range c.ids {
		c.fail("no convergence after %d rounds: node %d %+v", rounds, id, c.nodes[id].r.Status())
	}
}

func (c *testCluster) converged(lead port.NodeID) bool {
	want := c.nodes[lead].r.Status()
	if want.Commit < want.LastIndex {
		return false
	}
	for _, id := range c.ids {
		n := c.nodes[id]
		if st := n.r.Status(); st.Leader != lead || n.applied != want.LastIndex {
			return false
		}
	}
	return true
}

// requireLiveAfterHeal heals everything and requires the cluster to
// converge within rounds, logs to match, and a proposal made after the
// heal to commit everywhere.
func (c *testCluster) requireLiveAfterHeal(rounds int) {
	c.stabilize(rounds)
	c.checkLogMatching()
	lead, _ := c.leader()
	if !c.propose(lead, "final") {
		c.fail("leader %d refused a proposal", lead)
		return
	}
	c.stabilize(50)
	if last := c.committed[c.nodes[lead].r.log.lastIndex()]; string(last.Data) != "final" {
		c.fail("final proposal not applied: %+v", last)
	}
}

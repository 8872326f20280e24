package raft

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/weirmq/weir/core/port"
)

// asyncCluster runs a testCluster the way core/broker hosts Raft: a Ready
// is handed out, then persisted over time while the node keeps stepping
// messages, ticking and taking proposals; only when the write completed
// are its messages sent, its entries applied and Advance called. A crash
// while a Ready is being written keeps what metalog can leave behind (see
// core/metalog/doc.go): for a Ready without a snapshot a prefix of the
// frames "hard state, entries..." (one write, one fsync, the torn tail
// dropped); for one with a snapshot nothing, the hard state alone, the hard
// state and the snapshot (with the old log's entries past it when the old
// log holds the snapshot's index and term), or everything. The network may
// also deliver a message twice.
type asyncCluster struct {
	*testCluster
	pending map[port.NodeID]*Ready
	// slow is a node whose disk is slow: most attempts to complete its
	// Ready fail, so that much happens while one is pending.
	slow     port.NodeID
	slowSkip func() bool
}

func newAsyncCluster(seed uint64, voters, learners int, fail func(string, ...any)) *asyncCluster {
	return &asyncCluster{testCluster: newTestCluster(seed, voters, learners, fail), pending: map[port.NodeID]*Ready{}}
}

// begin hands out the node's next Ready, if it has one and none is being
// written.
func (c *asyncCluster) begin(id port.NodeID) {
	n := c.nodes[id]
	if !n.up || c.pending[id] != nil || !n.r.HasReady() {
		return
	}
	rd := n.r.Ready()
	c.pending[id] = &rd
}

// storeSnapshot, storeEntries and storeHardState write to durable storage
// as metalog does.
func (c *asyncCluster) storeEntries(id port.NodeID, ents []Entry) {
	n := c.nodes[id]
	if len(ents) == 0 {
		return
	}
	first := ents[0].Index
	if first <= n.snap.Index || first > n.snap.Index+uint64(len(n.entries))+1 {
		c.fail("node %d writes entries from %d onto stored log [%d, %d]", id, first, n.snap.Index+1, n.snap.Index+uint64(len(n.entries)))
	}
	n.entries = append(slices.Clone(n.entries[:first-n.snap.Index-1]), ents...)
}

func (c *asyncCluster) storeHardState(id port.NodeID, hs *HardState) {
	n := c.nodes[id]
	if hs == nil {
		return
	}
	if hs.Term < n.hs.Term {
		c.fail("node %d persists term %d after %d", id, hs.Term, n.hs.Term)
	}
	n.hs = *hs
}

// storeSnapshot installs s; keepOld keeps the stored entries past it when
// the stored log holds s's index with s's term (metalog's recovery after a
// crash between the snapshot's rename and the log's rewrite).
func (c *asyncCluster) storeSnapshot(id port.NodeID, s Snapshot, keepOld bool) {
	n := c.nodes[id]
	var kept []Entry
	if keepOld && s.Index > n.snap.Index && s.Index <= n.snap.Index+uint64(len(n.entries)) &&
		n.entries[s.Index-n.snap.Index-1].Term == s.Term {
		kept = slices.Clone(n.entries[s.Index-n.snap.Index:])
	}
	n.snap, n.entries = s, kept
}

// finish completes the pending Ready: it is durable; send, apply, Advance.
func (c *asyncCluster) finish(id port.NodeID) {
	n := c.nodes[id]
	rd := c.pending[id]
	if rd == nil || !n.up || (id == c.slow && c.slowSkip != nil && c.slowSkip()) {
		return
	}
	delete(c.pending, id)
	c.storeHardState(id, rd.HardState)
	if s := rd.Snapshot; s != nil {
		c.storeSnapshot(id, *s, false)
		n.applied, n.hash = s.Index, snapHash(*s)
		if want, ok := c.hashes[s.Index]; ok && want != n.hash {
			c.fail("node %d installed a snapshot at %d that disagrees with the applied history", id, s.Index)
		}
	}
	c.storeEntries(id, rd.Entries)
	for _, m := range rd.Messages {
		c.checkDurable(id, m)
		c.net = append(c.net, m)
	}
	for _, e := range rd.Committed {
		c.apply(id, e)
	}
	n.r.Advance()
	c.checkStable(id)
	c.checkLeader(id)
}

// checkDurable: a message leaves only once what it claims is on disk.
func (c *asyncCluster) checkDurable(id port.NodeID, m Message) {
	n := c.nodes[id]
	switch {
	case m.Type == MsgVoteResp && !m.Reject:
		if n.hs.Term < m.Term || (n.hs.Term == m.Term && n.hs.Vote != m.To) {
			c.fail("node %d grants its vote in term %d to %d but stored %+v", id, m.Term, m.To, n.hs)
		}
	case m.Type == MsgAppResp && !m.Reject:
		if last := n.snap.Index + uint64(len(n.entries)); m.Index > last {
			c.fail("node %d acknowledges %d with only [..%d] stored", id, m.Index, last)
		}
	}
	if m.Term > n.hs.Term && m.Type != MsgPreVote && m.Type != MsgPreVoteResp {
		c.fail("node %d sends %s in term %d with term %d stored", id, m.Type, m.Term, n.hs.Term)
	}
}

// checkStable: every entry up to Status().Stable is on disk as the node
// believes it is, and the node applied what its host applied.
func (c *asyncCluster) checkStable(id port.NodeID) {
	n := c.nodes[id]
	st := n.r.Status()
	if st.Applied != n.applied {
		c.fail("node %d: raft applied %d, its state machine %d", id, st.Applied, n.applied)
	}
	last := n.snap.Index + uint64(len(n.entries))
	if st.Stable > last {
		c.fail("node %d: stable %d beyond the stored log's end %d", id, st.Stable, last)
	}
	for i := max(n.snap.Index+1, n.r.log.firstIndex()); i <= st.Stable; i++ {
		mine, _ := n.r.log.term(i)
		if stored := n.entries[i-n.snap.Index-1].Term; mine != stored {
			c.fail("node %d: entry %d is stable at term %d, stored at term %d", id, i, mine, stored)
		}
	}
}

// crashDuring crashes a node, keeping the part of its pending Ready that
// cut says (see asyncCluster).
func (c *asyncCluster) crashDuring(id port.NodeID, cut int) {
	rd := c.pending[id]
	delete(c.pending, id)
	if rd != nil {
		if rd.Snapshot == nil {
			frames := len(rd.Entries)
			if rd.HardState != nil {
				frames++
			}
			cut %= frames + 1
			if cut > 0 && rd.HardState != nil {
				c.storeHardState(id, rd.HardState)
				cut--
			}
			c.storeEntries(id, rd.Entries[:cut])
		} else {
			n := c.nodes[id]
			if n.hs == (HardState{}) && n.snap.Index == 0 && len(n.entries) == 0 && cut%5 == 4 {
				// A node with no raft.log yet writes the snapshot, then
				// creates the log with the hard state: a crash between
				// leaves the snapshot with term 0.
				c.storeSnapshot(id, *rd.Snapshot, false)
			}
			switch cut % 4 {
			case 3:
				c.storeHardState(id, rd.HardState)
				c.storeSnapshot(id, *rd.Snapshot, false)
				c.storeEntries(id, rd.Entries)
			case 2:
				c.storeHardState(id, rd.HardState)
				c.storeSnapshot(id, *rd.Snapshot, true)
			case 1:
				c.storeHardState(id, rd.HardState)
			}
		}
		c.logf("crash %d during a Ready (cut %d)", id, cut)
	}
	c.crash(id)
}

func (c *asyncCluster) flush() {
	for _, id := range c.ids {
		if c.nodes[id].up {
			c.finish(id)
		}
	}
	for id := range c.pending {
		if !c.nodes[id].up {
			delete(c.pending, id)
		}
	}
}

// step delivers message i without carrying out the Ready it leads to; if
// dup, the network keeps a copy to deliver again later.
func (c *asyncCluster) step(i int, dup bool) {
	m := c.net[i]
	if !dup {
		c.net = append(c.net[:i], c.net[i+1:]...)
	}
	if !c.reachable(m.From, m.To) {
		return
	}
	wire, err := DecodeMessage(AppendMessage(nil, m))
	if err != nil {
		c.fail("codec: %v", err)
	}
	c.logf("%d->%d %s%s", m.From, m.To, describe(wire), map[bool]string{true: " (dup)"}[dup])
	c.nodes[m.To].r.Step(wire)
	c.checkLeader(m.To)
}

// asyncRun is one randomized run: a cluster, and a seeded source for its
// schedule (rapid's own draws lean heavily towards small values, so a drawn
// seed gives the schedule a uniform mix of actions instead).
type asyncRun struct {
	c   *asyncCluster
	rng *rand.Rand
	// dupOneIn: one delivery in dupOneIn leaves a copy to deliver again.
	dupOneIn int
	// compactLeader: compactions are mostly the leader's, so that
	// followers that fall behind need snapshots.
	compactLeader bool
	// proposed counts proposals; healIn is the number of ticks of the
	// whole cluster until an isolated node is reconnected.
	proposed, healIn int
}

func newAsyncRun(t *rapid.T) *asyncRun {
	voters := rapid.SampledFrom([]int{1, 3, 5}).Draw(t, "voters")
	learners := rapid.IntRange(0, 1).Draw(t, "learners")
	var c *asyncCluster
	c = newAsyncCluster(rapid.Uint64().Draw(t, "seed"), voters, learners, func(format string, args ...any) {
		lines := strings.Split(c.trace.String(), "\n")
		t.Fatalf("%s\n...\n%s", fmt.Sprintf(format, args...), strings.Join(lines[max(0, len(lines)-150):], "\n"))
	})
	c.trace = &strings.Builder{}
	// Short election timeouts make for many elections.
	c.electionT = rapid.SampledFrom([]int{4, 6, 10}).Draw(t, "electionTicks")
	for _, id := range c.ids {
		c.start(id)
	}
	return &asyncRun{c: c, rng: rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "schedule"), 1)), dupOneIn: 8}
}

func (ar *asyncRun) node() port.NodeID { return ar.c.ids[ar.rng.IntN(len(ar.c.ids))] }

// isolate cuts id off from every other node, both ways.
func (c *asyncCluster) isolate(id port.NodeID) {
	for _, b := range c.ids {
		if b != id {
			c.cut[[2]port.NodeID{id, b}], c.cut[[2]port.NodeID{b, id}] = true, true
		}
	}
}

// schedule runs steps random actions.
func (ar *asyncRun) schedule(t *rapid.T, steps int) {
	c, rng := ar.c, ar.rng
	node := func(string) port.NodeID { return ar.node() }
	propose := func(id port.NodeID) {
		if c.nodes[id].up && c.nodes[id].r.Status().Role == Leader {
			ar.proposed++
			c.nodes[id].r.Propose([]byte(fmt.Sprint("v", ar.proposed)))
		}
	}
	// Actions and their weights.
	actions := []struct {
		weight int
		do     func()
	}{
		{8, func() { // time passes everywhere
			if ar.healIn--; ar.healIn == 0 {
				c.cut = map[[2]port.NodeID]bool{}
			}
			for _, id := range c.ids {
				if c.nodes[id].up {
					c.nodes[id].r.Tick()
					c.checkLeader(id)
				}
			}
		}},
		{3, func() {
			if id := node("tick"); c.nodes[id].up {
				c.nodes[id].r.Tick()
				c.checkLeader(id)
			}
		}},
		{2, func() {
			if id := node("campaign"); c.nodes[id].up {
				c.nodes[id].r.Campaign()
				c.checkLeader(id)
			}
		}},
		{8, func() { c.begin(node("begin")) }},
		{8, func() { c.finish(node("finish")) }},
		{5, func() { // the host keeps up with one node for a while
			id := node("pump")
			for range 8 {
				c.finish(id)
				c.begin(id)
			}
		}},
		{20, func() { // one message arrives, or arrives again later
			if len(c.net) > 0 {
				c.step(rng.IntN(len(c.net)), rng.IntN(ar.dupOneIn) == 0)
			}
		}},
		{2, func() {
			if len(c.net) > 0 {
				i := rng.IntN(len(c.net))
				c.net = append(c.net[:i], c.net[i+1:]...)
			}
		}},
		{5, func() { // a proposal to the newest leader
			if lead, ok := c.leader(); ok {
				propose(lead)
			}
		}},
		{4, func() { // to any node that believes it leads, deposed or not
			var leads []port.NodeID
			for _, id := range c.ids {
				if c.nodes[id].up && c.nodes[id].r.Status().Role == Leader {
					leads = append(leads, id)
				}
			}
			if len(leads) > 0 {
				propose(leads[rng.IntN(len(leads))])
			}
		}},
		{1, func() {
			if id := node("crash"); c.nodes[id].up {
				c.crashDuring(id, rng.IntN(1000))
			}
		}},
		{4, func() {
			if id := node("restart"); !c.nodes[id].up {
				c.start(id)
			}
		}},
		{1, func() {
			a, b := node("cut-a"), node("cut-b")
			c.cut[[2]port.NodeID{a, b}] = !c.cut[[2]port.NodeID{a, b}]
		}},
		{1, func() { c.cut = map[[2]port.NodeID]bool{} }}, // heal
		{1, func() { // isolate a node, often the leader, for a while
			ar.healIn = 1 + rng.IntN(4*c.electionT)
			a := node("isolate")
			if lead, ok := c.leader(); ok && rng.IntN(2) == 0 {
				a = lead
			}
			c.isolate(a)
		}},
		{6, func() { // the host compacts, whether or not a Ready is being written
			id := node("compact")
			if lead, ok := c.leader(); ok && ar.compactLeader && rng.IntN(4) != 0 {
				id = lead
			}
			c.compact(id)
		}},
		{7, func() { // everything in flight arrives while Readys are pending
			for _, id := range c.ids {
				c.begin(id)
			}
			for len(c.net) > 0 {
				c.step(0, false)
			}
		}},
		{13, func() {
			for _, id := range c.ids {
				c.finish(id)
				c.begin(id)
			}
		}},
	}
	total := 0
	for _, a := range actions {
		total += a.weight
	}
	for range steps {
		w := rng.IntN(total)
		for _, a := range actions {
			if w -= a.weight; w < 0 {
				a.do()
				break
			}
		}
	}
}

// finishRun heals everything, requires the cluster to converge (liveness),
// and a proposal after healing to commit everywhere.
func (ar *asyncRun) finishRun() {
	c := ar.c
	c.checkLogMatching()
	c.slow = None
	c.flush()
	c.requireLiveAfterHeal(300)
}

// TestRaftSafetyAsyncPersistence drives asyncClusters through random
// schedules: ticks, deliveries in any order and sometimes twice, lost
// messages, partitions, proposals (to deposed leaders too), compactions,
// crashes that keep part of the Ready being written, and a slow disk on one
// node. Besides testCluster's checks it requires that every vote and
// acknowledgement leaves only once durable, and that Raft's idea of what is
// stable and applied matches the disk and the state machine.
func TestRaftSafetyAsyncPersistence(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ar := newAsyncRun(t)
		c := ar.c
		c.slow = None
		if ar.rng.IntN(2) == 0 {
			c.slow = ar.node()
			c.slowSkip = func() bool { return ar.rng.IntN(10) != 0 }
		}
		ar.schedule(t, 300+ar.rng.IntN(1500))
		ar.finishRun()
	})
}

// TestRaftDivergenceWhileReadyPending starts every run the same way: a
// leader is cut off (with at most one follower), takes proposals whose
// Ready its slow disk is still writing when the others elect a new leader
// and the partition heals, so that the new leader's appends replace
// entries a pending Ready is writing, on the old leader and its follower.
func TestRaftDivergenceWhileReadyPending(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ar := newAsyncRun(t)
		c, rng := ar.c, ar.rng
		c.stabilize(200)
		c.flush()
		old, _ := c.leader()
		c.isolate(old)
		// Keep the old leader in touch with one other node, which gets its
		// divergent entries: any node among five voters, else the learner.
		var buddy port.NodeID = None
		for _, id := range c.ids {
			if id != old && (len(c.voterIDs()) == 5 || !c.nodes[id].voter) && (buddy == None || rng.IntN(2) == 0) {
				buddy = id
			}
		}
		if buddy != None && rng.IntN(3) != 0 {
			c.cut[[2]port.NodeID{old, buddy}], c.cut[[2]port.NodeID{buddy, old}] = false, false
		}
		for i := range 1 + rng.IntN(6) {
			c.nodes[old].r.Propose([]byte(fmt.Sprint("stale", i)))
			if rng.IntN(2) == 0 && buddy != None {
				// The buddy receives some of them too.
				c.finish(old)
				c.begin(old)
				for len(c.net) > 0 {
					c.step(0, false)
				}
				c.finish(buddy)
				c.begin(buddy)
			}
			if rng.IntN(3) == 0 {
				c.finish(old)
				c.begin(old)
			}
		}
		c.begin(old)
		c.slow = old
		c.slowSkip = func() bool { return true } // until the new leader is in place
		if buddy != None && rng.IntN(2) == 0 {
			c.slow = buddy
		}
		for range 400 {
			if lead, _ := c.leader(); lead != old && lead != None {
				break
			}
			ar.schedule(t, 10)
		}
		c.cut = map[[2]port.NodeID]bool{}
		c.slowSkip = func() bool { return rng.IntN(4) != 0 }
		ar.schedule(t, 100+rng.IntN(600))
		ar.finishRun()
	})
}

// TestRaftSnapshotsWhileReadyPending: a follower or learner with a slow
// disk falls behind a leader that compacts often, on a network that
// duplicates many messages, so that snapshots arrive while the Ready
// installing an earlier one is being written.
func TestRaftSnapshotsWhileReadyPending(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ar := newAsyncRun(t)
		c, rng := ar.c, ar.rng
		ar.dupOneIn, ar.compactLeader = 3, true
		c.stabilize(200)
		c.flush()
		lead, _ := c.leader()
		for c.slow = ar.node(); len(c.ids) > 1 && c.slow == lead; c.slow = ar.node() {
		}
		c.slowSkip = func() bool { return rng.IntN(6) != 0 }
		ar.schedule(t, 300+rng.IntN(1200))
		ar.finishRun()
	})
}

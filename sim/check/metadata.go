package check

import (
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/raft"
	"github.com/weirmq/weir/sim/history"
)

// Claim6 is DESIGN.md's claim 6, as the cluster runs check it.
const Claim6 = "claim 6: one active controller per term, one leader per partition per leader epoch; committed metadata is never lost or rewritten"

// MetaLog watches every node's metadata log as it is applied and fails a
// run the moment two nodes disagree: on the entry at an index (committed
// metadata rewritten), on the active controller of a term, or on the
// leader of a partition in a leader epoch.
type MetaLog struct {
	fail        func(Failure)
	entries     map[uint64]appliedEntry
	controllers map[uint64]int
	leaders     map[leaderKey]int32
	votes       map[voteKey]port.NodeID
	sentTerm    map[int]uint64
	leaderOf    map[uint64]port.NodeID
	topicNames  map[[16]byte]string
	// LastIndex is the highest index any node applied.
	LastIndex uint64
	// Trace, if set, gets a line for every partition change, once, when
	// the first node applies it: the partition's state is otherwise
	// invisible in a run's trace.
	Trace func(msg string)
}

type appliedEntry struct {
	term uint64
	hash uint64
	node int
}

type leaderKey struct {
	topic     [16]byte
	partition int32
	epoch     int32
}

// NewMetaLog returns a watcher that reports violations to fail.
func NewMetaLog(fail func(Failure)) *MetaLog {
	return &MetaLog{fail: fail, entries: map[uint64]appliedEntry{}, controllers: map[uint64]int{},
		leaders: map[leaderKey]int32{}, votes: map[voteKey]port.NodeID{}, sentTerm: map[int]uint64{},
		leaderOf: map[uint64]port.NodeID{}, topicNames: map[[16]byte]string{}}
}

// Applied records that node applied the entry at index.
func (l *MetaLog) Applied(node int, index, term uint64, data []byte) {
	h := fnv.New64a()
	h.Write([]byte{byte(len(data) >> 8), byte(len(data)), boolByte(data == nil)})
	h.Write(data)
	e := appliedEntry{term: term, hash: h.Sum64(), node: node}
	prev, seen := l.entries[index]
	if seen {
		if prev.term != e.term || prev.hash != e.hash {
			l.fail(Failure{Checker: "metadata-log", Claim: Claim6, Msg: fmt.Sprintf(
				"node %d applied entry %d of term %d, but node %d applied a different entry %d of term %d",
				node, index, term, prev.node, index, prev.term)})
		}
		return
	}
	l.entries[index] = e
	l.LastIndex = max(l.LastIndex, index)
	if data == nil {
		return
	}
	recs, err := metadata.DecodeBatch(data)
	if err != nil {
		l.fail(Failure{Checker: "metadata-log", Claim: Claim6, Msg: fmt.Sprintf("entry %d does not decode: %v", index, err)})
		return
	}
	for _, r := range recs {
		if r.Topic != nil {
			l.topicNames[r.Topic.ID] = r.Topic.Name
		}
		p := r.Partition
		if p != nil && l.Trace != nil {
			l.Trace(fmt.Sprintf("entry %d: %s[%d] leader %d (epoch %d, partition epoch %d) replicas %v isr %v elr %v adding %v removing %v",
				index, l.topicNames[p.TopicID], p.Partition, p.Leader, p.LeaderEpoch, p.PartitionEpoch, p.Replicas, p.ISR, p.ELR, p.AddingReplicas, p.RemovingReplicas))
		}
		if p == nil || p.Leader < 0 {
			continue
		}
		k := leaderKey{p.TopicID, p.Partition, p.LeaderEpoch}
		if other, ok := l.leaders[k]; ok && other != int32(p.Leader) {
			l.fail(Failure{Checker: "partition-leader", Claim: Claim6, Msg: fmt.Sprintf(
				"partition %x-%d has leaders %d and %d in leader epoch %d (entry %d)", p.TopicID[:4], p.Partition, other, p.Leader, p.LeaderEpoch, index)})
		}
		l.leaders[k] = int32(p.Leader)
	}
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// Sent records a Raft message a node sent. A message goes out only after
// the state it reflects is durable, so the node's term after any restart
// must be at least the highest term it ever sent in one (a vote, an
// append, an acknowledgement), and a node votes at most once per term.
func (l *MetaLog) Sent(node int, m raft.Message) {
	switch {
	case m.Type == raft.MsgPreVote, m.Type == raft.MsgPreVoteResp && !m.Reject:
		// They carry the term a candidate would campaign in, not the
		// sender's own.
	default:
		l.sentTerm[node] = max(l.sentTerm[node], m.Term)
	}
	switch m.Type {
	case raft.MsgApp, raft.MsgHeartbeat, raft.MsgSnap:
		// Only a term's leader sends these.
		l.leaderOf[m.Term] = port.NodeID(node)
	case raft.MsgAppResp:
		// A follower acknowledges appends only from its term's leader
		// (an acknowledgement of index 0 is the notice that tells a
		// deposed leader the term).
		if lead, ok := l.leaderOf[m.Term]; ok && !m.Reject && m.Index > 0 && lead != m.To {
			l.fail(Failure{Checker: "raft-terms", Claim: Claim6, Msg: fmt.Sprintf(
				"node %d acknowledged entries up to %d to node %d in term %d, whose leader is node %d", node, m.Index, m.To, m.Term, lead)})
		}
	}
	if m.Type != raft.MsgVoteResp || m.Reject {
		return
	}
	k := voteKey{node, m.Term}
	if other, ok := l.votes[k]; ok && other != m.To {
		l.fail(Failure{Checker: "votes", Claim: Claim6, Msg: fmt.Sprintf(
			"node %d voted for both %d and %d in term %d", node, other, m.To, m.Term)})
	}
	l.votes[k] = m.To
}

type voteKey struct {
	node int
	term uint64
}

// Booted checks a restarted node's term against what it sent before.
func (l *MetaLog) Booted(node int, term uint64) {
	if sent := l.sentTerm[node]; term < sent {
		l.fail(Failure{Checker: "raft-persistence", Claim: Claim6, Msg: fmt.Sprintf(
			"node %d restarted in term %d, but had sent messages of term %d: state a message depended on was not durable", node, term, sent)})
	}
}

// DiskLost forgets the terms node sent: its disk was replaced, so it
// restarts with no Raft state at all, as a new node would. Only a node
// that is not a voter may lose its disk: a voter's log and votes are part
// of the quorum's safety, and losing them is outside the fault model.
func (l *MetaLog) DiskLost(node int) {
	delete(l.sentTerm, node)
}

// Controller records that node became the active controller in term.
func (l *MetaLog) Controller(node int, term uint64) {
	if other, ok := l.controllers[term]; ok && other != node {
		l.fail(Failure{Checker: "controller", Claim: Claim6, Msg: fmt.Sprintf(
			"nodes %d and %d were both the active controller in term %d", other, node, term)})
	}
	l.controllers[term] = node
}

// Terms is how many terms had an active controller.
func (l *MetaLog) Terms() int { return len(l.controllers) }

// MetadataOps checks acknowledged metadata operations against the final,
// converged image (topic name to partition count): an acknowledged
// creation is there unless a deletion of it may have happened, no topic
// exists that no creation may have made, and partition counts are within
// what was acknowledged and what was asked.
func MetadataOps(ops []*history.MetaOp, final map[string]int32) []Failure {
	type topicOps struct {
		created, mayExist, mayBeDeleted bool
		ackedCount, maxCount            int32
	}
	byTopic := map[string]*topicOps{}
	var names []string
	for _, op := range ops {
		t := byTopic[op.Topic]
		if t == nil {
			t = &topicOps{}
			byTopic[op.Topic] = t
			names = append(names, op.Topic)
		}
		possible := op.Outcome == history.MetaOK || op.Outcome == history.MetaUnknown || op.Outcome == history.MetaPending
		switch op.Kind {
		case history.MetaCreate:
			t.created = t.created || op.Outcome == history.MetaOK
			t.mayExist = t.mayExist || possible
			if possible {
				t.maxCount = max(t.maxCount, op.Partitions)
			}
			if op.Outcome == history.MetaOK {
				t.ackedCount = max(t.ackedCount, op.Partitions)
			}
		case history.MetaDelete:
			t.mayBeDeleted = t.mayBeDeleted || possible
		case history.MetaAddPartitions:
			if possible {
				t.maxCount = max(t.maxCount, op.Partitions)
			}
			if op.Outcome == history.MetaOK {
				t.ackedCount = max(t.ackedCount, op.Partitions)
			}
		}
	}
	var out []Failure
	fail := func(format string, args ...any) {
		out = append(out, Failure{Checker: "metadata-ops", Claim: Claim6 + " (acknowledged metadata operations are never lost)", Msg: fmt.Sprintf(format, args...)})
	}
	for _, name := range names {
		t := byTopic[name]
		count, exists := final[name]
		switch {
		case t.created && !exists && !t.mayBeDeleted:
			fail("topic %s was created (acknowledged) and never deleted, but the cluster does not have it", name)
		case exists && !t.mayExist:
			fail("topic %s exists though every creation of it failed", name)
		case exists && count < t.ackedCount:
			fail("topic %s has %d partitions; %d were acknowledged", name, count, t.ackedCount)
		case exists && count > t.maxCount:
			fail("topic %s has %d partitions; at most %d were asked for", name, count, t.maxCount)
		}
	}
	for _, name := range slices.Sorted(mapKeys(final)) {
		if byTopic[name] == nil {
			fail("topic %s exists but no client created it", name)
		}
	}
	return out
}

func mapKeys(m map[string]int32) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

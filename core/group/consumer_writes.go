package group

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// A consumer group's state changes in memory at once and is written to
// __consumer_offsets as deltas (Kafka's records, last value per key). No
// answer that reveals a state is sent before every write that state rests
// on is committed, so a coordinator that takes over after a failover never
// hands out a lower epoch or an assignment that conflicts with one given.
//
// Kafka reverts its in-memory state when a write fails. Weir keeps it and
// instead marks the group: the next write (made at once by whatever call
// comes next) rewrites the group's whole state, with tombstones for the
// members removed since, so that the log again holds what memory holds.
// Every write remembers the last full write it builds on, and an answer
// that waited for a write fails if any write between that base and it
// failed, since the state it reveals may not be durable.

// groupWrites tracks a consumer group's writes in flight.
type groupWrites struct {
	seq      uint64 // of the last write issued
	fullBase uint64 // seq of the last full write issued (0: the log's start)
	needFull bool
	inflight []*groupWrite
	// failed are the seqs of failed writes that a write in flight may
	// build on.
	failed []uint64
	// owed are removed members whose tombstones are not known committed:
	// a full write repeats them.
	owed []owedTombstones
}

type owedTombstones struct {
	member string
	seq    uint64
}

type groupWrite struct {
	seq, base uint64
	marks     []durableMark
	replies   []func(*kerr.Error)
}

// durableMark: once the write commits, member m is durably at epoch,
// holding held.
type durableMark struct {
	m     *consumerMember
	epoch int32
	held  assignment
}

// cgBatch collects the records of one change of a consumer group.
type cgBatch struct {
	g       *group
	recs    []Record
	marks   []durableMark
	removed []string
}

func (b *cgBatch) metadata() {
	cg := b.g.cg
	b.recs = append(b.recs, Record{cgGroupKey(cgMetadataType, b.g.id), cgMetadataValue{cg.epoch, cg.metadataHash}.encode()})
}

func (b *cgBatch) member(m *consumerMember) {
	b.recs = append(b.recs, Record{cgMemberKey(cgMemberType, b.g.id, m.id), memberValue(m)})
}

func (b *cgBatch) target(id string) {
	b.recs = append(b.recs, Record{cgMemberKey(cgTargetMemberType, b.g.id, id), targetValue(b.g.cg.target[id])})
}

func (b *cgBatch) targetMetadata() {
	b.recs = append(b.recs, Record{cgGroupKey(cgTargetMetadataType, b.g.id), epochValue(b.g.cg.targetEpoch)})
}

func (b *cgBatch) current(m *consumerMember) {
	b.recs = append(b.recs, Record{cgMemberKey(cgCurrentType, b.g.id, m.id), currentValue(m)})
	b.marks = append(b.marks, durableMark{m, m.epoch, m.holds().union(nil)})
}

// removeMember writes tombstones for a member, in Kafka's order: current
// assignment, target assignment, then metadata.
func (b *cgBatch) removeMember(id string) {
	for _, typ := range []int16{cgCurrentType, cgTargetMemberType, cgMemberType} {
		b.recs = append(b.recs, Record{Key: cgMemberKey(typ, b.g.id, id)})
	}
	b.removed = append(b.removed, id)
}

// full adds the group's whole state, with the tombstones still owed.
func (b *cgBatch) full() {
	cg := b.g.cg
	for _, o := range cg.writes.owed {
		if cg.byID[o.member] == nil && !slices.Contains(b.removed, o.member) {
			b.removeMember(o.member)
		}
	}
	for _, m := range cg.members {
		b.member(m)
	}
	b.metadata()
	for _, m := range cg.members {
		if _, ok := cg.target[m.id]; ok {
			b.target(m.id)
		}
	}
	b.targetMetadata()
	for _, m := range cg.members {
		b.current(m)
	}
}

// cgTombstones are the records that delete a consumer group for good, its
// members having gone already.
func cgTombstones(g *group) []Record {
	b := &cgBatch{g: g}
	for _, o := range g.cg.writes.owed {
		b.removeMember(o.member)
	}
	for _, typ := range []int16{cgTargetMetadataType, cgPartitionMetadataType, cgMetadataType} {
		b.recs = append(b.recs, Record{Key: cgGroupKey(typ, g.id)})
	}
	return b.recs
}

// flushConsumer writes what b collected (a full write instead when one is
// due) and calls reply, if not nil, once every write issued so far for the
// group is committed; at once when none is in flight.
func (c *Coordinator) flushConsumer(b *cgBatch, reply func(*kerr.Error)) {
	g := b.g
	ws := &g.cg.writes
	if ws.needFull {
		b.full()
	}
	if len(b.recs) == 0 {
		switch {
		case reply == nil:
		case len(ws.inflight) == 0:
			reply(nil)
		default:
			last := ws.inflight[len(ws.inflight)-1]
			last.replies = append(last.replies, reply)
		}
		return
	}
	ws.seq++
	w := &groupWrite{seq: ws.seq, base: ws.fullBase, marks: b.marks}
	if ws.needFull {
		ws.needFull, ws.fullBase, w.base = false, w.seq, w.seq
	}
	for _, id := range b.removed {
		ws.owed = slices.DeleteFunc(ws.owed, func(o owedTombstones) bool { return o.member == id })
		ws.owed = append(ws.owed, owedTombstones{id, w.seq})
	}
	if reply != nil {
		w.replies = append(w.replies, reply)
	}
	ws.inflight = append(ws.inflight, w)
	c.host.Append(g.id, b.recs, func(nowNs int64, err *kerr.Error) {
		c.begin(nowNs)
		defer c.end()
		c.written(g, ws, w, err)
	})
}

// written settles one write of a consumer group. ws is the group's
// tracker when it was issued: the group may have turned classic since.
func (c *Coordinator) written(g *group, ws *groupWrites, w *groupWrite, err *kerr.Error) {
	ws.inflight = slices.DeleteFunc(ws.inflight, func(x *groupWrite) bool { return x == w })
	if err != nil {
		c.log.Warn("writing consumer group records failed; the next write rewrites the group", "group", g.id, "err", err)
		ws.needFull = true
		ws.failed = append(ws.failed, w.seq)
	} else {
		for _, mk := range w.marks {
			mk.m.settle(mk.epoch, mk.held)
		}
		ws.owed = slices.DeleteFunc(ws.owed, func(o owedTombstones) bool { return o.seq == w.seq })
		for _, f := range ws.failed {
			if f >= w.base && f < w.seq {
				err = kerr.CoordinatorNotAvailable // what this write builds on may be lost
				break
			}
		}
	}
	oldest := ws.seq + 1
	for _, x := range ws.inflight {
		oldest = min(oldest, x.base)
	}
	ws.failed = slices.DeleteFunc(ws.failed, func(f uint64) bool { return f < oldest })
	if !g.deleted {
		c.touch(g)
	}
	for _, r := range w.replies {
		r(err)
	}
}

// groupTombstones are the records that delete g's metadata, of its type.
func groupTombstones(g *group) []Record {
	if g.cg != nil {
		return cgTombstones(g)
	}
	return []Record{groupTombstone(g.id)}
}

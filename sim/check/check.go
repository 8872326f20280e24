package check

import (
	"fmt"
	"sort"

	"github.com/weirmq/weir/sim/history"
)

// Claims, as DESIGN.md section 6 numbers them.
const (
	Claim1 = "claim 1: acknowledged records are never lost or moved"
	Claim2 = "claim 2: produce and fetch are linearizable per partition"
	Claim3 = "claim 3: idempotent producers make no duplicates and no reordering"
	Claim7 = "claim 7: liveness after faults stop"
)

// Failure is one violation a checker found.
type Failure struct {
	Checker string
	Claim   string
	Msg     string
	// Part is the partition concerned, if one is; the failure report draws
	// Porcupine's visualization of it.
	Part *Part
}

func (f Failure) String() string { return fmt.Sprintf("%s (%s): %s", f.Checker, f.Claim, f.Msg) }

// Part names one partition of one topic incarnation, or, with Group set,
// that consumer group's committed offset of a partition of the topic
// (the groups read topics that are never deleted, so the name tells).
type Part struct {
	ID        history.TopicID
	Topic     string
	Partition int32
	Group     string
}

func (p Part) String() string {
	if p.Group != "" {
		return fmt.Sprintf("group %s, %s[%d]", p.Group, p.Topic, p.Partition)
	}
	return fmt.Sprintf("%s[%d] (id %s)", p.Topic, p.Partition, p.ID)
}

// Retention is a topic's retention configuration; -1 disables a limit.
type Retention struct{ Ms, Bytes int64 }

// Input is what the final checkers read.
type Input struct {
	History *history.History
	// Final lists the topics the metadata listed after the heal; FinalRead
	// says whether the final read completed.
	Final     []history.FinalTopic
	FinalRead bool
	// Retention gives each topic name's retention.
	Retention func(topic string) Retention
	// MaxBrokerWallMs is the latest wall clock time any broker had.
	MaxBrokerWallMs int64
	// GroupFence bounds when a KIP-848 coordinator may fence a member.
	GroupFence FenceBounds
}

// Run runs every final checker and returns their failures, most basic
// first. Linearizability runs last: it is the slowest, and its verdict is
// most useful once the simpler ones pass.
func Run(in Input, porcupineTimeoutSec int) []Failure {
	parts := build(in)
	var out []Failure
	out = append(out, Anomalies(parts)...)
	out = append(out, Durability(parts, in)...)
	out = append(out, Idempotence(parts)...)
	out = append(out, Groups(in.History, in.GroupFence, porcupineTimeoutSec)...)
	if len(out) == 0 {
		out = append(out, Linearizability(parts, porcupineTimeoutSec)...)
	}
	return out
}

// partition is everything known about one partition of one incarnation.
type partition struct {
	Part
	// produces could have written here: attributed ones carry claims,
	// the others count only as operations of unknown outcome.
	produces []prodRef
	fetches  []*history.Fetch
	// observed maps each offset read to the value first read there.
	observed map[int64]string
	// open: the incarnation was never deleted (no delete or re-create of
	// its name was attempted after it was created), so it must still exist.
	open bool
	// Final read: whether this partition was read, and what it held.
	inFinal              bool
	final                map[int64]string
	finalStart, finalEnd int64
}

type prodRef struct {
	op *history.Produce
	// attributed: certainly sent to this incarnation.
	attributed bool
}

// sortedParts returns the partitions in a fixed order.
func sortedParts(m map[Part]*partition) []*partition {
	out := make([]*partition, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.ID != b.ID {
			return a.ID.String() < b.ID.String()
		}
		return a.Partition < b.Partition
	})
	return out
}

// build attributes the history to partitions.
func build(in Input) []*partition {
	h := in.History
	inc := newIncarnations(h)
	parts := map[Part]*partition{}
	get := func(id history.TopicID, topic string, p int32) *partition {
		k := Part{ID: id, Topic: topic, Partition: p}
		pt := parts[k]
		if pt == nil {
			pt = &partition{Part: k, observed: map[int64]string{}}
			parts[k] = pt
		}
		return pt
	}
	for _, t := range in.Final {
		inc.note(t.Name, t.ID)
	}
	for _, f := range h.Fetches {
		if f.ByID {
			inc.note(f.Topic, f.TopicID)
		}
	}
	for _, op := range h.Produces {
		if op.Outcome == history.Failed {
			continue
		}
		if id, ok := inc.of(op.Topic, op.Call, op.Return); ok {
			pt := get(id, op.Topic, op.Partition)
			pt.produces = append(pt.produces, prodRef{op: op, attributed: true})
			continue
		}
		for _, id := range inc.ids[op.Topic] {
			pt := get(id, op.Topic, op.Partition)
			pt.produces = append(pt.produces, prodRef{op: op})
		}
	}
	for _, f := range h.Fetches {
		id := f.TopicID
		if !f.ByID {
			var ok bool
			if id, ok = inc.of(f.Topic, f.Call, f.Return); !ok {
				continue
			}
		}
		pt := get(id, f.Topic, f.Partition)
		pt.fetches = append(pt.fetches, f)
		if f.ErrCode != 0 {
			continue
		}
		for _, r := range f.Records {
			if _, seen := pt.observed[r.Offset]; !seen {
				pt.observed[r.Offset] = r.Value
			}
		}
		if f.Final {
			if !pt.inFinal {
				pt.inFinal, pt.final = true, map[int64]string{}
			}
			for _, r := range f.Records {
				pt.final[r.Offset] = r.Value
			}
			pt.finalStart = max(pt.finalStart, f.LogStart)
			pt.finalEnd = max(pt.finalEnd, f.HW)
		}
	}
	for _, pt := range parts {
		pt.open = inc.open(pt.Topic, pt.ID)
		if !in.FinalRead {
			pt.inFinal = false
		}
	}
	return sortedParts(parts)
}

// incarnations binds topic names to ids over time, from the admin history.
type incarnations struct {
	windows map[string][]window
	// ids lists every id a name is known to have had.
	ids map[string][]history.TopicID
}

// window: name was bound to id from start to end, exclusive.
type window struct {
	id         history.TopicID
	start, end int64
}

func newIncarnations(h *history.History) *incarnations {
	in := &incarnations{windows: map[string][]window{}, ids: map[string][]history.TopicID{}}
	byName := map[string][]*history.Admin{}
	var names []string
	for _, a := range h.Admins {
		if a.Kind == history.CreatePartitions {
			continue
		}
		if byName[a.Topic] == nil {
			names = append(names, a.Topic)
		}
		byName[a.Topic] = append(byName[a.Topic], a)
	}
	for _, name := range names {
		ops := byName[name]
		sort.SliceStable(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
		for i, a := range ops {
			if a.Kind != history.CreateTopic || a.Outcome != history.OK {
				continue
			}
			end := int64(history.Infinity)
			if i+1 < len(ops) {
				end = ops[i+1].Call
			}
			in.windows[name] = append(in.windows[name], window{id: a.TopicID, start: a.Return, end: end})
			in.note(name, a.TopicID)
		}
	}
	return in
}

func (in *incarnations) note(name string, id history.TopicID) {
	for _, o := range in.ids[name] {
		if o == id {
			return
		}
	}
	in.ids[name] = append(in.ids[name], id)
}

// open reports whether incarnation id of name was created and never had a
// delete or re-create of its name attempted afterwards.
func (in *incarnations) open(name string, id history.TopicID) bool {
	for _, w := range in.windows[name] {
		if w.id == id && w.end == history.Infinity {
			return true
		}
	}
	return false
}

// of returns the incarnation an operation on name over [call, ret] went
// to, if that is certain.
func (in *incarnations) of(name string, call, ret int64) (history.TopicID, bool) {
	for _, w := range in.windows[name] {
		if w.start <= call && (ret < w.end || w.end == history.Infinity) {
			return w.id, true
		}
	}
	return history.TopicID{}, false
}

// offsetOf returns where an attributed operation's records went: the
// acknowledged base offset, else where a read found one of its values
// (less its place in the batch).
func (pt *partition) offsetOf(op *history.Produce, at map[string]int64) (int64, bool) {
	if op.Outcome == history.OK {
		return op.Offset, true
	}
	return seenAt(op, at)
}

// seenAt returns the base offset a read puts an operation's batch at, if
// any read saw one of its values.
func seenAt(op *history.Produce, at map[string]int64) (int64, bool) {
	for i, v := range op.Values {
		if o, ok := at[v]; ok {
			return o - int64(i), true
		}
	}
	return 0, false
}

// valueOffsets maps each observed value to its first offset.
func (pt *partition) valueOffsets() map[string]int64 {
	at := make(map[string]int64, len(pt.observed))
	for o, v := range pt.observed {
		if prev, ok := at[v]; !ok || o < prev {
			at[v] = o
		}
	}
	return at
}

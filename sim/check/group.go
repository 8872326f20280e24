package check

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weirmq/weir/sim/history"
)

// Claim5 is DESIGN.md section 6's claim about consumer groups.
const Claim5 = "claim 5: one owner per partition per generation; committed offsets are linearizable and never move back; every acknowledged record reaches the group"

// Groups checks claim 5 on the group operations of the whole run:
//
//   - in one generation, no partition is assigned to two members (from the
//     SyncGroup responses the members received); in KIP-848 groups, no
//     partition is handed to a member while another may still hold it
//     (handouts), and member epochs never go back;
//   - an acknowledged commit is never followed by an acknowledged commit
//     of an older offset for the same group and partition, and an
//     OffsetFetch never returns an offset older than an acknowledged
//     commit that completed before it began;
//   - no commit succeeds with a generation older than one whose
//     assignment a member had received before the commit was sent;
//   - per group and partition, commits and offset fetches are
//     linearizable (see offsetLinearizability);
//   - every acknowledged record below what a group committed was read by
//     one of its members (deliveries).
//
// The workload makes the second a property of the coordinator alone: a
// member resumes a partition from the committed offset after every sync
// and only moves forward from there, and a member of an older generation
// cannot commit once a newer one began (the third).
//
// Groups and committed offsets are durable: they are written to
// __consumer_offsets and move with its partitions' leaders, so every check
// spans the whole history, node crashes and coordinator moves included.
// So are their deletions (DeleteGroups, OffsetDelete), tombstones in the
// same log: a delete is a write of "no committed offset" to the
// partitions it concerns, and a deleted group starts over, numbering its
// generations from 0 again. Each check therefore holds two operations to
// each other only when no delete may have taken effect between them (see
// deletion): generations and owners are compared within one incarnation
// of a group, and an offset may move back only across a delete. The
// retention sweep (offsets.retention.check.interval.ms, ten minutes by
// default, longer than any run) never fires.
//
// A commit or delete counts as acknowledged for a partition answered with
// no error; one answered with an error or not at all is unacknowledged
// (see maybeCommitted for which of those may still have taken effect).
func Groups(h *history.History, fence FenceBounds, timeoutSec int) []Failure {
	var out []Failure
	byGroup := map[string][]*history.GroupOp{}
	var groups []string
	for _, op := range h.Groups {
		if byGroup[op.Group] == nil {
			groups = append(groups, op.Group)
		}
		byGroup[op.Group] = append(byGroup[op.Group], op)
	}
	sort.Strings(groups)
	for _, g := range groups {
		ops := byGroup[g]
		fail := func(msg string) {
			out = append(out, Failure{Checker: "groups", Claim: Claim5, Msg: fmt.Sprintf("group %s: %s", g, msg)})
		}
		dels := deletions(ops)
		owners(ops, dels, fail)
		handouts(ops, fence, fail)
		offsets(ops, dels, fail)
		generations(ops, dels, fail)
	}
	deliveries(h, func(group, msg string) {
		out = append(out, Failure{Checker: "groups", Claim: Claim5, Msg: fmt.Sprintf("group %s: %s", group, msg)})
	})
	return append(out, offsetLinearizability(h.Groups, timeoutSec)...)
}

func describe(op *history.GroupOp) string {
	return fmt.Sprintf("%s #%d by %s (member %s, gen %d, %s-%s, error %d)",
		op.Kind, op.ID, op.Member, op.MemberID, op.Generation, seconds(op.Call), seconds(op.Return), op.ErrCode)
}

// owners: within a generation of one incarnation of the group, each
// partition has at most one owner.
func owners(ops []*history.GroupOp, dels []deletion, fail func(string)) {
	type slot struct {
		gen       int32
		topic     string
		partition int32
	}
	owners := map[slot][]*history.GroupOp{}
	for _, op := range ops {
		if op.Kind != history.Sync || op.ErrCode != 0 {
			continue
		}
		for _, p := range op.Parts {
			s := slot{op.Generation, op.Topic, p.Partition}
			for _, prev := range owners[s] {
				if prev.MemberID != op.MemberID && !regrouped(dels, prev, op) {
					fail(fmt.Sprintf("partition %s[%d] assigned to two members in generation %d: %s and %s",
						op.Topic, p.Partition, op.Generation, describe(prev), describe(op)))
				}
			}
			owners[s] = append(owners[s], op)
		}
	}
}

// offsets: acknowledged commits never move back, and an offset fetch sees
// at least every commit acknowledged before it began, unless a delete of
// the partition may have taken effect between the two.
func offsets(ops []*history.GroupOp, dels []deletion, fail func(string)) {
	type part struct {
		topic     string
		partition int32
	}
	type acked struct {
		op     *history.GroupOp
		offset int64
	}
	commits := map[part][]acked{}
	for _, op := range ops {
		if op.Kind != history.Commit {
			continue
		}
		for _, p := range op.Parts {
			if p.ErrCode == 0 {
				k := part{op.Topic, p.Partition}
				commits[k] = append(commits[k], acked{op, p.Offset})
			}
		}
	}
	// highest returns the commit with the highest offset among those
	// acknowledged before op began and not possibly deleted since.
	highest := func(k part, op *history.GroupOp) (acked, bool) {
		var best acked
		found := false
		for _, c := range commits[k] {
			if c.op.Return < op.Call && (!found || c.offset > best.offset) &&
				!mayDelete(dels, k.topic, k.partition, c.op.Call, op.Return) {
				best, found = c, true
			}
		}
		return best, found
	}
	for _, op := range ops {
		for _, p := range op.Parts {
			if p.ErrCode != 0 || op.Kind != history.Commit && op.Kind != history.FetchOffsets {
				continue
			}
			before, ok := highest(part{op.Topic, p.Partition}, op)
			if !ok || p.Offset >= before.offset {
				continue
			}
			if op.Kind == history.Commit {
				fail(fmt.Sprintf("committed offset of %s[%d] moved back from %d to %d: %s, then %s",
					op.Topic, p.Partition, before.offset, p.Offset, describe(before.op), describe(op)))
			} else {
				fail(fmt.Sprintf("offset fetch of %s[%d] returned %d, older than %d committed before it began: %s, then %s",
					op.Topic, p.Partition, p.Offset, before.offset, describe(before.op), describe(op)))
			}
		}
	}
}

// generations: a commit never succeeds for a generation older than one
// whose assignment a member received (a successful SyncGroup) before the
// commit was sent, in the same incarnation of the group: by then the
// partitions had new owners, and the coordinator had stored the new
// generation, so no failover can take it back. A JoinGroup answer alone is not enough: the generation it
// announces is stored only with its assignment (as in Kafka), so a
// coordinator that fails between the two comes back at the older
// generation, and its members rightly carry on in it.
func generations(ops []*history.GroupOp, dels []deletion, fail func(string)) {
	var syncs []*history.GroupOp
	for _, op := range ops {
		if op.Kind == history.Sync && op.ErrCode == 0 {
			syncs = append(syncs, op)
		}
	}
	for _, op := range ops {
		if op.Kind != history.Commit {
			continue
		}
		ok := false
		for _, p := range op.Parts {
			ok = ok || p.ErrCode == 0
		}
		if !ok {
			continue
		}
		for _, s := range syncs {
			if s.Return < op.Call && s.Generation > op.Generation && !regrouped(dels, s, op) {
				fail(fmt.Sprintf("a commit with generation %d succeeded after generation %d was handed out: %s, then %s",
					op.Generation, s.Generation, describe(s), describe(op)))
				break
			}
		}
	}
}

// deletion is a delete that may have taken effect on one partition (all
// of the group's, for DeleteGroups): at some time in [from, to], to being
// Infinity when its outcome is unknown (see maybeCommitted).
type deletion struct {
	op        *history.GroupOp
	group     bool // DeleteGroups: every partition, and the generations
	topic     string
	partition int32
	from, to  int64
}

// deletions lists the deletes among a group's operations that may have
// taken effect; refused ones did not.
func deletions(ops []*history.GroupOp) []deletion {
	var out []deletion
	window := func(op *history.GroupOp, code int16) (int64, bool) {
		switch {
		case code == 0:
			return op.Return, true
		case maybeCommitted(code):
			return history.Infinity, true
		}
		return 0, false
	}
	for _, op := range ops {
		switch op.Kind {
		case history.DeleteGroup:
			if to, ok := window(op, op.ErrCode); ok {
				out = append(out, deletion{op: op, group: true, from: op.Call, to: to})
			}
		case history.DeleteOffsets:
			for _, p := range op.Parts {
				if to, ok := window(op, p.ErrCode); ok {
					out = append(out, deletion{op: op, topic: op.Topic, partition: p.Partition, from: op.Call, to: to})
				}
			}
		}
	}
	return out
}

// mayDelete reports whether a delete of the partition may have taken
// effect after an operation that took effect no sooner than lo and before
// one that took effect no later than hi.
func mayDelete(dels []deletion, topic string, partition int32, lo, hi int64) bool {
	for _, d := range dels {
		if (d.group || d.topic == topic && d.partition == partition) && d.from < hi && d.to > lo {
			return true
		}
	}
	return false
}

// regrouped reports whether the group may have been deleted between
// operations a and b (in either order), so that they may belong to
// different incarnations of it, whose generations are unrelated.
func regrouped(dels []deletion, a, b *history.GroupOp) bool {
	lo, hi := min(a.Call, b.Call), max(a.Return, b.Return)
	for _, d := range dels {
		if d.group && d.from < hi && d.to > lo {
			return true
		}
	}
	return false
}

// maybeCommitted reports whether a commit answered for a partition with
// the error code may have taken effect all the same: the coordinator
// answers COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR or REQUEST_TIMED_OUT
// when its write to __consumer_offsets did not complete (it may still),
// and UNKNOWN_SERVER_ERROR (-1) is also what the workload records for an
// answer lost or missing. COORDINATOR_LOAD_IN_PROGRESS is taken the same
// way, to be safe. Any other error is a refusal made before the write.
func maybeCommitted(code int16) bool {
	switch kerr.ErrorForCode(code) {
	case kerr.UnknownServerError, kerr.CoordinatorNotAvailable, kerr.NotCoordinator, kerr.RequestTimedOut,
		kerr.CoordinatorLoadInProgress:
		return true
	}
	return false
}

// The Porcupine model of one group's committed offset of one partition: a
// register, initially "no offset" (-1, as OffsetFetch says it), that a
// commit writes, a delete writes back to -1, and a successful offset fetch
// reads.
type offsetOp struct {
	write  bool
	offset int64
	desc   string
}

var offsetModel = porcupine.Model{
	Init: func() any { return int64(-1) },
	Step: func(state, input, _ any) (bool, any) {
		op := input.(*offsetOp)
		if op.write {
			return true, op.offset
		}
		return state.(int64) == op.offset, state
	},
	Hash:              func(state any) uint64 { return uint64(state.(int64)) },
	DescribeOperation: func(input, _ any) string { return input.(*offsetOp).desc },
	DescribeState:     func(state any) string { return fmt.Sprintf("offset %d", state.(int64)) },
}

// offsetOperations turns commits, deletes and offset fetches into
// Porcupine operations, by the group and partition they concern (keys in
// order); a DeleteGroups concerns every partition the group's other
// operations name. An acknowledged commit or delete writes between its
// call and return; one that may have taken effect (maybeCommitted) may
// write at any time after its call, or never, so its return is left at
// infinity; a refused one is left out. So is one that may have taken
// effect but whose offset (-1 for a delete) no fetch returned: had it
// taken effect, no read could have come before the next write, so leaving
// it out changes no verdict, and spares Porcupine a search over when it
// did.
func offsetOperations(ops []*history.GroupOp) ([]Part, map[Part][]porcupine.Operation) {
	key := func(op *history.GroupOp, p history.GroupPart) Part {
		return Part{Group: op.Group, Topic: op.Topic, Partition: p.Partition}
	}
	read := map[Part]map[int64]bool{}
	for _, op := range ops {
		if op.Kind != history.FetchOffsets {
			continue
		}
		for _, p := range op.Parts {
			if p.ErrCode != 0 {
				continue
			}
			k := key(op, p)
			if read[k] == nil {
				read[k] = map[int64]bool{}
			}
			read[k][p.Offset] = true
		}
	}
	var keys []Part
	byKey := map[Part][]porcupine.Operation{}
	add := func(k Part, o porcupine.Operation) {
		if byKey[k] == nil {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], o)
	}
	// write adds op's write of offset to k, as its error code says; what
	// names the write for the visualization.
	write := func(k Part, op *history.GroupOp, offset int64, code int16, what string) {
		o := porcupine.Operation{ClientId: op.Client, Call: op.Call, Return: op.Return}
		switch {
		case code == 0:
			o.Input = &offsetOp{write: true, offset: offset, desc: fmt.Sprintf("%s %s #%d%s, acknowledged", op.Member, op.Kind, op.ID, what)}
		case maybeCommitted(code) && read[k][offset]:
			o.Return = history.Infinity
			o.Input = &offsetOp{write: true, offset: offset,
				desc: fmt.Sprintf("%s %s #%d%s, error %d: outcome unknown", op.Member, op.Kind, op.ID, what, code)}
		default:
			return
		}
		add(k, o)
	}
	for _, op := range ops {
		for _, p := range op.Parts {
			k := key(op, p)
			switch {
			case op.Kind == history.FetchOffsets && p.ErrCode == 0:
				add(k, porcupine.Operation{ClientId: op.Client, Call: op.Call, Return: op.Return,
					Input: &offsetOp{offset: p.Offset, desc: fmt.Sprintf("%s fetch-offsets #%d -> %d", op.Member, op.ID, p.Offset)}})
			case op.Kind == history.Commit:
				write(k, op, p.Offset, p.ErrCode, fmt.Sprintf(" of %d (gen %d)", p.Offset, op.Generation))
			case op.Kind == history.DeleteOffsets:
				write(k, op, -1, p.ErrCode, "")
			}
		}
	}
	// Deleted groups take every partition their operations named.
	named := slices.Clone(keys)
	for _, op := range ops {
		if op.Kind != history.DeleteGroup {
			continue
		}
		for _, k := range named {
			if k.Group == op.Group {
				write(k, op, -1, op.ErrCode, "")
			}
		}
	}
	sortGroupParts(keys)
	return keys, byKey
}

// sortGroupParts orders a group checker's keys (group, topic, partition;
// no topic id) so that failures come out in a fixed order.
func sortGroupParts(keys []Part) {
	slices.SortFunc(keys, func(a, b Part) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
}

// offsetLinearizability checks with Porcupine that each group's commits
// and offset fetches of each partition are linearizable. A check that
// times out fails: an unproven history is not a pass.
func offsetLinearizability(ops []*history.GroupOp, timeoutSec int) []Failure {
	var out []Failure
	keys, byKey := offsetOperations(ops)
	timeout := time.Duration(timeoutSec) * time.Second
	for _, k := range keys {
		ops := byKey[k]
		var msg string
		switch porcupine.CheckOperationsTimeout(offsetModel, ops, timeout) {
		case porcupine.Ok:
			continue
		case porcupine.Unknown:
			msg = fmt.Sprintf("%s: Porcupine did not finish within %ds on %d operations (a timeout is a failure)", k, timeoutSec, len(ops))
		default:
			msg = fmt.Sprintf("%s: the committed offset's history of %d operations is not linearizable: %s", k, len(ops),
				explain(offsetModel, ops, timeout))
		}
		part := k
		out = append(out, Failure{Checker: "group-offsets", Claim: Claim5, Part: &part, Msg: msg})
	}
	return out
}

// visualizeOffsets writes Porcupine's visualization of a group's committed
// offset of a partition (p names both) and returns the file's path.
func visualizeOffsets(h *history.History, p Part, timeoutSec int) (string, error) {
	_, byKey := offsetOperations(h.Groups)
	ops := byKey[p]
	if len(ops) == 0 {
		return "", fmt.Errorf("no history for %s", p)
	}
	return writeVisualization(offsetModel, ops, timeoutSec)
}

// deliveries checks at-least-once delivery to each group: every
// acknowledged record of a partition below the highest offset the group
// committed (and had acknowledged) was read by some member of the group,
// or skipped by one because retention had removed it. A committed offset
// is a position members reached by reading, so a record below it that no
// member read was lost to the group.
//
// Deletes change nothing here: members start from a committed offset (one
// reached by reading) or, with none, from the log start, so every offset a
// group ever committed, in any incarnation, was reached by reading from
// the log start; a delete only makes them read again.
func deliveries(h *history.History, fail func(group, msg string)) {
	committed := map[Part]int64{}
	for _, op := range h.Groups {
		if op.Kind != history.Commit {
			continue
		}
		for _, p := range op.Parts {
			k := Part{Group: op.Group, Topic: op.Topic, Partition: p.Partition}
			if p.ErrCode == 0 && p.Offset > committed[k] {
				committed[k] = p.Offset
			}
		}
	}
	type span struct{ from, to int64 }
	covered := map[Part][]span{}
	for _, d := range h.Deliveries {
		k := Part{Group: d.Group, Topic: d.Topic, Partition: d.Partition}
		covered[k] = append(covered[k], span{d.From, d.To})
	}
	keys := make([]Part, 0, len(committed))
	for k := range committed {
		keys = append(keys, k)
	}
	sortGroupParts(keys)
	for _, k := range keys {
		spans := covered[k]
		sort.Slice(spans, func(i, j int) bool { return spans[i].from < spans[j].from })
		// merged are the spans joined where they touch or overlap.
		var merged []span
		for _, s := range spans {
			if n := len(merged); n > 0 && s.from <= merged[n-1].to {
				merged[n-1].to = max(merged[n-1].to, s.to)
				continue
			}
			merged = append(merged, s)
		}
		inside := func(o int64) bool {
			i := sort.Search(len(merged), func(i int) bool { return merged[i].to > o })
			return i < len(merged) && merged[i].from <= o
		}
		for _, p := range h.Produces {
			if p.Outcome != history.OK || p.Topic != k.Topic || p.Partition != k.Partition {
				continue
			}
			for i := range p.Values {
				if o := p.Offset + int64(i); o < committed[k] && !inside(o) {
					fail(k.Group, fmt.Sprintf("%s[%d] offset %d (%q, acknowledged at %s) was never delivered to the group, which committed %d",
						k.Topic, k.Partition, o, p.Values[i], seconds(p.Return), committed[k]))
					break
				}
			}
		}
	}
}

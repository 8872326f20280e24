package check

import (
	"fmt"
	"sort"

	"github.com/weirmq/weir/sim/history"
)

// Claim5 is DESIGN.md section 6's claim about consumer groups.
const Claim5 = "claim 5: one owner per partition per generation; committed offsets never move back"

// Groups checks claim 5 on the group operations members got answers to:
//
//   - in one generation, no partition is assigned to two members (from the
//     SyncGroup responses the members received);
//   - an acknowledged commit is never followed by an acknowledged commit
//     of an older offset for the same group and partition, and an
//     OffsetFetch never returns an offset older than an acknowledged
//     commit that completed before it began;
//   - no commit succeeds with a generation older than one a JoinGroup
//     response had already announced before the commit was sent.
//
// The workload makes the second a property of the coordinator alone: a
// member resumes a partition from the committed offset after every sync
// and only moves forward from there, and a member of an older generation
// cannot commit once a newer one began (the third).
//
// Committed offsets and groups live in the node's memory only (see
// core/group), so a restarted node has none, and it numbers generations
// from the start again. Operations are therefore compared only within one
// process incarnation: an operation belongs to the incarnation that was
// up when it was sent if no crash fell between its call and its return; one
// that spans a crash could have been answered by either, and is left out.
// Across a restart an offset may vanish entirely ("no offset") or start
// over lower, which is the documented behaviour, not a violation.
func Groups(h *history.History) []Failure {
	var out []Failure
	fail := func(format string, args ...any) {
		out = append(out, Failure{Checker: "groups", Claim: Claim5, Msg: fmt.Sprintf(format, args...)})
	}
	// byKey groups operations by group and incarnation.
	type key struct {
		group string
		inc   int
	}
	byKey := map[key][]*history.GroupOp{}
	var keys []key
	for _, op := range h.Groups {
		inc, ok := incarnation(h.Crashes, op.Call, op.Return)
		if !ok {
			continue
		}
		k := key{op.Group, inc}
		if byKey[k] == nil {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], op)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].group != keys[j].group {
			return keys[i].group < keys[j].group
		}
		return keys[i].inc < keys[j].inc
	})
	for _, k := range keys {
		ops := byKey[k]
		where := fmt.Sprintf("group %s, node incarnation %d", k.group, k.inc)
		owners(ops, func(msg string) { fail("%s: %s", where, msg) })
		offsets(ops, func(msg string) { fail("%s: %s", where, msg) })
		generations(ops, func(msg string) { fail("%s: %s", where, msg) })
	}
	return out
}

// incarnation returns which node incarnation (crashes before call) answered
// an operation over [call, ret], unless a crash fell in between.
func incarnation(crashes []int64, call, ret int64) (int, bool) {
	n := sort.Search(len(crashes), func(i int) bool { return crashes[i] >= call })
	if n < len(crashes) && crashes[n] <= ret {
		return 0, false
	}
	return n, true
}

func describe(op *history.GroupOp) string {
	return fmt.Sprintf("%s #%d by %s (member %s, gen %d, %d-%dns, error %d)",
		op.Kind, op.ID, op.Member, op.MemberID, op.Generation, op.Call, op.Return, op.ErrCode)
}

// owners: within a generation, each partition has at most one owner.
func owners(ops []*history.GroupOp, fail func(string)) {
	type slot struct {
		gen       int32
		topic     string
		partition int32
	}
	owner := map[slot]*history.GroupOp{}
	for _, op := range ops {
		if op.Kind != history.Sync || op.ErrCode != 0 {
			continue
		}
		for _, p := range op.Parts {
			s := slot{op.Generation, op.Topic, p.Partition}
			prev := owner[s]
			if prev == nil {
				owner[s] = op
				continue
			}
			if prev.MemberID != op.MemberID {
				fail(fmt.Sprintf("partition %s[%d] assigned to two members in generation %d: %s and %s",
					op.Topic, p.Partition, op.Generation, describe(prev), describe(op)))
			}
		}
	}
}

// offsets: acknowledged commits never move back, and an offset fetch sees
// at least every commit acknowledged before it began.
func offsets(ops []*history.GroupOp, fail func(string)) {
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
	// acknowledged before t.
	highest := func(k part, t int64) (acked, bool) {
		var best acked
		found := false
		for _, c := range commits[k] {
			if c.op.Return < t && (!found || c.offset > best.offset) {
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
			before, ok := highest(part{op.Topic, p.Partition}, op.Call)
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

// generations: a commit never succeeds for a generation older than one a
// JoinGroup response announced before the commit was sent, since by then
// the coordinator had moved past it. Within an incarnation generations
// only grow: a group is deleted (and would number from 0 again) only by
// the retention sweep, every offsets.retention.check.interval.ms, ten
// minutes by default, longer than any run.
func generations(ops []*history.GroupOp, fail func(string)) {
	var joins []*history.GroupOp
	for _, op := range ops {
		if op.Kind == history.Join && op.ErrCode == 0 {
			joins = append(joins, op)
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
		for _, j := range joins {
			if j.Return < op.Call && j.Generation > op.Generation {
				fail(fmt.Sprintf("a commit with generation %d succeeded after generation %d began: %s, then %s",
					op.Generation, j.Generation, describe(j), describe(op)))
				break
			}
		}
	}
}

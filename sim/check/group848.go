package check

import (
	"fmt"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weirmq/weir/sim/history"
)

// FenceBounds are the least times after which a KIP-848 coordinator may
// fence a member on its own: SessionNs after the member's last heartbeat
// (group.consumer.session.timeout.ms), RebalanceNs after it was asked to
// give partitions up (the smallest rebalance timeout any member sends).
type FenceBounds struct {
	SessionNs, RebalanceNs int64
}

// acquisition is a heartbeat answer that gave a member a partition it did
// not hold.
type acquisition struct {
	member    string
	partition int32
	op        *history.GroupOp
}

// handouts checks the KIP-848 side of "one owner per partition": the
// coordinator hands a partition to a member only once whoever held it
// before let it go. A member holds a partition from the answer that
// assigned it until it sends a heartbeat that no longer reports it, or a
// leave (member epoch -1), whatever became of those requests; the
// coordinator may also have fenced it, but no sooner than the bounds allow
// after its last successful heartbeat, or after the heartbeat whose answer
// first asked it to give partitions up. A handout while another member
// holds the partition, with neither excuse possible, is a violation.
// Member epochs never go back either.
func handouts(ops []*history.GroupOp, b FenceBounds, fail func(string)) {
	byMember := map[string][]*history.GroupOp{}
	var members []string
	for _, op := range ops {
		if op.Kind != history.Heartbeat {
			continue
		}
		if byMember[op.MemberID] == nil {
			members = append(members, op.MemberID)
		}
		byMember[op.MemberID] = append(byMember[op.MemberID], op)
	}
	sort.Strings(members)
	var acqs []acquisition
	for _, id := range members {
		hs := byMember[id]
		sort.SliceStable(hs, func(i, j int) bool { return hs[i].Call < hs[j].Call })
		var held []int32
		lastEpoch := int32(-1)
		for _, op := range hs {
			if op.SentEpoch < 0 || op.ErrCode == kerr.FencedMemberEpoch.Code || op.ErrCode == kerr.UnknownMemberID.Code {
				held, lastEpoch = nil, -1 // out of the group
				continue
			}
			if op.ErrCode != 0 {
				continue
			}
			if op.Generation < lastEpoch {
				fail(fmt.Sprintf("member %s went back from epoch %d to %d: %s", id, lastEpoch, op.Generation, describe(op)))
			}
			lastEpoch = op.Generation
			if !op.Assigned {
				continue
			}
			next := assigned(op)
			for _, p := range next {
				if !slices.Contains(held, p) {
					acqs = append(acqs, acquisition{member: id, partition: p, op: op})
				}
			}
			held = next
		}
	}
	sort.SliceStable(acqs, func(i, j int) bool { return acqs[i].op.Return < acqs[j].op.Return })
	for i, a := range acqs {
		// The latest earlier acquisition of the partition by each other
		// member is the one that may still hold it.
		latest := map[string]acquisition{}
		var others []string
		for _, prev := range acqs[:i] {
			if prev.partition != a.partition || prev.member == a.member {
				continue
			}
			if _, ok := latest[prev.member]; !ok {
				others = append(others, prev.member)
			}
			latest[prev.member] = prev
		}
		for _, m := range others {
			prev := latest[m]
			if mayHold(byMember[m], prev, a.op.Return, b) {
				fail(fmt.Sprintf("partition %s[%d] handed to member %s while member %s still held it: %s, after %s",
					a.op.Topic, a.partition, a.member, m, describe(a.op), describe(prev.op)))
			}
		}
	}
}

func assigned(op *history.GroupOp) []int32 {
	out := make([]int32, 0, len(op.Parts))
	for _, gp := range op.Parts {
		out = append(out, gp.Partition)
	}
	return out
}

// mayHold reports whether the member whose heartbeats are hs may still
// hold the partition acq gave it at time t: it released it in no request
// sent before t, and the coordinator cannot have fenced it by then.
func mayHold(hs []*history.GroupOp, acq acquisition, t int64, b FenceBounds) bool {
	lastOK, revokeAsked := acq.op.Call, int64(-1)
	prevAssigned := assigned(acq.op)
	for _, op := range hs {
		if op.Call <= acq.op.Call || op.Call >= t {
			continue
		}
		if op.SentEpoch < 0 || !slices.Contains(op.Owned, acq.partition) {
			return false // a leave, or a report without the partition
		}
		if op.ErrCode != 0 {
			continue
		}
		lastOK = max(lastOK, op.Call)
		if op.Assigned {
			next := assigned(op)
			for _, p := range prevAssigned {
				if !slices.Contains(next, p) && revokeAsked < 0 {
					revokeAsked = op.Call
				}
			}
			prevAssigned = next
		}
	}
	fenceAt := lastOK + b.SessionNs
	if revokeAsked >= 0 {
		fenceAt = min(fenceAt, revokeAsked+b.RebalanceNs)
	}
	return fenceAt > t
}

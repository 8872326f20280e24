package check

import (
	"fmt"
	"sort"

	"github.com/weirmq/weir/sim/history"
)

// maxReports bounds how many instances of one anomaly are itemised.
const maxReports = 5

// Anomalies looks for Jepsen's Kafka anomaly classes (Kingsbury's
// redpanda/kafka analyses) in the attributed history:
//
//   - duplicate: one value at two offsets of one partition;
//   - inconsistent-offsets: one position holding two values;
//   - lost-write: a value known at a position (acknowledged there, or read
//     there) that the final read covered without it;
//   - unseen: an acknowledged value the final read never saw, and which no
//     deletion the checker can justify removed (see Durability);
//   - poll-skip: a fetch that returned records starting after the offset it
//     asked for, or with a gap;
//   - nonmonotonic-poll: a fetch that returned offsets out of order, or a
//     whole batch before the offset it asked for;
//   - nonmonotonic-send: a producer whose later send to a partition got a
//     lower offset than an earlier one;
//   - unexplained: a record no producer ever sent to that incarnation.
func Anomalies(parts []*partition) []Failure {
	var out []Failure
	report := func(class, claim string, pt *partition, format string, args ...any) {
		n := 0
		for _, f := range out {
			if f.Checker == "anomaly/"+class {
				n++
			}
		}
		if n < maxReports {
			part := pt.Part
			out = append(out, Failure{Checker: "anomaly/" + class, Claim: claim, Msg: fmt.Sprintf(format, args...), Part: &part})
		}
	}

	// Positions of each value: observed, and acknowledged where attributed.
	type pos struct {
		pt     *partition
		offset int64
	}
	where := map[string][]pos{}
	addPos := func(v string, p pos) {
		for _, o := range where[v] {
			if o.pt == p.pt && o.offset == p.offset {
				return
			}
		}
		where[v] = append(where[v], p)
	}
	var values []string
	for _, pt := range parts {
		held := map[int64]string{}
		for _, o := range sortedOffsets(pt.observed) {
			v := pt.observed[o]
			held[o] = v
			if where[v] == nil {
				values = append(values, v)
			}
			addPos(v, pos{pt, o})
		}
		for _, f := range pt.fetches {
			for _, r := range f.Records {
				if held[r.Offset] != r.Value {
					report("inconsistent-offsets", Claim2, pt, "%s offset %d read as %q (fetch %d by %s) and as %q",
						pt.Part, r.Offset, r.Value, f.ID, f.Consumer, held[r.Offset])
				}
			}
		}
		for _, ref := range pt.produces {
			op := ref.op
			if !ref.attributed || op.Outcome != history.OK {
				continue
			}
			for i, v := range op.Values {
				o := op.Offset + int64(i)
				if w, ok := held[o]; ok && w != v {
					report("inconsistent-offsets", Claim1, pt, "%s offset %d was acknowledged to %s for %q but read as %q",
						pt.Part, o, op.Producer, v, w)
				}
				if where[v] == nil {
					values = append(values, v)
				}
				addPos(v, pos{pt, o})
			}
		}
	}
	// A value in two incarnations of a topic is no duplicate: a producer
	// may rightly resend into the topic recreated under the old name. (A
	// value in a partition it was never sent to is "unexplained".)
	for _, v := range values {
		ps := where[v]
		for i := 1; i < len(ps); i++ {
			if ps[i].pt == ps[0].pt {
				report("duplicate", Claim2, ps[0].pt, "value %q is at %s offsets %d and %d", v, ps[0].pt.Part, ps[0].offset, ps[i].offset)
				break
			}
		}
	}

	for _, pt := range parts {
		sent := map[string]bool{}
		for _, ref := range pt.produces {
			for _, v := range ref.op.Values {
				sent[v] = true
			}
		}
		for _, o := range sortedOffsets(pt.observed) {
			if v := pt.observed[o]; !sent[v] {
				report("unexplained", Claim2, pt, "%s offset %d holds %q, which no producer sent to this topic", pt.Part, o, v)
			}
		}
		for _, f := range pt.fetches {
			checkPoll(pt, f, report)
		}
		checkSends(pt, report)
		if pt.inFinal {
			checkFinal(pt, report)
		}
	}
	return out
}

func sortedOffsets(m map[int64]string) []int64 {
	out := make([]int64, 0, len(m))
	for o := range m {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

type reporter func(class, claim string, pt *partition, format string, args ...any)

// checkPoll looks at one fetch's records: they must start at the offset
// asked for and run on without gaps or going back.
func checkPoll(pt *partition, f *history.Fetch, report reporter) {
	if f.ErrCode != 0 || f.Offset < 0 {
		return
	}
	if f.Behind {
		report("nonmonotonic-poll", Claim2, pt, "fetch %d by %s of %s at %d returned a batch that ends before %d",
			f.ID, f.Consumer, pt.Part, f.Offset, f.Offset)
	}
	next := f.Offset
	for _, r := range f.Records {
		switch {
		case r.Offset > next:
			report("poll-skip", Claim2, pt, "fetch %d by %s of %s at %d skipped from %d to %d",
				f.ID, f.Consumer, pt.Part, f.Offset, next, r.Offset)
		case r.Offset < next:
			report("nonmonotonic-poll", Claim2, pt, "fetch %d by %s of %s at %d went back from %d to %d",
				f.ID, f.Consumer, pt.Part, f.Offset, next-1, r.Offset)
		}
		next = r.Offset + 1
	}
}

// checkSends: each producer's sends to the partition, in the order made,
// must land at increasing offsets.
func checkSends(pt *partition, report reporter) {
	at := pt.valueOffsets()
	last := map[string]*history.Produce{}
	lastOff := map[string]int64{}
	refs := append([]prodRef(nil), pt.produces...)
	sort.SliceStable(refs, func(i, j int) bool { return refs[i].op.Call < refs[j].op.Call })
	for _, ref := range refs {
		if !ref.attributed {
			continue
		}
		op := ref.op
		o, ok := pt.offsetOf(op, at)
		if !ok {
			continue
		}
		if prev := last[op.Producer]; prev != nil && o <= lastOff[op.Producer] {
			report("nonmonotonic-send", Claim2, pt, "%s sent %v (offset %d) after %v (offset %d) to %s",
				op.Producer, op.Values, o, prev.Values, lastOff[op.Producer], pt.Part)
		}
		last[op.Producer], lastOff[op.Producer] = op, o
	}
}

// checkFinal: values known at a position the final read covered must be
// there (lost-write); acknowledged values must be somewhere in it (unseen).
func checkFinal(pt *partition, report reporter) {
	for _, o := range sortedOffsets(pt.observed) {
		v := pt.observed[o]
		if o >= pt.finalStart && o < pt.finalEnd && pt.final[o] != v {
			report("lost-write", Claim1, pt, "%s offset %d was read as %q, but the final read has %q there",
				pt.Part, o, v, pt.final[o])
		}
	}
	inFinal := map[string]bool{}
	for _, v := range pt.final {
		inFinal[v] = true
	}
	pt.eachAcked(func(op *history.Produce, o int64, v string) bool {
		switch {
		case inFinal[v]:
		case o >= pt.finalStart && o < pt.finalEnd:
			report("lost-write", Claim1, pt, "%s offset %d was acknowledged to %s for %q, but the final read has %q there",
				pt.Part, o, op.Producer, v, pt.final[o])
		case o >= pt.finalEnd:
			report("unseen", Claim1, pt, "%s offset %d was acknowledged to %s for %q, but the final read ends at %d",
				pt.Part, o, op.Producer, v, pt.finalEnd)
		}
		return true
	})
}

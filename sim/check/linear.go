package check

import (
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weirmq/weir/sim/history"
)

// The Porcupine model of one partition. Its state is the committed end
// offset (the high watermark) and a chained hash of the values committed
// below it, in order: two linearizations that committed different values
// reach different states.
//
// A produce commits its records at the end. Where they land is pinned: an
// acknowledged produce at its acknowledged base offset, a produce whose
// outcome is unknown at the offset a read found its first value at. A
// produce of unknown outcome that no read ever saw has no operation of its
// own: it may have committed only over offsets that no read saw and no
// acknowledgement names ("free" offsets), so the model lets the end jump
// over free offsets, and only those. (Modelled as operations, such
// produces could go anywhere and Porcupine's search would explode.)
//
// A fetch at offset o, at its linearization point (when the node computed
// the response), sees the high watermark equal to the end, returns records
// only below it, and returns at least one record when o is below it —
// unless the byte budget left for the partition was too small for a batch.
// Which values it returned is pinned by the produces' offsets and by the
// anomaly checks (a position never holds two values). OFFSET_OUT_OF_RANGE
// is right only below the log start or past the end. A latest-offset
// lookup sees the end.
type modelState struct {
	end  int64
	hash uint64
}

type modelOp struct {
	produce bool
	// Produce: how many records, and where they land.
	n   int64
	pin int64
	// Fetch: what was asked and seen.
	offset   int64 // -1: a latest-offset lookup
	k        int64
	hw       int64
	logStart int64
	oor      bool
	limited  bool
	// For the hash and the visualization.
	values []string
	desc   string
}

func chain(h uint64, values []string) uint64 {
	if h == 0 {
		h = 14695981039346656037
	}
	for _, v := range values {
		for i := 0; i < len(v); i++ {
			h ^= uint64(v[i])
			h *= 1099511628211
		}
		h ^= 0xff
		h *= 1099511628211
	}
	return h
}

// model builds the Porcupine model of a partition whose free offsets are
// those free reports for [from, to).
func model(free func(from, to int64) bool) porcupine.Model {
	// reach moves the end to target, over free offsets only.
	reach := func(s modelState, target int64) (modelState, bool) {
		if target < s.end || target > s.end && !free(s.end, target) {
			return s, false
		}
		s.end = target
		return s, true
	}
	return porcupine.Model{
		Init: func() any { return modelState{} },
		Step: func(state, input, _ any) (bool, any) {
			s, op := state.(modelState), input.(*modelOp)
			if op.produce {
				s, ok := reach(s, op.pin)
				if !ok {
					return false, state
				}
				return true, modelState{end: s.end + op.n, hash: chain(s.hash, op.values)}
			}
			s, ok := reach(s, op.hw)
			switch {
			case !ok:
			case op.offset < 0:
			case op.oor:
				ok = op.offset < op.logStart || op.offset > s.end
			case op.k > 0:
				ok = op.offset+op.k <= s.end
			default:
				ok = op.offset >= s.end || op.limited
			}
			return ok, s
		},
		Hash: func(state any) uint64 {
			s := state.(modelState)
			return s.hash ^ uint64(s.end)*0x9e3779b97f4a7c15
		},
		DescribeOperation: func(input, _ any) string { return input.(*modelOp).desc },
		DescribeState: func(state any) string {
			s := state.(modelState)
			return fmt.Sprintf("end=%d hash=%016x", s.end, s.hash)
		},
	}
}

// operations turns a partition's history into Porcupine operations, and
// returns the partition's free-offset test.
func (pt *partition) operations() ([]porcupine.Operation, func(from, to int64) bool) {
	at := pt.valueOffsets()
	var ops []porcupine.Operation
	// taken are the half-open ranges acknowledged or read.
	var taken [][2]int64
	for o := range pt.observed {
		taken = append(taken, [2]int64{o, o + 1})
	}
	for _, ref := range pt.produces {
		p := ref.op
		op := &modelOp{produce: true, n: int64(len(p.Values)), values: p.Values}
		ret := p.Return
		if !ref.attributed {
			ret = history.Infinity // it may have gone elsewhere
		}
		if o, seen := seenAt(p, at); p.Outcome == history.OK && ref.attributed {
			op.pin = p.Offset
			taken = append(taken, [2]int64{p.Offset, p.Offset + op.n})
		} else if seen {
			op.pin = o
		} else {
			continue // unseen, unacknowledged: a possible filler of free offsets
		}
		op.desc = fmt.Sprintf("%s produce %v (%s) at %d", p.Producer, p.Values, p.Outcome, op.pin)
		ops = append(ops, porcupine.Operation{ClientId: p.Client, Input: op, Call: p.Call, Return: ret})
	}
	for _, f := range pt.fetches {
		op := &modelOp{offset: f.Offset, k: int64(len(f.Records)), hw: f.HW, logStart: f.LogStart, limited: f.Limited}
		switch f.ErrCode {
		case 0:
		case kerr.OffsetOutOfRange.Code:
			op.oor = true
			if f.LogStart < 0 {
				// Fetch v4 carries no log start: any offset below the end
				// may have been deleted.
				op.logStart = math.MaxInt64
			}
		default:
			continue // the partition could not be read: no information
		}
		switch {
		case f.Offset < 0:
			op.desc = fmt.Sprintf("%s latest offset -> %d", f.Consumer, f.HW)
		case op.k > 0:
			op.desc = fmt.Sprintf("%s fetch %d -> [%d..%d] hw %d", f.Consumer, f.Offset, f.Records[0].Offset, f.Records[op.k-1].Offset, f.HW)
		default:
			op.desc = fmt.Sprintf("%s fetch %d -> none, hw %d, log start %d, error %d", f.Consumer, f.Offset, f.HW, f.LogStart, f.ErrCode)
		}
		ops = append(ops, porcupine.Operation{ClientId: f.Client, Input: op, Call: f.Call, Return: f.Return})
	}
	sort.Slice(taken, func(i, j int) bool { return taken[i][0] < taken[j][0] })
	// reachTo[i] is the furthest any of taken[0..i] reaches.
	reachTo := make([]int64, len(taken))
	for i, r := range taken {
		reachTo[i] = r[1]
		if i > 0 {
			reachTo[i] = max(reachTo[i], reachTo[i-1])
		}
	}
	free := func(from, to int64) bool {
		// No taken range may start before to and end after from.
		i := sort.Search(len(taken), func(i int) bool { return taken[i][0] >= to })
		return i == 0 || reachTo[i-1] <= from
	}
	return ops, free
}

// Linearizability checks claim 2 with Porcupine, partition by partition.
// A check that times out fails: an unproven history is not a pass.
func Linearizability(parts []*partition, timeoutSec int) []Failure {
	var out []Failure
	for _, pt := range parts {
		ops, free := pt.operations()
		if len(ops) == 0 {
			continue
		}
		m := model(free)
		res := porcupine.CheckOperationsTimeout(m, ops, time.Duration(timeoutSec)*time.Second)
		part := pt.Part
		switch res {
		case porcupine.Ok:
			continue
		case porcupine.Unknown:
			out = append(out, Failure{Checker: "linearizability", Claim: Claim2, Part: &part,
				Msg: fmt.Sprintf("%s: Porcupine did not finish within %ds on %d operations (a timeout is a failure)", pt.Part, timeoutSec, len(ops))})
		default:
			out = append(out, Failure{Checker: "linearizability", Claim: Claim2, Part: &part,
				Msg: fmt.Sprintf("%s: the history of %d operations is not linearizable: %s", pt.Part, len(ops),
					explain(m, ops, time.Duration(timeoutSec)*time.Second))})
		}
	}
	return out
}

// Visualize writes Porcupine's HTML visualization of one partition's
// history (of a group's committed offsets of it, if p names a group) to a
// temporary file and returns its path.
func Visualize(in Input, p Part, timeoutSec int) (string, error) {
	if p.Group != "" {
		return visualizeOffsets(in.History, p, timeoutSec)
	}
	for _, pt := range build(in) {
		if pt.Part == p {
			ops, free := pt.operations()
			return writeVisualization(model(free), ops, timeoutSec)
		}
	}
	return "", fmt.Errorf("no history for %s", p)
}

// writeVisualization writes Porcupine's HTML visualization of ops under m
// to a temporary file and returns its path.
func writeVisualization(m porcupine.Model, ops []porcupine.Operation, timeoutSec int) (string, error) {
	_, info := porcupine.CheckOperationsVerbose(m, ops, time.Duration(timeoutSec)*time.Second)
	f, err := os.CreateTemp("", "weir-sim-*.html")
	if err != nil {
		return "", err
	}
	f.Close()
	if err := porcupine.VisualizePath(m, info, f.Name()); err != nil {
		return "", err
	}
	return f.Name(), nil
}

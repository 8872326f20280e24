package check

import (
	"testing"

	"github.com/weirmq/weir/sim/history"
)

// The group checker catches each violation it is for, and forgives what a
// node restart legitimately loses.
func TestGroups(t *testing.T) {
	op := func(kind history.GroupKind, member string, gen int32, call, ret int64, parts ...history.GroupPart) *history.GroupOp {
		return &history.GroupOp{Kind: kind, Group: "g", Topic: "t", Member: member, MemberID: member, Generation: gen,
			Call: call, Return: ret, Parts: parts}
	}
	at := func(p int32, off int64) history.GroupPart { return history.GroupPart{Partition: p, Offset: off} }
	cases := []struct {
		name    string
		ops     []*history.GroupOp
		crashes []int64
		fails   bool
	}{
		{"two owners in one generation", []*history.GroupOp{
			op(history.Sync, "a", 1, 0, 1, at(0, 0)), op(history.Sync, "b", 1, 0, 1, at(0, 0))}, nil, true},
		{"owners in different generations", []*history.GroupOp{
			op(history.Sync, "a", 1, 0, 1, at(0, 0)), op(history.Sync, "b", 2, 2, 3, at(0, 0))}, nil, false},
		{"commit moves back", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 10)), op(history.Commit, "a", 1, 2, 3, at(0, 5))}, nil, true},
		{"concurrent commits", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 3, at(0, 10)), op(history.Commit, "a", 1, 2, 4, at(0, 5))}, nil, false},
		{"fetch misses a commit", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 10)), op(history.FetchOffsets, "b", 1, 2, 3, at(0, -1))}, nil, true},
		{"offsets gone after a restart", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 10)), op(history.FetchOffsets, "b", 1, 3, 4, at(0, -1))}, []int64{2}, false},
		{"fetch spanning a crash", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 10)), op(history.FetchOffsets, "b", 1, 2, 4, at(0, -1))}, []int64{3}, false},
		{"stale generation commit", []*history.GroupOp{
			op(history.Join, "b", 2, 0, 1), op(history.Commit, "a", 1, 2, 3, at(0, 10))}, nil, true},
		{"generation restarts after a restart", []*history.GroupOp{
			op(history.Join, "b", 2, 0, 1), op(history.Commit, "a", 1, 3, 4, at(0, 10))}, []int64{2}, false},
	}
	for _, c := range cases {
		h := &history.History{Crashes: c.crashes}
		for _, o := range c.ops {
			h.AddGroup(o)
		}
		if got := Groups(h); (len(got) > 0) != c.fails {
			t.Errorf("%s: failures %v, want failing %v", c.name, got, c.fails)
		}
	}
}

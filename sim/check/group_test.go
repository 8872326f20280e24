package check

import (
	"os"
	"strings"
	"testing"

	"github.com/weirmq/weir/sim/history"
)

func groupOp(kind history.GroupKind, member string, gen int32, call, ret int64, parts ...history.GroupPart) *history.GroupOp {
	return &history.GroupOp{Kind: kind, Group: "g", Topic: "t", Member: member, MemberID: member, Generation: gen,
		Call: call, Return: ret, Parts: parts}
}

// at is partition p at offset off, answered with no error.
func at(p int32, off int64) history.GroupPart { return history.GroupPart{Partition: p, Offset: off} }

// failed is partition p at offset off, answered with error code code.
func failed(p int32, off int64, code int16) history.GroupPart {
	return history.GroupPart{Partition: p, Offset: off, ErrCode: code}
}

func groupHistory(ops ...*history.GroupOp) *history.History {
	h := &history.History{}
	for _, o := range ops {
		h.AddGroup(o)
	}
	return h
}

// The group checker catches each violation it is for.
func TestGroups(t *testing.T) {
	op := groupOp
	cases := []struct {
		name  string
		ops   []*history.GroupOp
		fails bool
	}{
		{"two owners in one generation", []*history.GroupOp{
			op(history.Sync, "a", 1, 0, 1, at(0, 0)), op(history.Sync, "b", 1, 0, 1, at(0, 0))}, true},
		{"owners in different generations", []*history.GroupOp{
			op(history.Sync, "a", 1, 0, 1, at(0, 0)), op(history.Sync, "b", 2, 2, 3, at(0, 0))}, false},
		{"commit moves back", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 10)), op(history.Commit, "a", 1, 2, 3, at(0, 5))}, true},
		{"concurrent commits", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 3, at(0, 10)), op(history.Commit, "a", 1, 2, 4, at(0, 5)),
			op(history.FetchOffsets, "b", 1, 5, 6, at(0, 10))}, false},
		{"fetch misses a commit", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 10)), op(history.FetchOffsets, "b", 1, 2, 3, at(0, -1))}, true},
		{"stale generation commit", []*history.GroupOp{
			op(history.Sync, "b", 2, 0, 1), op(history.Commit, "a", 1, 2, 3, at(0, 10))}, true},
		{"stale generation commit refused", []*history.GroupOp{
			op(history.Sync, "b", 2, 0, 1), op(history.Commit, "a", 1, 2, 3, failed(0, 10, 22))}, false},
		{"generation announced, never handed out, then undone by a failover", []*history.GroupOp{
			op(history.Join, "b", 2, 0, 1), op(history.Commit, "a", 1, 3, 4, at(0, 10))}, false},
	}
	for _, c := range cases {
		if got := Groups(groupHistory(c.ops...), FenceBounds{}, 10); (len(got) > 0) != c.fails {
			t.Errorf("%s: failures %v, want failing %v", c.name, got, c.fails)
		}
	}
}

// The Porcupine check of committed offsets: a commit is a write (one of
// unknown outcome may land any time after its call, or never), a
// successful offset fetch a read.
func TestOffsetLinearizability(t *testing.T) {
	op := groupOp
	const never = history.Infinity
	cases := []struct {
		name  string
		ops   []*history.GroupOp
		fails bool
	}{
		{"fetch older than an acknowledged commit", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 5)), op(history.Commit, "a", 1, 2, 3, at(0, 10)),
			op(history.FetchOffsets, "b", 1, 4, 5, at(0, 5))}, true},
		{"fetch sees the last acknowledged commit", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 5)), op(history.Commit, "a", 1, 2, 3, at(0, 10)),
			op(history.FetchOffsets, "b", 1, 4, 5, at(0, 10))}, false},
		// The commit has not returned when the second fetch starts, so
		// only the order of the reads shows the offset went back.
		{"fetch goes back after another saw a newer offset", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 10, at(0, 10)),
			op(history.FetchOffsets, "b", 1, 1, 2, at(0, 10)), op(history.FetchOffsets, "b", 1, 3, 4, at(0, -1))}, true},
		{"fetch returns an offset never committed", []*history.GroupOp{
			op(history.FetchOffsets, "b", 1, 0, 1, at(0, 7))}, true},
		{"failed fetch reads nothing", []*history.GroupOp{
			op(history.FetchOffsets, "b", 1, 0, 1, failed(0, 7, 16))}, false},
		{"ambiguous commit seen", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, failed(0, 10, 16)), op(history.FetchOffsets, "b", 1, 2, 3, at(0, 10))}, false},
		{"ambiguous commit not seen", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, failed(0, 10, 15)), op(history.FetchOffsets, "b", 1, 2, 3, at(0, -1))}, false},
		{"ambiguous commit seen, then unseen", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, failed(0, 10, 7)),
			op(history.FetchOffsets, "b", 1, 2, 3, at(0, 10)), op(history.FetchOffsets, "b", 1, 4, 5, at(0, -1))}, true},
		{"lost commit lands late", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, never, failed(0, 10, -1)),
			op(history.FetchOffsets, "b", 1, 5, 6, at(0, -1)), op(history.FetchOffsets, "b", 1, 7, 8, at(0, 10))}, false},
		{"ambiguous commit cannot land before its call", []*history.GroupOp{
			op(history.FetchOffsets, "b", 1, 0, 1, at(0, 10)), op(history.Commit, "a", 1, 2, 3, failed(0, 10, 16))}, true},
		{"refused commit seen", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, failed(0, 10, 22)), op(history.FetchOffsets, "b", 1, 2, 3, at(0, 10))}, true},
		{"other partitions and groups are separate registers", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 10)), op(history.FetchOffsets, "b", 1, 2, 3, at(1, -1)),
			{Kind: history.FetchOffsets, Group: "h", Topic: "t", Call: 2, Return: 3, Parts: []history.GroupPart{at(0, -1)}}}, false},
	}
	for _, c := range cases {
		h := groupHistory(c.ops...)
		got := offsetLinearizability(h.Groups, 10)
		if (len(got) > 0) != c.fails {
			t.Errorf("%s: failures %v, want failing %v", c.name, got, c.fails)
		}
		for _, f := range got {
			want := Part{Group: "g", Topic: "t", Partition: 0}
			if f.Part == nil || *f.Part != want || !strings.HasPrefix(f.Msg, "group g, t[0]: ") {
				t.Errorf("%s: failure %v does not name %s", c.name, f, want)
			}
		}
	}
}

// A failing group's committed offsets can be drawn, as a failing
// partition's records can.
func TestVisualizeOffsets(t *testing.T) {
	h := groupHistory(groupOp(history.Commit, "a", 1, 0, 1, at(0, 10)), groupOp(history.FetchOffsets, "b", 1, 2, 3, at(0, -1)))
	fs := Groups(h, FenceBounds{}, 10)
	var part *Part
	for _, f := range fs {
		if f.Part != nil {
			part = f.Part
		}
	}
	if part == nil {
		t.Fatalf("no failure names the group's partition: %v", fs)
	}
	path, err := Visualize(Input{History: h}, *part, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("visualization %s: %v", path, err)
	}
}

// hb is a KIP-848 heartbeat of member id: sent at call with the owned
// partitions, answered at ret with member epoch epoch and, unless assign
// is nil, an assignment.
func hb(id string, call, ret int64, owned []int32, epoch int32, assign []int32) *history.GroupOp {
	op := &history.GroupOp{Kind: history.Heartbeat, Group: "g", Topic: "t", MemberID: id, Call: call, Return: ret,
		SentEpoch: epoch, Generation: epoch, Owned: owned}
	if assign != nil {
		op.Assigned = true
		for _, p := range assign {
			op.Parts = append(op.Parts, history.GroupPart{Partition: p})
		}
	}
	return op
}

func TestHandouts(t *testing.T) {
	b := FenceBounds{SessionNs: 100, RebalanceNs: 50}
	cases := []struct {
		name  string
		ops   []*history.GroupOp
		fails bool
	}{
		{"handed over while held", []*history.GroupOp{
			hb("a", 0, 1, nil, 1, []int32{0}), hb("a", 10, 11, []int32{0}, 1, nil),
			hb("b", 12, 13, nil, 2, []int32{0})}, true},
		{"handed over after the release", []*history.GroupOp{
			hb("a", 0, 1, nil, 1, []int32{0}), hb("a", 10, 11, []int32{0}, 2, []int32{}),
			hb("a", 12, 13, []int32{}, 2, nil), hb("b", 14, 15, nil, 2, []int32{0})}, false},
		{"handed over after a leave", []*history.GroupOp{
			hb("a", 0, 1, nil, 1, []int32{0}), hb("a", 10, 11, []int32{0}, -1, nil),
			hb("b", 14, 15, nil, 2, []int32{0})}, false},
		{"handed over once the holder's session may have expired", []*history.GroupOp{
			hb("a", 0, 1, nil, 1, []int32{0}), hb("b", 120, 121, nil, 2, []int32{0})}, false},
		{"handed over once the holder may have been fenced for not revoking", []*history.GroupOp{
			hb("a", 0, 1, nil, 1, []int32{0}), hb("a", 10, 11, []int32{0}, 2, []int32{}),
			hb("a", 40, 41, []int32{0}, 2, nil), hb("b", 70, 71, nil, 3, []int32{0})}, false},
		{"member epoch goes back", []*history.GroupOp{
			hb("a", 0, 1, nil, 3, []int32{0}), hb("a", 10, 11, []int32{0}, 2, nil)}, true},
	}
	for _, c := range cases {
		var got []string
		handouts(c.ops, b, func(msg string) { got = append(got, msg) })
		if (len(got) > 0) != c.fails {
			t.Errorf("%s: failures %v, want failing %v", c.name, got, c.fails)
		}
	}
}

// A record below what the group committed that no member read or skipped
// was lost to the group.
func TestDeliveries(t *testing.T) {
	produce := &history.Produce{Topic: "t", Partition: 0, Outcome: history.OK, Offset: 4, Values: []string{"a", "b"}}
	commit := &history.GroupOp{Kind: history.Commit, Group: "g", Topic: "t", Parts: []history.GroupPart{{Partition: 0, Offset: 10}}}
	cases := []struct {
		name  string
		spans []history.Delivery
		fails bool
	}{
		{"all read", []history.Delivery{{From: 0, To: 10}}, false},
		{"read in pieces", []history.Delivery{{From: 0, To: 5}, {From: 5, To: 10}}, false},
		{"a gap", []history.Delivery{{From: 0, To: 5}, {From: 6, To: 10}}, true},
		{"the gap skipped after retention", []history.Delivery{{From: 0, To: 5}, {From: 5, To: 6, Skipped: true}, {From: 6, To: 10}}, false},
		{"nothing read", nil, true},
	}
	for _, c := range cases {
		h := &history.History{Produces: []*history.Produce{produce}}
		h.AddGroup(commit)
		for _, d := range c.spans {
			d.Group, d.Topic = "g", "t"
			h.AddDelivery(d)
		}
		var got []string
		deliveries(h, func(_, msg string) { got = append(got, msg) })
		if (len(got) > 0) != c.fails {
			t.Errorf("%s: failures %v, want failing %v", c.name, got, c.fails)
		}
	}
}

// delGroup is an admin's DeleteGroups of group g, called at call and
// answered at ret with error code code.
func delGroup(call, ret int64, code int16) *history.GroupOp {
	return &history.GroupOp{Kind: history.DeleteGroup, Group: "g", Topic: "t", Member: "admin", Generation: -1,
		Call: call, Return: ret, ErrCode: code}
}

// delOffsets is an admin's OffsetDelete of some of group g's partitions.
func delOffsets(call, ret int64, parts ...history.GroupPart) *history.GroupOp {
	return &history.GroupOp{Kind: history.DeleteOffsets, Group: "g", Topic: "t", Member: "admin", Generation: -1,
		Call: call, Return: ret, Parts: parts}
}

// A delete writes "no committed offset": offsets may move back across one
// that may have taken effect, and a deleted group's generations start
// over; a refused delete, or one of another partition, excuses nothing,
// and an acknowledged one must be seen.
func TestGroupDeletes(t *testing.T) {
	op := groupOp
	const never = history.Infinity
	const nonEmpty, subscribed = 68, 86
	cases := []struct {
		name  string
		ops   []*history.GroupOp
		fails bool
	}{
		{"generation numbers reused after the group was deleted", []*history.GroupOp{
			op(history.Sync, "a", 1, 0, 1, at(0, 0)), delGroup(2, 3, 0), op(history.Sync, "b", 1, 4, 5, at(0, 0))}, false},
		{"generation numbers reused after a refused delete", []*history.GroupOp{
			op(history.Sync, "a", 1, 0, 1, at(0, 0)), delGroup(2, 3, nonEmpty), op(history.Sync, "b", 1, 4, 5, at(0, 0))}, true},
		{"two owners in one generation after a delete", []*history.GroupOp{
			delGroup(0, 1, 0), op(history.Sync, "a", 1, 2, 3, at(0, 0)), op(history.Sync, "b", 1, 4, 5, at(0, 0))}, true},
		{"a new incarnation commits below the old one's generation", []*history.GroupOp{
			op(history.Sync, "b", 5, 0, 1), delGroup(2, 3, 0), op(history.Sync, "a", 1, 4, 5, at(0, 0)),
			op(history.FetchOffsets, "a", 1, 6, 7, at(0, -1)), op(history.Commit, "a", 1, 8, 9, at(0, 3))}, false},
		{"a lost delete may have happened", []*history.GroupOp{
			op(history.Sync, "b", 5, 0, 1), delGroup(2, never, -1), op(history.Commit, "a", 1, 8, 9, at(0, 3))}, false},
		{"commit moves back across a delete", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 10)), delOffsets(2, 3, at(0, -1)), op(history.Commit, "a", 1, 4, 5, at(0, 5))}, false},
		{"commit moves back across a refused offset delete", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 10)), delOffsets(2, 3, failed(0, -1, subscribed)),
			op(history.Commit, "a", 1, 4, 5, at(0, 5))}, true},
		{"commit moves back across a delete of another partition", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 10)), delOffsets(2, 3, at(1, -1)), op(history.Commit, "a", 1, 4, 5, at(0, 5))}, true},
		{"deleted offsets come back", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 10)), delOffsets(2, 3, at(0, -1)), op(history.FetchOffsets, "a", 1, 4, 5, at(0, 10))}, true},
		{"a deleted group's offsets come back", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 10)), delGroup(2, 3, 0), op(history.FetchOffsets, "a", 1, 4, 5, at(0, 10))}, true},
		{"a deleted group's offsets are gone", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 10)), delGroup(2, 3, 0), op(history.FetchOffsets, "a", 1, 4, 5, at(0, -1))}, false},
		{"a commit after the delete is seen", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 10)), delGroup(2, 3, 0), op(history.Commit, "a", 1, 4, 5, at(0, 3)),
			op(history.FetchOffsets, "a", 1, 6, 7, at(0, 3))}, false},
		{"an ambiguous delete seen, then unseen", []*history.GroupOp{
			op(history.Commit, "a", 1, 0, 1, at(0, 10)), delGroup(2, never, -1),
			op(history.FetchOffsets, "a", 1, 4, 5, at(0, 10)), op(history.FetchOffsets, "a", 1, 6, 7, at(0, -1)),
			op(history.FetchOffsets, "a", 1, 8, 9, at(0, 10))}, true},
	}
	for _, c := range cases {
		if got := Groups(groupHistory(c.ops...), FenceBounds{}, 10); (len(got) > 0) != c.fails {
			t.Errorf("%s: failures %v, want failing %v", c.name, got, c.fails)
		}
	}
}

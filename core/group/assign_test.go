package group

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func assignMembers(ids ...string) []*assignMember {
	var out []*assignMember
	for _, id := range ids {
		out = append(out, &assignMember{id: id})
	}
	return out
}

func subscribeAll(ms []*assignMember, topics ...string) {
	for _, m := range ms {
		for _, t := range topics {
			m.topics = append(m.topics, tid(t))
		}
		sortIDs(m.topics)
	}
}

func sortIDs(ids []topicID) { slices.SortFunc(ids, compareIDs) }

// checkTarget checks a target is a partition of what is subscribed: every
// subscribed partition assigned once, to a subscriber.
func checkTarget(t tb, ms []*assignMember, partitions map[topicID]int32, out map[string]assignment) {
	t.Helper()
	seen := map[idPartition]string{}
	for _, m := range ms {
		for _, tp := range out[m.id].partitions() {
			if !m.subscribes(tp.topic) {
				t.Fatalf("%s got a partition of a topic it does not subscribe to", m.id)
			}
			if o, ok := seen[tp]; ok {
				t.Fatalf("partition %d assigned to %s and %s", tp.partition, o, m.id)
			}
			seen[tp] = m.id
		}
	}
	for _, tp := range allPartitions(ms, partitions) {
		if _, ok := seen[tp]; !ok {
			t.Fatalf("partition %x/%d not assigned", tp.topic[:2], tp.partition)
		}
	}
}

// withNewMember is the input of an assignor's next run after a join: ms,
// each holding its target in out, and a new member id subscribed to
// topics.
func withNewMember(ms []*assignMember, out map[string]assignment, id string, topics ...string) []*assignMember {
	for _, m := range ms {
		m.prev = out[m.id]
	}
	joined := assignMembers(id)
	subscribeAll(joined, topics...)
	return append(ms, joined...)
}

func spread(ms []*assignMember, out map[string]assignment) (lo, hi int) {
	lo = 1 << 30
	for _, m := range ms {
		n := out[m.id].count()
		lo, hi = min(lo, n), max(hi, n)
	}
	return lo, hi
}

// The uniform assignor balances equal subscriptions to within one
// partition, and moves only what balance needs when members come and go.
func TestUniformAssignorBalancedAndSticky(t *testing.T) {
	partitions := map[topicID]int32{tid("a"): 7, tid("b"): 5}
	ms := assignMembers("m1", "m2", "m3")
	subscribeAll(ms, "a", "b")
	first := uniformAssign(ms, partitions)
	checkTarget(t, ms, partitions, first)
	if lo, hi := spread(ms, first); hi-lo > 1 {
		t.Fatalf("unbalanced: %d..%d", lo, hi)
	}
	ms = withNewMember(ms, first, "m4", "a", "b")
	second := uniformAssign(ms, partitions)
	checkTarget(t, ms, partitions, second)
	if lo, hi := spread(ms, second); hi-lo > 1 {
		t.Fatalf("unbalanced after a join: %d..%d", lo, hi)
	}
	moved := 0
	for _, m := range ms[:3] {
		moved += m.prev.count() - m.prev.filter(second[m.id].has).count()
	}
	if moved != second["m4"].count() {
		t.Fatalf("%d partitions moved for a new member that got %d", moved, second["m4"].count())
	}
}

// Balance and completeness hold for any subscriptions; with equal
// subscriptions counts differ by at most one.
func TestUniformAssignorProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		topics := []string{"a", "b", "c"}
		partitions := map[topicID]int32{}
		for _, tn := range topics {
			partitions[tid(tn)] = int32(rapid.IntRange(1, 9).Draw(rt, "partitions"))
		}
		n := rapid.IntRange(1, 6).Draw(rt, "members")
		equal := rapid.Bool().Draw(rt, "equal")
		var ms []*assignMember
		for i := 0; i < n; i++ {
			m := &assignMember{id: fmt.Sprintf("m%d", i)}
			for _, tn := range topics {
				if equal || rapid.Bool().Draw(rt, "subscribes") {
					m.topics = append(m.topics, tid(tn))
				}
			}
			sortIDs(m.topics)
			ms = append(ms, m)
		}
		for round := 0; round < 3; round++ {
			out := uniformAssign(ms, partitions)
			checkTarget(rt, ms, partitions, out)
			if lo, hi := spread(ms, out); equal && hi-lo > 1 {
				rt.Fatalf("equal subscriptions unbalanced: %d..%d", lo, hi)
			}
			again := uniformAssign(ms, partitions)
			for _, m := range ms {
				if !again[m.id].equal(out[m.id]) {
					rt.Fatal("not deterministic")
				}
				m.prev = out[m.id]
			}
			// Stable under its own output.
			if kept := uniformAssign(ms, partitions); !kept[ms[0].id].equal(out[ms[0].id]) {
				rt.Fatal("a second run on its own output moved partitions")
			}
		}
	})
}

// The range assignor gives equal subscribers the same partition numbers of
// each topic, the first members one more, and keeps members' shares when
// it runs again.
func TestRangeAssignor(t *testing.T) {
	partitions := map[topicID]int32{tid("a"): 5, tid("b"): 5}
	ms := assignMembers("m2", "m1")
	ms[0], ms[1] = ms[1], ms[0] // assignors take members in id order
	subscribeAll(ms, "a", "b")
	out := rangeAssign(ms, partitions)
	checkTarget(t, ms, partitions, out)
	want := map[string][]int32{"m1": {0, 1, 2}, "m2": {3, 4}}
	for id, ps := range want {
		for _, tn := range []string{"a", "b"} {
			if got := out[id][tid(tn)]; fmt.Sprint(got) != fmt.Sprint(ps) {
				t.Fatalf("%s of %s: %v, want %v", id, tn, got, ps)
			}
		}
	}
	ms = withNewMember(ms, out, "m3", "a", "b")
	next := rangeAssign(ms, partitions)
	checkTarget(t, ms, partitions, next)
	// Shares 2, 2, 1: m1 keeps 0 and 1, m2 keeps 3 and 4, m3 gets 2.
	if fmt.Sprint(next["m1"][tid("a")]) != "[0 1]" || fmt.Sprint(next["m2"][tid("a")]) != "[3 4]" || fmt.Sprint(next["m3"][tid("a")]) != "[2]" {
		t.Fatalf("after a join: %v", next)
	}
}

// The group's assignor is the one its members ask for most, or the
// configured default.
func TestServerAssignorChoice(t *testing.T) {
	h := newHarness(t, testConfig())
	h.setTopic("a", 4)
	h.setTopic("b", 4)
	m1, m2 := h.member("g", "m1", "a", "b"), h.member("g", "m2", "a", "b")
	m1.assignor, m2.assignor = strp("range"), strp("range")
	settle(t, m1, m2)
	if !m1.owned.equal(parts("a", 0, 1).union(parts("b", 0, 1))) {
		t.Fatalf("range assignment of m1: %v", m1.owned)
	}
	if a := h.c.groupAssignor(h.c.groups["g"].cg); a != "range" {
		t.Fatalf("assignor %s", a)
	}
}

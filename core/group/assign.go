package group

import (
	"slices"
	"strings"
)

// Server-side assignors (KIP-848): they compute a consumer group's target
// assignment from its members' subscriptions, the subscribed topics, and
// the previous target (for stickiness). Both are pure and deterministic:
// members are taken in id order and partitions in topic id order.

// assignMember is one member as an assignor sees it.
type assignMember struct {
	id     string
	topics []topicID // sorted
	prev   assignment
}

func (m *assignMember) subscribes(t topicID) bool {
	_, ok := slices.BinarySearchFunc(m.topics, t, compareIDs)
	return ok
}

// assignor computes a target: members sorted by id, partitions of each
// subscribed topic by id. Every member gets an entry, empty or not.
type assignor func(members []*assignMember, partitions map[topicID]int32) map[string]assignment

// assignors are the server assignors by the names clients give.
var assignors = map[string]assignor{
	"uniform": uniformAssign,
	"range":   rangeAssign,
}

// groupAssignor is the assignor the members prefer most (ties to the
// configured order), or the first configured one when none asks, as
// Kafka's ConsumerGroup.computePreferredServerAssignor.
func (c *Coordinator) groupAssignor(cg *consumerGroup) string {
	votes := map[string]int{}
	for _, m := range cg.members {
		if m.serverAssignor != "" {
			votes[m.serverAssignor]++
		}
	}
	best := ""
	for _, name := range c.cfg.ConsumerAssignors {
		if votes[name] > votes[best] { // votes[""] is zero
			best = name
		}
	}
	if best == "" {
		best = c.cfg.ConsumerAssignors[0]
	}
	return best
}

// uniformAssign is Kafka's UniformAssignor in spirit: every partition a
// member subscribes to is assigned, as evenly as the subscriptions allow,
// moving as few partitions as possible from the previous target. Kept
// partitions come first, then the unassigned go to the least loaded
// eligible member, then partitions move from a member to an eligible one
// with at least two fewer until none can (with equal subscriptions, counts
// then differ by at most one).
func uniformAssign(members []*assignMember, partitions map[topicID]int32) map[string]assignment {
	owner := map[idPartition]int{} // partition → index in members
	counts := make([]int, len(members))
	all := allPartitions(members, partitions)
	for i, m := range members {
		for _, tp := range m.prev.partitions() {
			if _, taken := owner[tp]; !taken && m.subscribes(tp.topic) && tp.partition < partitions[tp.topic] {
				owner[tp] = i
				counts[i]++
			}
		}
	}
	leastLoaded := func(t topicID) int {
		best := -1
		for i, m := range members {
			if m.subscribes(t) && (best < 0 || counts[i] < counts[best]) {
				best = i
			}
		}
		return best
	}
	for _, tp := range all {
		if _, ok := owner[tp]; !ok {
			i := leastLoaded(tp.topic)
			owner[tp] = i
			counts[i]++
		}
	}
	for moved := true; moved; {
		moved = false
		for _, tp := range all {
			from, to := owner[tp], leastLoaded(tp.topic)
			if counts[from] > counts[to]+1 {
				owner[tp] = to
				counts[from]--
				counts[to]++
				moved = true
			}
		}
	}
	return collect(members, all, owner)
}

// rangeAssign is Kafka's RangeAssignor: for each topic, its subscribers in
// id order get consecutive shares, the first P%N one partition more, so
// that members of equal subscriptions get the same partition numbers of
// co-partitioned topics. It is sticky within the shares: a member first
// keeps partitions of its previous target up to its share, and the rest
// fill the shares in order.
func rangeAssign(members []*assignMember, partitions map[topicID]int32) map[string]assignment {
	owner := map[idPartition]int{}
	for _, t := range sortedTopicIDs(partitions) {
		var subs []int
		for i, m := range members {
			if m.subscribes(t) {
				subs = append(subs, i)
			}
		}
		if len(subs) == 0 {
			continue
		}
		n := int(partitions[t])
		share := func(k int) int {
			if k < n%len(subs) {
				return n/len(subs) + 1
			}
			return n / len(subs)
		}
		have := make([]int, len(subs))
		for k, i := range subs {
			for _, p := range members[i].prev[t] {
				tp := idPartition{t, p}
				if _, taken := owner[tp]; !taken && int(p) < n && have[k] < share(k) {
					owner[tp] = i
					have[k]++
				}
			}
		}
		k := 0
		for p := 0; p < n; p++ {
			tp := idPartition{t, int32(p)}
			if _, ok := owner[tp]; ok {
				continue
			}
			for have[k] >= share(k) {
				k++
			}
			owner[tp] = subs[k]
			have[k]++
		}
	}
	return collect(members, allPartitions(members, partitions), owner)
}

// allPartitions lists every partition of a topic some member subscribes
// to, by topic id and partition.
func allPartitions(members []*assignMember, partitions map[topicID]int32) []idPartition {
	var out []idPartition
	for _, t := range sortedTopicIDs(partitions) {
		for _, m := range members {
			if m.subscribes(t) {
				for p := int32(0); p < partitions[t]; p++ {
					out = append(out, idPartition{t, p})
				}
				break
			}
		}
	}
	return out
}

func collect(members []*assignMember, all []idPartition, owner map[idPartition]int) map[string]assignment {
	per := make([][]idPartition, len(members))
	for _, tp := range all {
		if i, ok := owner[tp]; ok {
			per[i] = append(per[i], tp)
		}
	}
	out := make(map[string]assignment, len(members))
	for i, m := range members {
		out[m.id] = assignmentOf(per[i])
	}
	return out
}

func sortedTopicIDs(partitions map[topicID]int32) []topicID {
	ids := make([]topicID, 0, len(partitions))
	for t := range partitions {
		ids = append(ids, t)
	}
	slices.SortFunc(ids, compareIDs)
	return ids
}

// computeTarget runs the group's assignor for its current epoch and writes
// the members' targets that changed, then the target's epoch.
func (c *Coordinator) computeTarget(b *cgBatch, topics []TopicMeta) {
	cg := b.g.cg
	partitions := map[topicID]int32{}
	byName := map[string]topicID{}
	for _, t := range topics {
		partitions[t.ID] = t.Partitions
		byName[t.Name] = t.ID
	}
	var in []*assignMember
	for _, m := range cg.members {
		am := &assignMember{id: m.id, prev: cg.target[m.id]}
		for _, n := range cg.subscribedNames(m) {
			if id, ok := byName[n]; ok {
				am.topics = append(am.topics, id)
			}
		}
		slices.SortFunc(am.topics, compareIDs)
		in = append(in, am)
	}
	slices.SortFunc(in, func(a, b *assignMember) int { return strings.Compare(a.id, b.id) })
	name := c.groupAssignor(cg)
	out := assignors[name](in, partitions)
	for _, m := range cg.members {
		if old, ok := cg.target[m.id]; !ok || !old.equal(out[m.id]) {
			cg.target[m.id] = out[m.id]
			b.target(m.id)
		}
	}
	cg.targetEpoch = cg.epoch
	b.targetMetadata()
	c.log.Info("computed the target assignment of a consumer group", "group", b.g.id, "epoch", cg.epoch, "assignor", name, "members", len(cg.members))
}

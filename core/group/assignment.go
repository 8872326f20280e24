package group

import (
	"bytes"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicID is a topic's id: partitions of consumer groups are named by
// topic id, as in Kafka, so a topic deleted and created again under the
// same name is a different topic.
type topicID = [16]byte

// assignment is a set of partitions of consumer group topics. It is kept
// canonical: every topic has at least one partition, sorted and without
// repeats, so equal sets are equal maps. Outputs walk it through
// sortedTopics, never in map order.
type assignment map[topicID][]int32

// idPartition is one partition named by topic id.
type idPartition struct {
	topic     topicID
	partition int32
}

func compareIDs(a, b topicID) int { return bytes.Compare(a[:], b[:]) }

func (a assignment) sortedTopics() []topicID {
	ids := make([]topicID, 0, len(a))
	for id := range a {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareIDs)
	return ids
}

// partitions lists a's partitions by topic id, then partition.
func (a assignment) partitions() []idPartition {
	var out []idPartition
	for _, t := range a.sortedTopics() {
		for _, p := range a[t] {
			out = append(out, idPartition{t, p})
		}
	}
	return out
}

func (a assignment) has(t topicID, p int32) bool {
	_, ok := slices.BinarySearch(a[t], p)
	return ok
}

func (a assignment) equal(b assignment) bool {
	if len(a) != len(b) {
		return false
	}
	for t, ps := range a {
		if !slices.Equal(ps, b[t]) {
			return false
		}
	}
	return true
}

// filter is the partitions of a that keep reports true for.
func (a assignment) filter(keep func(topicID, int32) bool) assignment {
	out := assignment{}
	for t, ps := range a {
		var kept []int32
		for _, p := range ps {
			if keep(t, p) {
				kept = append(kept, p)
			}
		}
		if len(kept) > 0 {
			out[t] = kept
		}
	}
	return out
}

// union is every partition of a and b.
func (a assignment) union(b assignment) assignment {
	out := assignment{}
	for _, x := range []assignment{a, b} {
		for t, ps := range x {
			out[t] = append(out[t], ps...)
		}
	}
	for t, ps := range out {
		slices.Sort(ps)
		out[t] = slices.Compact(ps)
	}
	return out
}

func (a assignment) subsetOf(b assignment) bool {
	for t, ps := range a {
		for _, p := range ps {
			if !b.has(t, p) {
				return false
			}
		}
	}
	return true
}

// assignmentOf builds a canonical assignment from partitions in any order,
// possibly repeated; topics without partitions are dropped.
func assignmentOf(parts []idPartition) assignment {
	out := assignment{}
	for _, tp := range parts {
		out[tp.topic] = append(out[tp.topic], tp.partition)
	}
	for t, ps := range out {
		slices.Sort(ps)
		out[t] = slices.Compact(ps)
	}
	return out
}

// ownedAssignment is what a heartbeat reports the member owns, or nil when
// it does not say (a nil Topics field): Kafka then assumes the member still
// owns everything it was given.
func ownedAssignment(topics []kmsg.ConsumerGroupHeartbeatRequestTopic) assignment {
	if topics == nil {
		return nil
	}
	var parts []idPartition
	for _, t := range topics {
		for _, p := range t.Partitions {
			parts = append(parts, idPartition{t.TopicID, p})
		}
	}
	return assignmentOf(parts)
}

package group

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"pgregory.net/rapid"
)

// storedGroup builds the records of a consumer group with two members, as
// one batch each member's join would leave.
func storedGroup(t *testing.T) []Record {
	h := newHarness(t, testConfig())
	h.setTopic("t", 4)
	a, b := h.member("g", "a", "t"), h.member("g", "b", "t")
	b.instance = strp("ib")
	settle(t, a, b)
	return h.host.log
}

// A replay takes records in any order that keeps each key's own order (a
// member's records before its group's, targets before their metadata, ...).
func TestConsumerReplayAnyOrder(t *testing.T) {
	recs := storedGroup(t)
	load := func(t tb, recs []Record) ConsumerGroupInfo {
		h := newHarness(t, testConfig())
		h.setTopic("t", 4)
		h.host.log = recs
		h.reload()
		gi, ok := h.c.ConsumerGroup("g")
		if !ok {
			t.Fatal("group not loaded")
		}
		return gi
	}
	want := load(t, recs)
	if len(want.Members) != 2 || want.State != ConsumerStable {
		t.Fatalf("loaded %+v", want)
	}
	rapid.Check(t, func(rt *rapid.T) {
		// Interleave the records of distinct keys at random, keeping the
		// order of each key's records.
		byKey := map[string][]Record{}
		var keys []string
		for _, r := range recs {
			k := string(r.Key)
			if byKey[k] == nil {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], r)
		}
		var shuffled []Record
		for len(keys) > 0 {
			i := rapid.IntRange(0, len(keys)-1).Draw(rt, "key")
			k := keys[i]
			shuffled = append(shuffled, byKey[k][0])
			if byKey[k] = byKey[k][1:]; len(byKey[k]) == 0 {
				keys = append(keys[:i], keys[i+1:]...)
			}
		}
		got := load(rt, shuffled)
		if got.Epoch != want.Epoch || got.TargetEpoch != want.TargetEpoch || len(got.Members) != len(want.Members) {
			rt.Fatalf("loaded %+v, want %+v", got, want)
		}
		for i := range got.Members {
			g, w := got.Members[i], want.Members[i]
			if g.ID != w.ID || g.Epoch != w.Epoch || !assignment(g.Assigned).equal(assignment(w.Assigned)) || !assignment(g.Target).equal(assignment(w.Target)) {
				rt.Fatalf("member %+v, want %+v", g, w)
			}
		}
	})
}

// Tombstones remove a member whatever their order, and the group's own
// tombstone removes the group but not its offsets.
func TestConsumerReplayTombstones(t *testing.T) {
	h := newHarness(t, testConfig())
	h.setTopic("t", 2)
	recs := storedGroup(t)
	tomb := func(typ int16, member string) Record {
		if member == "" {
			return Record{Key: cgGroupKey(typ, "g")}
		}
		return Record{Key: cgMemberKey(typ, "g", member)}
	}
	h.host.log = append(append([]Record{}, recs...), tomb(cgMemberType, "a"), tomb(cgCurrentType, "a"), tomb(cgTargetMemberType, "a"))
	h.reload()
	if gi, _ := h.c.ConsumerGroup("g"); len(gi.Members) != 1 || gi.Members[0].ID != "b" {
		t.Fatalf("after a's tombstones: %+v", gi)
	}
	h.host.log = append(append([]Record{}, recs...), offsetRecord("g", topicPartition{"t", 0}, committed{offset: 4}, 0, -1),
		tomb(cgCurrentType, "a"), tomb(cgTargetMemberType, "a"), tomb(cgMemberType, "a"),
		tomb(cgCurrentType, "b"), tomb(cgTargetMemberType, "b"), tomb(cgMemberType, "b"),
		tomb(cgTargetMetadataType, ""), tomb(cgPartitionMetadataType, ""), tomb(cgMetadataType, ""))
	h.reload()
	if _, ok := h.c.ConsumerGroup("g"); ok {
		t.Fatal("group back after its tombstone")
	}
	if off, ok := h.c.Committed("g", "t", 0); !ok || off != 4 {
		t.Fatalf("offset after the group's tombstone: %d %v", off, ok)
	}
}

// Fields of later Kafka versions (tagged) and type 4 records are read past.
func TestConsumerReplayKafkaExtras(t *testing.T) {
	h := newHarness(t, testConfig())
	h.setTopic("t", 2)
	tp := idPartition{tid("t"), 1}
	// Type 3 with MetadataHash (tag 0) and CreationTimeMs (tag 1).
	v3 := kbin.AppendInt32(cgValue(), 7)
	v3 = kbin.AppendUvarint(v3, 2)
	v3 = kbin.AppendUvarint(kbin.AppendUvarint(v3, 0), 8)
	v3 = kbin.AppendInt64(v3, 99)
	v3 = kbin.AppendUvarint(kbin.AppendUvarint(v3, 1), 8)
	v3 = kbin.AppendInt64(v3, 1234)
	// Type 8 whose topic carries AssignmentEpochs (tag 0).
	v8 := kbin.AppendInt32(cgValue(), 7)
	v8 = kbin.AppendInt32(v8, 6)
	v8 = kbin.AppendInt8(v8, int8(memberStable))
	v8 = kbin.AppendCompactArrayLen(v8, 1)
	v8 = kbin.AppendUuid(v8, tp.topic)
	v8 = kbin.AppendInt32(kbin.AppendCompactArrayLen(v8, 1), tp.partition)
	tag := kbin.AppendInt32(kbin.AppendCompactArrayLen(nil, 1), 5)
	v8 = kbin.AppendUvarint(v8, 1)
	v8 = append(kbin.AppendUvarint(kbin.AppendUvarint(v8, 0), uint32(len(tag))), tag...)
	v8 = kbin.AppendCompactArrayLen(v8, 0)
	v8 = kbin.AppendUvarint(v8, 0)
	m := &consumerMember{id: "m", clientID: "c", clientHost: "/h", topicNames: []string{"t"}, rebalanceTimeoutMs: 1000}
	h.host.log = []Record{
		{cgMemberKey(cgMemberType, "g", "m"), memberValue(m)},
		{cgGroupKey(cgPartitionMetadataType, "g"), []byte{0, 0, 1, 2, 3}},
		{cgGroupKey(cgMetadataType, "g"), v3},
		{cgMemberKey(cgTargetMemberType, "g", "m"), targetValue(assignmentOf([]idPartition{tp}))},
		{cgGroupKey(cgTargetMetadataType, "g"), epochValue(7)},
		{cgMemberKey(cgCurrentType, "g", "m"), v8},
	}
	h.reload()
	gi, ok := h.c.ConsumerGroup("g")
	if !ok || gi.Epoch != 7 || gi.TargetEpoch != 7 || len(gi.Members) != 1 || gi.Members[0].Epoch != 7 || !assignment(gi.Members[0].Assigned).has(tp.topic, 1) {
		t.Fatalf("loaded %+v", gi)
	}
	if h.c.groups["g"].cg.metadataHash != 99 {
		t.Fatalf("metadata hash %d", h.c.groups["g"].cg.metadataHash)
	}

	h.c.BeginLoad(1)
	if err := h.c.Replay(1, Record{cgGroupKey(cgMetadataType, "g"), []byte{0, 1}}); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("bad value version: %v", err)
	}
	if err := h.c.Replay(1, Record{cgGroupKey(cgMetadataType, "g"), []byte{0, 0, 1}}); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("short value: %v", err)
	}
}

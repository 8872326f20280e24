package metadata

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/weirmq/weir/core/port"
)

var topicB = [16]byte{0xb}

func register(id port.NodeID, epoch int64, rack string) Record {
	return Record{RegisterBroker: &RegisterBrokerRecord{ID: id, Epoch: epoch, Incarnation: "inc", Rack: rack,
		Endpoints: []Endpoint{{Listener: "PLAINTEXT", Host: "h", Port: 9092}}}}
}

func unfence(id port.NodeID, epoch int64) Record {
	return Record{UnfenceBroker: &BrokerEpochRecord{ID: id, Epoch: epoch}}
}

func partition(topic [16]byte, p int32, replicas, isr []port.NodeID, leader port.NodeID, leaderEpoch, partitionEpoch int32) Record {
	return Record{Partition: &PartitionRecord{TopicID: topic, Partition: p, Replicas: replicas, ISR: isr,
		Leader: leader, LeaderEpoch: leaderEpoch, PartitionEpoch: partitionEpoch}}
}

// reassigning sets the reassignment fields of a partition record.
func reassigning(r Record, adding, removing []port.NodeID) Record {
	r.Partition.AddingReplicas, r.Partition.RemovingReplicas = adding, removing
	return r
}

// eligible sets the ELR of a partition record.
func eligible(r Record, elr []port.NodeID) Record {
	r.Partition.ELR = elr
	return r
}

func config(res ResourceType, name, key string, value *string) Record {
	return Record{Config: &ConfigRecord{Resource: res, Name: name, Key: key, Value: value}}
}

// base is the image most cases start from: brokers 1-3 (1 and 2 unfenced),
// topic "orders" with two partitions and a config.
func base() []Record {
	return []Record{
		{Cluster: &ClusterRecord{ClusterID: "c1"}},
		register(1, 10, "r1"), register(2, 20, "r2"), register(3, 30, "r1"),
		unfence(1, 10), unfence(2, 20),
		{Topic: &TopicRecord{Name: "orders", ID: topicA}},
		partition(topicA, 0, ids(1, 2), ids(1, 2), 1, 0, 0),
		partition(topicA, 1, ids(2, 3), ids(2), 2, 0, 0),
		config(ResourceTopic, "orders", "retention.ms", strp("1000")),
	}
}

func ids(v ...port.NodeID) []port.NodeID { return v }

func TestApply(t *testing.T) {
	cases := []struct {
		name  string
		setup []Record // applied at index 1
		recs  []Record // applied at index 2
		// check inspects the image after a successful Apply.
		check func(t *testing.T, img *Image)
		// panics, when set, is a substring of the expected panic.
		panics string
	}{
		{
			name: "cluster id is set once",
			recs: []Record{{Cluster: &ClusterRecord{ClusterID: "c1"}}},
			check: func(t *testing.T, img *Image) {
				eq(t, img.ClusterID(), "c1")
			},
		},
		{name: "same cluster id again is harmless", setup: base(), recs: []Record{{Cluster: &ClusterRecord{ClusterID: "c1"}}},
			check: func(t *testing.T, img *Image) { eq(t, img.ClusterID(), "c1") }},
		{name: "cluster id cannot change", setup: base(), recs: []Record{{Cluster: &ClusterRecord{ClusterID: "c2"}}},
			panics: `cluster id "c2" would replace "c1"`},
		{name: "empty cluster id", recs: []Record{{Cluster: &ClusterRecord{}}}, panics: "empty cluster id"},
		{
			name: "a new broker starts fenced",
			recs: []Record{register(7, 5, "r9")},
			check: func(t *testing.T, img *Image) {
				b, ok := img.Broker(7)
				eq(t, ok, true)
				eq(t, b, Broker{ID: 7, Epoch: 5, Incarnation: "inc", Rack: "r9", Fenced: true,
					Endpoints: []Endpoint{{Listener: "PLAINTEXT", Host: "h", Port: 9092}}})
			},
		},
		{
			name:  "re-registration replaces the old one and fences again",
			setup: append(base(), Record{ShutdownBroker: &BrokerEpochRecord{ID: 1, Epoch: 10}}),
			recs:  []Record{{RegisterBroker: &RegisterBrokerRecord{ID: 1, Epoch: 11, Incarnation: "new", Rack: "r3"}}},
			check: func(t *testing.T, img *Image) {
				b, _ := img.Broker(1)
				eq(t, b, Broker{ID: 1, Epoch: 11, Incarnation: "new", Rack: "r3", Fenced: true})
			},
		},
		{name: "re-registration must raise the epoch", setup: base(), recs: []Record{register(1, 10, "")},
			panics: "epoch 10 does not follow registered epoch 10"},
		{name: "negative broker id", recs: []Record{register(-1, 0, "")}, panics: "negative broker id"},
		{name: "duplicate listener", recs: []Record{{RegisterBroker: &RegisterBrokerRecord{ID: 1,
			Endpoints: []Endpoint{{Listener: "A"}, {Listener: "A"}}}}}, panics: `listener "A" listed twice`},
		{name: "port out of range", recs: []Record{{RegisterBroker: &RegisterBrokerRecord{ID: 1,
			Endpoints: []Endpoint{{Listener: "A", Port: 70000}}}}}, panics: "port 70000 out of range"},
		{
			name:  "unfence, fence and shutdown",
			setup: base(),
			recs: []Record{
				unfence(3, 30),
				{FenceBroker: &BrokerEpochRecord{ID: 1, Epoch: 10}},
				{ShutdownBroker: &BrokerEpochRecord{ID: 2, Epoch: 20}},
			},
			check: func(t *testing.T, img *Image) {
				var got [][2]bool
				for _, b := range img.Brokers() {
					got = append(got, [2]bool{b.Fenced, b.ShuttingDown})
				}
				eq(t, got, [][2]bool{{true, false}, {false, true}, {false, false}})
			},
		},
		{name: "unfence with a stale epoch", setup: base(), recs: []Record{unfence(3, 29)},
			panics: "broker 3: epoch 29 is not the registered epoch 30"},
		{name: "fence an unknown broker", setup: base(), recs: []Record{{FenceBroker: &BrokerEpochRecord{ID: 9}}},
			panics: "broker 9 is not registered"},
		{name: "shutdown an unknown broker", recs: []Record{{ShutdownBroker: &BrokerEpochRecord{ID: 9}}},
			panics: "ShutdownBroker: broker 9 is not registered"},
		{
			name:  "topic with partitions in one batch",
			setup: base(),
			recs: []Record{
				{Topic: &TopicRecord{Name: "payments", ID: topicB}},
				partition(topicB, 0, ids(3, 1), ids(3), 3, 0, 0),
			},
			check: func(t *testing.T, img *Image) {
				tp, ok := img.Topic("payments")
				eq(t, ok, true)
				want := Topic{Name: "payments", ID: topicB, Partitions: []Partition{{Replicas: ids(3, 1), ISR: ids(3), Leader: 3}}}
				eq(t, tp, want)
				byID, _ := img.TopicByID(topicB)
				eq(t, byID, want)
				var names []string
				for _, tp := range img.Topics() {
					names = append(names, tp.Name)
				}
				eq(t, names, []string{"orders", "payments"})
			},
		},
		{name: "topic name taken", setup: base(), recs: []Record{{Topic: &TopicRecord{Name: "orders", ID: topicB}}},
			panics: `topic "orders" already exists`},
		{name: "topic id taken", setup: base(), recs: []Record{{Topic: &TopicRecord{Name: "x", ID: topicA}}},
			panics: `already belongs to topic "orders"`},
		{name: "zero topic id", recs: []Record{{Topic: &TopicRecord{Name: "x"}}}, panics: "zero topic id"},
		{name: "empty topic name", recs: []Record{{Topic: &TopicRecord{ID: topicB}}}, panics: "empty topic name"},
		{
			name:  "partition change replaces the state",
			setup: base(),
			recs:  []Record{partition(topicA, 0, ids(1, 2, 3), ids(2, 3), 2, 1, 1)},
			check: func(t *testing.T, img *Image) {
				p, ok := img.Partition(topicA, 0)
				eq(t, ok, true)
				eq(t, p, Partition{Replicas: ids(1, 2, 3), ISR: ids(2, 3), Leader: 2, LeaderEpoch: 1, PartitionEpoch: 1})
			},
		},
		{name: "partition of an unknown topic", setup: base(), recs: []Record{partition(topicB, 0, ids(1), ids(1), 1, 0, 0)},
			panics: "unknown topic id 0b00"},
		{name: "partition number skips ahead", setup: base(), recs: []Record{partition(topicA, 3, ids(1), ids(1), 1, 0, 0)},
			panics: "orders-3: partition number out of order: the topic has 2 partitions"},
		{name: "no replicas", setup: base(), recs: []Record{partition(topicA, 2, nil, nil, NoLeader, 0, 0)},
			panics: "orders-2: no replicas"},
		{name: "duplicate replica", setup: base(), recs: []Record{partition(topicA, 2, ids(1, 1), nil, NoLeader, 0, 0)},
			panics: "replica 1 listed twice"},
		{name: "unregistered replica", setup: base(), recs: []Record{partition(topicA, 2, ids(1, 8), nil, NoLeader, 0, 0)},
			panics: "replica 8 is not a registered broker"},
		{name: "ISR outside replicas", setup: base(), recs: []Record{partition(topicA, 2, ids(1, 2), ids(3), NoLeader, 0, 0)},
			panics: "ISR member 3 is not a replica"},
		{name: "ELR outside replicas", setup: base(), recs: []Record{eligible(partition(topicA, 2, ids(1, 2), ids(1), 1, 0, 0), ids(3))},
			panics: "ELR member 3 is not a replica"},
		{name: "ELR member in the ISR", setup: base(), recs: []Record{eligible(partition(topicA, 2, ids(1, 2), ids(1), 1, 0, 0), ids(1))},
			panics: "ELR member 1 is in the ISR"},
		{name: "duplicate ELR member", setup: base(), recs: []Record{eligible(partition(topicA, 2, ids(1, 2, 3), ids(1), 1, 0, 0), ids(2, 2))},
			panics: "ELR member 2 listed twice"},
		{
			name:  "an ELR and a directory id are kept",
			setup: base(),
			recs: []Record{
				eligible(partition(topicA, 0, ids(1, 2), ids(1), 1, 0, 1), ids(2)),
				{RegisterBroker: &RegisterBrokerRecord{ID: 2, Epoch: 21, Incarnation: "new", DirectoryID: [16]byte{7}}},
			},
			check: func(t *testing.T, img *Image) {
				p, _ := img.Partition(topicA, 0)
				eq(t, p.ELR, ids(2))
				b, _ := img.Broker(2)
				eq(t, b.DirectoryID, [16]byte{7})
			},
		},
		{name: "leader outside ISR", setup: base(), recs: []Record{partition(topicA, 2, ids(1, 2), ids(2), 1, 0, 0)},
			panics: "leader 1 is not in the ISR [2]"},
		{
			name:  "a reassignment in progress, then completed",
			setup: base(),
			recs: []Record{
				reassigning(partition(topicA, 0, ids(3, 1, 2), ids(1, 2), 1, 0, 1), ids(3), ids(1, 2)),
				partition(topicA, 0, ids(3), ids(3), 3, 1, 2),
			},
			check: func(t *testing.T, img *Image) {
				p, _ := img.Partition(topicA, 0)
				eq(t, p.Reassigning(), false)
				eq(t, p.AddingReplicas, []port.NodeID(nil))
				eq(t, p.Replicas, ids(3))
			},
		},
		{
			name:  "a reassignment in progress is kept",
			setup: base(),
			recs:  []Record{reassigning(partition(topicA, 0, ids(3, 2, 1), ids(1, 2), 1, 0, 1), ids(3), ids(1))},
			check: func(t *testing.T, img *Image) {
				p, _ := img.Partition(topicA, 0)
				eq(t, p.Reassigning(), true)
				eq(t, p.AddingReplicas, ids(3))
				eq(t, p.RemovingReplicas, ids(1))
				tp, _ := img.Topic("orders")
				eq(t, tp.Partitions[0], p)
			},
		},
		{name: "adding replica not a replica", setup: base(),
			recs:   []Record{reassigning(partition(topicA, 0, ids(1, 2), ids(1, 2), 1, 0, 1), ids(3), nil)},
			panics: "adding replica 3 is not a replica"},
		{name: "removing replica not a replica", setup: base(),
			recs:   []Record{reassigning(partition(topicA, 0, ids(1, 2), ids(1, 2), 1, 0, 1), nil, ids(3))},
			panics: "removing replica 3 is not a replica"},
		{name: "replica both added and removed", setup: base(),
			recs:   []Record{reassigning(partition(topicA, 0, ids(1, 2, 3), ids(1, 2), 1, 0, 1), ids(3), ids(3))},
			panics: "replica 3 is both being added and removed"},
		{name: "adding replica twice", setup: base(),
			recs:   []Record{reassigning(partition(topicA, 0, ids(1, 2, 3), ids(1, 2), 1, 0, 1), ids(3, 3), nil)},
			panics: "adding replica 3 listed twice"},
		{name: "every replica removed", setup: base(),
			recs:   []Record{reassigning(partition(topicA, 0, ids(1, 2), ids(1, 2), 1, 0, 1), nil, ids(2, 1))},
			panics: "every replica is being removed"},
		{name: "partition epoch must grow", setup: base(), recs: []Record{partition(topicA, 0, ids(1, 2), ids(1), 1, 0, 0)},
			panics: "partition epoch 0 does not follow 0"},
		{name: "leader epoch must not go back", setup: append(base(), partition(topicA, 0, ids(1, 2), ids(1, 2), 2, 5, 1)),
			recs: []Record{partition(topicA, 0, ids(1, 2), ids(1, 2), 2, 4, 2)}, panics: "leader epoch 4 goes back from 5"},
		{name: "new leader needs a new leader epoch", setup: base(),
			recs: []Record{partition(topicA, 0, ids(1, 2), ids(1, 2), 2, 0, 1)}, panics: "leader changes from 1 to 2 without a new leader epoch"},
		{name: "losing the leader needs a new leader epoch", setup: base(),
			recs: []Record{partition(topicA, 0, ids(1, 2), nil, NoLeader, 0, 1)}, panics: "leader changes from 1 to -1"},
		{
			name:  "remove topic takes its partitions and configs",
			setup: append(base(), config(ResourceTopic, "orders", "cleanup.policy", strp("compact")), config(ResourceBroker, "1", "k", strp("v"))),
			recs:  []Record{{RemoveTopic: &RemoveTopicRecord{ID: topicA}}},
			check: func(t *testing.T, img *Image) {
				_, ok := img.Topic("orders")
				eq(t, ok, false)
				_, ok = img.TopicByID(topicA)
				eq(t, ok, false)
				_, ok = img.Partition(topicA, 0)
				eq(t, ok, false)
				eq(t, img.partitions.Len(), 0)
				eq(t, img.Configs(ResourceTopic, "orders"), []ConfigEntry(nil))
				eq(t, img.Configs(ResourceBroker, "1"), []ConfigEntry{{Key: "k", Value: "v"}})
			},
		},
		{
			name:  "a removed topic's name and id can be reused",
			setup: append(base(), Record{RemoveTopic: &RemoveTopicRecord{ID: topicA}}),
			recs:  []Record{{Topic: &TopicRecord{Name: "orders", ID: topicA}}, partition(topicA, 0, ids(1), ids(1), 1, 0, 0)},
			check: func(t *testing.T, img *Image) {
				tp, _ := img.Topic("orders")
				eq(t, len(tp.Partitions), 1)
				eq(t, img.Configs(ResourceTopic, "orders"), []ConfigEntry(nil))
			},
		},
		{name: "remove an unknown topic", setup: base(), recs: []Record{{RemoveTopic: &RemoveTopicRecord{ID: topicB}}},
			panics: "RemoveTopic: unknown topic id"},
		{
			name:  "configs set, replace and delete",
			setup: base(),
			recs: []Record{
				config(ResourceTopic, "orders", "segment.bytes", strp("1")),
				config(ResourceTopic, "orders", "cleanup.policy", strp("delete")),
				config(ResourceTopic, "orders", "segment.bytes", strp("2")),
				config(ResourceTopic, "orders", "retention.ms", nil),
				config(ResourceTopic, "orders", "never.set", nil),
				config(ResourceBroker, "", "log.retention.ms", strp("5")),
				config(ResourceBroker, "9", "x", strp("")),
			},
			check: func(t *testing.T, img *Image) {
				eq(t, img.Configs(ResourceTopic, "orders"), []ConfigEntry{{"cleanup.policy", "delete"}, {"segment.bytes", "2"}})
				eq(t, img.Configs(ResourceBroker, ""), []ConfigEntry{{"log.retention.ms", "5"}})
				v, ok := img.Config(ResourceBroker, "9", "x")
				eq(t, v, "")
				eq(t, ok, true)
				_, ok = img.Config(ResourceTopic, "orders", "retention.ms")
				eq(t, ok, false)
				eq(t, img.Configs(ResourceBroker, "1"), []ConfigEntry(nil))
			},
		},
		{name: "config of an unknown topic", setup: base(), recs: []Record{config(ResourceTopic, "nope", "k", strp("v"))},
			panics: `config "k" of unknown topic "nope"`},
		{name: "config of an unsupported resource", recs: []Record{config(8, "x", "k", strp("v"))},
			panics: "unsupported resource type ResourceType(8)"},
		{name: "empty config key", recs: []Record{config(ResourceBroker, "1", "", strp("v"))}, panics: "empty config key"},
		{
			name: "producer ids move forward",
			recs: []Record{
				{ProducerIDs: &ProducerIDsRecord{Broker: 1, BrokerEpoch: 10, NextProducerID: 1000}},
				{ProducerIDs: &ProducerIDsRecord{Broker: 2, BrokerEpoch: 20, NextProducerID: 2000}},
			},
			check: func(t *testing.T, img *Image) { eq(t, img.NextProducerID(), int64(2000)) },
		},
		{name: "producer ids never go back", recs: []Record{
			{ProducerIDs: &ProducerIDsRecord{NextProducerID: 1000}},
			{ProducerIDs: &ProducerIDsRecord{NextProducerID: 1000}},
		}, panics: "record 1: ProducerIDs: next producer id 1000 does not follow 1000"},
		{name: "record with no field", recs: []Record{{}}, panics: "record sets 0 fields"},
		{name: "record with two fields", recs: []Record{{Cluster: &ClusterRecord{ClusterID: "c"}, RemoveTopic: &RemoveTopicRecord{}}},
			panics: "record sets 2 fields"},
		{name: "empty batch only advances the index", setup: base(), recs: nil,
			check: func(t *testing.T, img *Image) { eq(t, img.AppliedIndex(), uint64(2)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := New()
			img.Apply(1, tc.setup)
			before := img.Snapshot()

			// TryApply must agree with Apply, and leave the image untouched
			// when it refuses.
			tried := img.Clone()
			err := tried.TryApply(2, tc.recs)
			if (err != nil) != (tc.panics != "") {
				t.Fatalf("TryApply: %v", err)
			}
			if err != nil {
				if !errors.Is(err, ErrInvariant) || !strings.Contains(err.Error(), tc.panics) {
					t.Fatalf("TryApply error %q, want ErrInvariant mentioning %q", err, tc.panics)
				}
				eq(t, string(tried.Snapshot()), string(before))
			}

			if tc.panics != "" {
				mustPanic(t, tc.panics, func() { img.Apply(2, tc.recs) })
				return
			}
			img.Apply(2, tc.recs)
			eq(t, img.AppliedIndex(), uint64(2))
			eq(t, string(tried.Snapshot()), string(img.Snapshot()))
			checkInvariants(t, img)
			tc.check(t, img)
		})
	}
}

func TestApplyIndexMustGrow(t *testing.T) {
	img := New()
	img.Apply(5, nil)
	eq(t, img.AppliedIndex(), uint64(5))
	mustPanic(t, "entry 5 is not after applied index 5", func() { img.Apply(5, nil) })
	mustPanic(t, "entry 4 is not after applied index 5", func() { img.Apply(4, nil) })
	img.Apply(9, nil) // gaps are fine: not every Raft entry carries metadata
	eq(t, img.AppliedIndex(), uint64(9))
}

// The image keeps no reference to the caller's slices, and hands out
// copies: changing either side afterwards changes nothing in the image.
func TestImageDoesNotAlias(t *testing.T) {
	recs := base()
	recs[8] = reassigning(partition(topicA, 1, ids(1, 2, 3), ids(2), 2, 0, 0), ids(1), ids(3))
	img := New()
	img.Apply(1, recs)
	want := img.Snapshot()

	recs[1].RegisterBroker.Endpoints[0].Host = "changed"
	recs[7].Partition.Replicas[0] = 99
	recs[7].Partition.ISR[0] = 99
	recs[8].Partition.AddingReplicas[0] = 99
	b, _ := img.Broker(1)
	b.Endpoints[0].Port = 1
	img.Brokers()[0].Endpoints[0].Port = 1
	p, _ := img.Partition(topicA, 0)
	p.Replicas[0], p.ISR[0] = 99, 99
	tp, _ := img.Topic("orders")
	tp.Partitions[0].Replicas[0] = 99
	img.Topics()[0].Partitions[0].ISR[0] = 99
	p, _ = img.Partition(topicA, 1)
	p.AddingReplicas[0], p.RemovingReplicas[0] = 99, 99

	eq(t, string(img.Snapshot()), string(want))
}

func TestCloneIsIndependent(t *testing.T) {
	img := New()
	img.Apply(1, base())
	clone := img.Clone()
	want := img.Snapshot()

	clone.Apply(2, []Record{
		{RemoveTopic: &RemoveTopicRecord{ID: topicA}},
		register(4, 1, ""),
		unfence(3, 30),
		config(ResourceBroker, "", "k", strp("v")),
	})
	eq(t, string(img.Snapshot()), string(want))

	img.Apply(3, []Record{{FenceBroker: &BrokerEpochRecord{ID: 1, Epoch: 10}}})
	if b, _ := clone.Broker(1); b.Fenced {
		t.Fatal("fencing in the original shows in the clone")
	}
	if _, ok := clone.Topic("orders"); ok {
		t.Fatal("the clone's removed topic came back")
	}
}

func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		p := recover()
		if p == nil {
			t.Fatalf("no panic, want one mentioning %q", want)
		}
		msg, _ := p.(string)
		if !strings.Contains(msg, want) {
			t.Fatalf("panic %q, want one mentioning %q", p, want)
		}
	}()
	f()
}

func eq[T any](t tb, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
}

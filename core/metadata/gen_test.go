package metadata

import (
	"fmt"
	"slices"

	"pgregory.net/rapid"

	"github.com/weirmq/weir/core/port"
)

// Generators shared by the property tests.

// anyString draws any bytes, not only valid UTF-8, because the encoding
// must carry strings exactly.
func anyString() *rapid.Generator[string] {
	return rapid.OneOf(
		rapid.String(),
		rapid.Map(rapid.SliceOf(rapid.Byte()), func(b []byte) string { return string(b) }),
	)
}

func anyID() *rapid.Generator[[16]byte] {
	return rapid.Map(rapid.SliceOfN(rapid.Byte(), 16, 16), func(b []byte) (id [16]byte) {
		copy(id[:], b)
		return id
	})
}

func anyNodeID() *rapid.Generator[port.NodeID] {
	return rapid.Map(rapid.Int32(), func(v int32) port.NodeID { return port.NodeID(v) })
}

// orNil makes empty slices nil, as they come out of DecodeBatch.
func orNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// anyRecord draws a structurally valid record with arbitrary field values:
// what EncodeBatch must carry, whether or not it fits an image.
func anyRecord() *rapid.Generator[Record] {
	return rapid.Custom(func(t *rapid.T) Record {
		brokerEpoch := func() *BrokerEpochRecord {
			return &BrokerEpochRecord{ID: anyNodeID().Draw(t, "id"), Epoch: rapid.Int64().Draw(t, "epoch")}
		}
		switch kind(rapid.IntRange(int(kindCluster), int(kindProducerIDs)).Draw(t, "kind")) {
		case kindCluster:
			return Record{Cluster: &ClusterRecord{ClusterID: anyString().Draw(t, "cluster")}}
		case kindRegisterBroker:
			return Record{RegisterBroker: &RegisterBrokerRecord{
				ID:          anyNodeID().Draw(t, "id"),
				Epoch:       rapid.Int64().Draw(t, "epoch"),
				Incarnation: anyString().Draw(t, "incarnation"),
				Endpoints: orNil(rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Endpoint {
					return Endpoint{Listener: anyString().Draw(t, "listener"), Host: anyString().Draw(t, "host"), Port: rapid.Int32().Draw(t, "port")}
				}), 0, 3).Draw(t, "endpoints")),
				Rack:        anyString().Draw(t, "rack"),
				DirectoryID: anyID().Draw(t, "directory id"),
			}}
		case kindUnfenceBroker:
			return Record{UnfenceBroker: brokerEpoch()}
		case kindFenceBroker:
			return Record{FenceBroker: brokerEpoch()}
		case kindShutdownBroker:
			return Record{ShutdownBroker: brokerEpoch()}
		case kindTopic:
			return Record{Topic: &TopicRecord{Name: anyString().Draw(t, "name"), ID: anyID().Draw(t, "topic id")}}
		case kindPartition:
			return Record{Partition: &PartitionRecord{
				TopicID:          anyID().Draw(t, "topic id"),
				Partition:        rapid.Int32().Draw(t, "partition"),
				Replicas:         orNil(rapid.SliceOfN(anyNodeID(), 0, 5).Draw(t, "replicas")),
				ISR:              orNil(rapid.SliceOfN(anyNodeID(), 0, 5).Draw(t, "isr")),
				ELR:              orNil(rapid.SliceOfN(anyNodeID(), 0, 3).Draw(t, "elr")),
				Leader:           anyNodeID().Draw(t, "leader"),
				LeaderEpoch:      rapid.Int32().Draw(t, "leader epoch"),
				PartitionEpoch:   rapid.Int32().Draw(t, "partition epoch"),
				AddingReplicas:   orNil(rapid.SliceOfN(anyNodeID(), 0, 3).Draw(t, "adding")),
				RemovingReplicas: orNil(rapid.SliceOfN(anyNodeID(), 0, 3).Draw(t, "removing")),
			}}
		case kindRemoveTopic:
			return Record{RemoveTopic: &RemoveTopicRecord{ID: anyID().Draw(t, "topic id")}}
		case kindConfig:
			c := &ConfigRecord{
				Resource: ResourceType(rapid.Int8().Draw(t, "resource")),
				Name:     anyString().Draw(t, "name"),
				Key:      anyString().Draw(t, "key"),
			}
			if rapid.Bool().Draw(t, "set") {
				v := anyString().Draw(t, "value")
				c.Value = &v
			}
			return Record{Config: c}
		default:
			return Record{ProducerIDs: &ProducerIDsRecord{
				Broker:         anyNodeID().Draw(t, "broker"),
				BrokerEpoch:    rapid.Int64().Draw(t, "broker epoch"),
				NextProducerID: rapid.Int64().Draw(t, "next producer id"),
			}}
		}
	})
}

// history is a valid sequence of Raft entries of metadata.
type entry struct {
	index uint64
	recs  []Record
}

// drawHistory draws up to maxEntries entries, each valid against the image
// the entries before it build, with gaps in the indexes as non-metadata
// Raft entries leave.
func drawHistory(t *rapid.T, maxEntries int) []entry {
	img := New()
	var h []entry
	n := rapid.IntRange(0, maxEntries).Draw(t, "entries")
	for range n {
		index := img.AppliedIndex() + uint64(rapid.IntRange(1, 3).Draw(t, "index gap"))
		recs := drawBatch(t, img)
		img.Apply(index, recs)
		h = append(h, entry{index: index, recs: recs})
	}
	return h
}

// drawBatch draws a batch that fits img, building it record by record on a
// scratch clone so that later records can depend on earlier ones (a topic,
// then its partitions). img itself is not changed.
func drawBatch(t *rapid.T, img *Image) []Record {
	scratch := img.Clone()
	var recs []Record
	n := rapid.IntRange(0, 5).Draw(t, "records")
	for range n {
		r, ok := drawRecord(t, scratch)
		if !ok {
			continue
		}
		if err := scratch.applyRecord(&r); err != nil {
			t.Fatalf("generator drew a record that does not fit: %v", err)
		}
		recs = append(recs, r)
	}
	return recs
}

var (
	topicNames  = []string{"a", "b", "c", "orders", "payments", "t\x00\xff"}
	configKeys  = []string{"cleanup.policy", "retention.ms", "segment.bytes"}
	brokerNames = []string{"", "0", "1", "2"}
)

func drawRecord(t *rapid.T, img *Image) (Record, bool) {
	brokers := img.Brokers()
	topics := img.Topics()
	switch rapid.IntRange(0, 14).Draw(t, "action") {
	case 0:
		id := img.ClusterID()
		if id == "" {
			id = rapid.StringMatching(`[a-zA-Z0-9]{1,22}`).Draw(t, "cluster id")
		}
		return Record{Cluster: &ClusterRecord{ClusterID: id}}, true
	case 1, 2:
		id := port.NodeID(rapid.IntRange(0, 5).Draw(t, "broker"))
		epoch := rapid.Int64Range(0, 100).Draw(t, "epoch")
		if old, ok := img.Broker(id); ok {
			epoch = old.Epoch + rapid.Int64Range(1, 100).Draw(t, "epoch step")
		}
		var endpoints []Endpoint
		for i := range rapid.IntRange(0, 2).Draw(t, "endpoints") {
			endpoints = append(endpoints, Endpoint{
				Listener: fmt.Sprintf("L%d", i),
				Host:     anyString().Draw(t, "host"),
				Port:     rapid.Int32Range(0, 65535).Draw(t, "port"),
			})
		}
		return Record{RegisterBroker: &RegisterBrokerRecord{
			ID: id, Epoch: epoch, Incarnation: anyString().Draw(t, "incarnation"),
			Endpoints: endpoints, Rack: rapid.SampledFrom([]string{"", "r1", "r2"}).Draw(t, "rack"),
			DirectoryID: rapid.SampledFrom([][16]byte{{}, {1}, {2}}).Draw(t, "directory id"),
		}}, true
	case 3, 4:
		if len(brokers) == 0 {
			return Record{}, false
		}
		b := rapid.SampledFrom(brokers).Draw(t, "broker")
		be := &BrokerEpochRecord{ID: b.ID, Epoch: b.Epoch}
		switch rapid.IntRange(0, 2).Draw(t, "change") {
		case 0:
			return Record{UnfenceBroker: be}, true
		case 1:
			return Record{FenceBroker: be}, true
		default:
			return Record{ShutdownBroker: be}, true
		}
	case 5, 6:
		name := rapid.SampledFrom(topicNames).Draw(t, "topic")
		id := anyID().Draw(t, "topic id")
		if _, exists := img.Topic(name); exists || id == ([16]byte{}) {
			return Record{}, false
		}
		if _, exists := img.TopicByID(id); exists {
			return Record{}, false
		}
		return Record{Topic: &TopicRecord{Name: name, ID: id}}, true
	case 7, 8, 9, 10:
		// A new partition (appended) or a change to an existing one.
		if len(topics) == 0 || len(brokers) == 0 {
			return Record{}, false
		}
		tp := rapid.SampledFrom(topics).Draw(t, "topic")
		p := int32(rapid.IntRange(0, len(tp.Partitions)).Draw(t, "partition"))
		ids := make([]port.NodeID, len(brokers))
		for i, b := range brokers {
			ids[i] = b.ID
		}
		replicas := rapid.Permutation(ids).Draw(t, "replicas")[:rapid.IntRange(1, len(ids)).Draw(t, "rf")]
		isr := orNil(rapid.Permutation(replicas).Draw(t, "isr")[:rapid.IntRange(0, len(replicas)).Draw(t, "isr size")])
		leader := NoLeader
		if len(isr) > 0 && rapid.IntRange(0, 4).Draw(t, "leaderless") > 0 {
			leader = rapid.SampledFrom(isr).Draw(t, "leader")
		}
		rec := &PartitionRecord{TopicID: tp.ID, Partition: p, Replicas: replicas, ISR: isr, Leader: leader}
		for _, r := range replicas {
			if !slices.Contains(isr, r) && rapid.Bool().Draw(t, "eligible") {
				rec.ELR = append(rec.ELR, r)
			}
		}
		if rapid.IntRange(0, 2).Draw(t, "reassigning") == 0 {
			// A reassignment in progress: some replicas being added, some
			// removed, at least one of them neither.
			roles := rapid.SliceOfN(rapid.IntRange(0, 2), len(replicas), len(replicas)).Draw(t, "roles")
			for i, r := range replicas {
				switch {
				case roles[i] == 1:
					rec.AddingReplicas = append(rec.AddingReplicas, r)
				case roles[i] == 2 && i > 0:
					rec.RemovingReplicas = append(rec.RemovingReplicas, r)
				}
			}
		}
		if int(p) < len(tp.Partitions) {
			old := tp.Partitions[p]
			rec.PartitionEpoch = old.PartitionEpoch + rapid.Int32Range(1, 3).Draw(t, "partition epoch step")
			rec.LeaderEpoch = old.LeaderEpoch + rapid.Int32Range(0, 3).Draw(t, "leader epoch step")
			if leader != old.Leader && rec.LeaderEpoch == old.LeaderEpoch {
				rec.LeaderEpoch++
			}
		}
		return Record{Partition: rec}, true
	case 11:
		if len(topics) == 0 || rapid.IntRange(0, 2).Draw(t, "really remove") > 0 {
			return Record{}, false
		}
		return Record{RemoveTopic: &RemoveTopicRecord{ID: rapid.SampledFrom(topics).Draw(t, "topic").ID}}, true
	case 12, 13:
		c := &ConfigRecord{Resource: ResourceBroker, Key: rapid.SampledFrom(configKeys).Draw(t, "key")}
		if len(topics) > 0 && rapid.Bool().Draw(t, "topic config") {
			c.Resource = ResourceTopic
			c.Name = rapid.SampledFrom(topics).Draw(t, "topic").Name
		} else {
			c.Name = rapid.SampledFrom(brokerNames).Draw(t, "broker name")
		}
		if rapid.IntRange(0, 3).Draw(t, "delete") > 0 {
			v := anyString().Draw(t, "value")
			c.Value = &v
		}
		return Record{Config: c}, true
	default:
		next := img.NextProducerID() + rapid.Int64Range(1, 5000).Draw(t, "producer id block")
		return Record{ProducerIDs: &ProducerIDsRecord{Broker: 1, BrokerEpoch: 7, NextProducerID: next}}, true
	}
}

// tb is what the checks need of *testing.T and *rapid.T alike.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// checkInvariants checks what must hold of any image, whatever history
// built it: the query results agree with each other and with the rules
// Apply enforces.
func checkInvariants(t tb, img *Image) {
	t.Helper()
	brokers := img.Brokers()
	if !slices.IsSortedFunc(brokers, func(a, b Broker) int { return int(a.ID) - int(b.ID) }) {
		t.Fatalf("brokers not sorted by id: %v", brokers)
	}
	registered := map[port.NodeID]bool{}
	for _, b := range brokers {
		registered[b.ID] = true
		if got, ok := img.Broker(b.ID); !ok || got.ID != b.ID {
			t.Fatalf("Broker(%d) = %v, %v", b.ID, got, ok)
		}
	}
	topics := img.Topics()
	if len(topics) != img.TopicCount() {
		t.Fatalf("Topics() has %d topics, TopicCount() %d", len(topics), img.TopicCount())
	}
	for i, tp := range topics {
		if i > 0 && topics[i-1].Name >= tp.Name {
			t.Fatalf("topics not sorted by name: %q then %q", topics[i-1].Name, tp.Name)
		}
		byID, ok := img.TopicByID(tp.ID)
		if !ok || byID.Name != tp.Name || len(byID.Partitions) != len(tp.Partitions) {
			t.Fatalf("TopicByID(%x) = %v, %v; want topic %q", tp.ID, byID.Name, ok, tp.Name)
		}
		for p, part := range tp.Partitions {
			got, ok := img.Partition(tp.ID, int32(p))
			if !ok || got.PartitionEpoch != part.PartitionEpoch {
				t.Fatalf("Partition(%q, %d) = %v, %v; want %v", tp.Name, p, got, ok, part)
			}
			for _, r := range part.Replicas {
				if !registered[r] {
					t.Fatalf("%s-%d: replica %d not registered", tp.Name, p, r)
				}
			}
			if part.Leader != NoLeader && !slices.Contains(part.ISR, part.Leader) {
				t.Fatalf("%s-%d: leader %d not in ISR %v", tp.Name, p, part.Leader, part.ISR)
			}
			for _, r := range append(slices.Clone(part.AddingReplicas), part.RemovingReplicas...) {
				if !slices.Contains(part.Replicas, r) {
					t.Fatalf("%s-%d: reassigned replica %d not a replica: %+v", tp.Name, p, r, part)
				}
			}
			for _, r := range part.AddingReplicas {
				if slices.Contains(part.RemovingReplicas, r) {
					t.Fatalf("%s-%d: replica %d both added and removed: %+v", tp.Name, p, r, part)
				}
			}
			if part.Reassigning() != (len(part.AddingReplicas)+len(part.RemovingReplicas) > 0) {
				t.Fatalf("%s-%d: Reassigning() is %v: %+v", tp.Name, p, part.Reassigning(), part)
			}
		}
		if _, ok := img.Partition(tp.ID, int32(len(tp.Partitions))); ok {
			t.Fatalf("%s: Partition finds partition %d beyond the topic's %d", tp.Name, len(tp.Partitions), len(tp.Partitions))
		}
	}
	// Every topic config belongs to a live topic: removal takes them along.
	img.configs.Ascend(func(c configEntry) bool {
		if c.resource == ResourceTopic {
			if _, ok := img.Topic(c.name); !ok {
				t.Fatalf("config %q of removed topic %q survives", c.key, c.name)
			}
		}
		return true
	})
	if img.topicsByID.Len() != img.topicsByName.Len() {
		t.Fatalf("id index has %d topics, name index %d", img.topicsByID.Len(), img.topicsByName.Len())
	}
}

package metadata

import (
	"bytes"
	"cmp"
	"math"
	"slices"

	"github.com/google/btree"

	"github.com/weirmq/weir/core/port"
)

// Broker is one registered broker as the image knows it.
type Broker struct {
	ID          port.NodeID
	Epoch       int64
	Incarnation string
	Endpoints   []Endpoint
	Rack        string
	DirectoryID [16]byte
	// Fenced brokers lead nothing and are not in any ISR the controller
	// writes; a broker is fenced from registration until the controller
	// sees it caught up, and again when it misses heartbeats.
	Fenced bool
	// ShuttingDown brokers are in controlled shutdown: they keep serving
	// while their leaderships move away, and must not be chosen as leader
	// or for new replicas.
	ShuttingDown bool
}

// usable reports whether new replicas and leaderships may go to b.
func (b *Broker) usable() bool { return !b.Fenced && !b.ShuttingDown }

// Topic is one topic with its partitions; Partitions[i] is partition i.
type Topic struct {
	Name       string
	ID         [16]byte
	Partitions []Partition
}

// Partition is the replication state of one partition; see PartitionRecord.
type Partition struct {
	Replicas         []port.NodeID
	ISR              []port.NodeID
	ELR              []port.NodeID
	Leader           port.NodeID
	LeaderEpoch      int32
	PartitionEpoch   int32
	AddingReplicas   []port.NodeID
	RemovingReplicas []port.NodeID
}

// MinISR is the ISR size below which p's leader holds its high watermark
// and the replicas leaving the ISR become eligible leaders (the ELR): the
// topic's min.insync.replicas, at most the number of replicas, so that a
// topic with fewer replicas than that still makes progress.
func (p *Partition) MinISR(minInsyncReplicas int32) int {
	return max(1, min(int(minInsyncReplicas), len(p.Replicas)))
}

// Reassigning reports whether a reassignment of p is in progress.
func (p *Partition) Reassigning() bool {
	return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
}

// ConfigEntry is one config key set on a resource.
type ConfigEntry struct {
	Key   string
	Value string
}

// Image is the cluster metadata after the entries up to AppliedIndex.
//
// Every tree holds values that are never modified in place: a change
// inserts a new value. That is what makes Clone safe (the btrees share
// nodes copy-on-write, and the slices inside the values are shared too) and
// lets queries hand out values without copying the trees.
type Image struct {
	appliedIndex uint64
	clusterID    string
	brokers      *btree.BTreeG[Broker]         // by ID
	topicsByName *btree.BTreeG[topicEntry]     // by name
	topicsByID   *btree.BTreeG[topicEntry]     // by id
	partitions   *btree.BTreeG[partitionEntry] // by topic id, then partition
	configs      *btree.BTreeG[configEntry]    // by resource, name, key
	// nextProducerID is the first producer id not yet handed out.
	nextProducerID int64
}

type topicEntry struct {
	name string
	id   [16]byte
}

type partitionEntry struct {
	topicID   [16]byte
	partition int32
	state     Partition
}

type configEntry struct {
	resource ResourceType
	name     string
	key      string
	value    string
}

// btreeDegree trades node size for depth; 32 keeps a million entries four
// levels deep and a Clone's first write to a path cheap.
const btreeDegree = 32

// New returns the empty image, before the first entry of the log.
func New() *Image {
	return &Image{
		brokers: btree.NewG(btreeDegree, func(a, b Broker) bool { return a.ID < b.ID }),
		topicsByName: btree.NewG(btreeDegree, func(a, b topicEntry) bool {
			return a.name < b.name
		}),
		topicsByID: btree.NewG(btreeDegree, func(a, b topicEntry) bool {
			return bytes.Compare(a.id[:], b.id[:]) < 0
		}),
		partitions: btree.NewG(btreeDegree, func(a, b partitionEntry) bool {
			if c := bytes.Compare(a.topicID[:], b.topicID[:]); c != 0 {
				return c < 0
			}
			return a.partition < b.partition
		}),
		configs: btree.NewG(btreeDegree, func(a, b configEntry) bool {
			return cmp.Or(cmp.Compare(a.resource, b.resource), cmp.Compare(a.name, b.name), cmp.Compare(a.key, b.key)) < 0
		}),
	}
}

// Clone returns an independent copy of the image in O(1): the btrees are
// shared copy-on-write, so later changes to either copy pay for the nodes
// they touch. The controller applies a candidate batch to a clone to see
// its effect before proposing it. Clone writes to img's trees (to mark them
// shared), so it is not safe concurrently with any other use of img.
func (img *Image) Clone() *Image {
	c := *img
	c.brokers = img.brokers.Clone()
	c.topicsByName = img.topicsByName.Clone()
	c.topicsByID = img.topicsByID.Clone()
	c.partitions = img.partitions.Clone()
	c.configs = img.configs.Clone()
	return &c
}

// AppliedIndex is the Raft log index of the last entry applied, 0 for none.
func (img *Image) AppliedIndex() uint64 { return img.appliedIndex }

// ClusterID is the cluster's id, "" until the Cluster record is applied.
func (img *Image) ClusterID() string { return img.clusterID }

// NextProducerID is the first producer id not yet handed out to a broker.
func (img *Image) NextProducerID() int64 { return img.nextProducerID }

// Broker returns a copy of the registration of broker id.
func (img *Image) Broker(id port.NodeID) (Broker, bool) {
	b, ok := img.brokers.Get(Broker{ID: id})
	if !ok {
		return Broker{}, false
	}
	return copyBroker(b), true
}

// Brokers returns copies of all registered brokers, sorted by id.
func (img *Image) Brokers() []Broker {
	out := make([]Broker, 0, img.brokers.Len())
	img.brokers.Ascend(func(b Broker) bool {
		out = append(out, copyBroker(b))
		return true
	})
	return out
}

// Topic returns a copy of the topic called name with its partitions.
func (img *Image) Topic(name string) (Topic, bool) {
	t, ok := img.topicsByName.Get(topicEntry{name: name})
	if !ok {
		return Topic{}, false
	}
	return img.topic(t), true
}

// TopicByID returns a copy of the topic whose id is id.
func (img *Image) TopicByID(id [16]byte) (Topic, bool) {
	t, ok := img.topicsByID.Get(topicEntry{id: id})
	if !ok {
		return Topic{}, false
	}
	return img.topic(t), true
}

// Topics returns copies of all topics, sorted by name.
func (img *Image) Topics() []Topic {
	out := make([]Topic, 0, img.topicsByName.Len())
	img.AscendTopics(func(t Topic) bool {
		out = append(out, t)
		return true
	})
	return out
}

// AscendTopics calls fn with a copy of each topic in name order until fn
// returns false. fn must not change the image.
func (img *Image) AscendTopics(fn func(Topic) bool) {
	img.topicsByName.Ascend(func(t topicEntry) bool { return fn(img.topic(t)) })
}

// TopicCount is the number of topics.
func (img *Image) TopicCount() int { return img.topicsByName.Len() }

// Partition returns a copy of the state of one partition.
func (img *Image) Partition(topicID [16]byte, partition int32) (Partition, bool) {
	p, ok := img.partitions.Get(partitionEntry{topicID: topicID, partition: partition})
	if !ok {
		return Partition{}, false
	}
	return copyPartition(p.state), true
}

// Config returns the value of one config key, if it is set.
func (img *Image) Config(res ResourceType, name, key string) (string, bool) {
	c, ok := img.configs.Get(configEntry{resource: res, name: name, key: key})
	return c.value, ok
}

// Configs returns the config keys set on one resource, sorted by key.
func (img *Image) Configs(res ResourceType, name string) []ConfigEntry {
	var out []ConfigEntry
	img.ascendConfigs(res, name, func(c configEntry) {
		out = append(out, ConfigEntry{Key: c.key, Value: c.value})
	})
	return out
}

func (img *Image) ascendConfigs(res ResourceType, name string, fn func(configEntry)) {
	img.configs.AscendGreaterOrEqual(configEntry{resource: res, name: name}, func(c configEntry) bool {
		if c.resource != res || c.name != name {
			return false
		}
		fn(c)
		return true
	})
}

func (img *Image) topic(t topicEntry) Topic {
	out := Topic{Name: t.name, ID: t.id}
	img.ascendPartitions(t.id, func(p partitionEntry) {
		out.Partitions = append(out.Partitions, copyPartition(p.state))
	})
	return out
}

func (img *Image) ascendPartitions(topicID [16]byte, fn func(partitionEntry)) {
	img.partitions.AscendGreaterOrEqual(partitionEntry{topicID: topicID}, func(p partitionEntry) bool {
		if p.topicID != topicID {
			return false
		}
		fn(p)
		return true
	})
}

// partitionCount is the number of partitions of a topic: they are numbered
// densely from 0, so it is one more than the highest.
func (img *Image) partitionCount(topicID [16]byte) int32 {
	var n int32
	img.partitions.DescendLessOrEqual(partitionEntry{topicID: topicID, partition: math.MaxInt32}, func(p partitionEntry) bool {
		if p.topicID == topicID {
			n = p.partition + 1
		}
		return false
	})
	return n
}

func copyBroker(b Broker) Broker {
	b.Endpoints = slices.Clone(b.Endpoints)
	return b
}

func copyPartition(p Partition) Partition {
	p.Replicas = slices.Clone(p.Replicas)
	p.ISR = slices.Clone(p.ISR)
	p.ELR = slices.Clone(p.ELR)
	p.AddingReplicas = slices.Clone(p.AddingReplicas)
	p.RemovingReplicas = slices.Clone(p.RemovingReplicas)
	return p
}

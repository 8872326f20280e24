package metadata

import (
	"fmt"

	"github.com/weirmq/weir/core/port"
)

// NoLeader is the Leader of a partition that has none (Kafka's -1).
const NoLeader port.NodeID = -1

// ResourceType names the kind of entity a config belongs to, with Kafka's
// ConfigResource type values so that DescribeConfigs and AlterConfigs map
// onto it directly.
type ResourceType int8

const (
	ResourceTopic  ResourceType = 2
	ResourceBroker ResourceType = 4
)

func (r ResourceType) String() string {
	switch r {
	case ResourceTopic:
		return "topic"
	case ResourceBroker:
		return "broker"
	}
	return fmt.Sprintf("ResourceType(%d)", int8(r))
}

// Record is one metadata change. It is a tagged union: exactly one field is
// non-nil. A Raft entry carries a batch of them, applied atomically.
type Record struct {
	Cluster        *ClusterRecord
	RegisterBroker *RegisterBrokerRecord
	UnfenceBroker  *BrokerEpochRecord
	FenceBroker    *BrokerEpochRecord
	ShutdownBroker *BrokerEpochRecord
	Topic          *TopicRecord
	Partition      *PartitionRecord
	RemoveTopic    *RemoveTopicRecord
	Config         *ConfigRecord
	ProducerIDs    *ProducerIDsRecord
}

// ClusterRecord names the cluster. It is written once, when the metadata
// log is formatted; writing a different id later is an invariant violation.
type ClusterRecord struct {
	ClusterID string
}

// RegisterBrokerRecord registers a broker process. A new registration starts
// fenced: the broker serves nothing until the controller unfences it, once
// it has caught up with the metadata log. A re-registration (the broker
// restarted) carries a higher Epoch, replaces the old registration and
// fences the broker again, so that nothing the old process said counts.
type RegisterBrokerRecord struct {
	ID port.NodeID
	// Epoch is the broker epoch; as in KRaft it is the log offset of the
	// registration, so it only grows.
	Epoch int64
	// Incarnation identifies the process (a UUID in Kafka), so that the
	// controller can tell a retried registration from a restart.
	Incarnation string
	Endpoints   []Endpoint
	Rack        string
	// DirectoryID is the directory.id of the broker's log directory (its
	// meta.properties), zero when the broker did not say. A broker that
	// registers again with another id lost its disk: the records it
	// acknowledged are gone, so the controller takes it out of every ISR
	// and ELR.
	DirectoryID [16]byte
}

// Endpoint is one listener a broker advertises to clients and peers.
type Endpoint struct {
	Listener string
	Host     string
	Port     int32
}

// BrokerEpochRecord names one registration of a broker. The Epoch must be
// the broker's current one: a change aimed at an older registration is an
// invariant violation.
type BrokerEpochRecord struct {
	ID    port.NodeID
	Epoch int64
}

// TopicRecord creates a topic with no partitions; PartitionRecords in the
// same batch add them.
type TopicRecord struct {
	Name string
	ID   [16]byte
}

// PartitionRecord carries the full state of one partition, both when it is
// created and on every later change; it replaces the previous state.
// Partitions of a topic are created in order: a new partition's number is
// the topic's current partition count.
type PartitionRecord struct {
	TopicID   [16]byte
	Partition int32
	// Replicas lists the assigned replicas, preferred leader first.
	Replicas []port.NodeID
	// ISR is the in-sync subset of Replicas.
	ISR []port.NodeID
	// ELR is the eligible leader replicas (KIP-966): replicas that left
	// the ISR while it was smaller than the topic's min.insync.replicas.
	// The leader's high watermark stays put while the ISR is that small,
	// so they hold every committed record and may lead when no ISR member
	// can. Disjoint from ISR, a subset of Replicas; empty whenever the ISR
	// is large enough.
	ELR []port.NodeID
	// Leader is a member of ISR, or NoLeader.
	Leader port.NodeID
	// LeaderEpoch grows whenever Leader changes; PartitionEpoch grows on
	// every change, so stale AlterPartition requests can be refused.
	LeaderEpoch    int32
	PartitionEpoch int32
	// AddingReplicas and RemovingReplicas describe a reassignment in
	// progress (KIP-455), as in Kafka's PartitionRecord: Replicas then
	// holds the target replicas followed by those being removed; the
	// replicas being added are the target's that were not replicas
	// before. Both are subsets of Replicas, disjoint, and empty when no
	// reassignment is in progress; at least one replica is not being
	// removed.
	AddingReplicas   []port.NodeID
	RemovingReplicas []port.NodeID
}

// RemoveTopicRecord deletes a topic with its partitions and its configs.
type RemoveTopicRecord struct {
	ID [16]byte
}

// ConfigRecord sets (or, with a nil Value, deletes) one config key of a
// topic or a broker. For ResourceBroker, Name is the broker id in decimal,
// or "" for the cluster-wide default, as in Kafka.
type ConfigRecord struct {
	Resource ResourceType
	Name     string
	Key      string
	Value    *string
}

// ProducerIDsRecord hands a block of producer ids to a broker: every id
// below NextProducerID has been handed out, cluster-wide.
type ProducerIDsRecord struct {
	Broker         port.NodeID
	BrokerEpoch    int64
	NextProducerID int64
}

// kind is the tag of a Record, as written in the encoding. The values are
// part of the on-disk format: never renumber them.
type kind byte

const (
	kindCluster        kind = 1
	kindRegisterBroker kind = 2
	kindUnfenceBroker  kind = 3
	kindFenceBroker    kind = 4
	kindShutdownBroker kind = 5
	kindTopic          kind = 6
	kindPartition      kind = 7
	kindRemoveTopic    kind = 8
	kindConfig         kind = 9
	kindProducerIDs    kind = 10
)

var kindNames = [...]string{
	kindCluster:        "Cluster",
	kindRegisterBroker: "RegisterBroker",
	kindUnfenceBroker:  "UnfenceBroker",
	kindFenceBroker:    "FenceBroker",
	kindShutdownBroker: "ShutdownBroker",
	kindTopic:          "Topic",
	kindPartition:      "Partition",
	kindRemoveTopic:    "RemoveTopic",
	kindConfig:         "Config",
	kindProducerIDs:    "ProducerIDs",
}

func (k kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// kind reports which field of r is set, or an error when none or several
// are: such a Record is a programming error, never valid metadata.
func (r *Record) kind() (kind, error) {
	var k kind
	set := 0
	note := func(isSet bool, which kind) {
		if isSet {
			set++
			k = which
		}
	}
	note(r.Cluster != nil, kindCluster)
	note(r.RegisterBroker != nil, kindRegisterBroker)
	note(r.UnfenceBroker != nil, kindUnfenceBroker)
	note(r.FenceBroker != nil, kindFenceBroker)
	note(r.ShutdownBroker != nil, kindShutdownBroker)
	note(r.Topic != nil, kindTopic)
	note(r.Partition != nil, kindPartition)
	note(r.RemoveTopic != nil, kindRemoveTopic)
	note(r.Config != nil, kindConfig)
	note(r.ProducerIDs != nil, kindProducerIDs)
	if set != 1 {
		return 0, fmt.Errorf("record sets %d fields, exactly one must be set", set)
	}
	return k, nil
}

package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Broker is a validated broker configuration: the typed values the broker
// uses, plus what DescribeConfigs needs to tell set keys from defaults.
// Build one with NewBroker; the zero value is not usable.
type Broker struct {
	// Identity and the metadata quorum.
	NodeID                               int32
	ClusterID                            string // "" unless fixed by cluster.id
	Rack                                 string // "" when broker.rack is not set
	ProcessRoles                         []string
	ControllerQuorumVoters               []Voter
	ControllerQuorumBootstrapServers     []string
	ControllerQuorumElectionTimeoutMs    int32
	ControllerQuorumFetchTimeoutMs       int32
	ControllerQuorumElectionBackoffMaxMs int32
	BrokerHeartbeatIntervalMs            int32
	BrokerSessionTimeoutMs               int32

	// Network.
	Listeners                []Listener
	AdvertisedListeners      []Listener
	InterBrokerListenerName  string
	ControllerListenerNames  []string
	SocketRequestMaxBytes    int32
	SocketSendBufferBytes    int32 // -1: OS default
	SocketReceiveBufferBytes int32 // -1: OS default
	ConnectionsMaxIdleMs     int64

	// Storage.
	LogDirs        []string
	MetadataLogDir string // metadata.log.dir, or the first of LogDirs
	// MetadataSnapshotBytes: metadata.log.max.record.bytes.between.snapshots.
	MetadataSnapshotBytes    int64
	RetentionCheckIntervalMs int64
	FlushSchedulerIntervalMs int64
	LogCleanerEnable         bool
	LogCleanerBackoffMs      int64

	// Topics and partitions.
	NumPartitions                       int32
	DefaultReplicationFactor            int16
	AutoCreateTopics                    bool
	DeleteTopicEnable                   bool
	MessageMaxBytes                     int32
	AutoLeaderRebalanceEnable           bool
	LeaderImbalanceCheckIntervalSeconds int64
	LeaderImbalancePerBrokerPercentage  int32
	// TopicDefaults is the configuration of a topic without overrides,
	// i.e. TopicConfig(nil).
	TopicDefaults Topic

	// Fetching and replication.
	FetchMaxBytes                        int32
	MaxIncrementalFetchSessionCacheSlots int
	ReplicaLagTimeMaxMs                  int64
	ReplicaFetchMaxBytes                 int32
	ReplicaFetchMinBytes                 int32
	ReplicaFetchWaitMaxMs                int32
	ReplicaFetchResponseMaxBytes         int32
	ReplicaFetchBackoffMs                int32

	// Groups and committed offsets. The replication factors of the internal
	// topics are what was asked for; whoever creates them caps them to the
	// number of brokers, which is what lets one node run with the defaults.
	GroupInitialRebalanceDelayMs int32
	GroupMinSessionTimeoutMs     int32
	GroupMaxSessionTimeoutMs     int32
	GroupMaxSize                 int32
	// KIP-848 consumer groups; ConsumerAssignors are short names
	// ("uniform", "range"), the default first.
	GroupConsumerSessionTimeoutMs       int32
	GroupConsumerMinSessionTimeoutMs    int32
	GroupConsumerMaxSessionTimeoutMs    int32
	GroupConsumerHeartbeatIntervalMs    int32
	GroupConsumerMinHeartbeatIntervalMs int32
	GroupConsumerMaxHeartbeatIntervalMs int32
	GroupConsumerMaxSize                int32
	GroupConsumerAssignors              []string
	OffsetsTopicNumPartitions           int32
	OffsetsCommitTimeoutMs              int32
	OffsetsTopicReplicationFactor       int16
	OffsetsTopicSegmentBytes            int32
	OffsetsRetentionMs                  int64 // offsets.retention.minutes, in ms
	OffsetsRetentionCheckIntervalMs     int64
	OffsetMetadataMaxBytes              int32

	// Producers and transactions.
	ProducerIDExpirationMs               int32
	TransactionalIDExpirationMs          int32
	TransactionMaxTimeoutMs              int32
	TransactionStateLogNumPartitions     int32
	TransactionStateLogReplicationFactor int16
	TransactionStateLogMinISR            int32
	TransactionStateLogSegmentBytes      int32

	static map[string]string // keys set explicitly, rendered canonically
	vals   map[string]any    // every broker key's parsed value; nil is null
}

// brokerDefaults holds every broker key's parsed default, computed once.
// Values are shared by all Brokers and must not be modified.
var brokerDefaults = func() map[string]any {
	m := make(map[string]any, len(brokerDefs))
	for i := range brokerDefs {
		m[brokerDefs[i].Name] = defaultValue(&brokerDefs[i])
	}
	return m
}()

// NewBroker validates a broker configuration given as key → value text, as
// read from a server.properties file with command-line flags merged in by
// the caller; every key given counts as STATIC_BROKER_CONFIG in
// DescribeConfigs. Unknown keys do not fail (Kafka only logs them, so files
// written for Kafka load): they come back, sorted, for the caller to warn
// about. A topic key such as retention.ms is unknown here; its broker-wide
// default is the first of TopicDef(key).Synonyms. An error is an *Error
// naming the first bad key in name order.
func NewBroker(values map[string]string) (b *Broker, unknown []string, err error) {
	b = &Broker{static: map[string]string{}, vals: maps.Clone(brokerDefaults)}
	for _, k := range slices.Sorted(maps.Keys(values)) {
		d := brokerByName[k]
		if d == nil {
			unknown = append(unknown, k)
			continue
		}
		v, err := parse(d, values[k])
		if err != nil {
			return nil, unknown, err
		}
		b.vals[k] = v
		b.static[k] = *render(v)
	}
	if err := b.syncNodeID(); err != nil {
		return nil, unknown, err
	}
	if err := b.build(); err != nil {
		return nil, unknown, err
	}
	return b, unknown, nil
}

// syncNodeID makes node.id and its older synonym broker.id agree, as Kafka's
// KafkaConfig.populateSynonyms does: whichever is set is copied to the other,
// and both set must be equal.
func (b *Broker) syncNodeID() error {
	n, nset := b.static["node.id"]
	id, bset := b.static["broker.id"]
	switch {
	case nset && bset && n != id:
		return &Error{Key: "node.id", Msg: fmt.Sprintf("node.id (%s) and its synonym broker.id (%s) must be equal", n, id)}
	case nset:
		b.static["broker.id"], b.vals["broker.id"] = n, b.vals["node.id"]
	case bset:
		b.static["node.id"], b.vals["node.id"] = id, b.vals["broker.id"]
	}
	return nil
}

// Typed access to parsed values. The parser guarantees the dynamic type, and
// the validators the range, so the conversions cannot lose information.
func (b *Broker) num(k string) int64 { n, _ := b.vals[k].(int64); return n }
func (b *Broker) flag(k string) bool { f, _ := b.vals[k].(bool); return f }
func (b *Broker) str(k string) string {
	s, _ := b.vals[k].(string)
	return s
}
func (b *Broker) list(k string) []string { l, _ := b.vals[k].([]string); return slices.Clone(l) }

// build fills the typed fields and checks the rules that tie keys together.
func (b *Broker) build() error {
	b.NodeID = int32(b.num("node.id"))
	b.ClusterID = b.str("cluster.id")
	b.Rack = b.str("broker.rack")
	b.ProcessRoles = b.list("process.roles")
	b.ControllerQuorumVoters, _ = parseVoters(b.list("controller.quorum.voters"))
	b.ControllerQuorumBootstrapServers = b.list("controller.quorum.bootstrap.servers")
	b.ControllerQuorumElectionTimeoutMs = int32(b.num("controller.quorum.election.timeout.ms"))
	b.ControllerQuorumFetchTimeoutMs = int32(b.num("controller.quorum.fetch.timeout.ms"))
	b.ControllerQuorumElectionBackoffMaxMs = int32(b.num("controller.quorum.election.backoff.max.ms"))
	b.BrokerHeartbeatIntervalMs = int32(b.num("broker.heartbeat.interval.ms"))
	b.BrokerSessionTimeoutMs = int32(b.num("broker.session.timeout.ms"))

	b.SocketRequestMaxBytes = int32(b.num("socket.request.max.bytes"))
	b.SocketSendBufferBytes = int32(b.num("socket.send.buffer.bytes"))
	b.SocketReceiveBufferBytes = int32(b.num("socket.receive.buffer.bytes"))
	b.ConnectionsMaxIdleMs = b.num("connections.max.idle.ms")

	b.LogDirs = splitCSV(b.str("log.dirs"))
	if b.vals["log.dirs"] == nil {
		b.LogDirs = []string{b.str("log.dir")}
	}
	b.MetadataLogDir = b.str("metadata.log.dir")
	b.MetadataSnapshotBytes = b.num("metadata.log.max.record.bytes.between.snapshots")
	if b.MetadataLogDir == "" {
		b.MetadataLogDir = b.LogDirs[0]
	}
	b.RetentionCheckIntervalMs = b.num("log.retention.check.interval.ms")
	b.FlushSchedulerIntervalMs = b.num("log.flush.scheduler.interval.ms")
	b.LogCleanerEnable = b.flag("log.cleaner.enable")
	b.LogCleanerBackoffMs = b.num("log.cleaner.backoff.ms")

	b.NumPartitions = int32(b.num("num.partitions"))
	b.DefaultReplicationFactor = int16(b.num("default.replication.factor"))
	b.AutoCreateTopics = b.flag("auto.create.topics.enable")
	b.DeleteTopicEnable = b.flag("delete.topic.enable")
	b.MessageMaxBytes = int32(b.num("message.max.bytes"))
	b.AutoLeaderRebalanceEnable = b.flag("auto.leader.rebalance.enable")
	b.LeaderImbalanceCheckIntervalSeconds = b.num("leader.imbalance.check.interval.seconds")
	b.LeaderImbalancePerBrokerPercentage = int32(b.num("leader.imbalance.per.broker.percentage"))

	b.FetchMaxBytes = int32(b.num("fetch.max.bytes"))
	b.MaxIncrementalFetchSessionCacheSlots = int(b.num("max.incremental.fetch.session.cache.slots"))
	b.ReplicaLagTimeMaxMs = b.num("replica.lag.time.max.ms")
	b.ReplicaFetchMaxBytes = int32(b.num("replica.fetch.max.bytes"))
	b.ReplicaFetchMinBytes = int32(b.num("replica.fetch.min.bytes"))
	b.ReplicaFetchWaitMaxMs = int32(b.num("replica.fetch.wait.max.ms"))
	b.ReplicaFetchResponseMaxBytes = int32(b.num("replica.fetch.response.max.bytes"))
	b.ReplicaFetchBackoffMs = int32(b.num("replica.fetch.backoff.ms"))

	b.GroupInitialRebalanceDelayMs = int32(b.num("group.initial.rebalance.delay.ms"))
	b.GroupMinSessionTimeoutMs = int32(b.num("group.min.session.timeout.ms"))
	b.GroupMaxSessionTimeoutMs = int32(b.num("group.max.session.timeout.ms"))
	b.GroupMaxSize = int32(b.num("group.max.size"))
	b.GroupConsumerSessionTimeoutMs = int32(b.num("group.consumer.session.timeout.ms"))
	b.GroupConsumerMinSessionTimeoutMs = int32(b.num("group.consumer.min.session.timeout.ms"))
	b.GroupConsumerMaxSessionTimeoutMs = int32(b.num("group.consumer.max.session.timeout.ms"))
	b.GroupConsumerHeartbeatIntervalMs = int32(b.num("group.consumer.heartbeat.interval.ms"))
	b.GroupConsumerMinHeartbeatIntervalMs = int32(b.num("group.consumer.min.heartbeat.interval.ms"))
	b.GroupConsumerMaxHeartbeatIntervalMs = int32(b.num("group.consumer.max.heartbeat.interval.ms"))
	b.GroupConsumerMaxSize = int32(b.num("group.consumer.max.size"))
	for _, a := range b.list("group.consumer.assignors") {
		b.GroupConsumerAssignors = append(b.GroupConsumerAssignors, ConsumerAssignorName(a))
	}
	b.OffsetsTopicNumPartitions = int32(b.num("offsets.topic.num.partitions"))
	b.OffsetsCommitTimeoutMs = int32(b.num("offsets.commit.timeout.ms"))
	b.OffsetsTopicReplicationFactor = int16(b.num("offsets.topic.replication.factor"))
	b.OffsetsTopicSegmentBytes = int32(b.num("offsets.topic.segment.bytes"))
	b.OffsetsRetentionMs = b.num("offsets.retention.minutes") * minute
	b.OffsetsRetentionCheckIntervalMs = b.num("offsets.retention.check.interval.ms")
	b.OffsetMetadataMaxBytes = int32(b.num("offset.metadata.max.bytes"))

	b.ProducerIDExpirationMs = int32(b.num("producer.id.expiration.ms"))
	b.TransactionalIDExpirationMs = int32(b.num("transactional.id.expiration.ms"))
	b.TransactionMaxTimeoutMs = int32(b.num("transaction.max.timeout.ms"))
	b.TransactionStateLogNumPartitions = int32(b.num("transaction.state.log.num.partitions"))
	b.TransactionStateLogReplicationFactor = int16(b.num("transaction.state.log.replication.factor"))
	b.TransactionStateLogMinISR = int32(b.num("transaction.state.log.min.isr"))
	b.TransactionStateLogSegmentBytes = int32(b.num("transaction.state.log.segment.bytes"))

	if b.GroupMinSessionTimeoutMs > b.GroupMaxSessionTimeoutMs {
		return &Error{Key: "group.min.session.timeout.ms", Msg: fmt.Sprintf(
			"group.min.session.timeout.ms (%d) must not exceed group.max.session.timeout.ms (%d)", b.GroupMinSessionTimeoutMs, b.GroupMaxSessionTimeoutMs)}
	}
	if err := b.checkConsumerGroupBounds(); err != nil {
		return err
	}
	// A follower whose fetches wait longer than the lag limit would drop
	// out of the ISR while merely idle.
	if int64(b.ReplicaFetchWaitMaxMs) > b.ReplicaLagTimeMaxMs {
		return &Error{Key: "replica.fetch.wait.max.ms", Msg: fmt.Sprintf(
			"replica.fetch.wait.max.ms (%d) must not exceed replica.lag.time.max.ms (%d)", b.ReplicaFetchWaitMaxMs, b.ReplicaLagTimeMaxMs)}
	}
	if err := b.buildListeners(); err != nil {
		return err
	}
	if err := b.checkRoles(); err != nil {
		return err
	}
	t, err := b.TopicConfig(nil)
	if err != nil {
		return err
	}
	b.TopicDefaults = t
	return nil
}

// buildListeners resolves listeners, advertised listeners, their security
// protocols and the inter-broker listener.
func (b *Broker) buildListeners() error {
	b.Listeners, _ = parseListeners(b.str("listeners"))
	b.ControllerListenerNames = splitCSV(strings.ToUpper(b.str("controller.listener.names")))
	protocols, _ := parseProtocolMap(b.str("listener.security.protocol.map"))
	// Like Kafka in KRaft mode: when the map is left at its default, a
	// controller listener it does not name (CONTROLLER) is PLAINTEXT.
	if _, set := b.static["listener.security.protocol.map"]; !set {
		for _, n := range b.ControllerListenerNames {
			if _, ok := protocols[n]; !ok {
				protocols[n] = "PLAINTEXT"
			}
		}
	}
	for i, l := range b.Listeners {
		p, ok := protocols[l.Name]
		if !ok {
			return &Error{Key: "listener.security.protocol.map", Msg: fmt.Sprintf(
				"listener.security.protocol.map has no security protocol for listener %s", l.Name)}
		}
		b.Listeners[i].SecurityProtocol = p
	}

	if b.vals["advertised.listeners"] == nil {
		b.AdvertisedListeners = nil
		for _, l := range b.Listeners {
			if !slices.Contains(b.ControllerListenerNames, l.Name) {
				b.AdvertisedListeners = append(b.AdvertisedListeners, l)
			}
		}
	} else {
		b.AdvertisedListeners, _ = parseListeners(b.str("advertised.listeners"))
		for i, a := range b.AdvertisedListeners {
			j := slices.IndexFunc(b.Listeners, func(l Listener) bool { return l.Name == a.Name })
			if j < 0 {
				return &Error{Key: "advertised.listeners", Msg: fmt.Sprintf(
					"advertised.listeners names %s, which is not in listeners", a.Name)}
			}
			b.AdvertisedListeners[i].SecurityProtocol = b.Listeners[j].SecurityProtocol
		}
	}

	_, nameSet := b.static["inter.broker.listener.name"]
	_, protoSet := b.static["security.inter.broker.protocol"]
	if nameSet && protoSet {
		return &Error{Key: "inter.broker.listener.name", Msg: "only one of inter.broker.listener.name and security.inter.broker.protocol may be set"}
	}
	// A listener named after a protocol uses it by default (PLAINTEXT://...).
	b.InterBrokerListenerName = b.str("security.inter.broker.protocol")
	if nameSet {
		b.InterBrokerListenerName = strings.ToUpper(b.str("inter.broker.listener.name"))
	}
	return nil
}

// checkRoles checks process.roles against the listeners and the quorum.
func (b *Broker) checkRoles() error {
	roleErr := func(key, format string, args ...any) error {
		return &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	roles := b.ProcessRoles
	if len(roles) == 0 {
		return roleErr("process.roles", "process.roles must name broker, controller or both")
	}
	if len(slices.Compact(slices.Sorted(slices.Values(roles)))) != len(roles) {
		return roleErr("process.roles", "process.roles names a role twice")
	}
	isBroker, isController := slices.Contains(roles, "broker"), slices.Contains(roles, "controller")
	quorum := len(b.ControllerQuorumVoters) > 0 || len(b.ControllerQuorumBootstrapServers) > 0

	if isBroker && !slices.ContainsFunc(b.AdvertisedListeners, func(l Listener) bool { return l.Name == b.InterBrokerListenerName }) {
		return roleErr("inter.broker.listener.name", "inter.broker.listener.name: the inter-broker listener %s must be one of the advertised listeners", b.InterBrokerListenerName)
	}
	if !isController && !quorum {
		return roleErr("controller.quorum.voters", "a node without the controller role needs controller.quorum.voters or controller.quorum.bootstrap.servers to find the quorum")
	}
	// A lone combined node is its own quorum and needs no controller
	// listener: that is what lets Weir start with no configuration at all.
	if isController && quorum {
		if len(b.ControllerListenerNames) == 0 {
			return roleErr("controller.listener.names", "controller.listener.names must be set when the node is a controller in a quorum")
		}
		for _, n := range b.ControllerListenerNames {
			if !slices.ContainsFunc(b.Listeners, func(l Listener) bool { return l.Name == n }) {
				return roleErr("controller.listener.names", "controller.listener.names names %s, which is not in listeners", n)
			}
		}
		if len(b.ControllerQuorumVoters) > 0 && !slices.ContainsFunc(b.ControllerQuorumVoters, func(v Voter) bool { return v.ID == b.NodeID }) {
			return roleErr("controller.quorum.voters", "node %d has the controller role but is not in controller.quorum.voters", b.NodeID)
		}
	}
	return nil
}

// IsStatic reports whether key was set explicitly (STATIC_BROKER_CONFIG).
// node.id and broker.id count as set when either was.
func (b *Broker) IsStatic(key string) bool {
	_, ok := b.static[key]
	return ok
}

// Static returns the explicitly set keys with their values rendered as
// Kafka renders them; NewBroker(b.Static()) rebuilds an equal Broker.
func (b *Broker) Static() map[string]string { return maps.Clone(b.static) }

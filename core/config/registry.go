package config

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// Def defines one configuration key.
type Def struct {
	Name string
	Type Type
	// Default is the value used when nothing sets the key, written as Kafka
	// renders it. It is meaningless when Null is set.
	Default string
	// Null marks Kafka's null default: the key has no value unless set,
	// because another key supplies it (log.retention.ms falls back to
	// log.retention.hours) or because it is optional (broker.rack).
	Null bool
	Doc  string
	// Synonyms, for a topic key, are the broker keys that supply its value
	// when the topic does not override it, highest precedence first.
	Synonyms []string

	scale int64     // broker keys in hours or minutes: milliseconds per unit
	valid validator // nil accepts every value of the type
}

const (
	maxLong = "9223372036854775807" // Long.MAX_VALUE: Kafka's "never"
	minute  = 60 * 1000
	hour    = 60 * minute
)

// notApplicable is appended to the documentation of keys that Weir accepts
// so that existing server.properties files load without warnings, but that
// configure machinery Weir does not have (thread pools of a multi-threaded
// broker: Weir's core is one loop, and its drivers size their own pools).
const notApplicable = " Weir: accepted for compatibility, not applicable."

// topicDefs are the per-topic keys (Kafka's TopicConfig / LogConfig). A topic
// key with Synonyms takes its default from the broker; Default is then only
// the value Kafka documents, which the broker defaults reproduce.
var topicDefs = []Def{
	{Name: "cleanup.policy", Type: TypeList, Default: "delete", valid: oneOf("compact", "delete"),
		Synonyms: []string{"log.cleanup.policy"},
		Doc:      "How old segments go: delete (by retention.ms and retention.bytes), compact (keep the latest record per key), or both."},
	{Name: "compression.gzip.level", Type: TypeInt, Default: "-1", valid: gzipLevel,
		Synonyms: []string{"compression.gzip.level"},
		Doc:      "Compression level when compression.type is gzip."},
	{Name: "compression.lz4.level", Type: TypeInt, Default: "9", valid: between(1, 17),
		Synonyms: []string{"compression.lz4.level"},
		Doc:      "Compression level when compression.type is lz4."},
	{Name: "compression.type", Type: TypeString, Default: "producer", valid: oneOf(compressionTypes...),
		Synonyms: []string{"compression.type"},
		Doc:      "Final compression of the topic's batches: producer keeps what the producer sent; otherwise batches are recompressed with this codec."},
	{Name: "compression.zstd.level", Type: TypeInt, Default: "3", valid: between(-131072, 22),
		Synonyms: []string{"compression.zstd.level"},
		Doc:      "Compression level when compression.type is zstd."},
	{Name: "delete.retention.ms", Type: TypeLong, Default: "86400000", valid: atLeast(0),
		Synonyms: []string{"log.cleaner.delete.retention.ms"},
		Doc:      "How long tombstones are kept in a compacted topic; consumers must read the tail within this time to see deletes."},
	{Name: "file.delete.delay.ms", Type: TypeLong, Default: "60000", valid: atLeast(0),
		Synonyms: []string{"log.segment.delete.delay.ms"},
		Doc:      "Time to wait before deleting a file from the filesystem after it left the log."},
	{Name: "flush.messages", Type: TypeLong, Default: "1", valid: atLeast(1),
		Synonyms: []string{"log.flush.interval.messages"},
		Doc:      "Number of messages written before the log is fsynced. Weir: defaults to 1, so every batch is fsynced (with group commit) before it is acknowledged; Kafka's default, 9223372036854775807, restores its page-cache behaviour (acknowledge before fsync, let the OS flush)."},
	{Name: "flush.ms", Type: TypeLong, Default: maxLong, valid: atLeast(0),
		Synonyms: []string{"log.flush.interval.ms", "log.flush.scheduler.interval.ms"},
		Doc:      "Maximum time a message stays in the log before it is fsynced."},
	{Name: "follower.replication.throttled.replicas", Type: TypeList, Default: "", valid: throttledReplicas,
		Doc: "Replicas whose log replication is throttled on the follower side: partitionId:brokerId pairs or *."},
	{Name: "index.interval.bytes", Type: TypeInt, Default: "4096", valid: atLeast(0),
		Synonyms: []string{"log.index.interval.bytes"},
		Doc:      "How many bytes of log are written between two offset index entries."},
	{Name: "leader.replication.throttled.replicas", Type: TypeList, Default: "", valid: throttledReplicas,
		Doc: "Replicas whose log replication is throttled on the leader side: partitionId:brokerId pairs or *."},
	{Name: "local.retention.bytes", Type: TypeLong, Default: "-2", valid: atLeast(-2),
		Synonyms: []string{"log.local.retention.bytes"},
		Doc:      "Tiered storage: bytes kept locally (-2: retention.bytes). Weir has no tiered storage."},
	{Name: "local.retention.ms", Type: TypeLong, Default: "-2", valid: atLeast(-2),
		Synonyms: []string{"log.local.retention.ms"},
		Doc:      "Tiered storage: time data is kept locally (-2: retention.ms). Weir has no tiered storage."},
	{Name: "max.compaction.lag.ms", Type: TypeLong, Default: maxLong, valid: atLeast(1),
		Synonyms: []string{"log.cleaner.max.compaction.lag.ms"},
		Doc:      "Maximum time a record stays ineligible for compaction."},
	{Name: "max.message.bytes", Type: TypeInt, Default: "1048588", valid: atLeast(0),
		Synonyms: []string{"message.max.bytes"},
		Doc:      "Largest record batch size the topic accepts, after compression."},
	{Name: "message.downconversion.enable", Type: TypeBoolean, Default: "true",
		Synonyms: []string{"log.message.downconversion.enable"},
		Doc:      "Deprecated: whether old fetch versions get down-converted batches."},
	{Name: "message.format.version", Type: TypeString, Default: "3.0-IV1",
		Synonyms: []string{"log.message.format.version"},
		Doc:      "Deprecated and ignored: Weir stores message format v2 (magic 2) only."},
	{Name: "message.timestamp.after.max.ms", Type: TypeLong, Default: maxLong, valid: atLeast(0),
		Synonyms: []string{"log.message.timestamp.after.max.ms"},
		Doc:      "How far a CreateTime timestamp may be ahead of the broker's clock; when left at the maximum, message.timestamp.difference.max.ms applies."},
	{Name: "message.timestamp.before.max.ms", Type: TypeLong, Default: maxLong, valid: atLeast(0),
		Synonyms: []string{"log.message.timestamp.before.max.ms"},
		Doc:      "How far a CreateTime timestamp may be behind the broker's clock; when left at the maximum, message.timestamp.difference.max.ms applies."},
	{Name: "message.timestamp.difference.max.ms", Type: TypeLong, Default: maxLong, valid: atLeast(0),
		Synonyms: []string{"log.message.timestamp.difference.max.ms"},
		Doc:      "Deprecated: maximum difference between a CreateTime timestamp and the broker's clock, either way."},
	{Name: "message.timestamp.type", Type: TypeString, Default: "CreateTime", valid: oneOf("CreateTime", "LogAppendTime"),
		Synonyms: []string{"log.message.timestamp.type"},
		Doc:      "Whether record timestamps are the producer's (CreateTime) or the broker's at append (LogAppendTime)."},
	{Name: "min.cleanable.dirty.ratio", Type: TypeDouble, Default: "0.5", valid: ratio,
		Synonyms: []string{"log.cleaner.min.cleanable.ratio"},
		Doc:      "Share of the log that must be uncompacted before the cleaner compacts it."},
	{Name: "min.compaction.lag.ms", Type: TypeLong, Default: "0", valid: atLeast(0),
		Synonyms: []string{"log.cleaner.min.compaction.lag.ms"},
		Doc:      "Minimum time a record stays uncompacted."},
	{Name: "min.insync.replicas", Type: TypeInt, Default: "1", valid: atLeast(1),
		Synonyms: []string{"min.insync.replicas"},
		Doc:      "Minimum number of in-sync replicas that must have a batch before an acks=all produce succeeds (else NOT_ENOUGH_REPLICAS)."},
	{Name: "preallocate", Type: TypeBoolean, Default: "false",
		Synonyms: []string{"log.preallocate"},
		Doc:      "Whether to preallocate segment files on creation."},
	{Name: "remote.log.copy.disable", Type: TypeBoolean, Default: "false",
		Doc: "Tiered storage: stop copying segments to remote storage. Weir has no tiered storage."},
	{Name: "remote.log.delete.on.disable", Type: TypeBoolean, Default: "false",
		Doc: "Tiered storage: delete remote data when tiering is disabled. Weir has no tiered storage."},
	{Name: "remote.storage.enable", Type: TypeBoolean, Default: "false",
		Doc: "Tiered storage for the topic. Weir has no tiered storage: true is rejected."},
	{Name: "retention.bytes", Type: TypeLong, Default: "-1",
		Synonyms: []string{"log.retention.bytes"},
		Doc:      "Maximum size of a partition before old segments are deleted (delete policy); -1: no limit."},
	{Name: "retention.ms", Type: TypeLong, Default: "604800000", valid: atLeast(-1),
		Synonyms: []string{"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
		Doc:      "How long a segment is kept before deletion (delete policy); -1: no limit."},
	{Name: "segment.bytes", Type: TypeInt, Default: "1073741824", valid: atLeast(14),
		Synonyms: []string{"log.segment.bytes"},
		Doc:      "Size at which the active segment is rolled."},
	{Name: "segment.index.bytes", Type: TypeInt, Default: "10485760", valid: atLeast(4),
		Synonyms: []string{"log.index.size.max.bytes"},
		Doc:      "Maximum size of a segment's offset and time indexes."},
	{Name: "segment.jitter.ms", Type: TypeLong, Default: "0", valid: atLeast(0),
		Synonyms: []string{"log.roll.jitter.ms", "log.roll.jitter.hours"},
		Doc:      "Maximum random jitter subtracted from segment.ms, so that segments do not all roll at once."},
	{Name: "segment.ms", Type: TypeLong, Default: "604800000", valid: atLeast(1),
		Synonyms: []string{"log.roll.ms", "log.roll.hours"},
		Doc:      "Age at which the active segment is rolled even if not full, so retention and compaction can act on it."},
	{Name: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false",
		Synonyms: []string{"unclean.leader.election.enable"},
		Doc:      "Whether a replica outside the ISR may become leader as a last resort, at the risk of losing acknowledged data."},
}

var compressionTypes = []string{"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}

var securityProtocols = []string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}

// brokerDefs are the broker keys (Kafka's KafkaConfig, ServerLogConfigs and
// friends) that Weir knows.
var brokerDefs = []Def{
	{Name: "advertised.listeners", Type: TypeString, Null: true, valid: validListeners,
		Doc: "Listeners given to clients in Metadata, if different from listeners; defaults to listeners minus the controller listeners."},
	{Name: "auto.create.topics.enable", Type: TypeBoolean, Default: "true",
		Doc: "Whether Metadata requests for unknown topics create them."},
	{Name: "auto.leader.rebalance.enable", Type: TypeBoolean, Default: "true",
		Doc: "Whether the controller moves leadership back to preferred replicas."},
	{Name: "background.threads", Type: TypeInt, Default: "10", valid: atLeast(1),
		Doc: "Threads for background tasks." + notApplicable},
	{Name: "broker.heartbeat.interval.ms", Type: TypeInt, Default: "2000", valid: atLeast(1),
		Doc: "Interval between broker heartbeats to the controller."},
	{Name: "broker.id", Type: TypeInt, Default: "1", valid: atLeast(0),
		Doc: "Synonym of node.id; if both are set they must be equal. Weir: defaults to 1."},
	{Name: "broker.rack", Type: TypeString, Null: true,
		Doc: "Rack of the broker, used for rack-aware replica placement."},
	{Name: "broker.session.timeout.ms", Type: TypeInt, Default: "9000", valid: atLeast(1),
		Doc: "How long a broker may go without heartbeating before the controller fences it."},
	{Name: "cluster.id", Type: TypeString, Null: true, valid: validClusterID,
		Doc: "Weir extension: fixed cluster id (22-character URL-safe base64 UUID, as from kafka-storage random-uuid); by default one is generated when the log directories are formatted."},
	{Name: "compression.gzip.level", Type: TypeInt, Default: "-1", valid: gzipLevel,
		Doc: "Default for the topic key compression.gzip.level."},
	{Name: "compression.lz4.level", Type: TypeInt, Default: "9", valid: between(1, 17),
		Doc: "Default for the topic key compression.lz4.level."},
	{Name: "compression.type", Type: TypeString, Default: "producer", valid: oneOf(compressionTypes...),
		Doc: "Default for the topic key compression.type."},
	{Name: "compression.zstd.level", Type: TypeInt, Default: "3", valid: between(-131072, 22),
		Doc: "Default for the topic key compression.zstd.level."},
	{Name: "connections.max.idle.ms", Type: TypeLong, Default: "600000",
		Doc: "Idle connections are closed after this time."},
	{Name: "controller.listener.names", Type: TypeString, Null: true, valid: validNames,
		Doc: "Comma-separated names of the listeners used by the controller quorum."},
	{Name: "controller.quorum.bootstrap.servers", Type: TypeList, Default: "", valid: validHostPorts,
		Doc: "host:port list of controllers to discover the metadata quorum from (dynamic quorum, KIP-853)."},
	{Name: "controller.quorum.election.backoff.max.ms", Type: TypeInt, Default: "1000", valid: atLeast(0),
		Doc: "Maximum time before a controller starts a new election."},
	{Name: "controller.quorum.election.timeout.ms", Type: TypeInt, Default: "1000", valid: atLeast(1),
		Doc: "Time without a leader before a controller candidate starts an election."},
	{Name: "controller.quorum.fetch.timeout.ms", Type: TypeInt, Default: "2000", valid: atLeast(1),
		Doc: "Time without a successful fetch from the leader before a voter becomes a candidate."},
	{Name: "controller.quorum.voters", Type: TypeList, Default: "", valid: validVoters,
		Doc: "Static metadata quorum: id@host:port of each voter. Empty on a single node, which is its own quorum."},
	{Name: "default.replication.factor", Type: TypeInt, Default: "1", valid: between(1, math.MaxInt16),
		Doc: "Replication factor of automatically created topics and of CreateTopics requests that leave it to the broker."},
	{Name: "delete.topic.enable", Type: TypeBoolean, Default: "true",
		Doc: "Whether DeleteTopics is allowed."},
	{Name: "fetch.max.bytes", Type: TypeInt, Default: "57671680", valid: atLeast(1024),
		Doc: "Maximum bytes in one fetch response."},
	{Name: "group.consumer.assignors", Type: TypeList, Default: "uniform,range", valid: oneOf(consumerAssignors...),
		Doc: "Server-side assignors of consumer groups (KIP-848), the first the default: uniform or range (or their Kafka class names)."},
	{Name: "group.consumer.heartbeat.interval.ms", Type: TypeInt, Default: "5000", valid: atLeast(1),
		Doc: "How often members of consumer groups (KIP-848) heartbeat."},
	{Name: "group.consumer.max.heartbeat.interval.ms", Type: TypeInt, Default: "15000", valid: atLeast(1),
		Doc: "Upper bound of group.consumer.heartbeat.interval.ms."},
	{Name: "group.consumer.max.session.timeout.ms", Type: TypeInt, Default: "60000", valid: atLeast(1),
		Doc: "Upper bound of group.consumer.session.timeout.ms."},
	{Name: "group.consumer.max.size", Type: TypeInt, Default: "2147483647", valid: atLeast(1),
		Doc: "Maximum number of members in one consumer group (KIP-848)."},
	{Name: "group.consumer.min.heartbeat.interval.ms", Type: TypeInt, Default: "5000", valid: atLeast(1),
		Doc: "Lower bound of group.consumer.heartbeat.interval.ms."},
	{Name: "group.consumer.min.session.timeout.ms", Type: TypeInt, Default: "45000", valid: atLeast(1),
		Doc: "Lower bound of group.consumer.session.timeout.ms."},
	{Name: "group.consumer.session.timeout.ms", Type: TypeInt, Default: "45000", valid: atLeast(1),
		Doc: "Time without a heartbeat after which a member of a consumer group (KIP-848) is removed."},
	{Name: "group.initial.rebalance.delay.ms", Type: TypeInt, Default: "3000", valid: atLeast(0),
		Doc: "How long the coordinator waits for more members before the first rebalance of an empty group."},
	{Name: "group.max.session.timeout.ms", Type: TypeInt, Default: "1800000", valid: atLeast(1),
		Doc: "Largest session timeout a group member may ask for."},
	{Name: "group.max.size", Type: TypeInt, Default: "2147483647", valid: atLeast(1),
		Doc: "Maximum number of members in one consumer group."},
	{Name: "group.min.session.timeout.ms", Type: TypeInt, Default: "6000", valid: atLeast(0),
		Doc: "Smallest session timeout a group member may ask for."},
	{Name: "inter.broker.listener.name", Type: TypeString, Null: true,
		Doc: "Listener brokers use to talk to each other; defaults to the one named after security.inter.broker.protocol."},
	{Name: "leader.imbalance.check.interval.seconds", Type: TypeLong, Default: "300", valid: atLeast(1),
		Doc: "How often the controller checks for leader imbalance."},
	{Name: "leader.imbalance.per.broker.percentage", Type: TypeInt, Default: "10", valid: atLeast(0),
		Doc: "Leader imbalance per broker, in percent, that triggers a rebalance."},
	{Name: "listener.security.protocol.map", Type: TypeString, Default: defaultProtocolMap, valid: validProtocolMap,
		Doc: "Security protocol of each listener name, as NAME:PROTOCOL pairs."},
	{Name: "listeners", Type: TypeString, Default: "PLAINTEXT://127.0.0.1:9092", valid: validListeners,
		Doc: "Comma-separated NAME://host:port addresses to listen on; an empty host binds all interfaces. Weir: defaults to PLAINTEXT://127.0.0.1:9092, a local development broker."},
	{Name: "log.cleaner.backoff.ms", Type: TypeLong, Default: "15000", valid: atLeast(0),
		Doc: "Sleep time of the cleaner when there is nothing to compact."},
	{Name: "log.cleaner.delete.retention.ms", Type: TypeLong, Default: "86400000", valid: atLeast(0),
		Doc: "Default for the topic key delete.retention.ms."},
	{Name: "log.cleaner.enable", Type: TypeBoolean, Default: "true",
		Doc: "Whether the log cleaner (compaction) runs."},
	{Name: "log.cleaner.max.compaction.lag.ms", Type: TypeLong, Default: maxLong, valid: atLeast(1),
		Doc: "Default for the topic key max.compaction.lag.ms."},
	{Name: "log.cleaner.min.cleanable.ratio", Type: TypeDouble, Default: "0.5", valid: ratio,
		Doc: "Default for the topic key min.cleanable.dirty.ratio."},
	{Name: "log.cleaner.min.compaction.lag.ms", Type: TypeLong, Default: "0", valid: atLeast(0),
		Doc: "Default for the topic key min.compaction.lag.ms."},
	{Name: "log.cleaner.threads", Type: TypeInt, Default: "1", valid: atLeast(0),
		Doc: "Threads of the log cleaner." + notApplicable},
	{Name: "log.cleanup.policy", Type: TypeList, Default: "delete", valid: oneOf("compact", "delete"),
		Doc: "Default for the topic key cleanup.policy."},
	{Name: "log.dir", Type: TypeString, Default: "./weir-data", valid: nonEmpty,
		Doc: "Directory of the log data, used when log.dirs is not set. Weir: defaults to ./weir-data."},
	{Name: "log.dirs", Type: TypeString, Null: true, valid: validDirs,
		Doc: "Comma-separated directories of the log data; overrides log.dir."},
	{Name: "log.flush.interval.messages", Type: TypeLong, Default: "1", valid: atLeast(1),
		Doc: "Default for the topic key flush.messages. Weir: defaults to 1, fsync before acknowledging; 9223372036854775807 (Kafka's default) restores Kafka's page-cache behaviour."},
	{Name: "log.flush.interval.ms", Type: TypeLong, Null: true, valid: atLeast(0),
		Doc: "Default for the topic key flush.ms; if not set, log.flush.scheduler.interval.ms is used."},
	{Name: "log.flush.scheduler.interval.ms", Type: TypeLong, Default: maxLong, valid: atLeast(0),
		Doc: "How often the flusher checks whether a log needs an fsync by time; the fallback for log.flush.interval.ms."},
	{Name: "log.index.interval.bytes", Type: TypeInt, Default: "4096", valid: atLeast(0),
		Doc: "Default for the topic key index.interval.bytes."},
	{Name: "log.index.size.max.bytes", Type: TypeInt, Default: "10485760", valid: atLeast(4),
		Doc: "Default for the topic key segment.index.bytes."},
	{Name: "log.local.retention.bytes", Type: TypeLong, Default: "-2", valid: atLeast(-2),
		Doc: "Default for the topic key local.retention.bytes."},
	{Name: "log.local.retention.ms", Type: TypeLong, Default: "-2", valid: atLeast(-2),
		Doc: "Default for the topic key local.retention.ms."},
	{Name: "log.message.downconversion.enable", Type: TypeBoolean, Default: "true",
		Doc: "Default for the topic key message.downconversion.enable."},
	{Name: "log.message.format.version", Type: TypeString, Default: "3.0-IV1",
		Doc: "Default for the topic key message.format.version (ignored)."},
	{Name: "log.message.timestamp.after.max.ms", Type: TypeLong, Default: maxLong, valid: atLeast(0),
		Doc: "Default for the topic key message.timestamp.after.max.ms."},
	{Name: "log.message.timestamp.before.max.ms", Type: TypeLong, Default: maxLong, valid: atLeast(0),
		Doc: "Default for the topic key message.timestamp.before.max.ms."},
	{Name: "log.message.timestamp.difference.max.ms", Type: TypeLong, Default: maxLong, valid: atLeast(0),
		Doc: "Default for the topic key message.timestamp.difference.max.ms."},
	{Name: "log.message.timestamp.type", Type: TypeString, Default: "CreateTime", valid: oneOf("CreateTime", "LogAppendTime"),
		Doc: "Default for the topic key message.timestamp.type."},
	{Name: "log.preallocate", Type: TypeBoolean, Default: "false",
		Doc: "Default for the topic key preallocate."},
	{Name: "log.retention.bytes", Type: TypeLong, Default: "-1",
		Doc: "Default for the topic key retention.bytes."},
	{Name: "log.retention.check.interval.ms", Type: TypeLong, Default: "300000", valid: atLeast(1),
		Doc: "How often logs are checked for segments to delete under the retention policies."},
	{Name: "log.retention.hours", Type: TypeInt, Default: "168", scale: hour,
		Doc: "Default for the topic key retention.ms, in hours; log.retention.minutes and log.retention.ms take precedence. Negative: no limit."},
	{Name: "log.retention.minutes", Type: TypeInt, Null: true, scale: minute,
		Doc: "Default for the topic key retention.ms, in minutes; log.retention.ms takes precedence. Negative: no limit."},
	{Name: "log.retention.ms", Type: TypeLong, Null: true, valid: atLeast(-1),
		Doc: "Default for the topic key retention.ms; -1: no limit."},
	{Name: "log.roll.hours", Type: TypeInt, Default: "168", valid: atLeast(1), scale: hour,
		Doc: "Default for the topic key segment.ms, in hours; log.roll.ms takes precedence."},
	{Name: "log.roll.jitter.hours", Type: TypeInt, Default: "0", valid: atLeast(0), scale: hour,
		Doc: "Default for the topic key segment.jitter.ms, in hours; log.roll.jitter.ms takes precedence."},
	{Name: "log.roll.jitter.ms", Type: TypeLong, Null: true, valid: atLeast(0),
		Doc: "Default for the topic key segment.jitter.ms."},
	{Name: "log.roll.ms", Type: TypeLong, Null: true, valid: atLeast(1),
		Doc: "Default for the topic key segment.ms."},
	{Name: "log.segment.bytes", Type: TypeInt, Default: "1073741824", valid: atLeast(14),
		Doc: "Default for the topic key segment.bytes."},
	{Name: "log.segment.delete.delay.ms", Type: TypeLong, Default: "60000", valid: atLeast(0),
		Doc: "Default for the topic key file.delete.delay.ms."},
	{Name: "max.incremental.fetch.session.cache.slots", Type: TypeInt, Default: "1000", valid: atLeast(0),
		Doc: "Maximum number of incremental fetch sessions (KIP-227) the broker keeps."},
	{Name: "message.max.bytes", Type: TypeInt, Default: "1048588", valid: atLeast(0),
		Doc: "Default for the topic key max.message.bytes: the largest record batch accepted."},
	{Name: "metadata.log.dir", Type: TypeString, Null: true,
		Doc: "Directory of the metadata log; defaults to the first of log.dirs."},
	{Name: "metadata.log.max.record.bytes.between.snapshots", Type: TypeLong, Default: "20971520", valid: atLeast(1),
		Doc: "How many bytes of metadata log since the last snapshot make the node take a new one and drop the log before it."},
	{Name: "min.insync.replicas", Type: TypeInt, Default: "1", valid: atLeast(1),
		Doc: "Default for the topic key min.insync.replicas."},
	{Name: "node.id", Type: TypeInt, Default: "1", valid: atLeast(0),
		Doc: "Id of this node in the cluster. Weir: defaults to 1."},
	{Name: "num.io.threads", Type: TypeInt, Default: "8", valid: atLeast(1),
		Doc: "Threads processing requests." + notApplicable},
	{Name: "num.network.threads", Type: TypeInt, Default: "3", valid: atLeast(1),
		Doc: "Threads reading and writing the network." + notApplicable},
	{Name: "num.partitions", Type: TypeInt, Default: "1", valid: atLeast(1),
		Doc: "Partition count of automatically created topics and of CreateTopics requests that leave it to the broker."},
	{Name: "num.recovery.threads.per.data.dir", Type: TypeInt, Default: "1", valid: atLeast(1),
		Doc: "Threads per log directory for recovery at startup." + notApplicable},
	{Name: "num.replica.fetchers", Type: TypeInt, Default: "1", valid: atLeast(1),
		Doc: "Fetcher threads per source broker." + notApplicable},
	{Name: "offset.metadata.max.bytes", Type: TypeInt, Default: "4096", valid: atLeast(0),
		Doc: "Maximum size of the metadata string of an offset commit."},
	{Name: "offsets.commit.timeout.ms", Type: TypeInt, Default: "5000", valid: atLeast(1),
		Doc: "How long an offset commit (or a group's stored generation) may wait for its write to __consumer_offsets to be replicated."},
	{Name: "offsets.retention.check.interval.ms", Type: TypeLong, Default: "600000", valid: atLeast(1),
		Doc: "How often expired committed offsets are removed."},
	{Name: "offsets.retention.minutes", Type: TypeInt, Default: "10080", valid: atLeast(1),
		Doc: "How long committed offsets of an empty group are kept."},
	{Name: "offsets.topic.num.partitions", Type: TypeInt, Default: "50", valid: atLeast(1),
		Doc: "Partition count of __consumer_offsets (fixed once created)."},
	{Name: "offsets.topic.replication.factor", Type: TypeShort, Default: "3", valid: atLeast(1),
		Doc: "Replication factor of __consumer_offsets. Weir: capped to the number of brokers when the topic is created, so a single node works unchanged."},
	{Name: "offsets.topic.segment.bytes", Type: TypeInt, Default: "104857600", valid: atLeast(1),
		Doc: "Segment size of __consumer_offsets."},
	{Name: "process.roles", Type: TypeList, Default: "broker,controller", valid: oneOf("broker", "controller"),
		Doc: "Roles of this node: broker, controller, or both. Weir: defaults to both."},
	{Name: "producer.id.expiration.ms", Type: TypeInt, Default: "86400000", valid: atLeast(1),
		Doc: "How long an idle producer id's state is kept."},
	{Name: "queued.max.requests", Type: TypeInt, Default: "500", valid: atLeast(1),
		Doc: "Requests queued before the network threads block." + notApplicable},
	{Name: "replica.fetch.backoff.ms", Type: TypeInt, Default: "1000", valid: atLeast(0),
		Doc: "Pause of a follower after a fetch error."},
	{Name: "replica.fetch.max.bytes", Type: TypeInt, Default: "1048576", valid: atLeast(0),
		Doc: "Bytes per partition a follower asks for in one fetch."},
	{Name: "replica.fetch.min.bytes", Type: TypeInt, Default: "1",
		Doc: "Minimum bytes a follower's fetch waits for."},
	{Name: "replica.fetch.response.max.bytes", Type: TypeInt, Default: "10485760", valid: atLeast(0),
		Doc: "Bytes a follower asks for in one whole fetch."},
	{Name: "replica.fetch.wait.max.ms", Type: TypeInt, Default: "500",
		Doc: "Maximum wait of a follower's fetch; must be below replica.lag.time.max.ms."},
	{Name: "replica.lag.time.max.ms", Type: TypeLong, Default: "30000",
		Doc: "A follower that has not caught up with the leader for this long is removed from the ISR."},
	{Name: "security.inter.broker.protocol", Type: TypeString, Default: "PLAINTEXT", valid: oneOf(securityProtocols...),
		Doc: "Security protocol between brokers, when inter.broker.listener.name is not set."},
	{Name: "socket.receive.buffer.bytes", Type: TypeInt, Default: "102400",
		Doc: "SO_RCVBUF of the sockets; -1: the OS default."},
	{Name: "socket.request.max.bytes", Type: TypeInt, Default: "104857600", valid: atLeast(1),
		Doc: "Largest request the broker reads; larger ones close the connection."},
	{Name: "socket.send.buffer.bytes", Type: TypeInt, Default: "102400",
		Doc: "SO_SNDBUF of the sockets; -1: the OS default."},
	{Name: "transaction.max.timeout.ms", Type: TypeInt, Default: "900000", valid: atLeast(1),
		Doc: "Largest transaction timeout a producer may ask for."},
	{Name: "transaction.state.log.min.isr", Type: TypeInt, Default: "2", valid: atLeast(1),
		Doc: "min.insync.replicas of __transaction_state. Weir: capped like its replication factor."},
	{Name: "transaction.state.log.num.partitions", Type: TypeInt, Default: "50", valid: atLeast(1),
		Doc: "Partition count of __transaction_state (fixed once created)."},
	{Name: "transaction.state.log.replication.factor", Type: TypeShort, Default: "3", valid: atLeast(1),
		Doc: "Replication factor of __transaction_state. Weir: capped to the number of brokers when the topic is created."},
	{Name: "transaction.state.log.segment.bytes", Type: TypeInt, Default: "104857600", valid: atLeast(1),
		Doc: "Segment size of __transaction_state."},
	{Name: "transactional.id.expiration.ms", Type: TypeInt, Default: "604800000", valid: atLeast(1),
		Doc: "How long an idle transactional id is kept."},
	{Name: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false",
		Doc: "Default for the topic key unclean.leader.election.enable."},
}

const defaultProtocolMap = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"

// brokerSynonyms are the broker keys DescribeConfigs reports as synonyms of
// one another (Kafka's DynamicBrokerConfig.brokerConfigSynonyms): every key
// of a ms/minutes/hours family lists the whole family, so describing
// log.retention.hours shows that log.retention.ms overrides it. The flush
// scheduler interval is only the fallback of log.flush.interval.ms, not the
// other way round. Other keys are their own only synonym.
var brokerSynonyms = map[string][]string{
	"log.roll.ms":           {"log.roll.ms", "log.roll.hours"},
	"log.roll.hours":        {"log.roll.ms", "log.roll.hours"},
	"log.roll.jitter.ms":    {"log.roll.jitter.ms", "log.roll.jitter.hours"},
	"log.roll.jitter.hours": {"log.roll.jitter.ms", "log.roll.jitter.hours"},
	"log.retention.ms":      {"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
	"log.retention.minutes": {"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
	"log.retention.hours":   {"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
	"log.flush.interval.ms": {"log.flush.interval.ms", "log.flush.scheduler.interval.ms"},
}

// The lookup tables, and the defaults parsed once. A default that fails to
// parse is a bug in the tables above; a test parses them all.
var (
	topicByName  = index(topicDefs)
	brokerByName = index(brokerDefs)
)

func index(defs []Def) map[string]*Def {
	slices.SortFunc(defs, func(a, b Def) int { return strings.Compare(a.Name, b.Name) })
	m := make(map[string]*Def, len(defs))
	for i := range defs {
		m[defs[i].Name] = &defs[i]
	}
	return m
}

// defaultValue is d's parsed default, nil for a null default.
func defaultValue(d *Def) any {
	if d.Null {
		return nil
	}
	v, err := parse(d, d.Default)
	if err != nil {
		panic("config: bad default for " + d.Name + ": " + err.Error())
	}
	return v
}

// TopicDef returns the definition of a topic key.
func TopicDef(name string) (Def, bool) { return lookup(topicByName, name) }

// BrokerDef returns the definition of a broker key.
func BrokerDef(name string) (Def, bool) { return lookup(brokerByName, name) }

func lookup(m map[string]*Def, name string) (Def, bool) {
	d, ok := m[name]
	if !ok {
		return Def{}, false
	}
	c := *d
	c.Synonyms = slices.Clone(d.Synonyms)
	return c, true
}

// TopicDefs returns every topic key's definition, sorted by name.
func TopicDefs() []Def { return cloneDefs(topicDefs) }

// BrokerDefs returns every broker key's definition, sorted by name.
func BrokerDefs() []Def { return cloneDefs(brokerDefs) }

func cloneDefs(defs []Def) []Def {
	out := make([]Def, len(defs))
	for i, d := range defs {
		out[i] = d
		out[i].Synonyms = slices.Clone(d.Synonyms)
	}
	return out
}

// Validate parses value as d would be parsed from a properties file or a
// request, and reports whether it is acceptable.
func (d Def) Validate(value string) error {
	_, err := parse(&d, value)
	return err
}

// scaleToMs converts a broker value in d's unit to the milliseconds of its
// topic key. A negative retention in hours or minutes means "no limit" in
// Kafka, which the topic key spells -1; multiplying would not.
func scaleToMs(d *Def, v any) any {
	n, ok := v.(int64)
	if !ok || d.scale == 0 {
		return v
	}
	if n < 0 {
		return int64(-1)
	}
	return n * d.scale
}

// itoa is strconv.Itoa for the int32/int64 values in messages.
func itoa[T ~int32 | ~int64 | ~int](n T) string { return strconv.FormatInt(int64(n), 10) }

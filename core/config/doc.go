// Package config is Weir's Kafka-compatible configuration: the broker's
// server.properties keys and the per-topic keys, with Apache Kafka's names,
// types, defaults, valid ranges and synonyms, so that existing configuration
// files, admin tools and DescribeConfigs clients work unchanged.
//
// Contract:
//
//   - ParseProperties reads the java.util.Properties text format and
//     FormatProperties writes it; the two round-trip.
//   - NewBroker validates broker keys, given as text (file and flags merged
//     by the caller), into a Broker with typed fields. Every key given is a
//     static broker config; every other key has its default. A bad value is
//     an *Error naming the key; unknown keys are returned for the caller to
//     warn about, as Kafka only logs them, so that files written for Kafka
//     load.
//   - (*Broker).TopicConfig turns a topic's overrides into a Topic: each key
//     is the override if set, else the broker value of its highest-precedence
//     broker synonym that is set (retention.ms ← log.retention.ms ←
//     log.retention.minutes ← log.retention.hours), else that synonym chain's
//     default. An unknown or bad key is an *Error, answered INVALID_CONFIG.
//   - DescribeTopic and DescribeBroker report values, sources (topic
//     override, static broker config, default) and synonyms as Kafka's
//     DescribeConfigs does, sorted by name. The value and its reported source
//     come from the same synonym chain, so they cannot disagree.
//   - The package is pure: no I/O, no clock, no randomness, and no map
//     iteration reaches an output (keys are sorted).
//
// Differences from Apache Kafka, each on purpose:
//
//   - Durability: log.flush.interval.messages and the topic key
//     flush.messages default to 1, so a batch is fsynced before it is
//     acknowledged (group commit keeps that cheap). Setting them to
//     9223372036854775807, Kafka's default, restores Kafka's page-cache
//     behaviour.
//   - A zero-configuration node works: node.id defaults to 1, process.roles
//     to broker,controller, listeners to PLAINTEXT://127.0.0.1:9092, log.dir
//     to ./weir-data, and a controller with no quorum configured is its own
//     single-voter quorum, needing no controller listener. The replication
//     factors of the internal topics keep Kafka's default of 3; whoever
//     creates those topics caps them to the number of brokers.
//   - cluster.id is an extension: an optional fixed cluster id.
//   - Broker keys cannot change at run time, so DescribeBroker marks them
//     all read-only and the only sources are static and default.
//   - Thread-pool keys (num.io.threads, num.network.threads, ...) are
//     accepted and documented as not applicable; tiered-storage topic keys
//     are accepted, and remote.storage.enable=true is rejected.
//   - Defaults and ranges are Kafka 3.x's, where 4.0 changed them: the
//     deprecated message.timestamp.difference.max.ms, message.format.version
//     and message.downconversion.enable are still accepted, and segment.bytes
//     may be as small as 14 bytes, which tests use to roll segments quickly.
package config

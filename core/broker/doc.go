// Package broker is a Weir node as a deterministic state machine: it takes
// decoded Kafka requests, connection events, disk completions and wake-ups
// (core/port inputs) and returns responses to send and disk operations to
// perform (core/port effects). It owns topics, partition logs, the
// produce purgatory, long-polling fetches and fetch sessions, its replica
// of the metadata log (cluster.go), its life as a registered broker
// (lifecycle.go), and partition replication: the leader's side in
// replicate.go, the follower's in follow.go.
//
// One file per Kafka API key handles that request (00_produce.go,
// 01_fetch.go, ...); each file's header lists the versions served and any
// deliberate difference from Apache Kafka.
//
// Contract:
//   - A produce with acks=1 is answered only once its batch is stable on
//     the leader (fsynced, unless the topic chose Kafka's page-cache
//     behaviour with flush.messages > 1), with acks=-1 only once it is
//     below the high watermark: stable on every ISR member. A fetch
//     returns only data below the high watermark.
//   - A follower reports to its leader only offsets it has durably; a
//     leader serves only while its lease from the controller holds, and
//     advances its high watermark only while its ISR has
//     min.insync.replicas members (at most the replica count).
//   - The log directory's meta.properties names it (directory.id) from its
//     first boot on, and the broker registers with that id.
//   - A topic exists for clients only once its metadata is durable, so a
//     record can never be acknowledged into a topic a crash would forget.
//   - Responses on a connection leave in request order, as Kafka clients
//     require, however the requests complete.
//   - A failed disk operation takes the log directory offline: every
//     partition then answers KAFKA_STORAGE_ERROR; nothing is retried or
//     guessed.
//   - No map iteration order reaches an output: names are kept sorted.
package broker

// Package workload is the simulated clients: idempotent and plain
// producers, consumers (sessionless and with KIP-227 fetch sessions, long
// polls, seeks), an admin client (create and delete topics, add
// partitions, metadata), an operator reassigning the data partitions'
// replicas in cluster runs (reassigner), classic consumer group members (join, sync,
// heartbeat, leave, commit and fetch offsets; they also crash silently),
// the liveness prober and the final reader.
//
// They speak the real protocol through the real codec: each request is a
// kmsg request encoded by wire.AppendRequest, sent as one frame over the
// simulated network, and each response frame is decoded by
// wire.ParseResponse and matched to its request by correlation id, in
// order, as Kafka clients do. Record batches are built with record.Build
// and read back with record.Records, which checks their CRC.
//
// In a cluster run each client keeps one connection per node and sends
// every request for a partition to its leader, learned from Metadata and
// sent its leader epoch, refreshing the metadata after a leader error or a
// lost connection (see router); requests for no partition go to any
// broker, and a consumer group member's to the coordinator FindCoordinator
// names (see member).
//
// Every value a producer sends is unique in the run ("p3-17": producer 3's
// 17th record), so checkers can follow each record. An idempotent producer
// retries a batch with the same sequence number until it learns the
// outcome, as real clients do, so the broker's deduplication is exercised;
// a plain producer never resends a value, so any duplicate is a bug.
package workload

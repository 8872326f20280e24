// Package metadata holds the cluster metadata that the Raft metadata log
// carries, as in Apache Kafka's KRaft: the records the active controller
// writes, the Image every node replays them into, and the replica placement
// the controller uses when it creates partitions.
//
// Contract:
//   - One Raft entry carries one batch of Records, encoded by EncodeBatch and
//     applied atomically by Image.Apply, so that a change spanning several
//     records (a topic and all its partitions, a fenced broker and the
//     partitions that lose it as leader) is never seen half done.
//   - Records are facts, not requests. Only the controller writes them, after
//     checking them against its own image, so Apply treats an inconsistent
//     record (a partition of an unknown topic, a stale broker epoch, an epoch
//     that goes backwards) as a broken invariant and panics. TryApply applies
//     the same rules but returns the violation and leaves the image
//     untouched; the controller uses it, on the image or a Clone, to check a
//     batch before it proposes it, so the rules live in one place.
//   - Every node that applies the same entries in the same order holds the
//     same image, byte for byte: the image keeps brokers, topics, partitions
//     and configs in btrees ordered by key, never iterates a map, and Snapshot
//     writes it in that order. FromSnapshot followed by the remaining entries
//     gives the same bytes as replaying the whole log.
//   - Bytes from disk or the network are input, not invariants: DecodeBatch
//     and FromSnapshot return an error on any malformed or inconsistent
//     input and never panic.
//   - The image is not safe for concurrent use; even Clone writes to the
//     receiver (it marks the btrees copy-on-write). Values returned by
//     queries are copies the caller owns.
//
// The encoding is a version byte followed by a compact binary form of each
// record (varints, length-prefixed strings), rather than JSON, so that any
// string, valid UTF-8 or not, survives a round trip unchanged and every byte
// of an entry is accounted for. A change to a record's fields raises the
// version (see batchVersion); EncodeBatch writes the oldest version that
// carries a batch, DecodeBatch reads every version ever written. A snapshot is a version byte, the applied
// index and a batch of records that rebuilds the image, the way a KRaft
// snapshot is a list of records; FromSnapshot replays it with the same
// checks as Apply.
//
// Place assigns replicas to new partitions the way Kafka's controller aims
// to: distinct brokers per partition, replicas spread evenly across racks,
// and replica and preferred-leader counts balanced across the usable
// brokers, deterministically.
package metadata

// Package partlog is one partition's log as a pure state machine: segments
// named by base offset, a dense in-memory index of batch positions, Kafka's
// sparse .index and .timeindex files, group commit, rolling, retention,
// crash recovery, and the idempotent-producer state that lives with the log.
//
// partlog never touches a disk. It returns the disk operations it needs
// (port.DiskOp without an ID; the caller numbers and issues them, all on the
// log's lane so they run in order) and is told when they finish. Readers are
// given file ranges to send, never bytes.
//
// Offsets it tracks, in order: StartOffset ≤ DurableOffset ≤ WrittenOffset ≤
// EndOffset. EndOffset is the next offset to assign; WrittenOffset is the end
// of the writes the disk has completed (readable); DurableOffset is the end of
// what a completed fsync covers. With flush.messages=1 (Weir's default) a
// record is acknowledged and becomes visible only once durable; with Kafka's
// page-cache behaviour (flush.messages > 1) once written.
//
// A leader appends with Append, which stamps offsets and its epoch; a
// follower appends its leader's batches as they are with AppendReplica,
// and cuts a tail that diverged from the leader's with TruncateTo or
// ResetTo. A cut is on disk before anything written after it, so that no
// crash brings the cut batches back behind newer ones (replica.go).
//
// Recovery (Open) trusts nothing it has not checked: it scans every batch's
// length and CRC, truncates the log at the first torn or corrupt batch, or
// the first whose leader epoch is below an earlier one's (only data that
// was never acknowledged can be there, because acknowledged data was
// fsynced first), rewrites the active segment's indexes, and rebuilds the
// epoch cache and producer state from the batch headers that survive.
package partlog

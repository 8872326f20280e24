// Package metalog is the durable storage of one node's Raft metadata log
// (KRaft's __cluster_metadata partition): what raft.Ready asks to persist,
// written as port.DiskOp effects, and its recovery at boot through
// port.BootFS. Like the rest of core it performs no IO: the host emits the
// operations the Store returns, on the single lane Lane, and waits for all
// of them to complete before it acts on what they persist.
//
// # Files
//
// Everything lives in Dir (__cluster_metadata-0/) under the data directory.
// Both files are sequences of frames:
//
//	[u32 length][u32 CRC-32C (Castagnoli) of payload][payload]
//
// big-endian, length counting the payload only, never zero. The payload is
// a kind byte, then:
//
//	1 entry       uvarint index, uvarint term, flag (0: Data nil, the
//	              leader's empty entry; 1: Data follows, possibly empty),
//	              data to the end of the payload
//	2 hard state  uvarint term, varint vote
//	3 snapshot    uvarint index, uvarint term, data to the end
//	4 header      version byte (1), u64 base length, uvarint snapshot index
//
// raft.log starts with a header frame; the header's snapshot index is the
// snapshot the log follows (its entries start right after it), and its base
// length covers the header and the frames written with it. The rest of the
// file is appended to: an entry frame with index i replaces every earlier
// entry with index >= i (Raft's log truncation, stored without rewriting
// the file), and the last hard state frame wins. One Ready is one write
// (its hard state first, then its entries) and one fsync.
//
// snapshot holds one snapshot frame: the latest snapshot.
//
// # Replacing a file
//
// Both files are replaced the same way: remove name.tmp, write name.tmp,
// fsync it, rename it over name, fsync the directory. A snapshot (from
// Store.Compact, or installed from the leader through a Ready) replaces
// snapshot first; then raft.log is replaced by a file whose base holds the
// header, the current hard state and the entries after the snapshot. A
// Ready that installs a snapshot first appends its hard state to the old
// log and fsyncs it, so that the new snapshot never meets the older term.
// A new node's first Save creates the directory (mkdir, fsync of the data
// directory) and raft.log the same way, so every raft.log begins with a
// base that was durable before it became visible.
//
// # Recovery and the crash-safety argument
//
// A Ready counts only once all its operations completed, the last being an
// fsync of raft.log; only then does the host send its messages. So every
// acknowledgement and every vote that left the node is durable, and what a
// crash may lose or tear is only what no one has heard of. Recover reads:
//
//   - snapshot: it became visible only by a rename after its fsync, so it
//     is whole; a bad checksum (or a short file) is corruption and an
//     error, never mistaken for a torn write.
//   - raft.log: the header and the base behind it were fsynced before the
//     rename, so damage there is also an error. Past the base, the scan
//     stops at the first frame that is torn or fails its checksum (a crash
//     during an append; a crash keeps any subset of unsynced sectors, and a
//     zeroed area reads as a frame of length 0, which is never valid); the
//     tail is dropped, which loses nothing acknowledged. Entries must be
//     contiguous from the header's snapshot index: a gap is an error.
//
// The two files then agree in one of three ways. The header names the
// stored snapshot: the usual case. The header names an older snapshot: a
// crash fell between the snapshot's rename and the log's rewrite. If the
// old log holds the snapshot's index with the snapshot's term (always so
// after a compaction), the entries past it are kept, since by Raft's Log
// Matching property they extend the snapshot; otherwise (a snapshot
// install, which Raft does only when its log disagrees) they are dropped,
// as Raft dropped them. Either way the log is rewritten before anything is
// appended to it. The header names a newer snapshot than the stored one:
// impossible (the snapshot's rename is made durable by a directory fsync
// before the log's rewrite begins), so an error. Hence after a crash the
// state is the one the last completed Save or Compact left, or one the
// interrupted call could have produced on its way: its hard state without
// its entries, or a prefix of its entries after its hard state, or its
// snapshot without the entries it came with.
//
// What Recover read may have been in the page cache only (the process
// crashed, not the machine). It reads through DropCache, so that pages
// whose writeback failed (Linux marks them clean; "fsyncgate") are not
// believed, and Store.BootOps returns the repairs and a sync round (the
// snapshot, raft.log, both directories) that the host must complete before
// the Raft node acts: afterwards, everything Recover returned is durable.
// The repairs are the removal of leftover temporary files and either the
// rewrite of a log that predates the snapshot or the truncation of a torn
// tail. The truncation is made at boot and synced, so that the torn bytes
// cannot reappear in the sectors a later, interrupted append did not
// overwrite; a Store whose boot operations were not run truncates before
// its first append instead.
//
// # Failures
//
// A failed operation is fatal for the store: the host stops using it (and
// the Raft node over it). Operations already queued on the lane still run,
// so a failed fsync of a temporary file may be followed by its rename; the
// checksums then make the next Recover fail (the snapshot, or raft.log's
// base, does not read back) rather than start from a log that silently
// forgot a vote. Such a node has to be rebuilt from its peers.
package metalog

// Package disk is the simulated disk of one node: a file system with a page
// cache that a crash can lose, the port.DiskOp semantics, the read-only
// port.BootFS that recovery reads through, and the disk faults.
//
// Model:
//   - Every file has its current content (what reads see: the page cache)
//     and its durable content (what an fsync last made stable). Writes and
//     truncations change the current content and mark the 512-byte sectors
//     they touch as unsynced; OpSync makes the file's current content
//     durable.
//   - Every directory has its current entries and its durable entries.
//     Creating a file (its first write), mkdir, rename and remove change the
//     current entries; OpSyncDir makes them durable. A file whose entry was
//     never made durable can vanish in a crash however often it was synced.
//   - A machine crash keeps all durable content and entries. Of the unsynced
//     sectors of each file it keeps a seeded subset (any subset, whole
//     sectors: torn writes); each directory keeps either all of its unsynced
//     entry changes or none (a rename is atomic, as on a journaling file
//     system). A process crash keeps everything: the page cache survives.
//   - Operations of one lane run one at a time in submission order, each
//     taking a drawn latency; lanes run in parallel. An operation takes
//     effect when it completes; a crash drops operations not yet completed.
//     An OpRead reads the current content at the moment it completes, and
//     its bytes reach the node with the completion.
//   - Faults: slow operations; EIO on write (a prefix of its sectors may
//     have landed) and on fsync (with DropOnSyncError, as Linux may, the
//     unsynced sectors of that file are then partly lost from the page cache
//     too); ENOSPC on write (nothing landed); a flipped bit in record data
//     read for a response (a fetch, or a cluster message's file chunks) or
//     by an OpRead, only inside the part of a batch its CRC covers, and
//     only in the copy read (reading again gives the right bytes); never
//     in data read by recovery. Reads never fail with EIO. A whole disk
//     may be lost (Replace, after a machine crash): the node restarts on
//     an empty one.
//
// An operation that fails without an injected fault (a missing file, a
// Send or an OpRead past a file's end) is a bug in the node, not a disk
// fault: it is reported through Config.Unexpected and fails the run.
package disk

package metalog

import (
	"fmt"
	"slices"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/raft"
)

const (
	// Dir is the metadata log's directory, relative to the data directory.
	Dir = "__cluster_metadata-0"
	// Lane is the disk lane of every operation the store emits.
	Lane = "metadata-log"

	logPath     = Dir + "/raft.log"
	logTmpPath  = Dir + "/raft.log.tmp"
	snapPath    = Dir + "/snapshot"
	snapTmpPath = Dir + "/snapshot.tmp"
)

// State is what the store holds, in the form raft.New takes it.
type State struct {
	HardState raft.HardState
	Snapshot  raft.Snapshot
	// Entries are the entries after Snapshot, contiguous from
	// Snapshot.Index+1.
	Entries []raft.Entry
}

// Store is the durable Raft log of one node. It performs no IO: its methods
// return the disk operations that carry out what they describe, all on Lane,
// to be run in the order given. The store's view (Size, the entries it
// keeps) already includes what the operations it returned will write.
//
// A failed operation is fatal: the host must stop using the store (and the
// Raft node over it), since it no longer knows what the disk holds. The
// next boot's Recover finds out.
type Store struct {
	dirExists  bool
	snapExists bool
	logExists  bool
	// logBase is the snapshot index recorded in raft.log's header: the log
	// holds the entries after it.
	logBase uint64
	// size is the length of raft.log once the emitted operations ran.
	size int64
	// truncate: raft.log has a torn tail past size, cut before the next
	// append.
	truncate bool
	// rewrite: raft.log predates the snapshot (a crash fell between the
	// snapshot's rename and the log's rewrite); it is rewritten before
	// anything is appended to it.
	rewrite bool
	// bootTmps are temporary files found at boot, removed by BootOps.
	bootTmps []string

	hs      raft.HardState
	snap    raft.Snapshot
	entries []raft.Entry // entries[i].Index == snap.Index+1+i
}

// Size is the length of raft.log in bytes (as it will be once the emitted
// operations ran), for the host's compaction policy.
func (s *Store) Size() int64 { return s.size }

// EntriesSinceSnapshot is the number of log entries after the snapshot.
func (s *Store) EntriesSinceSnapshot() int { return len(s.entries) }

// LastIndex is the index of the last entry (or of the snapshot).
func (s *Store) LastIndex() uint64 { return s.snap.Index + uint64(len(s.entries)) }

// Term returns the term of the entry at index i, if the store knows it
// (the snapshot's last entry or a stored entry). The host uses it to build
// the raft.Snapshot it hands to Compact.
func (s *Store) Term(i uint64) (uint64, bool) {
	switch {
	case i == s.snap.Index:
		return s.snap.Term, true
	case i < s.snap.Index || i > s.LastIndex():
		return 0, false
	}
	return s.entries[i-s.snap.Index-1].Term, true
}

// Save returns the operations that persist what rd asks to persist: its
// Snapshot (installed atomically, the log then restarted after it), its
// HardState and its Entries (the first may replace the stored tail from
// its index on). They end with an fsync of raft.log: once every one of
// them completed without error, rd is durable and the host may send
// rd.Messages, apply rd.Committed and call Advance. Save returns nil when
// rd has nothing to persist.
//
// It panics if rd does not fit the stored log (entries that leave a gap
// or reach into the snapshot): that is a bug in the caller.
func (s *Store) Save(rd raft.Ready) []port.DiskOp {
	if rd.HardState == nil && rd.Snapshot == nil && len(rd.Entries) == 0 {
		return nil
	}
	ops := s.ensureDir(nil)
	if rd.Snapshot != nil {
		snap := *rd.Snapshot
		if snap.Index <= s.snap.Index {
			panic(fmt.Sprintf("metalog: snapshot at %d does not follow the stored one at %d", snap.Index, s.snap.Index))
		}
		if len(rd.Entries) > 0 && rd.Entries[0].Index != snap.Index+1 {
			panic(fmt.Sprintf("metalog: entries from %d after a snapshot at %d", rd.Entries[0].Index, snap.Index))
		}
		if rd.HardState != nil {
			s.hs = *rd.HardState
			if s.logExists {
				// The new term and vote reach the disk before the
				// snapshot does, so no crash pairs the new snapshot with
				// an older term than the Ready carried.
				ops = s.appendOps(ops, appendHardState(nil, s.hs))
				ops = append(ops, s.op(port.OpSync, logPath))
			}
		}
		s.snap = snap
		s.entries = slices.Clone(rd.Entries)
		ops = s.snapshotOps(ops)
		ops = s.rewriteOps(ops)
		return append(ops, s.op(port.OpSync, logPath))
	}
	if len(rd.Entries) > 0 {
		first := rd.Entries[0].Index
		if first <= s.snap.Index || first > s.LastIndex()+1 {
			panic(fmt.Sprintf("metalog: entries from %d do not fit the log [%d, %d] after snapshot %d",
				first, s.snap.Index+1, s.LastIndex(), s.snap.Index))
		}
		// The store's array is its own (Recover hands out a copy), so
		// entries may be appended to it or overwrite its tail in place.
		s.entries = append(s.entries[:first-s.snap.Index-1], rd.Entries...)
	}
	if rd.HardState != nil {
		s.hs = *rd.HardState
	}
	if !s.logExists || s.rewrite {
		ops = s.rewriteOps(ops)
		return append(ops, s.op(port.OpSync, logPath))
	}
	// The hard state goes first: a crash keeps a prefix of the frames, so
	// an entry of a new term is never recovered without that term.
	var buf []byte
	if rd.HardState != nil {
		buf = appendHardState(buf, s.hs)
	}
	for _, e := range rd.Entries {
		buf = appendEntry(buf, e)
	}
	ops = s.appendOps(ops, buf)
	return append(ops, s.op(port.OpSync, logPath))
}

// Compact returns the operations that persist snap, a snapshot the host
// took of its state machine, and rewrite raft.log without the entries it
// covers. The host calls raft.Compact once all of them completed. A
// snapshot no newer than the stored one needs nothing (nil).
//
// It panics if snap is beyond the log or disagrees with the term stored at
// its index.
func (s *Store) Compact(snap raft.Snapshot) []port.DiskOp {
	if snap.Index <= s.snap.Index {
		return nil
	}
	t, ok := s.Term(snap.Index)
	if !ok {
		panic(fmt.Sprintf("metalog: compact to %d beyond the last index %d", snap.Index, s.LastIndex()))
	}
	if t != snap.Term {
		panic(fmt.Sprintf("metalog: snapshot at %d has term %d, the log has %d", snap.Index, snap.Term, t))
	}
	s.entries = slices.Clone(s.entries[snap.Index-s.snap.Index:])
	s.snap = snap
	ops := s.ensureDir(nil)
	ops = s.snapshotOps(ops)
	return s.rewriteOps(ops)
}

// BootOps returns what must run after Recover and before the Raft node
// acts on the recovered state: removal of leftover temporary files, the
// repair of raft.log (its torn tail cut, or the whole file rewritten when
// it predates the snapshot), and a sync round over the snapshot, raft.log
// and both directories. What Recover read may have been in the page cache
// only (the process crashed, not the machine); Raft treats all of it as
// durable, so it must be before Raft votes or acknowledges anything. The
// host runs these before the first Save or Compact and waits for them.
func (s *Store) BootOps() []port.DiskOp {
	if !s.dirExists {
		return nil
	}
	var ops []port.DiskOp
	for _, p := range s.bootTmps {
		ops = append(ops, s.op(port.OpRemove, p))
	}
	s.bootTmps = nil
	if s.snapExists {
		ops = append(ops, s.op(port.OpSync, snapPath))
	}
	// The snapshot's directory entry is durable before the log is rewritten
	// without the entries it covers.
	ops = append(ops, s.op(port.OpSyncDir, "."), s.op(port.OpSyncDir, Dir))
	switch {
	case s.rewrite:
		ops = s.rewriteOps(ops)
	case s.logExists:
		if s.truncate {
			// Cut the torn tail now and make the cut durable, so that
			// its bytes cannot resurface under a later append's lost
			// sectors.
			ops = append(ops, port.DiskOp{Kind: port.OpTruncate, Lane: Lane, Path: logPath, Pos: s.size})
			s.truncate = false
		}
		ops = append(ops, s.op(port.OpSync, logPath))
	}
	return ops
}

func (s *Store) op(kind port.OpKind, path string) port.DiskOp {
	return port.DiskOp{Kind: kind, Lane: Lane, Path: path}
}

func (s *Store) ensureDir(ops []port.DiskOp) []port.DiskOp {
	if s.dirExists {
		return ops
	}
	s.dirExists = true
	return append(ops, s.op(port.OpMkdir, Dir), s.op(port.OpSyncDir, "."))
}

// appendOps writes frames at the end of raft.log, cutting a torn tail
// first.
func (s *Store) appendOps(ops []port.DiskOp, frames []byte) []port.DiskOp {
	if s.truncate {
		ops = append(ops, port.DiskOp{Kind: port.OpTruncate, Lane: Lane, Path: logPath, Pos: s.size})
		s.truncate = false
	}
	ops = append(ops, port.DiskOp{Kind: port.OpWrite, Lane: Lane, Path: logPath, Pos: s.size, Data: frames})
	s.size += int64(len(frames))
	return ops
}

// snapshotOps replaces the snapshot file atomically with s.snap.
func (s *Store) snapshotOps(ops []port.DiskOp) []port.DiskOp {
	s.snapExists = true
	return append(ops,
		s.op(port.OpRemove, snapTmpPath),
		port.DiskOp{Kind: port.OpWrite, Lane: Lane, Path: snapTmpPath, Data: appendSnapshot(nil, s.snap)},
		s.op(port.OpSync, snapTmpPath),
		port.DiskOp{Kind: port.OpRename, Lane: Lane, Path: snapTmpPath, To: snapPath},
		s.op(port.OpSyncDir, Dir),
	)
}

// rewriteOps replaces raft.log atomically with a file holding the header,
// the hard state and the entries after the snapshot: the log's base,
// fsynced before it becomes visible.
func (s *Store) rewriteOps(ops []port.DiskOp) []port.DiskOp {
	hlen := headerFrameSize(s.snap.Index)
	body := make([]byte, hlen, hlen+64)
	body = appendHardState(body, s.hs)
	for _, e := range s.entries {
		body = appendEntry(body, e)
	}
	base := appendHeader(nil, int64(len(body)), s.snap.Index)
	if len(base) != hlen {
		panic("metalog: header size mismatch")
	}
	copy(body, base)
	s.logExists, s.logBase, s.size = true, s.snap.Index, int64(len(body))
	s.truncate, s.rewrite = false, false
	return append(ops,
		s.op(port.OpRemove, logTmpPath),
		port.DiskOp{Kind: port.OpWrite, Lane: Lane, Path: logTmpPath, Data: body},
		s.op(port.OpSync, logTmpPath),
		port.DiskOp{Kind: port.OpRename, Lane: Lane, Path: logTmpPath, To: logPath},
		s.op(port.OpSyncDir, Dir),
	)
}

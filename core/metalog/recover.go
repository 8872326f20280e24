package metalog

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/raft"
)

// Recover reads the metadata log through fs and returns the store over it
// and the state to hand raft.New. The host must then run BootOps before the
// Raft node acts.
//
// A torn tail of raft.log (a crash during an append) is dropped: nothing in
// it was acknowledged, since a Ready counts only once its fsync completed.
// Damage that no crash explains is an error: a snapshot that fails its
// checksum, a raft.log whose base (written and fsynced before it was
// renamed into place) does not read back, a gap in the entries. The node
// must not start from such a log; it has to be rebuilt from its peers.
func Recover(fs port.BootFS) (*Store, State, error) {
	s := &Store{}
	names, err := fs.List(Dir)
	if err != nil {
		return nil, State{}, fmt.Errorf("metalog: list %s: %w", Dir, err)
	}
	if len(names) == 0 {
		return s, State{}, nil // a new node; the first Save creates the directory
	}
	s.dirExists = true
	var logSize, snapSize int64 = -1, -1
	for _, e := range names {
		switch e.Name {
		case "raft.log":
			logSize = e.Size
		case "snapshot":
			snapSize = e.Size
		case "raft.log.tmp", "snapshot.tmp":
			s.bootTmps = append(s.bootTmps, Dir+"/"+e.Name)
			continue
		default:
			continue
		}
		if e.IsDir {
			return nil, State{}, fmt.Errorf("metalog: %s/%s is a directory", Dir, e.Name)
		}
	}

	if snapSize >= 0 {
		b, err := readFile(fs, snapPath, snapSize)
		if err != nil {
			return nil, State{}, err
		}
		if s.snap, err = parseSnapshotFile(b); err != nil {
			return nil, State{}, fmt.Errorf("metalog: %s is damaged; it was written to a temporary file, fsynced and renamed, so this is not a torn write but corruption: %w", snapPath, err)
		}
		s.snapExists = true
	}

	if logSize >= 0 {
		b, err := readFile(fs, logPath, logSize)
		if err != nil {
			return nil, State{}, err
		}
		sc, err := scanLog(b)
		if err != nil {
			return nil, State{}, fmt.Errorf("metalog: %s: %w", logPath, err)
		}
		s.logExists, s.logBase, s.hs = true, sc.base, sc.hs
		s.size, s.truncate = sc.valid, sc.valid < int64(len(b))
		switch {
		case sc.base > s.snap.Index:
			return nil, State{}, fmt.Errorf("metalog: %s: %w", logPath,
				corruptf("the log follows a snapshot at %d but the stored snapshot is at %d", sc.base, s.snap.Index))
		case sc.base == s.snap.Index:
			s.entries = sc.entries
		default:
			// A crash fell between the snapshot's rename and the log's
			// rewrite. After a compaction the log agrees with the
			// snapshot at its index and goes on past it; after a
			// snapshot install it does not (Raft installs a snapshot
			// only then), and what it holds past that index belongs to
			// an older leader: it is dropped, as Raft dropped it.
			s.rewrite = true
			at := s.snap.Index - sc.base // position of the snapshot's entry
			if at <= uint64(len(sc.entries)) && at > 0 && sc.entries[at-1].Term == s.snap.Term {
				s.entries = sc.entries[at:]
			}
		}
	}
	st := State{HardState: s.hs, Snapshot: s.snap, Entries: slices.Clone(s.entries)}
	return s, st, nil
}

// readFile reads a whole file as the disk holds it (see port.BootFS's
// DropCache: after a failed fsync the page cache may remember writes the
// disk never got).
func readFile(fs port.BootFS, path string, size int64) ([]byte, error) {
	if err := fs.DropCache(path); err != nil {
		return nil, fmt.Errorf("metalog: drop cached pages of %s: %w", path, err)
	}
	b := make([]byte, size)
	n, err := fs.ReadAt(path, b, 0)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(b)) {
		return nil, fmt.Errorf("metalog: read %s: %w", path, err)
	}
	if n != len(b) {
		return nil, fmt.Errorf("metalog: read %s: %d bytes of %d", path, n, len(b))
	}
	return b, nil
}

func parseSnapshotFile(b []byte) (raft.Snapshot, error) {
	p, n, ok := nextFrame(b)
	switch {
	case !ok:
		return raft.Snapshot{}, corruptf("no valid frame (%d bytes, bad length or checksum)", len(b))
	case n != len(b):
		return raft.Snapshot{}, corruptf("%d stray bytes after the snapshot frame", len(b)-n)
	case p[0] != kindSnapshot:
		return raft.Snapshot{}, corruptf("frame of kind %d, want a snapshot", p[0])
	}
	return decodeSnapshot(p)
}

// logScan is what a raft.log holds.
type logScan struct {
	base    uint64 // snapshot index the log follows
	hs      raft.HardState
	entries []raft.Entry // contiguous from base+1
	valid   int64        // length of the valid prefix
}

// scanLog reads raft.log's frames. The base (the header's span, written
// and fsynced before the file was renamed into place) must be intact; past
// it, the scan stops at the first frame that is torn or fails its
// checksum: an append a crash interrupted.
func scanLog(b []byte) (logScan, error) {
	var sc logScan
	p, n, ok := nextFrame(b)
	if !ok {
		return sc, corruptf("no valid header frame (%d bytes); the header is fsynced before the file is renamed into place", len(b))
	}
	if p[0] != kindHeader {
		return sc, corruptf("first frame of kind %d, want a header", p[0])
	}
	h, err := decodeHeader(p)
	if err != nil {
		return sc, err
	}
	if h.baseLen < uint64(n) || h.baseLen > uint64(len(b)) {
		return sc, corruptf("base of %d bytes in a file of %d", h.baseLen, len(b))
	}
	baseLen := int(h.baseLen)
	sc.base = h.snapIndex
	pos := n
	for pos < len(b) {
		p, n, ok := nextFrame(b[pos:])
		if !ok {
			if pos < baseLen {
				return sc, corruptf("damaged frame at %d, inside the %d-byte base that was fsynced before the file was renamed into place", pos, baseLen)
			}
			break // a torn append
		}
		if pos < baseLen && pos+n > baseLen {
			return sc, corruptf("frame at %d crosses the end of the base at %d", pos, baseLen)
		}
		switch p[0] {
		case kindEntry:
			e, err := decodeEntry(p)
			if err != nil {
				return sc, fmt.Errorf("frame at %d: %w", pos, err)
			}
			// An entry replaces every entry from its index on.
			first, next := sc.base+1, sc.base+1+uint64(len(sc.entries))
			if e.Index < first || e.Index > next {
				return sc, corruptf("frame at %d: entry %d leaves a gap in the log [%d, %d)", pos, e.Index, first, next)
			}
			sc.entries = append(sc.entries[:e.Index-first], e)
		case kindHardState:
			if sc.hs, err = decodeHardState(p); err != nil {
				return sc, fmt.Errorf("frame at %d: %w", pos, err)
			}
		default:
			return sc, corruptf("frame at %d of kind %d", pos, p[0])
		}
		pos += n
	}
	if pos < baseLen {
		return sc, corruptf("base of %d bytes ends at %d", baseLen, pos)
	}
	sc.valid = int64(pos)
	return sc, nil
}

package metalog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/raft"
)

// Frame kinds (the first byte of a frame's payload).
const (
	kindEntry     = 1 // uvarint index, uvarint term, nil flag, data
	kindHardState = 2 // uvarint term, varint vote
	kindSnapshot  = 3 // uvarint index, uvarint term, data
	kindHeader    = 4 // version, u64 base length, uvarint snapshot index
)

const (
	frameHeaderSize = 8 // u32 payload length, u32 CRC-32C of the payload
	headerVersion   = 1
	// maxIndex bounds indexes and terms read back, so that index arithmetic
	// on a damaged file cannot overflow. Raft never gets near it.
	maxIndex = 1 << 62
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks damage that a crash cannot explain: a checksum that
// fails inside data that was fsynced before it became visible, or a frame
// whose checksum holds but whose content makes no sense.
var errCorrupt = errors.New("metalog: corrupt")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errCorrupt}, args...)...)
}

// beginFrame reserves a frame header at the end of dst; endFrame fills it
// in once the payload has been appended after it.
func beginFrame(dst []byte, kind byte) ([]byte, int) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, kind)
	return dst, start
}

func endFrame(dst []byte, start int) []byte {
	payload := dst[start+frameHeaderSize:]
	if uint64(len(payload)) > 1<<32-1 {
		panic(fmt.Sprintf("metalog: frame of %d bytes", len(payload)))
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst
}

func appendEntry(dst []byte, e raft.Entry) []byte {
	dst, start := beginFrame(dst, kindEntry)
	dst = binary.AppendUvarint(dst, e.Index)
	dst = binary.AppendUvarint(dst, e.Term)
	if e.Data == nil {
		dst = append(dst, 0)
	} else {
		dst = append(dst, 1)
		dst = append(dst, e.Data...)
	}
	return endFrame(dst, start)
}

func appendHardState(dst []byte, hs raft.HardState) []byte {
	dst, start := beginFrame(dst, kindHardState)
	dst = binary.AppendUvarint(dst, hs.Term)
	dst = binary.AppendVarint(dst, int64(hs.Vote))
	return endFrame(dst, start)
}

func appendSnapshot(dst []byte, s raft.Snapshot) []byte {
	dst, start := beginFrame(dst, kindSnapshot)
	dst = binary.AppendUvarint(dst, s.Index)
	dst = binary.AppendUvarint(dst, s.Term)
	dst = append(dst, s.Data...)
	return endFrame(dst, start)
}

// headerFrameSize is the size of the header frame for a snapshot index.
func headerFrameSize(snapIndex uint64) int {
	var tmp [binary.MaxVarintLen64]byte
	return frameHeaderSize + 1 + 1 + 8 + binary.PutUvarint(tmp[:], snapIndex)
}

func appendHeader(dst []byte, baseLen int64, snapIndex uint64) []byte {
	dst, start := beginFrame(dst, kindHeader)
	dst = append(dst, headerVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(baseLen))
	dst = binary.AppendUvarint(dst, snapIndex)
	return endFrame(dst, start)
}

// nextFrame splits the frame at the start of b. ok is false when b does
// not start with a whole frame whose checksum holds: a torn write, or
// bytes that never were a frame (zeros past a crash). A frame is never
// empty, so a zeroed header (length 0, CRC 0, which is the CRC of nothing)
// does not pass for one.
func nextFrame(b []byte) (payload []byte, n int, ok bool) {
	if len(b) < frameHeaderSize {
		return nil, 0, false
	}
	size := uint64(binary.BigEndian.Uint32(b))
	if size == 0 || size > uint64(len(b)-frameHeaderSize) {
		return nil, 0, false
	}
	payload = b[frameHeaderSize : frameHeaderSize+int(size)]
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		return nil, 0, false
	}
	return payload, frameHeaderSize + int(size), true
}

// reader decodes the fields of a payload.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = corruptf("bad %s", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) index(what string) uint64 {
	v := r.uvarint(what)
	if r.err == nil && v >= maxIndex {
		r.err = corruptf("%s %d out of range", what, v)
	}
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = corruptf("bad %s", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = corruptf("missing %s", what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) done(what string) error {
	if r.err == nil && len(r.b) > 0 {
		r.err = corruptf("%d stray bytes after %s", len(r.b), what)
	}
	return r.err
}

// decodeEntry decodes an entry payload (kind byte included). The entry's
// data is copied out of the file buffer.
func decodeEntry(p []byte) (raft.Entry, error) {
	r := reader{b: p[1:]}
	e := raft.Entry{Index: r.index("entry index"), Term: r.index("entry term")}
	switch flag := r.byte("entry data flag"); {
	case r.err != nil:
		return e, r.err
	case flag == 0:
		return e, r.done("nil entry")
	case flag == 1:
		e.Data = append([]byte{}, r.b...)
	default:
		return e, corruptf("entry data flag %d", flag)
	}
	if e.Index == 0 {
		return e, corruptf("entry index 0")
	}
	return e, nil
}

func decodeHardState(p []byte) (raft.HardState, error) {
	r := reader{b: p[1:]}
	hs := raft.HardState{Term: r.index("term")}
	v := r.varint("vote")
	if err := r.done("hard state"); err != nil {
		return hs, err
	}
	if v < -1<<31 || v > 1<<31-1 {
		return hs, corruptf("vote %d out of range", v)
	}
	hs.Vote = port.NodeID(v)
	return hs, nil
}

func decodeSnapshot(p []byte) (raft.Snapshot, error) {
	r := reader{b: p[1:]}
	s := raft.Snapshot{Index: r.index("snapshot index"), Term: r.index("snapshot term")}
	if r.err != nil {
		return s, r.err
	}
	if s.Index == 0 {
		return s, corruptf("snapshot index 0")
	}
	if len(r.b) > 0 {
		s.Data = append([]byte{}, r.b...)
	}
	return s, nil
}

type header struct {
	baseLen   uint64
	snapIndex uint64
}

func decodeHeader(p []byte) (header, error) {
	r := reader{b: p[1:]}
	if v := r.byte("version"); r.err == nil && v != headerVersion {
		return header{}, corruptf("raft.log format version %d, want %d", v, headerVersion)
	}
	if r.err == nil && len(r.b) < 8 {
		r.err = corruptf("short header")
	}
	var h header
	if r.err == nil {
		h.baseLen = binary.BigEndian.Uint64(r.b)
		r.b = r.b[8:]
	}
	h.snapIndex = r.index("header snapshot index")
	return h, r.done("header")
}

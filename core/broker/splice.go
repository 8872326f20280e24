package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/weirmq/weir/core/partlog"
	"github.com/weirmq/weir/core/port"
)

// A fetch response is encoded by kmsg with a 16-byte marker in place of each
// partition's records; spliceFiles then cuts the frame at the markers and
// puts file ranges there, so record data goes from the segment file to the
// socket by sendfile. A client can make a response echo bytes of its choice
// (an unknown topic's name), so markers carry a nonce drawn per response
// from the node's random source, which a client cannot predict, and each is
// found in order, after the length prefix kmsg writes before it.
var markerMagic = [4]byte{0xff, 'W', 'R', 0xa5}

const markerLen = 16

// fetchMarkers makes the markers of one response.
type fetchMarkers struct{ nonce uint64 }

func (fm fetchMarkers) marker(i int) []byte {
	m := make([]byte, markerLen)
	copy(m, markerMagic[:])
	binary.BigEndian.PutUint64(m[4:], fm.nonce)
	binary.BigEndian.PutUint32(m[12:], uint32(i))
	return m
}

// spliceFiles turns an encoded response frame holding markers 0..n-1 into
// chunks with slices[i] in place of marker i, fixing the length prefixes
// (int32 bytes before flexible versions, uvarint length+1 after) and the
// frame size.
func (fm fetchMarkers) spliceFiles(frame []byte, flexible bool, slices []partlog.Slice) []port.Chunk {
	if len(slices) == 0 {
		return []port.Chunk{{Bytes: frame}}
	}
	prefixLen := len(lengthPrefix(flexible))
	chunks := make([]port.Chunk, 0, 2*len(slices)+1)
	pos := 0
	for i, sl := range slices {
		at := findMarker(frame, pos, fm.marker(i), lengthPrefix(flexible))
		head := append([]byte(nil), frame[pos:at-prefixLen]...)
		if flexible {
			head = binary.AppendUvarint(head, uint64(sl.Len+1))
		} else {
			head = binary.BigEndian.AppendUint32(head, uint32(sl.Len))
		}
		chunks = append(chunks, port.Chunk{Bytes: head}, port.Chunk{File: sl.File, Pos: sl.Pos, Len: sl.Len})
		pos = at + markerLen
	}
	chunks = append(chunks, port.Chunk{Bytes: frame[pos:]})
	var total int64
	for _, c := range chunks {
		total += c.Size()
	}
	binary.BigEndian.PutUint32(chunks[0].Bytes, uint32(total-4))
	return chunks
}

// lengthPrefix is the length prefix kmsg writes before a 16-byte marker.
func lengthPrefix(flexible bool) []byte {
	if flexible {
		return []byte{markerLen + 1} // uvarint(len+1)
	}
	return []byte{0, 0, 0, markerLen}
}

// findMarker returns where marker m, preceded by prefix, starts at or after
// from.
func findMarker(frame []byte, from int, m, prefix []byte) int {
	for pos := from; ; {
		at := bytes.Index(frame[pos:], m)
		if at < 0 {
			panic(fmt.Sprintf("broker: fetch marker %x not found in the encoded response", m))
		}
		at += pos
		if at >= len(prefix) && bytes.Equal(frame[at-len(prefix):at], prefix) {
			return at
		}
		pos = at + 1
	}
}

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
// socket by sendfile. The marker's first bytes cannot occur in a topic name
// (names are ASCII) and the markers are numbered, so a marker is found where
// it was put; the length prefix before it is checked too.
var markerPrefix = [8]byte{0xff, 0x00, 0xfe, 'W', 'E', 'I', 'R', 0xa5}

const markerLen = 16

func marker(i int) []byte {
	m := make([]byte, markerLen)
	copy(m, markerPrefix[:])
	binary.BigEndian.PutUint64(m[8:], uint64(i))
	return m
}

// spliceFiles turns an encoded response frame holding markers 0..n-1 into
// chunks with slices[i] in place of marker i, fixing the length prefixes
// (int32 bytes before flexible versions, uvarint length+1 after) and the
// frame size.
func spliceFiles(frame []byte, flexible bool, slices []partlog.Slice) []port.Chunk {
	if len(slices) == 0 {
		return []port.Chunk{{Bytes: frame}}
	}
	prefixLen := 4
	if flexible {
		prefixLen = 1 // uvarint(16+1) is one byte
	}
	chunks := make([]port.Chunk, 0, 2*len(slices)+1)
	pos := 0
	for i, sl := range slices {
		at := bytes.Index(frame[pos:], marker(i))
		if at < prefixLen {
			panic(fmt.Sprintf("broker: fetch marker %d not found in the encoded response", i))
		}
		at += pos
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

package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Sentinel errors. Functions wrap them with detail, so match with errors.Is.
var (
	// ErrTruncated: the frame ends before its request or response header does.
	ErrTruncated = errors.New("wire: truncated frame")
	// ErrUnknownAPIKey: the key is not served by the broker or unknown to kmsg.
	ErrUnknownAPIKey = errors.New("wire: unknown api key")
	// ErrUnsupportedVersion: the key is served, but not at this version.
	ErrUnsupportedVersion = errors.New("wire: unsupported api version")
	// ErrMalformed: the body does not decode, or a length or varint is invalid.
	// Trailing bytes after a decoded body are not an error (see doc.go).
	ErrMalformed = errors.New("wire: malformed frame")
	// ErrFrameTooLarge: the size prefix exceeds the configured maximum
	// (socket.request.max.bytes on the broker side).
	ErrFrameTooLarge = errors.New("wire: frame too large")
)

// ReadFrameSize decodes the 4-byte big-endian size prefix that precedes
// every request and response. It exists separately from ParseRequest so that
// the driver can refuse an oversized frame before allocating its body.
// maxBytes is inclusive; pass math.MaxInt32 for no limit. A size of zero is
// valid framing; ParseRequest then reports ErrTruncated, as Kafka fails the
// header parse of an empty receive.
func ReadFrameSize(prefix [4]byte, maxBytes int32) (int32, error) {
	size := int32(binary.BigEndian.Uint32(prefix[:]))
	switch {
	case size < 0:
		return 0, fmt.Errorf("%w: negative frame size %d", ErrMalformed, size)
	case size > maxBytes:
		return 0, fmt.Errorf("%w: frame size %d exceeds %d", ErrFrameTooLarge, size, maxBytes)
	}
	return size, nil
}

// beginFrame appends a placeholder for the size prefix and returns where
// it starts, for endFrame to fill in once the frame's length is known.
func beginFrame(dst []byte) ([]byte, int) {
	return append(dst, 0, 0, 0, 0), len(dst)
}

func endFrame(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

package record

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var (
	// ErrTorn means the bytes end inside a batch: a crash tore the write, or
	// the caller has not read far enough yet.
	ErrTorn = errors.New("record: torn batch")
	// ErrCorrupt means the bytes cannot be a valid batch however many follow.
	ErrCorrupt = errors.New("record: corrupt batch")
)

// Scan walks concatenated batches (as stored in a segment file) from the
// start of buf and returns the headers of the complete, CRC-valid batches and
// the number of bytes they cover. It stops at the first batch that is torn
// (ErrTorn) or invalid (an error wrapping ErrCorrupt); err is nil only when
// buf ends exactly on a batch boundary. Recovery truncates everything after
// valid. Scan checks CRCs but does not decompress, to keep boot fast.
func Scan(buf []byte) (headers []Header, valid int64, err error) {
	for valid < int64(len(buf)) {
		h, n, err := ScanOne(buf[valid:])
		if err != nil {
			return headers, valid, err
		}
		headers = append(headers, h)
		valid += n
	}
	return headers, valid, nil
}

// ScanOne checks the batch at the start of buf and returns its header and
// size. It returns ErrTorn when buf ends before the batch does, so a caller
// streaming a file can read more and retry, and an error wrapping ErrCorrupt
// when the batch is invalid.
func ScanOne(buf []byte) (Header, int64, error) {
	if len(buf) < logOverhead {
		return Header{}, 0, ErrTorn
	}
	length := int32(binary.BigEndian.Uint32(buf[lengthOffset:]))
	if length < HeaderSize-logOverhead {
		return Header{}, 0, fmt.Errorf("%w: batch length %d is below the minimum %d", ErrCorrupt, length, HeaderSize-logOverhead)
	}
	if len(buf) > magicOffset && buf[magicOffset] != 2 {
		return Header{}, 0, fmt.Errorf("%w: magic %d, want 2", ErrCorrupt, int8(buf[magicOffset]))
	}
	size := logOverhead + int64(length)
	if int64(len(buf)) < size {
		return Header{}, 0, ErrTorn
	}
	if !crcValid(buf[:size]) {
		return Header{}, 0, fmt.Errorf("%w: CRC mismatch", ErrCorrupt)
	}
	return parseHeader(buf), size, nil
}

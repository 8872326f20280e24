package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one decoded record with its absolute offset and timestamp.
type Record struct {
	Offset    int64
	Timestamp int64
	Key       []byte // nil for a null key
	Value     []byte // nil for a null value (a tombstone)
	Headers   []kmsg.Header
}

// Records decodes the records of the (possibly compressed) batch at the
// start of batch. It checks the framing and CRC but not produce policy, so
// control batches and LogAppendTime batches read back from a log decode too.
// The records never alias batch: the simulator reuses and truncates its
// buffers.
func Records(batch []byte) ([]Record, error) {
	h, size, err := ScanOne(batch)
	if err != nil {
		return nil, err
	}
	if h.Compression() == 0 {
		batch = bytes.Clone(batch[:size])
	}
	data, err := recordsSection(batch[:size], h.Compression(), maxDecompressed)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, min(max(int(h.NumRecords), 0), len(data)/minRecordSize))
	err = eachRecord(data, h.NumRecords, true, func(_ int32, r record) error {
		ts := h.FirstTimestamp + r.timestampDelta
		if h.TimestampType() == 1 {
			ts = h.MaxTimestamp
		}
		out = append(out, Record{
			Offset:    h.BaseOffset + int64(r.offsetDelta),
			Timestamp: ts,
			Key:       r.key,
			Value:     r.value,
			Headers:   r.headers,
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// record is one record as framed on the wire. Its slices alias the records
// section it was parsed from.
type record struct {
	timestampDelta int64
	offsetDelta    int32
	key, value     []byte
	headers        []kmsg.Header
}

// minRecordSize is the smallest encoding of a record: a length and six
// one-byte fields.
const minRecordSize = 7

// eachRecord parses exactly n records from data, which must hold nothing
// else, and hands each to fn with its index. Headers are collected only when
// keepHeaders is set, so that validation does not allocate.
func eachRecord(data []byte, n int32, keepHeaders bool, fn func(i int32, r record) error) error {
	var r record
	for i := range max(n, 0) {
		var err error
		if data, err = parseRecord(data, keepHeaders, &r); err != nil {
			return fail(kerr.InvalidRecord, "record %d: %v", i, err)
		}
		if err := fn(i, r); err != nil {
			return err
		}
	}
	if len(data) > 0 {
		return fail(kerr.InvalidRecord, "%d bytes follow the %d records the header declares", len(data), n)
	}
	return nil
}

// parseRecord decodes the record at the start of data into r and returns
// the bytes after it. It enforces what Kafka's DefaultRecord.readFrom does.
//
// It is one loop over the record's varint fields rather than a call per
// field: validating every produced record is the broker's largest CPU cost
// per record after the copy into the page cache, and per-field calls made
// it three times slower (BenchmarkValidate). The fields after the
// attributes byte are, in order: timestamp delta, offset delta, key, value,
// header count, then a key and a value per header; keys and values are a
// varint length and that many bytes, -1 meaning null.
func parseRecord(data []byte, keepHeaders bool, r *record) ([]byte, error) {
	size, i := varintAt(data, 0)
	switch {
	case i < 0:
		return nil, errors.New("bad varint")
	case size < 0 || size > int64(len(data)-i):
		return nil, fmt.Errorf("length %d with %d bytes left", size, len(data)-i)
	}
	rest := data[i+int(size):]
	b := data[i : i+int(size)]
	if len(b) == 0 {
		return nil, errors.New("truncated")
	}
	j := 1 // attributes: no bits are defined for records
	r.headers = nil
	var headerKey []byte
	for field, fields := 0, 5; field < fields; field++ {
		var v int64
		switch {
		case j < len(b) && b[j] < 0x80:
			v = unzigzag(uint64(b[j]))
			j++
		case j+1 < len(b) && b[j+1] < 0x80: // b[j] >= 0x80
			v = unzigzag(uint64(b[j]&0x7f) | uint64(b[j+1])<<7)
			j += 2
		default:
			var n int
			if v, n = varintAt(b, j); n < 0 {
				return nil, errors.New("bad varint")
			}
			j = n
		}
		if field == 0 {
			r.timestampDelta = v // the only 64-bit field
			continue
		}
		if v != int64(int32(v)) {
			return nil, fmt.Errorf("varint %d overflows int32", v)
		}
		switch field {
		case 1:
			r.offsetDelta = int32(v)
			continue
		case 4:
			if v < 0 {
				return nil, fmt.Errorf("%d headers", v)
			}
			// Each header needs at least two bytes, so a count the record
			// cannot hold fails below without looping that often.
			fields += 2 * int(min(v, int64(len(b))))
			continue
		}
		// A key or a value: a header key may not be null.
		minLen := int64(-1)
		if field > 4 && field%2 == 1 {
			minLen = 0
		}
		if v < minLen || v > int64(len(b)-j) {
			return nil, fmt.Errorf("field length %d with %d bytes left", v, len(b)-j)
		}
		var f []byte
		if v >= 0 {
			f = b[j : j+int(v) : j+int(v)]
			j += int(v)
		}
		switch {
		case field == 2:
			r.key = f
		case field == 3:
			r.value = f
		case field%2 == 1:
			headerKey = f
		case keepHeaders:
			r.headers = append(r.headers, kmsg.Header{Key: string(headerKey), Value: f})
		}
	}
	if j < len(b) {
		return nil, fmt.Errorf("%d bytes left over in the record", len(b)-j)
	}
	return rest, nil
}

// varintAt decodes the zigzag varint at b[i:] and returns it with the index
// after it, or a negative index if there is none.
func varintAt(b []byte, i int) (int64, int) {
	v, n := binary.Varint(b[i:])
	if n <= 0 {
		return 0, -1
	}
	return v, i + n
}

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// recordsSection returns the records of batch, decompressed into at most
// limit bytes if need be. Uncompressed records alias batch.
func recordsSection(batch []byte, codec int8, limit int64) ([]byte, error) {
	if codec == 0 {
		return batch[HeaderSize:], nil
	}
	data, err := decompress(codec, batch[HeaderSize:], limit)
	if err != nil {
		return nil, fmt.Errorf("%w: records section (compression %d): %w", kerr.CorruptMessage, codec, err)
	}
	return data, nil
}

// maxDecompressed caps the memory any one batch can make us allocate.
const maxDecompressed = 512 << 20

var (
	// ErrDecompressedTooLarge: a compressed batch would decompress past the
	// limit given to Check; a caller that used a smaller limit than the
	// topic allows should check again with the topic's.
	ErrDecompressedTooLarge = errors.New("decompressed size exceeds the limit")
	errBadCodec             = errors.New("unsupported compression codec")
	xerialMagic             = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}
	xerialHdrSize           = len(xerialMagic) + 8 // magic, version, compatible version
)

func decompress(codec int8, src []byte, limit int64) ([]byte, error) {
	switch codec {
	case 1:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, err
		}
		return readAtMost(r, limit)
	case 2:
		return unsnappy(src, limit)
	case 3:
		return readAtMost(lz4.NewReader(bytes.NewReader(src)), limit)
	case 4:
		// One synchronous decoder per call: core may not start goroutines
		// or share state, and the limit differs between calls.
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.DecodeAll(src, nil)
	}
	return nil, errBadCodec
}

func readAtMost(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, ErrDecompressedTooLarge
	}
	return b, nil
}

// unsnappy accepts both a bare snappy block, which most non-Java clients
// send, and the xerial framing that snappy-java's stream wraps around blocks.
func unsnappy(src []byte, limit int64) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return unsnappyBlock(nil, src, limit)
	}
	if len(src) < xerialHdrSize {
		return nil, errors.New("truncated xerial header")
	}
	var out []byte
	for rest := src[xerialHdrSize:]; len(rest) > 0; {
		if len(rest) < 4 {
			return nil, errors.New("truncated xerial chunk length")
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if int64(n) > int64(len(rest)) {
			return nil, errors.New("truncated xerial chunk")
		}
		var err error
		if out, err = unsnappyBlock(out, rest[:n], limit); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	return out, nil
}

// unsnappyBlock appends the decoding of one snappy block to dst. It decodes
// strictly, rejecting the s2 extensions that Java consumers could not read.
func unsnappyBlock(dst, block []byte, limit int64) ([]byte, error) {
	n, err := snappy.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if int64(len(dst))+int64(n) > limit {
		return nil, ErrDecompressedTooLarge
	}
	dst = slices.Grow(dst, n)
	if _, err := snappy.DecodeStrict(dst[len(dst):len(dst)+n], block); err != nil {
		return nil, err
	}
	return dst[:len(dst)+n], nil
}

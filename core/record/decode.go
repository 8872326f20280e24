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
func parseRecord(data []byte, keepHeaders bool, r *record) ([]byte, error) {
	d := decoder{b: data}
	size := d.varint()
	if d.err == nil && (size < 0 || int(size) > len(d.b)) {
		d.failf("length %d with %d bytes left", size, len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	rest := d.b[size:]
	d.b = d.b[:size]
	d.skip(1) // attributes: no bits are defined for records
	r.timestampDelta = d.varlong()
	r.offsetDelta = d.varint()
	r.key = d.bytes(-1)
	r.value = d.bytes(-1)
	numHeaders := d.varint()
	if numHeaders < 0 {
		d.failf("%d headers", numHeaders)
	}
	r.headers = nil
	for range max(numHeaders, 0) {
		key := d.bytes(0)
		value := d.bytes(-1)
		if d.err != nil {
			break
		}
		if keepHeaders {
			r.headers = append(r.headers, kmsg.Header{Key: string(key), Value: value})
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.failf("%d bytes left over in the record", len(d.b))
	}
	return rest, d.err
}

// decoder reads Kafka's varint-framed fields. The first failure sticks and
// empties the input, so a caller checks err once after a run of reads.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) failf(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
	d.b = nil
}

func (d *decoder) skip(n int) {
	if len(d.b) < n {
		d.failf("truncated")
		return
	}
	d.b = d.b[n:]
}

func (d *decoder) varlong() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.failf("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// varint reads a zigzag varint that must fit an int32; zigzag encodes such
// values identically at 32 and 64 bits.
func (d *decoder) varint() int32 {
	v := d.varlong()
	if v != int64(int32(v)) {
		d.failf("varint %d overflows int32", v)
		return 0
	}
	return int32(v)
}

// bytes reads a length-prefixed byte string; a length of -1 means null and
// is allowed only when minLen is -1.
func (d *decoder) bytes(minLen int32) []byte {
	n := d.varint()
	switch {
	case d.err != nil:
		return nil
	case n < minLen || int(n) > len(d.b):
		d.failf("field length %d with %d bytes left", n, len(d.b))
		return nil
	case n < 0:
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

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

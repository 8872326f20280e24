package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The reference parser below is the plain field-by-field decoder that
// parseRecord replaced for speed; FuzzParseRecord checks that the two accept
// the same records and decode them the same.

// refParseRecord decodes the record at the start of data into r and
// returns the bytes after it.
func refParseRecord(data []byte, keepHeaders bool, r *record) ([]byte, error) {
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

func FuzzParseRecord(f *testing.F) {
	for _, recs := range [][]BuildRecord{
		{{Key: []byte("k"), Value: []byte("v"), TimestampDelta: 5, Headers: []kmsg.Header{{Key: "h", Value: []byte("x")}}}},
		{{Value: bytes.Repeat([]byte("v"), 300), TimestampDelta: -1 << 40}, {}},
		{{Headers: []kmsg.Header{{Key: "", Value: nil}}}},
	} {
		section := Build(BuildSpec{Records: recs})[HeaderSize:]
		f.Add(section)
		f.Add(section[:len(section)-1])
	}
	f.Add([]byte{0x80, 0x00, 0x00})                                                       // a non-minimal length
	f.Add([]byte{0x0e, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x80, 0x80, 0x80, 0x80, 0x10}) // huge header count
	f.Fuzz(func(t *testing.T, data []byte) {
		var got, want record
		gotRest, gotErr := parseRecord(data, true, &got)
		wantRest, wantErr := refParseRecord(data, true, &want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("parseRecord error %v, reference error %v", gotErr, wantErr)
		}
		if gotErr != nil {
			return
		}
		if !bytes.Equal(gotRest, wantRest) || len(gotRest) != len(wantRest) ||
			got.timestampDelta != want.timestampDelta || got.offsetDelta != want.offsetDelta ||
			!sameBytes(got.key, want.key) || !sameBytes(got.value, want.value) ||
			!slices.EqualFunc(got.headers, want.headers, func(a, b kmsg.Header) bool { return a.Key == b.Key && sameBytes(a.Value, b.Value) }) {
			t.Fatalf("parseRecord %+v rest %d, reference %+v rest %d", got, len(gotRest), want, len(wantRest))
		}
	})
}

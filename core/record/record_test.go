package record

import (
	"bytes"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const now = 1_700_000_000_000

// testBatch builds an idempotent batch of n small records; small so that
// every record's length, offset delta and key length are one-byte varints,
// which the tests below patch by position.
func testBatch(n int) []byte {
	spec := BuildSpec{ProducerID: 7, ProducerEpoch: 1, BaseSequence: 10, FirstTimestamp: now}
	for i := range n {
		spec.Records = append(spec.Records, BuildRecord{
			Key:            []byte(fmt.Sprintf("k%d", i)),
			Value:          []byte(strings.Repeat("v", i)),
			Headers:        []kmsg.Header{{Key: "h", Value: []byte{byte(i)}}},
			TimestampDelta: int64(i),
		})
	}
	return Build(spec)
}

// Positions in testBatch's first record: length, attributes, timestamp
// delta, then these.
const (
	firstOffsetDelta = HeaderSize + 3
	firstKeyLength   = HeaderSize + 4
)

// withRecords returns batch with its records section replaced by section,
// compressed with codec, and the length and CRC fixed so that only the
// section can be wrong.
func withRecords(batch []byte, codec int8, section []byte) []byte {
	out := append(bytes.Clone(batch[:HeaderSize]), section...)
	attrs := binary.BigEndian.Uint16(out[attributesOffset:])&^compressionMask | uint16(codec)
	binary.BigEndian.PutUint16(out[attributesOffset:], attrs)
	return reseal(out)
}

// reseal fixes the length and CRC after a test edits a batch, so that the
// check behind the CRC is the one that fails.
func reseal(b []byte) []byte {
	binary.BigEndian.PutUint32(b[lengthOffset:], uint32(len(b)-logOverhead))
	seal(b)
	return b
}

// fataler is what compress needs from a *testing.T or a *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

var zstdEncoder, _ = zstd.NewWriter(nil)

// compress encodes a batch's records the way producers do.
func compress(t fataler, batch []byte, codec int8) []byte {
	t.Helper()
	raw := batch[HeaderSize:]
	var buf bytes.Buffer
	switch codec {
	case 0:
		buf.Write(raw)
	case 1:
		w := gzip.NewWriter(&buf)
		w.Write(raw)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case 2:
		buf.Write(snappy.Encode(nil, raw))
	case 3:
		w := lz4.NewWriter(&buf)
		w.Write(raw)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case 4:
		buf.Write(zstdEncoder.EncodeAll(raw, nil))
	}
	return withRecords(batch, codec, buf.Bytes())
}

// overflowingRecord is a record whose offset delta is a valid varint too
// large for the int32 it must be.
func overflowingRecord() []byte {
	body := binary.AppendVarint([]byte{0, 0}, 1<<40) // attributes, timestamp delta, offset delta
	body = append(body, 1, 1, 0)                     // null key, null value, no headers
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

func set32(b []byte, off int, v int32) []byte {
	binary.BigEndian.PutUint32(b[off:], uint32(v))
	return b
}

func TestValidateErrors(t *testing.T) {
	good := testBatch(5)
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	zeros := Build(BuildSpec{ProducerID: -1, BaseSequence: -1, FirstTimestamp: now, Records: []BuildRecord{{Value: make([]byte, 1<<20)}}})

	type testCase struct {
		name    string
		records []byte
		max     int32 // 0 means 1 MiB
		diff    int64 // 0 means -1
		want    *kerr.Error
	}
	tests := []testCase{
		{name: "empty", records: nil, want: kerr.InvalidRecord},
		{name: "too short for magic", records: good[:10], want: kerr.CorruptMessage},
		{name: "magic 1", records: edit(func(b []byte) []byte { b[magicOffset] = 1; return b }), want: kerr.UnsupportedForMessageFormat},
		{name: "length below header", records: edit(func(b []byte) []byte { return set32(b, lengthOffset, 48) }), want: kerr.CorruptMessage},
		{name: "negative length", records: edit(func(b []byte) []byte { return set32(b, lengthOffset, -1) }), want: kerr.CorruptMessage},
		{name: "truncated", records: good[:len(good)-1], want: kerr.CorruptMessage},
		{name: "trailing garbage", records: append(bytes.Clone(good), 1, 2, 3), want: kerr.CorruptMessage},
		{name: "two batches", records: append(bytes.Clone(good), good...), want: kerr.InvalidRecord},
		{name: "too large", records: good, max: int32(len(good) - 1), want: kerr.MessageTooLarge},
		{name: "CRC byte flipped", records: edit(func(b []byte) []byte { b[crcOffset] ^= 1; return b }), want: kerr.CorruptMessage},
		{name: "payload byte flipped", records: edit(func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }), want: kerr.CorruptMessage},
		{name: "compression 5", records: withRecords(good, 5, good[HeaderSize:]), want: kerr.UnsupportedCompressionType},
		{name: "control batch", records: edit(func(b []byte) []byte { b[attributesOffset+1] |= controlBit; return reseal(b) }), want: kerr.InvalidRecord},
		{name: "zero records", records: edit(func(b []byte) []byte { return reseal(set32(set32(b, 57, 0), 23, -1)) }), want: kerr.InvalidRecord},
		{name: "last offset delta off", records: edit(func(b []byte) []byte { return reseal(set32(b, 23, 3)) }), want: kerr.InvalidRecord},
		{name: "fewer records than declared", records: edit(func(b []byte) []byte { return reseal(set32(set32(b, 57, 6), 23, 5)) }), want: kerr.InvalidRecord},
		{name: "more records than declared", records: edit(func(b []byte) []byte { return reseal(set32(set32(b, 57, 4), 23, 3)) }), want: kerr.InvalidRecord},
		{name: "bad offset delta", records: edit(func(b []byte) []byte { b[firstOffsetDelta] = 2; return reseal(b) }), want: kerr.InvalidRecord},
		{name: "key length -2", records: edit(func(b []byte) []byte { b[firstKeyLength] = 3; return reseal(b) }), want: kerr.InvalidRecord},
		{name: "record length overruns", records: edit(func(b []byte) []byte { b[HeaderSize] = 0x7e; return reseal(b) }), want: kerr.InvalidRecord},
		{name: "record length short", records: edit(func(b []byte) []byte { b[HeaderSize] -= 2; return reseal(b) }), want: kerr.InvalidRecord},
		{name: "record length zero", records: edit(func(b []byte) []byte { b[HeaderSize] = 0; return reseal(b) }), want: kerr.InvalidRecord},
		{name: "offset delta overflows int32", records: withRecords(good, 0, overflowingRecord()), want: kerr.InvalidRecord},
		{name: "idempotent without sequence", records: edit(func(b []byte) []byte { return reseal(set32(b, 53, -1)) }), want: kerr.InvalidRecord},
		{name: "LogAppendTime from producer", records: edit(func(b []byte) []byte { b[attributesOffset+1] |= logAppendTimeBit; return reseal(b) }), want: kerr.InvalidTimestamp},
		{name: "timestamp too old", records: good, diff: 5, want: kerr.InvalidTimestamp},
		{name: "gzip garbage", records: withRecords(good, 1, []byte("not gzip at all")), want: kerr.CorruptMessage},
		{name: "snappy garbage", records: withRecords(good, 2, []byte{10, 0xff, 0xff}), want: kerr.CorruptMessage},
		{name: "xerial truncated", records: withRecords(good, 2, xerial.Encode(nil, good[HeaderSize:])[:30]), want: kerr.CorruptMessage},
		{name: "xerial header truncated", records: withRecords(good, 2, append(bytes.Clone(xerialMagic), 0, 0)), want: kerr.CorruptMessage},
		{name: "lz4 garbage", records: withRecords(good, 3, []byte("not lz4 at all")), want: kerr.CorruptMessage},
		{name: "zstd garbage", records: withRecords(good, 4, []byte("not zstd at all")), want: kerr.CorruptMessage},
		{name: "records compressed but marked none", records: withRecords(good, 0, compress(t, good, 4)[HeaderSize:]), want: kerr.InvalidRecord},
	}
	for codec := int8(1); codec <= 4; codec++ {
		bomb := compress(t, zeros, codec)
		tests = append(tests, testCase{name: fmt.Sprintf("codec %d bomb", codec), records: bomb, max: int32(len(bomb)), want: kerr.CorruptMessage})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			max, diff := tt.max, tt.diff
			if max == 0 {
				max = 1 << 20
			}
			if diff == 0 {
				diff = -1
			}
			_, err := Validate(bytes.Clone(tt.records), max, now+10_000, diff, diff)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			t.Log(err)
		})
	}
}

func TestValidateTimestamps(t *testing.T) {
	b := testBatch(5) // timestamps now .. now+4
	for _, tc := range []struct {
		now, diff int64
		ok        bool
	}{
		{now, 4, true},
		{now + 4, 4, true},
		{now + 5, 4, false},
		{now - 1, 4, false},
		{now + 2, 2, true},
		{math.MinInt64, math.MaxInt64, false},
		{math.MaxInt64, math.MaxInt64, true},
		{0, -1, true},
	} {
		_, err := Validate(bytes.Clone(b), 1<<20, tc.now, tc.diff, tc.diff)
		if (err == nil) != tc.ok {
			t.Errorf("now %d diff %d: got %v", tc.now, tc.diff, err)
		}
	}
	// KIP-937: the window may be lopsided. Records at now..now+4 seen at
	// now+2 are 2 ms early and 2 ms late.
	for _, tc := range []struct {
		before, after int64
		ok            bool
	}{{2, 2, true}, {1, 2, false}, {2, 1, false}, {-1, 2, true}, {2, -1, true}} {
		if _, err := Validate(bytes.Clone(b), 1<<20, now+2, tc.before, tc.after); (err == nil) != tc.ok {
			t.Errorf("before %d after %d: got %v", tc.before, tc.after, err)
		}
	}
	noTime := Build(BuildSpec{ProducerID: -1, BaseSequence: -1, FirstTimestamp: -1, Records: []BuildRecord{{Value: []byte("x")}}})
	if _, err := Validate(noTime, 1<<20, now, 0, 0); err != nil {
		t.Errorf("a record without timestamp must pass the timestamp check: %v", err)
	}
}

func TestValidateFixesMaxTimestamp(t *testing.T) {
	b := testBatch(5)
	binary.BigEndian.PutUint64(b[maxTimestampOffset:], now+1_000_000)
	reseal(b)
	h, err := Validate(b, 1<<20, now, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if h.MaxTimestamp != now+4 {
		t.Errorf("returned MaxTimestamp %d, want %d", h.MaxTimestamp, now+4)
	}
	if stored, _, err := ScanOne(b); err != nil || stored != h {
		t.Errorf("stored header %+v, %v; want %+v", stored, err, h)
	}
}

func TestCodecsRoundTrip(t *testing.T) {
	plain := testBatch(20)
	want, err := Records(plain)
	if err != nil {
		t.Fatal(err)
	}
	batches := map[string][]byte{"xerial": withRecords(plain, 2, xerial.Encode(nil, plain[HeaderSize:]))}
	for codec := int8(0); codec <= 4; codec++ {
		batches[fmt.Sprint("codec ", codec)] = compress(t, plain, codec)
	}
	for name, b := range batches {
		h, err := Validate(bytes.Clone(b), 1<<20, now, -1, -1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h.NumRecords != 20 || h.Size() != int64(len(b)) {
			t.Errorf("%s: header %+v", name, h)
		}
		got, err := Records(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: records differ:\n%v\n%v", name, got, want)
		}
	}
}

// clientBatches were captured from produce requests that franz-go (kgo)
// and sarama sent to kfake, one per compression codec; embedded because
// core may not import os.
//
//go:embed testdata/*.batch
var clientBatches embed.FS

func TestClientBatches(t *testing.T) {
	files, err := fs.Glob(clientBatches, "testdata/*.batch")
	if err != nil || len(files) != 10 {
		t.Fatalf("want 10 client batches, got %v %v", files, err)
	}
	for _, f := range files {
		b, err := clientBatches.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Validate(b, 1<<20, now, -1, -1); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		recs, err := Records(b)
		if err != nil || len(recs) != 5 {
			t.Fatalf("%s: %d records, %v", f, len(recs), err)
		}
		franz := strings.Contains(f, "franz-go")
		for i, r := range recs {
			wantKey := fmt.Sprintf("key-%d", i)
			if franz && i == 3 {
				wantKey = ""
			}
			if r.Offset != int64(i) || string(r.Key) != wantKey || string(r.Value) != fmt.Sprintf("value %d value %d value %d", i, i, i) {
				t.Errorf("%s: record %d = %+v", f, i, r)
			}
			if franz && (len(r.Headers) != 1 || r.Headers[0].Key != "h" || !bytes.Equal(r.Headers[0].Value, []byte{byte(i)})) {
				t.Errorf("%s: record %d headers %v", f, i, r.Headers)
			}
		}
	}
}

func TestRecordsNulls(t *testing.T) {
	b := Build(BuildSpec{Records: []BuildRecord{
		{Key: nil, Value: nil, Headers: []kmsg.Header{{Key: "", Value: nil}}},
		{Key: []byte{}, Value: []byte{}},
	}})
	recs, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Key != nil || recs[0].Value != nil || recs[0].Headers[0].Value != nil {
		t.Errorf("nulls lost: %+v", recs[0])
	}
	if recs[1].Key == nil || recs[1].Value == nil || recs[1].Headers != nil {
		t.Errorf("empty values became null: %+v", recs[1])
	}

	// The simulator reuses buffers, so records must not alias the batch.
	b = testBatch(3)
	recs, err = Records(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if string(recs[2].Key) != "k2" || string(recs[2].Value) != "vv" || recs[2].Headers[0].Value[0] != 2 {
		t.Errorf("records alias the batch: %+v", recs[2])
	}
}

func TestMutators(t *testing.T) {
	b := testBatch(3)
	SetBaseOffset(b, 1000)
	SetPartitionLeaderEpoch(b, 9)
	h, _, err := ScanOne(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.BaseOffset != 1000 || h.PartitionLeaderEpoch != 9 || h.LastOffset() != 1002 {
		t.Errorf("header %+v", h)
	}

	SetLogAppendTime(b, now+500)
	h, _, err = ScanOne(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.TimestampType() != 1 || h.MaxTimestamp != now+500 || h.FirstTimestamp != now || h.Compression() != 0 || !h.HasProducerID() {
		t.Errorf("header %+v", h)
	}
	recs, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Timestamp != now+500 {
			t.Errorf("record %d has timestamp %d under LogAppendTime", r.Offset, r.Timestamp)
		}
	}
}

func TestHeaderAccessors(t *testing.T) {
	for _, tc := range []struct{ base, delta, want int32 }{
		{-1, 4, -1},
		{10, 4, 14},
		{math.MaxInt32, 0, math.MaxInt32},
		{math.MaxInt32 - 1, 3, 1},
		{math.MaxInt32, 1, 0},
	} {
		if got := (Header{BaseSequence: tc.base, LastOffsetDelta: tc.delta}).LastSequence(); got != tc.want {
			t.Errorf("LastSequence(%d, %d) = %d, want %d", tc.base, tc.delta, got, tc.want)
		}
	}
	h, err := ParseHeader(Build(BuildSpec{Transactional: true, Records: []BuildRecord{{}}}))
	if err != nil || !h.IsTransactional() || h.IsControl() || h.PartitionLeaderEpoch != -1 || h.Magic != 2 {
		t.Errorf("header %+v, %v", h, err)
	}
	if _, err := ParseHeader(make([]byte, HeaderSize-1)); !errors.Is(err, ErrTorn) {
		t.Errorf("short header: %v", err)
	}
	if _, err := ParseHeader(make([]byte, HeaderSize)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("magic 0: %v", err)
	}
}

func TestScan(t *testing.T) {
	a, b := testBatch(2), testBatch(7)
	log := append(bytes.Clone(a), b...)
	for _, tc := range []struct {
		name    string
		buf     []byte
		headers int
		valid   int
		err     error
	}{
		{"empty", nil, 0, 0, nil},
		{"two batches", log, 2, len(log), nil},
		{"short tail", append(bytes.Clone(log), 0, 0, 0), 2, len(log), ErrTorn},
		{"torn second batch", log[:len(log)-1], 1, len(a), ErrTorn},
		{"preallocated zeros", append(bytes.Clone(log), make([]byte, 100)...), 2, len(log), ErrCorrupt},
	} {
		hs, valid, err := Scan(tc.buf)
		if len(hs) != tc.headers || valid != int64(tc.valid) || !errors.Is(err, tc.err) {
			t.Errorf("%s: %d headers, valid %d, %v", tc.name, len(hs), valid, err)
		}
	}
	flipped := bytes.Clone(log)
	flipped[len(a)+HeaderSize] ^= 1
	if hs, valid, err := Scan(flipped); len(hs) != 1 || valid != int64(len(a)) || !errors.Is(err, ErrCorrupt) {
		t.Errorf("flipped byte: %d headers, valid %d, %v", len(hs), valid, err)
	}
	badMagic := bytes.Clone(log)
	badMagic[len(a)+magicOffset] = 1
	if hs, valid, err := Scan(badMagic); len(hs) != 1 || valid != int64(len(a)) || !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad magic: %d headers, valid %d, %v", len(hs), valid, err)
	}
	// A streaming reader learns of a bad magic before reading the whole batch.
	if _, _, err := ScanOne(badMagic[len(a) : len(a)+magicOffset+1]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad magic in a partial batch: %v", err)
	}
}

package record

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"
)

// genSpec draws a batch within a few seconds of now, so that it passes a
// 3 s timestamp check.
func genSpec(t *rapid.T) BuildSpec {
	spec := BuildSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, FirstTimestamp: rapid.Int64Range(now-1000, now+1000).Draw(t, "first timestamp")}
	if rapid.Bool().Draw(t, "idempotent") {
		spec.ProducerID = rapid.Int64Min(0).Draw(t, "producer id")
		spec.ProducerEpoch = rapid.Int16Min(0).Draw(t, "producer epoch")
		spec.BaseSequence = rapid.Int32Min(0).Draw(t, "base sequence")
		spec.Transactional = rapid.Bool().Draw(t, "transactional")
	}
	header := rapid.Custom(func(t *rapid.T) kmsg.Header {
		return kmsg.Header{Key: rapid.String().Draw(t, "header key"), Value: genBytes(t, "header value")}
	})
	for range rapid.IntRange(1, 20).Draw(t, "records") {
		spec.Records = append(spec.Records, BuildRecord{
			Key:            genBytes(t, "key"),
			Value:          genBytes(t, "value"),
			Headers:        rapid.SliceOfN(header, 0, 3).Draw(t, "headers"),
			TimestampDelta: rapid.Int64Range(-1000, 1000).Draw(t, "timestamp delta"),
		})
	}
	return spec
}

func genBytes(t *rapid.T, label string) []byte {
	if rapid.Bool().Draw(t, label+" is null") {
		return nil
	}
	return append([]byte{}, rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, label)...)
}

// genBatch draws a batch and the spec it encodes, compressed with any codec.
func genBatch(t *rapid.T) (BuildSpec, []byte) {
	spec := genSpec(t)
	return spec, compress(t, Build(spec), rapid.Int8Range(0, 4).Draw(t, "codec"))
}

func TestPropBuildValidate(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		spec, b := genBatch(t)
		orig := bytes.Clone(b)
		h, err := Validate(b, 1<<20, now, 3000, 3000)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, orig) {
			t.Fatal("Validate rewrote a batch whose MaxTimestamp was right")
		}
		n := int32(len(spec.Records))
		if h.NumRecords != n || h.LastOffsetDelta != n-1 || h.Size() != int64(len(b)) || h.ProducerID != spec.ProducerID ||
			h.ProducerEpoch != spec.ProducerEpoch || h.BaseSequence != spec.BaseSequence || h.IsTransactional() != spec.Transactional ||
			h.FirstTimestamp != spec.FirstTimestamp {
			t.Fatalf("header %+v does not match spec", h)
		}
		recs, err := Records(b)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			want := spec.Records[i]
			if r.Offset != int64(i) || r.Timestamp != spec.FirstTimestamp+want.TimestampDelta || !sameBytes(r.Key, want.Key) ||
				!sameBytes(r.Value, want.Value) || len(r.Headers) != len(want.Headers) {
				t.Fatalf("record %d = %+v, want %+v", i, r, want)
			}
			for j, rh := range r.Headers {
				if rh.Key != want.Headers[j].Key || !sameBytes(rh.Value, want.Headers[j].Value) {
					t.Fatalf("record %d header %d = %+v, want %+v", i, j, rh, want.Headers[j])
				}
			}
		}
	})
}

// sameBytes tells null from empty, which compaction depends on.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func TestPropCorruptionDetected(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		_, b := genBatch(t)
		pos := rapid.IntRange(crcOffset, len(b)-1).Draw(t, "position")
		b[pos] ^= rapid.ByteMin(1).Draw(t, "flip")
		if _, err := Validate(bytes.Clone(b), 1<<20, now, -1, -1); err == nil {
			t.Fatal("Validate accepted a corrupted batch")
		}
		if _, _, err := ScanOne(b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("ScanOne: %v", err)
		}
	})
}

func TestPropScanTruncation(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var log []byte
		var ends []int
		for range rapid.IntRange(0, 5).Draw(t, "batches") {
			_, b := genBatch(t)
			log = append(log, b...)
			ends = append(ends, len(log))
		}
		cut := rapid.IntRange(0, len(log)).Draw(t, "cut")
		complete, valid := 0, 0
		for _, end := range ends {
			if end <= cut {
				complete, valid = complete+1, end
			}
		}
		hs, gotValid, err := Scan(log[:cut])
		if len(hs) != complete || gotValid != int64(valid) {
			t.Fatalf("got %d headers covering %d bytes, want %d covering %d", len(hs), gotValid, complete, valid)
		}
		if (valid == cut) != (err == nil) || err != nil && !errors.Is(err, ErrTorn) {
			t.Fatalf("cut %d, valid %d: %v", cut, valid, err)
		}
	})
}

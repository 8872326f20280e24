package record

import (
	"bytes"
	"testing"
)

// benchBatch is a 16 KiB uncompressed batch of 100-byte values.
func benchBatch() []byte {
	spec := BuildSpec{ProducerID: 1, BaseSequence: 0, FirstTimestamp: now}
	value := bytes.Repeat([]byte("x"), 100)
	for len(Build(spec)) < 16<<10 {
		spec.Records = append(spec.Records, BuildRecord{Value: value, TimestampDelta: int64(len(spec.Records))})
	}
	spec.Records = spec.Records[:len(spec.Records)-1]
	return Build(spec)
}

func BenchmarkValidate(b *testing.B) {
	batch := benchBatch()
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Validate(batch, 1<<20, now, 60_000, 60_000); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateZstd(b *testing.B) {
	batch := compress(b, benchBatch(), 4)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Validate(batch, 1<<20, now, 60_000, 60_000); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScan(b *testing.B) {
	log := bytes.Repeat(benchBatch(), 64)
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Scan(log); err != nil {
			b.Fatal(err)
		}
	}
}

package record

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func seeds(f *testing.F) [][]byte {
	plain := testBatch(5)
	out := [][]byte{plain, Build(BuildSpec{ProducerID: -1, BaseSequence: -1, Records: []BuildRecord{{}}})}
	for codec := int8(1); codec <= 4; codec++ {
		out = append(out, compress(f, plain, codec))
	}
	return out
}

// FuzzValidate can fix up the length and CRC of its input, because the
// fuzzer would hardly ever get past a CRC check on its own.
func FuzzValidate(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		b := bytes.Clone(data) // Validate may correct MaxTimestamp in place
		if fix && len(b) >= HeaderSize {
			reseal(b)
		}
		h, err := Validate(b, 1<<20, now, 60_000, 60_000)
		if err != nil {
			if !errors.As(err, new(*kerr.Error)) {
				t.Fatalf("error without a Kafka code: %v", err)
			}
			return
		}
		if h.Size() != int64(len(b)) {
			t.Fatalf("accepted %d bytes as a batch of %d", len(b), h.Size())
		}
		if stored, _, err := ScanOne(b); err != nil || stored != h {
			t.Fatalf("accepted batch does not scan back: %+v, %v", stored, err)
		}
		if recs, err := Records(b); err != nil || len(recs) != int(h.NumRecords) {
			t.Fatalf("accepted batch does not decode: %d records, %v", len(recs), err)
		}
	})
}

func FuzzScan(f *testing.F) {
	s := seeds(f)
	log := bytes.Join(s, nil)
	f.Add(log)
	f.Add(log[:len(log)-7])
	f.Add(append(bytes.Clone(s[0]), make([]byte, 64)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		hs, valid, err := Scan(data)
		var sum int64
		for _, h := range hs {
			sum += h.Size()
		}
		if sum != valid || valid > int64(len(data)) {
			t.Fatalf("headers cover %d bytes, valid %d of %d", sum, valid, len(data))
		}
		if (err == nil) != (valid == int64(len(data))) || err != nil && !errors.Is(err, ErrTorn) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("valid %d of %d: %v", valid, len(data), err)
		}
	})
}

package partlog

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/weirmq/weir/core/record"
)

// TestLookupProperties: for any log (batch sizes, record counts,
// timestamps, segment and index sizes), Read starts at the batch holding
// the requested offset, returns whole consecutive batches below the limit
// within max bytes (or exactly one with minOne), and OffsetForTimestamp
// finds the first batch reaching the timestamp.
func TestLookupProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := testConfig()
		cfg.SegmentBytes = int64(rapid.IntRange(100, 5000).Draw(t, "segmentBytes"))
		cfg.IndexIntervalBytes = int64(rapid.IntRange(0, 2000).Draw(t, "indexInterval"))
		d := newMemDisk()
		l, ops := New(dir, cfg)
		d.apply(ops)
		type stored struct{ base, last, ts int64 }
		var batches []stored
		ts := int64(1000)
		for i, n := 0, rapid.IntRange(1, 40).Draw(t, "batches"); i < n; i++ {
			ts += int64(rapid.IntRange(0, 50).Draw(t, "tsStep"))
			b, h := batch(t, rapid.IntRange(1, 5).Draw(t, "records"), rapid.IntRange(0, 300).Draw(t, "valueSize"), ts)
			res, err := l.Append(b, h, 0, ts, false)
			if err != nil {
				t.Fatal(err)
			}
			d.complete(l, res.Ops)
			d.complete(l, l.MaybeSync(0))
			batches = append(batches, stored{res.Base, res.Last, ts})
		}
		end := l.StableOffset()
		limit := rapid.Int64Range(0, end).Draw(t, "limit")
		offset := rapid.Int64Range(0, end).Draw(t, "offset")
		maxBytes := int64(rapid.IntRange(0, 3000).Draw(t, "maxBytes"))
		minOne := rapid.Bool().Draw(t, "minOne")

		sl, err := l.Read(offset, maxBytes, limit, minOne)
		if err != nil {
			t.Fatalf("read %d: %v", offset, err)
		}
		if sl.Len == 0 {
			// Batches are visible whole or not at all: with minOne, an
			// empty read means the batch holding offset is not wholly
			// below the limit.
			for _, b := range batches {
				if minOne && b.base <= offset && offset <= b.last && b.last < limit {
					t.Fatalf("nothing read at %d, yet batch %d-%d is below limit %d", offset, b.base, b.last, limit)
				}
			}
			return
		}
		data := d.files[sl.File].data[sl.Pos : sl.Pos+sl.Len]
		headers, valid, err := record.Scan(data)
		if err != nil || valid != sl.Len {
			t.Fatalf("slice is not whole batches: %v, %d of %d bytes", err, valid, sl.Len)
		}
		first := headers[0]
		if first.BaseOffset > offset || first.LastOffset() < offset {
			t.Fatalf("read at %d starts with batch %d-%d", offset, first.BaseOffset, first.LastOffset())
		}
		for i, h := range headers {
			if h.LastOffset() >= limit {
				t.Fatalf("batch %d-%d is not below limit %d", h.BaseOffset, h.LastOffset(), limit)
			}
			if i > 0 && h.BaseOffset != headers[i-1].LastOffset()+1 {
				t.Fatalf("batches not consecutive: %d after %d", h.BaseOffset, headers[i-1].LastOffset())
			}
		}
		if sl.Len > maxBytes && !(minOne && len(headers) == 1) {
			t.Fatalf("%d bytes read with max %d", sl.Len, maxBytes)
		}

		target := rapid.Int64Range(900, ts+100).Draw(t, "timestamp")
		want := int64(-1)
		for _, b := range batches {
			if b.last >= limit {
				break
			}
			if b.ts >= target {
				want = b.base
				break
			}
		}
		if got, _ := l.OffsetForTimestamp(target, limit); got != want {
			t.Fatalf("OffsetForTimestamp(%d) = %d, want %d", target, got, want)
		}
	})
}

package partlog

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/weirmq/weir/core/bugs"
)

// batchEntry locates one stored batch. Batches are contiguous in a segment:
// a batch ends where the next one starts.
type batchEntry struct {
	base, last   int64
	pos          int64
	size         int64
	maxTimestamp int64
	producer     producerBatch
}

// segment is one .log file with its indexes.
type segment struct {
	base int64
	size int64
	// createdMs is the wall time the first batch was appended, for
	// segment.ms; 0 while the segment is empty.
	createdMs    int64
	maxTimestamp int64
	batches      []batchEntry

	// Sparse index bookkeeping, as Kafka's LogSegment keeps it.
	bytesSinceIndex  int64
	indexEntries     int64
	timeIndexEntries int64
	lastIndexedTs    int64
}

// segmentExts are the files of a segment.
var segmentExts = []string{".log", ".index", ".timeindex"}

func segmentName(base int64, ext string) string {
	return fmt.Sprintf("%020d%s", base, ext)
}

// find returns the index of the first batch whose last offset is ≥ offset.
func (s *segment) find(offset int64) int {
	if bugs.On(bugs.IndexOffByOne) {
		return sort.Search(len(s.batches), func(i int) bool { return s.batches[i].last > offset })
	}
	return sort.Search(len(s.batches), func(i int) bool { return s.batches[i].last >= offset })
}

// cut drops the batches from index keep on, and what they contributed to
// the segment's size, maximum timestamp and age. The sparse index state
// is the caller's to rebuild (rewriteIndexes).
func (s *segment) cut(keep int) {
	s.batches = s.batches[:keep]
	s.size = 0
	if keep > 0 {
		last := s.batches[keep-1]
		s.size = last.pos + last.size
	}
	s.maxTimestamp = -1
	for _, b := range s.batches {
		s.maxTimestamp = max(s.maxTimestamp, b.maxTimestamp)
	}
	if keep == 0 {
		s.createdMs = 0
	}
}

func (s *segment) lastOffset() int64 {
	if len(s.batches) == 0 {
		return s.base - 1
	}
	return s.batches[len(s.batches)-1].last
}

// indexEntry is the 8-byte .index record: offset relative to the segment
// base, then file position.
func indexEntry(relOffset int64, pos int64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b, uint32(relOffset))
	binary.BigEndian.PutUint32(b[4:], uint32(pos))
	return b
}

// timeIndexEntry is the 12-byte .timeindex record: timestamp, then relative
// offset.
func timeIndexEntry(ts int64, relOffset int64) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint64(b, uint64(ts))
	binary.BigEndian.PutUint32(b[8:], uint32(relOffset))
	return b
}

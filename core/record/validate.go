package record

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Validate checks one produce request's records for one partition as Apache
// Kafka's LogValidator does for magic v2, and returns the parsed header. It
// is Check with a decompression limit of 8 × maxBatchBytes (at most
// 512 MiB), followed by Admit.
//
// Errors wrap the *kerr.Error to report.
func Validate(records []byte, maxBatchBytes int32, nowMs, beforeMaxMs, afterMaxMs int64) (Header, error) {
	c, err := Check(records, DecompressLimit(maxBatchBytes))
	if err != nil {
		return Header{}, err
	}
	return c.Header, c.Admit(maxBatchBytes, nowMs, beforeMaxMs, afterMaxMs)
}

// DecompressLimit is how far a batch of at most maxBatchBytes may
// decompress: eight times, at most 512 MiB.
func DecompressLimit(maxBatchBytes int32) int64 { return min(8*int64(maxBatchBytes), maxDecompressed) }

// Checked is what Check learned about a well-formed batch.
type Checked struct {
	Header Header
	// MinTimestamp and MaxTimestamp bound the records' timestamps, leaving
	// out records without one (-1); MinTimestamp > MaxTimestamp when none
	// has a timestamp.
	MinTimestamp, MaxTimestamp int64
}

// Check does the part of validation that depends only on the bytes: it is
// the CPU-heavy part (CRC, decompression, parsing every record), so the
// production driver runs it on connection goroutines in parallel (DESIGN.md
// section 3) and the core applies only Admit.
//
// Produce v3+ requires exactly one batch. The batch must be complete, CRC
// valid, not a control batch, and have a record count matching its offset
// deltas; an idempotent batch must carry a sequence number. Every record
// must parse and record i must have offset delta i; compressed batches are
// decompressed, into at most decompressLimit bytes, to check them. The batch
// must use CreateTime.
//
// Like Kafka, Check corrects a MaxTimestamp that disagrees with the records,
// rewriting it and the CRC in records, so that a client cannot put a
// misleading time on the log that retention and the time index rely on.
// Base offsets are accepted as sent since the leader overwrites them.
func Check(records []byte, decompressLimit int64) (Checked, error) {
	switch {
	case len(records) == 0:
		return Checked{}, fail(kerr.InvalidRecord, "no record batch")
	case len(records) <= magicOffset:
		return Checked{}, fail(kerr.CorruptMessage, "%d bytes cannot hold a batch", len(records))
	case records[magicOffset] != 2:
		return Checked{}, fail(kerr.UnsupportedForMessageFormat, "magic %d, only 2 is supported", int8(records[magicOffset]))
	}
	length := int32(binary.BigEndian.Uint32(records[lengthOffset:]))
	size := logOverhead + int64(length)
	switch {
	case length < HeaderSize-logOverhead:
		return Checked{}, fail(kerr.CorruptMessage, "batch length %d is below the minimum %d", length, HeaderSize-logOverhead)
	case int64(len(records)) < size:
		return Checked{}, fail(kerr.CorruptMessage, "batch of %d bytes truncated to %d", size, len(records))
	case int64(len(records)) > size:
		if _, _, err := ScanOne(records[size:]); err == nil {
			return Checked{}, fail(kerr.InvalidRecord, "more than one record batch")
		}
		return Checked{}, fail(kerr.CorruptMessage, "%d bytes follow the batch", int64(len(records))-size)
	case !crcValid(records):
		return Checked{}, fail(kerr.CorruptMessage, "CRC mismatch")
	}
	h := parseHeader(records)
	if err := checkHeader(h); err != nil {
		return Checked{}, err
	}
	data, err := recordsSection(records, h.Compression(), decompressLimit)
	if err != nil {
		return Checked{}, err
	}
	c := Checked{MinTimestamp: math.MaxInt64, MaxTimestamp: -1} // -1: Kafka's NO_TIMESTAMP
	err = eachRecord(data, h.NumRecords, false, func(i int32, r record) error {
		if r.offsetDelta != i {
			return fail(kerr.InvalidRecord, "record %d has offset delta %d", i, r.offsetDelta)
		}
		if ts := h.FirstTimestamp + r.timestampDelta; ts != -1 {
			c.MinTimestamp, c.MaxTimestamp = min(c.MinTimestamp, ts), max(c.MaxTimestamp, ts)
		}
		return nil
	})
	if err != nil {
		return Checked{}, err
	}
	if h.MaxTimestamp != c.MaxTimestamp {
		setMaxTimestamp(records, false, c.MaxTimestamp)
		h = parseHeader(records)
	}
	c.Header = h
	return c, nil
}

// Admit applies the checks that depend on the topic and the clock to a
// batch Check accepted: its size against maxBatchBytes (max.message.bytes),
// and every record timestamp against [nowMs-beforeMaxMs, nowMs+afterMaxMs]
// (KIP-937's message.timestamp.before.max.ms and after.max.ms; a negative
// bound is no bound).
func (c Checked) Admit(maxBatchBytes int32, nowMs, beforeMaxMs, afterMaxMs int64) error {
	if size := c.Header.Size(); size > int64(maxBatchBytes) {
		return fail(kerr.MessageTooLarge, "batch of %d bytes exceeds the limit of %d", size, maxBatchBytes)
	}
	if c.MinTimestamp > c.MaxTimestamp {
		return nil
	}
	for _, ts := range []int64{c.MinTimestamp, c.MaxTimestamp} {
		if !inWindow(ts, nowMs, beforeMaxMs, afterMaxMs) {
			return fail(kerr.InvalidTimestamp, "a record has timestamp %d, outside [now-%d ms, now+%d ms] of now %d", ts, beforeMaxMs, afterMaxMs, nowMs)
		}
	}
	return nil
}

// checkHeader applies LogValidator's rules for batches coming from clients.
func checkHeader(h Header) error {
	switch {
	case h.Compression() > 4:
		return fail(kerr.UnsupportedCompressionType, "compression codec %d", h.Compression())
	case h.IsControl():
		return fail(kerr.InvalidRecord, "clients may not write control batches")
	case h.NumRecords <= 0:
		return fail(kerr.InvalidRecord, "record count %d", h.NumRecords)
	case h.LastOffsetDelta != h.NumRecords-1:
		return fail(kerr.InvalidRecord, "last offset delta %d with %d records", h.LastOffsetDelta, h.NumRecords)
	case h.HasProducerID() && h.BaseSequence < 0:
		return fail(kerr.InvalidRecord, "producer %d sent sequence number %d", h.ProducerID, h.BaseSequence)
	case h.TimestampType() != 0:
		return fail(kerr.InvalidTimestamp, "producers may not set LogAppendTime")
	}
	return nil
}

// inWindow reports whether ts is at most before ms earlier and after ms
// later than now (negative: unbounded), without overflowing on hostile
// timestamps.
func inWindow(ts, now, before, after int64) bool {
	if ts >= now {
		return after < 0 || uint64(ts)-uint64(now) <= uint64(after)
	}
	return before < 0 || uint64(now)-uint64(ts) <= uint64(before)
}

func fail(code *kerr.Error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", code, fmt.Sprintf(format, args...))
}

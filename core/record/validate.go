package record

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Validate checks one produce request's records for one partition as Apache
// Kafka's LogValidator does for magic v2, and returns the parsed header.
//
// Produce v3+ requires exactly one batch. The batch must be complete, CRC
// valid, at most maxBatchBytes long, not a control batch, and have a record
// count matching its offset deltas; an idempotent batch must carry a
// sequence number. Every record must parse, record i must have offset
// delta i, and compressed batches are decompressed to check them, the
// decompressed size capped at 8 × maxBatchBytes (at most 512 MiB). The
// batch must use CreateTime, and every record timestamp other than -1 must
// lie in [nowMs-beforeMaxMs, nowMs+afterMaxMs] (KIP-937's
// message.timestamp.before.max.ms and after.max.ms); a negative bound is no
// bound.
//
// Like Kafka, Validate corrects a MaxTimestamp that disagrees with the
// records, rewriting it and the CRC in records, so that a client cannot put a
// misleading time on the log that retention and the time index rely on.
// Base offsets are accepted as sent since the leader overwrites them.
//
// Errors wrap the *kerr.Error to report.
func Validate(records []byte, maxBatchBytes int32, nowMs, beforeMaxMs, afterMaxMs int64) (Header, error) {
	switch {
	case len(records) == 0:
		return Header{}, fail(kerr.InvalidRecord, "no record batch")
	case len(records) <= magicOffset:
		return Header{}, fail(kerr.CorruptMessage, "%d bytes cannot hold a batch", len(records))
	case records[magicOffset] != 2:
		return Header{}, fail(kerr.UnsupportedForMessageFormat, "magic %d, only 2 is supported", int8(records[magicOffset]))
	}
	length := int32(binary.BigEndian.Uint32(records[lengthOffset:]))
	size := logOverhead + int64(length)
	switch {
	case length < HeaderSize-logOverhead:
		return Header{}, fail(kerr.CorruptMessage, "batch length %d is below the minimum %d", length, HeaderSize-logOverhead)
	case int64(len(records)) < size:
		return Header{}, fail(kerr.CorruptMessage, "batch of %d bytes truncated to %d", size, len(records))
	case size > int64(maxBatchBytes):
		return Header{}, fail(kerr.MessageTooLarge, "batch of %d bytes exceeds the limit of %d", size, maxBatchBytes)
	case int64(len(records)) > size:
		if _, _, err := ScanOne(records[size:]); err == nil {
			return Header{}, fail(kerr.InvalidRecord, "more than one record batch")
		}
		return Header{}, fail(kerr.CorruptMessage, "%d bytes follow the batch", int64(len(records))-size)
	case !crcValid(records):
		return Header{}, fail(kerr.CorruptMessage, "CRC mismatch")
	}
	h := parseHeader(records)
	if err := checkHeader(h); err != nil {
		return Header{}, err
	}

	limit := min(8*int64(maxBatchBytes), maxDecompressed)
	data, err := recordsSection(records, h.Compression(), limit)
	if err != nil {
		return Header{}, err
	}
	maxTimestamp := int64(-1) // Kafka's NO_TIMESTAMP, which an empty max keeps
	err = eachRecord(data, h.NumRecords, false, func(i int32, r record) error {
		if r.offsetDelta != i {
			return fail(kerr.InvalidRecord, "record %d has offset delta %d", i, r.offsetDelta)
		}
		ts := h.FirstTimestamp + r.timestampDelta
		if ts != -1 && !inWindow(ts, nowMs, beforeMaxMs, afterMaxMs) {
			return fail(kerr.InvalidTimestamp, "record %d has timestamp %d, outside [now-%d ms, now+%d ms] of now %d", i, ts, beforeMaxMs, afterMaxMs, nowMs)
		}
		maxTimestamp = max(maxTimestamp, ts)
		return nil
	})
	if err != nil {
		return Header{}, err
	}
	if h.MaxTimestamp != maxTimestamp {
		setMaxTimestamp(records, false, maxTimestamp)
		h = parseHeader(records)
	}
	return h, nil
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

package record

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BuildSpec describes an uncompressed batch for Build. A producer that is
// not idempotent sends ProducerID, ProducerEpoch and BaseSequence of -1; the
// zero value describes producer 0's first batch.
type BuildSpec struct {
	ProducerID     int64
	ProducerEpoch  int16
	BaseSequence   int32
	FirstTimestamp int64
	Transactional  bool
	Records        []BuildRecord
}

// BuildRecord is one record of a BuildSpec.
type BuildRecord struct {
	Key, Value     []byte // nil encodes null
	Headers        []kmsg.Header
	TimestampDelta int64
}

// Build makes a valid uncompressed v2 batch the way a producer would: base
// offset 0, partition leader epoch -1, CreateTime.
func Build(b BuildSpec) []byte {
	out := make([]byte, HeaderSize)
	maxTimestamp := int64(-1)
	var rec []byte
	for i, r := range b.Records {
		rec = append(rec[:0], 0) // attributes
		rec = binary.AppendVarint(rec, r.TimestampDelta)
		rec = binary.AppendVarint(rec, int64(i))
		rec = appendBytes(rec, r.Key)
		rec = appendBytes(rec, r.Value)
		rec = binary.AppendVarint(rec, int64(len(r.Headers)))
		for _, h := range r.Headers {
			rec = binary.AppendVarint(rec, int64(len(h.Key)))
			rec = append(rec, h.Key...)
			rec = appendBytes(rec, h.Value)
		}
		out = binary.AppendVarint(out, int64(len(rec)))
		out = append(out, rec...)
		maxTimestamp = max(maxTimestamp, b.FirstTimestamp+r.TimestampDelta)
	}

	var attrs uint16
	if b.Transactional {
		attrs |= transactionalBit
	}
	be := binary.BigEndian
	be.PutUint32(out[8:], uint32(len(out)-logOverhead))
	be.PutUint32(out[12:], 0xffffffff) // no partition leader epoch yet
	out[16] = 2
	be.PutUint16(out[21:], attrs)
	be.PutUint32(out[23:], uint32(len(b.Records)-1))
	be.PutUint64(out[27:], uint64(b.FirstTimestamp))
	be.PutUint64(out[35:], uint64(maxTimestamp))
	be.PutUint64(out[43:], uint64(b.ProducerID))
	be.PutUint16(out[51:], uint16(b.ProducerEpoch))
	be.PutUint32(out[53:], uint32(b.BaseSequence))
	be.PutUint32(out[57:], uint32(len(b.Records)))
	seal(out)
	return out
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

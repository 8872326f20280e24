package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// HeaderSize is the size of a v2 batch header (61 bytes).
const HeaderSize = 61

// Offsets of the header fields that are read or rewritten on their own.
const (
	lengthOffset       = 8
	epochOffset        = 12
	magicOffset        = 16
	crcOffset          = 17
	attributesOffset   = 21 // the CRC covers everything from here to the end
	maxTimestampOffset = 35

	// logOverhead is the part of a batch that its Length does not count.
	logOverhead = 12
)

const (
	compressionMask  = 0x07
	logAppendTimeBit = 0x08
	transactionalBit = 0x10
	controlBit       = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is the fixed part of a v2 record batch.
type Header struct {
	BaseOffset           int64
	Length               int32 // batchLength: bytes after this field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64 // "baseTimestamp"
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// ParseHeader decodes the header at the start of b. It returns ErrTorn if b
// is shorter than HeaderSize and ErrCorrupt if the magic is not 2; it does
// not check the CRC, which needs the whole batch.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes cannot hold a batch header", ErrTorn, len(b))
	}
	if m := int8(b[magicOffset]); m != 2 {
		return Header{}, fmt.Errorf("%w: magic %d, want 2", ErrCorrupt, m)
	}
	return parseHeader(b), nil
}

// parseHeader decodes a header whose length and magic were already checked.
func parseHeader(b []byte) Header {
	be := binary.BigEndian
	return Header{
		BaseOffset:           int64(be.Uint64(b[0:])),
		Length:               int32(be.Uint32(b[8:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[12:])),
		Magic:                int8(b[16]),
		CRC:                  be.Uint32(b[17:]),
		Attributes:           int16(be.Uint16(b[21:])),
		LastOffsetDelta:      int32(be.Uint32(b[23:])),
		FirstTimestamp:       int64(be.Uint64(b[27:])),
		MaxTimestamp:         int64(be.Uint64(b[35:])),
		ProducerID:           int64(be.Uint64(b[43:])),
		ProducerEpoch:        int16(be.Uint16(b[51:])),
		BaseSequence:         int32(be.Uint32(b[53:])),
		NumRecords:           int32(be.Uint32(b[57:])),
	}
}

// Size is the number of bytes the batch takes on the wire and on disk.
func (h Header) Size() int64 { return logOverhead + int64(h.Length) }

// LastOffset is the offset of the batch's last record.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// LastSequence is the sequence number of the batch's last record, or -1 for
// a batch without sequence numbers. Sequences wrap from MaxInt32 to 0, so a
// producer can run forever without going negative.
func (h Header) LastSequence() int32 {
	if h.BaseSequence == -1 {
		return -1
	}
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) & math.MaxInt32)
}

// Compression is the codec of the records section: 0 none, 1 gzip,
// 2 snappy, 3 lz4, 4 zstd.
func (h Header) Compression() int8 { return int8(h.Attributes & compressionMask) }

// TimestampType is 0 for CreateTime and 1 for LogAppendTime.
func (h Header) TimestampType() int8 { return int8(h.Attributes&logAppendTimeBit) >> 3 }

// IsTransactional reports whether the batch belongs to a transaction.
func (h Header) IsTransactional() bool { return h.Attributes&transactionalBit != 0 }

// IsControl reports whether the batch holds transaction markers.
func (h Header) IsControl() bool { return h.Attributes&controlBit != 0 }

// HasProducerID reports whether the batch comes from an idempotent producer.
func (h Header) HasProducerID() bool { return h.ProducerID >= 0 }

// SetBaseOffset stores the leader's offset for the batch's first record.
// The base offset is outside the CRC, so the CRC stays valid.
func SetBaseOffset(batch []byte, baseOffset int64) {
	binary.BigEndian.PutUint64(batch, uint64(baseOffset))
}

// SetPartitionLeaderEpoch stamps the leader's epoch, which is also outside
// the CRC.
func SetPartitionLeaderEpoch(batch []byte, epoch int32) {
	binary.BigEndian.PutUint32(batch[epochOffset:], uint32(epoch))
}

// SetLogAppendTime sets the timestampType bit and MaxTimestamp (and, as Kafka
// does, leaves FirstTimestamp) and recomputes the CRC. Readers take every
// record's timestamp from MaxTimestamp when the bit is set.
func SetLogAppendTime(batch []byte, nowMs int64) {
	setMaxTimestamp(batch, true, nowMs)
}

// setMaxTimestamp rewrites the timestamp type and MaxTimestamp and reseals
// the batch, because the CRC covers both.
func setMaxTimestamp(batch []byte, logAppendTime bool, ts int64) {
	be := binary.BigEndian
	attrs := be.Uint16(batch[attributesOffset:]) &^ logAppendTimeBit
	if logAppendTime {
		attrs |= logAppendTimeBit
	}
	be.PutUint16(batch[attributesOffset:], attrs)
	be.PutUint64(batch[maxTimestampOffset:], uint64(ts))
	seal(batch)
}

// seal stores the CRC of the batch at the start of batch.
func seal(batch []byte) {
	end := logOverhead + int64(int32(binary.BigEndian.Uint32(batch[lengthOffset:])))
	binary.BigEndian.PutUint32(batch[crcOffset:], crc32.Checksum(batch[attributesOffset:end], castagnoli))
}

// crcValid checks the CRC of batch, which must be exactly one whole batch.
func crcValid(batch []byte) bool {
	return crc32.Checksum(batch[attributesOffset:], castagnoli) == binary.BigEndian.Uint32(batch[crcOffset:])
}

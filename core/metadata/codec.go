package metadata

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/weirmq/weir/core/port"
)

// batchVersion, the first byte of every encoded batch, is the newest
// version of the encoding, which says what every record in the batch
// carries. A node that meets a version it does not know must stop rather
// than guess, so DecodeBatch refuses it; it reads every older version, so
// that logs and snapshots written before an upgrade still replay.
//
//   - 1: the first.
//   - 2: a Partition record ends with its AddingReplicas and
//     RemovingReplicas (partition reassignment); version 1 partition records
//     decode with neither.
//   - 3: a RegisterBroker record ends with its DirectoryID and a Partition
//     record with its ELR (whole-disk loss, KIP-966); older records decode
//     with a zero id and no ELR.
//
// EncodeBatch writes the oldest version that carries the batch (see
// versionFor): a node not yet upgraded goes on reading the log until the
// first batch that needs what it does not know, and stops there.
const batchVersion byte = 3

// oldestBatchVersion is the oldest version DecodeBatch reads.
const oldestBatchVersion byte = 1

// ErrCorrupt wraps every error DecodeBatch and FromSnapshot return for bytes
// that do not parse.
var ErrCorrupt = errors.New("metadata: corrupt encoding")

// EncodeBatch encodes the records of one Raft entry. The same records always
// give the same bytes. Empty slices and nil slices encode alike (and decode
// as nil). It panics if a record sets no field or several, which is a bug in
// the caller, not data.
//
// Layout: version byte (see batchVersion), uvarint record count, then per
// record its kind byte and fields; integers are varints (zig-zag for
// signed), strings and slices are prefixed by a uvarint length, ids are 16
// raw bytes.
func EncodeBatch(recs []Record) []byte {
	return appendBatch(make([]byte, 0, 16+32*len(recs)), recs)
}

func appendBatch(b []byte, recs []Record) []byte {
	version := versionFor(recs)
	b = append(b, version)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for i := range recs {
		b = appendRecord(b, &recs[i], i, version)
	}
	return b
}

// versionFor returns the oldest version that carries recs: 3 if a broker
// registration names its directory or a partition has an ELR, 2 if a
// partition has a reassignment in progress, else 1.
func versionFor(recs []Record) byte {
	version := byte(1)
	for i := range recs {
		r := &recs[i]
		switch {
		case r.RegisterBroker != nil && r.RegisterBroker.DirectoryID != [16]byte{},
			r.Partition != nil && len(r.Partition.ELR) > 0:
			return 3
		case r.Partition != nil && (len(r.Partition.AddingReplicas) > 0 || len(r.Partition.RemovingReplicas) > 0):
			version = 2
		}
	}
	return version
}

func appendRecord(b []byte, r *Record, i int, version byte) []byte {
	k, err := r.kind()
	if err != nil {
		panic(fmt.Sprintf("metadata: EncodeBatch: record %d: %v", i, err))
	}
	b = append(b, byte(k))
	switch k {
	case kindCluster:
		b = appendString(b, r.Cluster.ClusterID)
	case kindRegisterBroker:
		rb := r.RegisterBroker
		b = binary.AppendVarint(b, int64(rb.ID))
		b = binary.AppendVarint(b, rb.Epoch)
		b = appendString(b, rb.Incarnation)
		b = binary.AppendUvarint(b, uint64(len(rb.Endpoints)))
		for _, e := range rb.Endpoints {
			b = appendString(b, e.Listener)
			b = appendString(b, e.Host)
			b = binary.AppendVarint(b, int64(e.Port))
		}
		b = appendString(b, rb.Rack)
		if version >= 3 {
			b = append(b, rb.DirectoryID[:]...)
		}
	case kindUnfenceBroker:
		b = appendBrokerEpoch(b, r.UnfenceBroker)
	case kindFenceBroker:
		b = appendBrokerEpoch(b, r.FenceBroker)
	case kindShutdownBroker:
		b = appendBrokerEpoch(b, r.ShutdownBroker)
	case kindTopic:
		b = appendString(b, r.Topic.Name)
		b = append(b, r.Topic.ID[:]...)
	case kindPartition:
		p := r.Partition
		b = append(b, p.TopicID[:]...)
		b = binary.AppendVarint(b, int64(p.Partition))
		b = appendNodes(b, p.Replicas)
		b = appendNodes(b, p.ISR)
		b = binary.AppendVarint(b, int64(p.Leader))
		b = binary.AppendVarint(b, int64(p.LeaderEpoch))
		b = binary.AppendVarint(b, int64(p.PartitionEpoch))
		if version >= 2 {
			b = appendNodes(b, p.AddingReplicas)
			b = appendNodes(b, p.RemovingReplicas)
		}
		if version >= 3 {
			b = appendNodes(b, p.ELR)
		}
	case kindRemoveTopic:
		b = append(b, r.RemoveTopic.ID[:]...)
	case kindConfig:
		c := r.Config
		b = append(b, byte(c.Resource))
		b = appendString(b, c.Name)
		b = appendString(b, c.Key)
		if c.Value == nil {
			b = append(b, 0)
		} else {
			b = append(b, 1)
			b = appendString(b, *c.Value)
		}
	case kindProducerIDs:
		p := r.ProducerIDs
		b = binary.AppendVarint(b, int64(p.Broker))
		b = binary.AppendVarint(b, p.BrokerEpoch)
		b = binary.AppendVarint(b, p.NextProducerID)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendNodes(b []byte, ids []port.NodeID) []byte {
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendVarint(b, int64(id))
	}
	return b
}

func appendBrokerEpoch(b []byte, r *BrokerEpochRecord) []byte {
	b = binary.AppendVarint(b, int64(r.ID))
	return binary.AppendVarint(b, r.Epoch)
}

// DecodeBatch decodes the records of one Raft entry. It returns an error
// wrapping ErrCorrupt, and never panics, for an unknown version, an unknown
// record kind, a truncated or out-of-range field, or trailing bytes. It
// checks the form of the records only; whether they fit the image is
// Apply's business.
func DecodeBatch(b []byte) ([]Record, error) {
	d := decoder{b: b}
	recs := d.batch()
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return recs, nil
}

// decoder reads the encoding, remembering the first error so that the
// parsing code reads straight through; after an error every read returns
// zero values and consumes nothing.
type decoder struct {
	b   []byte
	err error
	// version is the batch's version, which says which fields its records
	// carry.
	version byte
	// what names the record being read, for error messages.
	what string
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		msg := fmt.Sprintf(format, args...)
		if d.what != "" {
			msg = d.what + ": " + msg
		}
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, msg)
	}
}

func (d *decoder) batch() []Record {
	if d.version = d.byte(); d.err == nil && (d.version < oldestBatchVersion || d.version > batchVersion) {
		d.fail("unknown batch version %d", d.version)
	}
	n := d.count()
	if d.err != nil {
		return nil
	}
	recs := make([]Record, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		d.what = fmt.Sprintf("record %d", i)
		recs = append(recs, d.record())
	}
	d.what = ""
	return recs
}

func (d *decoder) record() Record {
	var r Record
	k := kind(d.byte())
	if d.err != nil {
		return r
	}
	d.what += " (" + k.String() + ")"
	switch k {
	case kindCluster:
		r.Cluster = &ClusterRecord{ClusterID: d.string()}
	case kindRegisterBroker:
		rb := &RegisterBrokerRecord{ID: d.nodeID(), Epoch: d.varint(), Incarnation: d.string()}
		if n := d.count(); n > 0 {
			rb.Endpoints = make([]Endpoint, 0, n)
			for i := 0; i < n && d.err == nil; i++ {
				rb.Endpoints = append(rb.Endpoints, Endpoint{Listener: d.string(), Host: d.string(), Port: d.int32()})
			}
		}
		rb.Rack = d.string()
		if d.version >= 3 {
			rb.DirectoryID = d.id()
		}
		r.RegisterBroker = rb
	case kindUnfenceBroker:
		r.UnfenceBroker = d.brokerEpoch()
	case kindFenceBroker:
		r.FenceBroker = d.brokerEpoch()
	case kindShutdownBroker:
		r.ShutdownBroker = d.brokerEpoch()
	case kindTopic:
		r.Topic = &TopicRecord{Name: d.string(), ID: d.id()}
	case kindPartition:
		p := &PartitionRecord{
			TopicID:        d.id(),
			Partition:      d.int32(),
			Replicas:       d.nodes(),
			ISR:            d.nodes(),
			Leader:         d.nodeID(),
			LeaderEpoch:    d.int32(),
			PartitionEpoch: d.int32(),
		}
		if d.version >= 2 {
			p.AddingReplicas, p.RemovingReplicas = d.nodes(), d.nodes()
		}
		if d.version >= 3 {
			p.ELR = d.nodes()
		}
		r.Partition = p
	case kindRemoveTopic:
		r.RemoveTopic = &RemoveTopicRecord{ID: d.id()}
	case kindConfig:
		c := &ConfigRecord{Resource: ResourceType(int8(d.byte())), Name: d.string(), Key: d.string()}
		switch present := d.byte(); present {
		case 0:
		case 1:
			v := d.string()
			c.Value = &v
		default:
			d.fail("config value presence byte %d", present)
		}
		r.Config = c
	case kindProducerIDs:
		r.ProducerIDs = &ProducerIDsRecord{Broker: d.nodeID(), BrokerEpoch: d.varint(), NextProducerID: d.varint()}
	default:
		d.fail("unknown record kind")
	}
	return r
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated or overlong varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("truncated or overlong varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int32() int32 {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("value %d does not fit 32 bits", v)
		return 0
	}
	return int32(v)
}

func (d *decoder) nodeID() port.NodeID { return port.NodeID(d.int32()) }

// count reads a slice length. Every element takes at least one byte, so a
// count beyond the bytes left is corrupt; checking that first keeps a forged
// length from allocating gigabytes.
func (d *decoder) count() int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("count %d exceeds the %d bytes left", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) id() (id [16]byte) {
	if d.err != nil {
		return id
	}
	if len(d.b) < len(id) {
		d.fail("truncated id")
		return id
	}
	copy(id[:], d.b)
	d.b = d.b[len(id):]
	return id
}

func (d *decoder) nodes() []port.NodeID {
	n := d.count()
	if n == 0 {
		return nil
	}
	ids := make([]port.NodeID, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		ids = append(ids, d.nodeID())
	}
	return ids
}

func (d *decoder) brokerEpoch() *BrokerEpochRecord {
	return &BrokerEpochRecord{ID: d.nodeID(), Epoch: d.varint()}
}

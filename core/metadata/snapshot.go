package metadata

import (
	"encoding/binary"
	"fmt"
)

// snapshotVersion is the first byte of a snapshot; FromSnapshot refuses
// versions it does not know.
const snapshotVersion byte = 1

// Snapshot encodes the whole image: a version byte, the applied index as a
// uvarint, then an encoded batch of records that rebuilds the image from
// New. The same image always gives the same bytes, so two nodes can compare
// their images by comparing snapshots.
//
// The records come in an order in which each one fits: the cluster id,
// each broker (registration, then unfence or shutdown as its state needs),
// each topic followed by its partitions, configs, and the producer id
// boundary. A ProducerIDs record in a snapshot names broker -1, epoch -1:
// the image keeps only the boundary, not who moved it last. The batch
// carries its own version, so a snapshot written by an older version still
// loads (see batchVersion).
func (img *Image) Snapshot() []byte {
	b := []byte{snapshotVersion}
	b = binary.AppendUvarint(b, img.appliedIndex)
	return appendBatch(b, img.records())
}

func (img *Image) records() []Record {
	var recs []Record
	if img.clusterID != "" {
		recs = append(recs, Record{Cluster: &ClusterRecord{ClusterID: img.clusterID}})
	}
	img.brokers.Ascend(func(b Broker) bool {
		recs = append(recs, Record{RegisterBroker: &RegisterBrokerRecord{
			ID: b.ID, Epoch: b.Epoch, Incarnation: b.Incarnation, Endpoints: b.Endpoints, Rack: b.Rack,
			DirectoryID: b.DirectoryID,
		}})
		be := &BrokerEpochRecord{ID: b.ID, Epoch: b.Epoch}
		if !b.Fenced {
			recs = append(recs, Record{UnfenceBroker: be})
		}
		if b.ShuttingDown {
			recs = append(recs, Record{ShutdownBroker: be})
		}
		return true
	})
	img.topicsByName.Ascend(func(t topicEntry) bool {
		recs = append(recs, Record{Topic: &TopicRecord{Name: t.name, ID: t.id}})
		img.ascendPartitions(t.id, func(p partitionEntry) {
			s := p.state
			recs = append(recs, Record{Partition: &PartitionRecord{
				TopicID: p.topicID, Partition: p.partition,
				Replicas: s.Replicas, ISR: s.ISR, ELR: s.ELR, Leader: s.Leader,
				LeaderEpoch: s.LeaderEpoch, PartitionEpoch: s.PartitionEpoch,
				AddingReplicas: s.AddingReplicas, RemovingReplicas: s.RemovingReplicas,
			}})
		})
		return true
	})
	img.configs.Ascend(func(c configEntry) bool {
		value := c.value
		recs = append(recs, Record{Config: &ConfigRecord{Resource: c.resource, Name: c.name, Key: c.key, Value: &value}})
		return true
	})
	if img.nextProducerID != 0 {
		recs = append(recs, Record{ProducerIDs: &ProducerIDsRecord{Broker: -1, BrokerEpoch: -1, NextProducerID: img.nextProducerID}})
	}
	return recs
}

// FromSnapshot rebuilds the image a Snapshot encoded. The bytes come from
// disk or a peer, so it checks them as input: any malformed encoding, or
// records that do not fit together, give an error wrapping ErrCorrupt and
// never a panic.
func FromSnapshot(b []byte) (*Image, error) {
	d := decoder{b: b}
	if version := d.byte(); d.err == nil && version != snapshotVersion {
		d.fail("unknown snapshot version %d", version)
	}
	index := d.uvarint()
	if d.err != nil {
		return nil, fmt.Errorf("metadata: snapshot: %w", d.err)
	}
	recs, err := DecodeBatch(d.b)
	if err != nil {
		return nil, fmt.Errorf("metadata: snapshot: %w", err)
	}
	img := New()
	for i := range recs {
		if err := img.applyRecord(&recs[i]); err != nil {
			return nil, fmt.Errorf("metadata: snapshot: %w: record %d does not fit: %v", ErrCorrupt, i, err)
		}
	}
	img.appliedIndex = index
	return img, nil
}

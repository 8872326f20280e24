package metadata

import (
	"errors"
	"fmt"
	"slices"

	"github.com/weirmq/weir/core/port"
)

// ErrInvariant wraps every error TryApply returns: the batch does not fit
// the image, so applying it would break the image's invariants.
var ErrInvariant = errors.New("metadata: invariant violation")

// Apply applies the records of the Raft entry at index, which must be
// beyond AppliedIndex (entries without metadata, such as a new leader's
// empty entry, may leave gaps). An empty batch only advances the index.
//
// The controller wrote these records after checking them, so a record that
// does not fit the image is a broken invariant, not bad input: Apply panics
// with a message naming the entry, the record and the rule it breaks.
func (img *Image) Apply(index uint64, recs []Record) {
	if err := img.apply(index, recs); err != nil {
		panic(err.Error())
	}
}

// TryApply is Apply for batches that have not been checked yet: instead of
// panicking it returns an error wrapping ErrInvariant, and then leaves the
// image as it was. On success it is exactly Apply. The controller uses it to
// check a batch against the image (or a Clone) before proposing it.
func (img *Image) TryApply(index uint64, recs []Record) error {
	scratch := img.Clone()
	if err := scratch.apply(index, recs); err != nil {
		return err
	}
	*img = *scratch
	return nil
}

func (img *Image) apply(index uint64, recs []Record) error {
	if index <= img.appliedIndex {
		return fmt.Errorf("%w: entry %d is not after applied index %d", ErrInvariant, index, img.appliedIndex)
	}
	for i := range recs {
		if err := img.applyRecord(&recs[i]); err != nil {
			return fmt.Errorf("%w: entry %d record %d: %v", ErrInvariant, index, i, err)
		}
	}
	img.appliedIndex = index
	return nil
}

// applyRecord checks one record against the image and, if it fits, applies
// it. It checks everything before changing anything, so that a failed
// record leaves no trace.
func (img *Image) applyRecord(r *Record) error {
	k, err := r.kind()
	if err != nil {
		return err
	}
	switch k {
	case kindCluster:
		err = img.applyCluster(r.Cluster)
	case kindRegisterBroker:
		err = img.applyRegisterBroker(r.RegisterBroker)
	case kindUnfenceBroker:
		err = img.updateBroker(r.UnfenceBroker, func(b *Broker) { b.Fenced = false })
	case kindFenceBroker:
		err = img.updateBroker(r.FenceBroker, func(b *Broker) { b.Fenced = true })
	case kindShutdownBroker:
		err = img.updateBroker(r.ShutdownBroker, func(b *Broker) { b.ShuttingDown = true })
	case kindTopic:
		err = img.applyTopic(r.Topic)
	case kindPartition:
		err = img.applyPartition(r.Partition)
	case kindRemoveTopic:
		err = img.applyRemoveTopic(r.RemoveTopic)
	case kindConfig:
		err = img.applyConfig(r.Config)
	case kindProducerIDs:
		err = img.applyProducerIDs(r.ProducerIDs)
	}
	if err != nil {
		return fmt.Errorf("%v: %w", k, err)
	}
	return nil
}

func (img *Image) applyCluster(r *ClusterRecord) error {
	if r.ClusterID == "" {
		return errors.New("empty cluster id")
	}
	if img.clusterID != "" && img.clusterID != r.ClusterID {
		return fmt.Errorf("cluster id %q would replace %q", r.ClusterID, img.clusterID)
	}
	img.clusterID = r.ClusterID
	return nil
}

func (img *Image) applyRegisterBroker(r *RegisterBrokerRecord) error {
	if r.ID < 0 {
		return fmt.Errorf("negative broker id %d", r.ID)
	}
	if r.Epoch < 0 {
		return fmt.Errorf("broker %d: negative epoch %d", r.ID, r.Epoch)
	}
	for i, e := range r.Endpoints {
		if e.Listener == "" {
			return fmt.Errorf("broker %d: endpoint %d has no listener name", r.ID, i)
		}
		if e.Port < 0 || e.Port > 65535 {
			return fmt.Errorf("broker %d: listener %q: port %d out of range", r.ID, e.Listener, e.Port)
		}
		for _, prev := range r.Endpoints[:i] {
			if prev.Listener == e.Listener {
				return fmt.Errorf("broker %d: listener %q listed twice", r.ID, e.Listener)
			}
		}
	}
	if old, ok := img.brokers.Get(Broker{ID: r.ID}); ok && r.Epoch <= old.Epoch {
		return fmt.Errorf("broker %d: epoch %d does not follow registered epoch %d", r.ID, r.Epoch, old.Epoch)
	}
	img.brokers.ReplaceOrInsert(Broker{
		ID:          r.ID,
		Epoch:       r.Epoch,
		Incarnation: r.Incarnation,
		Endpoints:   cloneOrNil(r.Endpoints),
		Rack:        r.Rack,
		DirectoryID: r.DirectoryID,
		Fenced:      true,
	})
	return nil
}

func (img *Image) updateBroker(r *BrokerEpochRecord, change func(*Broker)) error {
	b, ok := img.brokers.Get(Broker{ID: r.ID})
	if !ok {
		return fmt.Errorf("broker %d is not registered", r.ID)
	}
	if r.Epoch != b.Epoch {
		return fmt.Errorf("broker %d: epoch %d is not the registered epoch %d", r.ID, r.Epoch, b.Epoch)
	}
	change(&b)
	img.brokers.ReplaceOrInsert(b)
	return nil
}

func (img *Image) applyTopic(r *TopicRecord) error {
	if r.Name == "" {
		return errors.New("empty topic name")
	}
	if r.ID == ([16]byte{}) {
		return fmt.Errorf("topic %q: zero topic id", r.Name)
	}
	if img.topicsByName.Has(topicEntry{name: r.Name}) {
		return fmt.Errorf("topic %q already exists", r.Name)
	}
	if old, ok := img.topicsByID.Get(topicEntry{id: r.ID}); ok {
		return fmt.Errorf("topic %q: id %x already belongs to topic %q", r.Name, r.ID, old.name)
	}
	t := topicEntry{name: r.Name, id: r.ID}
	img.topicsByName.ReplaceOrInsert(t)
	img.topicsByID.ReplaceOrInsert(t)
	return nil
}

func (img *Image) applyPartition(r *PartitionRecord) error {
	t, ok := img.topicsByID.Get(topicEntry{id: r.TopicID})
	if !ok {
		return fmt.Errorf("unknown topic id %x", r.TopicID)
	}
	// fail names the partition the way operators do; built only on error,
	// as this runs for every ISR change.
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s-%d: %s", t.name, r.Partition, fmt.Sprintf(format, args...))
	}
	if n := img.partitionCount(r.TopicID); r.Partition < 0 || r.Partition > n {
		return fail("partition number out of order: the topic has %d partitions", n)
	}
	if len(r.Replicas) == 0 {
		return fail("no replicas")
	}
	for i, id := range r.Replicas {
		if slices.Contains(r.Replicas[:i], id) {
			return fail("replica %d listed twice", id)
		}
		if !img.brokers.Has(Broker{ID: id}) {
			return fail("replica %d is not a registered broker", id)
		}
	}
	for i, id := range r.ISR {
		if slices.Contains(r.ISR[:i], id) {
			return fail("ISR member %d listed twice", id)
		}
		if !slices.Contains(r.Replicas, id) {
			return fail("ISR member %d is not a replica", id)
		}
	}
	for i, id := range r.ELR {
		if slices.Contains(r.ELR[:i], id) {
			return fail("ELR member %d listed twice", id)
		}
		if !slices.Contains(r.Replicas, id) {
			return fail("ELR member %d is not a replica", id)
		}
		if slices.Contains(r.ISR, id) {
			return fail("ELR member %d is in the ISR", id)
		}
	}
	if r.Leader != NoLeader && !slices.Contains(r.ISR, r.Leader) {
		return fail("leader %d is not in the ISR %v", r.Leader, r.ISR)
	}
	if err := checkReassignment(r); err != nil {
		return fail("%v", err)
	}
	if r.LeaderEpoch < 0 || r.PartitionEpoch < 0 {
		return fail("negative epoch (leader epoch %d, partition epoch %d)", r.LeaderEpoch, r.PartitionEpoch)
	}
	// Epochs are what fence stale leaders and stale AlterPartition
	// requests, so a change that does not advance them is refused.
	if old, ok := img.partitions.Get(partitionEntry{topicID: r.TopicID, partition: r.Partition}); ok {
		o := old.state
		if r.PartitionEpoch <= o.PartitionEpoch {
			return fail("partition epoch %d does not follow %d", r.PartitionEpoch, o.PartitionEpoch)
		}
		if r.LeaderEpoch < o.LeaderEpoch {
			return fail("leader epoch %d goes back from %d", r.LeaderEpoch, o.LeaderEpoch)
		}
		if r.Leader != o.Leader && r.LeaderEpoch == o.LeaderEpoch {
			return fail("leader changes from %d to %d without a new leader epoch", o.Leader, r.Leader)
		}
	}
	img.partitions.ReplaceOrInsert(partitionEntry{
		topicID:   r.TopicID,
		partition: r.Partition,
		state: Partition{
			Replicas:         cloneOrNil(r.Replicas),
			ISR:              cloneOrNil(r.ISR),
			ELR:              cloneOrNil(r.ELR),
			Leader:           r.Leader,
			LeaderEpoch:      r.LeaderEpoch,
			PartitionEpoch:   r.PartitionEpoch,
			AddingReplicas:   cloneOrNil(r.AddingReplicas),
			RemovingReplicas: cloneOrNil(r.RemovingReplicas),
		},
	})
	return nil
}

// checkReassignment checks the reassignment fields of a partition record:
// the replicas being added and those being removed are distinct replicas,
// none both, and the target (the replicas not being removed) is not empty.
func checkReassignment(r *PartitionRecord) error {
	for _, list := range []struct {
		what string
		ids  []port.NodeID
	}{{"adding", r.AddingReplicas}, {"removing", r.RemovingReplicas}} {
		for i, id := range list.ids {
			if slices.Contains(list.ids[:i], id) {
				return fmt.Errorf("%s replica %d listed twice", list.what, id)
			}
			if !slices.Contains(r.Replicas, id) {
				return fmt.Errorf("%s replica %d is not a replica", list.what, id)
			}
		}
	}
	for _, id := range r.AddingReplicas {
		if slices.Contains(r.RemovingReplicas, id) {
			return fmt.Errorf("replica %d is both being added and removed", id)
		}
	}
	if len(r.RemovingReplicas) == len(r.Replicas) {
		return errors.New("every replica is being removed")
	}
	return nil
}

func (img *Image) applyRemoveTopic(r *RemoveTopicRecord) error {
	t, ok := img.topicsByID.Get(topicEntry{id: r.ID})
	if !ok {
		return fmt.Errorf("unknown topic id %x", r.ID)
	}
	img.topicsByName.Delete(t)
	img.topicsByID.Delete(t)
	// A btree must not change while it is iterated: collect, then delete.
	var parts []partitionEntry
	img.ascendPartitions(t.id, func(p partitionEntry) { parts = append(parts, p) })
	for _, p := range parts {
		img.partitions.Delete(p)
	}
	var configs []configEntry
	img.ascendConfigs(ResourceTopic, t.name, func(c configEntry) { configs = append(configs, c) })
	for _, c := range configs {
		img.configs.Delete(c)
	}
	return nil
}

func (img *Image) applyConfig(r *ConfigRecord) error {
	switch r.Resource {
	case ResourceTopic:
		if !img.topicsByName.Has(topicEntry{name: r.Name}) {
			return fmt.Errorf("config %q of unknown topic %q", r.Key, r.Name)
		}
	case ResourceBroker:
		// Configs of brokers not (yet) registered are allowed, as in Kafka:
		// an operator may configure a broker before it first starts.
	default:
		return fmt.Errorf("config %q of unsupported resource type %v", r.Key, r.Resource)
	}
	if r.Key == "" {
		return fmt.Errorf("%v %q: empty config key", r.Resource, r.Name)
	}
	c := configEntry{resource: r.Resource, name: r.Name, key: r.Key}
	if r.Value == nil {
		img.configs.Delete(c)
		return nil
	}
	c.value = *r.Value
	img.configs.ReplaceOrInsert(c)
	return nil
}

func (img *Image) applyProducerIDs(r *ProducerIDsRecord) error {
	// Handing out an id twice would let two producers share one, so the
	// block boundary only moves forward.
	if r.NextProducerID <= img.nextProducerID {
		return fmt.Errorf("next producer id %d does not follow %d", r.NextProducerID, img.nextProducerID)
	}
	img.nextProducerID = r.NextProducerID
	return nil
}

// cloneOrNil copies s so the image never shares a slice with a record the
// caller may reuse, and stores empty as nil so that an image rebuilt from a
// snapshot compares equal to the original.
func cloneOrNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

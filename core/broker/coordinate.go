package broker

// The group coordinator lives where Kafka puts it: each group belongs to
// one partition of __consumer_offsets (its id's Java hash modulo the
// partition count), and the leader of that partition coordinates it. The
// coordinator (core/group) writes every committed offset and every
// generation it hands out to that partition, as Kafka's records, and
// answers only once the write is below the high watermark, that is on the
// disk of every in-sync replica. A broker that becomes leader of a
// partition replays it from the log (reading the segments back from disk)
// before it serves the partition's groups; meanwhile their requests get
// COORDINATOR_LOAD_IN_PROGRESS, and brokers that do not lead the partition
// answer NOT_COORDINATOR. When leadership moves away, the groups are
// unloaded and what they hold is answered NOT_COORDINATOR, so members find
// the new coordinator.
//
// The topic is created, like Kafka's, when the first FindCoordinator
// (or group request) finds it missing: offsets.topic.num.partitions
// partitions, offsets.topic.replication.factor replicas (capped to the
// registered brokers, so a single node works unchanged), compacted.
// Clients may read it but not write to it.

import (
	"strconv"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/bugs"
	"github.com/weirmq/weir/core/group"
	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/record"
)

// offsetsTopic is Kafka's internal topic of group state.
const offsetsTopic = "__consumer_offsets"

// loadReadBytes bounds one read of a partition being replayed.
const loadReadBytes = 1 << 20

// maxLoadReadFailures bounds re-reads of a range whose CRC check failed
// (a bit flipped on the way from the disk) before the load gives up.
const maxLoadReadFailures = 5

// offsetsLoad is the replay of one partition of __consumer_offsets that
// this node leads in epoch epoch: batches from next up to end are still to
// be read; loaded once they all were.
type offsetsLoad struct {
	part      *partition
	epoch     int32
	next, end int64
	loaded    bool
	failures  int
}

// coordWrite is a coordinator's batch waiting to be committed: below the
// high watermark of part by last, or failed with err (answered at the end
// of the step, since the coordinator must not be called back while it
// appends).
type coordWrite struct {
	part       *partition
	last       int64
	deadlineNs int64
	done       func(int64, *kerr.Error)
	err        *kerr.Error
}

// groupHost is the broker as the group coordinator's host.
type groupHost struct{ n *Node }

func (h groupHost) Exists(topic string, partition int32) bool {
	return h.n.partitionExists(topic, partition)
}

func (h groupHost) WallMs() int64 { return h.n.now.WallMs }

// Topic and Topics are the topics clients see, as KIP-848 consumer groups
// subscribe to them.
func (h groupHost) Topic(name string) (group.TopicMeta, bool) {
	t := h.n.topics.visible(name)
	if t == nil {
		return group.TopicMeta{}, false
	}
	return topicMeta(t), true
}

func (h groupHost) Topics() []group.TopicMeta {
	var out []group.TopicMeta
	for _, t := range h.n.topics.sorted {
		if t.visible {
			out = append(out, topicMeta(t))
		}
	}
	return out
}

func topicMeta(t *topic) group.TopicMeta {
	return group.TopicMeta{Name: t.name, ID: t.id, Partitions: int32(len(t.visiblePartitions()))}
}

// Owns is Kafka's validateGroupStatus: the group's partition must be led
// here and loaded.
func (h groupHost) Owns(groupID string) *kerr.Error {
	n := h.n
	t := n.topics.visible(offsetsTopic)
	if t == nil {
		n.createOffsetsTopic()
		return kerr.CoordinatorNotAvailable
	}
	p := t.partition(groupPartition(groupID, len(t.partitions)))
	if p == nil || p.lead == nil || !n.leaseValid() || n.storageErr != nil {
		return kerr.NotCoordinator
	}
	if ld := n.offsetsLoads[p.index]; ld == nil || ld.epoch != p.lead.epoch || !ld.loaded {
		return kerr.CoordinatorLoadInProgress
	}
	return nil
}

// Append writes a coordinator batch to the group's partition as its
// leader, as an acks=all produce would.
func (h groupHost) Append(groupID string, recs []group.Record, done func(int64, *kerr.Error)) {
	n := h.n
	w := &coordWrite{done: done, deadlineNs: n.now.MonoNs + int64(n.cfg.OffsetsCommitTimeoutMs)*1e6}
	n.coordWrites = append(n.coordWrites, w)
	if err := h.Owns(groupID); err != nil {
		w.err = err
		return
	}
	t := n.topics.visible(offsetsTopic)
	p := t.partition(groupPartition(groupID, len(t.partitions)))
	if len(p.state.ISR) < int(t.cfg.MinInsyncReplicas) {
		w.err = kerr.CoordinatorNotAvailable // Kafka's mapping of NOT_ENOUGH_REPLICAS
		return
	}
	spec := record.BuildSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, FirstTimestamp: n.now.WallMs}
	for _, r := range recs {
		spec.Records = append(spec.Records, record.BuildRecord{Key: r.Key, Value: r.Value})
	}
	batch := record.Build(spec)
	hdr, err := record.ParseHeader(batch)
	if err != nil {
		panic("broker: a coordinator batch does not parse: " + err.Error())
	}
	if int64(len(batch)) > int64(t.cfg.MaxMessageBytes) {
		w.err = kerr.InvalidCommitOffsetSize
		return
	}
	res, err := p.log.Append(batch, hdr, p.state.LeaderEpoch, n.now.WallMs, false)
	if err != nil {
		n.log.Warn("appending to __consumer_offsets failed", "partition", p.index, "err", err)
		w.err = kerr.NotCoordinator
		return
	}
	n.issue(p, res.Ops)
	n.queueSync(p)
	w.part, w.last = p, res.Last
}

// groupPartition is Kafka's partitionFor: the partition of
// __consumer_offsets that holds a group, by the Java hash of its id.
func groupPartition(groupID string, partitions int) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(groupID)) {
		h = 31*h + int32(u)
	}
	if h == -1<<31 {
		h = 0 // Kafka's Utils.abs
	} else if h < 0 {
		h = -h
	}
	return h % int32(max(partitions, 1))
}

// createOffsetsTopic asks the controller for __consumer_offsets, once at a
// time; group requests meanwhile get COORDINATOR_NOT_AVAILABLE and retry.
func (n *Node) createOffsetsTopic() {
	if n.creatingOffsets {
		return
	}
	n.creatingOffsets = true
	rf := min(int(n.cfg.OffsetsTopicReplicationFactor), max(len(n.cluster.image.Brokers()), 1))
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = offsetsTopic, n.cfg.OffsetsTopicNumPartitions, int16(rf)
	for _, c := range [][2]string{
		{"cleanup.policy", "compact"},
		{"compression.type", "producer"},
		{"segment.bytes", strconv.Itoa(int(n.cfg.OffsetsTopicSegmentBytes))},
	} {
		v := c[1]
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: c[0], Value: &v})
	}
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	n.callController(req, func(kr kmsg.Response, err error) {
		n.creatingOffsets = false
		if err == nil {
			err = kerr.ErrorForCode(kr.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode)
		}
		if err != nil && err != kerr.TopicAlreadyExists {
			n.log.Warn("creating __consumer_offsets failed", "err", err)
			return
		}
		n.log.Info("created __consumer_offsets", "partitions", n.cfg.OffsetsTopicNumPartitions, "replication_factor", rf)
	})
}

// coordinatorChanged follows a change to a partition of __consumer_offsets
// this node holds: writes below the high watermark are done, and a
// partition newly led (once its high watermark covers its log, so that
// the replay reads only committed records) starts loading.
func (n *Node) coordinatorChanged(p *partition) {
	if p.topic.name != offsetsTopic || p.lead == nil || n.storageErr != nil {
		return
	}
	n.settleCoordWrites(func(w *coordWrite) (bool, *kerr.Error) {
		if w.part != p || w.last >= p.hw {
			return false, nil
		}
		if len(p.maximalISR()) < int(p.topic.cfg.MinInsyncReplicas) {
			return true, kerr.CoordinatorNotAvailable // NOT_ENOUGH_REPLICAS_AFTER_APPEND
		}
		return true, nil
	})
	ld := n.offsetsLoads[p.index]
	if ld != nil && ld.epoch == p.lead.epoch {
		return
	}
	if end, ok := servingEnd(p); !ok || end < p.log.EndOffset() {
		return
	}
	if ld != nil {
		n.unloadCoordinator(p)
	}
	ld = &offsetsLoad{part: p, epoch: p.lead.epoch, next: p.log.StartOffset(), end: p.log.EndOffset()}
	n.offsetsLoads[p.index] = ld
	n.groups.BeginLoad(p.index)
	n.log.Info("loading groups", "partition", p.index, "leader_epoch", ld.epoch, "start", ld.next, "end", ld.end)
	if bugs.On(bugs.NoGroupReload) {
		ld.next = ld.end
	}
	n.readOffsets(ld)
}

// unloadCoordinator gives up the groups of a partition of
// __consumer_offsets this node no longer leads: its pending writes fail
// NOT_COORDINATOR, then what its groups hold is answered so.
func (n *Node) unloadCoordinator(p *partition) {
	if p.topic.name != offsetsTopic || n.offsetsLoads[p.index] == nil {
		return
	}
	delete(n.offsetsLoads, p.index)
	n.settleCoordWrites(func(w *coordWrite) (bool, *kerr.Error) {
		return w.part == p, kerr.NotCoordinator
	})
	partitions := len(p.topic.partitions)
	n.groups.Unload(n.now.MonoNs, p.index, func(id string) bool { return groupPartition(id, partitions) == p.index })
	n.log.Info("unloaded groups", "partition", p.index)
}

// readOffsets reads the next range of a partition being replayed, or ends
// the replay.
func (n *Node) readOffsets(ld *offsetsLoad) {
	p := ld.part
	if ld.next >= ld.end {
		ld.loaded = true
		n.groups.Loaded(n.now.MonoNs, p.index)
		return
	}
	sl, err := p.log.Read(ld.next, loadReadBytes, ld.end, true)
	if err != nil || sl.Len == 0 {
		n.failLoad(ld, "nothing to read below the load's end", err)
		return
	}
	id := n.newOpID(opRef{load: ld})
	n.emit(port.DiskOp{ID: id, Kind: port.OpRead, Lane: p.log.Dir(), Path: sl.File, Pos: sl.Pos, Len: sl.Len})
}

// loadRead replays the batches one read brought back.
func (n *Node) loadRead(ld *offsetsLoad, data []byte) {
	if n.offsetsLoads[ld.part.index] != ld {
		return // leadership moved on meanwhile
	}
	for len(data) > 0 {
		h, size, err := record.ScanOne(data)
		var recs []record.Record
		if err == nil {
			recs, err = record.Records(data[:size])
		}
		if err != nil {
			// A bit flipped between the disk and us: read again.
			if ld.failures++; ld.failures > maxLoadReadFailures {
				n.failLoad(ld, "a batch fails its checks on every read", err)
				return
			}
			n.log.Warn("re-reading __consumer_offsets after a failed batch check", "partition", ld.part.index, "offset", ld.next, "err", err)
			break
		}
		ld.failures = 0
		if !h.IsControl() {
			for _, r := range recs {
				if err := n.groups.Replay(ld.part.index, group.Record{Key: r.Key, Value: r.Value}); err != nil {
					n.failLoad(ld, "a record cannot be replayed", err)
					return
				}
			}
		}
		ld.next = h.LastOffset() + 1
		data = data[size:]
	}
	n.readOffsets(ld)
}

// failLoad leaves a partition's groups unserved (their requests keep
// getting COORDINATOR_LOAD_IN_PROGRESS) rather than serving state that may
// miss committed offsets.
func (n *Node) failLoad(ld *offsetsLoad, why string, err error) {
	n.log.Error("cannot load the groups of a __consumer_offsets partition; they stay unavailable here", "partition", ld.part.index,
		"offset", ld.next, "reason", why, "err", err)
}

// settleCoordWrites removes the writes finished reports done and calls
// their callbacks, after the removal, since a callback may append again.
func (n *Node) settleCoordWrites(finished func(*coordWrite) (bool, *kerr.Error)) {
	var done []*coordWrite
	kept := n.coordWrites[:0]
	for _, w := range n.coordWrites {
		if ok, err := finished(w); ok {
			w.err = err
			done = append(done, w)
		} else {
			kept = append(kept, w)
		}
	}
	clear(n.coordWrites[len(kept):])
	n.coordWrites = kept
	for _, w := range done {
		w.done(n.now.MonoNs, w.err)
	}
}

// expireCoordWrites answers the writes that failed at once, and those
// whose offsets.commit.timeout.ms passed (COORDINATOR_NOT_AVAILABLE, as
// Kafka maps a timeout; the write may still commit). A callback may append
// again, and fail at once: the loop takes those too.
func (n *Node) expireCoordWrites() {
	now := n.now.MonoNs
	for {
		due := false
		for _, w := range n.coordWrites {
			due = due || w.err != nil || now >= w.deadlineNs
		}
		if !due {
			return
		}
		n.settleCoordWrites(func(w *coordWrite) (bool, *kerr.Error) {
			if w.err != nil {
				return true, w.err
			}
			return now >= w.deadlineNs, kerr.CoordinatorNotAvailable
		})
	}
}

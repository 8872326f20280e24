package broker

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weirmq/weir/core/config"
	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/partlog"
)

// topic is one topic and its partitions.
type topic struct {
	name       string
	id         [16]byte
	overrides  map[string]string
	cfg        config.Topic
	partitions []*partition
	// visible is false until the topic's metadata is durable; until then
	// clients are told it does not exist (or, if they asked for its
	// creation, that its leader is not yet available).
	visible bool
}

// partition is one partition of a topic.
type partition struct {
	topic *topic
	index int32
	// state is the partition's leader, epochs, replicas and ISR from
	// the committed metadata image.
	state metadata.Partition
	// log is nil unless this node holds a replica.
	log *partlog.Log
	// lastStable and lastHW are the stable offset and high watermark
	// last announced to waiters.
	lastStable, lastHW int64
	// hw is the high watermark: on the leader, the end of what every ISR
	// member has durably (replicate.go); on a follower, what its leader
	// last said, bounded by its own log end.
	hw int64
	// lead is set while this node leads the partition, follow while it
	// follows a leader; neither while it has no replica or no leader.
	lead   *leadState
	follow *followState
	// visible, as for topics: partitions added by CreatePartitions appear
	// once durable.
	visible bool
	// syncQueued: the partition is on the node's list for MaybeSync;
	// flushTracked: on its list of flush.ms deadlines.
	syncQueued, flushTracked bool
}

func (t *topic) addPartition(l *partlog.Log) *partition {
	p := &partition{topic: t, index: int32(len(t.partitions)), log: l, visible: t.visible}
	t.partitions = append(t.partitions, p)
	return p
}

// visiblePartitions is the partitions clients may see.
func (t *topic) visiblePartitions() []*partition {
	i := len(t.partitions)
	for i > 0 && !t.partitions[i-1].visible {
		i--
	}
	return t.partitions[:i]
}

func (t *topic) partition(i int32) *partition {
	if ps := t.visiblePartitions(); i >= 0 && int(i) < len(ps) {
		return ps[i]
	}
	return nil
}

// led returns partition index of t (which may be nil) if this node leads
// it, or the error a client gets, in Kafka's order: the client's leader
// epoch (-1: none given) first, then leadership, then the log directory.
func (n *Node) led(t *topic, index int32, clientEpoch int32) (*partition, *kerr.Error) {
	var p *partition
	if t != nil {
		p = t.partition(index)
	}
	if p == nil {
		return nil, kerr.UnknownTopicOrPartition
	}
	switch ours := p.state.LeaderEpoch; {
	case clientEpoch == -1 || clientEpoch == ours:
	case clientEpoch > ours:
		return nil, kerr.UnknownLeaderEpoch
	default:
		return nil, kerr.FencedLeaderEpoch
	}
	switch {
	case p.lead == nil || !n.leaseValid():
		return nil, kerr.NotLeaderForPartition
	case n.storageErr != nil:
		return nil, kerr.KafkaStorageError
	}
	return p, nil
}

// topicTable indexes topics by name and id; sorted keeps them in name order
// for every output that lists topics.
type topicTable struct {
	byName map[string]*topic
	byID   map[[16]byte]*topic
	sorted []*topic
}

func newTopicTable() topicTable {
	return topicTable{byName: map[string]*topic{}, byID: map[[16]byte]*topic{}}
}

func (tt *topicTable) add(name string, id [16]byte, overrides map[string]string, cfg config.Topic) *topic {
	t := &topic{name: name, id: id, overrides: overrides, cfg: cfg}
	tt.byName[name] = t
	tt.byID[id] = t
	i := sort.Search(len(tt.sorted), func(i int) bool { return tt.sorted[i].name >= name })
	tt.sorted = append(tt.sorted, nil)
	copy(tt.sorted[i+1:], tt.sorted[i:])
	tt.sorted[i] = t
	return t
}

func (tt *topicTable) remove(t *topic) {
	delete(tt.byName, t.name)
	delete(tt.byID, t.id)
	i := sort.Search(len(tt.sorted), func(i int) bool { return tt.sorted[i].name >= t.name })
	tt.sorted = append(tt.sorted[:i], tt.sorted[i+1:]...)
}

// visible returns the topic named name if clients may see it.
func (tt *topicTable) visible(name string) *topic {
	if t := tt.byName[name]; t != nil && t.visible {
		return t
	}
	return nil
}

func (tt *topicTable) visibleByID(id [16]byte) *topic {
	if t := tt.byID[id]; t != nil && t.visible {
		return t
	}
	return nil
}

func partitionDir(topic string, p int32) string {
	return fmt.Sprintf("%s-%d", topic, p)
}

// logConfig is what a partition log needs of its topic's configuration.
// Retention applies only with cleanup.policy delete; a compact-only topic
// keeps every segment (compaction itself is not implemented yet).
func logConfig(t config.Topic) partlog.Config {
	if !t.Delete() {
		t.RetentionMs, t.RetentionBytes = -1, -1
	}
	return partlog.Config{
		SegmentBytes:       int64(t.SegmentBytes),
		SegmentMs:          t.SegmentMs,
		RetentionMs:        t.RetentionMs,
		RetentionBytes:     t.RetentionBytes,
		IndexIntervalBytes: int64(t.IndexIntervalBytes),
		SegmentIndexBytes:  int64(t.SegmentIndexBytes),
		FlushMessages:      t.FlushMessages,
		FlushMs:            t.FlushMs,
	}
}

func setErr(code *int16, msg **string, e *kerr.Error, text string) {
	*code = e.Code
	*msg = &text
}

// parsePartitionDir splits "orders-3" into "orders" and 3.
func parsePartitionDir(dir string) (string, int32, bool) {
	i := strings.LastIndexByte(dir, '-')
	if i <= 0 {
		return "", 0, false
	}
	p, err := strconv.ParseInt(dir[i+1:], 10, 32)
	if err != nil || p < 0 {
		return "", 0, false
	}
	return dir[:i], int32(p), true
}

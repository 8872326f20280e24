package group

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/bugs"
)

// Host is what a coordinator needs from the broker it runs in.
type Host interface {
	// Owns says whether this coordinator serves group now: nil, or the
	// error clients get (NOT_COORDINATOR when another broker leads the
	// group's partition of __consumer_offsets, COORDINATOR_LOAD_IN_PROGRESS
	// while it is being replayed here).
	Owns(group string) *kerr.Error
	// Append writes records of one group as one batch to the group's
	// partition of __consumer_offsets. done is called exactly once, never
	// before Append returns: with nil once the batch is committed (below
	// the high watermark, so on the disk of every in-sync replica), or
	// with the error to give the clients that wait for it
	// (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, ...).
	Append(group string, recs []Record, done func(nowNs int64, err *kerr.Error))
	// Exists tells whether a topic partition exists; OffsetCommit answers
	// UNKNOWN_TOPIC_OR_PARTITION for any other.
	Exists(topic string, partition int32) bool
	// WallMs is the wall-clock time in milliseconds, for the timestamps
	// records carry (offset retention counts from them after a reload).
	WallMs() int64
	// Topic and Topics are the topics clients can see, as consumer groups
	// subscribe to them: one by name, or all sorted by name (for regex
	// subscriptions). Consumer groups look again at every heartbeat, so a
	// topic created, deleted or grown is noticed without being told.
	Topic(name string) (TopicMeta, bool)
	Topics() []TopicMeta
}

// TopicMeta is a topic as a consumer group's assignor sees it.
type TopicMeta struct {
	Name       string
	ID         [16]byte
	Partitions int32
}

// Record is one record of __consumer_offsets in Kafka's format: the key
// says what it is about (an offset or a group), the value is its latest
// state, and a nil value is a tombstone.
type Record struct {
	Key, Value []byte
}

// Key versions of __consumer_offsets records, as Kafka numbers them:
// 0 and 1 key a committed offset, 2 a classic group's metadata, 3 to 8 a
// KIP-848 consumer group (records848.go). Later ones (share and streams
// groups) are not written by this coordinator.
const (
	offsetKeyVersion = 1
	groupKeyVersion  = 2
)

// offsetRecord is the record of a committed offset: value version 3
// (leader epoch, Kafka 2.1+), or version 1 when the commit carries its own
// expiry (OffsetCommit v2-v4 retention time), as Kafka writes them.
func offsetRecord(group string, tp topicPartition, o committed, commitMs, expireMs int64) Record {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: tp.topic, Partition: tp.partition}
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = o.offset, o.leaderEpoch, o.metadata, commitMs
	if expireMs >= 0 {
		v.Version, v.ExpireTimestamp = 1, expireMs
	}
	return Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
}

func offsetTombstone(group string, tp topicPartition) Record {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: tp.topic, Partition: tp.partition}
	return Record{Key: k.AppendTo(nil)}
}

// groupRecord is the record of a classic group's generation: value version
// 3 (static members, Kafka 2.3+), members in join order with their
// metadata for the selected protocol and their assignments.
func groupRecord(g *group, stateMs int64) Record {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: g.id}
	v := kmsg.NewGroupMetadataValue()
	v.Version = 3
	v.ProtocolType, v.Generation, v.Protocol, v.CurrentStateTimestamp = g.protocolType, g.generation, g.protocol, stateMs
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	for _, m := range g.members {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.InstanceID, vm.ClientID, vm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		vm.RebalanceTimeoutMillis, vm.SessionTimeoutMillis = m.rebalanceTimeoutMs, m.sessionTimeoutMs
		vm.Subscription, vm.Assignment = []byte{}, m.assignment
		if g.protocol != nil {
			vm.Subscription = m.metadata(*g.protocol)
		}
		if vm.Assignment == nil {
			vm.Assignment = []byte{}
		}
		v.Members = append(v.Members, vm)
	}
	return Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
}

func groupTombstone(id string) Record {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: id}
	return Record{Key: k.AppendTo(nil)}
}

// loading is what the replay of one partition has found so far: the last
// record of each key wins, a tombstone removes it.
type loading struct {
	offsets   map[string]map[topicPartition]kmsg.OffsetCommitValue
	groups    map[string]*kmsg.GroupMetadataValue
	consumers map[string]*loadingConsumer
	skipped   int
}

// ErrBadRecord reports a record of __consumer_offsets that cannot be
// decoded. The replay stops there: guessing would risk moving a committed
// offset back.
var ErrBadRecord = errors.New("group: undecodable __consumer_offsets record")

// Replay feeds one record of partition partition of __consumer_offsets,
// in log order, to a load begun with BeginLoad.
func (c *Coordinator) Replay(partition int32, r Record) error {
	l := c.loads[partition]
	if l == nil {
		panic(fmt.Sprintf("group: replay of partition %d, which is not loading", partition))
	}
	if len(r.Key) < 2 {
		return fmt.Errorf("%w: key of %d bytes", ErrBadRecord, len(r.Key))
	}
	switch binary.BigEndian.Uint16(r.Key) {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("%w: offset key: %v", ErrBadRecord, err)
		}
		tp := topicPartition{k.Topic, k.Partition}
		if r.Value == nil {
			if !bugs.On(bugs.TombstoneNotReplayed) {
				delete(l.offsets[k.Group], tp)
			}
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(r.Value); err != nil {
			return fmt.Errorf("%w: offset value: %v", ErrBadRecord, err)
		}
		if l.offsets[k.Group] == nil {
			l.offsets[k.Group] = map[topicPartition]kmsg.OffsetCommitValue{}
		}
		l.offsets[k.Group][tp] = v
	case groupKeyVersion:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("%w: group key: %v", ErrBadRecord, err)
		}
		if r.Value == nil {
			// Offsets have tombstones of their own: a group that
			// changes type (KIP-848) keeps them.
			if !bugs.On(bugs.TombstoneNotReplayed) {
				delete(l.groups, k.Group)
			}
			return nil
		}
		v := new(kmsg.GroupMetadataValue)
		if err := v.ReadFrom(r.Value); err != nil {
			return fmt.Errorf("%w: group value: %v", ErrBadRecord, err)
		}
		l.groups[k.Group] = v
		delete(l.consumers, k.Group) // the group is classic from here on
	case cgMetadataType, cgPartitionMetadataType, cgMemberType, cgTargetMetadataType, cgTargetMemberType, cgCurrentType:
		return c.replayConsumer(l, r)
	default:
		// Share and streams group records: not written by this
		// coordinator, so only a newer broker could have left them.
		l.skipped++
	}
	return nil
}

// BeginLoad starts replaying partition partition of __consumer_offsets,
// which this node now leads. Until Loaded, its groups are not served (the
// host's Owns says so).
func (c *Coordinator) BeginLoad(partition int32) {
	c.loads[partition] = &loading{
		offsets:   map[string]map[topicPartition]kmsg.OffsetCommitValue{},
		groups:    map[string]*kmsg.GroupMetadataValue{},
		consumers: map[string]*loadingConsumer{},
	}
}

// Loaded ends the replay of a partition: its groups become the
// coordinator's, as Kafka's loadGroupsAndOffsets leaves them. A group with
// members resumes Stable in its stored generation, each member with a
// fresh session, so members that are still there carry on without a
// rebalance and the others expire; one without members is Empty. A
// consumer group resumes at its stored epochs and assignments
// (restoreConsumer). Offsets without a group make a simple group.
func (c *Coordinator) Loaded(nowNs int64, partition int32) {
	c.begin(nowNs)
	defer c.end()
	l := c.loads[partition]
	delete(c.loads, partition)
	wallMs := c.host.WallMs()
	// monoOf maps a stored wall-clock time to the monotonic clock, so
	// retention and state ages count from when the record says.
	monoOf := func(ms int64) int64 {
		if ms < 0 {
			return c.nowNs
		}
		return c.nowNs - max(wallMs-ms, 0)*msNs
	}
	ids := make([]string, 0, len(l.groups)+len(l.offsets))
	for id := range l.groups {
		ids = append(ids, id)
	}
	for id, lc := range l.consumers {
		if lc.meta != nil {
			ids = append(ids, id)
		}
	}
	for id := range l.offsets {
		if l.groups[id] == nil && (l.consumers[id] == nil || l.consumers[id].meta == nil) {
			ids = append(ids, id)
		}
	}
	for _, id := range sortedStrings(ids) {
		g := newGroup(id, c.nowNs)
		if v := l.groups[id]; v != nil {
			c.restoreGroup(g, v, monoOf(v.CurrentStateTimestamp))
		}
		if lc := l.consumers[id]; lc != nil && lc.meta != nil {
			c.restoreConsumer(g, lc)
		}
		for tp, v := range l.offsets[id] {
			o := committed{offset: v.Offset, leaderEpoch: -1, metadata: v.Metadata, commitNs: monoOf(v.CommitTimestamp)}
			if v.Version >= 3 {
				o.leaderEpoch = v.LeaderEpoch
			}
			if v.Version == 1 && v.ExpireTimestamp >= 0 {
				o.expireNs = monoOf(v.ExpireTimestamp)
			}
			g.offsets[tp] = o
		}
		if old := c.groups[id]; old != nil {
			// Left over from an earlier leadership of this partition
			// that ended without an unload: the log is the truth.
			c.dropGroup(old, kerr.NotCoordinator)
		}
		c.groups[id] = g
		c.touch(g)
	}
	c.log.Info("loaded groups", "partition", partition, "groups", len(ids), "skipped_records", l.skipped)
}

// restoreGroup sets g to the generation a group record stored.
func (c *Coordinator) restoreGroup(g *group, v *kmsg.GroupMetadataValue, sinceNs int64) {
	g.protocolType, g.generation, g.protocol = v.ProtocolType, v.Generation, v.Protocol
	g.stateSinceNs = sinceNs
	if v.Leader != nil {
		g.leader = *v.Leader
	}
	if len(v.Members) == 0 {
		g.protocol, g.leader = nil, ""
		return
	}
	g.state = Stable
	for _, vm := range v.Members {
		m := &member{
			id: vm.MemberID, instanceID: vm.InstanceID, clientID: vm.ClientID, clientHost: vm.ClientHost,
			sessionTimeoutMs: vm.SessionTimeoutMillis, rebalanceTimeoutMs: vm.RebalanceTimeoutMillis,
			protocolType: v.ProtocolType, assignment: vm.Assignment,
			deadlineNs: c.nowNs + int64(vm.SessionTimeoutMillis)*msNs,
		}
		if v.Protocol != nil {
			m.protocols = []kmsg.JoinGroupRequestProtocol{{Name: *v.Protocol, Metadata: vm.Subscription}}
		}
		if m.rebalanceTimeoutMs < 0 {
			m.rebalanceTimeoutMs = m.sessionTimeoutMs // value v0 has none: Kafka uses the session timeout
		}
		g.members = append(g.members, m)
		g.byID[m.id] = m
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
	}
	if g.byID[g.leader] == nil {
		g.leader = g.members[0].id
	}
}

// Unload gives up partition partition of __consumer_offsets (another
// broker leads it now): its groups leave this coordinator, and every
// request they hold is answered NOT_COORDINATOR, so their members find the
// new coordinator. The host fails its pending appends for the partition
// first.
func (c *Coordinator) Unload(nowNs int64, partition int32, inPartition func(group string) bool) {
	c.begin(nowNs)
	defer c.end()
	delete(c.loads, partition)
	for _, id := range c.sortedIDs() {
		if inPartition(id) {
			c.dropGroup(c.groups[id], kerr.NotCoordinator)
		}
	}
}

// dropGroup answers every request g holds with err and forgets g.
func (c *Coordinator) dropGroup(g *group, err *kerr.Error) {
	for _, m := range append([]*member(nil), g.members...) {
		c.dropMember(g, m, err)
	}
	c.deleteGroup(g)
}

package group

import (
	"container/heap"
	"encoding/hex"
	"log/slog"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weirmq/weir/core/config"
)

// newMemberJoinTimeoutMs bounds how long a member that joined during a
// rebalance may stay in it without the join completing (Kafka's
// GroupCoordinator.NewMemberJoinTimeoutMs). Such a member has no session
// yet: a client that gave up on its JoinGroup and retries would otherwise
// leave a defunct member behind for as long as rebalances keep going.
const newMemberJoinTimeoutMs = 5 * 60 * 1000

const msNs = int64(1e6)

// Config is what the coordinator takes from the broker's configuration.
type Config struct {
	InitialRebalanceDelayMs int32 // group.initial.rebalance.delay.ms
	MinSessionTimeoutMs     int32 // group.min.session.timeout.ms
	MaxSessionTimeoutMs     int32 // group.max.session.timeout.ms
	MaxSize                 int32 // group.max.size
	OffsetMetadataMaxBytes  int32 // offset.metadata.max.bytes
	// OffsetsRetentionMs is offsets.retention.minutes in ms, and
	// OffsetsRetentionCheckIntervalMs how often expired offsets and empty
	// groups are swept.
	OffsetsRetentionMs              int64
	OffsetsRetentionCheckIntervalMs int64

	// KIP-848 consumer groups: group.consumer.session.timeout.ms,
	// group.consumer.heartbeat.interval.ms, group.consumer.max.size, and
	// the server assignors of group.consumer.assignors by short name, the
	// default first.
	ConsumerSessionTimeoutMs    int32
	ConsumerHeartbeatIntervalMs int32
	ConsumerMaxSize             int32
	ConsumerAssignors           []string
}

// ConfigFrom takes the group settings of a broker configuration.
func ConfigFrom(b *config.Broker) Config {
	return Config{
		InitialRebalanceDelayMs:         b.GroupInitialRebalanceDelayMs,
		MinSessionTimeoutMs:             b.GroupMinSessionTimeoutMs,
		MaxSessionTimeoutMs:             b.GroupMaxSessionTimeoutMs,
		MaxSize:                         b.GroupMaxSize,
		OffsetMetadataMaxBytes:          b.OffsetMetadataMaxBytes,
		OffsetsRetentionMs:              b.OffsetsRetentionMs,
		OffsetsRetentionCheckIntervalMs: b.OffsetsRetentionCheckIntervalMs,
		ConsumerSessionTimeoutMs:        b.GroupConsumerSessionTimeoutMs,
		ConsumerHeartbeatIntervalMs:     b.GroupConsumerHeartbeatIntervalMs,
		ConsumerMaxSize:                 b.GroupConsumerMaxSize,
		ConsumerAssignors:               b.GroupConsumerAssignors,
	}
}

// Rand is the seeded source member ids are drawn from.
type Rand interface{ Uint64() uint64 }

// Client is who sent a JoinGroup: its client.id (the prefix of generated
// member ids) and host (shown by DescribeGroups, Kafka style "/10.0.0.1").
type Client struct {
	ID   string
	Host string
}

// Coordinator holds every group of a node. It is not safe for concurrent
// use.
type Coordinator struct {
	cfg  Config
	rnd  Rand
	host Host
	log  *slog.Logger
	// loads are the partitions of __consumer_offsets being replayed.
	loads map[int32]*loading

	nowNs   int64
	groups  map[string]*group // indexed only; listings sort the ids
	timers  timerHeap
	seq     uint64
	touched []*group
	sweepNs int64
}

// New returns a coordinator without groups. nowNs is the current monotonic
// time; logger may be nil.
func New(cfg Config, rnd Rand, host Host, logger *slog.Logger, nowNs int64) *Coordinator {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.ConsumerAssignors) == 0 {
		panic("group: no consumer group assignor configured")
	}
	for _, a := range cfg.ConsumerAssignors {
		if assignors[a] == nil {
			panic("group: unknown consumer group assignor " + a)
		}
	}
	c := &Coordinator{
		cfg:    cfg,
		rnd:    rnd,
		host:   host,
		log:    logger,
		nowNs:  nowNs,
		groups: map[string]*group{},
		loads:  map[int32]*loading{},
	}
	if cfg.OffsetsRetentionCheckIntervalMs > 0 {
		c.sweepNs = nowNs + cfg.OffsetsRetentionCheckIntervalMs*msNs
	}
	return c
}

// begin starts a call at time nowNs: what fell due before it happens first.
func (c *Coordinator) begin(nowNs int64) {
	if nowNs < c.nowNs {
		panic("group: monotonic time went back")
	}
	c.nowNs = nowNs
	c.expire()
}

// end re-arms the timers of the groups the call changed, then does what
// the call itself made due at once.
func (c *Coordinator) end() {
	c.rearm()
	c.expire()
}

// touch notes that g changed, so its timer is recomputed at the end of the
// call.
func (c *Coordinator) touch(g *group) {
	if !g.touched {
		g.touched = true
		c.touched = append(c.touched, g)
	}
}

func (c *Coordinator) rearm() {
	for _, g := range c.touched {
		g.touched = false
		if g.deleted {
			continue
		}
		if d := g.nextDeadline(); d != g.wakeNs {
			g.wakeNs = d
			if d != 0 {
				c.seq++
				heap.Push(&c.timers, timer{atNs: d, seq: c.seq, g: g})
			}
		}
	}
	c.touched = c.touched[:0]
}

// Expire does whatever is due at nowNs: ends join barriers, removes members
// whose session expired, fails members that never sent SyncGroup, drops
// unused pending member ids, and sweeps expired offsets.
func (c *Coordinator) Expire(nowNs int64) {
	c.begin(nowNs)
	c.end()
}

// expire runs each group that is due once. A group that its own expiry
// makes due again at once waits for the next call, so a zero timeout can
// never spin inside one call.
func (c *Coordinator) expire() {
	var due []*group
	for len(c.timers) > 0 && c.timers[0].atNs <= c.nowNs {
		t := heap.Pop(&c.timers).(timer)
		g := t.g
		if g.deleted || g.wakeNs != t.atNs {
			continue // stale: the group's deadline moved
		}
		g.wakeNs = 0
		due = append(due, g)
	}
	for _, g := range due {
		c.touch(g)
		c.expireGroup(g)
	}
	if c.sweepNs != 0 && c.sweepNs <= c.nowNs {
		c.sweepNs = c.nowNs + c.cfg.OffsetsRetentionCheckIntervalMs*msNs
		c.sweep()
	}
	c.rearm()
}

// NextDeadline is the monotonic time at which Expire next has work, or zero
// when nothing is armed.
func (c *Coordinator) NextDeadline() int64 {
	for len(c.timers) > 0 {
		t := c.timers[0]
		if !t.g.deleted && t.g.wakeNs == t.atNs {
			break
		}
		heap.Pop(&c.timers)
	}
	d := c.sweepNs
	if len(c.timers) > 0 && (d == 0 || c.timers[0].atNs < d) {
		d = c.timers[0].atNs
	}
	return d
}

// groupStatus is Kafka's validateGroupStatus for the APIs of group
// membership: the group id must not be empty, and this coordinator must
// serve it and let it change (writable).
func (c *Coordinator) groupStatus(id string) *kerr.Error {
	if id == "" {
		return kerr.InvalidGroupID
	}
	return c.writable(id)
}

// writable is the check of every request that may change a group: this
// coordinator must serve it, and the group must not be being deleted. A
// group's deletion is visible only once its tombstones are committed (so
// no read sees a delete a failover could still undo); until then a request
// to change it is asked to retry (COORDINATOR_LOAD_IN_PROGRESS, retriable
// for every group API), which spares the coordinator ordering a change
// against a deletion whose outcome is not known yet.
func (c *Coordinator) writable(id string) *kerr.Error {
	if err := c.host.Owns(id); err != nil {
		return err
	}
	if g := c.groups[id]; g != nil && g.deleting {
		return kerr.CoordinatorLoadInProgress
	}
	return nil
}

// sortedIDs is every group id in order, for outputs and sweeps.
func (c *Coordinator) sortedIDs() []string {
	ids := make([]string, 0, len(c.groups))
	for id := range c.groups {
		ids = append(ids, id)
	}
	return sortedStrings(ids)
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}

// sweep is Kafka's cleanupGroupMetadata: expire offsets past retention
// (KIP-211: for a group with members' protocol type, retention counts from
// when it became empty; for a simple group and, as in Kafka, for a KIP-848
// consumer group, from each commit), then delete empty groups left without
// offsets.
func (c *Coordinator) sweep() {
	retention := c.cfg.OffsetsRetentionMs * msNs
	for _, id := range c.sortedIDs() {
		g := c.groups[id]
		if g.deleting {
			continue // its DeleteGroups is being written
		}
		if g.empty() || (g.cg == nil && g.protocolType == "") {
			var tombstones []Record
			for _, tp := range g.sortedOffsets() {
				o := g.offsets[tp]
				base := o.commitNs
				if g.cg == nil && g.protocolType != "" {
					base = g.stateSinceNs
				}
				if (o.expireNs != 0 && c.nowNs >= o.expireNs) || (o.expireNs == 0 && c.nowNs-base >= retention) {
					delete(g.offsets, tp)
					tombstones = append(tombstones, offsetTombstone(g.id, tp))
				}
			}
			if len(tombstones) > 0 {
				c.log.Info("expired committed offsets", "group", g.id, "count", len(tombstones))
				c.persist(g.id, tombstones)
			}
		}
		if g.empty() && len(g.offsets) == 0 && len(g.pendingCommits) == 0 {
			c.persist(g.id, groupTombstones(g))
			c.deleteGroup(g)
		}
	}
}

// persist appends records whose outcome nobody waits for: expiries and
// empty generations. A failed one is only logged; whoever loads the
// partition next redoes what it lost (an expiry is found again, an empty
// generation is superseded by the next stored one).
func (c *Coordinator) persist(group string, recs []Record) {
	c.host.Append(group, recs, func(_ int64, err *kerr.Error) {
		if err != nil {
			c.log.Warn("writing group records failed", "group", group, "records", len(recs), "err", err)
		}
	})
}

// removeGroup deletes g for good: its offsets and its metadata get
// tombstones, including offsets whose commit is still being written. The
// group leaves memory once they are committed; done gets the write's
// error, nil once the group is gone. A failed write leaves the group as it
// was (its tombstones may still commit, and take effect when the next
// coordinator replays them).
func (c *Coordinator) removeGroup(g *group, done func(*kerr.Error)) {
	var recs []Record
	for _, tp := range g.sortedOffsets() {
		recs = append(recs, offsetTombstone(g.id, tp))
	}
	for _, tp := range g.pendingCommits {
		if _, ok := g.offsets[tp]; !ok {
			recs = append(recs, offsetTombstone(g.id, tp))
		}
	}
	recs = append(recs, groupTombstones(g)...)
	g.deleting = true
	c.host.Append(g.id, recs, func(nowNs int64, err *kerr.Error) {
		c.begin(nowNs)
		defer c.end()
		g.deleting = false
		if err == nil && !g.deleted {
			c.deleteGroup(g)
		}
		done(err)
	})
}

func (c *Coordinator) deleteGroup(g *group) {
	g.deleted = true
	delete(c.groups, g.id)
}

// getOrCreate returns group id, creating it empty if asked to.
func (c *Coordinator) getOrCreate(id string, create bool) *group {
	g := c.groups[id]
	if g == nil && create {
		g = newGroup(id, c.nowNs)
		c.groups[id] = g
	}
	if g != nil {
		c.touch(g)
	}
	return g
}

// newMemberID is Kafka's member id: the client id (or the static member's
// instance id), a dash, and a random UUID.
func (c *Coordinator) newMemberID(prefix string) string {
	var b [16]byte
	x, y := c.rnd.Uint64(), c.rnd.Uint64()
	for i := 0; i < 8; i++ {
		b[i] = byte(x >> (56 - 8*i))
		b[8+i] = byte(y >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	var sb strings.Builder
	sb.WriteString(prefix)
	sb.WriteByte('-')
	sb.WriteString(h[0:8])
	sb.WriteByte('-')
	sb.WriteString(h[8:12])
	sb.WriteByte('-')
	sb.WriteString(h[12:16])
	sb.WriteByte('-')
	sb.WriteString(h[16:20])
	sb.WriteByte('-')
	sb.WriteString(h[20:32])
	return sb.String()
}

// timer is one entry of the coordinator's deadline heap. Entries are never
// removed when a group's deadline moves: a popped entry that no longer
// matches its group's wakeNs is simply skipped.
type timer struct {
	atNs int64
	seq  uint64 // ties broken by arming order, so expiry order is replayable
	g    *group
}

type timerHeap []timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].atNs != h[j].atNs {
		return h[i].atNs < h[j].atNs
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = timer{}
	*h = old[:len(old)-1]
	return t
}

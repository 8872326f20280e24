package sim

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/weirmq/weir/sim/check"
	"github.com/weirmq/weir/sim/disk"
	"github.com/weirmq/weir/sim/network"
	"github.com/weirmq/weir/sim/rng"
	"github.com/weirmq/weir/sim/sched"
	"github.com/weirmq/weir/sim/workload"
)

// Config is everything one seed draws: the broker and topic configuration,
// the workload mix, which fault classes are on and how often they fire.
// Drawing it from its own stream means a change to how the run proceeds
// never changes which configuration a seed means.
type Config struct {
	Seed uint64
	// Chaos is how long faults are injected; LivenessBound is how soon
	// after they stop every partition must take a write and serve it.
	Chaos, LivenessBound sched.Time
	// PageCache: topics use Kafka's page-cache durability (flush.messages
	// > 1), so acknowledgements rest on the page cache and only process
	// crashes, never machine crashes, are in the fault model.
	PageCache bool

	Broker   map[string]string
	Topics   []workload.TopicSpec
	Workload workload.Config
	Disk     disk.Config
	Net      network.Config

	// Fault switches and rates; an interval of zero means the class is off.
	CrashEvery     [2]sched.Time
	MachineCrash   rng.Ratio // of crashes, how many lose the machine
	RestartAfter   [2]sched.Time
	PauseEvery     [2]sched.Time
	PauseFor       [2]sched.Time
	ResetEvery     [2]sched.Time
	PartitionEvery [2]sched.Time
	PartitionFor   [2]sched.Time
	SlowLinkEvery  [2]sched.Time
	Jitter         bool
	ClockJumpEvery [2]sched.Time
	SkewMs         int64
	DriftPPM       int64
	// DiskGrace is how long disk errors stay off after an operator restart
	// ("the fault is cleared"), so the node can make progress.
	DiskGrace sched.Time
	// DiskLossEvery is how often a broker-only node loses its whole disk,
	// at most DiskLosses times in the run (cluster runs; see
	// drawDiskLoss).
	DiskLossEvery [2]sched.Time
	DiskLosses    int

	// Nodes is the cluster size; with more than one, the run is a cluster
	// run (see cluster.go). The first Voters nodes form the Raft quorum,
	// the others are broker-only nodes.
	Nodes, Voters int
	// DedicatedControllers: the voters have process.roles=controller
	// only, and the other nodes are the brokers.
	DedicatedControllers bool
	// Cluster holds the cluster runs' extra broker configuration.
	Cluster map[string]string
	// NodeSkewMs is each cluster node's wall clock offset.
	NodeSkewMs []int64
}

// draw builds seed's configuration. Short runs have a shorter chaos phase.
func draw(seed uint64, short, cluster bool) *Config {
	r := rng.New(seed, "config")
	c := &Config{Seed: seed, LivenessBound: 30 * sched.Second}
	c.Chaos = sched.Time(r.Range(20, 45)) * sched.Second
	if short {
		c.Chaos = sched.Time(r.Range(8, 15)) * sched.Second
	}
	on := func(p uint64) bool { return r.Chance(rng.Ratio{Num: p, Den: 100}) }
	interval := func(p uint64, lo, hi sched.Time) [2]sched.Time {
		if !on(p) {
			return [2]sched.Time{}
		}
		a := r.Range(lo, hi)
		return [2]sched.Time{a, a * r.Range(2, 4)}
	}
	c.PageCache = on(15)

	c.Broker = map[string]string{
		"auto.create.topics.enable":       "false",
		"log.retention.check.interval.ms": strconv.FormatInt(r.Range(200, 3000), 10),
	}
	if on(30) {
		c.Broker["max.incremental.fetch.session.cache.slots"] = strconv.FormatInt(r.Range(0, 3), 10)
	}
	if c.PageCache {
		c.Broker["log.flush.interval.messages"] = []string{"9223372036854775807", "50", "500"}[r.Pick(3)]
		if on(50) {
			c.Broker["log.flush.interval.ms"] = strconv.FormatInt(r.Range(200, 3000), 10)
		}
	}

	nTopics := int(r.Range(1, 3))
	for i := range nTopics {
		c.Topics = append(c.Topics, workload.TopicSpec{
			Name:       fmt.Sprintf("t%d", i),
			Partitions: int32(r.Range(1, 4)),
			Configs:    topicConfigs(r, on),
		})
	}

	w := &c.Workload
	w.RequestTimeout = sched.Time(r.Range(3, 8)) * sched.Second
	w.ProduceTimeoutMs = int32(r.Range(500, 2500))
	w.IdempotentProducers = int(r.Range(0, 3))
	w.PlainProducers = int(r.Range(0, 3))
	if w.IdempotentProducers+w.PlainProducers == 0 {
		w.IdempotentProducers = 1
	}
	w.Consumers = int(r.Range(1, 3))
	lo := r.Range(5, 100)
	w.ProduceEvery = [2]sched.Time{lo * sched.Millisecond, lo * r.Range(2, 5) * sched.Millisecond}
	w.MaxBatchRecords = int(r.Range(1, 5))
	w.Admin = on(60)
	if w.Admin {
		w.ChurnTopics = int(r.Range(0, 2))
		w.AdminEvery = [2]sched.Time{sched.Time(r.Range(300, 2000)) * sched.Millisecond, 4 * sched.Second}
		w.ChurnConfigs = topicConfigs(r, on)
	}

	c.drawGroups()
	c.drawSnapshots()

	c.Disk = disk.Config{
		MinLatency:  sched.Time(r.Range(5, 50)) * sched.Microsecond,
		MaxLatency:  sched.Time(r.Range(100, 2000)) * sched.Microsecond,
		SlowLatency: sched.Time(r.Range(50, 2000)) * sched.Millisecond,
		KeepSector:  r.RatioIn(0, 8, 8),
		KeepDirOps:  r.RatioIn(0, 4, 4),
		// Linux may drop pages whose writeback failed; page-cache mode
		// acknowledges from the page cache, so there it is not modelled.
		DropOnSyncError: !c.PageCache,
	}
	if on(40) {
		c.Disk.Slow = r.RatioIn(1, 20, 1000)
	}
	if on(20) {
		c.Disk.WriteEIO = r.RatioIn(1, 5, 10000)
	}
	if on(20) {
		c.Disk.SyncEIO = r.RatioIn(1, 5, 1000)
	}
	if on(15) {
		c.Disk.NoSpace = r.RatioIn(1, 5, 10000)
	}
	if on(30) {
		c.Disk.BitFlip = r.RatioIn(1, 50, 1000)
	}
	c.DiskGrace = sched.Time(r.Range(2, 8)) * sched.Second

	c.Net = network.Config{
		MinLatency:     sched.Time(r.Range(20, 200)) * sched.Microsecond,
		MaxLatency:     sched.Time(r.Range(200, 3000)) * sched.Microsecond,
		Jitter:         sched.Time(r.Range(10, 2000)) * sched.Microsecond,
		BytesPerSecond: r.Range(10, 1000) << 20,
		DialTimeout:    sched.Time(r.Range(200, 2000)) * sched.Millisecond,
	}
	c.Jitter = on(50)

	c.CrashEvery = interval(60, 2*sched.Second, 10*sched.Second)
	c.MachineCrash = r.RatioIn(1, 4, 4)
	if c.PageCache {
		c.MachineCrash = rng.Never
	}
	c.RestartAfter = [2]sched.Time{sched.Time(r.Range(10, 500)) * sched.Millisecond, 3 * sched.Second}
	c.PauseEvery = interval(30, 2*sched.Second, 10*sched.Second)
	c.PauseFor = [2]sched.Time{10 * sched.Millisecond, sched.Time(r.Range(100, 6000)) * sched.Millisecond}
	c.ResetEvery = interval(40, 200*sched.Millisecond, 3*sched.Second)
	c.PartitionEvery = interval(30, sched.Second, 8*sched.Second)
	c.PartitionFor = [2]sched.Time{50 * sched.Millisecond, sched.Time(r.Range(500, 10000)) * sched.Millisecond}
	c.SlowLinkEvery = interval(25, sched.Second, 8*sched.Second)
	c.ClockJumpEvery = interval(20, 2*sched.Second, 10*sched.Second)
	if on(40) {
		c.SkewMs = r.Range(-5000, 5000)
		if on(20) {
			c.SkewMs *= 1000
		}
	}
	if on(30) {
		c.DriftPPM = r.Range(-100000, 100000)
	}
	c.Nodes, c.Voters = 1, 1
	if cluster {
		c.drawCluster()
		c.drawReplication()
		c.drawReassign()
		c.drawDiskLoss()
	}
	return c
}

// drawDiskLoss switches whole-disk loss on, from its own stream, for three
// in four of the cluster seeds that can survive it: those with broker-only
// nodes (a voter's disk holds the quorum's log and votes, which no quorum
// survives losing unnoticed) whose topics all have min.insync.replicas
// M >= 2.
// Claim 1 covers the loss of up to M-1 disks, so a run loses at most M-1;
// the broker default min.insync.replicas becomes M, so __consumer_offsets,
// created with it, is covered too.
func (c *Config) drawDiskLoss() {
	r := rng.New(c.Seed, "config/disk-loss")
	_, m := c.Workload.EffectiveReplication()
	if c.Voters == c.Nodes || m < 2 || !r.Chance(rng.Ratio{Num: 3, Den: 4}) {
		return
	}
	c.DiskLosses = int(m) - 1
	c.Broker["min.insync.replicas"] = strconv.Itoa(int(m))
	lo := sched.Time(r.Range(2, 10)) * sched.Second
	c.DiskLossEvery = [2]sched.Time{lo, lo * r.Range(2, 3)}
}

// drawReplication draws, from its own stream, the replication factor of
// a cluster run's data topics (1 to min(brokers, 5)) and their
// min.insync.replicas (1 to min(factor, 3)); MaxReplicationFactor caps
// what they are created with.
func (c *Config) drawReplication() {
	r := rng.New(c.Seed, "config/replication")
	brokers := c.Nodes
	if c.DedicatedControllers {
		brokers -= c.Voters
	}
	w := &c.Workload
	w.ReplicationFactor = int16(r.Range(1, int64(min(brokers, 5))))
	w.MinInsyncReplicas = int16(r.Range(1, int64(min(w.ReplicationFactor, 3))))
	w.MaxReplicationFactor = MaxReplicationFactor
}

// drawReassign switches partition reassignment of the data topics on for
// half the cluster seeds (swarm testing) and draws how often the operator
// acts, from its own stream so the other draws mean what they meant.
func (c *Config) drawReassign() {
	r := rng.New(c.Seed, "config/reassign")
	if !r.Coin() {
		return
	}
	lo := sched.Time(r.Range(300, 3000)) * sched.Millisecond
	c.Workload.ReassignEvery = [2]sched.Time{lo, lo * r.Range(2, 4)}
}

// drawGroups switches consumer groups on for some seeds (swarm testing: a
// seed without them stresses the rest harder). It draws from its own
// stream so the draws before it mean what they meant before groups came.
func (c *Config) drawGroups() {
	r := rng.New(c.Seed, "config/groups")
	if !r.Chance(rng.Ratio{Num: 40, Den: 100}) {
		return
	}
	c.Workload.Groups = int(r.Range(1, 2))
	c.Workload.GroupMembers = int(r.Range(1, 4))
	// Few partitions of __consumer_offsets, so that groups share one
	// often and each replays a log of some length; Kafka's 50 would cost
	// the simulator more than it finds. Without groups the topic is never
	// created.
	c.Broker["offsets.topic.num.partitions"] = strconv.FormatInt(r.Range(1, 4), 10)
	// Some groups speak KIP-848, with sessions as short as the classic
	// members' (Kafka's defaults, 45 s, would leave a crashed member's
	// partitions idle for most of a run).
	c.Workload.ConsumerGroups = int(r.Range(0, int64(c.Workload.Groups)))
	if c.Workload.ConsumerGroups > 0 {
		c.Broker["group.consumer.min.session.timeout.ms"] = "6000"
		c.Broker["group.consumer.session.timeout.ms"] = strconv.FormatInt(r.Range(6, 10)*1000, 10)
		c.Broker["group.consumer.min.heartbeat.interval.ms"] = "1000"
		c.Broker["group.consumer.heartbeat.interval.ms"] = strconv.FormatInt(r.Range(1, 3)*1000, 10)
	}
	c.drawGroupAdmin()
}

// drawGroupAdmin switches the group admin on for some seeds with groups,
// from its own stream so the other draws mean what they meant.
func (c *Config) drawGroupAdmin() {
	r := rng.New(c.Seed, "config/group-admin")
	if !r.Chance(rng.Ratio{Num: 60, Den: 100}) {
		return
	}
	lo := sched.Time(r.Range(3, 10)) * sched.Second
	c.Workload.GroupAdminEvery = [2]sched.Time{lo, lo * r.Range(2, 3)}
}

// groupFence is how soon a KIP-848 coordinator may fence a member on its
// own: the configured session timeout, and the smallest rebalance timeout
// members send.
func (c *Config) groupFence() check.FenceBounds {
	sessionMs := int64(45000) // group.consumer.session.timeout.ms's default
	if v, ok := c.Broker["group.consumer.session.timeout.ms"]; ok {
		sessionMs = parseInt(v)
	}
	return check.FenceBounds{SessionNs: sessionMs * 1e6, RebalanceNs: workload.MinRebalanceSec * 1e9}
}

// forceGroups gives the run consumer groups of members members, whatever
// the seed drew (Options.GroupMembers).
func (c *Config) forceGroups(members int) {
	c.Workload.Groups = max(c.Workload.Groups, 1)
	c.Workload.GroupMembers = members
	if _, ok := c.Broker["offsets.topic.num.partitions"]; !ok {
		c.Broker["offsets.topic.num.partitions"] = "1"
	}
}

// drawSnapshots makes half the seeds snapshot their metadata log often, so
// that compaction, recovery from a snapshot and (in a cluster) snapshots
// sent to lagging nodes run. Its own stream keeps other draws as they were.
func (c *Config) drawSnapshots() {
	r := rng.New(c.Seed, "config/snapshots")
	if r.Coin() {
		c.Broker["metadata.log.max.record.bytes.between.snapshots"] = strconv.FormatInt(r.Range(200, 2000), 10)
	}
}

// drawCluster draws a cluster run's size, quorum and timeouts from its
// own stream.
func (c *Config) drawCluster() {
	r := rng.New(c.Seed, "config/cluster")
	c.Nodes = []int{3, 5}[r.Pick(2)]
	c.Voters = c.Nodes
	if c.Nodes == 5 && r.Coin() {
		c.Voters = 3 // two broker-only nodes follow the log as learners
		c.DedicatedControllers = r.Coin()
	}
	c.Cluster = map[string]string{
		"controller.quorum.election.timeout.ms": strconv.FormatInt(r.Range(300, 2000), 10),
		"broker.heartbeat.interval.ms":          strconv.FormatInt(r.Range(200, 2000), 10),
	}
	c.Cluster["broker.session.timeout.ms"] = strconv.FormatInt(r.Range(3, 6)*parseInt(c.Cluster["broker.heartbeat.interval.ms"]), 10)
	// A cluster's faults come faster than a single node's: elections,
	// votes cast just before a crash, and nodes left behind are what
	// the quorum must survive.
	interval := func(pct uint64, lo, hi sched.Time) [2]sched.Time {
		if !r.Chance(rng.Ratio{Num: pct, Den: 100}) {
			return [2]sched.Time{}
		}
		a := r.Range(lo, hi)
		return [2]sched.Time{a, a * r.Range(2, 4)}
	}
	c.CrashEvery = interval(85, 300*sched.Millisecond, 4*sched.Second)
	c.RestartAfter = [2]sched.Time{sched.Time(r.Range(1, 300)) * sched.Millisecond, 3 * sched.Second}
	c.PartitionEvery = interval(60, 500*sched.Millisecond, 5*sched.Second)
	for range c.Nodes {
		skew := int64(0)
		if r.Coin() {
			skew = r.Range(-5000, 5000)
		}
		c.NodeSkewMs = append(c.NodeSkewMs, skew)
	}
}

func parseInt(s string) int64 {
	v, _ := strconv.ParseInt(s, 10, 64)
	return v
}

// topicConfigs draws small segments (so logs roll), sometimes retention (so
// segments get deleted), a small index interval, and other per-topic knobs.
func topicConfigs(r *rng.Rand, on func(uint64) bool) map[string]string {
	m := map[string]string{}
	if on(80) {
		m["segment.bytes"] = strconv.FormatInt(r.Range(1, 64)<<10, 10)
	}
	if on(20) {
		m["segment.ms"] = strconv.FormatInt(r.Range(1000, 10000), 10)
	}
	if on(35) {
		m["retention.bytes"] = strconv.FormatInt(r.Range(4, 128)<<10, 10)
	}
	if on(30) {
		m["retention.ms"] = strconv.FormatInt(r.Range(2000, 30000), 10)
	} else if on(15) {
		m["message.timestamp.type"] = "LogAppendTime"
	}
	if on(30) {
		m["index.interval.bytes"] = strconv.FormatInt(r.Range(64, 1024), 10)
	}
	return m
}

// retention returns a topic's retention limits as the checkers see them.
func (c *Config) retention(topic string) check.Retention {
	cfg := c.Workload.ChurnConfigs
	for _, t := range c.Topics {
		if t.Name == topic {
			cfg = t.Configs
		}
	}
	ret := check.Retention{Ms: 604800000, Bytes: -1}
	if v, ok := cfg["retention.ms"]; ok {
		ret.Ms, _ = strconv.ParseInt(v, 10, 64)
	}
	if v, ok := cfg["retention.bytes"]; ok {
		ret.Bytes, _ = strconv.ParseInt(v, 10, 64)
	}
	return ret
}

func (c *Config) String() string {
	var sb strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&sb, format+"\n", args...) }
	iv := func(v [2]sched.Time) string {
		if v[0] == 0 {
			return "off"
		}
		return fmt.Sprintf("every %v-%v", dur(v[0]), dur(v[1]))
	}
	p("seed %d: chaos %v, liveness bound %v, page-cache mode %v", c.Seed, dur(c.Chaos), dur(c.LivenessBound), c.PageCache)
	p("broker: %s", kv(c.Broker))
	for _, t := range c.Topics {
		p("topic %s: %d partitions %s", t.Name, t.Partitions, kv(t.Configs))
	}
	w := c.Workload
	p("workload: %d idempotent + %d plain producers (batch every %v-%v, up to %d records), %d consumers, admin %v (%d churn topics %s), request timeout %v",
		w.IdempotentProducers, w.PlainProducers, dur(w.ProduceEvery[0]), dur(w.ProduceEvery[1]), w.MaxBatchRecords,
		w.Consumers, w.Admin, w.ChurnTopics, kv(w.ChurnConfigs), dur(w.RequestTimeout))
	p("consumer groups: %d (%d of them KIP-848), of %d members each; group admin %s", w.Groups, w.ConsumerGroups, w.GroupMembers, iv(w.GroupAdminEvery))
	d := c.Disk
	p("disk: latency %v-%v, slow %v (up to %v), write EIO %v, fsync EIO %v, ENOSPC %v, bit flip %v, crash keeps sectors %v, dir ops %v, grace %v",
		dur(d.MinLatency), dur(d.MaxLatency), d.Slow, dur(d.SlowLatency), d.WriteEIO, d.SyncEIO, d.NoSpace, d.BitFlip, d.KeepSector, d.KeepDirOps, dur(c.DiskGrace))
	n := c.Net
	p("net: latency %v-%v, jitter %v (%v), %d MiB/s; resets %s, partitions %s (for up to %v), slow links %s",
		dur(n.MinLatency), dur(n.MaxLatency), c.Jitter, dur(n.Jitter), n.BytesPerSecond>>20, iv(c.ResetEvery), iv(c.PartitionEvery), dur(c.PartitionFor[1]), iv(c.SlowLinkEvery))
	if c.Nodes > 1 {
		p("cluster: %d nodes, %d voters (controller-only %v) %s, wall clock skews %v ms", c.Nodes, c.Voters, c.DedicatedControllers, kv(c.Cluster), c.NodeSkewMs)
		rf, minISR := w.EffectiveReplication()
		p("replication: drawn factor %d, min.insync.replicas %d; capped at %d (MaxReplicationFactor): topics get factor %d, min.insync.replicas %d",
			w.ReplicationFactor, w.MinInsyncReplicas, w.MaxReplicationFactor, rf, minISR)
		if c.DiskLosses > 0 {
			p("disk loss: %s, at most %d disks (broker-only nodes)", iv(c.DiskLossEvery), c.DiskLosses)
		}
		if w.ReassignEvery[0] == 0 {
			p("operator: partition reassignment off")
		} else {
			p("operator: partition reassignment on, %s (data topics)", iv(w.ReassignEvery))
		}
	}
	p("process: crashes %s (machine %v), restart after %v-%v, pauses %s (up to %v); clock skew %dms, drift %dppm, jumps %s",
		iv(c.CrashEvery), c.MachineCrash, dur(c.RestartAfter[0]), dur(c.RestartAfter[1]), iv(c.PauseEvery), dur(c.PauseFor[1]), c.SkewMs, c.DriftPPM, iv(c.ClockJumpEvery))
	return sb.String()
}

func kv(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func dur(t sched.Time) string {
	switch {
	case t >= sched.Second:
		return strconv.FormatFloat(float64(t)/1e9, 'f', -1, 64) + "s"
	case t >= sched.Millisecond:
		return strconv.FormatFloat(float64(t)/1e6, 'f', -1, 64) + "ms"
	}
	return strconv.FormatFloat(float64(t)/1e3, 'f', -1, 64) + "µs"
}

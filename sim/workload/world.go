package workload

import (
	"fmt"

	"github.com/weirmq/weir/sim/fault"
	"github.com/weirmq/weir/sim/history"
	"github.com/weirmq/weir/sim/network"
	"github.com/weirmq/weir/sim/rng"
	"github.com/weirmq/weir/sim/sched"
	"github.com/weirmq/weir/sim/trace"
)

// Config is the workload mix, drawn per seed.
type Config struct {
	// RequestTimeout is how long a client waits for a response before it
	// gives up on the connection.
	RequestTimeout sched.Time
	// ProduceTimeoutMs is the produce request's own timeout (the broker's
	// purgatory wait); below RequestTimeout.
	ProduceTimeoutMs int32

	IdempotentProducers int
	PlainProducers      int
	Consumers           int
	// Admin runs the admin client: partitions added, churn topics created
	// and deleted; ChurnTopics is how many names it recycles.
	Admin       bool
	ChurnTopics int

	// ProduceEvery bounds the pause between a producer's batches.
	ProduceEvery [2]sched.Time
	// MaxBatchRecords bounds the records in one batch.
	MaxBatchRecords int
	// AdminEvery bounds the pause between admin actions.
	AdminEvery [2]sched.Time
	// ChurnConfigs are topic configs for churn topics.
	ChurnConfigs map[string]string
	// ReassignEvery bounds the pause between the reassigner's actions
	// (cluster runs: partition reassignments of the data topics; zero:
	// off).
	ReassignEvery [2]sched.Time
	// Groups is how many consumer groups run (0: none), each with
	// GroupMembers members reading one of the setup topics; the last
	// ConsumerGroups of them use the KIP-848 protocol, the others the
	// classic one.
	Groups, GroupMembers, ConsumerGroups int
	// GroupAdminEvery bounds the pause between the group admin's actions:
	// deleting groups and committed offsets (zero: no group admin).
	GroupAdminEvery [2]sched.Time
	// Brokers lists the nodes with the broker role (nil: all).
	Brokers []int
	// ReplicationFactor and MinInsyncReplicas, in a cluster run, are what
	// the data workload's topics are created with (drawn per seed; 0: the
	// single-node defaults), capped by MaxReplicationFactor (see
	// sim.MaxReplicationFactor): EffectiveReplication gives the values used.
	ReplicationFactor, MinInsyncReplicas, MaxReplicationFactor int16
	// ForeignPrefix names topics other workloads own (the metadata
	// workload's), which the prober and final read leave alone.
	ForeignPrefix string
}

// EffectiveReplication returns the replication factor and
// min.insync.replicas topics are created with: the drawn ones, capped
// (0, 0 outside cluster runs).
func (c Config) EffectiveReplication() (rf, minISR int16) {
	if c.ReplicationFactor <= 0 {
		return 0, 0
	}
	rf = c.ReplicationFactor
	if c.MaxReplicationFactor > 0 {
		rf = min(rf, c.MaxReplicationFactor)
	}
	return rf, max(1, min(c.MinInsyncReplicas, rf))
}

// Topic is what clients believe about a topic.
type Topic struct {
	Name       string
	ID         history.TopicID
	Partitions int32
	// Exists: clients believe it exists (churn topics come and go).
	Exists bool
	Churn  bool
}

// TopicSpec is a topic to create at setup.
type TopicSpec struct {
	Name       string
	Partitions int32
	Configs    map[string]string
}

// World is the clients' shared environment.
type World struct {
	Loop *sched.Loop
	Net  *network.Network
	// Nodes are the nodes clients may connect to, by index (broker id
	// index+1); a single-node run has one.
	Nodes   []network.Node
	History *history.History
	rnd     *rng.Rand
	cfg     Config
	tr      *trace.Trace
	counts  *fault.Counts
	fail    func(checker, msg string)

	Topics []*Topic
	// active: workloads start new operations (the chaos phase).
	active bool
	// stopped: the run is over; clients drop whatever comes back.
	stopped bool

	producers []*producer
	consumers []*consumer
	members   []*member
	admin     *admin
	// groupAdmin deletes groups and offsets (nil: not in this run).
	groupAdmin *groupAdmin
	// reassigner moves the data topics' replicas (nil: not in this run).
	reassigner *reassigner
	prober     *final
}

// NewWorld returns a world over nodes; fail reports a violation seen by a
// client.
func NewWorld(loop *sched.Loop, net *network.Network, nodes []network.Node, h *history.History, rnd *rng.Rand, cfg Config,
	counts *fault.Counts, tr *trace.Trace, fail func(checker, msg string)) *World {
	return &World{Loop: loop, Net: net, Nodes: nodes, History: h, rnd: rnd, cfg: cfg, counts: counts, tr: tr, fail: fail}
}

func (w *World) trace(format string, args ...any) {
	w.tr.Add("client", fmt.Sprintf(format, args...))
}

// topic returns the catalogue entry for name.
func (w *World) topic(name string) *Topic {
	for _, t := range w.Topics {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// gone reports whether clients believe partition p of topic name gone.
func (w *World) gone(name string, p int32) bool {
	t := w.topic(name)
	return t == nil || !t.Exists || p >= t.Partitions
}

// live lists topics believed to exist with at least one partition.
func (w *World) live() []*Topic {
	var out []*Topic
	for _, t := range w.Topics {
		if t.Exists && t.Partitions > 0 {
			out = append(out, t)
		}
	}
	return out
}

// Setup creates the topics every workload uses, before any fault, and
// calls done once all exist.
func (w *World) Setup(specs []TopicSpec, done func()) {
	w.admin = newAdmin(w)
	left := len(specs)
	for _, s := range specs {
		t := &Topic{Name: s.Name, Partitions: s.Partitions}
		w.Topics = append(w.Topics, t)
		w.admin.create(t, s.Configs, func(ok bool) {
			if !ok {
				w.fail("setup", fmt.Sprintf("creating topic %s failed with no faults active", t.Name))
				return
			}
			if left--; left == 0 {
				done()
			}
		})
	}
}

// Start begins the workloads.
func (w *World) Start() {
	w.active = true
	for i := range w.cfg.ChurnTopics {
		w.Topics = append(w.Topics, &Topic{Name: fmt.Sprintf("churn-%d", i), Churn: true})
	}
	for i := range w.cfg.IdempotentProducers {
		w.producers = append(w.producers, newProducer(w, fmt.Sprintf("p%d", i), true))
	}
	for i := range w.cfg.PlainProducers {
		w.producers = append(w.producers, newProducer(w, fmt.Sprintf("q%d", i), false))
	}
	for i := range w.cfg.Consumers {
		w.consumers = append(w.consumers, newConsumer(w, fmt.Sprintf("c%d", i)))
	}
	// Groups read setup topics, which are never deleted, so a group's
	// committed offsets are never dropped with their topic.
	setup := 0
	for _, t := range w.Topics {
		if !t.Churn {
			setup++
		}
	}
	for g := range w.cfg.Groups {
		join := newMember
		if g >= w.cfg.Groups-w.cfg.ConsumerGroups {
			join = newMember848
		}
		for i := range w.cfg.GroupMembers {
			w.members = append(w.members, join(w, fmt.Sprintf("g%dm%d", g, i), fmt.Sprintf("group-%d", g), w.Topics[g%setup].Name))
		}
	}
	for _, p := range w.producers {
		p.start()
	}
	for _, c := range w.consumers {
		c.start()
	}
	for _, m := range w.members {
		m.start()
	}
	if w.cfg.Admin {
		w.admin.start()
	}
	if w.cfg.GroupAdminEvery[0] > 0 && len(w.members) > 0 {
		w.groupAdmin = newGroupAdmin(w)
		w.groupAdmin.start()
	}
	if w.cfg.ReassignEvery[0] > 0 && len(w.Nodes) > 1 {
		w.reassigner = newReassigner(w)
		w.reassigner.start()
	}
}

// every calls act now and then after each pause drawn from bounds, while
// the workloads are active, skipping a turn while *busy: an admin client
// does one thing at a time.
func (w *World) every(rnd *rng.Rand, bounds [2]sched.Time, busy *bool, act func()) {
	if !w.active || w.stopped {
		return
	}
	w.Loop.After(rnd.Range(bounds[0], bounds[1]), func() { w.every(rnd, bounds, busy, act) })
	if !*busy {
		act()
	}
}

// Stop ends new work: producers finish (idempotent ones keep retrying
// what they have), consumers, the admin and the reassigner stop.
func (w *World) Stop() { w.active = false }

// Halt ends every workload client: their connections close, so nothing
// can be acknowledged to them any more and the final read sees all that
// was.
func (w *World) Halt() {
	w.stopped = true
	for _, p := range w.producers {
		p.halt()
	}
	for _, c := range w.consumers {
		c.halt()
	}
	for _, m := range w.members {
		m.halt()
	}
	if w.admin != nil {
		w.admin.halt()
	}
	if w.groupAdmin != nil {
		w.groupAdmin.halt()
	}
	if w.reassigner != nil {
		w.reassigner.halt()
	}
	if w.prober != nil {
		// Its work is done; a probe of a pass it abandoned may still
		// wait for a leader.
		w.prober.seal()
	}
}

// Unfinished reports how many idempotent batches still await an outcome.
func (w *World) Unfinished() int {
	n := 0
	for _, p := range w.producers {
		n += p.unacked()
	}
	return n
}

// timestampMs is true wall time, which the clients' clocks keep.
func (w *World) timestampMs() int64 { return sched.EpochMs + w.Loop.Now()/1e6 }

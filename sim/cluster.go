package sim

// A cluster run simulates 3 or 5 nodes with a Raft metadata quorum under
// crashes (with and without the page cache), process pauses, nodes cut off
// from each other (the active controller often), wall clock skew and
// jumps, disk faults, and lost disks of broker-only nodes. Clients create,
// delete and grow topics through random nodes. Checked: one active controller per term, committed
// metadata never rewritten, one leader per partition per leader epoch
// (online, as nodes apply the log); after the heal, a metadata operation
// succeeds, every node's image converges, and every acknowledged metadata
// operation is in it (claims 6 and 7).
//
// The data workloads (producers, consumers, groups, the admin client, the
// prober and the final reader) run too, over every broker: their topics
// are created with a replication factor and min.insync.replicas drawn per
// seed (capped by MaxReplicationFactor) and placed by the controller, and
// the clients find each partition's leader from the metadata, as Kafka
// clients do (workload's router). Group members find their group's
// coordinator, the leader of its __consumer_offsets partition, and follow
// it when leadership moves. Every node is crashed, paused, cut off
// and fenced like any other, so claims 1, 2, 3 and 5 are checked on
// brokers whose metadata comes from the quorum. In half the seeds an
// operator reassigns the data partitions' replicas meanwhile (workload's
// reassigner); after the heal, every reassignment still under way must
// complete within the liveness bound.

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/weirmq/weir/core/broker"
	"github.com/weirmq/weir/core/config"
	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/raft"
	"github.com/weirmq/weir/sim/check"
	"github.com/weirmq/weir/sim/disk"
	"github.com/weirmq/weir/sim/fault"
	"github.com/weirmq/weir/sim/history"
	"github.com/weirmq/weir/sim/network"
	"github.com/weirmq/weir/sim/proc"
	"github.com/weirmq/weir/sim/rng"
	"github.com/weirmq/weir/sim/sched"
	"github.com/weirmq/weir/sim/trace"
	"github.com/weirmq/weir/sim/workload"
)

// MaxReplicationFactor caps the replication factor cluster runs draw for
// the data workload's topics (from 1 to min(brokers, 5)); lowering it
// narrows a hunt to fewer replicas. min.insync.replicas (drawn from 1 to
// min(factor, 3)) is capped by the capped factor. Both draws and the cap
// are in the printed configuration.
const MaxReplicationFactor = 5

type clusterRun struct {
	r      *run
	cfg    *Config
	loop   *sched.Loop
	tr     *trace.Trace
	counts *fault.Counts
	net    *network.Network
	nodes  []*proc.Node
	world  *workload.World
	meta   *workload.Meta
	hist   history.History
	log    *check.MetaLog
	nem    *rng.Rand
	fail   func(check.Failure)

	healAt   sched.Time
	healedIn sched.Time
	// reassigned: after the heal, a listing found no partition
	// reassignment under way.
	reassigned  bool
	bootPending []bool
	restarting  []bool
	// disksLost counts the whole disks lost so far.
	disksLost int

	// controller is the node last seen becoming the active controller,
	// lostAt when it crashed or was cut off (-1: it was not).
	controller int
	lostAt     sched.Time
	gaps       []sched.Time

	// heardAt[i][j] is when node i last took a Raft message from node j;
	// leading[i] since when node i has led; electionTimeout the quorum's.
	heardAt         [][]sched.Time
	leading         []leadSpan
	electionTimeout sched.Time
}

// startCluster builds the cluster run's world on r's loop and trace.
func (r *run) startCluster(seed uint64) {
	cfg := r.cfg
	c := &clusterRun{r: r, cfg: cfg, loop: &r.loop, tr: r.tr, counts: &r.counts, nem: r.nem, fail: r.fail,
		healedIn: -1, controller: -1, lostAt: -1,
		bootPending: make([]bool, cfg.Nodes), restarting: make([]bool, cfg.Nodes)}
	r.cluster = c
	c.log = check.NewMetaLog(r.fail)
	c.log.Trace = func(msg string) { c.tr.Add("meta", msg) }
	c.heardAt = make([][]sched.Time, cfg.Nodes)
	for i := range c.heardAt {
		c.heardAt[i] = make([]sched.Time, cfg.Nodes)
	}
	c.leading = make([]leadSpan, cfg.Nodes)
	c.electionTimeout = sched.Time(parseInt(cfg.Cluster["controller.quorum.election.timeout.ms"])) * sched.Millisecond
	c.net = network.New(c.loop, rng.New(seed, "net"), cfg.Net, c.counts, c.tr)
	var voters []string
	for i := range cfg.Voters {
		voters = append(voters, fmt.Sprintf("%d@n%d:9093", i+1, i+1))
	}
	var netNodes []network.Node
	for i := range cfg.Nodes {
		values := map[string]string{}
		for k, v := range cfg.Broker {
			values[k] = v
		}
		for k, v := range cfg.Cluster {
			values[k] = v
		}
		values["node.id"] = strconv.Itoa(i + 1)
		values["controller.quorum.voters"] = strings.Join(voters, ",")
		values["controller.listener.names"] = "CONTROLLER"
		values["listeners"] = fmt.Sprintf("PLAINTEXT://n%d:9092,CONTROLLER://n%d:9093", i+1, i+1)
		switch {
		case i >= cfg.Voters:
			values["process.roles"] = "broker"
			values["listeners"] = fmt.Sprintf("PLAINTEXT://n%d:9092", i+1)
		case cfg.DedicatedControllers:
			values["process.roles"] = "controller"
		}
		bcfg, _, err := config.NewBroker(values)
		if err != nil {
			panic(fmt.Sprintf("sim: node %d config %v: %v", i+1, values, err))
		}
		dcfg := cfg.Disk
		dcfg.Unexpected = func(msg string) {
			r.fail(check.Failure{Checker: "contract", Claim: "DESIGN.md section 4: the node's disk operations are valid", Msg: msg})
		}
		d := disk.New(c.loop, rng.New(seed, fmt.Sprintf("disk/%d", i)), dcfg, c.counts, c.tr)
		n := proc.New(c.loop, rng.New(seed, fmt.Sprintf("proc/%d", i)), proc.Config{
			ID: i, Broker: bcfg, SkewMs: cfg.NodeSkewMs[i], BatchWindow: 200 * sched.Microsecond,
		}, d, c.net, c.counts, c.tr)
		i := i
		n.StorageError = func() { c.storageError(i) }
		n.Unexpected = func(msg string) {
			r.fail(check.Failure{Checker: "contract", Claim: "the port contract", Msg: msg})
		}
		n.SendPeer = func(e port.SendPeer) { c.sendPeer(i, e) }
		n.Observer.Applied = func(index, term uint64, data []byte) { c.log.Applied(i+1, index, term, data) }
		n.Observer.Controller = func(term uint64) { c.newController(i, term) }
		c.nodes = append(c.nodes, n)
		netNodes = append(netNodes, n)
	}
	wcfg := cfg.Workload
	wcfg.Brokers, wcfg.ForeignPrefix = c.brokerNodes(), workload.MetaPrefix
	c.world = workload.NewWorld(c.loop, c.net, netNodes, &r.hist, rng.New(seed, "workload"), wcfg, c.counts, c.tr,
		func(checker, msg string) {
			r.fail(check.Failure{Checker: checker, Claim: clientClaim(checker), Msg: msg})
		})
	r.world = c.world
	r.hist.Observe(check.NewMonitor(&r.hist, r.fail))
	c.meta = workload.NewMeta(c.world, c.brokers())
	r.tr.Add("sim", "config:\n"+cfg.String())
	for i := range c.nodes {
		c.boot(i)
	}
	c.checkLeases()
	c.setup(r)
}

// setup waits for the cluster to form (every broker registered and
// unfenced), creates the workload's topics, then starts the chaos.
func (c *clusterRun) setup(r *run) {
	if _, ok := c.converged(); !ok {
		c.loop.After(100*sched.Millisecond, func() { c.setup(r) })
		return
	}
	c.world.Setup(c.cfg.Topics, func() { c.chaos(r) })
}

// crash ends node i's process.
func (c *clusterRun) crash(i int, kind proc.CrashKind) {
	c.lose(i)
	c.nodes[i].Crash(kind)
}

func (c *clusterRun) sendPeer(from int, e port.SendPeer) {
	to := int(e.To) - 1
	if to < 0 || to >= len(c.nodes) {
		return
	}
	if m, ok := broker.PeerRaftMessage(e.Data); ok {
		c.log.Sent(from+1, m)
	}
	_, isRaft := broker.PeerRaftMessage(e.Data)
	dst := c.nodes[to]
	inc := dst.Incarnation()
	c.net.Peer(from, to, len(e.Data), func() {
		if isRaft && dst.Running() && dst.Incarnation() == inc {
			c.heardAt[to][from] = c.loop.Now()
		}
		dst.Peer(inc, port.NodeID(from+1), e.Data)
	})
}

// checkLeases fails the run when a node acts as the leader (the active
// controller) without having heard from a quorum of voters for longer than
// check-quorum allows: two election timeouts, plus slack for a tick and
// the network. Past that, the other side may have elected a controller in
// a higher term, and two nodes would act as controller at once.
func (c *clusterRun) checkLeases() {
	now := c.loop.Now()
	for i, n := range c.nodes {
		b := n.Broker()
		if b == nil || n.Paused() {
			c.leading[i] = leadSpan{}
			continue
		}
		st := b.RaftStatus()
		if st.Role != raft.Leader {
			c.leading[i] = leadSpan{}
			continue
		}
		if c.leading[i].term != st.Term {
			c.leading[i] = leadSpan{term: st.Term, since: now}
		}
		window := 5 * c.electionTimeout / 2
		if now-c.leading[i].since < window {
			continue
		}
		heard := 0
		for v := range c.cfg.Voters {
			if v == i || now-c.heardAt[i][v] <= window {
				heard++
			}
		}
		if heard < c.cfg.Voters/2+1 {
			c.fail(check.Failure{Checker: "controller-lease", Claim: check.Claim6, Msg: fmt.Sprintf(
				"node %d still leads term %d but heard from only %d of %d voters in the last %s", i+1, st.Term, heard, c.cfg.Voters, dur(window))})
			return
		}
	}
	c.loop.After(50*sched.Millisecond, c.checkLeases)
}

// leadSpan is since when a node has led in a term.
type leadSpan struct {
	term  uint64
	since sched.Time
}

func (c *clusterRun) newController(node int, term uint64) {
	c.log.Controller(node+1, term)
	if c.lostAt >= 0 {
		c.gaps = append(c.gaps, c.loop.Now()-c.lostAt)
		c.tr.Addf("sim", "new controller node %d (term %d) %s after the last one was lost", node, term, dur(c.loop.Now()-c.lostAt))
	}
	c.controller, c.lostAt = node, -1
}

// lose notes that node crashed or was cut off, for the controller
// failover measure.
func (c *clusterRun) lose(node int) {
	if node == c.controller && c.lostAt < 0 {
		c.lostAt = c.loop.Now()
	}
}

func (c *clusterRun) boot(i int) {
	c.bootPending[i] = false
	if c.nodes[i].Running() {
		return
	}
	if err := c.nodes[i].Boot(); err != nil {
		c.fail(check.Failure{Checker: "recovery", Claim: check.Claim6 + " (recovery must succeed)", Msg: fmt.Sprintf("node %d: %v", i+1, err)})
		return
	}
	c.log.Booted(i+1, c.nodes[i].Broker().RaftStatus().Term)
}

func (c *clusterRun) restartIn(i int, d sched.Time) {
	if c.bootPending[i] {
		return
	}
	c.bootPending[i] = true
	c.loop.After(d, func() { c.boot(i) })
}

// storageError: the operator restarts the node with the disk fixed.
func (c *clusterRun) storageError(i int) {
	if c.restarting[i] {
		return
	}
	c.restarting[i] = true
	cfg := c.cfg
	c.loop.After(c.nem.Range(cfg.RestartAfter[0], cfg.RestartAfter[1]), func() {
		c.restarting[i] = false
		d := c.nodes[i].Disk
		d.Faults = false
		c.crash(i, proc.OperatorRestart)
		c.boot(i)
		c.loop.After(cfg.DiskGrace, func() {
			if c.r.phase == phaseChaos {
				d.Faults = true
			}
		})
	})
}

// loseDisk replaces the disk of a running broker-only node with a new,
// empty one, within the seed's budget: a machine crash, the new disk, and
// the usual restart. Half the time it aims at the broker-only node that
// leads the most partitions, whose loss moves the most leaderships to
// eligible replicas (and, were a lost disk not noticed, would give them to
// an empty log); else at any.
func (c *clusterRun) loseDisk() {
	if c.disksLost >= c.cfg.DiskLosses {
		return
	}
	var candidates []int
	for i := c.cfg.Voters; i < len(c.nodes); i++ {
		if c.nodes[i].Running() {
			candidates = append(candidates, i)
		}
	}
	if len(candidates) == 0 {
		return
	}
	i := candidates[c.nem.Pick(len(candidates))]
	if c.nem.Coin() {
		i = c.mostLeading(candidates)
	}
	c.disksLost++
	c.crash(i, proc.MachineCrash)
	c.nodes[i].Disk.Replace()
	c.log.DiskLost(i + 1)
	c.tr.Addf("sim", "node %d lost its disk (%d of at most %d)", i+1, c.disksLost, c.cfg.DiskLosses)
	c.restartIn(i, c.nem.Range(c.cfg.RestartAfter[0], c.cfg.RestartAfter[1]))
}

// mostLeading returns the candidate that leads the most partitions in the
// image of the first running node, the first candidate on a tie.
func (c *clusterRun) mostLeading(candidates []int) int {
	leads := make([]int, len(c.nodes))
	i := slices.IndexFunc(c.nodes, func(n *proc.Node) bool { return n.Broker() != nil })
	if i < 0 {
		return candidates[0]
	}
	_, snap := c.nodes[i].Broker().MetadataImage()
	if img, err := metadata.FromSnapshot(snap); err == nil { // else the metadata checkers report it
		for _, t := range img.Topics() {
			for _, p := range t.Partitions {
				if p.Leader != metadata.NoLeader {
					leads[p.Leader-1]++
				}
			}
		}
	}
	best := candidates[0]
	for _, i := range candidates {
		if leads[i] > leads[best] {
			best = i
		}
	}
	return best
}

// victim picks a node to hurt: the active controller half the time.
func (c *clusterRun) victim() int {
	if c.controller >= 0 && c.nem.Coin() {
		return c.controller
	}
	return c.nem.Pick(len(c.nodes))
}

func (c *clusterRun) chaos(r *run) {
	c.r.phase = phaseChaos
	for _, n := range c.nodes {
		n.Disk.Faults = true
	}
	c.net.Jitter = c.cfg.Jitter
	c.world.Start()
	c.meta.Start()
	cfg := c.cfg
	r.every(cfg.CrashEvery, func() {
		i := c.victim()
		if !c.nodes[i].Running() {
			return
		}
		kind := proc.Kill
		if c.nem.Chance(cfg.MachineCrash) {
			kind = proc.MachineCrash
		}
		c.crash(i, kind)
		c.restartIn(i, c.nem.Range(cfg.RestartAfter[0], cfg.RestartAfter[1]))
	})
	r.every(cfg.CrashEvery, func() {
		// An operator restart: SIGTERM, a controlled shutdown that moves
		// the node's leaderships away, then the process ends and starts.
		i := c.victim()
		if !c.nodes[i].Running() {
			return
		}
		c.nodes[i].Stop(func() {
			c.crash(i, proc.Kill)
			c.restartIn(i, c.nem.Range(cfg.RestartAfter[0], cfg.RestartAfter[1]))
		})
	})
	r.every(cfg.PauseEvery, func() {
		n := c.nodes[c.victim()]
		if !n.Running() || n.Paused() {
			return
		}
		n.Pause()
		c.loop.After(c.nem.Range(cfg.PauseFor[0], cfg.PauseFor[1]), n.Resume)
	})
	r.every(cfg.PartitionEvery, func() {
		// Half the time the node is cut off from every other node, else
		// from some of them.
		i := c.victim()
		until := c.loop.Now() + c.nem.Range(cfg.PartitionFor[0], cfg.PartitionFor[1])
		full := c.nem.Coin()
		if full {
			c.lose(i)
		}
		for j := range c.nodes {
			if j != i && (full || c.nem.Coin() || j == (i+1)%len(c.nodes)) {
				c.net.IsolatePeers(i, j, until)
			}
		}
	})
	r.every(cfg.ClockJumpEvery, func() {
		ms := c.nem.Range(1, 600_000)
		if c.nem.Coin() {
			ms = -ms
		}
		c.nodes[c.nem.Pick(len(c.nodes))].JumpClock(ms)
	})
	r.every(cfg.DiskLossEvery, c.loseDisk)
	c.loop.After(cfg.Chaos, func() { c.heal(r) })
}

// heal stops every fault, restarts what is down, and waits for a
// metadata operation to succeed and every node's image to converge.
func (c *clusterRun) heal(r *run) {
	c.r.phase = phaseHeal
	c.healAt = c.loop.Now()
	c.tr.Add("sim", "heal phase: faults stop")
	for i, n := range c.nodes {
		n.Disk.Faults = false
		n.Resume()
		if !n.Running() {
			c.restartIn(i, c.nem.Range(c.cfg.RestartAfter[0], c.cfg.RestartAfter[1]))
		}
	}
	c.net.Jitter = false
	c.net.Heal()
	c.world.Stop()
	probed := false
	c.meta.Probe(func() {
		probed = true
		c.awaitConvergence(r)
	})
	c.loop.After(c.cfg.LivenessBound, func() {
		if c.r.phase != phaseHeal {
			return
		}
		msg := fmt.Sprintf("the nodes' metadata images did not converge within %s of the heal: %s", dur(c.cfg.LivenessBound), c.describeNodes())
		switch {
		case c.healedIn >= 0 && r.final == nil:
			msg = fmt.Sprintf("some partition took no write or served none back within %s of the heal", dur(c.cfg.LivenessBound))
		case c.healedIn >= 0 && !c.reassigned:
			msg = fmt.Sprintf("partition reassignments still under way %s after the heal: %s", dur(c.cfg.LivenessBound), c.world.Reassigning())
		case c.healedIn >= 0:
			msg = fmt.Sprintf("%d idempotent batches still unacknowledged %s after the heal", r.world.Unfinished(), dur(c.cfg.LivenessBound))
		case !probed:
			msg = fmt.Sprintf("no metadata operation succeeded within %s of the heal: %s", dur(c.cfg.LivenessBound), c.describeNodes())
		}
		c.fail(check.Failure{Checker: "liveness", Claim: check.Claim7, Msg: msg})
	})
}

func (c *clusterRun) describeNodes() string {
	var parts []string
	for i, n := range c.nodes {
		b := n.Broker()
		if b == nil {
			parts = append(parts, fmt.Sprintf("node %d down", i+1))
			continue
		}
		applied, snap := b.MetadataImage()
		desc := fmt.Sprintf("node %d applied %d", i+1, applied)
		if img, err := metadata.FromSnapshot(snap); err == nil {
			for _, br := range img.Brokers() {
				desc += fmt.Sprintf(" [broker %d epoch %d fenced %v shutting down %v]", br.ID, br.Epoch, br.Fenced, br.ShuttingDown)
			}
		}
		parts = append(parts, desc)
	}
	return strings.Join(parts, ", ")
}

// awaitConvergence polls until every node runs, has applied the same
// index, holds the same image, and sees every broker registered and
// unfenced; then it checks the acknowledged operations against that image.
func (c *clusterRun) awaitConvergence(r *run) {
	if c.r.phase != phaseHeal {
		return
	}
	img, ok := c.converged()
	if !ok {
		c.loop.After(100*sched.Millisecond, func() { c.awaitConvergence(r) })
		return
	}
	c.healedIn = c.loop.Now() - c.healAt
	c.tr.Addf("sim", "every node's metadata converged %s after the heal", dur(c.healedIn))
	if applied, _ := c.nodes[0].Broker().MetadataImage(); applied < c.log.LastIndex {
		c.fail(check.Failure{Checker: "metadata-log", Claim: check.Claim6, Msg: fmt.Sprintf(
			"the nodes converged on a log ending at %d, but entries up to %d were applied (committed) before", applied, c.log.LastIndex)})
	}
	final := map[string]int32{}
	for _, t := range img.Topics() {
		if strings.HasPrefix(t.Name, workload.MetaPrefix) {
			final[t.Name] = int32(len(t.Partitions)) // the metadata workload's
		}
	}
	for _, f := range check.MetadataOps(c.meta.Ops, final) {
		c.fail(f)
	}
	// Then the data: every partition writable and readable, producers
	// settled, and everything read back.
	c.world.Probe(func(topics []history.FinalTopic) {
		r.final = topics
		c.tr.Addf("sim", "every partition writable and readable %s after the heal", dur(c.loop.Now()-c.healAt))
		c.world.AwaitReassignments(func() {
			c.reassigned = true
			c.tr.Addf("sim", "no partition reassignment under way %s after the heal", dur(c.loop.Now()-c.healAt))
			r.awaitProducers()
		})
	})
}

// brokers is how many nodes have the broker role.
func (c *clusterRun) brokers() int { return len(c.brokerNodes()) }

// brokerNodes lists the nodes with the broker role: every node, but the
// voters when they are controller-only.
func (c *clusterRun) brokerNodes() []int {
	var out []int
	for i := range c.cfg.Nodes {
		if !c.cfg.DedicatedControllers || i >= c.cfg.Voters {
			out = append(out, i)
		}
	}
	return out
}

func (c *clusterRun) converged() (*metadata.Image, bool) {
	var first []byte
	var firstIndex uint64
	for i, n := range c.nodes {
		b := n.Broker()
		if b == nil {
			return nil, false
		}
		index, snap := b.MetadataImage()
		if i == 0 {
			first, firstIndex = snap, index
		} else if index != firstIndex || !bytes.Equal(snap, first) {
			return nil, false
		}
	}
	img, err := metadata.FromSnapshot(first)
	if err != nil {
		c.fail(check.Failure{Checker: "metadata-log", Claim: check.Claim6, Msg: fmt.Sprintf("a node's image does not decode: %v", err)})
		return nil, false
	}
	brokers := img.Brokers()
	if len(brokers) != c.brokers() || slices.ContainsFunc(brokers, func(b metadata.Broker) bool { return b.Fenced || b.ShuttingDown }) {
		return nil, false
	}
	return img, true
}

package sim

import (
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/weirmq/weir/core/config"
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

// Options are how a seed is run, not what it means.
type Options struct {
	// Short draws a shorter chaos phase (go test -short).
	Short bool
	// Verbose, if set, receives every trace line as it happens.
	Verbose io.Writer
	// PorcupineTimeoutSec bounds the linearizability check of one
	// partition; running out is a failure. Zero means 60.
	PorcupineTimeoutSec int
	// Cluster runs the seed as a cluster of 3 or 5 nodes (see cluster.go);
	// the same seed names a different run in each mode.
	Cluster bool
	// GroupMembers, when set, gives every seed consumer groups of this
	// many members (to measure rebalances of a given size); the replay
	// command of a failing seed says so.
	GroupMembers int
}

// Result is the outcome of one seed.
type Result struct {
	Seed      uint64
	Config    *Config
	Failures  []check.Failure
	TraceHash uint64
	TraceTail []string
	Events    uint64
	// SimTime is the virtual time the run covered; Wall how long it took.
	SimTime sched.Time
	Wall    time.Duration
	Faults  fault.Counts
	// HealedIn is how long after the heal every partition took a write and
	// served it back (the liveness claim's measure); -1 if it never did.
	// In a cluster run: how long until every node's metadata converged.
	HealedIn sched.Time
	// Cluster runs: Nodes, the terms that had an active controller, and
	// how long each controller loss (crash or cut-off) took to replace.
	Nodes           int
	ControllerTerms int
	ControllerGaps  []sched.Time
	// Rebalances are the complete consumer group rebalances of the run
	// (history.Rebalances), in nanoseconds of simulated time.
	Rebalances []int64

	opts Options

	checkInput check.Input
	timeoutSec int
}

// Failed reports whether any checker failed.
func (r *Result) Failed() bool { return len(r.Failures) > 0 }

type phase uint8

const (
	phaseSetup phase = iota
	phaseChaos
	phaseHeal
	phaseFinal
	phaseDone
)

// run is one seed's world.
type run struct {
	cfg    *Config
	loop   sched.Loop
	tr     *trace.Trace
	counts fault.Counts
	disk   *disk.Disk
	net    *network.Network
	node   *proc.Node
	world  *workload.World
	hist   history.History
	nem    *rng.Rand
	// cluster is set for a cluster run (Config.Nodes > 1).
	cluster *clusterRun

	phase    phase
	healAt   sched.Time
	healedIn sched.Time
	// bootPending: a restart is scheduled; restarting: an operator restart
	// after a disk error is.
	bootPending, restarting bool
	final                   []history.FinalTopic
	finalRead               bool
	failures                []check.Failure
}

// tailLines is how much of the trace a failure report shows.
const tailLines = 200

// maxEvents stops a run that livelocks (events at one virtual instant
// forever would never reach the time limit).
const maxEvents = 20_000_000

// Run runs one seed and checks every claim on its history.
func Run(seed uint64, opts Options) (res *Result) {
	start := time.Now()
	if opts.PorcupineTimeoutSec == 0 {
		opts.PorcupineTimeoutSec = 60
	}
	cfg := draw(seed, opts.Short, opts.Cluster)
	if opts.GroupMembers > 0 {
		cfg.forceGroups(opts.GroupMembers)
	}
	r := &run{cfg: cfg, nem: rng.New(seed, "nemesis"), healedIn: -1}
	r.tr = trace.New(&r.loop, tailLines, opts.Verbose)
	res = &Result{Seed: seed, Config: cfg, timeoutSec: opts.PorcupineTimeoutSec, opts: opts}
	defer func() {
		if p := recover(); p != nil {
			r.failures = append(r.failures, check.Failure{Checker: "panic", Claim: "the simulation ran to its end",
				Msg: fmt.Sprintf("%v\n%s", p, debug.Stack())})
		}
		res.Failures = r.failures
		res.TraceHash, res.TraceTail, res.Events = r.tr.Hash(), r.tr.Tail(), r.loop.Ran()
		res.SimTime, res.Wall, res.Faults, res.HealedIn = r.loop.Now(), time.Since(start), r.counts, r.healedIn
		res.Nodes = cfg.Nodes
		res.Rebalances = r.hist.Rebalances()
		if c := r.cluster; c != nil {
			res.HealedIn, res.ControllerTerms, res.ControllerGaps = c.healedIn, c.log.Terms(), c.gaps
		}
	}()
	if cfg.Nodes > 1 {
		r.startCluster(seed)
	} else {
		r.start(seed)
	}
	limit := cfg.Chaos + cfg.LivenessBound + 5*60*sched.Second
	r.loop.Run(limit, func() bool {
		if r.loop.Ran() > maxEvents {
			r.fail(check.Failure{Checker: "run", Claim: "the simulation ran to its end", Msg: fmt.Sprintf("more than %d events: a livelock?", maxEvents)})
		}
		return len(r.failures) > 0 || r.phase == phaseDone
	})
	if len(r.failures) == 0 && r.phase != phaseDone {
		r.fail(check.Failure{Checker: "run", Claim: claim7Final, Msg: fmt.Sprintf("the run did not finish by %s (phase %d)", dur(limit), r.phase)})
	}
	res.checkInput = check.Input{
		History: &r.hist, Final: r.final, FinalRead: r.finalRead,
		Retention: cfg.retention, MaxBrokerWallMs: r.maxBrokerWallMs(), GroupFence: cfg.groupFence(),
	}
	if len(r.failures) == 0 {
		r.failures = check.Run(res.checkInput, opts.PorcupineTimeoutSec)
	}
	return res
}

// claim7Final names what a run that never finishes violates.
const claim7Final = check.Claim7 + " (the final read must complete)"

func (r *run) fail(f check.Failure) {
	r.tr.Add("FAIL", f.String())
	r.failures = append(r.failures, f)
}

func (r *run) start(seed uint64) {
	cfg := r.cfg
	bcfg, _, err := config.NewBroker(cfg.Broker)
	if err != nil {
		panic(fmt.Sprintf("sim: broker config %v: %v", cfg.Broker, err))
	}
	dcfg := cfg.Disk
	dcfg.Unexpected = func(msg string) {
		r.fail(check.Failure{Checker: "contract", Claim: "DESIGN.md section 4: the node's disk operations are valid", Msg: msg})
	}
	r.disk = disk.New(&r.loop, rng.New(seed, "disk"), dcfg, &r.counts, r.tr)
	r.net = network.New(&r.loop, rng.New(seed, "net"), cfg.Net, &r.counts, r.tr)
	r.node = proc.New(&r.loop, rng.New(seed, "proc"), proc.Config{
		ID: 0, Broker: bcfg, SkewMs: cfg.SkewMs, DriftPPM: cfg.DriftPPM, BatchWindow: 200 * sched.Microsecond,
	}, r.disk, r.net, &r.counts, r.tr)
	r.node.StorageError = r.storageError
	r.node.Unexpected = func(msg string) {
		r.fail(check.Failure{Checker: "contract", Claim: "the port contract", Msg: msg})
	}
	if cfg.SkewMs != 0 {
		r.counts.Inc(fault.ClockSkew)
	}
	if cfg.DriftPPM != 0 {
		r.counts.Inc(fault.ClockDrift)
	}
	r.world = workload.NewWorld(&r.loop, r.net, []network.Node{r.node}, &r.hist, rng.New(seed, "workload"), cfg.Workload, &r.counts, r.tr,
		func(checker, msg string) {
			r.fail(check.Failure{Checker: checker, Claim: clientClaim(checker), Msg: msg})
		})
	r.hist.Observe(check.NewMonitor(&r.hist, r.fail))
	r.tr.Add("sim", "config:\n"+cfg.String())
	r.boot()
	r.world.Setup(cfg.Topics, r.chaos)
}

// maxBrokerWallMs is the latest wall clock time any broker had: retention
// by time may have run on whichever hosts a partition.
func (r *run) maxBrokerWallMs() int64 {
	if c := r.cluster; c != nil {
		var ms int64
		for _, i := range c.brokerNodes() {
			ms = max(ms, c.nodes[i].MaxWallMs())
		}
		return ms
	}
	return r.node.MaxWallMs()
}

// clientClaim says what a violation a client saw breaks.
func clientClaim(checker string) string {
	switch checker {
	case "corruption":
		return "DESIGN.md section 4: a batch whose CRC fails is never served"
	case "final":
		return check.Claim2
	case "protocol":
		return "the Kafka protocol: responses in order, decodable, complete"
	}
	return checker
}

func (r *run) boot() {
	r.bootPending = false
	if r.node.Running() {
		return
	}
	if err := r.node.Boot(); err != nil {
		r.fail(check.Failure{Checker: "recovery", Claim: check.Claim1 + " (recovery must succeed)", Msg: err.Error()})
	}
}

// crash stops the node process.
func (r *run) crash(kind proc.CrashKind) { r.node.Crash(kind) }

// restartIn boots the node after d unless a boot is already pending.
func (r *run) restartIn(d sched.Time) {
	if r.bootPending {
		return
	}
	r.bootPending = true
	r.loop.After(d, r.boot)
}

// storageError is the operator noticing the log directory went offline:
// after a while they restart the node with the disk fixed (disk errors
// stay off for a grace period), so liveness can return.
func (r *run) storageError() {
	if r.restarting {
		return
	}
	r.restarting = true
	r.loop.After(r.nem.Range(r.cfg.RestartAfter[0], r.cfg.RestartAfter[1]), func() {
		r.restarting = false
		r.disk.Faults = false
		r.crash(proc.OperatorRestart)
		r.boot()
		r.loop.After(r.cfg.DiskGrace, func() {
			if r.phase == phaseChaos {
				r.disk.Faults = true
			}
		})
	})
}

// chaos starts the workloads and the faults.
func (r *run) chaos() {
	r.phase = phaseChaos
	r.tr.Add("sim", "chaos phase")
	r.disk.Faults = true
	r.net.Jitter = r.cfg.Jitter
	r.world.Start()
	r.nemesis()
	r.loop.After(r.cfg.Chaos, r.heal)
}

// heal stops every fault, ends new work, and starts the liveness probe.
func (r *run) heal() {
	r.phase = phaseHeal
	r.healAt = r.loop.Now()
	r.tr.Add("sim", "heal phase: faults stop")
	r.disk.Faults = false
	r.net.Jitter = false
	r.net.Heal()
	r.node.Resume()
	if !r.node.Running() {
		r.restartIn(r.nem.Range(r.cfg.RestartAfter[0], r.cfg.RestartAfter[1]))
	}
	r.world.Stop()
	probed := false
	r.world.Probe(func(topics []history.FinalTopic) {
		probed, r.final = true, topics
		r.healedIn = r.loop.Now() - r.healAt
		r.tr.Addf("sim", "every partition writable and readable %s after the heal", dur(r.healedIn))
		r.awaitProducers()
	})
	r.loop.After(r.cfg.LivenessBound, func() {
		if r.phase != phaseHeal {
			return
		}
		if !probed {
			r.fail(check.Failure{Checker: "liveness", Claim: check.Claim7,
				Msg: fmt.Sprintf("some partition took no write or served none back within %s of the heal", dur(r.cfg.LivenessBound))})
			return
		}
		r.fail(check.Failure{Checker: "liveness", Claim: check.Claim7,
			Msg: fmt.Sprintf("%d idempotent batches still unacknowledged %s after the heal", r.world.Unfinished(), dur(r.cfg.LivenessBound))})
	})
}

// awaitProducers waits for idempotent producers to settle their batches,
// then ends every client and reads everything back.
func (r *run) awaitProducers() {
	if r.phase != phaseHeal {
		return
	}
	if n := r.world.Unfinished(); n > 0 {
		r.loop.After(100*sched.Millisecond, r.awaitProducers)
		return
	}
	r.phase = phaseFinal
	r.tr.Add("sim", "final read")
	r.world.Halt()
	r.world.FinalRead(r.final, func() {
		r.finalRead = true
		r.phase = phaseDone
		r.tr.Add("sim", "done")
	})
}

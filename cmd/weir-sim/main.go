// Command weir-sim runs a swarm of simulator seeds: each seed draws its own
// configuration, fault mix and workload, runs single-threaded, and has
// every claim checked on its history (see package sim).
//
//	go run ./cmd/weir-sim -seeds 1-10000 -parallel 2
//
// It prints a progress line every few seconds (seeds done, failures,
// simulated seconds per wall second), each failing seed with its report
// and replay command, and at the end how often each fault class fired and
// which never did. One seed in -recheck is run twice and its trace hashes
// compared, to keep determinism honest. The exit status is 1 if any seed
// failed.
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weirmq/weir/sim"
	"github.com/weirmq/weir/sim/fault"
)

func main() {
	seeds := flag.String("seeds", "1-1000", "seeds to run, A-B")
	parallel := flag.Int("parallel", 2, "seeds run at once (each on one goroutine)")
	recheck := flag.Uint64("recheck", 50, "run one seed in this many twice and compare trace hashes (0: never)")
	short := flag.Bool("short", false, "shorter chaos phases")
	every := flag.Duration("progress", 5*time.Second, "how often to print progress")
	quiet := flag.Bool("quiet", false, "print failing seeds' replay commands, not their full reports")
	cluster := flag.Bool("cluster", false, "run each seed as a cluster of 3 or 5 nodes")
	members := flag.Int("group-members", 0, "give every seed consumer groups of this many members (to measure rebalances)")
	flag.Parse()
	lo, hi, err := parseRange(*seeds)
	if err != nil {
		fmt.Fprintln(os.Stderr, "weir-sim: -seeds:", err)
		os.Exit(2)
	}
	var list []uint64
	for s := lo; s <= hi; s++ {
		list = append(list, s)
	}
	opts := sim.Options{Short: *short, Cluster: *cluster, GroupMembers: *members}
	if code := swarm(list, *parallel, *recheck, opts, *every, *quiet); code != 0 {
		os.Exit(code)
	}
}

func parseRange(s string) (uint64, uint64, error) {
	a, b, found := strings.Cut(s, "-")
	lo, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return 0, 0, err
	}
	hi := lo
	if found {
		if hi, err = strconv.ParseUint(b, 10, 64); err != nil {
			return 0, 0, err
		}
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("empty range %s", s)
	}
	return lo, hi, nil
}

func swarm(seeds []uint64, parallel int, recheck uint64, opts sim.Options, every time.Duration, quiet bool) int {
	start := time.Now()
	var (
		done, failed int
		simSec       float64
		faults       fault.Counts
		failing      []uint64
		hashes       = map[uint64]uint64{}
		nondet       []uint64
		lastPrint    = time.Now()
		// slowest is the longest any seed took to serve every partition
		// again after its heal (claim 7's measure).
		slowest     time.Duration
		slowestSeed uint64
		// Cluster runs: controller terms and failover times.
		terms int
		gaps  []time.Duration
		// Consumer group rebalances (history.Rebalances).
		rebalances []time.Duration
	)
	fmt.Printf("weir-sim: %d seeds (%d-%d), %d at a time, commit %s\n", len(seeds), seeds[0], seeds[len(seeds)-1], parallel, sim.Commit())
	progress := func() {
		wall := time.Since(start).Seconds()
		fmt.Printf("[%5.0fs] %d/%d seeds, %d failed, %.0f simulated s/wall s\n", wall, done, len(seeds), failed, simSec/wall)
	}
	// Seeds to recheck are queued twice; the second result is compared.
	var queue []uint64
	for _, s := range seeds {
		queue = append(queue, s)
		if recheck > 0 && s%recheck == 0 {
			queue = append(queue, s)
		}
	}
	sim.Swarm(queue, parallel, opts, func(r *sim.Result) {
		if h, again := hashes[r.Seed]; again {
			if h != r.TraceHash {
				nondet = append(nondet, r.Seed)
				fmt.Printf("NONDETERMINISM: seed %d gave trace hashes %016x and %016x\n", r.Seed, h, r.TraceHash)
			}
			return
		}
		if recheck > 0 && r.Seed%recheck == 0 {
			hashes[r.Seed] = r.TraceHash
		}
		done++
		simSec += float64(r.SimTime) / 1e9
		faults.Add(&r.Faults)
		terms += r.ControllerTerms
		for _, g := range r.ControllerGaps {
			gaps = append(gaps, time.Duration(g))
		}
		for _, d := range r.Rebalances {
			rebalances = append(rebalances, time.Duration(d))
		}
		if d := time.Duration(r.HealedIn); d > slowest {
			slowest, slowestSeed = d, r.Seed
		}
		if r.Failed() {
			failed++
			failing = append(failing, r.Seed)
			if quiet {
				fmt.Printf("FAIL seed %d: %s\n  replay: %s\n", r.Seed, r.Failures[0], sim.ReplayCommand(r.Seed, opts))
			} else {
				r.Report(os.Stdout)
			}
		}
		if time.Since(lastPrint) >= every {
			lastPrint = time.Now()
			progress()
		}
	})
	progress()
	if len(rebalances) > 0 {
		slices.Sort(rebalances)
		fmt.Printf("group rebalances (first JoinGroup of a generation to its last member's assignment): median %v, p99 %v, max %v over %d\n",
			rebalances[len(rebalances)/2], rebalances[len(rebalances)*99/100], rebalances[len(rebalances)-1], len(rebalances))
	}
	if opts.Cluster {
		fmt.Printf("liveness: every node's metadata converged at most %v after the heal (seed %d)\n", slowest, slowestSeed)
		fmt.Printf("controllers: %d terms with an active controller, %.1f elections per simulated hour\n", terms, float64(terms)/(simSec/3600))
		if len(gaps) > 0 {
			slices.Sort(gaps)
			fmt.Printf("controller failover (loss of the active controller to a new one): median %v, p99 %v, max %v over %d losses\n",
				gaps[len(gaps)/2], gaps[len(gaps)*99/100], gaps[len(gaps)-1], len(gaps))
		}
	} else {
		fmt.Printf("liveness: every partition served again at most %v after the heal (seed %d)\n", slowest, slowestSeed)
	}
	fmt.Printf("faults fired: %s\n", faults.String())
	if never := faults.Never(); len(never) > 0 {
		fmt.Printf("fault classes that never fired: %v\n", never)
	}
	for _, s := range failing {
		fmt.Printf("failed: %s\n", sim.ReplayCommand(s, opts))
	}
	// The closing line in the form test runners end with; a seed whose
	// replay was not deterministic counts as failed.
	fmt.Printf("swarm: %d passed, %d failed\n", done-failed, failed+len(nondet))
	if len(failing) > 0 || len(nondet) > 0 {
		return 1
	}
	return 0
}

package sim

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

var (
	seedFlag    = flag.Uint64("seed", 0, "replay this one seed (with -v, print its trace)")
	seedsFlag   = flag.String("seeds", "", "run seeds A-B")
	clusterFlag = flag.Bool("cluster", false, "run -seed or -seeds as cluster runs")
	membersFlag = flag.Int("group-members", 0, "give every seed consumer groups of this many members")
)

// seedRange parses "A-B" (or "A").
func seedRange(s string) ([]uint64, error) {
	a, b, found := strings.Cut(s, "-")
	lo, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return nil, err
	}
	hi := lo
	if found {
		if hi, err = strconv.ParseUint(b, 10, 64); err != nil {
			return nil, err
		}
	}
	if hi < lo {
		return nil, fmt.Errorf("empty range %s", s)
	}
	var out []uint64
	for x := lo; x <= hi; x++ {
		out = append(out, x)
	}
	return out, nil
}

// TestSim runs seeds 1-500 (1-200 with -short, which also shortens each
// run's chaos phase), or -seed N, or -seeds A-B (as cluster runs with
// -cluster).
func TestSim(t *testing.T) {
	if *clusterFlag {
		t.Skip("cluster runs: see TestSimCluster")
	}
	swarmTest(t, "1-500", "1-200", false)
}

// TestSimCluster runs cluster seeds 1-100 (1-40 with -short), or the
// seeds chosen with -cluster.
func TestSimCluster(t *testing.T) {
	if (*seedFlag != 0 || *seedsFlag != "") && !*clusterFlag {
		t.Skip("single-node seeds chosen")
	}
	swarmTest(t, "1-100", "1-40", true)
}

func swarmTest(t *testing.T, full, short string, cluster bool) {
	var seeds []uint64
	switch {
	case *seedFlag != 0:
		seeds = []uint64{*seedFlag}
	case *seedsFlag != "":
		var err error
		if seeds, err = seedRange(*seedsFlag); err != nil {
			t.Fatalf("-seeds: %v", err)
		}
	case testing.Short():
		seeds, _ = seedRange(short)
	default:
		seeds, _ = seedRange(full)
	}
	opts := Options{Short: testing.Short(), Cluster: cluster, GroupMembers: *membersFlag}
	if len(seeds) == 1 && testing.Verbose() {
		opts.Verbose = os.Stdout
	}
	var sim, wall float64
	Swarm(seeds, 2, opts, func(r *Result) {
		sim += float64(r.SimTime) / 1e9
		wall += r.Wall.Seconds()
		if r.Failed() {
			var sb strings.Builder
			r.Report(&sb)
			t.Error(sb.String())
		}
	})
	t.Logf("%d seeds, %.0f simulated seconds at %.0f simulated seconds per wall second per goroutine", len(seeds), sim, sim/wall)
}

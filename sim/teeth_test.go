//go:build weirbugs

package sim

import (
	"testing"

	"github.com/weirmq/weir/core/bugs"
)

// teethBudget is how many seeds each planted bug may take to be caught.
const teethBudget = 300

// TestTeeth plants each bug in turn (go test -tags weirbugs ./sim -run
// Teeth) and requires a checker to catch it within teethBudget seeds, then
// requires the clean build to pass the seed that caught it.
func TestTeeth(t *testing.T) {
	for _, b := range bugs.All() {
		t.Run(b.String(), func(t *testing.T) {
			opts := Options{Cluster: clusterBugs[b]}
			bugs.Set(b, true)
			caught, res := firstFailure(1, teethBudget, opts)
			bugs.Set(b, false)
			if res == nil {
				t.Fatalf("%s: no checker failed in seeds 1-%d", b, teethBudget)
			}
			t.Logf("%s: caught by seed %d (%d seeds): %s", b, caught, caught, res.Failures[0])
			if clean := Run(caught, opts); clean.Failed() {
				t.Errorf("%s: the clean build fails seed %d too: %s", b, caught, clean.Failures[0])
			}
		})
	}
}

// clusterBugs are the planted bugs only a cluster can show; their teeth
// are tested with cluster runs.
var clusterBugs = map[bugs.Bug]bool{
	bugs.CommitWithoutQuorum:     true,
	bugs.StaleLeaderAccepted:     true,
	bugs.LeaderEpochNotBumped:    true,
	bugs.VoteNotPersisted:        true,
	bugs.NoCheckQuorum:           true,
	bugs.AckBeforeReplicas:       true,
	bugs.HWIgnoresLaggard:        true,
	bugs.NoDivergenceCheck:       true,
	bugs.NoTruncation:            true,
	bugs.FollowerReportsUnsynced: true,
	bugs.ElectOutsideISR:         true,
	bugs.DiskLossNotDetected:     true,
	bugs.HWIgnoresMinISR:         true,
	bugs.NoLeaderLease:           true,
}

// firstFailure runs seeds lo..hi two at a time and returns the lowest that
// fails, with its result.
func firstFailure(lo, hi uint64, opts Options) (uint64, *Result) {
	for s := lo; s <= hi; s += 2 {
		var first *Result
		Swarm([]uint64{s, s + 1}, 2, opts, func(r *Result) {
			if r.Failed() && (first == nil || r.Seed < first.Seed) && r.Seed <= hi {
				first = r
			}
		})
		if first != nil {
			return first.Seed, first
		}
	}
	return 0, nil
}

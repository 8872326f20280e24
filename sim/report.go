package sim

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/weirmq/weir/sim/check"
)

// ReplayCommand is the command that replays seed with the options that
// change what a seed runs (Cluster, GroupMembers).
func ReplayCommand(seed uint64, opts Options) string {
	cmd := "go test ./sim -run Sim"
	if opts.Cluster {
		cmd += " -cluster"
	}
	if opts.GroupMembers > 0 {
		cmd += fmt.Sprintf(" -group-members %d", opts.GroupMembers)
	}
	return fmt.Sprintf("%s -seed %d -count=1", cmd, seed)
}

// Commit is the VCS revision this binary was built from, or "unknown".
func Commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// Report writes a failed seed's report: the seed and its failures, the
// drawn configuration, the tail of the trace, the build, the replay
// command, and Porcupine's visualization of the failing partition.
func (r *Result) Report(w io.Writer) {
	fmt.Fprintf(w, "FAIL seed %d\n", r.Seed)
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  %s\n", f)
	}
	fmt.Fprintf(w, "configuration:\n%s", r.Config)
	fmt.Fprintf(w, "faults fired: %s\n", r.Faults.String())
	fmt.Fprintf(w, "last %d trace lines of %d events (simulated %s):\n", len(r.TraceTail), r.Events, dur(r.SimTime))
	for _, l := range r.TraceTail {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintf(w, "commit %s, %s\n", Commit(), runtime.Version())
	fmt.Fprintf(w, "replay: %s\n", ReplayCommand(r.Seed, r.opts))
	if path, err := r.Visualize(); err == nil {
		fmt.Fprintf(w, "porcupine visualization: %s\n", path)
	} else if path != "" || err != nil {
		fmt.Fprintf(w, "porcupine visualization: %v\n", err)
	}
}

// Visualize writes Porcupine's HTML visualization of the first failing
// partition to a temporary file and returns its path.
func (r *Result) Visualize() (string, error) {
	for _, f := range r.Failures {
		if f.Part != nil && r.checkInput.History != nil {
			return visualize(r, *f.Part)
		}
	}
	return "", fmt.Errorf("no failure names a partition with a history to draw")
}

func visualize(r *Result, p check.Part) (string, error) {
	return check.Visualize(r.checkInput, p, r.timeoutSec)
}

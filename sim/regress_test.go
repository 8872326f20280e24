package sim

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// regressionFile lists every seed that ever failed, one per line, with a
// comment saying what it found; they are replayed on every test run.
const regressionFile = "../testdata/sim/seeds.txt"

// TestRegressions replays the regression corpus.
func TestRegressions(t *testing.T) {
	if *seedFlag != 0 || *seedsFlag != "" {
		t.Skip("replaying chosen seeds")
	}
	f, err := os.Open(regressionFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var seeds []uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		s, err := strconv.ParseUint(line, 10, 64)
		if err != nil {
			t.Fatalf("%s: %q is not a seed", regressionFile, line)
		}
		seeds = append(seeds, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	Swarm(seeds, 2, Options{}, func(r *Result) {
		if r.Failed() {
			var sb strings.Builder
			r.Report(&sb)
			t.Error(sb.String())
		}
	})
}

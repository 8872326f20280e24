package sim

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// regressionFiles list every seed that ever failed, one per line, with a
// comment saying what it found; they are replayed on every test run. The
// cluster file's seeds are cluster runs.
const (
	regressionFile        = "../testdata/sim/seeds.txt"
	clusterRegressionFile = "../testdata/sim/cluster-seeds.txt"
)

// TestRegressions replays the regression corpus.
func TestRegressions(t *testing.T) {
	if *seedFlag != 0 || *seedsFlag != "" {
		t.Skip("replaying chosen seeds")
	}
	for _, corpus := range []struct {
		file    string
		cluster bool
	}{{regressionFile, false}, {clusterRegressionFile, true}} {
		seeds := readSeeds(t, corpus.file)
		Swarm(seeds, 2, Options{Cluster: corpus.cluster}, func(r *Result) {
			if r.Failed() {
				var sb strings.Builder
				r.Report(&sb)
				t.Error(sb.String())
			}
		})
	}
}

func readSeeds(t *testing.T, file string) []uint64 {
	f, err := os.Open(file)
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
			t.Fatalf("%s: %q is not a seed", file, line)
		}
		seeds = append(seeds, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return seeds
}

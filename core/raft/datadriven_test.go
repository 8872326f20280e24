package raft

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/weirmq/weir/core/port"
)

// TestGolden replays the scripted scenarios in testdata/golden/*.txt and compares
// every message exchanged and every state reached with the recorded trace.
// Rewrite the traces after a deliberate change with -rewrite and review the
// diff. Commands:
//
//	cluster voters=N [learners=N] [seed=N]
//	campaign N | tick N [n=K] | tick-all [n=K] | run [n=K] (rounds of tick-all, deliver)
//	deliver | drop
//	propose N data
//	crash N | restart N | cut A B (both directions) | heal
//	wipe N (a crashed learner loses its disk)
//	compact N
//	status
func TestGolden(t *testing.T) {
	datadriven.Walk(t, "testdata/golden", func(t *testing.T, path string) {
		var c *testCluster
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "cluster" && c == nil {
				t.Fatalf("%s: no cluster yet", d.Pos)
			}
			var out strings.Builder
			if c != nil {
				c.trace = &out
			}
			node := func(i int) port.NodeID {
				if len(d.CmdArgs) <= i {
					t.Fatalf("%s: %s needs a node argument", d.Pos, d.Cmd)
				}
				v, err := strconv.Atoi(d.CmdArgs[i].Key)
				if err != nil {
					t.Fatalf("%s: %v", d.Pos, err)
				}
				return port.NodeID(v)
			}
			count := func() int {
				n := 1
				if d.HasArg("n") {
					d.ScanArgs(t, "n", &n)
				}
				return n
			}
			switch d.Cmd {
			case "cluster":
				voters, learners, seed := 0, 0, uint64(1)
				d.ScanArgs(t, "voters", &voters)
				d.MaybeScanArgs(t, "learners", &learners)
				d.MaybeScanArgs(t, "seed", &seed)
				c = newTestCluster(seed, voters, learners, func(format string, args ...any) {
					t.Fatalf("%s: "+format, append([]any{d.Pos}, args...)...)
				})
				return "ok"
			case "campaign":
				c.nodes[node(0)].r.Campaign()
				c.process(node(0))
			case "tick":
				for range count() {
					c.tick(node(0))
				}
			case "tick-all":
				for range count() {
					for _, id := range c.ids {
						c.tick(id)
					}
				}
			case "run":
				// Rounds of tick-all then deliver, as time passes on a
				// healthy network; heartbeats are left out of the trace.
				var full strings.Builder
				c.trace = &full
				for range count() {
					for _, id := range c.ids {
						c.tick(id)
					}
					c.deliverAll()
				}
				for _, line := range strings.SplitAfter(full.String(), "\n") {
					if !strings.Contains(line, " Heartbeat") {
						out.WriteString(line)
					}
				}
			case "deliver":
				c.deliverAll()
			case "drop":
				fmt.Fprintf(&out, "dropped %d\n", len(c.net))
				c.net = nil
			case "propose":
				if !c.propose(node(0), d.CmdArgs[1].Key) {
					out.WriteString("refused: not the leader\n")
				}
			case "crash":
				c.crash(node(0))
			case "wipe":
				c.wipe(node(0))
			case "restart":
				c.start(node(0))
				fmt.Fprintf(&out, "restart %d\n", node(0))
			case "cut":
				a, b := node(0), node(1)
				c.cut[[2]port.NodeID{a, b}], c.cut[[2]port.NodeID{b, a}] = true, true
			case "heal":
				c.cut = map[[2]port.NodeID]bool{}
			case "compact":
				c.compact(node(0))
			case "status":
				for _, id := range c.ids {
					n := c.nodes[id]
					st := n.r.Status()
					state := "up"
					if !n.up {
						state = "down"
					}
					fmt.Fprintf(&out, "%d %s %s term=%d vote=%d lead=%d last=%d commit=%d applied=%d snap=%d\n",
						id, state, st.Role, st.Term, st.Vote, st.Leader, st.LastIndex, st.Commit, n.applied, n.snap.Index)
				}
			default:
				t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
			}
			if out.Len() == 0 {
				return "ok"
			}
			return out.String()
		})
	})
}

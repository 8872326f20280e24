package raft

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/weirmq/weir/core/port"
)

// TestRaftSafetyUnderFaults drives clusters through random schedules of
// ticks, deliveries out of order, lost messages, crashes that lose
// everything not persisted, partitions, proposals and compactions. After
// every step it checks election safety, leader completeness and state
// machine safety (testCluster does); at the end log matching, then heals
// everything and requires the cluster to converge (liveness).
func TestRaftSafetyUnderFaults(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		voters := rapid.SampledFrom([]int{1, 3, 5}).Draw(t, "voters")
		learners := rapid.IntRange(0, 1).Draw(t, "learners")
		var c *testCluster
		c = newTestCluster(rapid.Uint64().Draw(t, "seed"), voters, learners, func(format string, args ...any) {
			lines := strings.Split(c.trace.String(), "\n")
			t.Fatalf("%s\n...\n%s", fmt.Sprintf(format, args...), strings.Join(lines[max(0, len(lines)-80):], "\n"))
		})
		c.trace = &strings.Builder{}
		node := func(label string) port.NodeID {
			return c.ids[rapid.IntRange(0, len(c.ids)-1).Draw(t, label)]
		}
		steps := rapid.IntRange(50, 600).Draw(t, "steps")
		proposed := 0
		for range steps {
			switch action := rapid.IntRange(0, 99).Draw(t, "action"); {
			case action < 27:
				c.tick(node("tick"))
			case action < 30:
				// Elections on demand, so that candidates often compete.
				id := node("campaign")
				if c.nodes[id].up {
					c.nodes[id].r.Campaign()
					c.process(id)
				}
			case action < 60 && len(c.net) > 0:
				c.deliver(rapid.IntRange(0, len(c.net)-1).Draw(t, "msg"))
			case action < 65 && len(c.net) > 0:
				i := rapid.IntRange(0, len(c.net)-1).Draw(t, "drop")
				c.net = append(c.net[:i], c.net[i+1:]...)
			case action < 75:
				if lead, ok := c.leader(); ok {
					proposed++
					c.propose(lead, fmt.Sprint("v", proposed))
				}
			case action < 78:
				id := node("crash")
				if c.nodes[id].up {
					c.crash(id)
				} else {
					c.start(id)
				}
			case action < 82:
				a, b := node("cut-a"), node("cut-b")
				c.cut[[2]port.NodeID{a, b}] = !c.cut[[2]port.NodeID{a, b}]
			case action < 84:
				c.compact(node("compact"))
			default:
				c.deliverAll()
			}
		}
		c.checkLogMatching()
		c.requireLiveAfterHeal(200)
	})
}

func TestCodecRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		data := rapid.OneOf(rapid.Just([]byte(nil)), rapid.SliceOf(rapid.Byte()))
		m := Message{
			Type: MsgType(rapid.IntRange(1, int(MsgSnap)).Draw(t, "type")),
			From: port.NodeID(rapid.Int32Range(-1, 1<<31-1).Draw(t, "from")),
			To:   port.NodeID(rapid.Int32Range(-1, 1<<31-1).Draw(t, "to")),
			Term: rapid.Uint64().Draw(t, "term"), LogTerm: rapid.Uint64().Draw(t, "logterm"),
			Index: rapid.Uint64().Draw(t, "index"), Commit: rapid.Uint64().Draw(t, "commit"),
			Reject: rapid.Bool().Draw(t, "reject"), RejectHint: rapid.Uint64().Draw(t, "hint"),
			RejectTerm: rapid.Uint64().Draw(t, "rterm"),
		}
		switch m.Type {
		case MsgApp:
			// A valid append: entries follow Index, terms between
			// LogTerm and Term, never going back.
			m.Index = rapid.Uint64Range(0, 1<<40).Draw(t, "index")
			m.LogTerm = rapid.Uint64Range(0, 1<<20).Draw(t, "logterm")
			m.Term = m.LogTerm + rapid.Uint64Range(0, 1<<20).Draw(t, "term")
			term := m.LogTerm
			for i := range rapid.IntRange(0, 4).Draw(t, "entries") {
				term = rapid.Uint64Range(term, m.Term).Draw(t, "et")
				m.Entries = append(m.Entries, Entry{Index: m.Index + 1 + uint64(i), Term: term, Data: data.Draw(t, "ed")})
			}
		case MsgSnap:
			m.Snapshot = &Snapshot{Index: rapid.Uint64().Draw(t, "si"), Term: rapid.Uint64().Draw(t, "st"), Data: data.Draw(t, "sd")}
		}
		got, err := DecodeMessage(AppendMessage(nil, m))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip changed the message:\n got %#v\nwant %#v", got, m)
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(AppendMessage(nil, Message{Type: MsgApp, From: 1, To: 2, Term: 3, Entries: []Entry{{Index: 1, Term: 1, Data: []byte("x")}}}))
	f.Add(AppendMessage(nil, Message{Type: MsgSnap, Snapshot: &Snapshot{Index: 9, Term: 2, Data: []byte("s")}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		again, err := DecodeMessage(AppendMessage(nil, m))
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("re-encoding a decoded message changed it: %v", err)
		}
	})
}

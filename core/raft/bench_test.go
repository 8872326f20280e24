package raft

import (
	"fmt"
	"testing"

	"github.com/weirmq/weir/core/port"
)

// BenchmarkProposeLongLog measures one proposal (and its Ready) on a
// single-node cluster whose log already holds n entries since the last
// snapshot. The cost should not depend on n; with truncateAndAppend
// copying the whole log on every append it grows linearly with n, which
// makes filling the log between snapshots quadratic (core/broker snapshots
// every 20 MiB of metadata by default: hundreds of thousands of entries).
func BenchmarkProposeLongLog(b *testing.B) {
	for _, n := range []int{1000, 10000, 50000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ents := make([]Entry, n)
			for i := range ents {
				ents[i] = Entry{Index: uint64(i + 1), Term: 1, Data: []byte("x")}
			}
			r := New(Config{ID: 1, Voters: []port.NodeID{1}, ElectionTicks: 10, HeartbeatTicks: 1,
				Rand: func(int) int { return 0 }}, HardState{Term: 1}, Snapshot{}, ents)
			r.Tick()
			for r.HasReady() {
				r.Ready()
				r.Advance()
			}
			data := []byte("x")
			b.ResetTimer()
			for range b.N {
				if _, _, err := r.Propose(data); err != nil {
					b.Fatal(err)
				}
				r.Ready()
				r.Advance()
			}
		})
	}
}

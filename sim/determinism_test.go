package sim

import "testing"

// TestDeterminism: a seed run twice gives the same trace, hash for hash;
// another seed gives another.
func TestDeterminism(t *testing.T) {
	if *seedFlag != 0 || *seedsFlag != "" {
		t.Skip("replaying chosen seeds")
	}
	opts := Options{Short: true}
	var a, b, c *Result
	Swarm([]uint64{7, 7, 8}, 1, opts, func(r *Result) {
		switch {
		case a == nil:
			a = r
		case b == nil:
			b = r
		default:
			c = r
		}
	})
	if a.TraceHash != b.TraceHash || a.Events != b.Events {
		t.Errorf("seed 7 twice: trace hashes %016x and %016x, %d and %d events", a.TraceHash, b.TraceHash, a.Events, b.Events)
	}
	if a.TraceHash == c.TraceHash {
		t.Errorf("seeds 7 and 8 gave the same trace hash %016x", a.TraceHash)
	}
	if a.Events < 1000 {
		t.Errorf("seed 7 ran only %d events", a.Events)
	}
	// A cluster run too: several nodes, peer messages, one trace.
	var hashes []uint64
	Swarm([]uint64{3, 3}, 2, Options{Short: true, Cluster: true}, func(r *Result) { hashes = append(hashes, r.TraceHash) })
	if hashes[0] != hashes[1] {
		t.Errorf("cluster seed 3 twice: trace hashes %016x and %016x", hashes[0], hashes[1])
	}
}

package metadata

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/weirmq/weir/core/port"
)

// clusterOf returns an image with the given brokers registered and
// unfenced; racks[i] is the rack of broker ids[i].
func clusterOf(ids []port.NodeID, racks []string) *Image {
	img := New()
	var recs []Record
	for i, id := range ids {
		rack := ""
		if racks != nil {
			rack = racks[i]
		}
		recs = append(recs, register(id, 1, rack), unfence(id, 1))
	}
	img.Apply(1, recs)
	return img
}

// addTopic applies a topic with the given assignments, as the controller
// would after Place.
func addTopic(img *Image, name string, assignments [][]port.NodeID) {
	id := [16]byte{1}
	copy(id[1:], name)
	recs := []Record{{Topic: &TopicRecord{Name: name, ID: id}}}
	for p, replicas := range assignments {
		recs = append(recs, partition(id, int32(p), replicas, replicas, replicas[0], 0, 0))
	}
	img.Apply(img.AppliedIndex()+1, recs)
}

func TestPlaceErrors(t *testing.T) {
	img := clusterOf(ids(1, 2, 3), nil)
	img.Apply(2, []Record{register(4, 1, ""), // registered, still fenced
		register(5, 1, ""), unfence(5, 1), {ShutdownBroker: &BrokerEpochRecord{ID: 5, Epoch: 1}}})
	for _, tc := range []struct {
		partitions int32
		rf         int16
		want       error
	}{
		{1, 0, ErrInvalidReplicationFactor},
		{1, -1, ErrInvalidReplicationFactor},
		{1, 4, ErrInvalidReplicationFactor}, // fenced and shutting-down brokers do not count
		{0, 1, ErrInvalidPartitions},
		{-3, 1, ErrInvalidPartitions},
	} {
		if _, err := Place(img, tc.partitions, tc.rf); !errors.Is(err, tc.want) {
			t.Errorf("Place(%d, %d) error %v, want %v", tc.partitions, tc.rf, err, tc.want)
		}
	}
	if _, err := Place(New(), 1, 1); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Errorf("Place on an empty cluster: %v", err)
	}
	got, err := Place(img, 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, got, [][]port.NodeID{{1, 2, 3}, {2, 1, 3}, {3, 1, 2}})
}

func TestPlaceExample(t *testing.T) {
	img := clusterOf(ids(1, 2, 3, 4), nil)
	got, err := Place(img, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, got, [][]port.NodeID{{1, 2}, {3, 4}, {2, 1}, {4, 3}})
}

// Placement counts what the image already holds: a loaded broker gets
// nothing until the others catch up.
func TestPlaceCountsExistingPartitions(t *testing.T) {
	img := clusterOf(ids(1, 2, 3), nil)
	addTopic(img, "old", [][]port.NodeID{{1}, {1}, {1}})
	got, err := Place(img, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, got, [][]port.NodeID{{2}, {3}, {2}, {3}})
}

func TestPlaceSpreadsRacks(t *testing.T) {
	// Rack "a" has three brokers, "b" one: every partition of rf 2 must
	// still use both racks, so broker 4 holds a replica of each.
	img := clusterOf(ids(1, 2, 3, 4), []string{"a", "a", "a", "b"})
	got, err := Place(img, 6, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range got {
		if !slices.Contains(a, 4) {
			t.Fatalf("assignment %v does not use rack b", a)
		}
	}
}

func TestPlaceIsDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		img := New()
		for _, e := range drawHistory(t, 25) {
			img.Apply(e.index, e.recs)
		}
		partitions := rapid.Int32Range(1, 20).Draw(t, "partitions")
		rf := rapid.Int16Range(1, 4).Draw(t, "rf")
		a, errA := Place(img, partitions, rf)
		b, errB := Place(img.Clone(), partitions, rf)
		eq(t, a, b)
		eq(t, fmt.Sprint(errA), fmt.Sprint(errB))
	})
}

// TestPlaceInvariants holds on any image: usable, distinct replicas, rf of
// them, spread evenly over the racks, or the documented error.
func TestPlaceInvariants(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		img := New()
		for _, e := range drawHistory(t, 25) {
			img.Apply(e.index, e.recs)
		}
		rackOf := map[port.NodeID]string{}
		var racks []string
		for _, b := range img.Brokers() {
			if !b.Fenced && !b.ShuttingDown {
				rackOf[b.ID] = b.Rack
				if !slices.Contains(racks, b.Rack) {
					racks = append(racks, b.Rack)
				}
			}
		}
		partitions := rapid.Int32Range(1, 20).Draw(t, "partitions")
		rf := rapid.Int16Range(-1, 7).Draw(t, "rf")
		got, err := Place(img, partitions, rf)
		if rf < 1 || int(rf) > len(rackOf) {
			if !errors.Is(err, ErrInvalidReplicationFactor) {
				t.Fatalf("rf %d with %d usable brokers: error %v", rf, len(rackOf), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		checkAssignments(t, got, partitions, rf, rackOf, len(racks))
	})
}

// checkAssignments checks each assignment on its own: length, distinct
// usable brokers, and replicas spread across racks so that min(rf, racks)
// racks are covered.
func checkAssignments(t tb, got [][]port.NodeID, partitions int32, rf int16, rackOf map[port.NodeID]string, racks int) {
	t.Helper()
	if len(got) != int(partitions) {
		t.Fatalf("%d assignments for %d partitions", len(got), partitions)
	}
	for _, a := range got {
		if len(a) != int(rf) {
			t.Fatalf("assignment %v has %d replicas, want %d", a, len(a), rf)
		}
		perRack := map[string]int{}
		for i, id := range a {
			rack, usable := rackOf[id]
			if !usable {
				t.Fatalf("assignment %v uses broker %d, which is not usable", a, id)
			}
			if slices.Contains(a[:i], id) {
				t.Fatalf("assignment %v repeats broker %d", a, id)
			}
			perRack[rack]++
		}
		if want := min(int(rf), racks); len(perRack) != want {
			t.Fatalf("assignment %v covers %d racks, want %d", a, len(perRack), want)
		}
	}
}

// TestPlaceBalances: on a cluster with no partitions, no racks or racks of
// equal size, placing partitions (in one call or several, each applied
// before the next) keeps every broker's replica count and preferred-leader
// count within one of every other's, and each partition's replicas within
// one of each other per rack.
func TestPlaceBalances(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 16).Draw(t, "brokers")
		var divisors []int
		for d := 1; d <= n; d++ {
			if n%d == 0 {
				divisors = append(divisors, d)
			}
		}
		rackCount := rapid.SampledFrom(divisors).Draw(t, "racks")
		useRacks := rapid.Bool().Draw(t, "use racks")
		// Random distinct ids, racks dealt out in a random order, so that
		// neither id order nor rack order is what makes it balance.
		idSet := rapid.SliceOfNDistinct(rapid.Int32Range(0, 1000), n, n, rapid.ID[int32]).Draw(t, "ids")
		var brokerIDs []port.NodeID
		var rackNames []string
		for i, id := range idSet {
			brokerIDs = append(brokerIDs, port.NodeID(id))
			rackNames = append(rackNames, fmt.Sprintf("rack%d", i%rackCount))
		}
		rackNames = rapid.Permutation(rackNames).Draw(t, "rack order")
		if !useRacks {
			rackNames = nil
			rackCount = 1
		}
		img := clusterOf(brokerIDs, rackNames)
		rackOf := map[port.NodeID]string{}
		for i, id := range brokerIDs {
			rackOf[id] = ""
			if rackNames != nil {
				rackOf[id] = rackNames[i]
			}
		}

		rf := int16(rapid.IntRange(1, n).Draw(t, "rf"))
		if _, err := Place(img, 1, int16(n+1)); !errors.Is(err, ErrInvalidReplicationFactor) {
			t.Fatalf("rf %d > %d brokers: error %v", n+1, n, err)
		}
		replicas := map[port.NodeID]int{}
		leaders := map[port.NodeID]int{}
		for call := range rapid.IntRange(1, 4).Draw(t, "calls") {
			partitions := rapid.Int32Range(1, 40).Draw(t, "partitions")
			got, err := Place(img, partitions, rf)
			if err != nil {
				t.Fatal(err)
			}
			checkAssignments(t, got, partitions, rf, rackOf, rackCount)
			for p, a := range got {
				leaders[a[0]]++
				for _, id := range a {
					replicas[id]++
				}
				checkSpread(t, fmt.Sprintf("call %d partition %d replica", call, p), replicas, brokerIDs)
				checkSpread(t, fmt.Sprintf("call %d partition %d leader", call, p), leaders, brokerIDs)
				perRack := map[string]int{}
				for _, id := range a {
					perRack[rackOf[id]]++
				}
				lo, hi := int(rf), 0
				for r := range rackCount {
					c := perRack[fmt.Sprintf("rack%d", r)]
					if !useRacks {
						c = perRack[""]
					}
					lo, hi = min(lo, c), max(hi, c)
				}
				if hi-lo > 1 {
					t.Fatalf("assignment %v is uneven across racks: %v", a, perRack)
				}
			}
			addTopic(img, fmt.Sprintf("t%d", call), got)
		}
	})
}

func checkSpread(t tb, what string, counts map[port.NodeID]int, brokers []port.NodeID) {
	t.Helper()
	lo, hi := counts[brokers[0]], counts[brokers[0]]
	for _, id := range brokers {
		lo, hi = min(lo, counts[id]), max(hi, counts[id])
	}
	if hi-lo > 1 {
		t.Fatalf("after %s counts range from %d to %d: %v", what, lo, hi, counts)
	}
}

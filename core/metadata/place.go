package metadata

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/weirmq/weir/core/port"
)

var (
	// ErrInvalidReplicationFactor: the replication factor is below 1 or
	// above the number of usable brokers (Kafka's
	// INVALID_REPLICATION_FACTOR).
	ErrInvalidReplicationFactor = errors.New("metadata: invalid replication factor")
	// ErrInvalidPartitions: the partition count is below 1 (Kafka's
	// INVALID_PARTITIONS).
	ErrInvalidPartitions = errors.New("metadata: invalid number of partitions")
)

// Place chooses replicas for new partitions among the image's usable
// brokers (registered, unfenced and not shutting down). Each assignment
// lists its preferred leader first. It changes nothing; the caller turns
// the result into PartitionRecords.
//
// Like Kafka's controller it aims for:
//   - distinct brokers within a partition;
//   - replicas of a partition spread evenly across racks: each rack holds
//     floor or ceil of rf/racks of them (so min(rf, racks) racks are
//     covered), as far as the racks have brokers. Brokers without a Rack
//     form one rack of their own;
//   - the replica count and the preferred-leader count of each broker
//     balanced, counting the partitions already in the image. On a cluster
//     with no partitions and racks of equal size, both counts differ by at
//     most one between brokers after every partition placed.
//
// It is greedy and deterministic: each partition takes as leader the broker
// leading fewest partitions, then holding fewest replicas, then in the rack
// leading fewest, then with the lowest id; each follower comes from the
// racks this partition uses least and is the broker holding fewest replicas,
// then in the rack holding fewest, then leading most (to keep the brokers
// that lead little free to lead next), then with the lowest id.
func Place(img *Image, partitions int32, replicationFactor int16) ([][]port.NodeID, error) {
	if partitions < 1 {
		return nil, fmt.Errorf("%w: %d", ErrInvalidPartitions, partitions)
	}
	var brokers []placeBroker // sorted by id, as the btree yields them
	img.brokers.Ascend(func(b Broker) bool {
		if b.usable() {
			brokers = append(brokers, placeBroker{id: b.ID, rackName: b.Rack})
		}
		return true
	})
	rf := int(replicationFactor)
	if rf < 1 || rf > len(brokers) {
		return nil, fmt.Errorf("%w: %d with %d usable brokers", ErrInvalidReplicationFactor, replicationFactor, len(brokers))
	}

	// Racks are numbered in name order so the numbering, like everything
	// else here, does not depend on anything but the image.
	var rackNames []string
	for _, b := range brokers {
		rackNames = append(rackNames, b.rackName)
	}
	slices.Sort(rackNames)
	rackNames = slices.Compact(rackNames)
	for i := range brokers {
		brokers[i].rack, _ = slices.BinarySearch(rackNames, brokers[i].rackName)
	}
	racks := make([]placeRack, len(rackNames))

	indexOf := func(id port.NodeID) (int, bool) {
		return slices.BinarySearchFunc(brokers, id, func(b placeBroker, id port.NodeID) int { return cmp.Compare(b.id, id) })
	}
	img.partitions.Ascend(func(p partitionEntry) bool {
		for i, id := range p.state.Replicas {
			if bi, ok := indexOf(id); ok {
				brokers[bi].replicas++
				racks[brokers[bi].rack].replicas++
				if i == 0 {
					brokers[bi].leaders++
					racks[brokers[bi].rack].leaders++
				}
			}
		}
		return true
	})

	out := make([][]port.NodeID, 0, partitions)
	chosen := make([]int, 0, rf)
	inPartition := make([]bool, len(brokers))
	perRack := make([]int, len(racks)) // replicas of this partition per rack
	for range partitions {
		leader := 0
		for i := 1; i < len(brokers); i++ {
			if cmpLeader(brokers, racks, i, leader) < 0 {
				leader = i
			}
		}
		chosen = append(chosen[:0], leader)
		inPartition[leader] = true
		perRack[brokers[leader].rack]++

		for len(chosen) < rf {
			fewest := -1 // fewest replicas of this partition in a rack with a broker left
			for i, b := range brokers {
				if !inPartition[i] && (fewest < 0 || perRack[b.rack] < fewest) {
					fewest = perRack[b.rack]
				}
			}
			follower := -1
			for i, b := range brokers {
				if inPartition[i] || perRack[b.rack] != fewest {
					continue
				}
				if follower < 0 || cmpFollower(brokers, racks, i, follower) < 0 {
					follower = i
				}
			}
			chosen = append(chosen, follower)
			inPartition[follower] = true
			perRack[brokers[follower].rack]++
		}

		// Counts change only once the partition is complete, so that every
		// choice within it compares the same loads.
		assignment := make([]port.NodeID, len(chosen))
		for j, i := range chosen {
			assignment[j] = brokers[i].id
			brokers[i].replicas++
			racks[brokers[i].rack].replicas++
			inPartition[i] = false
			perRack[brokers[i].rack] = 0
		}
		brokers[leader].leaders++
		racks[brokers[leader].rack].leaders++
		out = append(out, assignment)
	}
	return out, nil
}

type placeBroker struct {
	id       port.NodeID
	rackName string
	rack     int // index into the sorted rack names
	replicas int
	leaders  int
}

type placeRack struct {
	replicas int
	leaders  int
}

func cmpLeader(brokers []placeBroker, racks []placeRack, i, j int) int {
	a, b := &brokers[i], &brokers[j]
	return cmp.Or(
		cmp.Compare(a.leaders, b.leaders),
		cmp.Compare(a.replicas, b.replicas),
		cmp.Compare(racks[a.rack].leaders, racks[b.rack].leaders),
		cmp.Compare(a.id, b.id),
	)
}

func cmpFollower(brokers []placeBroker, racks []placeRack, i, j int) int {
	a, b := &brokers[i], &brokers[j]
	return cmp.Or(
		cmp.Compare(a.replicas, b.replicas),
		cmp.Compare(racks[a.rack].replicas, racks[b.rack].replicas),
		cmp.Compare(b.leaders, a.leaders),
		cmp.Compare(a.id, b.id),
	)
}

package controller

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/port"
)

// alterPartition handles AlterPartition: a partition leader shrinks or
// expands its ISR. As in Kafka's ReplicationControlManager, each partition
// is checked against the view, the accepted changes go in one batch, and
// the answer carries each partition's state once that batch is committed.
// An ISR change raises the partition epoch only: the leader stays, unless
// the new ISR completes a reassignment that removes it.
func (c *Controller) alterPartition(req *kmsg.AlterPartitionRequest, resp *kmsg.AlterPartitionResponse, reply func(kmsg.Response)) {
	if b, ok := c.view.Broker(port.NodeID(req.BrokerID)); !ok || b.Epoch != req.BrokerEpoch {
		reply(fillError(req, resp, kerr.StaleBrokerEpoch))
		return
	}
	// A partition named twice would get two records computed from the same
	// state, which do not follow each other. Topics are named by name
	// before v2 and by id from v2 on; the other field is empty.
	type key struct {
		name      string
		id        [16]byte
		partition int32
	}
	named := map[key]int{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			named[key{rt.Topic, rt.TopicID, rp.Partition}]++
		}
	}
	type acceptance struct {
		out     *kmsg.AlterPartitionResponseTopicPartition
		topicID [16]byte
	}
	var recs []metadata.Record
	var accepted []acceptance
	resp.Topics = make([]kmsg.AlterPartitionResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		outTopic := &resp.Topics[i]
		*outTopic = kmsg.NewAlterPartitionResponseTopic()
		outTopic.Topic, outTopic.TopidID = rt.Topic, rt.TopicID
		var t metadata.Topic
		var known bool
		if req.Version >= 2 {
			t, known = c.view.TopicByID(rt.TopicID)
		} else {
			t, known = c.view.Topic(rt.Topic)
		}
		outTopic.Partitions = make([]kmsg.AlterPartitionResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			out := &outTopic.Partitions[j]
			*out = kmsg.NewAlterPartitionResponseTopicPartition()
			out.Partition = rp.Partition
			var err *kerr.Error
			switch {
			case !known && req.Version >= 2:
				err = kerr.UnknownTopicID
			case !known || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions):
				err = kerr.UnknownTopicOrPartition
			case named[key{rt.Topic, rt.TopicID, rp.Partition}] > 1:
				err = kerr.InvalidRequest
			default:
				cur := t.Partitions[rp.Partition]
				var isr []port.NodeID
				if isr, err = c.checkAlterPartition(req, cur, rp); err == nil {
					next := cur
					next.ISR = isr
					if rec, ok := c.change(t, rp.Partition, cur, next); ok {
						recs = append(recs, rec)
					}
				}
			}
			if err != nil {
				out.ErrorCode = err.Code
				continue
			}
			accepted = append(accepted, acceptance{out, t.ID})
		}
	}
	if len(recs) > 0 && !c.propose(recs, func(committed bool) {
		if !committed {
			fillError(req, resp, kerr.NotController)
		}
		reply(resp)
	}) {
		reply(fillError(req, resp, kerr.NotController))
		return
	}
	// Every accepted partition answers the state the view now holds: the
	// batch just proposed, or what an unchanged partition already had; the
	// answer leaves once that is committed (above, or in Handle). The
	// leader recovery state is always RECOVERED (0).
	//
	// An ISR that makes a reassignment due may take the leadership away
	// from the leader that asked (it is being removed): as Kafka, the
	// change is made, and the leader hears NEW_LEADER_ELECTED (from v2;
	// FENCED_LEADER_EPOCH before) so that it waits for the new state.
	for _, a := range accepted {
		p, _ := c.view.Partition(a.topicID, a.out.Partition)
		if p.Leader != port.NodeID(req.BrokerID) {
			a.out.ErrorCode = kerr.NewLeaderElected.Code
			if req.Version < 2 {
				a.out.ErrorCode = kerr.FencedLeaderEpoch.Code
			}
			continue
		}
		a.out.LeaderID, a.out.LeaderEpoch, a.out.PartitionEpoch = int32(p.Leader), p.LeaderEpoch, p.PartitionEpoch
		a.out.ISR = int32s(p.ISR)
	}
	if len(recs) == 0 {
		reply(resp)
	}
}

// checkAlterPartition validates one partition of an AlterPartition request
// against its current state, with the checks and errors of Kafka's
// validateAlterPartitionData, and returns the ISR asked for.
func (c *Controller) checkAlterPartition(req *kmsg.AlterPartitionRequest, cur metadata.Partition, rp kmsg.AlterPartitionRequestTopicPartition) ([]port.NodeID, *kerr.Error) {
	switch {
	case rp.LeaderEpoch > cur.LeaderEpoch || rp.PartitionEpoch > cur.PartitionEpoch:
		// The leader has seen a newer state than this controller's: this
		// node has likely been replaced, and the leader should find the
		// controller that wrote it.
		return nil, kerr.NotController
	case rp.LeaderEpoch < cur.LeaderEpoch:
		return nil, kerr.FencedLeaderEpoch
	case port.NodeID(req.BrokerID) != cur.Leader:
		// At the current leader epoch, only the leader can know the
		// epochs: another broker sending them is broken.
		return nil, kerr.InvalidRequest
	case rp.PartitionEpoch < cur.PartitionEpoch:
		return nil, kerr.InvalidUpdateVersion
	}
	members := rp.NewEpochISR
	if req.Version < 3 {
		// Before KIP-903 the ISR carries no broker epochs.
		members = make([]kmsg.AlterPartitionRequestTopicPartitionNewEpochISR, len(rp.NewISR))
		for i, id := range rp.NewISR {
			members[i].BrokerID = id
		}
	}
	isr := make([]port.NodeID, len(members))
	for i, m := range members {
		isr[i] = port.NodeID(m.BrokerID)
		if slices.Contains(isr[:i], isr[i]) || !slices.Contains(cur.Replicas, isr[i]) {
			return nil, kerr.InvalidRequest
		}
	}
	if !slices.Contains(isr, cur.Leader) {
		return nil, kerr.InvalidRequest
	}
	// Weir never marks a partition RECOVERING (KIP-704: its unclean
	// elections leave the new leader nothing to recover), so RECOVERED is
	// the only state a leader can report; Kafka refuses the move from
	// RECOVERED to RECOVERING alike.
	if rp.LeaderRecoveryState != 0 {
		return nil, kerr.InvalidRequest
	}
	// A broker joins the ISR only while it can serve, and (v3) only as the
	// incarnation the leader saw catch up: a broker that restarted since
	// may have lost what it had fetched.
	for _, m := range members {
		id := port.NodeID(m.BrokerID)
		if slices.Contains(cur.ISR, id) {
			continue
		}
		if b, _ := c.view.Broker(id); !c.usable(id) || req.Version >= 3 && m.BrokerEpoch != b.Epoch {
			if req.Version >= 2 {
				return nil, kerr.IneligibleReplica
			}
			return nil, kerr.OperationNotAttempted // INELIGIBLE_REPLICA came with v2
		}
	}
	return isr, nil
}

// sameMembers reports whether two ISRs without duplicates hold the same
// brokers, in any order.
func sameMembers(a, b []port.NodeID) bool {
	return len(a) == len(b) && containsAll(b, a)
}

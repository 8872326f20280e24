package controller

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/bugs"
	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/port"
)

// register handles BrokerRegistration. A retry of a registration already
// made (same incarnation) gets the same epoch back; a new incarnation (the
// broker restarted) gets a new epoch, which fences whatever the old
// process still tries.
func (c *Controller) register(nowMs int64, req *kmsg.BrokerRegistrationRequest, resp *kmsg.BrokerRegistrationResponse, reply func(kmsg.Response)) {
	id := port.NodeID(req.BrokerID)
	if cid := c.view.ClusterID(); cid != "" && req.ClusterID != cid {
		resp.ErrorCode = kerr.InconsistentClusterID.Code
		reply(resp)
		return
	}
	// A record the image would refuse must not reach Apply (it panics):
	// such a request is malformed.
	if err := checkRegistration(req); err != nil {
		resp.ErrorCode = kerr.InvalidRequest.Code
		reply(resp)
		return
	}
	incarnation := string(req.IncarnationID[:])
	if b, ok := c.view.Broker(id); ok && b.Incarnation == incarnation {
		resp.BrokerEpoch = b.Epoch
		c.contactMs[id] = nowMs
		reply(resp)
		return
	}
	c.contactMs[id] = nowMs
	rec := &metadata.RegisterBrokerRecord{ID: id, Epoch: int64(c.log.NextIndex()), Incarnation: incarnation}
	if req.Rack != nil {
		rec.Rack = *req.Rack
	}
	for _, l := range req.Listeners {
		rec.Endpoints = append(rec.Endpoints, metadata.Endpoint{Listener: l.Name, Host: l.Host, Port: int32(l.Port)})
	}
	// A re-registering broker is fenced again: it loses leaderships and
	// ISR places until it has caught up and asks to be unfenced.
	recs := append([]metadata.Record{{RegisterBroker: rec}}, c.leaveBroker(id)...)
	ok := c.propose(recs, func(committed bool) {
		if !committed {
			resp.ErrorCode, resp.BrokerEpoch = kerr.NotController.Code, -1
		}
		reply(resp)
	})
	if !ok {
		reply(fillError(req, resp, kerr.NotController))
		return
	}
	resp.BrokerEpoch = rec.Epoch
}

// checkRegistration refuses what the image would: a negative broker id,
// listeners without a name or named twice.
func checkRegistration(req *kmsg.BrokerRegistrationRequest) error {
	if req.BrokerID < 0 {
		return fmt.Errorf("negative broker id %d", req.BrokerID)
	}
	for i, l := range req.Listeners {
		if l.Name == "" {
			return fmt.Errorf("listener %d has no name", i)
		}
		for _, prev := range req.Listeners[:i] {
			if prev.Name == l.Name {
				return fmt.Errorf("listener %q listed twice", l.Name)
			}
		}
	}
	return nil
}

// heartbeat handles BrokerHeartbeat: it renews the broker's session, and
// unfences it or starts its controlled shutdown when it asks.
func (c *Controller) heartbeat(nowMs int64, req *kmsg.BrokerHeartbeatRequest, resp *kmsg.BrokerHeartbeatResponse, reply func(kmsg.Response)) {
	id := port.NodeID(req.BrokerID)
	b, ok := c.view.Broker(id)
	if !ok || b.Epoch != req.BrokerEpoch {
		resp.ErrorCode, resp.IsFenced = kerr.StaleBrokerEpoch.Code, true
		reply(resp)
		return
	}
	c.contactMs[id] = nowMs
	// A broker is caught up once it has replayed its own registration.
	resp.IsCaughtUp = req.CurrentMetadataOffset >= b.Epoch
	resp.IsFenced = b.Fenced
	var recs []metadata.Record
	switch {
	case req.WantShutdown && !b.ShuttingDown:
		// As Kafka's handleBrokerInControlledShutdown: leaderships move
		// and the broker leaves every ISR it is not the last member of.
		recs = append([]metadata.Record{{ShutdownBroker: &metadata.BrokerEpochRecord{ID: id, Epoch: b.Epoch}}},
			c.leaveBroker(id)...)
	case req.WantShutdown:
		resp.ShouldShutdown = !c.leadsAny(id)
	case b.Fenced && !req.WantFence && resp.IsCaughtUp:
		recs = []metadata.Record{{UnfenceBroker: &metadata.BrokerEpochRecord{ID: id, Epoch: b.Epoch}}}
	case !b.Fenced && req.WantFence:
		recs = append([]metadata.Record{{FenceBroker: &metadata.BrokerEpochRecord{ID: id, Epoch: b.Epoch}}},
			c.leaveBroker(id)...)
	}
	if len(recs) == 0 {
		reply(resp)
		return
	}
	ok = c.propose(recs, func(committed bool) {
		if !committed {
			resp.ErrorCode, resp.IsFenced, resp.ShouldShutdown = kerr.NotController.Code, true, false
		}
		reply(resp)
	})
	if !ok {
		reply(fillError(req, resp, kerr.NotController))
		return
	}
	// The answer is the state this batch leads to, sent once it is
	// committed; later batches in the view are not its business.
	after, _ := c.view.Broker(id)
	resp.IsFenced = after.Fenced
	resp.ShouldShutdown = after.ShuttingDown && !c.leadsAny(id)
	if !after.Fenced {
		// Partitions left without a leader that this broker can lead
		// get it back.
		if more := c.electLeaderless(); len(more) > 0 {
			c.propose(more, func(bool) {})
		}
	}
}

func (c *Controller) leadsAny(id port.NodeID) bool {
	for _, t := range c.view.Topics() {
		for _, p := range t.Partitions {
			if p.Leader == id {
				return true
			}
		}
	}
	return false
}

// leaveBroker returns the partition changes that take broker id out of
// service (fenced, re-registered or in controlled shutdown): leadership
// moves to another ISR member that can lead (or, where the topic allows an
// unclean election, to any replica that can; or to no leader), and it
// leaves each ISR it is not the last member of. The last member stays: it
// holds every acknowledged record, and with unclean election off only it
// may lead again.
func (c *Controller) leaveBroker(id port.NodeID) []metadata.Record {
	var recs []metadata.Record
	for _, t := range c.view.Topics() {
		for i, p := range t.Partitions {
			inISR := slices.Contains(p.ISR, id)
			if p.Leader != id && !inISR {
				continue
			}
			next := p
			next.ISR = slices.Clone(p.ISR)
			if inISR && len(p.ISR) > 1 {
				next.ISR = slices.DeleteFunc(next.ISR, func(r port.NodeID) bool { return r == id })
			}
			if p.Leader == id {
				next = c.electLeader(t.Name, int32(i), next, id, false)
			}
			// The last ISR member of a leaderless partition: nothing
			// changes.
			if rec, ok := c.change(t, int32(i), p, next); ok {
				recs = append(recs, rec)
			}
		}
	}
	return recs
}

// change returns the record that moves a partition of t from prev to
// next, raising its epochs, or false when next changes nothing. As
// Kafka's PartitionChangeBuilder does, it first completes a reassignment
// in progress that next's ISR allows (see completeReassignment): whatever
// changes a partition finishes its reassignment as soon as it can.
//
// The leader epoch rises when the leader changes, and also, as in Kafka's
// triggerLeaderEpochBumpForReplicaReassignmentIfNeeded, when replicas are
// taken away: the removed replicas' fetches at the old epoch are fenced.
func (c *Controller) change(t metadata.Topic, partition int32, prev, next metadata.Partition) (metadata.Record, bool) {
	next = c.completeReassignment(t.Name, partition, next)
	if samePartition(prev, next) {
		return metadata.Record{}, false
	}
	next.PartitionEpoch = prev.PartitionEpoch + 1
	if next.Leader != prev.Leader && !bugs.On(bugs.LeaderEpochNotBumped) || !containsAll(next.Replicas, prev.Replicas) {
		next.LeaderEpoch = prev.LeaderEpoch + 1
	}
	return metadata.Record{Partition: &metadata.PartitionRecord{TopicID: t.ID, Partition: partition,
		Replicas: next.Replicas, ISR: next.ISR, Leader: next.Leader,
		LeaderEpoch: next.LeaderEpoch, PartitionEpoch: next.PartitionEpoch,
		AddingReplicas: next.AddingReplicas, RemovingReplicas: next.RemovingReplicas}}, true
}

// samePartition reports whether b is a's state with nothing changed (the
// ISR in any order).
func samePartition(a, b metadata.Partition) bool {
	return a.Leader == b.Leader && slices.Equal(a.Replicas, b.Replicas) && sameMembers(a.ISR, b.ISR) &&
		slices.Equal(a.AddingReplicas, b.AddingReplicas) && slices.Equal(a.RemovingReplicas, b.RemovingReplicas)
}

// containsAll reports whether every member of sub is in set.
func containsAll(set, sub []port.NodeID) bool {
	for _, r := range sub {
		if !slices.Contains(set, r) {
			return false
		}
	}
	return true
}

// electLeaderless gives a leader to every partition without one that has
// an ISR member able to lead, or, where the topic allows an unclean
// election, any replica able to.
func (c *Controller) electLeaderless() []metadata.Record {
	var recs []metadata.Record
	for _, t := range c.view.Topics() {
		for i, p := range t.Partitions {
			if p.Leader != metadata.NoLeader {
				continue
			}
			if next := c.electLeader(t.Name, int32(i), p, metadata.NoLeader, false); next.Leader != metadata.NoLeader {
				rec, _ := c.change(t, int32(i), p, next)
				recs = append(recs, rec)
			}
		}
	}
	return recs
}

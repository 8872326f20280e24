package controller

import (
	"encoding/base64"
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
//
// A broker names its log directory by the directory.id of its
// meta.properties (LogDirs, v2+), drawn when the directory was first used.
// A registration naming another directory than the one registered before
// means the disk was lost or wiped: the broker no longer holds the records
// it acknowledged, so in the same batch it leaves every ISR and every ELR
// (see leaveBroker) and can lead again only once it has caught up and
// rejoined an ISR. A registration that names no directory (before v2)
// cannot prove it kept its disk, and is taken for a loss too.
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
	prev, registered := c.view.Broker(id)
	if registered && prev.Incarnation == incarnation {
		resp.BrokerEpoch = prev.Epoch
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
	if len(req.LogDirs) > 0 {
		rec.DirectoryID = req.LogDirs[0]
	}
	diskLost := registered && prev.DirectoryID != [16]byte{} && rec.DirectoryID != prev.DirectoryID &&
		!bugs.On(bugs.DiskLossNotDetected)
	if diskLost {
		c.logger.Warn("broker registered with another log directory: its disk was lost, it leaves every ISR and ELR",
			"broker", id, "old_directory", dirString(prev.DirectoryID), "directory", dirString(rec.DirectoryID))
	}
	// A re-registering broker is fenced again: it loses leaderships and
	// ISR places until it has caught up and asks to be unfenced.
	recs := append([]metadata.Record{{RegisterBroker: rec}}, c.leaveBroker(id, diskLost)...)
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
	// Weir serves one log directory per broker, so a broker names one.
	if len(req.LogDirs) > 1 {
		return fmt.Errorf("%d log directories, Weir serves one", len(req.LogDirs))
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
		// As Kafka's handleBrokerInControlledShutdown (with ELR):
		// leaderships move and the broker leaves every ISR.
		recs = append([]metadata.Record{{ShutdownBroker: &metadata.BrokerEpochRecord{ID: id, Epoch: b.Epoch}}},
			c.leaveBroker(id, false)...)
	case req.WantShutdown:
		resp.ShouldShutdown = !c.leadsAny(id)
	case b.Fenced && !req.WantFence && resp.IsCaughtUp:
		recs = []metadata.Record{{UnfenceBroker: &metadata.BrokerEpochRecord{ID: id, Epoch: b.Epoch}}}
	case !b.Fenced && req.WantFence:
		recs = append([]metadata.Record{{FenceBroker: &metadata.BrokerEpochRecord{ID: id, Epoch: b.Epoch}}},
			c.leaveBroker(id, false)...)
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
// moves (see electLeader) and it leaves every ISR, even as the last member
// (Kafka with KIP-966's ELR): it acknowledged only what it had fsynced, so
// it comes back with every record it acknowledged, and change makes it an
// eligible leader where the ISR is left too small. When its disk was lost
// it comes back with nothing: it leaves the ELRs too, and joins none.
func (c *Controller) leaveBroker(id port.NodeID, diskLost bool) []metadata.Record {
	var lost []port.NodeID
	if diskLost {
		lost = []port.NodeID{id}
	}
	var recs []metadata.Record
	for _, t := range c.view.Topics() {
		for i, p := range t.Partitions {
			if p.Leader != id && !slices.Contains(p.ISR, id) && !slices.Contains(lost, id) {
				continue
			}
			next := p
			next.ISR = without(p.ISR, id)
			if p.Leader == id {
				next = c.electLeader(t.Name, int32(i), next, id, false)
			}
			if rec, ok := c.changeLosing(t, int32(i), p, next, lost); ok {
				recs = append(recs, rec)
			}
		}
	}
	return recs
}

// change returns the record that moves a partition of t from prev to
// next, raising its epochs and keeping its ELR (see eligibleLeaders), or
// false when next changes nothing. As Kafka's PartitionChangeBuilder does,
// it first completes a reassignment in progress that next's ISR allows
// (see completeReassignment): whatever changes a partition finishes its
// reassignment as soon as it can.
//
// The leader epoch rises when the leader changes, and also, as in Kafka's
// triggerLeaderEpochBumpForReplicaReassignmentIfNeeded, when replicas are
// taken away: the removed replicas' fetches at the old epoch are fenced.
func (c *Controller) change(t metadata.Topic, partition int32, prev, next metadata.Partition) (metadata.Record, bool) {
	return c.changeLosing(t, partition, prev, next, nil)
}

// changeLosing is change for replicas whose disk was lost: they are in
// neither next's ISR nor its ELR.
func (c *Controller) changeLosing(t metadata.Topic, partition int32, prev, next metadata.Partition, lost []port.NodeID) (metadata.Record, bool) {
	next = c.completeReassignment(t.Name, partition, next)
	next.ELR = c.eligibleLeaders(t.Name, prev, next, lost)
	if next.Leader != metadata.NoLeader && slices.Contains(lost, next.Leader) {
		panic(fmt.Sprintf("controller: %s-%d: broker %d leads after losing its disk", t.Name, partition, next.Leader))
	}
	if samePartition(prev, next) {
		return metadata.Record{}, false
	}
	next.PartitionEpoch = prev.PartitionEpoch + 1
	if next.Leader != prev.Leader && !bugs.On(bugs.LeaderEpochNotBumped) || !containsAll(next.Replicas, prev.Replicas) {
		next.LeaderEpoch = prev.LeaderEpoch + 1
	}
	return metadata.Record{Partition: &metadata.PartitionRecord{TopicID: t.ID, Partition: partition,
		Replicas: next.Replicas, ISR: next.ISR, ELR: next.ELR, Leader: next.Leader,
		LeaderEpoch: next.LeaderEpoch, PartitionEpoch: next.PartitionEpoch,
		AddingReplicas: next.AddingReplicas, RemovingReplicas: next.RemovingReplicas}}, true
}

// eligibleLeaders returns next's ELR (KIP-966). A leader advances its high
// watermark only while its ISR has at least MinISR members, so while
// next's ISR is smaller, the members that left the ISR since prev hold
// every committed record: they join the ELR, and may lead when no ISR
// member can (electLeader). Once the ISR is that large again, the ELR
// empties: the ISR holds everything committed. ISR members, brokers no
// longer replicas and brokers whose disk was lost are never in it.
func (c *Controller) eligibleLeaders(topic string, prev, next metadata.Partition, lost []port.NodeID) []port.NodeID {
	if len(next.ISR) >= c.minISR(topic, next) {
		return nil
	}
	var elr []port.NodeID
	for _, r := range slices.Concat(next.ELR, prev.ISR) {
		if slices.Contains(next.Replicas, r) && !slices.Contains(next.ISR, r) && !slices.Contains(lost, r) && !slices.Contains(elr, r) {
			elr = append(elr, r)
		}
	}
	return elr
}

// without returns ids less id, in a new slice.
func without(ids []port.NodeID, id port.NodeID) []port.NodeID {
	return slices.DeleteFunc(slices.Clone(ids), func(r port.NodeID) bool { return r == id })
}

// dirString renders a directory id as Kafka does (base64, URL alphabet).
func dirString(id [16]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// samePartition reports whether b is a's state with nothing changed (the
// ISR and the ELR in any order).
func samePartition(a, b metadata.Partition) bool {
	return a.Leader == b.Leader && slices.Equal(a.Replicas, b.Replicas) && sameMembers(a.ISR, b.ISR) && sameMembers(a.ELR, b.ELR) &&
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

package controller

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/port"
)

// Partition reassignment (KIP-455), as Kafka's KRaft controller does it
// (ReplicationControlManager, PartitionReassignmentReplicas,
// PartitionReassignmentRevert):
//
//  1. AlterPartitionReassignments with a target replica list writes the
//     partition with replicas = target followed by the current replicas
//     not in it, adding = target − current (and those of a reassignment
//     it replaces still being added), removing = current − target.
//  2. The replicas being added fetch from the leader like any follower,
//     and its AlterPartition brings them into the ISR.
//  3. Once the ISR holds every replica being added (and some replica not
//     being removed), the reassignment is due. If a replica being removed
//     leads, the next change moves the leadership to a target member of
//     the ISR, and the old leader stays in the ISR (see
//     completeReassignment for why). The leader drops the replicas being
//     removed from the ISR (AlterPartition) once each has fetched from it
//     in its epoch, or fencing and lag drop them; the change that leaves
//     none in the ISR completes the reassignment: replicas = target.
//     Replicas that are removed learn it from the image; the leader epoch
//     rises, so their fetches at the old one are fenced.
//
// A target within the current replicas adds nothing and completes at
// once. A nil target cancels: the replicas being added are dropped, from
// the replicas and the ISR, and those being removed stay.

// alterPartitionReassignments handles AlterPartitionReassignments: each
// partition is checked against the view, the accepted changes go in one
// batch, and the answer leaves once it is committed.
func (c *Controller) alterPartitionReassignments(req *kmsg.AlterPartitionAssignmentsRequest, resp *kmsg.AlterPartitionAssignmentsResponse, reply func(kmsg.Response)) {
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	// A partition named twice would get two records computed from the same
	// state, which do not follow each other.
	type key struct {
		topic     string
		partition int32
	}
	named := map[key]int{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			named[key{rt.Topic, rp.Partition}]++
		}
	}
	keepRF := req.Version >= 1 && !req.AllowReplicationFactorChange // KIP-860
	var recs []metadata.Record
	resp.Topics = make([]kmsg.AlterPartitionAssignmentsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		outTopic := &resp.Topics[i]
		*outTopic = kmsg.NewAlterPartitionAssignmentsResponseTopic()
		outTopic.Topic = rt.Topic
		t, known := c.view.Topic(rt.Topic)
		outTopic.Partitions = make([]kmsg.AlterPartitionAssignmentsResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			out := &outTopic.Partitions[j]
			*out = kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			out.Partition = rp.Partition
			var rec metadata.Record
			var changed bool
			var err error
			switch {
			case !known:
				err = fmt.Errorf("%w: Unable to find a topic named %s.", kerr.UnknownTopicOrPartition, rt.Topic)
			case rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions):
				err = fmt.Errorf("%w: Unable to find partition %s:%d.", kerr.UnknownTopicOrPartition, rt.Topic, rp.Partition)
			case named[key{rt.Topic, rp.Partition}] > 1:
				err = fmt.Errorf("%w: Partition %s:%d is named more than once.", kerr.InvalidRequest, rt.Topic, rp.Partition)
			case rp.Replicas == nil:
				rec, changed, err = c.cancelReassignment(t, rp.Partition)
			default:
				rec, changed, err = c.startReassignment(t, rp.Partition, rp.Replicas, keepRF)
			}
			if err != nil {
				setErr(&out.ErrorCode, &out.ErrorMessage, err)
				continue
			}
			if changed {
				recs = append(recs, rec)
			}
		}
	}
	if len(recs) == 0 {
		reply(resp) // in Handle, once what the view holds is committed
		return
	}
	if !c.propose(recs, func(committed bool) {
		if !committed {
			fillError(req, resp, kerr.NotController)
		}
		reply(resp)
	}) {
		reply(fillError(req, resp, kerr.NotController))
	}
}

// startReassignment returns the change that starts moving partition p of t
// to target (Kafka's changePartitionReassignment), or false when there is
// nothing to change.
//
// A reassignment already in progress is replaced: the current replicas are
// all the partition has, those being added included, so those the new
// target leaves out are removed with the others. A replica still being
// added that the new target keeps stays one being added: the new
// reassignment must wait for it too. (Kafka keeps the old replicas being
// added when the new target adds none, so that the same target sent again
// changes nothing; this does that, and does not forget them when the new
// target adds others.)
func (c *Controller) startReassignment(t metadata.Topic, p int32, target []int32, keepRF bool) (metadata.Record, bool, error) {
	cur := t.Partitions[p]
	replicas, err := c.checkReplicas(target, len(target))
	if err != nil {
		return metadata.Record{}, false, err
	}
	if rf := len(cur.Replicas) - len(cur.RemovingReplicas); keepRF && rf != len(replicas) {
		return metadata.Record{}, false, fmt.Errorf("%w: The replication factor is changed from %d to %d", kerr.InvalidReplicationFactor, rf, len(replicas))
	}
	next := cur
	// Those being added are the target's replicas that do not hold the
	// partition yet: not replicas, or still being added. Kafka keeps both
	// sets ordered by id.
	next.AddingReplicas = sortedMinus(replicas, sortedMinus(cur.Replicas, cur.AddingReplicas))
	next.RemovingReplicas = sortedMinus(cur.Replicas, replicas)
	next.Replicas = append(replicas, next.RemovingReplicas...)
	rec, changed := c.change(t, p, cur, next)
	return rec, changed, nil
}

// cancelReassignment returns the change that reverts the reassignment of
// partition p of t (Kafka's cancelPartitionReassignment): the replicas
// being added leave the replicas and the ISR, those being removed stay. If
// only replicas being added hold every committed record (the ISR and the
// ELR), the revert is an unclean election, refused unless the topic allows
// those.
//
// Stricter than Kafka, a revert is also refused while it would leave fewer
// such replicas than min.insync.replicas where there were more: the
// replicas being added delete their copy, and the committed records must
// stay on that many disks. The others catch up, and a cancel then goes
// through.
func (c *Controller) cancelReassignment(t metadata.Topic, p int32) (metadata.Record, bool, error) {
	cur := t.Partitions[p]
	if !cur.Reassigning() {
		return metadata.Record{}, false, fmt.Errorf("%w: No partition reassignment is in progress.", kerr.NoReassignmentInProgress)
	}
	adding := func(r port.NodeID) bool { return slices.Contains(cur.AddingReplicas, r) }
	next := cur
	next.Replicas = slices.DeleteFunc(slices.Clone(cur.Replicas), adding)
	next.ISR = slices.DeleteFunc(slices.Clone(cur.ISR), adding)
	next.AddingReplicas, next.RemovingReplicas = nil, nil
	holders := len(next.ISR) + len(c.eligibleLeaders(t.Name, cur, next, nil))
	if holders > 0 && holders < c.minISR(t.Name, next) && holders < len(cur.ISR)+len(cur.ELR) {
		return metadata.Record{}, false, fmt.Errorf("%w: Unable to revert partition assignment for %s:%d yet: it would leave fewer than min.insync.replicas in-sync replicas.",
			kerr.InvalidReplicaAssignment, t.Name, p)
	}
	if holders == 0 {
		if !c.uncleanAllowed(t.Name) {
			return metadata.Record{}, false, fmt.Errorf("%w: Unable to revert partition assignment for %s:%d because it would require an unclean leader election.",
				kerr.InvalidReplicaAssignment, t.Name, p)
		}
		next.ISR = []port.NodeID{next.Replicas[0]}
		c.logger.Warn("unclean reassignment revert: only replicas being added were in the ISR, records acknowledged only by them are lost",
			"topic", t.Name, "partition", p, "isr", next.ISR, "old_isr", cur.ISR)
	}
	if !slices.Contains(next.ISR, next.Leader) {
		next = c.electLeader(t.Name, p, next, metadata.NoLeader, false)
	}
	rec, changed := c.change(t, p, cur, next)
	return rec, changed, nil
}

// completeReassignment returns p with its reassignment completed if its
// ISR allows (see reassignmentDone). The ISR loses the replicas removed,
// and a leader among them gives way to the first replica of the target, in
// order, that is in the ISR and can lead (Kafka's electAnyLeader; where
// the topic allows unclean elections, any replica of the target that can).
//
// Weir completes in two steps where Kafka takes one. While a replica being
// removed is the leader, the change only moves the leadership to a target
// member of the ISR, and the old leader stays in the ISR: the new leader's
// high watermark then waits until the old one has fetched from it, which
// it does only once it knows it no longer leads. The reassignment
// completes when the ISR holds no replica being removed, which the new
// leader brings about (AlterPartition) once every such replica has fetched
// from it, or the ISR rules do (lag, fencing). Dropping the old leader at
// once let the new one acknowledge records while the old one, slow to
// replay the change, still served reads that missed them (claim 2, seed
// 935).
//
// Stricter than Kafka, a reassignment completes only once the target's
// ISR has the target's MinISR members: the replicas removed delete their
// copy, and may be eligible leaders holding committed records the target
// lacks; an ISR that large holds every committed record on enough disks.
func (c *Controller) completeReassignment(topic string, partition int32, p metadata.Partition) metadata.Partition {
	replicas, isr, done := reassignmentDone(p)
	if !done || len(isr) < c.minISR(topic, metadata.Partition{Replicas: replicas}) {
		return p
	}
	if len(isr) < len(p.ISR) {
		if slices.Contains(p.RemovingReplicas, p.Leader) {
			cand := p
			cand.ISR = isr
			// Only an ISR member that stays may lead: never an unclean
			// choice while the old leader still holds everything.
			if moved := c.electLeader(topic, partition, cand, p.Leader, false); slices.Contains(isr, moved.Leader) {
				p.Leader = moved.Leader
			}
		}
		return p
	}
	p.Replicas, p.ISR, p.AddingReplicas, p.RemovingReplicas = replicas, isr, nil, nil
	return p
}

// reassignmentDone returns the replicas and ISR that complete p's
// reassignment, or false while it cannot complete (Kafka's
// PartitionReassignmentReplicas.maybeCompleteReassignment, as of the KRaft
// controller's first versions): every replica being added must be in the
// ISR, and some ISR member must not be being removed.
func reassignmentDone(p metadata.Partition) (replicas, isr []port.NodeID, done bool) {
	if !p.Reassigning() || !containsAll(p.ISR, p.AddingReplicas) {
		return nil, nil, false
	}
	removing := func(r port.NodeID) bool { return slices.Contains(p.RemovingReplicas, r) }
	isr = slices.DeleteFunc(slices.Clone(p.ISR), removing)
	if len(isr) == 0 {
		return nil, nil, false
	}
	return slices.DeleteFunc(slices.Clone(p.Replicas), removing), isr, true
}

// sortedMinus returns the members of a not in b, ordered by id.
func sortedMinus(a, b []port.NodeID) []port.NodeID {
	var out []port.NodeID
	for _, r := range a {
		if !slices.Contains(b, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// listPartitionReassignments handles ListPartitionReassignments: the
// partitions with a reassignment in progress, of every topic (no topics
// given) or of the partitions named; as in Kafka, names of unknown topics
// and partitions, and partitions not being reassigned, are left out. It is
// read from the view, and Handle holds the answer until that is committed.
func (c *Controller) listPartitionReassignments(req *kmsg.ListPartitionReassignmentsRequest, resp *kmsg.ListPartitionReassignmentsResponse, reply func(kmsg.Response)) {
	list := func(t metadata.Topic, partitions []int32) {
		rt := kmsg.NewListPartitionReassignmentsResponseTopic()
		rt.Topic = t.Name
		for _, i := range partitions {
			if i < 0 || int(i) >= len(t.Partitions) || !t.Partitions[i].Reassigning() {
				continue
			}
			p := t.Partitions[i]
			rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			rp.Partition = i
			rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas = int32s(p.Replicas), int32s(p.AddingReplicas), int32s(p.RemovingReplicas)
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) > 0 {
			resp.Topics = append(resp.Topics, rt)
		}
	}
	if req.Topics == nil {
		c.view.AscendTopics(func(t metadata.Topic) bool {
			all := make([]int32, len(t.Partitions))
			for i := range all {
				all[i] = int32(i)
			}
			list(t, all)
			return true
		})
	}
	for _, rt := range req.Topics {
		if t, ok := c.view.Topic(rt.Topic); ok {
			list(t, rt.Partitions)
		}
	}
	reply(resp)
}

// int32s converts node ids for the wire; empty stays empty (not nil).
func int32s(ids []port.NodeID) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

package controller

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/metadata"
)

// move is one partition of an AlterPartitionReassignments request; nil
// replicas cancel.
type move struct {
	topic     string
	partition int32
	replicas  []int32
}

// reassignReq asks for moves; from v1 it keeps replication factors (the
// field defaults to allowing changes).
func reassignReq(version int16, moves ...move) *kmsg.AlterPartitionAssignmentsRequest {
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.Version, req.AllowReplicationFactorChange = version, false
	for _, m := range moves {
		// Consecutive moves of one topic share its entry.
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != m.topic {
			rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
			rt.Topic = m.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		rp.Partition, rp.Replicas = m.partition, m.replicas
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return req
}

// reassignResults returns the partitions of an answer, in order, after
// checking that it has no top-level error.
func reassignResults(t fatalf, resp kmsg.Response) []kmsg.AlterPartitionAssignmentsResponseTopicPartition {
	t.Helper()
	r := resp.(*kmsg.AlterPartitionAssignmentsResponse)
	wantCode(t, "reassignment top level", r.ErrorCode, nil)
	if r.ErrorMessage != nil {
		t.Fatalf("top-level message %q", *r.ErrorMessage)
	}
	var out []kmsg.AlterPartitionAssignmentsResponseTopicPartition
	for _, rt := range r.Topics {
		out = append(out, rt.Partitions...)
	}
	return out
}

// reassign moves topic-p to replicas (none: cancels) and returns the
// partition's answer once committed.
func (e *env) reassign(topic string, p int32, replicas ...int32) kmsg.AlterPartitionAssignmentsResponseTopicPartition {
	e.t.Helper()
	rs := reassignResults(e.t, e.call(reassignReq(0, move{topic, p, replicas})))
	if len(rs) != 1 || rs[0].Partition != p {
		e.t.Fatalf("reassignment answer %+v", rs)
	}
	return rs[0]
}

func (e *env) mustReassign(topic string, p int32, replicas ...int32) {
	e.t.Helper()
	if rp := e.reassign(topic, p, replicas...); rp.ErrorCode != 0 {
		e.t.Fatalf("reassign %s-%d to %v: %v %s", topic, p, replicas, kerr.ErrorForCode(rp.ErrorCode), str(rp.ErrorMessage))
	}
}

// state describes what a partition's replication is, epochs aside.
func state(p metadata.Partition) string {
	s := fmt.Sprintf("replicas=%v isr=%v leader=%d", p.Replicas, p.ISR, p.Leader)
	if len(p.ELR) > 0 {
		s += fmt.Sprintf(" elr=%v", p.ELR)
	}
	if p.Reassigning() {
		s += fmt.Sprintf(" adding=%v removing=%v", p.AddingReplicas, p.RemovingReplicas)
	}
	return s
}

// wantPartition checks topic-p's committed state and its epochs' steps
// from before.
func (e *env) wantPartition(t *testing.T, topic string, p int32, before metadata.Partition, want string, leaderStep, partitionStep int32) metadata.Partition {
	t.Helper()
	got := e.partition(topic, p)
	if state(got) != want {
		t.Fatalf("%s-%d: %s\n                want %s", topic, p, state(got), want)
	}
	if got.LeaderEpoch != before.LeaderEpoch+leaderStep || got.PartitionEpoch != before.PartitionEpoch+partitionStep {
		t.Fatalf("%s-%d: epochs %d/%d after %d/%d, want steps %d/%d", topic, p,
			got.LeaderEpoch, got.PartitionEpoch, before.LeaderEpoch, before.PartitionEpoch, leaderStep, partitionStep)
	}
	if err := e.checkImage(e.log.committed); err != nil {
		t.Fatal(err)
	}
	return got
}

func listReq(topics map[string][]int32) *kmsg.ListPartitionReassignmentsRequest {
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range topics {
			if !yield(k) {
				return
			}
		}
	}) {
		rt := kmsg.NewListPartitionReassignmentsRequestTopic()
		rt.Topic, rt.Partitions = name, topics[name]
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// listed renders a ListPartitionReassignments answer, one line per
// partition.
func listed(t fatalf, resp kmsg.Response) string {
	t.Helper()
	r := resp.(*kmsg.ListPartitionReassignmentsResponse)
	wantCode(t, "list reassignments", r.ErrorCode, nil)
	var b strings.Builder
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			fmt.Fprintf(&b, "%s-%d replicas=%v adding=%v removing=%v\n", rt.Topic, rp.Partition, rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas)
		}
	}
	return b.String()
}

// wantListed checks what ListPartitionReassignments lists for topic-p:
// nothing once the reassignment is complete.
func (e *env) wantListed(t *testing.T, topic string, p int32, want string) {
	t.Helper()
	if got := listed(t, e.call(listReq(map[string][]int32{topic: {p}}))); got != want {
		t.Fatalf("listed %q, want %q", got, want)
	}
}

// dropRemoving is the second step of a reassignment that its ISR has made
// due: topic-p's current leader, at the current leader and partition
// epochs, asks for the ISR without the replicas being removed (as a
// broker does once each has fetched from it). The change commits, the
// answer carries the committed state with exactly that ISR, and the same
// broker leads.
func (e *env) dropRemoving(t *testing.T, topic string, p int32, isr ...int32) kmsg.AlterPartitionResponseTopicPartition {
	t.Helper()
	before := e.partition(topic, p)
	rp := altered(t, e.call(e.alterReq(3, topic, p, isr...)))
	after := e.partition(topic, p)
	if !answers(rp, after, isr) || after.Leader != before.Leader {
		t.Fatalf("dropping the replicas removed from %s-%d: answer %+v, committed %s after %s", topic, p, rp, state(after), state(before))
	}
	return rp
}

// TestReassignmentMovesLeader: the leader's replica is moved away. The new
// replica joins the ISR through AlterPartition, which makes the
// reassignment due: the target's first ISR member leads, in a new leader
// epoch, the old leader stays in the ISR and the replicas (it must fetch
// from the new one before it leaves), the reassignment goes on, and the
// leader that asked hears NEW_LEADER_ELECTED. The new leader then drops
// the old one from the ISR, which completes the reassignment.
func TestReassignmentMovesLeader(t *testing.T) {
	for _, version := range []int16{1, 2, 3} {
		e := newEnv(t)
		e.addBrokers(1, 2, 3, 4)
		e.create(assigned("t", []int32{1, 2, 3}))
		p0 := e.partition("t", 0)

		a := e.send(reassignReq(0, move{"t", 0, []int32{4, 2, 3}}))
		if a.n != 0 {
			t.Fatalf("answered before its commit")
		}
		e.log.commit(-1)
		if rs := reassignResults(t, a.resp); len(rs) != 1 || rs[0].ErrorCode != 0 || rs[0].ErrorMessage != nil {
			t.Fatalf("reassignment answer %+v", rs)
		}
		// Started: 4 joins as a replica being added; nothing else moves.
		p1 := e.wantPartition(t, "t", 0, p0, "replicas=[4 2 3 1] isr=[1 2 3] leader=1 adding=[4] removing=[1]", 0, 1)
		if got := listed(t, e.call(listReq(nil))); got != "t-0 replicas=[4 2 3 1] adding=[4] removing=[1]\n" {
			t.Fatalf("listed %q", got)
		}

		// 4 has caught up: the leader asks for it in the ISR.
		rp := altered(t, e.call(e.alterReq(version, "t", 0, 1, 2, 3, 4)))
		want := kerr.NewLeaderElected
		if version < 2 {
			want = kerr.FencedLeaderEpoch
		}
		wantCode(t, "alter partition moving the leadership", rp.ErrorCode, want)
		if rp.ISR != nil || rp.LeaderEpoch != 0 {
			t.Fatalf("answer %+v carries a state with its error", rp)
		}
		p2 := e.wantPartition(t, "t", 0, p1, "replicas=[4 2 3 1] isr=[1 2 3 4] leader=4 adding=[4] removing=[1]", 1, 1)
		e.wantListed(t, "t", 0, "t-0 replicas=[4 2 3 1] adding=[4] removing=[1]\n")

		// The old leader, at its old leader epoch, is fenced.
		stale := e.alterReq(3, "t", 0, 1, 2, 3)
		stale.BrokerID, stale.BrokerEpoch = 1, e.broker(1).Epoch
		stale.Topics[0].Partitions[0].LeaderEpoch = p1.LeaderEpoch
		stale.Topics[0].Partitions[0].PartitionEpoch = p1.PartitionEpoch
		wantCode(t, "alter partition from the deposed leader", altered(t, e.call(stale)).ErrorCode, kerr.FencedLeaderEpoch)
		e.wantPartition(t, "t", 0, p2, "replicas=[4 2 3 1] isr=[1 2 3 4] leader=4 adding=[4] removing=[1]", 0, 0)

		// 1 has fetched from 4: 4 drops it, which completes.
		e.dropRemoving(t, "t", 0, 2, 3, 4)
		e.wantPartition(t, "t", 0, p2, "replicas=[4 2 3] isr=[2 3 4] leader=4", 1, 1)
		if got := listed(t, e.call(listReq(nil))); got != "" {
			t.Fatalf("listed %q after completion", got)
		}
	}
}

// TestReassignmentKeepsLeader: replicas leave and the leader stays. An ISR
// that holds every replica added but still some removed leaves the
// reassignment in progress; the leader's AlterPartition that drops the
// last of those completes it, the leader epoch rises (the replicas removed
// are fenced), and the answer carries the completed state.
func TestReassignmentKeepsLeader(t *testing.T) {
	e := newEnv(t)
	e.addBrokers(1, 2, 3, 4, 5)
	e.create(assigned("t", []int32{1, 2, 3}))
	p0 := e.partition("t", 0)
	e.mustReassign("t", 0, 1, 5, 4)
	p1 := e.wantPartition(t, "t", 0, p0, "replicas=[1 5 4 2 3] isr=[1 2 3] leader=1 adding=[4 5] removing=[2 3]", 0, 1)

	// 5 joins, 4 has not yet: still in progress (an ISR change alone).
	e.wantState(t, altered(t, e.call(e.alterReq(3, "t", 0, 1, 2, 3, 5))), "t", 0, 1, 2, 3, 5)
	p2 := e.wantPartition(t, "t", 0, p1, "replicas=[1 5 4 2 3] isr=[1 2 3 5] leader=1 adding=[4 5] removing=[2 3]", 0, 1)

	// 4 joins while 3 drops out: due, but 2 is still in the ISR, so
	// still in progress (an ISR change alone).
	e.wantState(t, altered(t, e.call(e.alterReq(3, "t", 0, 1, 2, 5, 4))), "t", 0, 1, 2, 5, 4)
	p3 := e.wantPartition(t, "t", 0, p2, "replicas=[1 5 4 2 3] isr=[1 2 5 4] leader=1 adding=[4 5] removing=[2 3]", 0, 1)
	e.wantListed(t, "t", 0, "t-0 replicas=[1 5 4 2 3] adding=[4 5] removing=[2 3]\n")

	// 2 drops out: complete.
	rp := e.dropRemoving(t, "t", 0, 1, 5, 4)
	p4 := e.wantPartition(t, "t", 0, p3, "replicas=[1 5 4] isr=[1 5 4] leader=1", 1, 1)
	if !answers(rp, p4, []int32{1, 5, 4}) {
		t.Fatalf("answer %+v, committed %+v", rp, p4)
	}
	e.wantListed(t, "t", 0, "")
	// The preferred leader is the target's first.
	got := electCodes(e.call(electReq(electPreferred, map[string][]int32{"t": {0}})))
	wantCode(t, "preferred election after completion", got["t"][0], kerr.ElectionNotNeeded)
}

// TestReassignmentWithinReplicas: a target within the current replicas
// adds nothing and is due at once when the ISR keeps one of them: a leader
// removed gives way to the target's first ISR member at once, and the
// reassignment completes when the new leader drops the removed replicas
// from the ISR; otherwise it waits for one to join.
func TestReassignmentWithinReplicas(t *testing.T) {
	e := newEnv(t)
	e.addBrokers(1, 2, 3)
	e.create(assigned("t", []int32{1, 2, 3}, []int32{1, 2, 3}, []int32{1, 2, 3}))
	p := e.partition("t", 0)
	e.mustReassign("t", 0, 3, 2)
	p = e.wantPartition(t, "t", 0, p, "replicas=[3 2 1] isr=[1 2 3] leader=3 adding=[] removing=[1]", 1, 1)
	e.wantListed(t, "t", 0, "t-0 replicas=[3 2 1] adding=[] removing=[1]\n")
	e.dropRemoving(t, "t", 0, 2, 3)
	e.wantPartition(t, "t", 0, p, "replicas=[3 2] isr=[2 3] leader=3", 1, 1)
	e.wantListed(t, "t", 0, "")

	// Only the order changes: the preferred leader moves, not the leader.
	p = e.partition("t", 1)
	e.mustReassign("t", 1, 2, 3, 1)
	e.wantPartition(t, "t", 1, p, "replicas=[2 3 1] isr=[1 2 3] leader=1", 0, 1)
	// The same replicas again: nothing to do.
	n := e.log.proposed
	e.mustReassign("t", 1, 2, 3, 1)
	if e.log.proposed != n {
		t.Fatalf("an unchanged assignment proposed")
	}

	// The target's replicas are all out of the ISR: it waits.
	e.call(e.alterReq(3, "t", 2, 1))
	p = e.partition("t", 2)
	e.mustReassign("t", 2, 2, 3)
	p = e.wantPartition(t, "t", 2, p, "replicas=[2 3 1] isr=[1] leader=1 adding=[] removing=[1]", 0, 1)
	// 3 joins: due, the leadership moves to 3, 1 stays in the ISR.
	wantCode(t, "alter partition moving the leadership", altered(t, e.call(e.alterReq(3, "t", 2, 1, 3))).ErrorCode, kerr.NewLeaderElected)
	p = e.wantPartition(t, "t", 2, p, "replicas=[2 3 1] isr=[1 3] leader=3 adding=[] removing=[1]", 1, 1)
	e.wantListed(t, "t", 2, "t-2 replicas=[2 3 1] adding=[] removing=[1]\n")
	e.dropRemoving(t, "t", 2, 3)
	e.wantPartition(t, "t", 2, p, "replicas=[2 3] isr=[3] leader=3", 1, 1)
	e.wantListed(t, "t", 2, "")
}

// TestReplaceReassignment: a reassignment in progress is replaced by a
// new target: the replicas it leaves out are removed, those still being
// added that it keeps are still being added, and the same target sent
// again changes nothing. Replicas removed that are still in the ISR keep
// the new reassignment in progress until the leader drops them.
func TestReplaceReassignment(t *testing.T) {
	e := newEnv(t)
	e.addBrokers(1, 2, 3, 4, 5)
	e.create(assigned("t", []int32{1, 2, 3}))
	e.mustReassign("t", 0, 4, 2, 3)
	p := e.wantPartition(t, "t", 0, e.partition("t", 0), "replicas=[4 2 3 1] isr=[1 2 3] leader=1 adding=[4] removing=[1]", 0, 0)
	n := e.log.proposed
	e.mustReassign("t", 0, 4, 2, 3)
	if e.log.proposed != n {
		t.Fatalf("the same target again proposed")
	}
	e.mustReassign("t", 0, 4, 5, 3)
	p = e.wantPartition(t, "t", 0, p, "replicas=[4 5 3 1 2] isr=[1 2 3] leader=1 adding=[4 5] removing=[1 2]", 0, 1)
	// 5 catches up first: 4 is still being added, so nothing completes.
	e.call(e.alterReq(3, "t", 0, 1, 2, 3, 5))
	p = e.wantPartition(t, "t", 0, p, "replicas=[4 5 3 1 2] isr=[1 2 3 5] leader=1 adding=[4 5] removing=[1 2]", 0, 1)
	// Back to the original replicas: nothing to add, but 5, to be removed,
	// is in the ISR: in progress until the leader drops it.
	e.mustReassign("t", 0, 1, 2, 3)
	p = e.wantPartition(t, "t", 0, p, "replicas=[1 2 3 4 5] isr=[1 2 3 5] leader=1 adding=[] removing=[4 5]", 0, 1)
	e.wantListed(t, "t", 0, "t-0 replicas=[1 2 3 4 5] adding=[] removing=[4 5]\n")
	e.dropRemoving(t, "t", 0, 1, 2, 3)
	e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[1 2 3] leader=1", 1, 1)
	e.wantListed(t, "t", 0, "")
}

// TestCancelReassignment: a cancel drops the replicas being added, from
// the replicas and the ISR, keeps those being removed, and elects a leader
// if the one it had was being added.
func TestCancelReassignment(t *testing.T) {
	e := newEnv(t)
	epochs := e.addBrokers(1, 2, 3, 4, 5)
	e.create(assigned("t", []int32{1, 2, 3}, []int32{1, 2, 3}))

	rp := e.reassign("t", 0)
	wantCode(t, "cancel with nothing in progress", rp.ErrorCode, kerr.NoReassignmentInProgress)
	if str(rp.ErrorMessage) != "No partition reassignment is in progress." {
		t.Fatalf("message %q", str(rp.ErrorMessage))
	}

	e.mustReassign("t", 0, 4, 5, 3)
	e.call(e.alterReq(3, "t", 0, 1, 2, 3, 4))
	p := e.wantPartition(t, "t", 0, e.partition("t", 0), "replicas=[4 5 3 1 2] isr=[1 2 3 4] leader=1 adding=[4 5] removing=[1 2]", 0, 0)
	e.mustReassign("t", 0)
	// As Kafka's PartitionReassignmentRevert, the original replicas are
	// the current ones but those being added, in the current order.
	e.wantPartition(t, "t", 0, p, "replicas=[3 1 2] isr=[1 2 3] leader=1", 1, 1)

	// The leader is a replica being added when the cancel comes.
	e.mustReassign("t", 1, 4, 5, 3)
	e.call(e.alterReq(3, "t", 1, 1, 2, 3, 4))
	fence := heartbeatReq(1, epochs[1], 1<<40)
	fence.WantFence = true
	e.call(fence)
	p = e.wantPartition(t, "t", 1, e.partition("t", 1), "replicas=[4 5 3 1 2] isr=[2 3 4] leader=4 adding=[4 5] removing=[1 2]", 0, 0)
	e.mustReassign("t", 1)
	e.wantPartition(t, "t", 1, p, "replicas=[3 1 2] isr=[2 3] leader=3", 1, 1)
}

// TestCancelReassignmentUnclean: when only replicas being added are in the
// ISR, a cancel is an unclean election: refused unless the topic allows
// those, and then the first original replica that can lead takes over.
func TestCancelReassignmentUnclean(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, logTo(&logs))
	epochs := e.addBrokers(1, 2, 3, 4, 5)
	e.create(assigned("t", []int32{1, 2, 3}))
	e.mustReassign("t", 0, 4, 5, 3)
	e.call(e.alterReq(3, "t", 0, 1, 2, 3, 4))
	for _, id := range []int32{1, 2, 3} {
		fence := heartbeatReq(id, epochs[id], 1<<40)
		fence.WantFence = true
		e.call(fence)
	}
	p := e.wantPartition(t, "t", 0, e.partition("t", 0), "replicas=[4 5 3 1 2] isr=[4] leader=4 adding=[4 5] removing=[1 2]", 0, 0)

	n := e.log.proposed
	rp := e.reassign("t", 0)
	wantCode(t, "unclean cancel", rp.ErrorCode, kerr.InvalidReplicaAssignment)
	if want := "Unable to revert partition assignment for t:0 because it would require an unclean leader election."; str(rp.ErrorMessage) != want {
		t.Fatalf("message %q", str(rp.ErrorMessage))
	}
	if e.log.proposed != n {
		t.Fatalf("a refused cancel proposed")
	}

	// With unclean elections allowed, 2 (back, but outside the ISR) leads:
	// 3, the first original replica, cannot.
	v := "true"
	e.seed(metadata.Record{Config: &metadata.ConfigRecord{Resource: metadata.ResourceTopic, Name: "t", Key: uncleanKey, Value: &v}})
	e.heartbeat(2, epochs[2])
	e.mustReassign("t", 0)
	e.wantPartition(t, "t", 0, p, "replicas=[3 1 2] isr=[2] leader=2", 1, 1)
	if !strings.Contains(logs.String(), "unclean reassignment revert") {
		t.Fatalf("the unclean revert was not logged: %s", logs.String())
	}
}

// TestReassignmentCompletesOnAnyChange: a reassignment that its ISR
// makes due moves on with the next change of the partition, whatever it
// is (here a broker fenced), as in Kafka's PartitionChangeBuilder: the
// leadership leaves the replica removed, which stays in the ISR. It
// completes with the change that takes the removed replicas out of the
// ISR: the new leader's AlterPartition, or the removed replica fenced.
func TestReassignmentCompletesOnAnyChange(t *testing.T) {
	e := newEnv(t)
	epochs := e.addBrokers(1, 2, 3, 4)
	tid := [16]byte{7}
	// Written by an earlier controller: due, not completed (both
	// partitions alike).
	e.seed(metadata.Record{Topic: &metadata.TopicRecord{Name: "t", ID: tid}},
		metadata.Record{Partition: &metadata.PartitionRecord{TopicID: tid, Replicas: ids(4, 2, 1), ISR: ids(1, 2, 4), Leader: 1,
			LeaderEpoch: 3, PartitionEpoch: 5, AddingReplicas: ids(4), RemovingReplicas: ids(1)}},
		metadata.Record{Partition: &metadata.PartitionRecord{TopicID: tid, Partition: 1, Replicas: ids(4, 2, 1), ISR: ids(1, 2, 4), Leader: 1,
			LeaderEpoch: 3, PartitionEpoch: 5, AddingReplicas: ids(4), RemovingReplicas: ids(1)}})
	p, q := e.partition("t", 0), e.partition("t", 1)
	fence := heartbeatReq(2, epochs[2], 1<<40)
	fence.WantFence = true
	e.call(fence)
	p = e.wantPartition(t, "t", 0, p, "replicas=[4 2 1] isr=[1 4] leader=4 adding=[4] removing=[1]", 1, 1)
	q = e.wantPartition(t, "t", 1, q, "replicas=[4 2 1] isr=[1 4] leader=4 adding=[4] removing=[1]", 1, 1)
	e.wantListed(t, "t", 0, "t-0 replicas=[4 2 1] adding=[4] removing=[1]\n")

	// t-0: the new leader drops 1.
	e.dropRemoving(t, "t", 0, 4)
	e.wantPartition(t, "t", 0, p, "replicas=[4 2] isr=[4] leader=4", 1, 1)
	e.wantListed(t, "t", 0, "")

	// t-1: 1 is fenced, which takes it out of the ISR.
	fence = heartbeatReq(1, epochs[1], 1<<40)
	fence.WantFence = true
	e.call(fence)
	e.wantPartition(t, "t", 1, q, "replicas=[4 2] isr=[4] leader=4", 1, 1)
	e.wantListed(t, "t", 1, "")
}

// TestReassignmentElections: during a reassignment the preferred leader
// is the target's first replica, and leaders still come from the ISR.
func TestReassignmentElections(t *testing.T) {
	e := newEnv(t)
	epochs := e.addBrokers(1, 2, 3, 4)
	e.create(assigned("t", []int32{1, 2, 3}))
	e.mustReassign("t", 0, 4, 1, 2)
	got := electCodes(e.call(electReq(electPreferred, map[string][]int32{"t": {0}})))
	wantCode(t, "preferred replica 4 still being added", got["t"][0], kerr.PreferredLeaderNotAvailable)
	// The leader fails: another ISR member leads, not the new replica.
	fence := heartbeatReq(1, epochs[1], 1<<40)
	fence.WantFence = true
	e.call(fence)
	p := e.wantPartition(t, "t", 0, e.partition("t", 0), "replicas=[4 1 2 3] isr=[2 3] leader=2 adding=[4] removing=[3]", 0, 0)
	// 4 joins: due, but 3 is still in the ISR; 2 leads on.
	e.wantState(t, altered(t, e.call(e.alterReq(3, "t", 0, 2, 3, 4))), "t", 0, 2, 3, 4)
	p = e.wantPartition(t, "t", 0, p, "replicas=[4 1 2 3] isr=[2 3 4] leader=2 adding=[4] removing=[3]", 0, 1)
	e.wantListed(t, "t", 0, "t-0 replicas=[4 1 2 3] adding=[4] removing=[3]\n")
	// 2 drops 3: complete, and 2 leads on.
	e.dropRemoving(t, "t", 0, 2, 4)
	p = e.wantPartition(t, "t", 0, p, "replicas=[4 1 2] isr=[2 4] leader=2", 1, 1)
	got = electCodes(e.call(electReq(electPreferred, map[string][]int32{"t": {0}})))
	wantCode(t, "preferred election of the target's first", got["t"][0], nil)
	e.wantPartition(t, "t", 0, p, "replicas=[4 1 2] isr=[2 4] leader=4", 1, 1)
}

func TestAlterPartitionReassignmentsErrors(t *testing.T) {
	e := newEnv(t)
	e.addBrokers(1, 2, 3)
	e.register(7, 7) // registered, fenced: a valid target
	e.create(assigned("t", []int32{1, 2}, []int32{2, 3}))
	for _, c := range []struct {
		name     string
		version  int16
		m        move
		want     *kerr.Error
		message  string
		reassign bool
	}{
		{"unknown topic", 0, move{"nope", 0, []int32{1}}, kerr.UnknownTopicOrPartition, "Unable to find a topic named nope.", false},
		{"unknown partition", 0, move{"t", 2, []int32{1}}, kerr.UnknownTopicOrPartition, "Unable to find partition t:2.", false},
		{"negative partition", 0, move{"t", -1, []int32{1}}, kerr.UnknownTopicOrPartition, "Unable to find partition t:-1.", false},
		{"empty target", 0, move{"t", 0, []int32{}}, kerr.InvalidReplicaAssignment,
			"The manual partition assignment includes an empty replica list.", false},
		{"broker twice", 0, move{"t", 0, []int32{3, 1, 3}}, kerr.InvalidReplicaAssignment,
			"The manual partition assignment includes the broker 3 more than once.", false},
		{"negative broker", 0, move{"t", 0, []int32{1, -1}}, kerr.InvalidReplicaAssignment,
			"The manual partition assignment includes broker -1, but no such broker is registered.", false},
		{"unregistered broker", 0, move{"t", 0, []int32{1, 9}}, kerr.InvalidReplicaAssignment,
			"The manual partition assignment includes broker 9, but no such broker is registered.", false},
		{"cancel with nothing in progress", 0, move{"t", 0, nil}, kerr.NoReassignmentInProgress, "No partition reassignment is in progress.", false},
		{"replication factor changed (v1)", 1, move{"t", 0, []int32{1, 2, 3}}, kerr.InvalidReplicationFactor,
			"The replication factor is changed from 2 to 3", false},
		{"to a fenced broker", 0, move{"t", 0, []int32{7, 2}}, nil, "", true},
	} {
		n := e.log.proposed
		rs := reassignResults(t, e.call(reassignReq(c.version, c.m)))
		if len(rs) != 1 {
			t.Fatalf("%s: answer %+v", c.name, rs)
		}
		wantCode(t, c.name, rs[0].ErrorCode, c.want)
		if c.want != nil && str(rs[0].ErrorMessage) != c.message {
			t.Fatalf("%s: message %q, want %q", c.name, str(rs[0].ErrorMessage), c.message)
		}
		if proposed := e.log.proposed != n; proposed != c.reassign {
			t.Fatalf("%s: proposed %v", c.name, proposed)
		}
	}
	if p := e.partition("t", 0); state(p) != "replicas=[7 2 1] isr=[1 2] leader=1 adding=[7] removing=[1]" {
		t.Fatalf("after the errors: %s", state(p))
	}

	// v1 allows a new replication factor when asked to; its answer says
	// so. While a reassignment is in progress, the replication factor is
	// its target's.
	req := reassignReq(1, move{"t", 0, []int32{1, 2, 3}})
	req.AllowReplicationFactorChange = true
	r := e.call(req).(*kmsg.AlterPartitionAssignmentsResponse)
	if !r.AllowReplicationFactorChange || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("v1 answer %+v", r)
	}
	rs := reassignResults(t, e.call(reassignReq(1, move{"t", 0, []int32{3, 2}})))
	wantCode(t, "replication factor of the target in progress", rs[0].ErrorCode, kerr.InvalidReplicationFactor)
	if want := "The replication factor is changed from 3 to 2"; str(rs[0].ErrorMessage) != want {
		t.Fatalf("message %q", str(rs[0].ErrorMessage))
	}

	// One request, several partitions: each answered on its own, the
	// accepted ones in one batch; a partition named twice is refused.
	n := e.log.proposed
	rs = reassignResults(t, e.call(reassignReq(0,
		move{"t", 1, []int32{3}}, move{"t", 0, []int32{4}}, move{"t", 0, []int32{2}}, move{"nope", 0, []int32{1}})))
	if len(rs) != 4 {
		t.Fatalf("answer %+v", rs)
	}
	for i, want := range []*kerr.Error{nil, kerr.InvalidRequest, kerr.InvalidRequest, kerr.UnknownTopicOrPartition} {
		wantCode(t, fmt.Sprintf("partition %d of the request", i), rs[i].ErrorCode, want)
	}
	if e.log.proposed != n+1 {
		t.Fatalf("%d batches proposed, want one", e.log.proposed-n)
	}
	// t-1's leader, 2, is removed: the leadership moves to 3 and 2 stays
	// in the ISR until 3 drops it.
	p := e.wantPartition(t, "t", 1, e.partition("t", 1), "replicas=[3 2] isr=[2 3] leader=3 adding=[] removing=[2]", 0, 0)
	e.dropRemoving(t, "t", 1, 3)
	e.wantPartition(t, "t", 1, p, "replicas=[3] isr=[3] leader=3", 1, 1)
}

// TestReassignmentAnswersAfterCommit: answers leave once their batch is
// committed, or say NOT_CONTROLLER (top level and every partition) if it
// is lost; a list waits for what the view holds.
func TestReassignmentAnswersAfterCommit(t *testing.T) {
	e := newEnv(t)
	e.addBrokers(1, 2, 3)
	e.create(assigned("t", []int32{1, 2}))

	a := e.send(reassignReq(0, move{"t", 0, []int32{3, 2}}, move{"nope", 0, []int32{1}}))
	list := e.send(listReq(nil))
	if a.n != 0 || list.n != 0 {
		t.Fatalf("answered before the commit")
	}
	e.failover()
	r := a.resp.(*kmsg.AlterPartitionAssignmentsResponse)
	wantCode(t, "lost reassignment", r.ErrorCode, kerr.NotController)
	if len(r.Topics) != 2 {
		t.Fatalf("lost reassignment answer %+v", r)
	}
	for _, rt := range r.Topics {
		wantCode(t, "lost reassignment "+rt.Topic, rt.Partitions[0].ErrorCode, kerr.NotController)
	}
	lr := list.resp.(*kmsg.ListPartitionReassignmentsResponse)
	if lr.ErrorCode != kerr.NotController.Code || lr.Topics != nil {
		t.Fatalf("list behind a lost batch: %+v", lr)
	}
	if p := e.partition("t", 0); p.Reassigning() {
		t.Fatalf("lost reassignment committed: %s", state(p))
	}

	// A list sees the reassignment proposed before it, once committed.
	a = e.send(reassignReq(0, move{"t", 0, []int32{3, 2}}))
	list = e.send(listReq(map[string][]int32{"t": {0, 1, -1}, "nope": {0}}))
	if list.n != 0 {
		t.Fatalf("list answered before the batch it reads is committed")
	}
	e.log.commit(-1)
	if got := listed(t, list.resp); got != "t-0 replicas=[3 2 1] adding=[3] removing=[1]\n" {
		t.Fatalf("listed %q", got)
	}
	if got := listed(t, e.call(listReq(map[string][]int32{"t": {1}}))); got != "" {
		t.Fatalf("listed %q for a partition that does not exist", got)
	}

	e.log.refuse = true
	r = e.call(reassignReq(0, move{"t", 0, nil})).(*kmsg.AlterPartitionAssignmentsResponse)
	wantCode(t, "refused cancel", r.ErrorCode, kerr.NotController)
	wantCode(t, "refused cancel partition", r.Topics[0].Partitions[0].ErrorCode, kerr.NotController)
}

// TestReassignmentUncleanAmongAllReplicas: an unclean election may choose
// a replica being added.
func TestReassignmentUncleanAmongAllReplicas(t *testing.T) {
	e := newEnv(t)
	epochs := e.addBrokers(1, 2, 3)
	e.create(assigned("t", []int32{1, 2}))
	e.mustReassign("t", 0, 3, 1)
	for _, id := range []int32{2, 1} {
		fence := heartbeatReq(id, epochs[id], 1<<40)
		fence.WantFence = true
		e.call(fence)
	}
	p := e.wantPartition(t, "t", 0, e.partition("t", 0), "replicas=[3 1 2] isr=[] leader=-1 elr=[1] adding=[3] removing=[2]", 0, 0)
	// An unclean election considers every replica, those being added too
	// (Kafka's electAnyLeader over the target replicas); 3 is then the
	// whole ISR, which completes the reassignment.
	got := electCodes(e.call(electReq(electUnclean, map[string][]int32{"t": {0}})))
	wantCode(t, "unclean election", got["t"][0], nil)
	e.wantPartition(t, "t", 0, p, "replicas=[3 1] isr=[3] leader=3", 1, 1)
}

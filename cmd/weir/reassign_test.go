package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterReassignment runs three combined broker+controller processes
// and a topic of two partitions of replication factor 2 created with an
// explicit assignment (partition 0 on [1 2], led by 1; partition 1 on
// [2 3]). With an acks=all idempotent franz-go producer writing to both
// partitions throughout, partition 0 is reassigned (KIP-455) to [3 2]:
// broker 3 is added, broker 1 (the leader) is removed. The test requires
// that every node's Metadata shows the target replicas with ISR = target,
// that ListPartitionReassignments shows nothing in progress any more, that
// broker 1 has deleted its directory of the partition, and that every
// acknowledged record is read back exactly once at its acknowledged
// offset, with no gap and no value stored twice. It also checks the
// errors: a target naming an unregistered broker is
// INVALID_REPLICA_ASSIGNMENT, an unknown topic or partition
// UNKNOWN_TOPIC_OR_PARTITION, and cancelling a partition with no
// reassignment in progress NO_REASSIGNMENT_IN_PROGRESS; none of these
// changes the partition.
func TestClusterReassignment(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	testStart := time.Now()
	all := []int32{1, 2, 3}
	var seeds []string
	for _, nd := range nodes {
		seeds = append(seeds, nd.addr)
	}
	byID := func(id int32) *clusterNode { return nodes[id-1] }
	// alive fails the test at once if a node's process has exited (no
	// node is stopped on purpose here); the nodes' logs follow.
	alive := func() {
		t.Helper()
		for _, nd := range nodes {
			select {
			case <-nd.exited:
				t.Fatalf("node %d exited: %v", nd.id, nd.cmd.ProcessState)
			default:
			}
		}
	}

	waitFor(t, 60*time.Second, "three brokers and a controller on every node", func() error {
		_, err := agreeOnCluster(nodes, all)
		return err
	})
	t.Logf("cluster formed after %v", time.Since(testStart).Round(time.Millisecond))

	const topic = "reassign"
	const segmentBytes = 256 << 10
	// Each record carries a 1 KiB key, the same for all, and its own value.
	pad := []byte(strings.Repeat("k", 1024))
	initial := [][]int32{{1, 2}, {2, 3}}
	target := []int32{3, 2} // partition 0's new replicas
	const removed, added = int32(1), int32(3)
	parts := []topicPart{{topic, 0}, {topic, 1}}

	admCl := clusterClient(t, seeds, kgo.MetadataMinAge(250*time.Millisecond))
	adm := kadm.NewClient(admCl)

	// Create the topic with an explicit replica assignment (kadm's
	// CreateTopics has no assignment argument: the request is built here).
	waitFor(t, 30*time.Second, "create "+topic+" with a replica assignment", func() error {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 10000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
		for p, reps := range initial {
			ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			ra.Partition, ra.Replicas = int32(p), reps
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
		}
		// Small segments: the new replica copies several.
		rc := kmsg.NewCreateTopicsRequestTopicConfig()
		rc.Name, rc.Value = "segment.bytes", kmsg.StringPtr(fmt.Sprint(segmentBytes))
		rt.Configs = append(rt.Configs, rc)
		req.Topics = append(req.Topics, rt)
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		resp, err := req.RequestWith(cctx, admCl)
		if err != nil {
			return err
		}
		if len(resp.Topics) != 1 {
			return fmt.Errorf("%d topics in the answer", len(resp.Topics))
		}
		if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			if !kerr.IsRetriable(err) {
				t.Fatalf("create %s: %v: %s", topic, err, derefStr(resp.Topics[0].ErrorMessage))
			}
			return err
		}
		return nil
	})

	// partitionsAre checks that every node shows partition i with replicas
	// want[i] (in order) and ISR = those replicas, led by one of them, all
	// nodes agreeing on the leader and its epoch.
	partitionsAre := func(want [][]int32) (map[topicPart]partState, error) {
		alive()
		st, err := agreeOnPartitions(nodes, parts, 0)
		if err != nil {
			return nil, err
		}
		for _, nd := range nodes {
			nst, err := partitionStates(nd.addr, topic)
			if err != nil {
				return nil, fmt.Errorf("node %d: %w", nd.id, err)
			}
			for i, tp := range parts {
				s := nst[tp]
				isrWant := slices.Clone(want[i])
				slices.Sort(isrWant)
				switch {
				case !slices.Equal(s.replicas, want[i]):
					return nil, fmt.Errorf("node %d: %v has replicas %v, want %v", nd.id, tp, s.replicas, want[i])
				case !slices.Equal(s.isr, isrWant):
					return nil, fmt.Errorf("node %d: %v has ISR %v, want %v", nd.id, tp, s.isr, isrWant)
				case !slices.Contains(want[i], s.leader):
					return nil, fmt.Errorf("node %d: %v led by %d, not one of %v", nd.id, tp, s.leader, want[i])
				}
			}
		}
		return st, nil
	}
	var st map[topicPart]partState
	d := waitFor(t, 30*time.Second, "every node shows the assignment with full ISRs", func() (err error) {
		st, err = partitionsAre(initial)
		return err
	})
	t.Logf("%s created, assignment %v with full ISRs on every node after %v; leaders %s", topic, initial,
		d.Round(time.Millisecond), leadersOf(st))

	// The partition directories are where the test looks for them: the
	// replicas of partition 0 hold <log-dir>/reassign-0, broker 3 does not.
	partDir := func(nd *clusterNode, p int32) string {
		return filepath.Join(nd.dataDir, fmt.Sprintf("%s-%d", topic, p))
	}
	exists := func(path string) (bool, error) {
		_, err := os.Stat(path)
		if err == nil {
			return true, nil
		}
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	waitFor(t, 30*time.Second, "the directories of partition 0 on brokers 1 and 2", func() error {
		for _, id := range initial[0] {
			if ok, err := exists(partDir(byID(id), 0)); err != nil || !ok {
				return fmt.Errorf("node %d: %s: exists %v, %v", id, partDir(byID(id), 0), ok, err)
			}
		}
		return nil
	})
	if ok, err := exists(partDir(byID(added), 0)); err != nil || ok {
		t.Fatalf("node %d holds %s before the reassignment (exists %v, %v)", added, partDir(byID(added), 0), ok, err)
	}

	// alter sends an AlterPartitionReassignments, retrying while the
	// request itself fails (no controller reachable, a top-level error),
	// and returns the per-partition answers.
	alter := func(what string, req kadm.AlterPartitionAssignmentsReq) kadm.AlterPartitionAssignmentsResponses {
		t.Helper()
		var rs kadm.AlterPartitionAssignmentsResponses
		waitFor(t, 30*time.Second, what, func() (err error) {
			actx, acancel := context.WithTimeout(ctx, 10*time.Second)
			defer acancel()
			alive()
			rs, err = adm.AlterPartitionAssignments(actx, req)
			return err
		})
		for tp, ps := range req {
			for p := range ps {
				if _, ok := rs[tp][p]; !ok {
					t.Fatalf("%s: no answer for %s/%d: %v", what, tp, p, rs)
				}
			}
		}
		return rs
	}
	// listReassignments lists the reassignments in progress of the topic's
	// partitions (kadm), and of every topic (a request naming none).
	listReassignments := func() ([]kadm.ListPartitionReassignmentsResponse, []string, error) {
		lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
		defer lcancel()
		var set kadm.TopicsSet
		set.Add(topic, 0, 1)
		rs, err := adm.ListPartitionReassignments(lctx, set)
		if err != nil {
			return nil, nil, err
		}
		req := kmsg.NewPtrListPartitionReassignmentsRequest()
		req.TimeoutMillis = 10000
		req.Topics = nil // every topic
		resp, err := req.RequestWith(lctx, admCl)
		if err != nil {
			return nil, nil, err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return nil, nil, fmt.Errorf("list of every topic: %w", err)
		}
		var every []string
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				every = append(every, fmt.Sprintf("%s/%d replicas %v adding %v removing %v",
					rt.Topic, rp.Partition, rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas))
			}
		}
		return rs.Sorted(), every, nil
	}
	if got, every, err := listReassignments(); err != nil {
		t.Fatalf("list reassignments before any: %v", err)
	} else if len(got) > 0 || len(every) > 0 {
		t.Fatalf("reassignments in progress before any was asked for: %v; every topic: %v", got, every)
	}

	// wantErr checks one partition's answer.
	wantErr := func(what string, rs kadm.AlterPartitionAssignmentsResponses, tp string, p int32, want error) {
		t.Helper()
		r := rs[tp][p]
		if !errors.Is(r.Err, want) {
			t.Errorf("%s: %s/%d answered %v (%q), want %v", what, tp, p, r.Err, r.ErrMessage, want)
		} else {
			t.Logf("%s: %s/%d answered %v: %s", what, tp, p, r.Err, r.ErrMessage)
		}
	}

	// The error path, before the move.
	var bad kadm.AlterPartitionAssignmentsReq
	bad.Assign(topic, 1, []int32{2, 99})
	wantErr("a target naming broker 99", alter("reassign to an unknown broker", bad), topic, 1, kerr.InvalidReplicaAssignment)
	var cancelNone kadm.AlterPartitionAssignmentsReq
	cancelNone.CancelAssign(topic, 1)
	wantErr("cancel with nothing in progress", alter("cancel with nothing in progress", cancelNone), topic, 1, kerr.NoReassignmentInProgress)
	var unknown kadm.AlterPartitionAssignmentsReq
	unknown.Assign(topic+"-missing", 0, []int32{1, 2})
	unknown.Assign(topic, 7, []int32{1, 2})
	rs := alter("reassign unknown partitions", unknown)
	wantErr("an unknown topic", rs, topic+"-missing", 0, kerr.UnknownTopicOrPartition)
	wantErr("an unknown partition", rs, topic, 7, kerr.UnknownTopicOrPartition)
	if _, err := partitionsAre(initial); err != nil {
		t.Fatalf("after the refused reassignments: %v", err)
	}
	if got, every, err := listReassignments(); err != nil {
		t.Fatalf("list reassignments after the refused ones: %v", err)
	} else if len(got) > 0 || len(every) > 0 {
		t.Fatalf("reassignments in progress after refused ones: %v; every topic: %v", got, every)
	}
	if t.Failed() {
		t.FailNow()
	}

	// The producer: acks=all, idempotent (franz-go's default with acks=all),
	// unlimited record retries (the default), alternating between the two
	// partitions.
	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProduceRequestTimeout(5*time.Second),
		kgo.RequestTimeoutOverhead(3*time.Second),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.MaxBufferedRecords(2000),
		kgo.ProducerBatchCompression(kgo.NoCompression()), // the keys would compress to nothing
		kgo.ProducerBatchMaxBytes(64<<10))                 // batches well below segment.bytes
	if err != nil {
		t.Fatal(err)
	}
	prodClosed := false
	defer func() {
		if !prodClosed {
			prod.Close()
		}
	}()
	acks := newAckLog()
	next := 0
	produce := func() {
		tp := parts[next%len(parts)]
		v := fmt.Sprintf("v%08d", next)
		next++
		acks.mu.Lock()
		acks.sent[v] = tp
		acks.mu.Unlock()
		prod.Produce(ctx, &kgo.Record{Topic: tp.topic, Partition: tp.partition, Key: pad, Value: []byte(v)}, acks.promise)
	}

	// A few thousand records before the move, all acknowledged.
	const before = 3000
	for range before {
		produce()
	}
	fctx, fcancel := context.WithTimeout(ctx, 60*time.Second)
	if err := prod.Flush(fctx); err != nil {
		t.Fatalf("flush of the first %d records: %v", before, err)
	}
	fcancel()
	if n := acks.total(); n != before {
		t.Fatalf("%d of the first %d records acknowledged; failed: %v", n, before, acks.failed)
	}
	t.Logf("%d records acknowledged before the move (%v after the start)", before, time.Since(testStart).Round(time.Millisecond))

	// Keep producing (at most about 1000 records a second) during the move.
	var stopping atomic.Bool
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		for !stopping.Load() && ctx.Err() == nil {
			produce()
			time.Sleep(time.Millisecond)
		}
	}()
	stopProducer := func() {
		stopping.Store(true)
		select {
		case <-prodDone:
		case <-time.After(60 * time.Second):
			t.Fatal("the producer is still blocked 60s after it was asked to stop")
		}
	}
	defer stopping.Store(true)
	waitProgress(t, acks, parts, acks.counts(), 100, 30*time.Second, "acknowledgements on both partitions before the move")

	// The move: partition 0 from [1 2] to [3 2].
	var move kadm.AlterPartitionAssignmentsReq
	move.Assign(topic, 0, target)
	movedAt := time.Now()
	duringMove := acks.counts()
	if r := alter("reassign partition 0", move)[topic][0]; r.Err != nil {
		t.Fatalf("reassign %s/0 to %v: %v (%q)", topic, target, r.Err, r.ErrMessage)
	}
	t.Logf("reassignment of %s/0 from %v to %v accepted after %v", topic, initial[0], target, time.Since(movedAt).Round(time.Millisecond))
	// It may already be complete; if it is still listed, it must be the
	// one asked for (the target followed by the replicas being removed).
	if got, every, err := listReassignments(); err != nil {
		t.Logf("list reassignments during the move: %v", err)
	} else if len(got) == 0 {
		t.Logf("no reassignment listed right after the move was accepted (already complete); every topic: %v", every)
	} else {
		r := got[0]
		wantReplicas := append(slices.Clone(target), removed)
		if len(got) != 1 || r.Topic != topic || r.Partition != 0 || !slices.Equal(r.Replicas, wantReplicas) ||
			!slices.Equal(r.AddingReplicas, []int32{added}) || !slices.Equal(r.RemovingReplicas, []int32{removed}) {
			t.Errorf("reassignments listed during the move: %+v; want %s/0 with replicas %v, adding [%d], removing [%d]",
				got, topic, wantReplicas, added, removed)
		} else {
			t.Logf("in progress: %s/0 replicas %v adding %v removing %v; every topic: %v", topic, r.Replicas, r.AddingReplicas, r.RemovingReplicas, every)
		}
	}

	// Complete: target replicas and ISR on every node, nothing listed in
	// progress, broker 1's directory of the partition gone.
	final := [][]int32{target, initial[1]}
	var done map[topicPart]partState
	waitFor(t, 60*time.Second, "the reassignment complete on every node, listed no more, and broker 1's copy deleted", func() error {
		var err error
		if done, err = partitionsAre(final); err != nil {
			return err
		}
		got, every, err := listReassignments()
		if err != nil {
			return err
		}
		if len(got) > 0 || len(every) > 0 {
			return fmt.Errorf("still listed in progress: %+v; every topic: %v", got, every)
		}
		if ok, err := exists(partDir(byID(removed), 0)); err != nil || ok {
			return fmt.Errorf("node %d still has %s (%v)", removed, partDir(byID(removed), 0), err)
		}
		return nil
	})
	t.Logf("reassignment complete after %v: %s/0 led by %d in epoch %d, replicas %v, ISR %v",
		time.Since(movedAt).Round(time.Millisecond), topic, done[parts[0]].leader, done[parts[0]].epoch,
		done[parts[0]].replicas, done[parts[0]].isr)
	// Broker 1 keeps nothing of the topic; the new replicas hold the
	// partition's directory.
	if entries, err := os.ReadDir(byID(removed).dataDir); err != nil {
		t.Errorf("read node %d's log dir: %v", removed, err)
	} else {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), topic+"-") {
				t.Errorf("node %d's log dir still holds %s after the reassignment", removed, e.Name())
			}
		}
	}
	for _, id := range target {
		if ok, err := exists(partDir(byID(id), 0)); err != nil || !ok {
			t.Errorf("node %d, a replica of %s/0, has no %s (exists %v, %v)", id, topic, partDir(byID(id), 0), ok, err)
		} else if segs, err := filepath.Glob(filepath.Join(partDir(byID(id), 0), "*.log")); err == nil {
			t.Logf("node %d holds %s/0 in %d segments", id, topic, len(segs))
		}
	}

	// The producer keeps making progress on both partitions after the move.
	waitProgress(t, acks, parts, acks.counts(), 100, 30*time.Second, "acknowledgements on both partitions after the move")
	stopProducer()
	fctx, fcancel = context.WithTimeout(ctx, 60*time.Second)
	if err := prod.Flush(fctx); err != nil {
		t.Errorf("flush: %v", err)
	}
	fcancel()
	prod.Close()
	prodClosed = true
	after := acks.counts()
	t.Logf("acknowledged during and after the move: %s/0 %d, %s/1 %d", topic, after[parts[0]]-duringMove[parts[0]],
		topic, after[parts[1]]-duringMove[parts[1]])

	// The error path after the move: nothing is in progress on partition 0
	// now, and the assignment is unchanged by the refused requests.
	var cancelDone kadm.AlterPartitionAssignmentsReq
	cancelDone.CancelAssign(topic, 0)
	cancelDone.CancelAssign(topic, 1)
	rs = alter("cancel after the move", cancelDone)
	wantErr("cancel after the move", rs, topic, 0, kerr.NoReassignmentInProgress)
	wantErr("cancel after the move", rs, topic, 1, kerr.NoReassignmentInProgress)
	bad = nil
	bad.Assign(topic, 0, []int32{3, 42})
	wantErr("a target naming broker 42", alter("reassign to an unknown broker after the move", bad), topic, 0, kerr.InvalidReplicaAssignment)
	if _, err := partitionsAre(final); err != nil {
		t.Errorf("after the refused requests: %v", err)
	}

	// Every acknowledged record is read back.
	alive()
	verifyAcked(ctx, t, adm, seeds, acks, parts, pad, false)
	if !t.Failed() {
		t.Logf("every one of %d acknowledged records read back once at its offset, %v after the start",
			acks.total(), time.Since(testStart).Round(time.Millisecond))
	}
}

func derefStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

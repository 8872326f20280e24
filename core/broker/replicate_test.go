package broker

// Replication between two nodes, driven by hand: node 2 leads r-0 and
// follows node 1 for r-1. The simulator covers replication under faults;
// these tests pin down the message flow, and a fuzz target feeds node 2
// arbitrary replica fetches and responses, which must never crash it.

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/raft"
	"github.com/weirmq/weir/core/record"
	"github.com/weirmq/weir/core/wire"
)

var replTopicID = [16]byte{7, 7, 7}

// replNode boots node 2 of a three-voter cluster whose committed metadata
// has topic r, with the config records configs: r-0 led by node 2, r-1 led
// by node 1, both replicated on nodes 1 and 2 with a full ISR. The node
// holds a lease, as if its last heartbeat had just been answered.
func replNode(t testing.TB, configs ...metadata.Record) (*Node, *rvFS, port.Time) {
	fs := newRVFS()
	part := func(i int32, leader port.NodeID) metadata.Record {
		return metadata.Record{Partition: &metadata.PartitionRecord{TopicID: replTopicID, Partition: i,
			Replicas: []port.NodeID{leader, 3 - leader}, ISR: []port.NodeID{1, 2}, Leader: leader, LeaderEpoch: 1}}
	}
	register := func(id port.NodeID, host string) metadata.Record {
		return metadata.Record{RegisterBroker: &metadata.RegisterBrokerRecord{ID: id, Epoch: int64(id), Incarnation: host,
			Endpoints: []metadata.Endpoint{{Listener: "PLAINTEXT", Host: host, Port: 9092}}}}
	}
	ents := []raft.Entry{
		{Index: 1, Term: 1},
		{Index: 2, Term: 1, Data: rvBatch(metadata.Record{Cluster: &metadata.ClusterRecord{ClusterID: "c1"}},
			register(1, "n1"), register(2, "n2"))},
		{Index: 3, Term: 1, Data: rvBatch(append([]metadata.Record{{Topic: &metadata.TopicRecord{Name: "r", ID: replTopicID}},
			part(0, 2), part(1, 1)}, configs...)...)},
	}
	rvStoreLog(t, fs, 1, ents)
	n, now := rvBoot(t, fs)
	rvDrive(n, fs, now)
	msg := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 1, Index: 3, LogTerm: 1, Commit: 3}
	n.Step(now, port.PeerMessage{From: 1, Data: raft.AppendMessage([]byte{peerRaft}, msg)})
	n.cluster.reg.leaseFromNs = now.MonoNs
	return n, fs, now
}

// sentFetches returns the replica fetches among effects.
func sentFetches(t testing.TB, effs []port.Effect) []*kmsg.FetchRequest {
	var out []*kmsg.FetchRequest
	for _, e := range effs {
		sp, ok := e.(port.SendPeer)
		if !ok || len(sp.Data) == 0 || sp.Data[0] != peerFetchReq {
			continue
		}
		req := kmsg.NewPtrFetchRequest()
		if _, err := decodeReplicaMessage(sp.Data[1:], req); err != nil {
			t.Fatalf("node sent an undecodable replica fetch: %v", err)
		}
		out = append(out, req)
	}
	return out
}

// replicaFetchTo encodes node 1's fetch of r-0 at offset.
func replicaFetchTo(id uint64, offset int64, lastEpoch int32) []byte {
	return replicaFetchOf(id, 0, 1, offset, lastEpoch)
}

// replicaFetchOf encodes node 1's fetch of r-partition in leader epoch
// leaderEpoch at offset.
func replicaFetchOf(id uint64, partition, leaderEpoch int32, offset int64, lastEpoch int32) []byte {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(replicaFetchVersion)
	req.ReplicaState.ID, req.ReplicaState.Epoch = 1, 1
	req.MaxBytes, req.SessionEpoch = 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.TopicID = replTopicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.CurrentLeaderEpoch, rp.FetchOffset, rp.LastFetchedEpoch, rp.PartitionMaxBytes = partition, leaderEpoch, offset, lastEpoch, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req.AppendTo(binary.BigEndian.AppendUint64([]byte{peerFetchReq}, id))
}

// fetchResponseFrom encodes node 1's answer to fetch id for r-1 carrying
// batches.
func fetchResponseFrom(id uint64, hw int64, batches []byte) []byte {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(replicaFetchVersion)
	rt := kmsg.NewFetchResponseTopic()
	rt.TopicID = replTopicID
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.Partition, rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset, rp.RecordBatches = 1, hw, hw, 0, batches
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	return resp.AppendTo(binary.BigEndian.AppendUint64([]byte{peerFetchResp}, id))
}

// leaderBatch is a one-record batch as leader node 1 stored it at base in
// epoch 1.
func leaderBatch(base int64, value string) []byte {
	b := record.Build(record.BuildSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []record.BuildRecord{{Value: []byte(value)}}})
	record.SetBaseOffset(b, base)
	record.SetPartitionLeaderEpoch(b, 1)
	return b
}

// A follower fetches from its log end, appends what the leader sends, and
// fetches again only once that is fsynced, from the new end: the offset
// it reports is durable.
func TestFollowerFetchesFromDurableEnd(t *testing.T) {
	n, fs, now := replNode(t)
	fetches := sentFetches(t, rvDrive(n, fs, now))
	if len(fetches) != 1 || fetches[0].Topics[0].Partitions[0].Partition != 1 {
		t.Fatalf("node 2 should fetch r-1 from node 1, sent %v", fetches)
	}
	first := fetches[0].Topics[0].Partitions[0]
	if first.FetchOffset != 0 || first.LastFetchedEpoch != -1 || fetches[0].ReplicaState.ID != 2 {
		t.Fatalf("first fetch %+v", first)
	}
	p := n.topics.byName["r"].partitions[1]
	id := p.follow.inflight
	n.Step(now, port.PeerMessage{From: 1, Data: fetchResponseFrom(id, 1, append(leaderBatch(0, "a"), leaderBatch(1, "b")...))})
	rd := n.Ready()
	if again := sentFetches(t, rd.Effects); len(again) != 0 {
		t.Fatalf("fetched again before the appended batches were fsynced: %v", again)
	}
	if p.log.EndOffset() != 2 || p.hw != 1 {
		t.Fatalf("after the response: end %d hw %d, want 2 and 1", p.log.EndOffset(), p.hw)
	}
	var effs []port.Effect
	for _, e := range rd.Effects {
		if op, ok := e.(port.DiskOp); ok {
			fs.do(op)
			n.Step(now, port.DiskDone{Op: op.ID})
		}
	}
	effs = rvDrive(n, fs, now)
	fetches = sentFetches(t, effs)
	if len(fetches) != 1 {
		t.Fatalf("no fetch after the fsync: %v", effs)
	}
	if next := fetches[0].Topics[0].Partitions[0]; next.FetchOffset != 2 || next.LastFetchedEpoch != 1 {
		t.Fatalf("second fetch at %d epoch %d, want 2 and 1", next.FetchOffset, next.LastFetchedEpoch)
	}
}

// A leader counts a follower's fetch offset towards the high watermark
// only when the follower's last epoch agrees with its log; otherwise it
// answers with the diverging epoch and the follower's offset counts for
// nothing.
func TestLeaderAnswersDivergence(t *testing.T) {
	n, fs, now := replNode(t)
	rvDrive(n, fs, now)
	p := n.topics.byName["r"].partitions[0]
	if p.lead == nil {
		t.Fatal("node 2 does not lead r-0")
	}
	// The follower claims offset 5 in epoch 0, which this empty log never
	// had: epoch 0 ends (for this log) where epoch 1 began, at 0.
	n.Step(now, port.PeerMessage{From: 1, Data: replicaFetchTo(9, 5, 0)})
	var resp *kmsg.FetchResponse
	for _, e := range n.Ready().Effects {
		if sp, ok := e.(port.SendPeer); ok && len(sp.Chunks) > 0 {
			var data []byte
			for _, c := range sp.Chunks {
				data = append(data, c.Bytes...)
			}
			resp = kmsg.NewPtrFetchResponse()
			if _, err := decodeReplicaMessage(data[1:], resp); err != nil {
				t.Fatal(err)
			}
		}
	}
	if resp == nil {
		t.Fatal("no answer to the diverging fetch")
	}
	rp := resp.Topics[0].Partitions[0]
	if rp.DivergingEpoch.EndOffset != 0 || rp.DivergingEpoch.Epoch != 0 {
		t.Fatalf("diverging epoch %+v, want epoch 0 ending at 0", rp.DivergingEpoch)
	}
	if f := p.lead.follower(1); f.offset != -1 {
		t.Fatalf("a diverging fetch set the follower's offset to %d", f.offset)
	}
}

// Replica fetches and responses come from other nodes, which may be
// buggy or of another version: whatever the bytes, the node must not
// crash.
func FuzzReplicaMessages(f *testing.F) {
	f.Add(replicaFetchTo(1, 0, -1)[1:], false)
	f.Add(replicaFetchTo(1, 3, 1)[1:], false)
	f.Add(fetchResponseFrom(1, 1, leaderBatch(0, "a"))[1:], true)
	f.Add(fetchResponseFrom(1, 0, []byte{1, 2, 3})[1:], true)
	f.Fuzz(func(t *testing.T, body []byte, response bool) {
		if wire.MayForgeTagCount(body) {
			// kmsg's tag loop (see core/wire): peers are trusted
			// cluster members, so this is a cost, not a crash.
			t.Skip("may forge a tag count; see wire.MayForgeTagCount")
		}
		n, fs, now := replNode(t)
		rvDrive(n, fs, now)
		kind := peerFetchReq
		if response {
			kind = peerFetchResp
			// Answer the fetch in flight, so the body is not just ignored.
			if p := n.topics.byName["r"].partitions[1]; p.follow != nil && p.follow.inflight != 0 && len(body) >= 8 {
				binary.BigEndian.PutUint64(body, p.follow.inflight)
			}
		}
		n.Step(now, port.PeerMessage{From: 1, Data: append([]byte{kind}, body...)})
		rvDrive(n, fs, now)
	})
}

// A leadership that wrote nothing leaves no epoch behind in the follower
// the node becomes: its fetches report the epoch of its last batch (none
// here), so the new leader's batches of older epochs are taken.
func TestFollowerForgetsEmptyLeadership(t *testing.T) {
	n, fs, now := replNode(t)
	rvDrive(n, fs, now)
	p := n.topics.byName["r"].partitions[0]
	if p.lead == nil || p.log.LatestEpoch() != 1 {
		t.Fatalf("node 2 should lead r-0 in epoch 1 (latest epoch %d)", p.log.LatestEpoch())
	}
	rec := metadata.PartitionRecord{TopicID: replTopicID, Partition: 0, Replicas: []port.NodeID{2, 1},
		ISR: []port.NodeID{1}, ELR: []port.NodeID{2}, Leader: 1, LeaderEpoch: 2, PartitionEpoch: 1}
	msg := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 1, Index: 3, LogTerm: 1, Commit: 4,
		Entries: []raft.Entry{{Index: 4, Term: 1, Data: rvBatch(metadata.Record{Partition: &rec})}}}
	n.Step(now, port.PeerMessage{From: 1, Data: raft.AppendMessage([]byte{peerRaft}, msg)})
	var fetched bool
	for _, f := range sentFetches(t, rvDrive(n, fs, now)) {
		for _, rp := range f.Topics[0].Partitions {
			if rp.Partition == 0 {
				fetched = true
				if rp.FetchOffset != 0 || rp.LastFetchedEpoch != -1 {
					t.Fatalf("r-0 fetched at %d, last epoch %d; want 0 and -1", rp.FetchOffset, rp.LastFetchedEpoch)
				}
			}
		}
	}
	if !fetched {
		t.Fatal("node 2 does not fetch r-0 from its new leader")
	}
	id := p.follow.inflight
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(replicaFetchVersion)
	rt := kmsg.NewFetchResponseTopic()
	rt.TopicID = replTopicID
	rp := kmsg.NewFetchResponseTopicPartition()
	batch := leaderBatch(0, "a")
	record.SetPartitionLeaderEpoch(batch, 0)
	rp.Partition, rp.HighWatermark, rp.LastStableOffset, rp.RecordBatches = 0, 1, 1, batch
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	n.Step(now, port.PeerMessage{From: 1, Data: resp.AppendTo(binary.BigEndian.AppendUint64([]byte{peerFetchResp}, id))})
	rvDrive(n, fs, now)
	if p.log.EndOffset() != 1 {
		t.Fatalf("a batch of epoch 0 refused: log end %d", p.log.EndOffset())
	}
}

// A leader drops the replicas a reassignment removes from the ISR only
// when that completes the reassignment: the ISR left must have the
// target's min.insync.replicas members, as the controller requires.
// Dropping them sooner held the high watermark, and the replicas dropped
// were added back at once, in a loop that kept a caught-up target replica
// out of the ISR (seed 1365).
func TestLeaderDropsRemovedReplicasOnlyToComplete(t *testing.T) {
	minISR := "3"
	n, fs, now := replNode(t, metadata.Record{Config: &metadata.ConfigRecord{
		Resource: metadata.ResourceTopic, Name: "r", Key: "min.insync.replicas", Value: &minISR}})
	rvDrive(n, fs, now)
	// altered returns the ISRs node 2 asks the controller for in effs.
	altered := func(effs []port.Effect) [][]int32 {
		var out [][]int32
		for _, e := range effs {
			sp, ok := e.(port.SendPeer)
			if !ok || len(sp.Data) == 0 || sp.Data[0] != peerCtrlReq {
				continue
			}
			if _, req, err := decodeCall(sp.Data[1:]); err == nil {
				if ap, ok := req.(*kmsg.AlterPartitionRequest); ok {
					var isr []int32
					for _, m := range ap.Topics[0].Partitions[0].NewEpochISR {
						isr = append(isr, m.BrokerID)
					}
					out = append(out, isr)
				}
			}
		}
		return out
	}
	commit := func(index uint64, recs ...metadata.Record) []port.Effect {
		msg := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 1, Index: index - 1, LogTerm: 1, Commit: index,
			Entries: []raft.Entry{{Index: index, Term: 1, Data: rvBatch(recs...)}}}
		n.Step(now, port.PeerMessage{From: 1, Data: raft.AppendMessage([]byte{peerRaft}, msg)})
		return rvDrive(n, fs, now)
	}
	register := func(id port.NodeID) metadata.Record {
		return metadata.Record{RegisterBroker: &metadata.RegisterBrokerRecord{ID: id, Epoch: int64(id)}}
	}
	// r-0, on [2 4 1] with 4 out of the ISR, moves to [2 3 4]: 3, the
	// replica being added, has joined the ISR; 4 lags.
	reassigning := func(epoch int32, isr ...port.NodeID) metadata.Record {
		return metadata.Record{Partition: &metadata.PartitionRecord{TopicID: replTopicID, Partition: 0,
			Replicas: []port.NodeID{2, 3, 4, 1}, ISR: isr, Leader: 2, LeaderEpoch: 1, PartitionEpoch: epoch,
			AddingReplicas: []port.NodeID{3}, RemovingReplicas: []port.NodeID{1}}}
	}
	if got := altered(commit(4, register(3), register(4), reassigning(1, 1, 2, 3))); len(got) > 0 {
		t.Fatalf("asked for ISR %v before node 1 fetched in this epoch", got)
	}
	n.Step(now, port.PeerMessage{From: 1, Data: replicaFetchTo(9, 0, -1)})
	if got := altered(rvDrive(n, fs, now)); len(got) > 0 {
		t.Fatalf("asked for ISR %v: [2 3] is below the target's min.insync.replicas, it completes nothing", got)
	}
	if got := altered(commit(5, reassigning(2, 1, 2, 3, 4))); len(got) != 1 || !slices.Equal(got[0], []int32{2, 3, 4}) {
		t.Fatalf("asked for ISRs %v once 4 joined, want one for [2 3 4]", got)
	}
}

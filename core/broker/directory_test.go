package broker

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/raft"
)

// The log directory's id is drawn at first boot, written to
// meta.properties, and read back at every later boot; a new (wiped)
// directory gets another.
func TestDirectoryID(t *testing.T) {
	fs := newRVFS()
	n, now := rvBoot(t, fs)
	rvDrive(n, fs, now)
	first := n.cluster.directory
	if first == ([16]byte{}) {
		t.Fatal("no directory id drawn")
	}
	props := string(fs.files[metaPropertiesFile])
	if !strings.Contains(props, "node.id=2\n") || !strings.Contains(props, "directory.id=") || !n.cluster.bootSynced {
		t.Fatalf("meta.properties %q, boot synced %v", props, n.cluster.bootSynced)
	}
	if _, tmp := fs.files[metaPropertiesTmp]; tmp {
		t.Fatal("the temporary file is left behind")
	}

	n, now = rvBoot(t, fs)
	rvDrive(n, fs, now)
	if n.cluster.directory != first {
		t.Fatalf("directory id %x after a restart, was %x", n.cluster.directory, first)
	}
	// Another process (another seed) on a wiped directory.
	wiped, err := Boot(newRVFS(), n.cfg, 8, now, n.log)
	if err != nil || wiped.cluster.directory == first {
		t.Fatalf("a wiped directory kept its id (%v)", err)
	}

	// A directory of another node is refused.
	fs.files[metaPropertiesFile] = []byte(strings.Replace(props, "node.id=2", "node.id=3", 1))
	if _, err := Boot(fs, n.cfg, 7, now, n.log); err == nil || !strings.Contains(err.Error(), "node.id 3") {
		t.Fatalf("boot on node 3's directory: %v", err)
	}
}

// The broker registers with its directory id, once the id is durable.
func TestRegistrationNamesDirectory(t *testing.T) {
	n, fs, now := replNode(t)
	var reg *kmsg.BrokerRegistrationRequest
	for _, e := range rvDrive(n, fs, now) {
		sp, ok := e.(port.SendPeer)
		if !ok || len(sp.Data) == 0 || sp.Data[0] != peerCtrlReq {
			continue
		}
		_, req, err := decodeCall(sp.Data[1:])
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := req.(*kmsg.BrokerRegistrationRequest); ok {
			reg = r
		}
	}
	if reg == nil {
		t.Fatal("no registration sent")
	}
	if reg.Version < 2 || len(reg.LogDirs) != 1 || reg.LogDirs[0] != n.cluster.directory {
		t.Fatalf("registration v%d names directories %x, want [%x]", reg.Version, reg.LogDirs, n.cluster.directory)
	}
}

// A leader whose ISR is smaller than min.insync.replicas holds its high
// watermark, whatever its followers have: a replica that left the ISR
// then may be elected (the ELR) and must hold every committed record.
func TestHighWatermarkNeedsMinISR(t *testing.T) {
	minISR := "2"
	n, fs, now := replNode(t, metadata.Record{Config: &metadata.ConfigRecord{
		Resource: metadata.ResourceTopic, Name: "r", Key: "min.insync.replicas", Value: &minISR}})
	rvDrive(n, fs, now)
	// Node 2 follows r-1: two records, one of them committed by node 1.
	p := n.topics.byName["r"].partitions[1]
	n.Step(now, port.PeerMessage{From: 1, Data: fetchResponseFrom(p.follow.inflight, 1, append(leaderBatch(0, "a"), leaderBatch(1, "b")...))})
	rvDrive(n, fs, now)
	// Node 1 fails: node 2 leads alone, node 1 eligible.
	commit := func(index uint64, rec metadata.PartitionRecord) {
		t.Helper()
		msg := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 1, Index: index - 1, LogTerm: 1, Commit: index,
			Entries: []raft.Entry{{Index: index, Term: 1, Data: rvBatch(metadata.Record{Partition: &rec})}}}
		n.Step(now, port.PeerMessage{From: 1, Data: raft.AppendMessage([]byte{peerRaft}, msg)})
		rvDrive(n, fs, now)
		if !slices.Equal(p.state.ISR, rec.ISR) {
			t.Fatalf("ISR %v, want %v", p.state.ISR, rec.ISR)
		}
	}
	commit(4, metadata.PartitionRecord{TopicID: replTopicID, Partition: 1, Replicas: []port.NodeID{1, 2},
		ISR: []port.NodeID{2}, ELR: []port.NodeID{1}, Leader: 2, LeaderEpoch: 2, PartitionEpoch: 1})
	if p.lead == nil || p.log.EndOffset() != 2 {
		t.Fatalf("node 2 does not lead r-1 with both records (end %d)", p.log.EndOffset())
	}
	fetch := func(id uint64) {
		n.Step(now, port.PeerMessage{From: 1, Data: replicaFetchOf(id, 1, 2, 2, 1)})
		rvDrive(n, fs, now)
	}
	fetch(1)
	if p.hw != 1 {
		t.Fatalf("high watermark %d with an ISR of one, want it held at 1", p.hw)
	}
	// Node 1, caught up, is back in the ISR: the high watermark moves.
	commit(5, metadata.PartitionRecord{TopicID: replTopicID, Partition: 1, Replicas: []port.NodeID{1, 2},
		ISR: []port.NodeID{2, 1}, Leader: 2, LeaderEpoch: 2, PartitionEpoch: 2})
	fetch(2)
	if p.hw != 2 {
		t.Fatalf("high watermark %d with the ISR back at two, want 2", p.hw)
	}
}

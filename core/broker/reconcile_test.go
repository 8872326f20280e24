package broker

// Reconcile against the committed image, after a stored tail that a new
// leader replaced, and after a topic deleted and created again under the
// same name (found in review).

import (
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/weirmq/weir/core/config"
	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/metalog"
	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/raft"
)

// rvFS is a minimal in-memory data directory.
type rvFS struct {
	files map[string][]byte
	dirs  map[string]bool
}

func newRVFS() *rvFS { return &rvFS{files: map[string][]byte{}, dirs: map[string]bool{".": true}} }

func rvParent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

func (f *rvFS) List(path string) ([]port.DirEntry, error) {
	var out []port.DirEntry
	for d := range f.dirs {
		if d != "." && rvParent(d) == path {
			out = append(out, port.DirEntry{Name: d[strings.LastIndexByte(d, '/')+1:], IsDir: true})
		}
	}
	for p, b := range f.files {
		if rvParent(p) == path {
			out = append(out, port.DirEntry{Name: p[strings.LastIndexByte(p, '/')+1:], Size: int64(len(b))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *rvFS) ReadAt(path string, buf []byte, off int64) (int, error) {
	b, ok := f.files[path]
	if !ok {
		return 0, io.EOF
	}
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(buf, b[off:])
	if n < len(buf) {
		return n, io.EOF
	}
	return n, nil
}

func (f *rvFS) DropCache(string) error { return nil }

func (f *rvFS) do(op port.DiskOp) {
	switch op.Kind {
	case port.OpMkdir:
		f.dirs[op.Path] = true
	case port.OpWrite:
		b := f.files[op.Path]
		if end := op.Pos + int64(len(op.Data)); int64(len(b)) < end {
			b = append(b, make([]byte, end-int64(len(b)))...)
		}
		copy(b[op.Pos:], op.Data)
		f.files[op.Path] = b
	case port.OpTruncate:
		f.files[op.Path] = f.files[op.Path][:op.Pos]
	case port.OpRename:
		if f.dirs[op.Path] {
			delete(f.dirs, op.Path)
			f.dirs[op.To] = true
			for p, b := range f.files {
				if strings.HasPrefix(p, op.Path+"/") {
					delete(f.files, p)
					f.files[op.To+p[len(op.Path):]] = b
				}
			}
			return
		}
		f.files[op.To] = f.files[op.Path]
		delete(f.files, op.Path)
	case port.OpRemove:
		delete(f.files, op.Path)
	case port.OpRemoveAll:
		delete(f.dirs, op.Path)
		for p := range f.files {
			if strings.HasPrefix(p, op.Path+"/") {
				delete(f.files, p)
			}
		}
	}
}

// rvDrive runs the node's Ready, performs its disk ops in order and feeds
// their completions back, until it settles; it returns every effect.
func rvDrive(n *Node, fs *rvFS, now port.Time) []port.Effect {
	var all []port.Effect
	for range 100 {
		rd := n.Ready()
		if len(rd.Effects) == 0 {
			return all
		}
		all = append(all, rd.Effects...)
		for _, e := range rd.Effects {
			if op, ok := e.(port.DiskOp); ok {
				fs.do(op)
				n.Step(now, port.DiskDone{Op: op.ID})
			}
		}
	}
	return all
}

func rvBatch(recs ...metadata.Record) []byte { return metadata.EncodeBatch(recs) }

// rvStoreLog writes a metadata log holding ents, in term 1 with a vote for
// vote, as node 2 stored it before a restart.
func rvStoreLog(t testing.TB, fs *rvFS, vote port.NodeID, ents []raft.Entry) {
	store, _, err := metalog.Recover(fs)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range store.BootOps() {
		fs.do(op)
	}
	for _, op := range store.Save(raft.Ready{HardState: &raft.HardState{Term: 1, Vote: vote}, Entries: ents}) {
		fs.do(op)
	}
}

// rvBoot boots node 2 of a three-voter cluster (nodes 1-3, each a broker
// and a controller) from fs.
func rvBoot(t testing.TB, fs *rvFS) (*Node, port.Time) {
	cfg, _, err := config.NewBroker(map[string]string{
		"node.id":                   "2",
		"process.roles":             "broker,controller",
		"controller.quorum.voters":  "1@n1:9093,2@n2:9093,3@n3:9093",
		"controller.listener.names": "CONTROLLER",
		"listeners":                 "PLAINTEXT://n2:9092,CONTROLLER://n2:9093",
	})
	if err != nil {
		t.Fatal(err)
	}
	now := port.Time{MonoNs: 1e9, WallMs: 1e6}
	n, err := Boot(fs, cfg, 7, now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return n, now
}

// A leader stored a DeleteTopics it never replicated, then crashed; the new
// leader's log replaces that entry, so the committed image still assigns
// the partition here, and its directory and records must stay.
func TestReconcileKeepsAssignedDirAfterTruncatedDelete(t *testing.T) {
	t.Run("delete", func(t *testing.T) { rvTruncatedTail(t, false) })
	t.Run("delete-and-recreate", func(t *testing.T) { rvTruncatedTail(t, true) })
}

func rvTruncatedTail(t *testing.T, recreate bool) {
	fs := newRVFS()
	topicID := [16]byte{1, 2, 3}
	// The metadata log of node 2: entries 1-3 committed cluster-wide
	// (cluster id, broker 2 registered, topic a on broker 2), entry 4 an
	// uncommitted DeleteTopics of a that node 2 (the old leader) wrote
	// before crashing.
	ents := []raft.Entry{
		{Index: 1, Term: 1, Data: nil},
		{Index: 2, Term: 1, Data: rvBatch(metadata.Record{Cluster: &metadata.ClusterRecord{ClusterID: "c1"}},
			metadata.Record{RegisterBroker: &metadata.RegisterBrokerRecord{ID: 2, Epoch: 2, Incarnation: "x",
				Endpoints: []metadata.Endpoint{{Listener: "PLAINTEXT", Host: "n2", Port: 9092}}}})},
		{Index: 3, Term: 1, Data: rvBatch(metadata.Record{Topic: &metadata.TopicRecord{Name: "a", ID: topicID}},
			metadata.Record{Partition: &metadata.PartitionRecord{TopicID: topicID, Partition: 0,
				Replicas: []port.NodeID{2}, ISR: []port.NodeID{2}, Leader: 2}})},
		{Index: 4, Term: 1, Data: rvBatch(metadata.Record{RemoveTopic: &metadata.RemoveTopicRecord{ID: topicID}})},
	}
	if recreate {
		newID := [16]byte{9}
		ents[3].Data = rvBatch(metadata.Record{RemoveTopic: &metadata.RemoveTopicRecord{ID: topicID}},
			metadata.Record{Topic: &metadata.TopicRecord{Name: "a", ID: newID}},
			metadata.Record{Partition: &metadata.PartitionRecord{TopicID: newID, Partition: 0,
				Replicas: []port.NodeID{2}, ISR: []port.NodeID{2}, Leader: 2}})
	}
	rvStoreLog(t, fs, 2, ents)
	// Partition a-0 holds acknowledged data.
	fs.dirs["a-0"] = true
	fs.files["a-0/00000000000000000000.log"] = []byte("acknowledged records")

	n, now := rvBoot(t, fs)
	rvDrive(n, fs, now)

	// Node 1 won term 2 without entry 4 (it never left node 2); its log
	// has its own empty entry at 4, committed by nodes 1 and 3.
	msg := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 2, Index: 3, LogTerm: 1,
		Entries: []raft.Entry{{Index: 4, Term: 2}}, Commit: 4}
	n.Step(now, port.PeerMessage{From: 1, Data: raft.AppendMessage([]byte{peerRaft}, msg)})
	effs := rvDrive(n, fs, now)

	if !n.cluster.caughtUp {
		t.Fatalf("node did not catch up (applied %d, bootLast %d)", n.cluster.applied, n.cluster.bootLast)
	}
	it, ok := n.cluster.image.Topic("a")
	if !ok || !slices.Contains(it.Partitions[0].Replicas, 2) {
		t.Fatalf("committed image should still assign a-0 to node 2")
	}
	var onLane []string
	for _, e := range effs {
		if op, ok := e.(port.DiskOp); ok && op.Lane == "a-0" {
			onLane = append(onLane, op.Kind.String())
		}
	}
	t.Logf("ops on lane a-0 after catching up: %v", onLane)
	if _, ok := fs.files["a-0/00000000000000000000.log"]; !ok || !fs.dirs["a-0"] {
		t.Errorf("the committed image assigns a-0 to this node (leader %d), yet its directory and data were removed (ops %v)",
			it.Partitions[0].Leader, onLane)
	}
}

// The delete of topic a (id X) and its re-creation (id Y) are both stored
// when the node crashes, neither applied: a-0 still holds X's records.
// Once the entries commit, Y must start a directory of its own rather than
// serve X's records; the directory's partition.metadata tells them apart.
func TestRecreatedTopicDoesNotAdoptOldDirectory(t *testing.T) {
	fs := newRVFS()
	oldID, newID := [16]byte{1, 2, 3}, [16]byte{9}
	ents := []raft.Entry{
		{Index: 1, Term: 1, Data: nil},
		{Index: 2, Term: 1, Data: rvBatch(metadata.Record{Cluster: &metadata.ClusterRecord{ClusterID: "c1"}},
			metadata.Record{RegisterBroker: &metadata.RegisterBrokerRecord{ID: 2, Epoch: 2, Incarnation: "x",
				Endpoints: []metadata.Endpoint{{Listener: "PLAINTEXT", Host: "n2", Port: 9092}}}})},
		{Index: 3, Term: 1, Data: rvBatch(metadata.Record{Topic: &metadata.TopicRecord{Name: "a", ID: oldID}},
			metadata.Record{Partition: &metadata.PartitionRecord{TopicID: oldID, Partition: 0,
				Replicas: []port.NodeID{2}, ISR: []port.NodeID{2}, Leader: 2}})},
		{Index: 4, Term: 1, Data: rvBatch(metadata.Record{RemoveTopic: &metadata.RemoveTopicRecord{ID: oldID}})},
		{Index: 5, Term: 1, Data: rvBatch(metadata.Record{Topic: &metadata.TopicRecord{Name: "a", ID: newID}},
			metadata.Record{Partition: &metadata.PartitionRecord{TopicID: newID, Partition: 0,
				Replicas: []port.NodeID{2}, ISR: []port.NodeID{2}, Leader: 2}})},
	}
	rvStoreLog(t, fs, 1, ents)
	fs.dirs["a-0"] = true
	fs.files["a-0/00000000000000000000.log"] = []byte("records of the old topic")
	fs.files["a-0/"+partitionMetadataFile] = partitionMetadata(oldID)
	n, now := rvBoot(t, fs)
	bootLog := n.pool["a-0"].log
	rvDrive(n, fs, now)
	msg := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 1, Index: 5, LogTerm: 1, Commit: 5}
	n.Step(now, port.PeerMessage{From: 1, Data: raft.AppendMessage([]byte{peerRaft}, msg)})
	rvDrive(n, fs, now)
	tp := n.topics.byName["a"]
	if !n.cluster.caughtUp || tp == nil || tp.id != newID {
		t.Fatalf("the node did not apply the new topic a")
	}
	if tp.partitions[0].log == bootLog {
		t.Errorf("topic a (new id %x) adopted directory a-0, which holds the deleted topic's data", newID[:1])
	}
}

package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/weirmq/weir/core/bugs"
	"github.com/weirmq/weir/core/partlog"
	"github.com/weirmq/weir/core/port"
)

// The node's metadata (cluster id, topics, producer id blocks) is one JSON
// image replaced atomically: write a temporary file, fsync it, rename it
// over the old one, fsync the directory. Changes made while a write is in
// flight ride on the next one (group commit for metadata). The cluster
// issue replaces this file with a Raft log; the image stays the same.
const (
	metaFile = "weir-metadata.json"
	metaTmp  = metaFile + ".tmp"
	metaLane = "metadata"
)

type metaImage struct {
	ClusterID           string      `json:"cluster_id"`
	NextProducerIDBlock int64       `json:"next_producer_id_block"`
	Topics              []metaTopic `json:"topics"`
}

type metaTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

type metaStore struct {
	image   metaImage
	loaded  bool // a metadata file existed at boot
	writing bool
	opsLeft int
	// renameNext: the temporary image is being written and synced; the
	// rename follows once that succeeded.
	renameNext bool
	dirty      bool
	// inFlight waits for the write under way; next for the one after.
	inFlight []func(ok bool)
	next     []func(ok bool)
	failed   bool
}

// load reads the image, if any. IDs are kept as Kafka renders them.
func (m *metaStore) load(fs port.BootFS) (metaImage, error) {
	entries, err := fs.List(".")
	if err != nil {
		return metaImage{}, err
	}
	for _, e := range entries {
		if e.Name != metaFile || e.IsDir {
			continue
		}
		buf := make([]byte, e.Size)
		if n, err := fs.ReadAt(metaFile, buf, 0); err != nil && !(errors.Is(err, io.EOF) && n == len(buf)) {
			return metaImage{}, fmt.Errorf("read %s: %w", metaFile, err)
		}
		var img metaImage
		if err := json.Unmarshal(buf, &img); err != nil {
			return metaImage{}, fmt.Errorf("%s is damaged (%v); it was written atomically, so this is not a torn write", metaFile, err)
		}
		m.loaded = true
		return img, nil
	}
	return metaImage{}, nil
}

// bootSync makes the image found at boot durable (it may have been in the
// page cache only) or, on a new node, writes the first one.
func (m *metaStore) bootSync(n *Node) {
	if !m.loaded {
		m.dirty = true
		return
	}
	m.writing, m.opsLeft = true, 2
	n.issueMeta(port.DiskOp{Kind: port.OpSync, Lane: metaLane, Path: metaFile})
	n.issueMeta(port.DiskOp{Kind: port.OpSyncDir, Lane: metaLane, Path: "."})
}

// commit records that the image changed; done runs once the change is
// durable (ok) or the disk failed (!ok).
func (m *metaStore) commit(done func(ok bool)) {
	if m.failed {
		done(false)
		return
	}
	m.dirty = true
	if done != nil {
		m.next = append(m.next, done)
	}
}

func (m *metaStore) durable() bool { return !m.writing && !m.dirty }

func (m *metaStore) maybeWrite(n *Node) {
	if m.writing || !m.dirty || m.failed {
		return
	}
	sort.Slice(m.image.Topics, func(i, j int) bool { return m.image.Topics[i].Name < m.image.Topics[j].Name })
	data, err := json.MarshalIndent(m.image, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("broker: encode metadata: %v", err))
	}
	m.writing, m.dirty = true, false
	m.inFlight, m.next = m.next, nil
	// The rename waits for the temporary file's fsync to succeed: ops
	// already queued on a lane run even after one fails, and a rename
	// over the image after a failed fsync would leave a machine crash an
	// empty or torn image to boot from.
	ops := []port.DiskOp{
		{Kind: port.OpRemove, Lane: metaLane, Path: metaTmp},
		{Kind: port.OpWrite, Lane: metaLane, Path: metaTmp, Data: data},
		{Kind: port.OpSync, Lane: metaLane, Path: metaTmp},
	}
	m.opsLeft, m.renameNext = len(ops), true
	for _, op := range ops {
		n.issueMeta(op)
	}
}

func (m *metaStore) done(n *Node) {
	m.opsLeft--
	if m.opsLeft > 0 {
		return
	}
	if m.renameNext {
		m.renameNext, m.opsLeft = false, 1
		n.issueMeta(port.DiskOp{Kind: port.OpRename, Lane: metaLane, Path: metaTmp, To: metaFile})
		if !bugs.On(bugs.MetaSkipsDirSync) {
			m.opsLeft++
			n.issueMeta(port.DiskOp{Kind: port.OpSyncDir, Lane: metaLane, Path: "."})
		}
		return
	}
	m.writing = false
	waiters := m.inFlight
	m.inFlight = nil
	for _, w := range waiters {
		w(true)
	}
}

func (m *metaStore) fail(*Node) {
	m.failed = true
	waiters := append(m.inFlight, m.next...)
	m.inFlight, m.next = nil, nil
	for _, w := range waiters {
		w(false)
	}
}

// topic returns the image's entry for a topic name.
func (m *metaStore) topic(name string) *metaTopic {
	for i := range m.image.Topics {
		if m.image.Topics[i].Name == name {
			return &m.image.Topics[i]
		}
	}
	return nil
}

func (m *metaStore) removeTopic(name string) {
	for i := range m.image.Topics {
		if m.image.Topics[i].Name == name {
			m.image.Topics = append(m.image.Topics[:i], m.image.Topics[i+1:]...)
			return
		}
	}
}

// removeOrphans deletes partition directories the metadata does not know:
// a topic whose deletion was committed before a crash finished removing it,
// or one whose creation never became durable (and so was never used).
func (n *Node) removeOrphans(fs port.BootFS) {
	entries, err := fs.List(".")
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir {
			continue
		}
		topicName, _, ok := parsePartitionDir(e.Name)
		if !ok || validTopicName(topicName) != nil {
			continue
		}
		if t := n.topics.byName[topicName]; t != nil {
			if _, p, _ := parsePartitionDir(e.Name); p < int32(len(t.partitions)) {
				continue
			}
		}
		n.log.Info("removing partition directory unknown to the metadata", "dir", e.Name)
		n.issue(nil, []partlog.Op{{DiskOp: port.DiskOp{Kind: port.OpRemoveAll, Lane: e.Name, Path: e.Name}}})
	}
}

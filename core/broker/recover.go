package broker

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/weirmq/weir/core/controller"
	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/metalog"
	"github.com/weirmq/weir/core/partlog"
	"github.com/weirmq/weir/core/port"
)

// recoverPartitions opens every partition directory into the pool of
// recovered logs, which reconcile hands out once the node has replayed its
// metadata log (see reconcile.go). The provisional image (everything
// stored, committed or not) only supplies each log's topic config for
// recovery. With no metadata log at all, the directories are set aside.
func (n *Node) recoverPartitions(fs port.BootFS, img *metadata.Image) error {
	entries, err := fs.List(".")
	if err != nil {
		return err
	}
	n.pool = map[string]*partition{}
	for _, e := range entries {
		if !e.IsDir || e.Name == metalog.Dir {
			continue
		}
		name, index, ok := parsePartitionDir(e.Name)
		if !ok || controller.ValidTopicName(name) != nil {
			continue
		}
		if n.cluster.bootLast == 0 {
			n.setStrayAside(e.Name)
			continue
		}
		id, err := readPartitionMetadata(fs, e.Name)
		if err != nil {
			return err
		}
		tc := n.cfg.TopicDefaults
		if it, known := img.Topic(name); known && (id == [16]byte{} || it.ID == id) {
			if c, err := n.cfg.TopicConfig(topicOverrides(img, name)); err == nil {
				tc = c
			}
		}
		l, repairs, err := partlog.Open(fs, e.Name, logConfig(tc))
		if err != nil {
			return err
		}
		// Until reconcile hands it out, the log hangs off a placeholder
		// topic that clients never see.
		t := &topic{name: name, id: id, cfg: tc}
		p := &partition{topic: t, index: index, log: l}
		n.pool[e.Name] = p
		n.issue(p, []partlog.Op{{DiskOp: port.DiskOp{Kind: port.OpMkdir, Lane: e.Name, Path: e.Name}}})
		n.issue(p, repairs)
		n.queueSync(p)
	}
	return nil
}

// partitionMetadataFile names the file that records, in every partition
// directory, which topic (by id) it belongs to, as Kafka's
// partition.metadata does: a topic deleted and created again under the
// same name must never take over the old directory's records.
const partitionMetadataFile = "partition.metadata"

func partitionMetadata(id [16]byte) []byte {
	return []byte("version: 0\ntopic_id: " + base64.RawURLEncoding.EncodeToString(id[:]) + "\n")
}

// readPartitionMetadata returns the topic id a partition directory records,
// or zero if it has no such file (directories written before it existed)
// or a damaged one (it is written once, at creation): reconcile treats
// both as a directory whose owner is known by name only.
func readPartitionMetadata(fs port.BootFS, dir string) ([16]byte, error) {
	var id [16]byte
	names, err := fs.List(dir)
	if err != nil {
		return id, err
	}
	i := slices.IndexFunc(names, func(e port.DirEntry) bool { return e.Name == partitionMetadataFile })
	if i < 0 {
		return id, nil
	}
	path := dir + "/" + partitionMetadataFile
	buf := make([]byte, names[i].Size)
	if n, err := fs.ReadAt(path, buf, 0); err != nil && !(errors.Is(err, io.EOF) && n == len(buf)) {
		return id, fmt.Errorf("read %s: %w", path, err)
	}
	for _, line := range strings.Split(string(buf), "\n") {
		if v, ok := strings.CutPrefix(line, "topic_id: "); ok {
			if b, err := base64.RawURLEncoding.DecodeString(v); err == nil && len(b) == 16 {
				copy(id[:], b)
			}
		}
	}
	return id, nil
}

// setStrayAside renames a partition directory found with no metadata log
// at all: the log was lost, not necessarily the topic, so its data is kept
// for an operator to decide on, under a name no partition uses (as KRaft
// renames stray logs), and a topic created again under the same name
// starts in a directory of its own.
func (n *Node) setStrayAside(dir string) {
	stray := fmt.Sprintf("%s.%016x-stray", dir, n.rnd.Uint64())
	n.log.Warn("partition directory found without any metadata log; set aside", "dir", dir, "now", stray)
	n.emit(port.DiskOp{ID: n.newOpID(opRef{}), Kind: port.OpRename, Lane: dir, Path: dir, To: stray})
	n.emit(port.DiskOp{ID: n.newOpID(opRef{}), Kind: port.OpSyncDir, Lane: dir, Path: "."})
}

func (n *Node) isBroker() bool { return slices.Contains(n.cfg.ProcessRoles, "broker") }

// stop starts a controlled shutdown: heartbeats ask the controller to move
// this broker's leaderships away. A node that is not a registered broker,
// or the only live one, has nothing to hand over; one whose log directory
// is offline no longer heartbeats, and the controller fences it anyway.
func (n *Node) stop() {
	r := &n.cluster.reg
	if r.stopping {
		return
	}
	r.stopping, r.stopDeadlineNs, r.nextNs = true, n.now.MonoNs+controlledShutdownTimeoutNs, n.now.MonoNs
	others := 0
	for _, b := range n.cluster.image.Brokers() {
		if b.ID != n.cluster.self && !b.Fenced && !b.ShuttingDown {
			others++
		}
	}
	if !n.isBroker() || r.epoch == 0 || others == 0 || n.storageErr != nil {
		r.stopped = true
	}
}

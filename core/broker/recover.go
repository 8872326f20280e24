package broker

import (
	"fmt"
	"slices"

	"github.com/weirmq/weir/core/controller"
	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/metalog"
	"github.com/weirmq/weir/core/partlog"
	"github.com/weirmq/weir/core/port"
)

// recoverPartitions opens the partition directories that the provisional
// image assigns to this node, under topics clients cannot see until the
// committed log confirms them (see reconcile). Other partition
// directories are orphans, removed once the log is replayed.
func (n *Node) recoverPartitions(fs port.BootFS, img *metadata.Image) error {
	entries, err := fs.List(".")
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir || e.Name == metalog.Dir {
			continue
		}
		name, index, ok := parsePartitionDir(e.Name)
		if !ok || controller.ValidTopicName(name) != nil {
			continue
		}
		it, known := img.Topic(name)
		if !known || int(index) >= len(it.Partitions) || !slices.Contains(it.Partitions[index].Replicas, n.cluster.self) {
			n.orphanDirs = append(n.orphanDirs, e.Name)
			continue
		}
		t := n.topics.byID[it.ID]
		if t == nil {
			overrides := topicOverrides(img, name)
			tc, err := n.cfg.TopicConfig(overrides)
			if err != nil {
				tc = n.cfg.TopicDefaults
			}
			t = n.topics.add(name, it.ID, overrides, tc)
			for range it.Partitions {
				t.addPartition(nil)
			}
		}
		l, repairs, err := partlog.Open(fs, e.Name, logConfig(t.cfg))
		if err != nil {
			return err
		}
		p := t.partitions[index]
		p.log = l
		n.issue(p, []partlog.Op{{DiskOp: port.DiskOp{Kind: port.OpMkdir, Lane: e.Name, Path: e.Name}}})
		n.issue(p, repairs)
		n.queueSync(p)
	}
	if n.cluster.bootLast == 0 && len(n.orphanDirs) > 0 {
		n.setStrayAside()
	}
	return nil
}

// setStrayAside renames partition directories found with no metadata log
// at all: the log was lost, not necessarily these topics, so their data is
// kept for an operator to decide on, under a name no partition uses (as
// KRaft renames stray logs), and a topic created again under the same name
// starts in a directory of its own.
func (n *Node) setStrayAside() {
	for _, dir := range n.orphanDirs {
		stray := fmt.Sprintf("%s.%016x-stray", dir, n.rnd.Uint64())
		n.log.Warn("partition directory found without any metadata log; set aside", "dir", dir, "now", stray)
		n.emit(port.DiskOp{ID: n.newOpID(opRef{}), Kind: port.OpRename, Lane: dir, Path: dir, To: stray})
		n.emit(port.DiskOp{ID: n.newOpID(opRef{}), Kind: port.OpSyncDir, Lane: dir, Path: "."})
	}
	n.orphanDirs = nil
}

func (n *Node) isBroker() bool { return slices.Contains(n.cfg.ProcessRoles, "broker") }

// stop starts a controlled shutdown: heartbeats ask the controller to move
// this broker's leaderships away. A node that is not a registered broker,
// or the only live one, has nothing to hand over.
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
	if !n.isBroker() || r.epoch == 0 || others == 0 {
		r.stopped = true
	}
}

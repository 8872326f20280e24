package broker

// reconcile makes the node's topics and partition logs follow the
// committed metadata image.
//
// At boot the node opens the partition directories that the metadata it
// stored (committed or not) assigns to it, under topics clients cannot see
// yet. Reconciling starts once the node has applied everything it stored
// before the crash (or the leader's log that replaced it): an image half
// replayed may still name an older topic that a later record replaced,
// and reconciling against it would remove the newer topic's data. From
// then on, topics in the image become visible, new replicas get new logs,
// deleted topics lose their directories, and directories the image does
// not account for are removed.

import (
	"slices"

	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/partlog"
	"github.com/weirmq/weir/core/port"
)

func (n *Node) reconcile() {
	img := n.cluster.image
	for _, t := range slices.Clone(n.topics.sorted) {
		it, ok := img.TopicByID(t.id)
		if ok && it.Name == t.name {
			continue
		}
		n.dropTopic(t)
	}
	for _, it := range img.Topics() {
		t := n.topics.byID[it.ID]
		if t == nil {
			if old := n.topics.byName[it.Name]; old != nil {
				n.dropTopic(old) // an uncommitted topic under the same name
			}
			overrides := topicOverrides(img, it.Name)
			tc, err := n.cfg.TopicConfig(overrides)
			if err != nil {
				n.log.Error("topic config in the metadata is invalid; using defaults", "topic", it.Name, "err", err)
				tc = n.cfg.TopicDefaults
			}
			t = n.topics.add(it.Name, it.ID, overrides, tc)
		}
		t.visible = true
		for i, ip := range it.Partitions {
			if i == len(t.partitions) {
				t.addPartition(nil)
			}
			p := t.partitions[i]
			p.state, p.visible = ip, true
			if p.log == nil && slices.Contains(ip.Replicas, n.cluster.self) {
				l, ops := partlog.New(partitionDir(t.name, int32(i)), logConfig(t.cfg))
				p.log = l
				n.issue(p, ops)
			}
		}
	}
	if len(n.orphanDirs) > 0 {
		for _, dir := range n.orphanDirs {
			n.log.Info("removing a partition directory the metadata does not know", "dir", dir)
			n.emit(port.DiskOp{ID: n.newOpID(opRef{}), Kind: port.OpRemoveAll, Lane: dir, Path: dir})
		}
		n.orphanDirs = nil
	}
	n.releaseHeldIfReady()
}

// topicOverrides returns a topic's config overrides from the image.
func topicOverrides(img *metadata.Image, name string) map[string]string {
	entries := img.Configs(metadata.ResourceTopic, name)
	if len(entries) == 0 {
		return nil
	}
	o := make(map[string]string, len(entries))
	for _, e := range entries {
		o[e.Key] = e.Value
	}
	return o
}

// dropTopic forgets a deleted topic and removes its directories. Removal
// runs on each partition's lane, so a topic created again under the same
// name starts only after the old directories are gone.
func (n *Node) dropTopic(t *topic) {
	n.topics.remove(t)
	if t.visible {
		// Kafka drops a deleted topic's committed offsets, so a topic
		// created later under the same name starts with none.
		n.groups.DeleteTopicOffsets(n.now.MonoNs, t.name)
	}
	for _, p := range t.partitions {
		if p.log != nil {
			n.issue(p, p.log.Remove())
		}
	}
}

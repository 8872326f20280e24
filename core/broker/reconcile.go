package broker

// reconcile makes the node's topics and partition logs follow the
// committed metadata image.
//
// At boot the node opens every partition directory into a pool (see
// recover.go). Reconciling starts only once the node has applied
// everything it stored before the crash (or the leader's log that replaced
// it): an image half replayed may still name a topic that a later record
// deleted or replaced. From then on, every partition the image assigns here
// takes its directory's log from the pool, if the directory is its topic's
// (by the topic id the directory records), or a new one; a directory left
// by a deleted topic of the same name is removed first; what the pool
// still holds after that, no committed partition owns, and it is removed.
// Topics leave the table when the image drops them, and their directories
// go with them.

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

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
				n.dropTopic(old)
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
			assigned := slices.Contains(ip.Replicas, n.cluster.self)
			switch {
			case p.log == nil && assigned:
				p = n.openLog(t, int32(i))
			case p.log != nil && !assigned:
				// A reassignment moved the replica away: the others hold
				// it now (the controller drops a replica only once the
				// new ones are in the ISR). The partition starts afresh,
				// without a log; the old one, removed, keeps receiving
				// the completions of operations still in flight.
				n.log.Info("removing a replica reassigned away", "topic", t.name, "partition", i)
				n.dropReplica(p, kerr.NotLeaderForPartition)
				p = &partition{topic: t, index: p.index, visible: p.visible}
				t.partitions[i] = p
			}
			p.state, p.visible = ip, true
			if p.log != nil {
				n.updateRole(p)
			}
		}
	}
	n.following = n.followingPartitions()
	// What the pool still holds, no committed partition owns here.
	for _, dir := range slices.Sorted(maps.Keys(n.pool)) {
		n.log.Info("removing a partition directory the metadata does not assign here", "dir", dir)
		n.removePooled(dir)
	}
	n.releaseHeldIfReady()
}

// openLog gives partition i of t its log: the one recovered from its
// directory at boot, when that directory is this topic's (the topic id it
// records matches, or it records none, being older than the record), else
// a new one, after removing a directory left by an older topic of the
// same name (on the same lane, so the removal runs first).
func (n *Node) openLog(t *topic, i int32) *partition {
	dir := partitionDir(t.name, i)
	if pooled := n.pool[dir]; pooled != nil {
		if pooled.topic.id == ([16]byte{}) || pooled.topic.id == t.id {
			delete(n.pool, dir)
			pooled.topic, pooled.index = t, i
			t.partitions[i] = pooled
			return pooled
		}
		n.log.Info("removing the directory of a deleted topic of the same name", "dir", dir)
		n.removePooled(dir)
	}
	p := t.partitions[i]
	l, ops := partlog.New(dir, logConfig(t.cfg))
	p.log = l
	n.issue(p, ops)
	n.issue(p, []partlog.Op{
		{DiskOp: port.DiskOp{Kind: port.OpWrite, Lane: dir, Path: dir + "/" + partitionMetadataFile, Data: partitionMetadata(t.id)}},
		{DiskOp: port.DiskOp{Kind: port.OpSync, Lane: dir, Path: dir + "/" + partitionMetadataFile}},
		{DiskOp: port.DiskOp{Kind: port.OpSyncDir, Lane: dir, Path: dir}},
	})
	return p
}

// removePooled deletes a recovered directory nothing owns.
func (n *Node) removePooled(dir string) {
	p := n.pool[dir]
	delete(n.pool, dir)
	n.issue(p, p.log.Remove())
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
			n.dropReplica(p, kerr.UnknownTopicOrPartition)
		}
	}
}

// dropReplica ends this node's part in p and removes its log; produces
// waiting on it are answered err (a removed log syncs nothing more, so
// they would never be).
func (n *Node) dropReplica(p *partition, err *kerr.Error) {
	if p.lead != nil {
		n.resign(p)
	}
	p.follow = nil
	n.dropProduces(p, err)
	n.issue(p, p.log.Remove())
}

// updateRole makes p's leadership follow the image: this node leads it in
// the image's leader epoch, follows the image's leader, or neither.
func (n *Node) updateRole(p *partition) {
	settleAlter(p)
	leads := p.state.Leader == n.cluster.self
	if p.lead != nil && (!leads || p.lead.epoch != p.state.LeaderEpoch) {
		n.resign(p)
	}
	if fs := p.follow; fs != nil && (fs.leader != p.state.Leader || fs.epoch != p.state.LeaderEpoch) {
		p.follow = nil
	}
	switch {
	case leads && p.lead == nil:
		n.becomeLeader(p)
	case !leads && p.state.Leader >= 0 && p.follow == nil:
		n.becomeFollower(p)
	}
	if p.lead != nil {
		p.lead.syncFollowers(p.state.Replicas, n.cluster.self, n.now.MonoNs)
		// The ISR may have shrunk: the high watermark may move.
		n.partitionAdvanced(p)
		n.maybeDropRemoving(p)
	}
}

// resign ends this node's leadership of p: what waits on it as leader is
// answered NOT_LEADER_OR_FOLLOWER, and the fetches waiting on it see the
// change.
func (n *Node) resign(p *partition) {
	p.lead = nil
	n.unloadCoordinator(p)
	n.dropProduces(p, kerr.NotLeaderForPartition)
	n.wakeFetches(p)
	n.wakeReplicaFetches(p)
}

package group

import (
	"cmp"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/bugs"
)

// OffsetCommit handles an OffsetCommit request (v2-v9 fields). The commit
// is written to __consumer_offsets and answered once it is committed there
// (replicated like acks=all); only then do later OffsetFetch requests see
// it. A failed write answers every partition with the host's error (the
// commit may or may not have taken effect).
//
// Checks follow Kafka: a group this coordinator does not serve gets the
// host's error (an empty group id is a valid one here, as in Kafka); a partition that does not exist gets
// UNKNOWN_TOPIC_OR_PARTITION whatever else happens; then the group decides
// for the rest (a member's commit must carry its id and the current
// generation; a commit with generation -1 and no member id, a "simple"
// commit, is allowed only while the group is Empty, and creates the group
// if there is none; during CompletingRebalance every commit gets
// REBALANCE_IN_PROGRESS; a KIP-848 consumer group checks member id and
// epoch instead, see consumerCommitCheck); then each partition's metadata
// must fit offset.metadata.max.bytes.
func (c *Coordinator) OffsetCommit(nowNs int64, req *kmsg.OffsetCommitRequest, reply func(*kmsg.OffsetCommitResponse)) {
	c.begin(nowNs)
	defer c.end()
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	owned := c.writable(req.Group)
	valid := 0
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case owned != nil:
				rp.ErrorCode = owned.Code
			case !c.host.Exists(t.Topic, p.Partition):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				valid++
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if valid == 0 {
		reply(resp)
		return
	}
	g, err := c.commitGroup(req)
	var partitionErr func(string, int32) *kerr.Error
	if err == nil && g.cg != nil {
		err, partitionErr = consumerCommitCheck(g.cg, req, c.topicID)
	}
	type commit struct {
		rp *kmsg.OffsetCommitResponseTopicPartition
		tp topicPartition
		o  committed
	}
	var commits []commit
	var recs []Record
	wallMs := c.host.WallMs()
	for ti, t := range req.Topics {
		for pi, p := range t.Partitions {
			rp := &resp.Topics[ti].Partitions[pi]
			if rp.ErrorCode != 0 {
				continue
			}
			if err != nil {
				rp.ErrorCode = err.Code
				continue
			}
			if partitionErr != nil {
				if perr := partitionErr(t.Topic, p.Partition); perr != nil {
					rp.ErrorCode = perr.Code
					continue
				}
			}
			md := ""
			if p.Metadata != nil {
				md = *p.Metadata
			}
			if len(md) > int(c.cfg.OffsetMetadataMaxBytes) {
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			o := committed{offset: p.Offset, leaderEpoch: -1, metadata: md, commitNs: c.nowNs}
			if req.Version >= 6 {
				o.leaderEpoch = p.LeaderEpoch
			}
			expireMs := int64(-1)
			if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis >= 0 {
				o.expireNs = c.nowNs + req.RetentionTimeMillis*msNs
				expireMs = wallMs + req.RetentionTimeMillis
			}
			tp := topicPartition{t.Topic, p.Partition}
			commits = append(commits, commit{rp, tp, o})
			recs = append(recs, offsetRecord(g.id, tp, o, wallMs, expireMs))
		}
	}
	if len(recs) == 0 {
		reply(resp)
		return
	}
	for _, cm := range commits {
		g.pendingCommits = append(g.pendingCommits, cm.tp)
	}
	c.host.Append(g.id, recs, func(nowNs int64, werr *kerr.Error) {
		c.begin(nowNs)
		defer c.end()
		for _, cm := range commits {
			if i := slices.Index(g.pendingCommits, cm.tp); i >= 0 {
				g.pendingCommits = slices.Delete(g.pendingCommits, i, i+1)
			}
			switch {
			case werr != nil:
				cm.rp.ErrorCode = werr.Code
			case !g.deleted:
				// A group deleted meanwhile buried this commit with
				// its tombstones: it is not applied.
				g.offsets[cm.tp] = cm.o
			}
		}
		reply(resp)
	})
}

// commitGroup finds the group a commit goes to and checks the committer
// against a classic group, as Kafka's validateOffsetCommit (a KIP-848
// group's check is consumerCommitCheck).
func (c *Coordinator) commitGroup(req *kmsg.OffsetCommitRequest) (*group, *kerr.Error) {
	g := c.getOrCreate(req.Group, false)
	if g != nil && g.cg != nil {
		return g, nil
	}
	if g == nil {
		if req.Generation >= 0 {
			// A member of a group that no longer exists.
			if req.Version >= 9 {
				return nil, kerr.GroupIDNotFound
			}
			return nil, kerr.IllegalGeneration
		}
		// Offsets without group management: a simple group.
		return c.getOrCreate(req.Group, true), nil
	}
	if req.Generation < 0 && g.state == Empty {
		return g, nil
	}
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		if err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
			return nil, err
		}
		if req.Generation != g.generation && !(bugs.On(bugs.StaleGenerationCommit) && req.Generation < g.generation) {
			return nil, kerr.IllegalGeneration
		}
	} else if g.state != Empty {
		// Only members may commit for a group with members.
		return nil, kerr.UnknownMemberID
	}
	switch g.state {
	case CompletingRebalance:
		// The member knows the new generation but not its assignment yet.
		return nil, kerr.RebalanceInProgress
	case Stable, PreparingRebalance:
		// A commit proves the member alive, as a heartbeat does; during
		// PreparingRebalance the next heartbeat tells it to rejoin.
		if m := g.byID[req.MemberID]; m != nil {
			m.deadlineNs = c.nowNs + int64(m.sessionTimeoutMs)*msNs
		}
	}
	return g, nil
}

// topicID is the id of a topic clients see, by name.
func (c *Coordinator) topicID(name string) (topicID, bool) {
	t, ok := c.host.Topic(name)
	return t.ID, ok
}

// OffsetFetch handles an OffsetFetch request: one group for v0-v7, a batch
// of groups for v8+. A group this coordinator does not serve gets the
// host's error (per group from v8). It answers from committed state only:
// a commit still being written is not seen. Null topics (v2+) ask for every committed partition,
// sorted by topic and partition. A partition without a commit, or a group
// that does not exist, gets offset -1 and no error, as in Kafka. The
// KIP-848 member id and epoch of v9 are checked for consumer groups (see
// consumerFetchCheck) and ignored for classic groups, as Kafka does;
// RequireStable has nothing to wait for without transactions.
func (c *Coordinator) OffsetFetch(nowNs int64, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	c.begin(nowNs)
	defer c.end()
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			var topics []fetchTopic
			all := rg.Topics == nil
			for _, t := range rg.Topics {
				topics = append(topics, fetchTopic{t.Topic, t.Partitions})
			}
			fg := kmsg.NewOffsetFetchResponseGroup()
			fg.Group = rg.Group
			err := c.host.Owns(rg.Group)
			if err == nil {
				err = c.consumerFetchCheck(rg)
			}
			if err != nil {
				fg.ErrorCode = err.Code
				resp.Groups = append(resp.Groups, fg)
				continue
			}
			for _, ft := range c.fetchOffsets(rg.Group, all, topics) {
				gt := kmsg.NewOffsetFetchResponseGroupTopic()
				gt.Topic = ft.topic
				for _, p := range ft.parts {
					gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata = p.partition, p.offset, p.leaderEpoch, p.metadata
					gt.Partitions = append(gt.Partitions, gp)
				}
				fg.Topics = append(fg.Topics, gt)
			}
			resp.Groups = append(resp.Groups, fg)
		}
		return resp
	}
	if err := c.host.Owns(req.Group); err != nil {
		// v0 and v1 have no top-level error: each partition carries it.
		resp.ErrorCode = err.Code
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.ErrorCode = p, -1, err.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	var topics []fetchTopic
	all := req.Topics == nil && req.Version >= 2
	for _, t := range req.Topics {
		topics = append(topics, fetchTopic{t.Topic, t.Partitions})
	}
	for _, ft := range c.fetchOffsets(req.Group, all, topics) {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = ft.topic
		for _, p := range ft.parts {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.partition, p.offset, p.leaderEpoch, p.metadata
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

type fetchTopic struct {
	topic string
	parts []int32
}

type fetchedTopic struct {
	topic string
	parts []fetchedPartition
}

type fetchedPartition struct {
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    *string
}

func (c *Coordinator) fetchOffsets(groupID string, all bool, topics []fetchTopic) []fetchedTopic {
	g := c.groups[groupID]
	get := func(topic string, p int32) fetchedPartition {
		if g != nil {
			if o, ok := g.offsets[topicPartition{topic, p}]; ok {
				md := o.metadata
				return fetchedPartition{p, o.offset, o.leaderEpoch, &md}
			}
		}
		md := ""
		return fetchedPartition{p, -1, -1, &md}
	}
	var out []fetchedTopic
	if !all {
		for _, t := range topics {
			ft := fetchedTopic{topic: t.topic}
			for _, p := range t.parts {
				ft.parts = append(ft.parts, get(t.topic, p))
			}
			out = append(out, ft)
		}
		return out
	}
	if g == nil {
		return nil
	}
	for _, tp := range g.sortedOffsets() {
		if len(out) == 0 || out[len(out)-1].topic != tp.topic {
			out = append(out, fetchedTopic{topic: tp.topic})
		}
		last := &out[len(out)-1]
		last.parts = append(last.parts, get(tp.topic, tp.partition))
	}
	return out
}

// sortedOffsets lists the group's committed partitions by topic and
// partition.
func (g *group) sortedOffsets() []topicPartition {
	tps := make([]topicPartition, 0, len(g.offsets))
	for tp := range g.offsets {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b topicPartition) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		return cmp.Compare(a.partition, b.partition)
	})
	return tps
}

// DeleteTopicOffsets forgets every group's committed offsets of a deleted
// topic, as Kafka does when a topic goes: a topic created later under the
// same name must not resume from offsets of the old one. Empty groups left
// without offsets go at the next sweep.
func (c *Coordinator) DeleteTopicOffsets(nowNs int64, topic string) {
	c.begin(nowNs)
	defer c.end()
	for _, id := range c.sortedIDs() {
		g := c.groups[id]
		var tombstones []Record
		for _, tp := range g.sortedOffsets() {
			if tp.topic == topic {
				delete(g.offsets, tp)
				tombstones = append(tombstones, offsetTombstone(g.id, tp))
			}
		}
		if len(tombstones) > 0 {
			c.persist(g.id, tombstones)
		}
	}
}

// OffsetDelete handles an OffsetDelete request (KIP-496), as Kafka's
// handleDeleteOffsets: the group must exist; an Empty group loses any
// offset asked for; a consumer group with members keeps the offsets of
// topics a member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC) and loses the
// others; any other group with members answers NON_EMPTY_GROUP. exists
// has already weeded out partitions that do not exist (their codes are
// set). As in Kafka 4's group coordinator, the answer waits until
// the tombstones are committed, and only then do the offsets leave memory:
// no read sees a deletion a failover could undo. A failed write answers
// its error for the partitions it concerned (the deletion may still take
// effect). reply is called once.
func (c *Coordinator) OffsetDelete(nowNs int64, req *kmsg.OffsetDeleteRequest, resp *kmsg.OffsetDeleteResponse, reply func(*kmsg.OffsetDeleteResponse)) {
	c.begin(nowNs)
	defer c.end()
	if err := c.writable(req.Group); err != nil {
		resp.ErrorCode = err.Code
		reply(resp)
		return
	}
	g := c.groups[req.Group]
	switch {
	case g == nil:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		reply(resp)
		return
	case !g.empty() && g.protocolType != "consumer" && g.cg == nil:
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		reply(resp)
		return
	}
	type deletion struct {
		rp *kmsg.OffsetDeleteResponseTopicPartition
		tp topicPartition
	}
	var deletions []deletion
	var tombstones []Record
	for ti := range resp.Topics {
		rt := &resp.Topics[ti]
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			if rp.ErrorCode != 0 {
				continue
			}
			if !g.empty() && g.subscribedTo(rt.Topic) {
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
				continue
			}
			tp := topicPartition{rt.Topic, rp.Partition}
			if _, ok := g.offsets[tp]; ok {
				deletions = append(deletions, deletion{rp, tp})
				tombstones = append(tombstones, offsetTombstone(g.id, tp))
			}
		}
	}
	if len(tombstones) == 0 {
		reply(resp)
		return
	}
	c.log.Info("deleting committed offsets", "group", g.id, "count", len(tombstones))
	c.host.Append(g.id, tombstones, func(nowNs int64, werr *kerr.Error) {
		c.begin(nowNs)
		defer c.end()
		for _, d := range deletions {
			if werr != nil {
				d.rp.ErrorCode = werr.Code
				continue
			}
			// Writes commit in log order: a commit of this partition
			// acknowledged meanwhile was written before the tombstone,
			// and one written after it is applied when it commits.
			delete(g.offsets, d.tp)
		}
		reply(resp)
	})
}

// subscribedTo reports whether a member subscribes to topic, from the
// members' consumer protocol metadata for the selected protocol (Kafka's
// ConsumerProtocol). A consumer group whose subscriptions are unknown (no
// protocol selected yet, or metadata that does not decode) counts as
// subscribed to every topic, as in Kafka (ClassicGroup.isSubscribedToTopic):
// deleting offsets a member may be using would send it back to its reset
// policy.
func (g *group) subscribedTo(topic string) bool {
	if g.cg != nil {
		for _, m := range g.cg.members {
			if slices.Contains(g.cg.subscribedNames(m), topic) {
				return true
			}
		}
		return false
	}
	if g.protocolType != "consumer" {
		return false
	}
	if g.protocol == nil {
		return true
	}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadata(*g.protocol)); err != nil || slices.Contains(md.Topics, topic) {
			return true
		}
	}
	return false
}

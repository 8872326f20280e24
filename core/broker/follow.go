package broker

// The follower's side of replication, as Kafka's replica fetcher does it,
// with one rule of Weir's own: a follower fetches only once everything it
// appended is fsynced, so the fetch offset it reports to the leader (which
// counts it towards the high watermark) is on its disk.
//
// A follower sends Fetch v15 (replica state, last fetched epoch) over the
// cluster transport, at most one in flight per partition, batching the
// partitions of one leader that are ready into one request. The answer
// either carries batches, appended as the leader stored them (their CRCs
// checked: a bit flipped on the way is refused, and fetched again), or a
// diverging epoch, and the follower truncates its log to where the logs
// agree before it fetches again (KIP-279 via KIP-595's fetch field).

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/bugs"
	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/record"
)

// followState is a follower's fetching state for one partition.
type followState struct {
	leader port.NodeID
	epoch  int32
	// inflight is the id of the fetch in flight, zero if none; sentNs is
	// when it was sent.
	inflight uint64
	sentNs   int64
	// backoffUntilNs: after an error, the next fetch waits
	// replica.fetch.backoff.ms.
	backoffUntilNs int64
}

// becomeFollower starts following the image's leader of p.
//
// A leadership of this node that wrote nothing left its epoch in the
// epoch cache at the log end, with no batch (see becomeLeader); as a
// follower the log drops it, so that the last fetched epoch it reports is
// its last batch's. Else a node whose disk was lost, which replays the
// metadata log from its start and so passes through leaderships it held
// before, would claim with its empty log an epoch the leader's first
// batches are older than, and refuse them for ever.
func (n *Node) becomeFollower(p *partition) {
	if _, ops := p.log.TruncateTo(p.log.EndOffset()); len(ops) > 0 {
		panic(fmt.Sprintf("broker: %s-%d: truncating to the log end removed data", p.topic.name, p.index))
	}
	p.follow = &followState{leader: p.state.Leader, epoch: p.state.LeaderEpoch}
	p.hw = min(p.hw, p.log.EndOffset())
	n.fetchDue = true
}

// leaderBehindBackoffNs is how long a follower waits before fetching again
// from a leader that does not know yet that it leads.
const leaderBehindBackoffNs = 50e6

// fetchTimeoutNs is how long a replica fetch may go unanswered beyond its
// long poll before it is sent again: cluster messages may be lost.
func (n *Node) fetchTimeoutNs() int64 {
	return int64(n.cfg.ReplicaFetchWaitMaxMs)*1e6 + callTimeoutNs
}

// canFetch reports whether p's next fetch may go now: none in flight, no
// backoff, and everything appended is stable, so the fetch offset (the
// log end) is durable.
func (n *Node) canFetch(p *partition) bool {
	fs := p.follow
	if fs == nil || fs.inflight != 0 || n.now.MonoNs < fs.backoffUntilNs || n.storageErr != nil {
		return false
	}
	return p.log.StableOffset() == p.log.EndOffset() || bugs.On(bugs.FollowerReportsUnsynced)
}

// sendReplicaFetches sends one fetch to each leader for the partitions
// that may fetch now. The node calls it from Ready, after a batch of
// inputs, so partitions that became ready together share a request.
func (n *Node) sendReplicaFetches() {
	if !n.fetchDue {
		return
	}
	n.fetchDue = false
	// Requests go in the order their first partition was met: n.following
	// is in topic and partition order, so the output is deterministic.
	type outgoing struct {
		leader port.NodeID
		id     uint64
		req    *kmsg.FetchRequest
	}
	var reqs []*outgoing
	for _, p := range n.following {
		if !n.canFetch(p) {
			continue
		}
		i := slices.IndexFunc(reqs, func(o *outgoing) bool { return o.leader == p.follow.leader })
		if i < 0 {
			n.nextFetchID++
			reqs = append(reqs, &outgoing{leader: p.follow.leader, id: n.nextFetchID, req: n.newReplicaFetch()})
			i = len(reqs) - 1
		}
		req := reqs[i].req
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch = p.index, p.follow.epoch
		rp.FetchOffset, rp.LastFetchedEpoch = p.log.EndOffset(), p.log.LatestEpoch()
		rp.LogStartOffset, rp.PartitionMaxBytes = p.log.StartOffset(), n.cfg.ReplicaFetchMaxBytes
		if k := len(req.Topics); k > 0 && req.Topics[k-1].TopicID == p.topic.id {
			req.Topics[k-1].Partitions = append(req.Topics[k-1].Partitions, rp)
		} else {
			rt := kmsg.NewFetchRequestTopic()
			rt.TopicID, rt.Partitions = p.topic.id, []kmsg.FetchRequestTopicPartition{rp}
			req.Topics = append(req.Topics, rt)
		}
		p.follow.inflight, p.follow.sentNs = reqs[i].id, n.now.MonoNs
		n.followCheckAt(n.now.MonoNs + n.fetchTimeoutNs())
	}
	for _, o := range reqs {
		b := binary.BigEndian.AppendUint64([]byte{peerFetchReq}, o.id)
		n.emit(port.SendPeer{To: o.leader, Data: o.req.AppendTo(b)})
	}
}

func (n *Node) newReplicaFetch() *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(replicaFetchVersion)
	req.ReplicaState.ID, req.ReplicaState.Epoch = int32(n.cluster.self), n.cluster.reg.epoch
	req.MaxWaitMillis, req.MinBytes = n.cfg.ReplicaFetchWaitMaxMs, n.cfg.ReplicaFetchMinBytes
	req.MaxBytes, req.SessionEpoch = n.cfg.ReplicaFetchResponseMaxBytes, -1
	return req
}

// expireReplicaFetches forgets fetches unanswered for too long and lets
// backed-off partitions fetch again. It returns the next time it has work.
func (n *Node) expireReplicaFetches() int64 {
	next := int64(0)
	later := func(at int64) {
		if next == 0 || at < next {
			next = at
		}
	}
	for _, p := range n.following {
		fs := p.follow
		switch {
		case fs.inflight != 0 && n.now.MonoNs >= fs.sentNs+n.fetchTimeoutNs():
			fs.inflight = 0
			n.fetchDue = true
		case fs.inflight != 0:
			later(fs.sentNs + n.fetchTimeoutNs())
		case n.now.MonoNs < fs.backoffUntilNs:
			later(fs.backoffUntilNs)
		case fs.backoffUntilNs > 0:
			fs.backoffUntilNs = 0
			n.fetchDue = true
		}
	}
	return next
}

// followCheckAt asks expireReplicaFetches to run by at.
func (n *Node) followCheckAt(at int64) {
	if n.followCheckNs == 0 || at < n.followCheckNs {
		n.followCheckNs = at
	}
}

// replicaFetched handles a leader's answer to this node's fetch. Each
// partition is taken only from the fetch it is waiting on; an answer to an
// older one, or from a leader it no longer follows, is ignored.
func (n *Node) replicaFetched(from port.NodeID, body []byte) {
	resp := kmsg.NewPtrFetchResponse()
	id, err := decodeReplicaMessage(body, resp)
	if err != nil {
		n.log.Warn("dropping a malformed replica fetch response", "from", from, "err", err)
		return
	}
	for _, rt := range resp.Topics {
		t := n.topics.visibleByID(rt.TopicID)
		if t == nil {
			continue
		}
		for _, rp := range rt.Partitions {
			p := t.partition(rp.Partition)
			if p == nil || p.follow == nil || p.follow.inflight != id || p.follow.leader != from {
				continue
			}
			p.follow.inflight = 0
			n.fetchDue = true
			n.fetchedPartition(p, &rp)
		}
	}
}

func (n *Node) fetchedPartition(p *partition, rp *kmsg.FetchResponseTopicPartition) {
	switch err := kerr.ErrorForCode(rp.ErrorCode); {
	case err == nil && rp.DivergingEpoch.EndOffset >= 0:
		n.truncateDiverged(p, rp.DivergingEpoch)
	case err == nil:
		n.appendFetched(p, rp)
	case err == kerr.OffsetOutOfRange && rp.LogStartOffset > p.log.EndOffset():
		// The leader's retention removed what this follower would fetch
		// next: start over at the leader's log start, as Kafka's
		// truncateFullyAndStartAt.
		n.log.Info("follower fell behind the leader's log start; starting over there",
			"topic", p.topic.name, "partition", p.index, "end", p.log.EndOffset(), "leader_start", rp.LogStartOffset)
		n.issue(p, p.log.ResetTo(rp.LogStartOffset))
		p.hw = p.log.EndOffset()
	case err == kerr.OffsetOutOfRange && rp.HighWatermark >= 0 && rp.HighWatermark < p.log.EndOffset():
		// This log runs past the leader's with no epoch to compare (an
		// unclean election, or a log that has none): keep only what the
		// leader has committed.
		n.truncate(p, rp.HighWatermark)
	default:
		backoffNs := int64(n.cfg.ReplicaFetchBackoffMs) * 1e6
		switch err {
		case kerr.UnknownTopicID, kerr.UnknownTopicOrPartition, kerr.NotLeaderForPartition, kerr.UnknownLeaderEpoch:
			// The leader has not yet replayed the metadata that made it
			// leader (this node has): it will shortly, so the wait is
			// short, not Kafka's full backoff.
			backoffNs = min(backoffNs, leaderBehindBackoffNs)
		}
		p.follow.backoffUntilNs = n.now.MonoNs + backoffNs
		n.followCheckAt(p.follow.backoffUntilNs)
	}
	if rp.HighWatermark >= 0 {
		p.hw = min(rp.HighWatermark, p.log.EndOffset())
	}
}

// truncateDiverged cuts the log where the leader says it diverges, as
// Kafka's getOffsetTruncationState: to the end of the diverging epoch on
// both sides. When this log does not have that epoch, it is cut to the end
// of the largest epoch it has below it, and the next fetch compares again.
func (n *Node) truncateDiverged(p *partition, div kmsg.FetchResponseTopicPartitionDivergingEpoch) {
	end := p.log.EndOffset()
	to := min(div.EndOffset, end)
	if div.Epoch >= 0 {
		if epoch, off := p.log.EndOffsetForEpoch(div.Epoch, end); epoch == div.Epoch {
			to = min(off, to)
		} else if epoch >= 0 {
			to = min(off, end)
		}
	}
	n.truncate(p, to)
}

func (n *Node) truncate(p *partition, to int64) {
	if bugs.On(bugs.NoTruncation) {
		return
	}
	from := p.log.EndOffset()
	newEnd, ops := p.log.TruncateTo(to)
	n.log.Info("follower truncating a diverged log", "topic", p.topic.name, "partition", p.index,
		"from", from, "to", newEnd)
	n.issue(p, ops)
	p.hw = min(p.hw, newEnd)
	p.lastStable = min(p.lastStable, p.log.StableOffset())
}

// appendFetched appends the batches of a fetch response. A batch whose CRC
// fails, or that does not start at the log end, ends the append: the rest
// is fetched again.
func (n *Node) appendFetched(p *partition, rp *kmsg.FetchResponseTopicPartition) {
	data := rp.RecordBatches
	appended := false
	for len(data) > 0 {
		h, size, err := record.ScanOne(data)
		if err != nil {
			n.log.Warn("follower refusing a fetched batch", "topic", p.topic.name, "partition", p.index, "err", err)
			break
		}
		if h.BaseOffset != p.log.EndOffset() {
			if h.LastOffset() < p.log.EndOffset() {
				data = data[size:]
				continue // already held (a batch the read began inside)
			}
			n.log.Warn("follower refusing a fetched batch at the wrong offset", "topic", p.topic.name,
				"partition", p.index, "base", h.BaseOffset, "end", p.log.EndOffset())
			break
		}
		res, err := p.log.AppendReplica(data[:size], h)
		if err != nil {
			n.log.Warn("follower refusing a fetched batch", "topic", p.topic.name, "partition", p.index, "err", err)
			break
		}
		n.issue(p, res.Ops)
		appended = true
		data = data[size:]
	}
	if appended {
		n.queueSync(p)
	}
}

// followingPartitions lists the partitions this node follows, in topic and
// partition order.
func (n *Node) followingPartitions() []*partition {
	var out []*partition
	for _, t := range n.topics.sorted {
		for _, p := range t.partitions {
			if p.follow != nil {
				out = append(out, p)
			}
		}
	}
	return out
}

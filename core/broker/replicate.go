package broker

// The leader's side of replication, as Kafka's Partition does it: followers
// fetch with the real Fetch protocol (replica state set), the leader tracks
// what each has, keeps the ISR through the controller (AlterPartition) and
// advances the high watermark.
//
// What a follower's fetch offset means is where Weir is stricter than
// Kafka: a follower fetches from the end of what it has fsynced, so the
// offset it reports is durable on its disk (follow.go). The high watermark
// is the least of those offsets over the ISR and the leader's own stable
// offset, so everything below it survives the loss of any ISR member's
// unsynced data: the case KIP-966 fixes in Kafka (the last replica of the
// ISR to restart lost acknowledged records it held in its page cache) does
// not arise, because no acknowledged record is only in a page cache.
//
// The ISR the high watermark is computed over is the maximal one (KIP-497):
// the committed ISR plus members an AlterPartition in flight adds. The
// controller elects from the committed ISR, and a member it drops
// (fencing) was counted until then.
//
// The high watermark moves only while the committed ISR has at least
// min.insync.replicas members (at most the replica count; KIP-966), so
// every committed record is on that many disks, and a member that leaves
// an ISR smaller than that holds every record committed when it left,
// and after: none is. The controller keeps those members as eligible
// leaders (the ELR) and elects one when no ISR member can lead, so every
// replica that can be elected holds every record below the high
// watermark, and losing fewer than min.insync.replicas whole disks loses
// none of them.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/bugs"
	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/partlog"
	"github.com/weirmq/weir/core/port"
)

// replicaFetchVersion is the Fetch version replicas speak: v15 carries the
// follower's broker epoch in ReplicaState (KIP-903) and names topics by id.
const replicaFetchVersion = 15

// alterPartitionVersion sends new ISRs with broker epochs (KIP-903).
const alterPartitionVersion = 3

// leadState is what a partition's leader tracks while it leads in one
// leader epoch.
type leadState struct {
	epoch int32
	// epochStart is the log end when this node took the lead: every record
	// acknowledged in earlier epochs lies below it. Until the high
	// watermark reaches it, clients are told offsets are not available
	// rather than shown a high watermark below records already
	// acknowledged (as Kafka does for ListOffsets, KIP-207).
	epochStart int64
	// followers are the other replicas, by id.
	followers []*replicaState
	// alter is an AlterPartition this leader sent whose outcome the image
	// does not show yet.
	alter *pendingAlter
}

// replicaState is what the leader knows of one follower.
type replicaState struct {
	id port.NodeID
	// brokerEpoch is the follower's broker epoch from its fetches, sent
	// with an ISR expansion so the controller can refuse a stale one.
	brokerEpoch int64
	// offset is the follower's last fetch offset: the end of what it has
	// durably. -1 until it fetches in this epoch.
	offset int64
	// lastFetchNs and endAtLastFetch: when it last fetched and the
	// leader's log end then; lastCaughtUpNs: the last time it had all the
	// leader had (Kafka's lastCaughtUpTimeMs, the ISR shrink criterion).
	lastFetchNs    int64
	endAtLastFetch int64
	lastCaughtUpNs int64
}

// pendingAlter is an ISR change sent to the controller.
type pendingAlter struct {
	isr []port.NodeID
	// basedOn is the partition epoch the change was made from; once the
	// image moves past it, the change either committed or never will.
	basedOn int32
	// retryAtNs: the outcome was unknown (timeout, no controller); the
	// same request is sent again then. Zero while one is in flight.
	retryAtNs int64
}

func (ls *leadState) follower(id port.NodeID) *replicaState {
	for _, f := range ls.followers {
		if f.id == id {
			return f
		}
	}
	return nil
}

// becomeLeader starts leading p in the image's current leader epoch.
func (n *Node) becomeLeader(p *partition) {
	ls := &leadState{epoch: p.state.LeaderEpoch, epochStart: p.log.EndOffset()}
	// Followers start as caught up now, as in Kafka, so none is shrunk
	// out before it had a chance to fetch.
	ls.syncFollowers(p.state.Replicas, n.cluster.self, n.now.MonoNs)
	// The epoch's start goes in the epoch cache now, as Kafka's
	// assignEpochStartOffset: a follower whose last batch is of an older
	// epoch learns where that epoch ends here even before this leader
	// appends anything.
	p.log.StartEpoch(ls.epoch)
	p.lead = ls
	p.hw = min(max(p.hw, p.log.StartOffset()), p.log.EndOffset())
	n.log.Debug("leading", "topic", p.topic.name, "partition", p.index, "epoch", ls.epoch,
		"epoch_start", ls.epochStart, "hw", p.hw)
}

// maximalISR is the committed ISR plus members an alter in flight adds.
func (p *partition) maximalISR() []port.NodeID {
	isr := p.state.ISR
	if a := p.lead.alter; a != nil {
		for _, id := range a.isr {
			if !slices.Contains(isr, id) {
				isr = append(slices.Clone(isr), id)
			}
		}
	}
	return isr
}

// advanceHW moves a leader's high watermark to the least durable end over
// the maximal ISR, while the committed ISR is large enough (see above). It
// never moves back.
func (n *Node) advanceHW(p *partition) {
	if len(p.state.ISR) < p.state.MinISR(p.topic.cfg.MinInsyncReplicas) && !bugs.On(bugs.HWIgnoresMinISR) {
		return
	}
	hw := p.log.StableOffset()
	var buf [8]int64 // no allocation for ISRs of up to 9 replicas
	offsets := buf[:0]
	for _, id := range p.maximalISR() {
		if id == n.cluster.self {
			continue
		}
		f := p.lead.follower(id)
		if f == nil || f.offset < 0 {
			return // a member not heard from in this epoch holds it back
		}
		offsets = append(offsets, f.offset)
	}
	if bugs.On(bugs.HWIgnoresLaggard) && len(offsets) > 0 {
		slices.Sort(offsets)
		offsets = offsets[1:]
	}
	for _, off := range offsets {
		hw = min(hw, off)
	}
	p.hw = max(p.hw, hw)
}

// servingEnd is where a leader's reads stop, and false while its high
// watermark is still below its epoch start.
func servingEnd(p *partition) (int64, bool) {
	if bugs.On(bugs.FetchUnsynced) {
		return p.log.WrittenOffset(), true
	}
	return p.hw, p.hw >= p.lead.epochStart
}

// decodeReplicaMessage reads a replica fetch or its response, after its
// envelope kind: a fetch id, then the message at replicaFetchVersion.
func decodeReplicaMessage(body []byte, m interface {
	SetVersion(int16)
	ReadFrom([]byte) error
}) (uint64, error) {
	if len(body) < 8 {
		return 0, errors.New("replica fetch message shorter than its id")
	}
	m.SetVersion(replicaFetchVersion)
	return binary.BigEndian.Uint64(body), m.ReadFrom(body[8:])
}

// pendingReplicaFetch is a follower's fetch waiting at the leader.
type pendingReplicaFetch struct {
	from           port.NodeID
	id             uint64
	req            *kmsg.FetchRequest
	deadlineMonoNs int64
}

// replicaFetch handles a follower's fetch: it records what the follower
// has, which may move the ISR and the high watermark, and answers with
// what comes next, long-polling for it up to max_wait_ms.
func (n *Node) replicaFetch(from port.NodeID, body []byte) {
	req := kmsg.NewPtrFetchRequest()
	id, err := decodeReplicaMessage(body, req)
	if err == nil && req.ReplicaState.ID != int32(from) {
		err = fmt.Errorf("replica id %d sent by node %d", req.ReplicaState.ID, from)
	}
	if err != nil {
		n.log.Warn("dropping a malformed replica fetch", "from", from, "err", err)
		return
	}
	f := &pendingReplicaFetch{from: from, id: id, req: req,
		deadlineMonoNs: n.now.MonoNs + int64(max(req.MaxWaitMillis, 0))*1e6}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if p, err, div := n.checkReplicaFetch(from, rt.TopicID, rp); err == nil && div.EndOffset < 0 {
				n.followerFetched(p, from, req.ReplicaState.Epoch, rp.FetchOffset)
			}
		}
	}
	if req.MaxWaitMillis <= 0 || n.replicaFetchReady(f) {
		n.answerReplicaFetch(f)
		return
	}
	n.replicaFetches = append(n.replicaFetches, f)
}

// checkReplicaFetch resolves one partition of a follower's fetch: the
// partition, if this node leads it, and the error or the diverging epoch
// (EndOffset ≥ 0) to answer with. With neither, the fetch is consistent
// with the leader's log and says what the follower has.
func (n *Node) checkReplicaFetch(from port.NodeID, topicID [16]byte, rp kmsg.FetchRequestTopicPartition) (*partition, *kerr.Error, kmsg.FetchResponseTopicPartitionDivergingEpoch) {
	div := kmsg.NewFetchResponseTopicPartitionDivergingEpoch()
	p, err := n.led(n.topics.visibleByID(topicID), rp.Partition, rp.CurrentLeaderEpoch)
	if err == nil && !slices.Contains(p.state.Replicas, from) {
		err = kerr.NotLeaderForPartition
	}
	if err != nil {
		return nil, err, div
	}
	// The follower's last batch is of epoch LastFetchedEpoch and its log
	// ends at FetchOffset. If this log's end for that epoch is earlier,
	// or it has no such epoch, the logs diverge there (KIP-595's fetch
	// variant of KIP-279): the follower must truncate first.
	if rp.LastFetchedEpoch >= 0 && !bugs.On(bugs.NoDivergenceCheck) {
		epoch, end := p.log.EndOffsetForEpoch(rp.LastFetchedEpoch, p.log.EndOffset())
		if epoch != rp.LastFetchedEpoch || end < rp.FetchOffset {
			div.Epoch, div.EndOffset = epoch, end
			if epoch < 0 {
				// No epoch of this log is as old: only an unclean
				// election leaves such a follower. It keeps what is
				// committed, as Kafka's follower does without epochs.
				div.EndOffset = p.hw
			}
			return p, nil, div
		}
	}
	if rp.FetchOffset < p.log.StartOffset() || rp.FetchOffset > p.log.EndOffset() {
		return p, kerr.OffsetOutOfRange, div
	}
	return p, nil, div
}

// followerFetched records that follower id has p durably up to offset.
func (n *Node) followerFetched(p *partition, id port.NodeID, brokerEpoch, offset int64) {
	f := p.lead.follower(id)
	if f == nil {
		return
	}
	now, end := n.now.MonoNs, p.log.EndOffset()
	switch {
	case offset >= end:
		f.lastCaughtUpNs = now
	case offset >= f.endAtLastFetch && f.lastFetchNs > 0:
		f.lastCaughtUpNs = max(f.lastCaughtUpNs, f.lastFetchNs)
	}
	f.offset, f.brokerEpoch, f.lastFetchNs, f.endAtLastFetch = offset, brokerEpoch, now, end
	n.maybeExpandISR(p, f)
	n.maybeDropRemoving(p)
	n.partitionAdvanced(p)
}

// replicaFetchReady: some partition has an error, a divergence or data.
func (n *Node) replicaFetchReady(f *pendingReplicaFetch) bool {
	for _, rt := range f.req.Topics {
		for _, rp := range rt.Partitions {
			p, err, div := n.checkReplicaFetch(f.from, rt.TopicID, rp)
			if err != nil || div.EndOffset >= 0 || p.log.StableOffset() > rp.FetchOffset {
				return true
			}
		}
	}
	return false
}

// answerReplicaFetch sends the follower its records, by file range like a
// consumer fetch, up to the leader's stable offset. Kafka sends what is
// only written; Weir waits for the leader's own fsync, so a follower never
// holds records the leader's disk may lose, and the file ranges named are
// durable (after a failed fsync, unsynced pages may read back as nothing).
func (n *Node) answerReplicaFetch(f *pendingReplicaFetch) {
	resp := f.req.ResponseKind().(*kmsg.FetchResponse)
	resp.SetVersion(replicaFetchVersion)
	remaining := int64(min(f.req.MaxBytes, n.cfg.ReplicaFetchResponseMaxBytes))
	markers := fetchMarkers{nonce: n.rnd.Uint64()}
	var slices []partlog.Slice
	for _, rt := range f.req.Topics {
		out := kmsg.NewFetchResponseTopic()
		out.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			op := kmsg.NewFetchResponseTopicPartition()
			op.Partition = rp.Partition
			op.HighWatermark, op.LastStableOffset, op.LogStartOffset = -1, -1, -1
			op.RecordBatches = []byte{}
			p, err, div := n.checkReplicaFetch(f.from, rt.TopicID, rp)
			if p != nil {
				op.HighWatermark, op.LastStableOffset, op.LogStartOffset = p.hw, p.hw, p.log.StartOffset()
			}
			switch {
			case err != nil:
				op.ErrorCode = err.Code
			case div.EndOffset >= 0:
				op.DivergingEpoch = div
			default:
				sl, rerr := p.log.Read(rp.FetchOffset, min(int64(rp.PartitionMaxBytes), remaining), p.log.StableOffset(), len(slices) == 0)
				if rerr == nil && sl.Len > 0 {
					remaining -= sl.Len
					op.RecordBatches = markers.marker(len(slices))
					slices = append(slices, sl)
				}
			}
			out.Partitions = append(out.Partitions, op)
		}
		resp.Topics = append(resp.Topics, out)
	}
	// spliceFiles works on a framed message: a 4-byte size it fills in,
	// which a peer message does not have, so it is cut off again.
	frame := binary.BigEndian.AppendUint64([]byte{0, 0, 0, 0, peerFetchResp}, f.id)
	chunks := markers.spliceFiles(resp.AppendTo(frame), true, slices)
	chunks[0].Bytes = chunks[0].Bytes[4:]
	n.emit(port.SendPeer{To: f.from, Chunks: chunks})
}

// wakeReplicaFetches answers the follower fetches waiting on p.
func (n *Node) wakeReplicaFetches(p *partition) {
	n.replicaFetches = slices.DeleteFunc(n.replicaFetches, func(f *pendingReplicaFetch) bool {
		if !f.includes(p) || !n.replicaFetchReady(f) {
			return false
		}
		n.answerReplicaFetch(f)
		return true
	})
}

func (f *pendingReplicaFetch) includes(p *partition) bool {
	for _, rt := range f.req.Topics {
		if rt.TopicID != p.topic.id {
			continue
		}
		for _, rp := range rt.Partitions {
			if rp.Partition == p.index {
				return true
			}
		}
	}
	return false
}

// maybeExpandISR asks the controller to add follower f to p's ISR once it
// has everything below the high watermark and everything this leader's
// epoch began with (Kafka's isFollowerInSync).
func (n *Node) maybeExpandISR(p *partition, f *replicaState) {
	if p.lead.alter != nil || slices.Contains(p.state.ISR, f.id) {
		return
	}
	if f.offset < p.hw || f.offset < p.lead.epochStart {
		return
	}
	n.alterISR(p, append(slices.Clone(p.state.ISR), f.id))
}

// maybeDropRemoving asks the controller to drop from p's ISR the replicas
// a reassignment removes, once every replica it adds is in the ISR, the
// ISR left has the target's MinISR members, and every one it removes has
// fetched from this leader in its epoch: then none of them still believes
// it leads, and dropping them completes the reassignment (see the
// controller's completeReassignment).
//
// Dropping them any earlier completes nothing: it leaves the ISR too small
// for the high watermark to move, and the replicas dropped, caught up, are
// added back at once. Each such change takes the one AlterPartition this
// leader has in flight, so a target replica that had caught up could lose
// the race to join the ISR for ever (seed 1365).
func (n *Node) maybeDropRemoving(p *partition) {
	st := p.state
	if p.lead.alter != nil || len(st.RemovingReplicas) == 0 {
		return
	}
	var keep []port.NodeID
	for _, id := range st.ISR {
		if !slices.Contains(st.RemovingReplicas, id) {
			keep = append(keep, id)
			continue
		}
		if f := p.lead.follower(id); f == nil || f.offset < 0 {
			return // not heard from in this epoch yet
		}
	}
	for _, id := range st.AddingReplicas {
		if !slices.Contains(st.ISR, id) {
			return
		}
	}
	target := metadata.Partition{Replicas: slices.DeleteFunc(slices.Clone(st.Replicas), func(id port.NodeID) bool {
		return slices.Contains(st.RemovingReplicas, id)
	})}
	if len(keep) < len(st.ISR) && len(keep) >= target.MinISR(p.topic.cfg.MinInsyncReplicas) {
		n.alterISR(p, keep)
	}
}

// shrinkISRs drops from the ISRs this node leads the followers that have
// not caught up for replica.lag.time.max.ms (Kafka's maybeShrinkIsr).
func (n *Node) shrinkISRs() {
	lagNs := n.cfg.ReplicaLagTimeMaxMs * 1e6
	for _, t := range n.topics.sorted {
		for _, p := range t.partitions {
			if p.lead == nil || p.lead.alter != nil {
				continue
			}
			isr := slices.DeleteFunc(slices.Clone(p.state.ISR), func(id port.NodeID) bool {
				f := p.lead.follower(id)
				return f != nil && n.now.MonoNs-f.lastCaughtUpNs > lagNs
			})
			if len(isr) < len(p.state.ISR) {
				n.log.Info("shrinking ISR", "topic", t.name, "partition", p.index, "from", p.state.ISR, "to", isr)
				n.alterISR(p, isr)
			}
		}
	}
}

// alterISR sends the controller an ISR change for p.
func (n *Node) alterISR(p *partition, isr []port.NodeID) {
	slices.Sort(isr)
	p.lead.alter = &pendingAlter{isr: isr, basedOn: p.state.PartitionEpoch}
	n.sendAlter(p)
}

func (n *Node) sendAlter(p *partition) {
	ls, a := p.lead, p.lead.alter
	a.retryAtNs = 0
	req := kmsg.NewPtrAlterPartitionRequest()
	req.SetVersion(alterPartitionVersion)
	req.BrokerID, req.BrokerEpoch = int32(n.cluster.self), n.cluster.reg.epoch
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.TopicID = p.topic.id
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = p.index, ls.epoch, a.basedOn
	for _, id := range a.isr {
		m := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		m.BrokerID, m.BrokerEpoch = int32(id), -1
		if id == n.cluster.self {
			m.BrokerEpoch = n.cluster.reg.epoch
		} else if f := ls.follower(id); f != nil {
			m.BrokerEpoch = f.brokerEpoch
		}
		rp.NewEpochISR = append(rp.NewEpochISR, m)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	n.callController(req, func(r kmsg.Response, err error) {
		if p.lead != ls || ls.alter != a {
			return // leadership moved or the image settled it meanwhile
		}
		if err == nil {
			resp := r.(*kmsg.AlterPartitionResponse)
			err = kerr.ErrorForCode(resp.ErrorCode)
			if err == nil && len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 {
				err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
			}
		}
		switch err {
		case nil, kerr.InvalidUpdateVersion, kerr.NewLeaderElected:
			// Committed (NEW_LEADER_ELECTED: and it completed a
			// reassignment that moved the leadership), or the partition
			// changed first: either way the image will move past
			// basedOn, and reconcile settles it.
		case kerr.IneligibleReplica, kerr.OperationNotAttempted, kerr.InvalidRequest,
			kerr.FencedLeaderEpoch, kerr.NotLeaderForPartition, kerr.UnknownTopicID,
			kerr.UnknownTopicOrPartition, kerr.StaleBrokerEpoch:
			// Refused: nothing was committed; a later check tries again.
			ls.alter = nil
		default:
			// Unknown (timeout, no controller): it may have committed, so
			// the members it adds still count until the same request,
			// sent again, settles it.
			a.retryAtNs = n.now.MonoNs + int64(n.cfg.ReplicaFetchBackoffMs)*1e6
			n.alterRetryAt(a.retryAtNs)
		}
	})
}

// settleAlter drops p's alter once the image moved past the partition
// epoch it was based on.
func settleAlter(p *partition) {
	if p.lead != nil && p.lead.alter != nil && p.state.PartitionEpoch != p.lead.alter.basedOn {
		p.lead.alter = nil
	}
}

// syncFollowers keeps one state per other replica as the assignment
// changes, keeping what is known of those that stay.
func (ls *leadState) syncFollowers(replicas []port.NodeID, self port.NodeID, nowNs int64) {
	var next []*replicaState
	for _, id := range replicas {
		if id == self {
			continue
		}
		f := ls.follower(id)
		if f == nil {
			f = &replicaState{id: id, offset: -1, lastCaughtUpNs: nowNs}
		}
		next = append(next, f)
	}
	ls.followers = next
}

// isrCheckIntervalNs is how often ISRs are checked for laggards: half the
// lag allowed, as Kafka's isr-expiration task.
func (n *Node) isrCheckIntervalNs() int64 { return max(n.cfg.ReplicaLagTimeMaxMs*1e6/2, 1e6) }

// alterRetryAt asks retryAlters to run by at.
func (n *Node) alterRetryAt(at int64) {
	if n.alterRetryNs == 0 || at < n.alterRetryNs {
		n.alterRetryNs = at
	}
}

// retryAlters sends again the ISR changes whose outcome was unknown and
// whose backoff has passed. An answer may come at once (no controller is
// known), and asks for the next retry itself.
func (n *Node) retryAlters() {
	n.alterRetryNs = 0
	for _, t := range n.topics.sorted {
		for _, p := range t.partitions {
			if p.lead == nil || p.lead.alter == nil || p.lead.alter.retryAtNs == 0 {
				continue
			}
			if at := p.lead.alter.retryAtNs; n.now.MonoNs < at {
				n.alterRetryAt(at)
				continue
			}
			n.sendAlter(p)
		}
	}
}

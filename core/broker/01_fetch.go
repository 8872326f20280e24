package broker

// Fetch v4-v16, for consumers.
//
// Long polling: the answer waits up to max_wait_ms until min_bytes are
// available. Limits: max_bytes (capped by fetch.max.bytes) and per-partition
// max bytes, with KIP-74's rule that the first batch of the first non-empty
// partition is sent whole even if larger. Fetch sessions follow KIP-227:
// full and incremental requests, forgotten topics, session epochs, and a
// cache of max.incremental.fetch.session.cache.slots sessions evicted least
// recently used. read_committed sees the same data as read_uncommitted until
// transactions exist. Only records below the high watermark are returned
// (durable on every ISR member), in whole batches from one segment per
// partition, sent by sendfile: the response names file ranges, never
// copies record bytes. A new leader whose high watermark has not yet
// reached the log end it took over answers OFFSET_NOT_AVAILABLE (KIP-392's
// retriable error) rather than a high watermark below records already
// acknowledged. Followers fetch over the cluster transport (follow.go), so
// a replica id here is treated as a consumer. Partition order does not
// rotate between fetches as Kafka's does.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/partlog"
	"github.com/weirmq/weir/core/wire"
)

// pendingFetch is a fetch being answered, possibly after a long poll.
type pendingFetch struct {
	slot    *slot
	req     *kmsg.FetchRequest
	session *fetchSession
	// full: every partition appears in the response (not incremental).
	full           bool
	parts          []*sessionPart
	deadlineMonoNs int64
	// atHead: the slot reached the head of its connection's queue since
	// the fetch was last looked at (see expire).
	atHead bool
}

func (n *Node) handleFetch(s *slot, req *kmsg.FetchRequest) {
	f := &pendingFetch{slot: s, req: req, deadlineMonoNs: n.now.MonoNs + int64(max(req.MaxWaitMillis, 0))*1e6}
	switch {
	case req.SessionEpoch == -1:
		// Sessionless, or closing a session: a full fetch of what was asked.
		if req.SessionID != 0 {
			n.sessions.remove(req.SessionID)
		}
		f.full, f.parts = true, requestParts(req)
	case req.SessionEpoch == 0:
		if req.SessionID != 0 {
			n.sessions.remove(req.SessionID)
		}
		f.full = true
		if f.session = n.createSession(); f.session != nil {
			f.session.update(req)
			f.parts = f.session.parts
		} else {
			f.parts = requestParts(req)
		}
	default:
		sess := n.sessions.get(req.SessionID)
		if sess == nil {
			n.fetchError(s, req, kerr.FetchSessionIDNotFound)
			return
		}
		if sess.nextEpoch != req.SessionEpoch {
			n.fetchError(s, req, kerr.InvalidFetchSessionEpoch)
			return
		}
		sess.nextEpoch = max(sess.nextEpoch+1, 1) // wraps to 1, never 0 or -1
		sess.lastUsed = n.now.MonoNs
		sess.update(req)
		f.session, f.parts = sess, sess.parts
	}
	// An answer names file ranges, so it is made only when it can go out
	// at once: queued behind a produce still waiting, it could name
	// segment files that a removal emitted meanwhile takes away.
	s.onHead = func() { f.atHead, n.fetchAtHead = true, true }
	if s.atHead() && (req.MaxWaitMillis <= 0 || n.fetchReady(f)) {
		n.answerFetch(f)
		return
	}
	n.fetches = append(n.fetches, f)
}

// requestParts lists a sessionless request's partitions.
func requestParts(req *kmsg.FetchRequest) []*sessionPart {
	var parts []*sessionPart
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			parts = append(parts, &sessionPart{
				partKey:     partKey{rt.Topic, rt.TopicID, rp.Partition},
				offset:      rp.FetchOffset,
				maxBytes:    rp.PartitionMaxBytes,
				leaderEpoch: rp.CurrentLeaderEpoch,
			})
		}
	}
	return parts
}

func (n *Node) fetchError(s *slot, req *kmsg.FetchRequest, err *kerr.Error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.ErrorCode = err.Code
	n.respond(s, resp)
}

// resolve finds the partition a session part names, or the error to give.
func (n *Node) resolve(sp *sessionPart, version int16) (*partition, *kerr.Error) {
	var t *topic
	if version >= 13 {
		if t = n.topics.visibleByID(sp.topicID); t == nil {
			return nil, kerr.UnknownTopicID
		}
	} else if t = n.topics.visible(sp.topic); t == nil {
		return nil, kerr.UnknownTopicOrPartition
	}
	return n.led(t, sp.partition, sp.leaderEpoch)
}

// includes reports whether the fetch asks for partition p: only then can p's
// progress make it ready.
func (f *pendingFetch) includes(p *partition) bool {
	for _, sp := range f.parts {
		if sp.partition == p.index && (sp.topicID == p.topic.id && f.req.Version >= 13 || sp.topic == p.topic.name && f.req.Version < 13) {
			return true
		}
	}
	return false
}

// fetchReady reports whether a fetch should be answered now: min_bytes are
// available, or some partition has an error to report.
func (n *Node) fetchReady(f *pendingFetch) bool {
	if f.req.MinBytes <= 0 {
		return true
	}
	var total int64
	for _, sp := range f.parts {
		p, err := n.resolve(sp, f.req.Version)
		if err != nil {
			return true
		}
		end, ok := servingEnd(p)
		if !ok {
			continue // not serving yet: the wait goes on
		}
		sl, rerr := p.log.Read(sp.offset, int64(sp.maxBytes), end, true)
		if rerr != nil {
			return true
		}
		if total += sl.Len; total >= int64(f.req.MinBytes) {
			return true
		}
	}
	return false
}

func (n *Node) answerFetch(f *pendingFetch) {
	req := f.req
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SetVersion(f.slot.version)
	if f.session != nil {
		resp.SessionID = f.session.id
	}
	remaining := int64(min(req.MaxBytes, n.cfg.FetchMaxBytes))
	minOne := true
	markers := fetchMarkers{nonce: n.rnd.Uint64()}
	var slices []partlog.Slice
	for _, sp := range f.parts {
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition = sp.partition
		rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
		rp.RecordBatches = []byte{} // empty, not null: librdkafka rejects a null record set
		hasData := false
		p, err := n.resolve(sp, req.Version)
		end, serving := int64(0), false
		if err == nil {
			if end, serving = servingEnd(p); !serving {
				err = kerr.OffsetNotAvailable
			}
		}
		if err == nil {
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = end, end, p.log.StartOffset()
			sl, rerr := p.log.Read(sp.offset, min(int64(sp.maxBytes), remaining), end, minOne)
			switch {
			case rerr != nil:
				err = kerr.OffsetOutOfRange
			case sl.Len > 0:
				hasData, minOne = true, false
				remaining -= sl.Len
				rp.RecordBatches = markers.marker(len(slices))
				slices = append(slices, sl)
			}
		}
		if err != nil {
			rp.ErrorCode = err.Code
		}
		changed := !sp.sentOnce || rp.HighWatermark != sp.sentHW || rp.LogStartOffset != sp.sentLogStart
		if !(f.full || hasData || err != nil || changed) {
			continue
		}
		sp.sentOnce, sp.sentHW, sp.sentLogStart = true, rp.HighWatermark, rp.LogStartOffset
		appendFetchPartition(resp, sp, rp)
	}
	frame := wire.AppendResponse(nil, f.slot.correlationID, resp)
	n.respondChunks(f.slot, markers.spliceFiles(frame, resp.IsFlexible(), slices))
}

// appendFetchPartition adds rp under its topic, grouping consecutive
// partitions of one topic as Kafka does.
func appendFetchPartition(resp *kmsg.FetchResponse, sp *sessionPart, rp kmsg.FetchResponseTopicPartition) {
	if k := len(resp.Topics); k > 0 && resp.Topics[k-1].Topic == sp.topic && resp.Topics[k-1].TopicID == sp.topicID {
		resp.Topics[k-1].Partitions = append(resp.Topics[k-1].Partitions, rp)
		return
	}
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic, rt.TopicID = sp.topic, sp.topicID
	rt.Partitions = []kmsg.FetchResponseTopicPartition{rp}
	resp.Topics = append(resp.Topics, rt)
}

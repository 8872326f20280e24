package workload

import (
	"errors"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/sim/history"
	"github.com/weirmq/weir/sim/rng"
	"github.com/weirmq/weir/sim/sched"
)

// consumer reads a few partitions from wherever it likes: from the start,
// the end, or a random offset, seeking now and then. With sessions it uses
// KIP-227 fetch sessions (a full fetch, then incremental ones naming only
// what changed); without, every fetch is full and sessionless.
type consumer struct {
	*client
	// validation draws when to check leader epochs, from its own stream
	// so the consumer's other choices stay as they were.
	validation *rng.Rand
	version    int16
	sessions   bool
	maxWait    int32
	minBytes   int32
	maxBytes   int32

	parts     []*cpart
	forgotten []*cpart // removed since the last request, for the session
	sessionID int32
	epoch     int32 // next session epoch; 0 starts a session
}

// cpart is a partition the consumer reads.
type cpart struct {
	fetchPart
	// inSession: the session knows this partition at sent.offset (and
	// sent.maxBytes); a change means it goes in the next request.
	inSession bool
	sent      fetchPart
	// seeking: a ListOffsets is under way for it.
	seeking bool
	// start and hw are the log start and high watermark the last fetch
	// reported (hw < 0 before one did).
	start, hw int64
}

func newConsumer(w *World, name string) *consumer {
	c := &consumer{client: newClient(w, name), validation: w.rnd.Child(name + "/validation")}
	c.version = c.client.version(4, 16)
	c.sessions = c.version >= 7 && c.rnd.Coin()
	c.maxWait = int32(c.rnd.Range(0, 500))
	c.minBytes = 1
	if c.rnd.Pick(4) == 0 {
		c.minBytes = int32(c.rnd.Range(1, 4096))
	}
	c.maxBytes = 1 << 20
	if c.rnd.Pick(4) == 0 {
		c.maxBytes = int32(c.rnd.Range(1, 2048))
	}
	return c
}

func (c *consumer) start() {
	c.w.trace("%s: start (fetch v%d sessions=%v max_wait=%dms min_bytes=%d max_bytes=%d)",
		c.name, c.version, c.sessions, c.maxWait, c.minBytes, c.maxBytes)
	c.poll()
}

// assign adds a random live partition, or drops one.
func (c *consumer) assign() {
	if len(c.parts) > 0 && (len(c.parts) >= 3 || c.rnd.Coin()) {
		i := c.rnd.Pick(len(c.parts))
		c.drop(c.parts[i])
		return
	}
	topics := c.w.live()
	if len(topics) == 0 {
		return
	}
	t := topics[c.rnd.Pick(len(topics))]
	if c.version >= 13 && t.ID == (history.TopicID{}) {
		return
	}
	p := int32(c.rnd.Pick(int(t.Partitions)))
	for _, cp := range c.parts {
		if cp.topic == t.Name && cp.partition == p {
			return
		}
	}
	maxBytes := int32(1 << 20)
	if c.rnd.Pick(4) == 0 {
		maxBytes = int32(c.rnd.Range(1, 2048))
	}
	cp := &cpart{fetchPart: fetchPart{topic: t.Name, id: t.ID, partition: p, maxBytes: maxBytes}, hw: -1}
	c.parts = append(c.parts, cp)
	c.seek(cp)
}

func (c *consumer) drop(cp *cpart) {
	for i, o := range c.parts {
		if o == cp {
			c.parts = append(c.parts[:i], c.parts[i+1:]...)
			break
		}
	}
	if cp.inSession {
		c.forgotten = append(c.forgotten, cp)
	}
}

// seek moves a partition to its start, its end, or (from what the last
// response said) anywhere between.
func (c *consumer) seek(cp *cpart) {
	if cp.hw >= 0 && c.rnd.Coin() {
		cp.offset = c.rnd.Range(max(cp.start, 0), cp.hw)
		return
	}
	ts := []int64{-2, -1}[c.rnd.Pick(2)]
	cp.seeking = true
	c.listOffset(cp, ts, func(off int64, ok bool) {
		cp.seeking = false
		if ok {
			cp.offset = off
		}
	})
}

// listOffset asks for a partition's earliest (-2) or latest (-1) offset; a
// latest answer is a read of the high watermark and goes in the history.
func (c *consumer) listOffset(cp *cpart, ts int64, done func(int64, bool)) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = c.client.version(1, 8)
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = cp.topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = cp.partition
	rp.Timestamp = ts
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	call := c.w.Loop.Now()
	c.do(req, false, func(r reply) {
		resp, ok := r.resp.(*kmsg.ListOffsetsResponse)
		if r.err != nil || !ok || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			done(0, false)
			return
		}
		out := resp.Topics[0].Partitions[0]
		if out.ErrorCode != 0 {
			done(0, false)
			return
		}
		if ts == -1 {
			c.w.History.AddFetch(&history.Fetch{
				Client: c.idx, Consumer: c.name, Topic: cp.topic, Partition: cp.partition,
				Offset: -1, Call: call, Return: c.w.Loop.Now(), HW: out.Offset, LogStart: -1,
			})
		}
		done(out.Offset, true)
	})
}

func (c *consumer) poll() {
	if !c.w.active || c.w.stopped {
		return
	}
	if len(c.parts) == 0 || c.rnd.Pick(50) == 0 {
		c.assign()
	}
	if len(c.parts) > 0 && c.rnd.Pick(40) == 0 {
		c.seek(c.parts[c.rnd.Pick(len(c.parts))])
	}
	var ready []*cpart
	for _, cp := range c.parts {
		if !cp.seeking {
			ready = append(ready, cp)
		}
	}
	if len(ready) == 0 {
		c.w.Loop.After(c.rnd.Range(10, 50)*sched.Millisecond, c.poll)
		return
	}
	c.fetch(ready)
}

func (c *consumer) fetch(ready []*cpart) {
	useSession := c.sessions
	var parts []fetchPart
	incremental := useSession && c.sessionID != 0 && c.epoch > 0
	for _, cp := range ready {
		if !incremental || !cp.inSession || cp.sent != cp.fetchPart {
			parts = append(parts, cp.fetchPart)
		}
	}
	req := newFetch(c.version, parts)
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = c.maxWait, c.minBytes, c.maxBytes
	req.IsolationLevel = int8(c.rnd.Pick(2))
	switch {
	case !useSession:
		req.SessionID, req.SessionEpoch = 0, -1
	case !incremental:
		req.SessionID, req.SessionEpoch = c.sessionID, 0
	default:
		req.SessionID, req.SessionEpoch = c.sessionID, c.epoch
		for _, f := range c.forgotten {
			ft := kmsg.NewFetchRequestForgottenTopic()
			if c.version >= 13 {
				ft.TopicID = f.id
			} else {
				ft.Topic = f.topic
			}
			ft.Partitions = []int32{f.partition}
			req.ForgottenTopics = append(req.ForgottenTopics, ft)
		}
	}
	c.forgotten = nil
	// What the session will hold once this request is handled.
	inSession := make([]fetchPart, len(ready))
	for i, cp := range ready {
		inSession[i] = cp.fetchPart
	}
	call := c.w.Loop.Now()
	c.do(req, false, func(r reply) {
		c.fetched(ready, inSession, incremental, call, r)
		if !c.w.active || c.w.stopped {
			return
		}
		c.w.Loop.After(c.rnd.Range(0, 30)*sched.Millisecond, c.poll)
	})
}

func (c *consumer) resetSession() {
	c.epoch = 0
	for _, cp := range c.parts {
		cp.inSession = false
	}
	c.forgotten = nil
}

func (c *consumer) fetched(ready []*cpart, asked []fetchPart, incremental bool, call int64, r reply) {
	if r.err != nil {
		if c.sessions && !errors.Is(r.err, errNotSent) {
			// Whether the broker saw the request is unknown; start over.
			c.resetSession()
		}
		return
	}
	resp := r.resp.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		// FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH: the
		// broker restarted or evicted the session.
		c.sessionID = 0
		c.resetSession()
		return
	}
	if c.sessions {
		switch {
		case !incremental:
			c.sessionID = resp.SessionID
			c.epoch = 0
			if resp.SessionID != 0 {
				c.epoch = 1
			}
		case c.epoch == math.MaxInt32:
			c.epoch = 1
		default:
			c.epoch++
		}
		if c.epoch > 0 {
			for i, cp := range ready {
				cp.inSession, cp.sent = true, asked[i]
			}
		}
	}
	byID := c.version >= 13
	for _, fp := range fetchedParts(resp, c.maxBytes) {
		for i, cp := range ready {
			if !fp.matches(asked[i], byID) {
				continue
			}
			f, ok := c.w.fetchOp(c.client, asked[i], fp, byID, call, r.flipped, false)
			if !ok {
				break
			}
			c.w.History.AddFetch(f)
			c.advance(cp, asked[i], f)
			break
		}
	}
}

// advance moves a partition past what a fetch returned, or handles its
// error.
func (c *consumer) advance(cp *cpart, asked fetchPart, f *history.Fetch) {
	if cp.offset != asked.offset || cp.seeking {
		return // it seeked meanwhile
	}
	switch kerr.ErrorForCode(f.ErrCode) {
	case nil:
		cp.start, cp.hw = f.LogStart, f.HW
		if n := len(f.Records); n > 0 {
			cp.offset = f.Records[n-1].Offset + 1
			if f.LastEpoch >= 0 && c.validation.Pick(8) == 0 {
				c.validate(cp, f.LastEpoch)
			}
		}
	case kerr.OffsetOutOfRange:
		c.seek(cp)
	case kerr.UnknownTopicOrPartition, kerr.UnknownTopicID:
		if t := c.w.topic(cp.topic); t == nil || !t.Exists || t.ID != cp.id && c.version >= 13 {
			c.drop(cp)
		}
	}
}

// validate asks where the leader epoch of the last batch read ends, as a
// KIP-320 consumer does after a leader change. Everything read is below the
// high watermark, and acknowledged data is never truncated, so that epoch
// must end at or after the position reached: an earlier end would tell a
// real client its log was truncated under it.
func (c *consumer) validate(cp *cpart, epoch int32) {
	t := c.w.topic(cp.topic)
	if t == nil || t.ID != cp.id {
		return
	}
	id, position := t.ID, cp.offset
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.SetVersion(int16(2 + c.validation.Pick(3)))
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = cp.topic
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = cp.partition, -1, epoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	c.do(req, false, func(r reply) {
		if r.err != nil {
			return
		}
		resp := r.resp.(*kmsg.OffsetForLeaderEpochResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			c.w.fail("protocol", fmt.Sprintf("%s: OffsetForLeaderEpoch answered %d topics for 1", c.name, len(resp.Topics)))
			return
		}
		p := resp.Topics[0].Partitions[0]
		if now := c.w.topic(cp.topic); p.ErrorCode != 0 || now == nil || now.ID != id {
			return // refused, or the topic was deleted or recreated meanwhile
		}
		if p.EndOffset < position || p.LeaderEpoch != epoch {
			c.w.fail("leader-epochs", fmt.Sprintf("%s: %s[%d]: leader epoch %d of the batch read up to %d ends at (%d, %d) by OffsetForLeaderEpoch",
				c.name, cp.topic, cp.partition, epoch, position, p.LeaderEpoch, p.EndOffset))
		}
	})
}

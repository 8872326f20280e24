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
// the end, or a random offset, seeking now and then. Each poll sends one
// fetch to each leader of the partitions it reads, at once, and waits for
// all. With sessions it uses KIP-227 fetch sessions, one per node (a full
// fetch, then incremental ones naming only what changed); without, every
// fetch is full and sessionless.
type consumer struct {
	*router
	// validation draws when to check leader epochs, from its own stream
	// so the consumer's other choices stay as they were.
	validation *rng.Rand
	version    int16
	sessions   bool
	maxWait    int32
	minBytes   int32
	maxBytes   int32

	parts []*cpart
	sess  []fsession // by node index
}

// fsession is the consumer's fetch session with one node.
type fsession struct {
	id        int32
	epoch     int32    // next session epoch; 0 starts a session
	forgotten []*cpart // removed since the last request
}

// cpart is a partition the consumer reads.
type cpart struct {
	fetchPart
	// inSession: the session with node sessNode knows this partition at
	// sent.offset (and sent.maxBytes and sent.epoch); a change means it
	// goes in the next request.
	inSession bool
	sessNode  int
	sent      fetchPart
	// seeking: a ListOffsets is under way for it.
	seeking bool
	// start and hw are the log start and high watermark the last fetch
	// reported (hw < 0 before one did).
	start, hw int64
}

func newConsumer(w *World, name string) *consumer {
	c := &consumer{router: newRouter(w, name), validation: w.rnd.Child(name + "/validation")}
	c.sess = make([]fsession, len(w.Nodes))
	c.version = c.router.version(4, 16)
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
	if byID(c.version) && t.ID == (history.TopicID{}) {
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
	c.forget(cp)
}

// forget takes cp out of the session it is in.
func (c *consumer) forget(cp *cpart) {
	if cp.inSession {
		s := &c.sess[cp.sessNode]
		s.forgotten = append(s.forgotten, cp)
		cp.inSession = false
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
	t := c.w.target(cp.topic, cp.partition)
	call := c.w.Loop.Now()
	c.send(t, func(epoch int32) kmsg.Request {
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = c.router.version(1, 8)
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = cp.topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = cp.partition
		rp.Timestamp = ts
		rp.CurrentLeaderEpoch = epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}, false, func(r reply) {
		resp, ok := r.resp.(*kmsg.ListOffsetsResponse)
		if r.err != nil || !ok || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			done(0, false)
			return
		}
		out := resp.Topics[0].Partitions[0]
		if out.ErrorCode != 0 {
			c.staleOn(t, out.ErrorCode)
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
		if _, routed := c.cached(c.w.fetchTarget(cp.fetchPart, c.version)); !routed && c.w.gone(cp.topic, cp.partition) {
			c.drop(cp) // deleted: no leader will be found
			continue
		}
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

// fetch sends one fetch to each leader of the ready partitions and polls
// again once every answer is in. Each operation's call is now, when the
// incarnations meant are read from the catalogue (see router).
func (c *consumer) fetch(ready []*cpart) {
	parts := make([]fetchPart, len(ready))
	for i, cp := range ready {
		parts[i] = cp.fetchPart
	}
	call := c.w.Loop.Now()
	c.sendSplit(c.w.fetchTargets(parts, c.version), func(g leaderGroup) (kmsg.Request, func(reply)) {
		group := make([]*cpart, len(g.at))
		for i, k := range g.at {
			cp := ready[k]
			cp.epoch = g.epochs[i]
			if cp.inSession && cp.sessNode != g.node {
				c.forget(cp) // its leader moved
			}
			group[i] = cp
		}
		return c.fetchFrom(g.node, group, call)
	}, func() {
		if !c.w.active || c.w.stopped {
			return
		}
		c.w.Loop.After(c.rnd.Range(0, 30)*sched.Millisecond, c.poll)
	})
}

// fetchFrom builds the fetch of ready, which node leads, in the session
// with node, and returns it with what handles its answer.
func (c *consumer) fetchFrom(node int, ready []*cpart, call int64) (kmsg.Request, func(reply)) {
	s := &c.sess[node]
	useSession := c.sessions
	var parts []fetchPart
	incremental := useSession && s.id != 0 && s.epoch > 0
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
		req.SessionID, req.SessionEpoch = s.id, 0
	default:
		req.SessionID, req.SessionEpoch = s.id, s.epoch
		for _, f := range s.forgotten {
			ft := kmsg.NewFetchRequestForgottenTopic()
			if byID(c.version) {
				ft.TopicID = f.id
			} else {
				ft.Topic = f.topic
			}
			ft.Partitions = []int32{f.partition}
			req.ForgottenTopics = append(req.ForgottenTopics, ft)
		}
	}
	s.forgotten = nil
	// What the session will hold once this request is handled.
	inSession := make([]fetchPart, len(ready))
	for i, cp := range ready {
		inSession[i] = cp.fetchPart
	}
	return req, func(r reply) { c.fetched(node, ready, inSession, incremental, call, r) }
}

// resetSession starts the session with node over.
func (c *consumer) resetSession(node int) {
	s := &c.sess[node]
	s.epoch = 0
	for _, cp := range c.parts {
		if cp.sessNode == node {
			cp.inSession = false
		}
	}
	s.forgotten = nil
}

func (c *consumer) fetched(node int, ready []*cpart, asked []fetchPart, incremental bool, call int64, r reply) {
	s := &c.sess[node]
	if r.err != nil {
		if c.sessions && !errors.Is(r.err, errNotSent) {
			// Whether the broker saw the request is unknown; start over.
			c.resetSession(node)
		}
		return
	}
	resp := r.resp.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		// FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH: the
		// broker restarted or evicted the session.
		s.id = 0
		c.resetSession(node)
		return
	}
	if c.sessions {
		switch {
		case !incremental:
			s.id = resp.SessionID
			s.epoch = 0
			if resp.SessionID != 0 {
				s.epoch = 1
			}
		case s.epoch == math.MaxInt32:
			s.epoch = 1
		default:
			s.epoch++
		}
		if s.epoch > 0 {
			for i, cp := range ready {
				cp.inSession, cp.sessNode, cp.sent = true, node, asked[i]
			}
		}
	}
	byID := byID(c.version)
	for _, fp := range fetchedParts(resp, c.maxBytes) {
		for i, cp := range ready {
			if !fp.matches(asked[i], byID) {
				continue
			}
			f, ok := c.w.fetchOp(c.router, asked[i], fp, byID, call, r.flipped, false)
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
	c.staleOn(c.w.fetchTarget(asked, c.version), f.ErrCode)
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
		if t := c.w.topic(cp.topic); t == nil || !t.Exists || t.ID != cp.id && byID(c.version) {
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
	tg := target{topic: cp.topic, id: id, partition: cp.partition}
	c.send(tg, func(current int32) kmsg.Request {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.SetVersion(int16(2 + c.validation.Pick(3)))
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = cp.topic
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = cp.partition, current, epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}, false, func(r reply) {
		if r.err != nil {
			return
		}
		resp := r.resp.(*kmsg.OffsetForLeaderEpochResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			c.w.fail("protocol", fmt.Sprintf("%s: OffsetForLeaderEpoch answered %d topics for 1", c.name, len(resp.Topics)))
			return
		}
		p := resp.Topics[0].Partitions[0]
		c.staleOn(tg, p.ErrorCode)
		if now := c.w.topic(cp.topic); p.ErrorCode != 0 || now == nil || now.ID != id {
			return // refused, or the topic was deleted or recreated meanwhile
		}
		if p.EndOffset < position || p.LeaderEpoch != epoch {
			c.w.fail("leader-epochs", fmt.Sprintf("%s: %s[%d]: leader epoch %d of the batch read up to %d ends at (%d, %d) by OffsetForLeaderEpoch",
				c.name, cp.topic, cp.partition, epoch, position, p.LeaderEpoch, p.EndOffset))
		}
	})
}

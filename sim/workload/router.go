package workload

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/sim/history"
	"github.com/weirmq/weir/sim/rng"
	"github.com/weirmq/weir/sim/sched"
)

// router is how one workload client reaches the cluster, as Kafka clients
// do: one connection per node, dialed on first use; each partition's
// leader and leader epoch learned from Metadata answers of any broker it
// reaches; requests for a partition sent to its leader, with that epoch as
// the CurrentLeaderEpoch of Fetch, ListOffsets and OffsetForLeaderEpoch.
// After NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH,
// LEADER_NOT_AVAILABLE, an unknown topic or partition, a lost connection
// or a timeout, the client forgets the partition's leader (stale), and the
// next request for it waits for fresh metadata: one Metadata request at a
// time, with a backoff between two. A leader epoch never goes back for one
// incarnation (KIP-320), however stale the broker that answered. A
// partition's requests leave in the order they were made, and one that
// finds no leader within the client's request timeout expires unsent.
//
// One step goes beyond Kafka's clients, because the checkers tie a request
// that names its topic by name (Produce up to v11, ListOffsets,
// OffsetForLeaderEpoch, Fetch before v13) to a topic incarnation by the
// admin operations around it: such a request goes to a node only once that
// node has said, on the same connection, that it holds the incarnation
// (topic id) the client means. A node answers a connection's requests in
// order and its metadata image only moves forward, so the request cannot
// reach an older incarnation of the name, one the admin client has since
// deleted, on a node that lags behind the controller (or is cut off from
// it). Produce v13 names topics by id (KIP-516), which makes this needless.
//
// A single-node run (one node) has nothing to route: every request goes
// to the node, with no Metadata and leader epoch -1, as before clusters.
type router struct {
	w       *World
	name    string
	idx     int       // history client index
	rnd     *rng.Rand // the client's choices, and its connections'
	timeout sched.Time
	conns   []*client // by node index; nil until first used
	// halted: the client has ended (World.Halt); nothing it still had
	// queued or waiting for a leader may leave.
	halted bool

	// Cluster runs only: the router's own choices, what the metadata
	// said of each topic (by name), and the refresh under way.
	own         *rng.Rand
	topics      map[string]*topicRoute
	refreshing  bool
	waiters     []func()
	nextRefresh sched.Time
	// anyNode is the broker requests for no partition go to (-1: pick
	// one); another is picked after a connection to it fails.
	anyNode int
	// queues holds each partition's requests not yet handed to a
	// connection, so that they leave in the order they were made, as a
	// Kafka producer drains a partition's batches in order.
	queues map[partKey]*sendQueue
}

type partKey struct {
	topic     string
	partition int32
}

// sendQueue is one partition's requests waiting for a route; busy: the
// head is being routed.
type sendQueue struct {
	items []*pendingSend
	busy  bool
}

type pendingSend struct {
	t       target
	build   func(epoch int32) kmsg.Request
	noReply bool
	done    func(reply)
	// deadline bounds the wait for a leader, as a Kafka producer keeps a
	// batch until its partition has one (delivery.timeout.ms).
	deadline sched.Time
}

// topicRoute is one topic incarnation's partition leaders.
type topicRoute struct {
	id    history.TopicID
	parts []partRoute
}

// partRoute is a partition's leader (broker id; -1 none, or forgotten) in
// leader epoch epoch.
type partRoute struct {
	leader, epoch int32
}

// target names a partition a request is for, and the incarnation meant (a
// zero id: whichever the name has).
type target struct {
	topic     string
	id        history.TopicID
	partition int32
}

// route is where a partition's requests go: its leader's node index, and
// the leader epoch to send (-1: unknown).
type route struct {
	node  int
	epoch int32
}

func newRouter(w *World, name string) *router {
	r := &router{w: w, name: name, idx: w.History.Client(name), rnd: w.rnd.Child(name), timeout: w.cfg.RequestTimeout,
		conns: make([]*client, len(w.Nodes)), anyNode: -1, queues: map[partKey]*sendQueue{}}
	if r.routed() {
		r.own, r.topics = r.rnd.Child("router"), map[string]*topicRoute{}
	}
	return r
}

// routed reports whether there is more than one node to choose from.
func (r *router) routed() bool { return len(r.w.Nodes) > 1 }

// conn returns the connection to node.
func (r *router) conn(node int) *client {
	if r.conns[node] == nil {
		r.conns[node] = &client{w: r.w, name: r.name, nodeID: node, node: r.w.Nodes[node], idx: r.idx, rnd: r.rnd, timeout: r.timeout,
			halted: r.halted}
	}
	return r.conns[node]
}

// version draws a version between lo and hi.
func (r *router) version(lo, hi int16) int16 {
	return int16(r.rnd.Range(int64(lo), int64(hi)))
}

// abort closes every connection, failing what is in flight.
func (r *router) abort(reason string) {
	for _, c := range r.conns {
		if c != nil {
			c.abort(reason)
		}
	}
}

// halt ends the client: its connections close, failing what is in
// flight, and no request it still holds is ever sent.
func (r *router) halt() {
	r.seal()
	r.abort("halted")
}

// seal makes sure no request the client still holds is ever sent; what is
// in flight may still be answered.
func (r *router) seal() {
	r.halted = true
	for _, c := range r.conns {
		if c != nil {
			c.halted = true
		}
	}
}

// any sends a request that no partition's leader has to serve (Metadata,
// admin requests the controller decides, InitProducerId, FindCoordinator)
// to a broker.
func (r *router) any(req kmsg.Request, done func(reply)) {
	if !r.routed() {
		r.conn(0).do(req, false, done)
		return
	}
	if r.anyNode < 0 {
		r.anyNode = r.w.brokers()[r.own.Pick(len(r.w.brokers()))]
	}
	node := r.anyNode
	r.conn(node).do(req, false, func(rep reply) {
		if rep.err != nil && r.anyNode == node {
			r.anyNode = -1
		}
		done(rep)
	})
}

// learn takes in what a Metadata answer says of topics and leaders. An
// answer without topic ids (before v10) names no incarnation, so it is
// left out.
func (r *router) learn(resp *kmsg.MetadataResponse) {
	if !r.routed() {
		return
	}
	for _, mt := range resp.Topics {
		if mt.Topic == nil || mt.ErrorCode == 0 && mt.TopicID == (history.TopicID{}) {
			continue
		}
		name := *mt.Topic
		switch kerr.ErrorForCode(mt.ErrorCode) {
		case nil:
		case kerr.UnknownTopicOrPartition:
			delete(r.topics, name)
			continue
		default:
			continue
		}
		// What is known of the same incarnation stays unless this answer
		// is newer: a staler broker may have answered.
		var known []partRoute
		if old := r.topics[name]; old != nil && old.id == mt.TopicID {
			known = old.parts
		}
		tr := &topicRoute{id: mt.TopicID, parts: make([]partRoute, max(len(mt.Partitions), len(known)))}
		for i := range tr.parts {
			tr.parts[i] = partRoute{leader: -1, epoch: -1}
		}
		copy(tr.parts, known)
		for _, mp := range mt.Partitions {
			p := mp.Partition
			if p < 0 || int(p) >= len(tr.parts) || int(p) < len(known) && known[p].epoch > mp.LeaderEpoch {
				continue
			}
			tr.parts[p] = partRoute{leader: mp.Leader, epoch: mp.LeaderEpoch}
		}
		r.topics[name] = tr
	}
}

// cached returns t's route if the metadata named its leader.
func (r *router) cached(t target) (route, bool) {
	if !r.routed() {
		return route{node: 0, epoch: -1}, true
	}
	tr := r.topics[t.topic]
	if tr == nil || t.id != (history.TopicID{}) && tr.id != t.id || t.partition < 0 || int(t.partition) >= len(tr.parts) {
		return route{}, false
	}
	pr := tr.parts[t.partition]
	node, ok := r.nodeIndex(pr.leader)
	if !ok {
		return route{}, false
	}
	return route{node: node, epoch: pr.epoch}, true
}

// nodeIndex returns the index in World.Nodes of the node with broker id
// id (a node's id is its index+1); false if there is no such node. With
// nothing to route, every id means the one node.
func (r *router) nodeIndex(id int32) (int, bool) {
	if !r.routed() {
		return 0, true
	}
	if id < 1 || int(id) > len(r.w.Nodes) {
		return 0, false
	}
	return int(id) - 1, true
}

// knows reports whether the metadata last said topic has incarnation id
// (always, with nothing to route).
func (r *router) knows(topic string, id history.TopicID) bool {
	if !r.routed() {
		return true
	}
	tr := r.topics[topic]
	return tr != nil && tr.id == id
}

// stale forgets t's leader: the next request for it waits for metadata.
func (r *router) stale(t target) {
	if !r.routed() {
		return
	}
	if tr := r.topics[t.topic]; tr != nil && (t.id == (history.TopicID{}) || tr.id == t.id) && t.partition >= 0 && int(t.partition) < len(tr.parts) {
		tr.parts[t.partition].leader = -1
	}
}

// staleOn forgets t's leader if code says the client asked the wrong node
// or in the wrong leader epoch.
func (r *router) staleOn(t target, code int16) {
	switch kerr.ErrorForCode(code) {
	case kerr.NotLeaderForPartition, kerr.FencedLeaderEpoch, kerr.UnknownLeaderEpoch, kerr.LeaderNotAvailable,
		kerr.UnknownTopicOrPartition, kerr.UnknownTopicID, kerr.KafkaStorageError:
		r.stale(t)
	}
}

// refresh reads the metadata again, unless a read is under way, no sooner
// than the backoff after the last; fn (if any) runs once it is done.
func (r *router) refresh(fn func()) {
	if fn != nil {
		r.waiters = append(r.waiters, fn)
	}
	if r.refreshing {
		return
	}
	r.refreshing = true
	r.w.Loop.At(max(r.w.Loop.Now(), r.nextRefresh), func() {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = int16(r.own.Range(10, 12)) // topic ids
		// Each read asks a broker at random: one may lag behind.
		r.anyNode = -1
		r.any(req, func(rep reply) {
			resp, ok := rep.resp.(*kmsg.MetadataResponse)
			if rep.err == nil && ok {
				r.learn(resp)
			}
			r.refreshing = false
			r.nextRefresh = r.w.Loop.Now() + r.own.Range(20*sched.Millisecond, 200*sched.Millisecond)
			waiters := r.waiters
			r.waiters = nil
			for _, fn := range waiters {
				fn()
			}
		})
	})
}

// resolve calls fn with t's route, reading the metadata first if it is
// not known; ok is false if it is still not.
func (r *router) resolve(t target, fn func(rt route, ok bool)) {
	if rt, ok := r.cached(t); ok {
		fn(rt, true)
		return
	}
	r.refresh(func() {
		rt, ok := r.cached(t)
		fn(rt, ok)
	})
}

// resolveBy is resolve, reading the metadata again (after the backoff)
// until t has a leader or the deadline passes, or clients believe the
// partition deleted.
func (r *router) resolveBy(t target, deadline sched.Time, fn func(rt route, ok bool)) {
	r.resolve(t, func(rt route, ok bool) {
		if ok || r.w.Loop.Now() >= deadline || r.w.stopped || r.w.gone(t.topic, t.partition) {
			fn(rt, ok)
			return
		}
		r.resolveBy(t, deadline, fn)
	})
}

// send sends the request build makes (with the leader epoch to send) to
// t's leader and calls done with the reply: errNoRoute if no leader was
// found within the request timeout. Requests for one partition leave in
// the order they were made. Any error forgets the leader; the caller calls
// staleOn with the partition's error code.
func (r *router) send(t target, build func(epoch int32) kmsg.Request, noReply bool, done func(reply)) {
	k := partKey{t.topic, t.partition}
	q := r.queues[k]
	if q == nil {
		q = &sendQueue{}
		r.queues[k] = q
	}
	q.items = append(q.items, &pendingSend{t: t, build: build, noReply: noReply, done: done, deadline: r.w.Loop.Now() + r.timeout})
	r.dispatch(k, q)
}

// dispatch routes the head of q and hands it to its leader's connection,
// then the next. Until the deadline, a leader that does not hold the
// incarnation meant yet is asked again after a metadata read; past it, the
// request is never sent (errExpired), so that no operation waits in a
// queue longer than the client's timeout.
func (r *router) dispatch(k partKey, q *sendQueue) {
	if q.busy || len(q.items) == 0 {
		if len(q.items) == 0 {
			delete(r.queues, k)
		}
		return
	}
	q.busy = true
	p := q.items[0]
	fail := func(err error) {
		q.items, q.busy = q.items[1:], false
		r.dispatch(k, q)
		p.done(reply{err: err})
	}
	var try func()
	try = func() {
		if r.w.Loop.Now() >= p.deadline {
			fail(errExpired)
			return
		}
		r.resolveBy(p.t, p.deadline, func(rt route, ok bool) {
			if !ok {
				fail(errNoRoute)
				return
			}
			r.verify(rt.node, []target{p.t}, func(err error) {
				switch {
				case err == nil && r.w.Loop.Now() >= p.deadline:
					fail(errExpired)
				case err == nil:
					r.conn(rt.node).do(p.build(rt.epoch), p.noReply, func(rep reply) {
						if rep.err != nil {
							r.stale(p.t)
						}
						p.done(rep)
					})
					q.items, q.busy = q.items[1:], false
					r.dispatch(k, q)
				case errors.Is(err, errNoRoute) && r.w.Loop.Now() < p.deadline && !r.w.stopped && !r.w.gone(p.t.topic, p.t.partition):
					r.stale(p.t)
					try()
				default:
					r.stale(p.t)
					fail(err)
				}
			})
		})
	}
	try()
}

// sendTo sends the request build makes to node once the node holds the
// incarnations ts mean (see verify); done gets the reply, or verify's
// error.
func (r *router) sendTo(node int, ts []target, build func() kmsg.Request, noReply bool, done func(reply)) {
	r.verify(node, ts, func(err error) {
		if err != nil {
			done(reply{err: err})
			return
		}
		r.conn(node).do(build(), noReply, done)
	})
}

// verify calls fn with nil once node has said, on the connection a request
// handed to it at once goes on, that it holds the incarnations ts mean
// (see router), asking it if need be; errNoRoute if it does not, or an
// errNotSent if the question went unanswered.
func (r *router) verify(node int, ts []target, fn func(error)) {
	c := r.conn(node)
	if !r.routed() || c.holdsAll(ts) {
		fn(nil)
		return
	}
	req := kmsg.NewPtrMetadataRequest()
	req.Version = int16(r.own.Range(10, 12))
	for _, t := range ts {
		if !c.holds(t.topic, t.id) && !slicesContainsTopic(req.Topics, t.topic) {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t.topic)
			req.Topics = append(req.Topics, rt)
		}
	}
	c.do(req, false, func(rep reply) {
		resp, ok := rep.resp.(*kmsg.MetadataResponse)
		if rep.err != nil || !ok {
			fn(fmt.Errorf("%w (asking node %d for metadata: %v)", errNotSent, node+1, rep.err))
			return
		}
		r.learn(resp)
		c.learnHeld(resp)
		if !c.holdsAll(ts) {
			r.w.trace("%s: node %d does not hold %s as the client knows it", r.name, node+1, describeTargets(ts))
			fn(errNoRoute)
			return
		}
		fn(nil)
	})
}

func (c *client) holdsAll(ts []target) bool {
	for _, t := range ts {
		if !c.holds(t.topic, t.id) {
			return false
		}
	}
	return true
}

func slicesContainsTopic(ts []kmsg.MetadataRequestTopic, name string) bool {
	for _, t := range ts {
		if t.Topic != nil && *t.Topic == name {
			return true
		}
	}
	return false
}

// leaderGroup is the partitions of a request (indices into its targets)
// led by one node, with the leader epochs to send.
type leaderGroup struct {
	node   int
	at     []int
	epochs []int32
}

// split groups ts by leader, in order of first appearance; those with no
// leader known are left out, and a metadata read is started for them.
func (r *router) split(ts []target) []leaderGroup {
	var groups []leaderGroup
	missing := false
	for i, t := range ts {
		rt, ok := r.cached(t)
		if !ok {
			missing = true
			continue
		}
		k := 0
		for k < len(groups) && groups[k].node != rt.node {
			k++
		}
		if k == len(groups) {
			groups = append(groups, leaderGroup{node: rt.node})
		}
		groups[k].at = append(groups[k].at, i)
		groups[k].epochs = append(groups[k].epochs, rt.epoch)
	}
	if missing {
		r.refresh(nil)
	}
	return groups
}

// sendSplit sends one request per leader of ts: build makes the request
// for a group and what handles its reply (not called if the request was
// never built; an error forgets the group's leaders), and done runs once
// every reply is in (at once if no request was sent).
func (r *router) sendSplit(ts []target, build func(g leaderGroup) (kmsg.Request, func(reply)), done func()) {
	groups := r.split(ts)
	left := len(groups)
	if left == 0 {
		done()
		return
	}
	for _, g := range groups {
		sub := make([]target, len(g.at))
		for i, k := range g.at {
			sub[i] = ts[k]
		}
		var handle func(reply)
		r.sendTo(g.node, sub, func() kmsg.Request {
			req, h := build(g)
			handle = h
			return req
		}, false, func(rep reply) {
			if rep.err != nil {
				for _, t := range sub {
					r.stale(t)
				}
			}
			if handle != nil {
				handle(rep)
			}
			if left--; left == 0 {
				done()
			}
		})
	}
}

// target names partition p of the topic called name, in the incarnation
// clients believe it has (any, if they believe it gone).
func (w *World) target(name string, p int32) target {
	t := target{topic: name, partition: p}
	if wt := w.topic(name); wt != nil && wt.Exists {
		t.id = wt.ID
	}
	return t
}

// brokers lists the node indices with the broker role.
func (w *World) brokers() []int {
	if len(w.cfg.Brokers) > 0 {
		return w.cfg.Brokers
	}
	all := make([]int, len(w.Nodes))
	for i := range all {
		all[i] = i
	}
	return all
}

func describeTargets(ts []target) string {
	var sb strings.Builder
	for i, t := range ts {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%s[%d] (id %s)", t.topic, t.partition, t.id)
	}
	return sb.String()
}

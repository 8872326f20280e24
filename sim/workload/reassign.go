package workload

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/sim/fault"
	"github.com/weirmq/weir/sim/history"
	"github.com/weirmq/weir/sim/sched"
)

// reassigner is the operator of a cluster run who moves the data topics'
// replicas (KIP-455) while the faults fire, so that the durability and
// linearizability checkers see no acknowledged record lost or moved while
// replicas come and go. Every so often (Config.ReassignEvery) it asks a
// broker, which forwards to the controller, to reassign a random data
// partition to a random set of brokers: as many as it believes the
// partition has, sometimes one more or one fewer, never fewer than
// min.insync.replicas (acks=all writes would stop) nor more than
// MaxReplicationFactor. Sometimes it cancels a reassignment it believes
// under way, and sometimes it lists those under way and checks the answer
// is well formed. It does one thing at a time, and stops with the chaos
// phase; after the heal, AwaitReassignments waits for every reassignment
// still under way to complete.
type reassigner struct {
	*router
	busy bool
	// size is each partition's replication factor as the reassigner last
	// learned it, from a target the controller took (absent: the data
	// topics' factor); moving lists the partitions it believes are being
	// reassigned, with the factor they had before.
	size   map[partID]int
	moving []movingPart
	// pending describes the reassignments the last listing found under
	// way (for a liveness failure's message).
	pending string
}

// partID is one partition of one topic incarnation.
type partID struct {
	id        history.TopicID
	partition int32
}

type movingPart struct {
	t    target
	from int
}

func newReassigner(w *World) *reassigner {
	return &reassigner{router: newRouter(w, "reassign"), size: map[partID]int{}}
}

func (a *reassigner) start() { a.w.every(a.rnd, a.w.cfg.ReassignEvery, &a.busy, a.act) }

func (a *reassigner) act() {
	switch pick := a.rnd.Pick(10); {
	case pick == 0:
		a.list(false, func(bool) {})
	case pick <= 2:
		a.cancel()
	default:
		a.reassign()
	}
}

// pick returns a random partition of a data topic believed to exist.
func (a *reassigner) pick() (target, bool) {
	topics := a.w.live()
	if len(topics) == 0 {
		return target{}, false
	}
	t := topics[a.rnd.Pick(len(topics))]
	return target{topic: t.Name, id: t.ID, partition: int32(a.rnd.Pick(int(t.Partitions)))}, true
}

// reassign moves a random data partition to a random set of brokers.
func (a *reassigner) reassign() {
	t, ok := a.pick()
	if !ok {
		return
	}
	rf, minISR := a.w.cfg.EffectiveReplication()
	key := partID{t.id, t.partition}
	size, ok := a.size[key]
	if !ok {
		size = int(rf)
	}
	from := size
	if a.rnd.Pick(4) == 0 {
		size += []int{-1, 1}[a.rnd.Pick(2)]
	}
	brokers := a.w.brokers()
	most := len(brokers)
	if m := a.w.cfg.MaxReplicationFactor; m > 0 {
		most = min(most, int(m)) // a hunt narrowed to fewer replicas
	}
	size = max(int(minISR), min(size, most))
	ids := make([]int32, len(brokers))
	for i, n := range brokers {
		ids[i] = int32(n + 1)
	}
	for i := len(ids) - 1; i > 0; i-- {
		j := a.rnd.Pick(i + 1)
		ids[i], ids[j] = ids[j], ids[i]
	}
	replicas := ids[:size]
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.Version = a.version(0, 1)
	req.TimeoutMillis = 10000
	// v1 may forbid changing the factor (KIP-860); the controller then
	// refuses a target whose size differs from the factor it has, which
	// the reassigner's belief may not match.
	keepRF := req.Version >= 1 && size == from && a.rnd.Pick(3) == 0
	req.AllowReplicationFactorChange = !keepRF
	a.w.counts.Inc(fault.AdminReassign)
	a.alter(req, t, replicas, keepRF, func(err error) {
		if err != nil {
			return
		}
		a.size[key] = size
		if !slices.ContainsFunc(a.moving, func(m movingPart) bool { return m.t == t }) {
			a.moving = append(a.moving, movingPart{t: t, from: from})
		}
	})
}

// cancel cancels a reassignment believed under way, or, when none is, of
// a random data partition (which the controller refuses).
func (a *reassigner) cancel() {
	var t target
	if len(a.moving) > 0 {
		t = a.moving[a.rnd.Pick(len(a.moving))].t
	} else if p, ok := a.pick(); ok {
		t = p
	} else {
		return
	}
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.Version = a.version(0, 1)
	req.TimeoutMillis = 10000
	a.w.counts.Inc(fault.AdminCancelReassign)
	a.alter(req, t, nil, false, func(err error) {
		if err != nil && err != kerr.NoReassignmentInProgress {
			return
		}
		key := partID{t.id, t.partition}
		for i, m := range a.moving {
			if m.t == t {
				if err == nil {
					a.size[key] = m.from // the replicas being added are dropped
				}
				a.moving = slices.Delete(a.moving, i, i+1)
				break
			}
		}
	})
}

// alter sends req for partition t with target replicas (nil: a cancel),
// judges the answer, and calls done with the partition's error (nil: the
// controller took it) if the answer came and is one the controller may
// give.
func (a *reassigner) alter(req *kmsg.AlterPartitionAssignmentsRequest, t target, replicas []int32, keepRF bool, done func(error)) {
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = t.topic
	rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
	rp.Partition, rp.Replicas = t.partition, replicas
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	what := fmt.Sprintf("reassign %s[%d] to %v (v%d, replication factor change allowed %v)", t.topic, t.partition, replicas, req.Version, req.AllowReplicationFactorChange)
	if replicas == nil {
		what = fmt.Sprintf("cancel the reassignment of %s[%d] (v%d)", t.topic, t.partition, req.Version)
	}
	a.busy = true
	a.any(req, func(r reply) {
		a.busy = false
		if r.err != nil {
			a.w.trace("reassign: %s -> %v", what, r.err)
			return
		}
		resp, ok := r.resp.(*kmsg.AlterPartitionAssignmentsResponse)
		if !ok || len(resp.Topics) != 1 || resp.Topics[0].Topic != t.topic || len(resp.Topics[0].Partitions) != 1 ||
			resp.Topics[0].Partitions[0].Partition != t.partition {
			a.w.fail("protocol", fmt.Sprintf("reassign: %s: the response does not answer its one partition", what))
			return
		}
		top, err := kerr.ErrorForCode(resp.ErrorCode), kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
		a.w.trace("reassign: %s -> %v (top level %v)", what, err, top)
		if !controllerErr(top) {
			a.w.fail("protocol", fmt.Sprintf("reassign: %s: unexpected top-level error %v", what, top))
			return
		}
		if !a.mayRefuse(err, t, replicas == nil, keepRF) {
			a.w.fail("protocol", fmt.Sprintf("reassign: %s: unexpected error %v", what, err))
			return
		}
		done(err)
	})
}

// controllerErr reports whether err is nil or an error any forwarded
// controller request may end with: no controller known (or it lost its
// leadership before the change committed), the forwarded call timed out,
// or the forwarding broker's log directory is offline.
func controllerErr(err error) bool {
	switch err {
	case nil, kerr.NotController, kerr.RequestTimedOut, kerr.KafkaStorageError:
		return true
	}
	return false
}

// mayRefuse reports whether the controller may answer a reassignment (or
// a cancel) of t with err: a target broker unknown or fenced (or, for a
// cancel, a revert that would need an unclean election or leave fewer
// than min.insync.replicas in-sync replicas), no reassignment
// under way for a cancel, a factor changed although v1 forbade it, and an
// unknown partition only for a churn topic, which may have been deleted
// (the setup topics never are, and partitions are added only once
// acknowledged).
func (a *reassigner) mayRefuse(err error, t target, cancel, keepRF bool) bool {
	switch err {
	case kerr.InvalidReplicaAssignment:
		return true
	case kerr.NoReassignmentInProgress:
		return cancel
	case kerr.InvalidReplicationFactor:
		return keepRF
	case kerr.UnknownTopicOrPartition:
		wt := a.w.topic(t.topic)
		return wt == nil || wt.Churn
	}
	return controllerErr(err)
}

// list asks for the reassignments under way, of every topic (all, or at
// random) or of some data partitions, checks the answer is well formed,
// and takes it as what is under way; done reports whether an answer came
// and listed nothing.
func (a *reassigner) list(all bool, done func(none bool)) {
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	req.TimeoutMillis = 10000
	named := map[partKey]bool{}
	if !all && a.rnd.Coin() {
		for _, t := range a.w.live() {
			rt := kmsg.NewListPartitionReassignmentsRequestTopic()
			rt.Topic = t.Name
			for p := range t.Partitions {
				if a.rnd.Pick(3) > 0 {
					rt.Partitions = append(rt.Partitions, p)
					named[partKey{t.Name, p}] = true
				}
			}
			req.Topics = append(req.Topics, rt)
		}
	}
	a.busy = true
	a.any(req, func(r reply) {
		a.busy = false
		resp, ok := r.resp.(*kmsg.ListPartitionReassignmentsResponse)
		switch {
		case r.err != nil:
			a.w.trace("reassign: list -> %v", r.err)
			done(false)
			return
		case !ok:
			a.w.fail("protocol", "reassign: ListPartitionReassignments answered with another response")
			return
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			a.w.trace("reassign: list -> %v", err)
			if !controllerErr(err) || len(resp.Topics) > 0 {
				a.w.fail("protocol", fmt.Sprintf("reassign: ListPartitionReassignments answered error %v with %d topics", err, len(resp.Topics)))
			}
			done(false)
			return
		}
		if msg := a.checkListing(resp, req.Topics != nil, named); msg != "" {
			a.w.fail("protocol", "reassign: ListPartitionReassignments: "+msg)
			return
		}
		a.pending = describeListing(resp)
		a.w.trace("reassign: list -> [%s]", a.pending)
		if req.Topics == nil {
			// Every reassignment under way is listed: what is not is
			// done (or was never started).
			a.moving = a.moving[:0]
		}
		for _, rt := range resp.Topics {
			t := a.w.topic(rt.Topic)
			for _, rp := range rt.Partitions {
				// The replicas are the target's and those being
				// removed; a cancel leaves all but those being added.
				tg := target{topic: rt.Topic, id: t.ID, partition: rp.Partition}
				a.size[partID{t.ID, rp.Partition}] = len(rp.Replicas) - len(rp.RemovingReplicas)
				if !slices.ContainsFunc(a.moving, func(m movingPart) bool { return m.t == tg }) {
					a.moving = append(a.moving, movingPart{t: tg, from: len(rp.Replicas) - len(rp.AddingReplicas)})
				}
			}
		}
		done(len(resp.Topics) == 0)
	})
}

// checkListing returns what is wrong with a listing of the reassignments
// under way (empty: nothing): each topic and partition once; only data
// topics (nothing else is ever reassigned) and, if named, only partitions
// asked for; only partitions with replicas being added or removed, each a
// replica, none both, some replica staying; replicas distinct brokers.
func (a *reassigner) checkListing(resp *kmsg.ListPartitionReassignmentsResponse, byName bool, named map[partKey]bool) string {
	brokers := a.w.brokers()
	isBroker := func(id int32) bool { return slices.Contains(brokers, int(id)-1) }
	seen := map[partKey]bool{}
	topics := map[string]bool{}
	for _, rt := range resp.Topics {
		if topics[rt.Topic] {
			return fmt.Sprintf("topic %s listed twice", rt.Topic)
		}
		topics[rt.Topic] = true
		if a.w.topic(rt.Topic) == nil {
			return fmt.Sprintf("topic %s, which no one reassigns, is listed", rt.Topic)
		}
		if len(rt.Partitions) == 0 {
			return fmt.Sprintf("topic %s is listed with no partition", rt.Topic)
		}
		for _, rp := range rt.Partitions {
			k := partKey{rt.Topic, rp.Partition}
			p := fmt.Sprintf("%s[%d] (replicas %v, adding %v, removing %v)", rt.Topic, rp.Partition, rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas)
			switch {
			case seen[k]:
				return p + " is listed twice"
			case byName && !named[k]:
				return p + " is listed but was not asked for"
			case len(rp.AddingReplicas)+len(rp.RemovingReplicas) == 0:
				return p + " is listed with no replica being added or removed"
			case !distinct(rp.Replicas) || !distinct(rp.AddingReplicas) || !distinct(rp.RemovingReplicas) ||
				slices.ContainsFunc(rp.Replicas, func(id int32) bool { return !isBroker(id) }):
				return p + ": the replicas are not distinct brokers"
			case !subset(rp.AddingReplicas, rp.Replicas) || !subset(rp.RemovingReplicas, rp.Replicas):
				return p + ": a replica being added or removed is not a replica"
			case slices.ContainsFunc(rp.AddingReplicas, func(id int32) bool { return slices.Contains(rp.RemovingReplicas, id) }):
				return p + ": a replica is both being added and removed"
			case len(rp.RemovingReplicas) == len(rp.Replicas):
				return p + ": no replica stays"
			}
			seen[k] = true
		}
	}
	return ""
}

func distinct(ids []int32) bool {
	for i, id := range ids {
		if slices.Contains(ids[:i], id) {
			return false
		}
	}
	return true
}

func subset(sub, set []int32) bool {
	for _, id := range sub {
		if !slices.Contains(set, id) {
			return false
		}
	}
	return true
}

func describeListing(resp *kmsg.ListPartitionReassignmentsResponse) string {
	var parts []string
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			parts = append(parts, fmt.Sprintf("%s[%d] replicas %v adding %v removing %v", rt.Topic, rp.Partition, rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas))
		}
	}
	return strings.Join(parts, ", ")
}

// AwaitReassignments calls done once a listing finds no reassignment
// under way (at once if the run reassigns nothing): after the heal, every
// reassignment must complete, its new replicas catching up and joining
// the ISR.
func (w *World) AwaitReassignments(done func()) {
	a := w.reassigner
	if a == nil {
		done()
		return
	}
	a.pending = "no listing answered since the heal"
	var poll func()
	poll = func() {
		if a.busy {
			w.Loop.After(100*sched.Millisecond, poll)
			return
		}
		a.list(true, func(none bool) {
			if none {
				done()
				return
			}
			w.Loop.After(200*sched.Millisecond, poll)
		})
	}
	poll()
}

// Reassigning describes the reassignments the last listing found under
// way.
func (w *World) Reassigning() string {
	if w.reassigner == nil {
		return ""
	}
	return w.reassigner.pending
}

package workload

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/sim/fault"
	"github.com/weirmq/weir/sim/history"
	"github.com/weirmq/weir/sim/sched"
)

// groupAdmin is an operator with kafka-consumer-groups: now and then it
// deletes a consumer group (DeleteGroups) or some of its committed offsets
// (OffsetDelete), and describes a group's offsets (OffsetFetch). A group
// with members refuses both (NON_EMPTY_GROUP, GROUP_SUBSCRIBED_TO_TOPIC),
// so mostly it first stands the group's members down (member.standDown)
// for a while, and deletes once they are gone; they then come back as new
// members and, for what was deleted, start from the log start again. Now
// and then it also deletes offsets of a group in use, to see it refused.
// It does one thing at a time, and finds each group's coordinator as the
// members do.
type groupAdmin struct {
	*router
	busy   bool
	groups []adminGroup
	// coord is each group's coordinator node, while known.
	coord map[string]int
	// Versions drawn once, among those the broker serves.
	vFind, vDeleteGroups, vOffsetFetch int16
}

// adminGroup is a group the admin may act on, with its members and the
// topic they read.
type adminGroup struct {
	id, topic string
	members   []*member
}

func newGroupAdmin(w *World) *groupAdmin {
	a := &groupAdmin{router: newRouter(w, "group-admin"), coord: map[string]int{}}
	a.vFind = a.version(0, 5)
	a.vDeleteGroups = a.version(0, 2)
	a.vOffsetFetch = a.version(1, 7)
	for _, m := range w.members {
		if n := len(a.groups); n == 0 || a.groups[n-1].id != m.group {
			a.groups = append(a.groups, adminGroup{id: m.group, topic: m.topic})
		}
		g := &a.groups[len(a.groups)-1]
		g.members = append(g.members, m)
	}
	return a
}

func (a *groupAdmin) start() { a.w.every(a.rnd, a.w.cfg.GroupAdminEvery, &a.busy, a.act) }

func (a *groupAdmin) act() {
	g := &a.groups[a.rnd.Pick(len(a.groups))]
	a.busy = true
	done := func() { a.busy = false }
	switch a.rnd.Pick(5) {
	case 0:
		a.describe(g, done)
	case 1:
		a.deleteOffsets(g, done)
	default:
		a.drain(g, done)
	}
}

// drain stands the group's members down for a while, then, once they
// may have left, deletes the group or some of its offsets, retrying while
// the group is not empty yet (a member that crashed silently stays until
// its session expires), and describes the group's offsets.
func (a *groupAdmin) drain(g *adminGroup, done func()) {
	away := a.rnd.Range(4, 16) * sched.Second
	until := a.w.Loop.Now() + away
	for _, m := range g.members {
		m.standDown(away)
	}
	a.w.trace("group-admin: stands group %s down for %v", g.id, away)
	var attempt func()
	attempt = func() {
		again := func(code int16) {
			retry := a.rnd.Range(500, 2000) * sched.Millisecond
			if code == kerr.NonEmptyGroup.Code && a.w.Loop.Now()+retry < until && a.live() {
				a.w.Loop.After(retry, attempt)
				return
			}
			a.w.Loop.After(a.rnd.Range(0, 2000)*sched.Millisecond, func() { a.describe(g, done) })
		}
		if a.rnd.Pick(3) == 0 {
			a.deleteOffsetsThen(g, again)
		} else {
			a.deleteGroup(g, again)
		}
	}
	a.w.Loop.After(a.rnd.Range(200, 3000)*sched.Millisecond, attempt)
}

func (a *groupAdmin) live() bool { return a.w.active && !a.w.stopped }

// coordinator calls fn with group's coordinator, finding it first if it
// is unknown; with ok false if no broker named one in a few tries.
func (a *groupAdmin) coordinator(group string, fn func(node int, ok bool)) {
	if node, ok := a.coord[group]; ok {
		fn(node, true)
		return
	}
	var try func(left int)
	try = func(left int) {
		a.askCoordinator(a.vFind, group, func(node int, ok bool) {
			switch {
			case ok:
				a.coord[group] = node
				fn(node, true)
			case left > 1 && a.live():
				a.w.Loop.After(a.rnd.Range(50, 500)*sched.Millisecond, func() { try(left - 1) })
			default:
				fn(-1, false)
			}
		})
	}
	try(3)
}

// toCoordinator sends req to group's coordinator and calls done with the
// reply and when the request was sent (errNotSent if it never was). A
// lost connection or a coordinator error (see stillCoordinator) makes the
// admin forget the coordinator.
func (a *groupAdmin) toCoordinator(group string, req kmsg.Request, done func(r reply, call int64)) {
	a.coordinator(group, func(node int, ok bool) {
		if !ok || !a.live() {
			done(reply{err: errNotSent}, a.w.Loop.Now())
			return
		}
		call := a.w.Loop.Now()
		a.conn(node).do(req, false, func(r reply) {
			if r.err != nil {
				delete(a.coord, group)
			}
			done(r, call)
		})
	})
}

// stillCoordinator forgets group's coordinator if code says it is not, or
// not yet, the coordinator.
func (a *groupAdmin) stillCoordinator(group string, code int16) {
	if notCoordinator(code) {
		delete(a.coord, group)
	}
}

// op starts the history record of an admin operation on g.
func (a *groupAdmin) op(kind history.GroupKind, g *adminGroup) *history.GroupOp {
	return &history.GroupOp{Client: a.idx, Member: a.name, Kind: kind, Group: g.id, Topic: g.topic, Generation: -1}
}

// deleteGroup sends DeleteGroups for g and calls then with the answer's
// error code (-1: none came).
func (a *groupAdmin) deleteGroup(g *adminGroup, then func(code int16)) {
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Version = a.vDeleteGroups
	req.Groups = []string{g.id}
	op := a.op(history.DeleteGroup, g)
	a.toCoordinator(g.id, req, func(r reply, call int64) {
		op.Call, op.Return, op.ErrCode = call, history.Infinity, -1
		resp, ok := r.resp.(*kmsg.DeleteGroupsResponse)
		switch {
		case errors.Is(r.err, errNotSent):
			then(-1)
			return
		case r.err != nil || !ok:
		case len(resp.Groups) != 1 || resp.Groups[0].Group != g.id:
			a.w.fail("protocol", "group-admin: delete groups response does not answer its one group")
			return
		default:
			op.Return, op.ErrCode = a.w.Loop.Now(), resp.Groups[0].ErrorCode
			a.stillCoordinator(g.id, op.ErrCode)
		}
		a.w.History.AddGroup(op)
		if op.ErrCode == 0 {
			a.w.counts.Inc(fault.AdminDeleteGroup)
		}
		a.w.trace("group-admin: delete group %s -> %s", g.id, errName(op.ErrCode))
		then(op.ErrCode)
	})
}

// deleteOffsets deletes committed offsets of some of g's partitions.
func (a *groupAdmin) deleteOffsets(g *adminGroup, done func()) {
	a.deleteOffsetsThen(g, func(int16) { done() })
}

// deleteOffsetsThen sends OffsetDelete for some of g's partitions and
// calls then with the answer's error code, the group's or the first
// partition's (-1: none came).
func (a *groupAdmin) deleteOffsetsThen(g *adminGroup, then func(code int16)) {
	t := a.w.topic(g.topic)
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = g.id
	rt := kmsg.NewOffsetDeleteRequestTopic()
	rt.Topic = g.topic
	op := a.op(history.DeleteOffsets, g)
	for p := range t.Partitions {
		if a.rnd.Coin() {
			rt.Partitions = append(rt.Partitions, kmsg.OffsetDeleteRequestTopicPartition{Partition: p})
			op.Parts = append(op.Parts, history.GroupPart{Partition: p, Offset: -1, ErrCode: -1})
		}
	}
	if len(rt.Partitions) == 0 {
		then(-1)
		return
	}
	req.Topics = []kmsg.OffsetDeleteRequestTopic{rt}
	a.toCoordinator(g.id, req, func(r reply, call int64) {
		op.Call, op.Return = call, history.Infinity
		resp, ok := r.resp.(*kmsg.OffsetDeleteResponse)
		code := int16(-1)
		switch {
		case errors.Is(r.err, errNotSent):
			then(-1)
			return
		case r.err != nil || !ok:
		default:
			op.Return, code = a.w.Loop.Now(), resp.ErrorCode
			a.stillCoordinator(g.id, code)
			for i := range op.Parts {
				op.Parts[i].ErrCode = code
			}
			for _, t := range resp.Topics {
				for _, rp := range t.Partitions {
					for i := range op.Parts {
						if t.Topic == g.topic && op.Parts[i].Partition == rp.Partition && resp.ErrorCode == 0 {
							op.Parts[i].ErrCode = rp.ErrorCode
						}
					}
				}
			}
		}
		a.w.History.AddGroup(op)
		for _, p := range op.Parts {
			if p.ErrCode == 0 {
				a.w.counts.Inc(fault.AdminDeleteOffsets)
				break
			}
		}
		a.w.trace("group-admin: delete offsets of %s %v -> %s", g.id, op.Parts, errName(code))
		then(op.Parts[0].ErrCode)
	})
}

// describe reads g's committed offsets of its topic, as
// kafka-consumer-groups --describe does.
func (a *groupAdmin) describe(g *adminGroup, done func()) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = a.vOffsetFetch
	req.Group = g.id
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = g.topic
	for p := range a.w.topic(g.topic).Partitions {
		rt.Partitions = append(rt.Partitions, p)
	}
	req.Topics = []kmsg.OffsetFetchRequestTopic{rt}
	a.toCoordinator(g.id, req, func(r reply, call int64) {
		defer done()
		resp, ok := r.resp.(*kmsg.OffsetFetchResponse)
		if r.err != nil || !ok {
			return
		}
		op := a.op(history.FetchOffsets, g)
		op.Call, op.Return, op.ErrCode = call, a.w.Loop.Now(), resp.ErrorCode
		fetchedOffsets(resp, op)
		for _, p := range op.Parts {
			a.stillCoordinator(g.id, p.ErrCode)
		}
		a.w.History.AddGroup(op)
		a.w.trace("group-admin: describe %s -> %v %v", g.id, errName(resp.ErrorCode), op.Parts)
	})
}

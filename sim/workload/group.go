package workload

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/sim/history"
	"github.com/weirmq/weir/sim/sched"
)

// member is one member of a classic consumer group: it finds the
// coordinator, joins (protocol type "consumer", one protocol "range" with
// empty metadata), and, as leader, assigns the group topic's partitions
// round-robin; it syncs, heartbeats every session/3, reads its partitions
// from the committed offsets and commits what it read now and then. In
// the chaos phase it also leaves, crashes silently and comes back.
//
// The coordinator is found as Kafka's clients find it: FindCoordinator to
// any broker names it (the leader of the group's __consumer_offsets
// partition), and every group request goes there until the member learns
// it moved: a lost connection or a timeout, or NOT_COORDINATOR,
// COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS or
// REQUEST_TIMED_OUT make it forget the coordinator and look it up again,
// after a backoff. Like Kafka's clients it keeps its member id and
// generation meanwhile: a heartbeat or commit that failed that way does
// not make it rejoin, and after a JoinGroup or SyncGroup that did, it
// joins again with the same member id.
//
// Every (re)join starts a new epoch; an answer to a request of an older
// epoch is dropped, so a member never acts on a generation it left.
type member struct {
	*router
	group, topic string
	// Versions drawn per member, among those the broker serves.
	vFind, vJoin, vSync, vHeartbeat, vLeave, vCommit, vOffsetFetch, vFetch int16
	vListOffsets                                                           int16
	session, rebalance                                                     sched.Time

	memberID string
	gen      int32
	epoch    int
	parts    []*mpart
	// staleGen, when set, is a generation just left whose positions the
	// member commits (wrongly) once the new generation is assigned.
	staleGen int32

	// coord is the coordinator's node index (-1: unknown); finding: a
	// FindCoordinator is under way, and coordWaiters wait for its answer.
	coord        int
	finding      bool
	coordWaiters []func(node int)

	// kip848 is set for a member of a KIP-848 consumer group
	// (group848.go), which heartbeats instead of joining and syncing.
	kip848 *consumer848
	// awayUntil: the group admin stood the member down (standDown); it
	// joins again no sooner.
	awayUntil sched.Time
}

// mpart is an assigned partition and the member's position in it; -1 while
// the position is being found.
type mpart struct {
	partition int32
	pos       int64
}

// groupProtocol is the one assignment protocol the members speak; the
// broker does not read its metadata or assignments.
const groupProtocol = "range"

func newMember(w *World, name, group, topic string) *member {
	m := &member{router: newRouter(w, name), group: group, topic: topic, coord: -1}
	m.vFind = m.version(0, 5)
	m.vJoin = m.version(4, 9) // v4+: MEMBER_ID_REQUIRED
	m.vSync = m.version(0, 5)
	m.vHeartbeat = m.version(0, 4)
	m.vLeave = m.version(0, 5)
	m.vCommit = m.version(2, 9)
	m.vOffsetFetch = m.version(1, 7)
	m.vFetch = m.version(4, 12)
	m.vListOffsets = 1
	if m.routed() {
		m.vListOffsets = m.version(4, 8) // with CurrentLeaderEpoch
	}
	// group.min.session.timeout.ms is 6s by default.
	m.session = sched.Time(m.rnd.Range(6, 10)) * sched.Second
	m.rebalance = sched.Time(m.rnd.Range(MinRebalanceSec, maxRebalanceSec)) * sched.Second
	// The coordinator holds a JoinGroup until the rebalance completes: up
	// to the longest rebalance timeout among the members, after the
	// group.initial.rebalance.delay.ms (3s by default) of a new group. The
	// client waits that long on top of its usual timeout, as real clients
	// do, or it would give up on every slow rebalance and start it over.
	m.timeout += (maxRebalanceSec + 3) * sched.Second
	return m
}

// MinRebalanceSec and maxRebalanceSec bound the members' rebalance
// timeouts.
const (
	MinRebalanceSec = 3
	maxRebalanceSec = 10
)

func (m *member) live() bool { return m.w.active && !m.w.stopped }

func (m *member) start() {
	if m.kip848 != nil {
		m.start848()
		return
	}
	m.w.trace("%s: start group %s topic %s (join v%d sync v%d heartbeat v%d commit v%d offset fetch v%d, session %v)",
		m.name, m.group, m.topic, m.vJoin, m.vSync, m.vHeartbeat, m.vCommit, m.vOffsetFetch, m.session)
	m.rejoin(0)
	m.chaos()
}

// chaos now and then makes the member leave the group, crash (go silent,
// so its session must expire) and come back as a new member, or pause (a
// long GC or a stopped VM: it resumes as the member it was, which the group
// may have fenced meanwhile). Seldom enough that a group is often stable
// for a while between rebalances, so members read and commit.
func (m *member) chaos() {
	m.w.Loop.After(m.rnd.Range(5, 25)*sched.Second, func() {
		if !m.live() {
			return
		}
		back := m.rnd.Range(100*sched.Millisecond, 2*m.session)
		switch m.rnd.Pick(3) {
		case 0:
			m.leave()
			m.w.Loop.After(back, func() { m.rejoin(0) })
		case 1:
			m.w.trace("%s: crashes (member %s gen %d)", m.name, m.memberID, m.gen)
			m.epoch++
			m.abort("member crashed")
			// A new process knows no member id, nor the coordinator.
			m.memberID, m.coord = "", -1
			m.w.Loop.After(back, func() { m.rejoin(0) })
		default:
			m.pause(back)
		}
		m.chaos()
	})
}

// pause stops everything the member does for d, then resumes it as it
// was: same member id and generation, same positions.
func (m *member) pause(d sched.Time) {
	m.w.trace("%s: pauses for %v (member %s gen %d)", m.name, d, m.memberID, m.gen)
	m.epoch++
	m.w.Loop.After(d, func() {
		if !m.live() {
			return
		}
		if m.memberID == "" {
			m.rejoin(0)
			return
		}
		m.epoch++
		m.heartbeat(m.epoch)
		m.offsetFetch(m.epoch)
	})
}

// rejoin starts a new epoch: after a pause, join (finding the coordinator
// first if it is unknown).
func (m *member) rejoin(after sched.Time) {
	m.epoch++
	epoch := m.epoch
	m.w.Loop.After(m.notBeforeBack(after), func() {
		if m.current(epoch) {
			m.join(epoch)
		}
	})
}

// standDown makes the member leave its group and stay out for d, as an
// operator stops a group's consumers to delete the group or its offsets
// (groupAdmin). Whatever the member's own chaos does meanwhile, it joins
// again only after d, as a new member.
func (m *member) standDown(d sched.Time) {
	m.awayUntil = m.w.Loop.Now() + d
	m.w.trace("%s: stands down for %v (member %s gen %d)", m.name, d, m.memberID, m.gen)
	if m.kip848 != nil {
		if m.memberID != "" && m.coord >= 0 {
			m.leave848()
		}
		m.drop848()
		m.memberID = ""
		m.join848(d)
		return
	}
	m.leave()
	m.rejoin(d)
}

// notBeforeBack stretches a wait of d to the end of a stand-down.
func (m *member) notBeforeBack(d sched.Time) sched.Time {
	return max(d, m.awayUntil-m.w.Loop.Now())
}

// current reports whether epoch is still the member's, and the run goes on.
func (m *member) current(epoch int) bool { return m.epoch == epoch && m.live() }

func (m *member) backoff() sched.Time { return m.rnd.Range(50, 500) * sched.Millisecond }

// coordinator calls fn with the coordinator's node index, finding it
// first if it is unknown. One lookup runs at a time, whoever needs it.
func (m *member) coordinator(fn func(node int)) {
	if m.coord >= 0 {
		fn(m.coord)
		return
	}
	m.coordWaiters = append(m.coordWaiters, fn)
	if !m.finding {
		m.finding = true
		m.findCoordinator()
	}
}

// findCoordinator asks a broker for the coordinator until one names it,
// with a backoff between tries, then hands it to the waiters.
func (m *member) findCoordinator() {
	if !m.live() {
		m.finding, m.coordWaiters = false, nil
		return
	}
	m.askCoordinator(m.vFind, m.group, func(node int, ok bool) {
		if !ok {
			m.w.Loop.After(m.backoff(), m.findCoordinator)
			return
		}
		m.w.trace("%s: coordinator of %s is node %d", m.name, m.group, node+1)
		m.coord, m.finding = node, false
		waiters := m.coordWaiters
		m.coordWaiters = nil
		for _, fn := range waiters {
			fn(node)
		}
	})
}

// askCoordinator asks a broker at random which node coordinates group (one
// may not know the __consumer_offsets leaders yet, or be cut off), and
// calls done with the node's index, or with ok false if it named none.
func (r *router) askCoordinator(version int16, group string, done func(node int, ok bool)) {
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version = version
	req.CoordinatorKey = group
	if req.Version >= 4 {
		req.CoordinatorKeys = []string{group}
	}
	r.anyNode = -1
	r.any(req, func(rp reply) {
		resp, ok := rp.resp.(*kmsg.FindCoordinatorResponse)
		code, id := int16(-1), int32(-1)
		if rp.err == nil && ok {
			code, id = resp.ErrorCode, resp.NodeID
			if req.Version >= 4 {
				if len(resp.Coordinators) != 1 {
					r.w.fail("protocol", fmt.Sprintf("%s: find coordinator answered %d keys for 1", r.name, len(resp.Coordinators)))
					return
				}
				code, id = resp.Coordinators[0].ErrorCode, resp.Coordinators[0].NodeID
			}
		}
		if code != 0 {
			done(-1, false)
			return
		}
		node, ok := r.nodeIndex(id)
		if !ok {
			r.w.fail("protocol", fmt.Sprintf("%s: find coordinator named node %d, which is not in the cluster", r.name, id))
			return
		}
		done(node, true)
	})
}

// toCoordinator sends req to the coordinator once it is known, unless
// epoch has ended by then (the request is then never sent), and calls
// done with the reply and when the request was sent.
func (m *member) toCoordinator(epoch int, req kmsg.Request, done func(r reply, call int64)) {
	m.coordinator(func(node int) {
		if m.current(epoch) {
			m.sendCoordinator(node, req, done)
		}
	})
}

// sendCoordinator sends req to node, the coordinator; a lost connection
// or a timeout makes the member forget it.
func (m *member) sendCoordinator(node int, req kmsg.Request, done func(r reply, call int64)) {
	call := m.w.Loop.Now()
	m.conn(node).do(req, false, func(r reply) {
		if r.err != nil {
			m.forgetCoordinator(r.err.Error())
		}
		done(r, call)
	})
}

// coordinatorError reports whether code says the node asked is not, or not
// yet, the group's coordinator (REQUEST_TIMED_OUT: its write to
// __consumer_offsets did not complete), and if so forgets the coordinator,
// as Kafka's clients do.
func (m *member) coordinatorError(code int16) bool {
	if notCoordinator(code) {
		m.forgetCoordinator(kerr.ErrorForCode(code).Error())
		return true
	}
	return false
}

// notCoordinator reports whether code says the node asked is not, or not
// yet, the group's coordinator.
func notCoordinator(code int16) bool {
	switch kerr.ErrorForCode(code) {
	case kerr.NotCoordinator, kerr.CoordinatorNotAvailable, kerr.CoordinatorLoadInProgress, kerr.RequestTimedOut:
		return true
	}
	return false
}

// forgetCoordinator makes the next group request find the coordinator
// again.
func (m *member) forgetCoordinator(why string) {
	if m.coord >= 0 {
		m.w.trace("%s: forgets coordinator node %d: %s", m.name, m.coord+1, why)
		m.coord = -1
	}
}

func (m *member) join(epoch int) {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = m.vJoin
	req.Group = m.group
	req.SessionTimeoutMillis = int32(m.session / sched.Millisecond)
	req.RebalanceTimeoutMillis = int32(m.rebalance / sched.Millisecond)
	req.MemberID = m.memberID
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = groupProtocol, []byte{}
	req.Protocols = []kmsg.JoinGroupRequestProtocol{p}
	m.toCoordinator(epoch, req, func(r reply, call int64) {
		if !m.current(epoch) {
			return
		}
		if r.err != nil {
			m.rejoin(m.backoff())
			return
		}
		resp := r.resp.(*kmsg.JoinGroupResponse)
		op := &history.GroupOp{Client: m.idx, Member: m.name, Kind: history.Join, Group: m.group, Topic: m.topic,
			MemberID: resp.MemberID, Generation: resp.Generation, Leader: resp.ErrorCode == 0 && resp.LeaderID == resp.MemberID,
			Call: call, Return: m.w.Loop.Now(), ErrCode: resp.ErrorCode}
		m.w.History.AddGroup(op)
		m.w.trace("%s: join %s -> %v member %s gen %d leader %v", m.name, m.group, kerr.ErrorForCode(resp.ErrorCode), resp.MemberID, resp.Generation, op.Leader)
		switch kerr.ErrorForCode(resp.ErrorCode) {
		case nil:
			prevID, prevGen := m.memberID, m.gen
			m.memberID, m.gen = resp.MemberID, resp.Generation
			m.staleGen = 0
			if prevID == m.memberID && prevGen < m.gen && m.rnd.Coin() {
				m.staleGen = prevGen
			}
			var assignments []kmsg.SyncGroupRequestGroupAssignment
			if op.Leader {
				assignments = m.assign(resp.Members)
			}
			m.sync(epoch, assignments)
		case kerr.MemberIDRequired:
			m.memberID = resp.MemberID
			m.join(epoch)
		case kerr.UnknownMemberID, kerr.IllegalGeneration, kerr.FencedInstanceID:
			m.memberID = ""
			m.rejoin(m.backoff())
		default:
			m.coordinatorError(resp.ErrorCode)
			m.rejoin(m.backoff())
		}
	})
}

// assign deals the topic's partitions out round-robin over some of the
// members (in member id order, from one drawn at random), so that who gets
// what changes between generations and some members are often idle. Half
// the time an idle member is left out of the assignment altogether, as the
// protocol allows: the coordinator must then give it an empty one, not
// what it held before.
func (m *member) assign(members []kmsg.JoinGroupResponseMember) []kmsg.SyncGroupRequestGroupAssignment {
	ids := make([]string, 0, len(members))
	for _, mb := range members {
		ids = append(ids, mb.MemberID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var n int32
	if t := m.w.topic(m.topic); t != nil {
		n = t.Partitions
	}
	// The partitions go to busy members from the first drawn on; the
	// others are idle.
	byMember := make([][]int32, len(ids))
	first, busy := m.rnd.Pick(len(ids)), 1+m.rnd.Pick(len(ids))
	for p := range n {
		i := (int(p)%busy + first) % len(ids)
		byMember[i] = append(byMember[i], p)
	}
	omitIdle := m.rnd.Coin()
	var out []kmsg.SyncGroupRequestGroupAssignment
	for i, id := range ids {
		if omitIdle && len(byMember[i]) == 0 {
			continue
		}
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = id, encodeAssignment(byMember[i])
		out = append(out, a)
	}
	return out
}

// encodeAssignment is the members' own assignment format: a count, then
// the partition ids, each a big-endian int32.
func encodeAssignment(parts []int32) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(parts)))
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(p))
	}
	return b
}

func decodeAssignment(b []byte) ([]int32, bool) {
	if len(b) == 0 {
		return nil, true // a member the leader gave nothing
	}
	if len(b) < 4 {
		return nil, false
	}
	n := int(binary.BigEndian.Uint32(b))
	b = b[4:]
	if len(b) != 4*n {
		return nil, false
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(binary.BigEndian.Uint32(b[4*i:]))
	}
	return out, true
}

func (m *member) sync(epoch int, assignments []kmsg.SyncGroupRequestGroupAssignment) {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = m.vSync
	req.Group, req.Generation, req.MemberID = m.group, m.gen, m.memberID
	if req.Version >= 5 {
		pt, pn := "consumer", groupProtocol
		req.ProtocolType, req.Protocol = &pt, &pn
	}
	req.GroupAssignment = assignments
	m.toCoordinator(epoch, req, func(r reply, call int64) {
		if !m.current(epoch) {
			return
		}
		if r.err != nil {
			m.rejoin(m.backoff())
			return
		}
		resp := r.resp.(*kmsg.SyncGroupResponse)
		op := &history.GroupOp{Client: m.idx, Member: m.name, Kind: history.Sync, Group: m.group, Topic: m.topic,
			MemberID: m.memberID, Generation: m.gen, Call: call, Return: m.w.Loop.Now(), ErrCode: resp.ErrorCode}
		var parts []int32
		if resp.ErrorCode == 0 {
			var ok bool
			if parts, ok = decodeAssignment(resp.MemberAssignment); !ok {
				m.w.fail("protocol", fmt.Sprintf("%s: sync group returned an assignment no leader wrote: %x", m.name, resp.MemberAssignment))
				return
			}
			for _, p := range parts {
				op.Parts = append(op.Parts, history.GroupPart{Partition: p})
			}
		}
		m.w.History.AddGroup(op)
		m.w.trace("%s: sync %s gen %d -> %v %v", m.name, m.group, m.gen, kerr.ErrorForCode(resp.ErrorCode), parts)
		switch kerr.ErrorForCode(resp.ErrorCode) {
		case nil:
			if m.staleGen > 0 {
				// A commit of the generation just left, delayed past the
				// new one's assignment, as a stalled consumer would send
				// it: the coordinator must refuse it (claim 5).
				old, gen := m.parts, m.staleGen
				m.w.Loop.After(m.rnd.Range(1, 200)*sched.Millisecond, func() {
					if m.current(epoch) {
						m.commit(epoch, gen, old, false, nil)
					}
				})
				m.staleGen = 0
			}
			m.parts = nil
			for _, p := range parts {
				m.parts = append(m.parts, &mpart{partition: p, pos: -1})
			}
			m.heartbeatLater(epoch)
			m.offsetFetch(epoch)
		case kerr.UnknownMemberID, kerr.IllegalGeneration, kerr.FencedInstanceID:
			m.memberID = ""
			m.rejoin(m.backoff())
		default:
			m.coordinatorError(resp.ErrorCode)
			m.rejoin(m.backoff())
		}
	})
}

// heartbeatLater sends the next heartbeat in session/3.
func (m *member) heartbeatLater(epoch int) { m.heartbeatAfter(epoch, m.session/3) }

func (m *member) heartbeatAfter(epoch int, d sched.Time) {
	m.w.Loop.After(d, func() {
		if m.current(epoch) {
			m.heartbeat(epoch)
		}
	})
}

func (m *member) heartbeat(epoch int) {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = m.vHeartbeat
	req.Group, req.Generation, req.MemberID = m.group, m.gen, m.memberID
	m.toCoordinator(epoch, req, func(r reply, _ int64) {
		if !m.current(epoch) {
			return
		}
		var code int16
		if r.err == nil {
			code = r.resp.(*kmsg.HeartbeatResponse).ErrorCode
		}
		if r.err != nil || m.coordinatorError(code) {
			// The member stays in its generation, and soon tells the
			// coordinator, found again, that it is alive.
			m.heartbeatAfter(epoch, m.backoff())
			return
		}
		switch kerr.ErrorForCode(code) {
		case nil:
			m.heartbeatLater(epoch)
		case kerr.RebalanceInProgress:
			m.w.trace("%s: heartbeat gen %d -> rebalance in progress", m.name, m.gen)
			m.rejoin(0)
		case kerr.UnknownMemberID, kerr.IllegalGeneration, kerr.FencedInstanceID:
			m.w.trace("%s: heartbeat gen %d -> %v", m.name, m.gen, kerr.ErrorForCode(code))
			m.memberID = ""
			m.rejoin(0)
		default:
			m.heartbeatLater(epoch)
		}
	})
}

// leave sends LeaveGroup and forgets the member id; the member comes back
// as a new one. As in Kafka's clients, only a known coordinator is told;
// otherwise the member's session runs out.
func (m *member) leave() {
	if m.memberID == "" || m.coord < 0 {
		m.epoch++
		m.memberID = ""
		return
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = m.vLeave
	req.Group = m.group
	if req.Version >= 3 {
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = m.memberID
		req.Members = []kmsg.LeaveGroupRequestMember{lm}
	} else {
		req.MemberID = m.memberID
	}
	op := &history.GroupOp{Client: m.idx, Member: m.name, Kind: history.Leave, Group: m.group, Topic: m.topic,
		MemberID: m.memberID, Generation: m.gen}
	m.epoch++
	m.memberID = ""
	m.sendCoordinator(m.coord, req, func(r reply, call int64) {
		if r.err != nil {
			return
		}
		resp := r.resp.(*kmsg.LeaveGroupResponse)
		op.Call, op.Return, op.ErrCode = call, m.w.Loop.Now(), resp.ErrorCode
		if resp.ErrorCode == 0 && len(resp.Members) == 1 {
			op.ErrCode = resp.Members[0].ErrorCode
		}
		m.coordinatorError(op.ErrCode)
		m.w.History.AddGroup(op)
		m.w.trace("%s: leave %s member %s -> %v", m.name, m.group, op.MemberID, kerr.ErrorForCode(op.ErrCode))
	})
}

// offsetFetch reads the committed offsets of the assigned partitions
// without a position: a member resumes where the group left off, not where
// it was itself, since another member may have owned the partition
// meanwhile.
func (m *member) offsetFetch(epoch int) {
	var need []*mpart
	for _, p := range m.parts {
		if p.pos < 0 {
			need = append(need, p)
		}
	}
	if len(need) == 0 {
		if len(m.parts) > 0 {
			m.poll(epoch)
		}
		return
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = m.vOffsetFetch
	req.Group = m.group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = m.topic
	for _, p := range need {
		rt.Partitions = append(rt.Partitions, p.partition)
	}
	req.Topics = []kmsg.OffsetFetchRequestTopic{rt}
	m.toCoordinator(epoch, req, func(r reply, call int64) {
		if !m.current(epoch) {
			return
		}
		again := func() {
			m.w.Loop.After(m.backoff(), func() {
				if m.current(epoch) {
					m.offsetFetch(epoch)
				}
			})
		}
		if r.err != nil {
			again()
			return
		}
		resp := r.resp.(*kmsg.OffsetFetchResponse)
		m.coordinatorError(resp.ErrorCode)
		op := &history.GroupOp{Client: m.idx, Member: m.name, Kind: history.FetchOffsets, Group: m.group, Topic: m.topic,
			MemberID: m.memberID, Generation: m.gen, Call: call, Return: m.w.Loop.Now(), ErrCode: resp.ErrorCode}
		got := fetchedOffsets(resp, op)
		for _, p := range op.Parts {
			m.coordinatorError(p.ErrCode) // before v2, errors are per partition
		}
		m.w.History.AddGroup(op)
		m.w.trace("%s: offset fetch %s -> %v %v", m.name, m.group, kerr.ErrorForCode(resp.ErrorCode), op.Parts)
		if len(got) != len(need) {
			// A coordinator error and the like: ask again (the coordinator
			// found again if need be).
			again()
			return
		}
		for _, p := range need {
			p.pos = got[p.partition]
		}
		m.reset(epoch)
	})
}

// fetchedOffsets fills op's partitions from an OffsetFetch answer about
// op.Topic (each with the partition's error code, or the answer's) and
// returns the offsets answered without error.
func fetchedOffsets(resp *kmsg.OffsetFetchResponse, op *history.GroupOp) map[int32]int64 {
	got := map[int32]int64{}
	for _, t := range resp.Topics {
		if t.Topic != op.Topic {
			continue
		}
		for _, p := range t.Partitions {
			code := p.ErrorCode
			if code == 0 {
				code = resp.ErrorCode
			}
			op.Parts = append(op.Parts, history.GroupPart{Partition: p.Partition, Offset: p.Offset, ErrCode: code})
			if code == 0 {
				got[p.Partition] = p.Offset
			}
		}
	}
	return got
}

// reset finds the earliest offset of partitions with no committed offset
// (auto.offset.reset=earliest), then reads. It asks each leader for its
// partitions, and looks again once every answer is in.
func (m *member) reset(epoch int) {
	var need []*mpart
	for _, p := range m.parts {
		if p.pos < 0 {
			need = append(need, p)
		}
	}
	if len(need) == 0 {
		m.poll(epoch)
		return
	}
	ts := make([]target, len(need))
	for i, p := range need {
		ts[i] = m.w.target(m.topic, p.partition)
	}
	m.sendSplit(ts, func(g leaderGroup) (kmsg.Request, func(reply)) {
		req := m.earliest(g, need)
		return req, func(r reply) {
			if !m.current(epoch) {
				return
			}
			if resp, ok := r.resp.(*kmsg.ListOffsetsResponse); r.err == nil && ok {
				for _, t := range resp.Topics {
					for _, rp := range t.Partitions {
						for _, k := range g.at {
							p := need[k]
							if p.partition == rp.Partition && t.Topic == m.topic {
								m.staleOn(ts[k], rp.ErrorCode)
								if rp.ErrorCode == 0 && rp.Offset > p.pos {
									// Nothing committed: what lies below the
									// log start was removed by retention.
									m.delivered(p.partition, 0, rp.Offset, true)
									p.pos = rp.Offset
								}
							}
						}
					}
				}
			}
		}
	}, func() {
		if !m.current(epoch) {
			return
		}
		m.w.Loop.After(m.backoff(), func() {
			if m.current(epoch) {
				m.reset(epoch)
			}
		})
	})
}

// earliest asks for the log start of the partitions of g (need[g.at]).
func (m *member) earliest(g leaderGroup, need []*mpart) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = m.vListOffsets
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = m.topic
	for i, k := range g.at {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = need[k].partition, -2, g.epochs[i]
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.ListOffsetsRequestTopic{rt}
	return req
}

// poll reads the assigned partitions from their positions, one fetch to
// each leader, and once every answer is in now and then commits the
// positions.
func (m *member) poll(epoch int) {
	var parts []fetchPart
	var ready []*mpart
	for _, p := range m.parts {
		if p.pos >= 0 {
			parts = append(parts, fetchPart{topic: m.topic, partition: p.partition, offset: p.pos, maxBytes: 1 << 20})
			ready = append(ready, p)
		}
	}
	if len(ready) == 0 {
		m.w.Loop.After(m.backoff(), func() {
			if m.current(epoch) {
				m.poll(epoch)
			}
		})
		return
	}
	call := m.w.Loop.Now()
	m.sendSplit(m.w.fetchTargets(parts, m.vFetch), func(g leaderGroup) (kmsg.Request, func(reply)) {
		asked := make([]fetchPart, len(g.at))
		mine := make([]*mpart, len(g.at))
		for i, k := range g.at {
			asked[i], mine[i] = parts[k], ready[k]
			asked[i].epoch = g.epochs[i]
		}
		req := newFetch(m.vFetch, asked)
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 100, 1, 1<<20
		req.SessionID, req.SessionEpoch = 0, -1
		return req, func(r reply) {
			if m.current(epoch) && r.err == nil {
				m.fetched(epoch, mine, asked, r, call)
			}
		}
	}, func() {
		if !m.current(epoch) {
			return
		}
		if m.rnd.Pick(4) == 0 {
			m.commit(epoch, m.gen, m.parts, true, nil)
		}
		m.w.Loop.After(m.rnd.Range(0, 100)*sched.Millisecond, func() {
			if m.current(epoch) {
				m.poll(epoch)
			}
		})
	})
}

func (m *member) fetched(epoch int, ready []*mpart, asked []fetchPart, r reply, call int64) {
	resp := r.resp.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		return
	}
	for _, fp := range fetchedParts(resp, 1<<20) {
		for i, p := range ready {
			if !fp.matches(asked[i], false) || p.pos != asked[i].offset {
				continue
			}
			// The operation checks the batches' CRCs; the consumers'
			// fetches already feed the read checkers, so it stays out of
			// the history.
			f, ok := m.w.fetchOp(m.router, asked[i], fp, false, call, r.flipped, false)
			if !ok {
				break
			}
			m.staleOn(m.w.fetchTarget(asked[i], m.vFetch), f.ErrCode)
			switch kerr.ErrorForCode(f.ErrCode) {
			case nil:
				if n := len(f.Records); n > 0 {
					p.pos = f.Records[n-1].Offset + 1
					m.delivered(p.partition, f.Records[0].Offset, p.pos, false)
				}
			case kerr.OffsetOutOfRange:
				// Retention moved the log start past the position; reset
				// never moves it back.
				p.pos = -1
				m.w.Loop.After(0, func() {
					if m.current(epoch) {
						m.resetOne(epoch, p, asked[i].offset)
					}
				})
			}
			break
		}
	}
}

// delivered notes that the member got past [from, to) of a partition:
// read, or skipped because retention removed it.
func (m *member) delivered(partition int32, from, to int64, skipped bool) {
	m.w.History.AddDelivery(history.Delivery{Group: m.group, Topic: m.topic, Partition: partition, From: from, To: to, Skipped: skipped})
}

// resetOne moves a partition whose position fell out of range to the log
// start, unless that would move it back (its position is then kept, and
// the next fetch tells).
func (m *member) resetOne(epoch int, p *mpart, was int64) {
	t := m.w.target(m.topic, p.partition)
	m.send(t, func(current int32) kmsg.Request {
		return m.earliest(leaderGroup{at: []int{0}, epochs: []int32{current}}, []*mpart{p})
	}, false, func(r reply) {
		if !m.current(epoch) || p.pos >= 0 {
			return
		}
		p.pos = was
		resp, ok := r.resp.(*kmsg.ListOffsetsResponse)
		if r.err == nil && ok && len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 {
			rp := resp.Topics[0].Partitions[0]
			m.staleOn(t, rp.ErrorCode)
			if rp.ErrorCode == 0 && rp.Offset > was {
				m.delivered(p.partition, was, rp.Offset, true)
				p.pos = rp.Offset
			}
		}
	})
}

// commit commits the known positions of parts, with generation gen (a KIP-848
// member's epoch); react: a classic member rejoins if the answer says it
// must (a KIP-848 member hears it from its heartbeats). then, if set, runs
// once the commit is answered, failed or lost, or at once if there is
// nothing to commit; never if the member's epoch ends before it is sent. A commit answered with a
// coordinator error or REQUEST_TIMED_OUT, or whose answer was lost, may or
// may not have taken effect: the history has it with its error code (-1
// for a lost answer, with no return), which the checkers take as
// unacknowledged.
func (m *member) commit(epoch int, gen int32, parts []*mpart, react bool, then func()) {
	if then == nil {
		then = func() {}
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = m.vCommit
	req.Group, req.Generation, req.MemberID = m.group, gen, m.memberID
	req.RetentionTimeMillis = -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = m.topic
	op := &history.GroupOp{Client: m.idx, Member: m.name, Kind: history.Commit, Group: m.group, Topic: m.topic,
		MemberID: m.memberID, Generation: gen}
	for _, p := range parts {
		if p.pos < 0 {
			continue
		}
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p.partition, p.pos, -1
		rt.Partitions = append(rt.Partitions, rp)
		// Until the response says otherwise a partition counts as not
		// committed (-1, UNKNOWN_SERVER_ERROR).
		op.Parts = append(op.Parts, history.GroupPart{Partition: p.partition, Offset: p.pos, ErrCode: -1})
	}
	if len(rt.Partitions) == 0 {
		then()
		return
	}
	req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
	m.toCoordinator(epoch, req, func(r reply, call int64) {
		defer then()
		op.Call = call
		switch {
		case errors.Is(r.err, errNotSent):
			return // it never left, so it cannot take effect
		case r.err != nil:
			op.Return = history.Infinity
			m.w.History.AddGroup(op)
			m.w.trace("%s: commit %s gen %d %v: %v", m.name, m.group, op.Generation, op.Parts, r.err)
			return
		}
		resp := r.resp.(*kmsg.OffsetCommitResponse)
		op.Return = m.w.Loop.Now()
		for _, t := range resp.Topics {
			for _, rp := range t.Partitions {
				for i := range op.Parts {
					if t.Topic == m.topic && op.Parts[i].Partition == rp.Partition {
						op.Parts[i].ErrCode = rp.ErrorCode
					}
				}
			}
		}
		m.w.History.AddGroup(op)
		m.w.trace("%s: commit %s gen %d %v", m.name, m.group, op.Generation, op.Parts)
		for _, gp := range op.Parts {
			if m.coordinatorError(gp.ErrCode) {
				break
			}
		}
		if !react || m.kip848 != nil || !m.current(epoch) {
			return
		}
		for _, gp := range op.Parts {
			switch kerr.ErrorForCode(gp.ErrCode) {
			case kerr.RebalanceInProgress:
				m.rejoin(0)
				return
			case kerr.UnknownMemberID, kerr.IllegalGeneration, kerr.FencedInstanceID:
				m.memberID = ""
				m.rejoin(0)
				return
			}
		}
	})
}

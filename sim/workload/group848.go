package workload

import (
	"encoding/hex"
	"errors"
	"regexp"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/sim/history"
	"github.com/weirmq/weir/sim/sched"
)

// consumer848 is what a member of a KIP-848 consumer group keeps on top of
// a classic member's reading and committing: it speaks
// ConsumerGroupHeartbeat instead of JoinGroup, SyncGroup and Heartbeat,
// and the coordinator assigns (uniform or range, or its default). As
// Kafka's clients do, it reconciles each assignment it is sent: it stops
// reading the partitions taken away, commits their positions and waits
// for the answer, and only then reports in its next heartbeat that it no
// longer owns them; partitions added are read from their committed
// offsets. It subscribes by topic name or, half the time on v1, by a
// regular expression matching just its topic.
//
// The member's reading runs in epochs (member.epoch), as a classic
// member's does; every assignment change starts a new one. Heartbeats run
// in lives: a crash or a leave ends one.
type consumer848 struct {
	version  int16
	assignor *string
	regex    *string
	life     int
	// owned is what the member holds (and reports): the partitions of its
	// last assignment, once the revoked ones are committed and released.
	owned []int32
	// intervalMs is the heartbeat interval the coordinator asked for.
	intervalMs int32
	// inFlight: a heartbeat is out; another is sent only after it.
	inFlight bool
}

func newMember848(w *World, name, group, topic string) *member {
	m := newMember(w, name, group, topic)
	c := &consumer848{version: m.version(0, 1), intervalMs: 1000}
	if m.rnd.Coin() {
		a := []string{"uniform", "range"}[m.rnd.Pick(2)]
		c.assignor = &a
	}
	if c.version >= 1 && m.rnd.Coin() {
		re := "^" + regexp.QuoteMeta(topic) + "$"
		c.regex = &re
	}
	m.vCommit = 9 // commits carry the member epoch
	m.kip848 = c
	return m
}

func (m *member) start848() {
	c := m.kip848
	m.w.trace("%s: start consumer group %s topic %s (heartbeat v%d, assignor %v, regex %v)", m.name, m.group, m.topic, c.version, deref(c.assignor), deref(c.regex))
	m.join848(0)
	m.chaos848()
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

// chaos848 now and then makes the member leave (member epoch -1) or crash
// silently (its session must expire), and come back as a new member.
func (m *member) chaos848() {
	m.w.Loop.After(m.rnd.Range(5, 25)*sched.Second, func() {
		if !m.live() {
			return
		}
		back := m.rnd.Range(100*sched.Millisecond, 20*sched.Second)
		switch m.rnd.Pick(3) {
		case 0:
			if m.memberID != "" && m.coord >= 0 {
				m.leave848()
			}
		case 1:
			m.w.trace("%s: crashes (member %s epoch %d)", m.name, m.memberID, m.gen)
			m.abort("member crashed")
			m.coord = -1
		default:
			m.pause848(back)
			m.chaos848()
			return
		}
		m.drop848()
		m.memberID = ""
		m.join848(back)
		m.chaos848()
	})
}

// pause848 stops everything the member does for d, then resumes it as it
// was: same member id, epoch, owned partitions and positions. The
// coordinator may have fenced it meanwhile; its next heartbeat says so.
func (m *member) pause848(d sched.Time) {
	c := m.kip848
	m.w.trace("%s: pauses for %v (member %s epoch %d)", m.name, d, m.memberID, m.gen)
	c.life++
	c.inFlight = false
	m.epoch++
	m.w.Loop.After(d, func() {
		if !m.live() {
			return
		}
		c.life++
		m.epoch++
		if m.memberID == "" || m.gen == 0 {
			m.join848(0)
			return
		}
		m.heartbeat848(c.life)
		m.offsetFetch(m.epoch)
	})
}

// drop848 stops reading and forgets the assignment: the member is out of
// the group (fenced, gone, or a new process).
func (m *member) drop848() {
	m.kip848.life++
	m.kip848.inFlight = false
	m.epoch++
	m.parts, m.kip848.owned, m.gen = nil, nil, 0
}

// join848 starts a new life after a pause: the first heartbeat carries
// member epoch 0. A v1 member makes up its own id, as Kafka's clients do.
func (m *member) join848(after sched.Time) {
	c := m.kip848
	c.life++
	life := c.life
	m.w.Loop.After(m.notBeforeBack(after), func() {
		if c.life != life || !m.live() {
			return
		}
		if m.memberID == "" && c.version >= 1 {
			var b [16]byte
			for i := range b {
				b[i] = byte(m.rnd.Pick(256))
			}
			m.memberID = hex.EncodeToString(b[:])
		}
		m.gen = 0
		m.heartbeat848(life)
	})
}

// heartbeat848 sends one ConsumerGroupHeartbeat of this life.
func (m *member) heartbeat848(life int) {
	c := m.kip848
	if c.inFlight {
		return
	}
	t := m.w.topic(m.topic)
	if t == nil {
		return
	}
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = c.version
	req.Group, req.MemberID, req.MemberEpoch = m.group, m.memberID, m.gen
	req.RebalanceTimeoutMillis = int32(m.rebalance / sched.Millisecond)
	if c.regex != nil {
		req.SubscribedTopicRegex = c.regex
	} else {
		req.SubscribedTopicNames = []string{m.topic}
	}
	req.ServerAssignor = c.assignor
	// Every heartbeat reports what the member owns (Kafka's clients send
	// it only when it changed; null means unchanged), an empty list when
	// it owns nothing.
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if len(c.owned) > 0 {
		rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
		rt.TopicID, rt.Partitions = t.ID, slices.Clone(c.owned)
		req.Topics = append(req.Topics, rt)
	}
	op := &history.GroupOp{Client: m.idx, Member: m.name, Kind: history.Heartbeat, Group: m.group, Topic: m.topic,
		MemberID: m.memberID, SentEpoch: m.gen, Owned: slices.Clone(c.owned)}
	c.inFlight = true
	m.toCoordinator(m.epoch, req, func(r reply, call int64) {
		// The history has every heartbeat sent, even one whose answer
		// comes after the life ended (a pause, a crash): the partitions
		// it no longer reports count as released when it was sent.
		current := c.life == life && m.live()
		if current {
			c.inFlight = false
		}
		if r.err != nil {
			if !errors.Is(r.err, errNotSent) {
				// It may have been taken: what it reported counts.
				op.Call, op.Return, op.ErrCode = call, history.Infinity, -1
				m.w.History.AddGroup(op)
			}
			if current {
				m.heartbeat848After(life, m.backoff())
			}
			return
		}
		resp := r.resp.(*kmsg.ConsumerGroupHeartbeatResponse)
		op.Call, op.Return, op.ErrCode, op.Generation = call, m.w.Loop.Now(), resp.ErrorCode, resp.MemberEpoch
		if resp.ErrorCode == 0 && resp.MemberID != nil {
			op.MemberID = *resp.MemberID // a v0 member learns its id from the first answer
		}
		if resp.ErrorCode == 0 && resp.Assignment != nil {
			op.Assigned = true
			for _, at := range resp.Assignment.Topics {
				if at.TopicID == t.ID {
					for _, p := range at.Partitions {
						op.Parts = append(op.Parts, history.GroupPart{Partition: p})
					}
				}
			}
		}
		m.w.History.AddGroup(op)
		if current {
			m.heartbeated848(life, op, resp)
		}
	})
}

func (m *member) heartbeat848After(life int, d sched.Time) {
	m.w.Loop.After(d, func() {
		if m.kip848.life == life && m.live() {
			m.heartbeat848(life)
		}
	})
}

// heartbeated848 acts on a heartbeat's answer.
func (m *member) heartbeated848(life int, op *history.GroupOp, resp *kmsg.ConsumerGroupHeartbeatResponse) {
	c := m.kip848
	err := kerr.ErrorForCode(resp.ErrorCode)
	why := ""
	if resp.ErrorMessage != nil {
		why = " (" + *resp.ErrorMessage + ")"
	}
	m.w.trace("%s: consumer heartbeat %s epoch %d -> %v%s epoch %d assigned %v %v", m.name, m.group, op.SentEpoch, errName(resp.ErrorCode), why, resp.MemberEpoch, op.Assigned, op.Parts)
	switch {
	case err == nil:
	case m.coordinatorError(resp.ErrorCode):
		m.heartbeat848After(life, m.backoff())
		return
	case err == kerr.FencedMemberEpoch || err == kerr.UnknownMemberID:
		// Out of the group: everything it held is someone else's now.
		m.drop848()
		if err == kerr.UnknownMemberID {
			m.memberID = ""
		}
		m.join848(m.backoff())
		return
	default:
		m.heartbeat848After(life, m.backoff())
		return
	}
	if resp.MemberID != nil {
		m.memberID = *resp.MemberID
	}
	m.gen = resp.MemberEpoch
	if resp.HeartbeatIntervalMillis > 0 {
		c.intervalMs = resp.HeartbeatIntervalMillis
	}
	if !op.Assigned {
		m.heartbeat848After(life, sched.Time(c.intervalMs)*sched.Millisecond)
		return
	}
	var next []int32
	for _, gp := range op.Parts {
		next = append(next, gp.Partition)
	}
	slices.Sort(next)
	next = slices.Compact(next)
	if slices.Equal(next, c.owned) {
		// The coordinator repeats the assignment whenever a heartbeat
		// reports what the member owns: nothing to do.
		m.heartbeat848After(life, sched.Time(c.intervalMs)*sched.Millisecond)
		return
	}
	m.reconcile848(life, next)
}

// reconcile848 moves the member to a new assignment: it stops reading
// everything, commits the positions of the partitions it gives up and
// waits for that commit, then reads the new assignment from the committed
// offsets and tells the coordinator at once what it now owns.
func (m *member) reconcile848(life int, next []int32) {
	c := m.kip848
	var revoked []*mpart
	kept := map[int32]int64{}
	for _, p := range m.parts {
		if !slices.Contains(next, p.partition) {
			revoked = append(revoked, p)
		} else {
			kept[p.partition] = p.pos
		}
	}
	switchTo := func() {
		if c.life != life || !m.live() {
			return
		}
		m.epoch++
		m.parts = nil
		for _, p := range next {
			// A partition kept goes on from where the member was: its
			// own commit of it may still be on its way.
			pos, ok := kept[p]
			if !ok {
				pos = -1
			}
			m.parts = append(m.parts, &mpart{partition: p, pos: pos})
		}
		c.owned = next
		m.offsetFetch(m.epoch)
		m.heartbeat848(life)
	}
	if len(revoked) == 0 {
		switchTo()
		return
	}
	// Reading stops now; the member finishes what it was processing (for
	// up to a second and a half, as an application's revocation callback
	// may), then commits the revoked partitions and waits for the answer.
	m.epoch++
	epoch := m.epoch
	m.parts = revoked
	m.w.Loop.After(m.rnd.Range(0, 1500)*sched.Millisecond, func() {
		if m.epoch != epoch {
			return
		}
		m.commit(epoch, m.gen, revoked, false, func() {
			if m.epoch == epoch {
				switchTo()
			}
		})
	})
}

// leave848 leaves the group (member epoch -1): what the member held is
// released at once.
func (m *member) leave848() {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = m.kip848.version
	req.Group, req.MemberID, req.MemberEpoch = m.group, m.memberID, -1
	op := &history.GroupOp{Client: m.idx, Member: m.name, Kind: history.Heartbeat, Group: m.group, Topic: m.topic,
		MemberID: m.memberID, SentEpoch: -1, Owned: []int32{}}
	m.sendCoordinator(m.coord, req, func(r reply, call int64) {
		if r.err != nil {
			if !errors.Is(r.err, errNotSent) {
				op.Call, op.Return, op.ErrCode = call, history.Infinity, -1
				m.w.History.AddGroup(op)
			}
			return
		}
		resp := r.resp.(*kmsg.ConsumerGroupHeartbeatResponse)
		op.Call, op.Return, op.ErrCode, op.Generation = call, m.w.Loop.Now(), resp.ErrorCode, resp.MemberEpoch
		m.coordinatorError(resp.ErrorCode)
		m.w.History.AddGroup(op)
		m.w.trace("%s: leave consumer group %s member %s -> %v", m.name, m.group, op.MemberID, kerr.ErrorForCode(resp.ErrorCode))
	})
}

// errName is an error code's name, "" for none.
func errName(code int16) string {
	if e := kerr.TypedErrorForCode(code); e != nil {
		return e.Message
	}
	return "ok"
}

package group

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"
)

// The broker does not look inside assignments, so the property test checks
// what the coordinator itself promises, under random interleavings of
// JoinGroup (v3, v4 and v9), SyncGroup, Heartbeat, LeaveGroup, OffsetCommit
// and time from several clients:
//   - the group's generation never decreases;
//   - every JoinGroup answer of generation g names the same leader, and a
//     member it admits is in the member list the leader of g got;
//   - every successful SyncGroup answer for generation g carries exactly
//     what the leader of g assigned to that member (empty if the leader left
//     it out), and only members of g get one;
//   - a member, once removed, never comes back and never again gets a
//     successful answer to anything;
//   - every held JoinGroup and SyncGroup is answered exactly once, and all
//     of them are answered once the clients go quiet long enough;
//   - a failover (the coordinator unloaded, a new one replaying what was
//     written) keeps the latest generation any member synced, with the
//     assignment its leader gave, and the latest acknowledged commit.
//     Membership changes not yet stored may be undone by a failover (as
//     in Kafka), so the removal properties restart from the new
//     coordinator's view.

var protocolChoices = [][]string{{"range"}, {"range", "sticky"}, {"sticky", "range"}, {"sticky"}}

type propActor struct {
	client  string
	id      string
	gen     int32
	members []string // the member list, when this actor leads gen
	// phase is what a well-behaved client would do next: the "step"
	// action follows it, so that runs reach stable generations often,
	// while the other actions inject arbitrary (mis)behaviour.
	phase     propPhase
	protocols []string
	waiting   bool // a JoinGroup or SyncGroup of this actor is held
}

type propPhase int8

const (
	needJoin propPhase = iota
	needSync
	settled
)

type propSync struct {
	gen        int32
	member     string
	assignment []byte
}

type propModel struct {
	t   *rapid.T
	h   *harness
	cfg Config

	actors []*propActor

	maxGen      int32
	leaderOf    map[int32]string
	membersOf   map[int32][]string // from the leader's JoinGroup answer
	joinedIn    map[int32][]string // members that got a JoinGroup answer in gen
	applied     map[int32]map[string][]byte
	syncs       []propSync
	everMember  map[string]bool
	removed     map[string]bool
	outstanding map[int]string // held calls not yet answered, by call number
	calls       int
	// syncedGen is the latest generation a member synced; committed the
	// latest acknowledged commit of g's t-0, nextOffset the next one made.
	syncedGen  int32
	committed  int64
	nextOffset int64
}

func (m *propModel) call(kind string) (num int, answered func()) {
	m.calls++
	num = m.calls
	m.outstanding[num] = kind
	return num, func() {
		if _, ok := m.outstanding[num]; !ok {
			m.t.Fatalf("%s call %d answered twice", kind, num)
		}
		delete(m.outstanding, num)
	}
}

func (m *propModel) join(a *propActor, version int16, protocols []string) {
	_, answered := m.call("JoinGroup")
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = version
	req.Group = "g"
	req.MemberID = a.id
	req.SessionTimeoutMillis = 6000 + int32(rapid.IntRange(0, 4).Draw(m.t, "session_s"))*1000
	req.RebalanceTimeoutMillis = 8000 + int32(rapid.IntRange(0, 12).Draw(m.t, "rebalance_s"))*1000
	req.ProtocolType = "consumer"
	req.Protocols = protos(protocols...)
	a.waiting = true
	defer m.h.flush()
	m.h.c.JoinGroup(m.h.now, Client{ID: a.client, Host: "/h"}, req, func(r *kmsg.JoinGroupResponse) {
		answered()
		a.waiting = false
		a.phase = needJoin
		switch r.ErrorCode {
		case 0:
			a.phase = needSync
			if m.removed[r.MemberID] {
				m.t.Fatalf("removed member %s joined generation %d", r.MemberID, r.Generation)
			}
			if r.Generation < m.maxGen {
				m.t.Fatalf("JoinGroup answered generation %d after %d", r.Generation, m.maxGen)
			}
			m.maxGen = r.Generation
			if l, ok := m.leaderOf[r.Generation]; ok && l != r.LeaderID {
				m.t.Fatalf("generation %d has leaders %s and %s", r.Generation, l, r.LeaderID)
			}
			m.leaderOf[r.Generation] = r.LeaderID
			m.joinedIn[r.Generation] = append(m.joinedIn[r.Generation], r.MemberID)
			a.id, a.gen, a.members = r.MemberID, r.Generation, nil
			if r.LeaderID == r.MemberID {
				for _, jm := range r.Members {
					a.members = append(a.members, jm.MemberID)
				}
				if prev, ok := m.membersOf[r.Generation]; ok && !slices.Equal(prev, a.members) {
					m.t.Fatalf("leader of generation %d got two member lists", r.Generation)
				}
				m.membersOf[r.Generation] = a.members
			}
		case kerr.MemberIDRequired.Code:
			a.id = r.MemberID
		case kerr.UnknownMemberID.Code, kerr.FencedInstanceID.Code:
			a.id = "" // as a client does: start over
		}
	})
}

func (m *propModel) sync(a *propActor) {
	_, answered := m.call("SyncGroup")
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = "g", a.id, a.gen
	if a.members != nil {
		for _, id := range a.members {
			if rapid.IntRange(0, 5).Draw(m.t, "leave_out") == 0 {
				continue
			}
			asg := fmt.Appendf(nil, "%s@%d#%d", id, a.gen, rapid.IntRange(0, 9).Draw(m.t, "assignment"))
			req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: asg})
		}
		if rapid.Bool().Draw(m.t, "stranger") {
			req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: "stranger", MemberAssignment: []byte("x")})
		}
	}
	gen, id := a.gen, a.id
	a.waiting = true
	m.h.c.SyncGroup(m.h.now, req, func(r *kmsg.SyncGroupResponse) {
		answered()
		a.waiting = false
		if r.ErrorCode == 0 {
			a.phase = settled
			m.syncs = append(m.syncs, propSync{gen: gen, member: id, assignment: r.MemberAssignment})
			m.syncedGen = max(m.syncedGen, gen)
		} else {
			a.phase = needJoin
		}
	})
	m.h.flush()
	// The leader's assignment took effect if this very call made the group
	// stable in its generation.
	gi, _ := m.h.c.Group("g")
	if a.members != nil && gi.State == Stable && gi.Generation == gen && m.applied[gen] == nil {
		want := map[string][]byte{}
		for _, mi := range gi.Members {
			want[mi.ID] = []byte{}
			for _, ga := range req.GroupAssignment {
				if ga.MemberID == mi.ID {
					want[mi.ID] = ga.MemberAssignment
				}
			}
		}
		m.applied[gen] = want
	}
}

// check runs after every step.
func (m *propModel) check() {
	gi, exists := m.h.c.Group("g")
	if exists {
		if gi.Generation < m.maxGen {
			m.t.Fatalf("group generation %d went below %d", gi.Generation, m.maxGen)
		}
		m.maxGen = gi.Generation
		now := map[string]bool{}
		for _, mi := range gi.Members {
			now[mi.ID] = true
			if m.removed[mi.ID] {
				m.t.Fatalf("removed member %s is back", mi.ID)
			}
			m.everMember[mi.ID] = true
			if gi.State == Stable {
				if want := m.applied[gi.Generation]; want == nil || !bytes.Equal(want[mi.ID], mi.Assignment) {
					m.t.Fatalf("stable generation %d: %s holds %q, the leader assigned %q", gi.Generation, mi.ID, mi.Assignment, want[mi.ID])
				}
			}
		}
		for id := range m.everMember {
			if !now[id] {
				m.removed[id] = true
			}
		}
	}
	for _, s := range m.syncs {
		want := m.applied[s.gen]
		if want == nil {
			m.t.Fatalf("%s synced generation %d before its leader's assignment took effect", s.member, s.gen)
		}
		w, ok := want[s.member]
		if !ok {
			m.t.Fatalf("%s is not in generation %d but synced it", s.member, s.gen)
		}
		if !bytes.Equal(w, s.assignment) {
			m.t.Fatalf("%s in generation %d got %q, the leader assigned %q", s.member, s.gen, s.assignment, w)
		}
	}
	m.syncs = m.syncs[:0]
	for gen, ids := range m.joinedIn {
		members, ok := m.membersOf[gen]
		if !ok {
			continue // the leader's answer may come later
		}
		for _, id := range ids {
			if !slices.Contains(members, id) {
				m.t.Fatalf("%s joined generation %d but is not in its leader's member list %v", id, gen, members)
			}
		}
		delete(m.joinedIn, gen)
	}
}

// failover moves the group to a new coordinator that replays what the old
// one wrote, and checks what must survive.
func (m *propModel) failover() {
	m.h.c.Unload(m.h.now, 0, func(string) bool { return true })
	if len(m.outstanding) != 0 {
		m.t.Fatalf("unload left calls unanswered: %v", m.outstanding)
	}
	m.h.reload()
	gi, ok := m.h.c.Group("g")
	if off, _ := m.h.c.Committed("g", "t", 0); m.committed > 0 && off != m.committed {
		m.t.Fatalf("after failover the committed offset is %d, want %d", off, m.committed)
	}
	if m.syncedGen > 0 {
		if !ok || gi.Generation < m.syncedGen {
			m.t.Fatalf("after failover the group is at generation %d (exists %v), but generation %d was synced", gi.Generation, ok, m.syncedGen)
		}
		if gi.Generation == m.syncedGen && gi.State == Stable {
			for _, mi := range gi.Members {
				if want := m.applied[gi.Generation][mi.ID]; !bytes.Equal(want, mi.Assignment) {
					m.t.Fatalf("after failover %s holds %q in generation %d, the leader assigned %q", mi.ID, mi.Assignment, gi.Generation, want)
				}
			}
		}
	}
	// Generations past the stored one may be formed again, by other
	// members; removals not stored are undone.
	m.maxGen = gi.Generation
	for _, byGen := range []map[int32][]string{m.membersOf, m.joinedIn} {
		for gen := range byGen {
			if gen > gi.Generation {
				delete(byGen, gen)
			}
		}
	}
	for gen := range m.leaderOf {
		if gen > gi.Generation {
			delete(m.leaderOf, gen)
		}
	}
	for gen := range m.applied {
		if gen > gi.Generation {
			delete(m.applied, gen)
		}
	}
	clear(m.removed)
	clear(m.everMember)
}

func TestGroupProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		cfg := testConfig()
		cfg.InitialRebalanceDelayMs = int32(rapid.SampledFrom([]int{0, 0, 3000}).Draw(rt, "initial_delay"))
		cfg.MaxSize = int32(rapid.IntRange(2, 6).Draw(rt, "max_size"))
		cfg.OffsetsRetentionCheckIntervalMs = 0 // no sweep: the group must not vanish
		m := &propModel{
			t: rt, h: newHarness(t, cfg), cfg: cfg,
			leaderOf: map[int32]string{}, membersOf: map[int32][]string{}, joinedIn: map[int32][]string{},
			applied: map[int32]map[string][]byte{}, everMember: map[string]bool{}, removed: map[string]bool{},
			outstanding: map[int]string{},
		}
		m.h.t = rt
		n := rapid.IntRange(1, 5).Draw(rt, "actors")
		for i := 0; i < n; i++ {
			m.actors = append(m.actors, &propActor{client: fmt.Sprintf("c%d", i)})
		}
		actor := func() *propActor { return rapid.SampledFrom(m.actors).Draw(rt, "actor") }
		heartbeat := func(a *propActor) {
			code := m.h.heartbeat("g", a.id, a.gen)
			if code == 0 && m.removed[a.id] {
				rt.Fatalf("removed member %s heartbeat successfully", a.id)
			}
			switch code {
			case kerr.UnknownMemberID.Code:
				a.id, a.phase = "", needJoin
			case kerr.RebalanceInProgress.Code, kerr.IllegalGeneration.Code:
				a.phase = needJoin
			}
		}
		step := func(rt *rapid.T) {
			a := actor()
			if a.waiting {
				m.h.advance(int64(rapid.IntRange(0, 3000).Draw(rt, "ms")))
				return
			}
			switch a.phase {
			case needJoin:
				if a.protocols == nil {
					a.protocols = rapid.SampledFrom(protocolChoices).Draw(rt, "protocols")
				}
				m.join(a, 9, a.protocols)
			case needSync:
				m.sync(a)
			default:
				heartbeat(a)
			}
		}
		rt.Repeat(map[string]func(*rapid.T){
			"join": func(rt *rapid.T) {
				a := actor()
				v := rapid.SampledFrom([]int16{3, 4, 9}).Draw(rt, "version")
				m.join(a, v, rapid.SampledFrom(protocolChoices).Draw(rt, "protocols"))
			},
			"sync":      func(rt *rapid.T) { m.sync(actor()) },
			"heartbeat": func(rt *rapid.T) { heartbeat(actor()) },
			"step1":     step,
			"step2":     step,
			"step3":     step,
			"step4":     step,
			"leave": func(rt *rapid.T) {
				a := actor()
				if codes := m.h.leave("g", a.id); codes[0] == 0 && m.removed[a.id] {
					rt.Fatalf("removed member %s left successfully", a.id)
				}
				a.id, a.phase = "", needJoin
			},
			"commit": func(rt *rapid.T) {
				a := actor()
				m.nextOffset++
				code := m.h.commit(8, "g", a.id, a.gen, "t", 0, m.nextOffset)
				if code == 0 && a.id != "" && m.removed[a.id] {
					rt.Fatalf("removed member %s committed", a.id)
				}
				if code == 0 {
					m.committed = m.nextOffset
				}
			},
			"failover": func(rt *rapid.T) { m.failover() },
			"time": func(rt *rapid.T) {
				m.h.advance(int64(rapid.IntRange(0, 15000).Draw(rt, "ms")))
			},
			"": func(rt *rapid.T) { m.check() },
		})
		// Quiet clients: sessions and timeouts end every held request.
		for i := 0; i < 20; i++ {
			m.h.advance(10000)
			m.check()
		}
		if len(m.outstanding) != 0 {
			rt.Fatalf("unanswered after the clients went quiet: %v", m.outstanding)
		}
		if gi, ok := m.h.c.Group("g"); ok && (len(gi.Members) != 0 || gi.State != Empty) {
			rt.Fatalf("quiet group still has members: %+v", gi)
		}
	})
}

package group

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cmember is a well-behaved KIP-848 client: it takes each assignment it is
// given (giving up at once what is not in it) and reports what it owns.
type cmember struct {
	h        *harness
	group    string
	id       string
	instance *string
	topics   []string
	regex    *string
	assignor *string
	epoch    int32
	owned    assignment
}

func (h *harness) member(group, id string, topics ...string) *cmember {
	return &cmember{h: h, group: group, id: id, topics: topics, owned: assignment{}}
}

func (m *cmember) opts() hbOpts {
	o := hbOpts{epoch: m.epoch, instanceID: m.instance, owned: m.owned}
	if m.epoch == 0 {
		o.topics, o.regex, o.assignor, o.owned = m.topics, m.regex, m.assignor, nil
		if o.topics == nil && o.regex == nil {
			o.topics = []string{}
		}
	}
	return o
}

// beat heartbeats and applies the answer; it returns the error code.
func (m *cmember) beat() int16 {
	m.h.t.Helper()
	c := m.h.hb(m.group, m.id, m.opts())
	if !c.done() {
		m.h.t.Fatalf("heartbeat of %s not answered", m.id)
	}
	if c.resp.ErrorCode != 0 {
		return c.resp.ErrorCode
	}
	if c.resp.MemberEpoch < m.epoch {
		m.h.t.Fatalf("%s: epoch went back from %d to %d", m.id, m.epoch, c.resp.MemberEpoch)
	}
	m.epoch = c.resp.MemberEpoch
	if a := respAssignment(c.resp); a != nil {
		m.owned = a
	}
	return 0
}

func (m *cmember) mustBeat() {
	m.h.t.Helper()
	wantCode(m.h.t, "heartbeat of "+m.id, m.beat(), nil)
}

// twoMembers is how the two-member tests start: a harness with topic "t" of
// the given partitions, and members a and b of group "g" subscribed to it,
// not joined yet.
func twoMembers(t *testing.T, partitions int32) (h *harness, a, b *cmember) {
	t.Helper()
	h = newHarness(t, testConfig())
	h.setTopic("t", partitions)
	return h, h.member("g", "a", "t"), h.member("g", "b", "t")
}

// settle heartbeats every member until the group is stable.
func settle(t *testing.T, ms ...*cmember) {
	t.Helper()
	for round := 0; round < 10; round++ {
		for _, m := range ms {
			m.mustBeat()
			checkNoOverlap(t, ms)
		}
		if gi, _ := ms[0].h.c.ConsumerGroup(ms[0].group); gi.State == ConsumerStable {
			for _, m := range ms {
				m.mustBeat() // learn the final epoch
			}
			return
		}
	}
	gi, _ := ms[0].h.c.ConsumerGroup(ms[0].group)
	t.Fatalf("group did not settle: %+v", gi)
}

// checkNoOverlap fails if two members' clients own the same partition.
func checkNoOverlap(t tb, ms []*cmember) {
	t.Helper()
	seen := map[idPartition]string{}
	for _, m := range ms {
		for _, tp := range m.owned.partitions() {
			if o, ok := seen[tp]; ok {
				t.Fatalf("partition %d owned by %s and %s", tp.partition, o, m.id)
			}
			seen[tp] = m.id
		}
	}
}

func TestConsumerJoinGetsEverything(t *testing.T) {
	h := newHarness(t, testConfig())
	h.setTopic("t", 6)
	a := h.member("g", "a", "t")
	a.mustBeat()
	if a.epoch != 1 || !a.owned.equal(parts("t", 0, 1, 2, 3, 4, 5)) {
		t.Fatalf("after join: epoch %d owned %v", a.epoch, a.owned)
	}
	gi, _ := h.c.ConsumerGroup("g")
	if gi.State != ConsumerStable || gi.Epoch != 1 || gi.TargetEpoch != 1 {
		t.Fatalf("group after one join: %+v", gi)
	}
	// A plain heartbeat changes nothing and carries no assignment.
	c := h.hb("g", "a", hbOpts{epoch: 1})
	if r := c.ok(); r.MemberEpoch != 1 || r.Assignment != nil || r.HeartbeatIntervalMillis != 5000 {
		t.Fatalf("steady heartbeat: %+v", r)
	}
}

// A member gives up partitions before anyone else gets them: the new
// member waits (UNRELEASED_PARTITIONS) until the old one's heartbeat shows
// the revocation, and the old one keeps its epoch until then.
func TestConsumerRevocationBeforeReassignment(t *testing.T) {
	h, a, b := twoMembers(t, 4)
	a.mustBeat()
	b.mustBeat()
	if b.epoch != 2 || b.owned.count() != 0 {
		t.Fatalf("joining member: epoch %d owned %v, want epoch 2 and nothing yet", b.epoch, b.owned)
	}
	gi, _ := h.c.ConsumerGroup("g")
	if gi.Members[1].State != "unreleased_partitions" {
		t.Fatalf("joining member state %s", gi.Members[1].State)
	}
	// a is told to revoke: its assignment shrinks, its epoch stays.
	c := h.hb("g", "a", hbOpts{epoch: 1, owned: a.owned})
	r := c.ok()
	if r.MemberEpoch != 1 || respAssignment(r).count() != 2 {
		t.Fatalf("revoking member: %+v", r)
	}
	// Until a reports the revocation, b gets nothing more.
	b.mustBeat()
	if b.owned.count() != 0 {
		t.Fatalf("partitions handed out before their revocation: %v", b.owned)
	}
	a.owned = respAssignment(r)
	a.mustBeat()
	if a.epoch != 2 || a.owned.count() != 2 {
		t.Fatalf("after revoking: epoch %d owned %v", a.epoch, a.owned)
	}
	b.mustBeat()
	if b.owned.count() != 2 {
		t.Fatalf("after the revocation: b owns %v", b.owned)
	}
	checkNoOverlap(t, []*cmember{a, b})
	if gi, _ := h.c.ConsumerGroup("g"); gi.State != ConsumerStable {
		t.Fatalf("state %v", gi.State)
	}
}

func TestConsumerLeaveAndRejoin(t *testing.T) {
	h, a, b := twoMembers(t, 4)
	settle(t, a, b)
	r := h.hb("g", "b", hbOpts{epoch: leaveEpoch}).ok()
	if r.MemberEpoch != leaveEpoch || *r.MemberID != "b" {
		t.Fatalf("leave answer: %+v", r)
	}
	wantCode(t, "heartbeat after leaving", h.hb("g", "b", hbOpts{epoch: b.epoch, owned: b.owned}).code(), kerr.UnknownMemberID)
	settle(t, a)
	if a.owned.count() != 4 {
		t.Fatalf("remaining member owns %v", a.owned)
	}
	wantCode(t, "leave of an unknown member", h.hb("g", "zz", hbOpts{epoch: leaveEpoch}).code(), kerr.UnknownMemberID)
	wantCode(t, "leave of an unknown group", h.hb("nope", "zz", hbOpts{epoch: leaveEpoch}).code(), kerr.GroupIDNotFound)
}

func TestConsumerEpochFencing(t *testing.T) {
	h := newHarness(t, testConfig())
	h.setTopic("t", 2)
	a := h.member("g", "a", "t")
	a.mustBeat()
	wantCode(t, "greater epoch", h.hb("g", "a", hbOpts{epoch: 5}).code(), kerr.FencedMemberEpoch)
	wantCode(t, "unknown member", h.hb("g", "x", hbOpts{epoch: 1}).code(), kerr.UnknownMemberID)
	wantCode(t, "unknown group", h.hb("h", "x", hbOpts{epoch: 1}).code(), kerr.GroupIDNotFound)
	// Another member joins: a ends at epoch 2 or later, and an older
	// epoch than its previous one is fenced.
	b := h.member("g", "b", "t")
	settle(t, a, b)
	h.setTopic("t", 4)
	settle(t, a, b)
	if a.epoch < 3 {
		t.Fatalf("epoch %d", a.epoch)
	}
	wantCode(t, "older epoch", h.hb("g", "a", hbOpts{epoch: a.epoch - 2, owned: assignment{}}).code(), kerr.FencedMemberEpoch)
}

// A member that missed the answer moving it to a new epoch may retry with
// its previous epoch, as long as it owns no more than it was given.
func TestConsumerPreviousEpochForgiven(t *testing.T) {
	h := newHarness(t, testConfig())
	h.setTopic("t", 2)
	a := h.member("g", "a", "t")
	a.mustBeat() // epoch 1, owns 0 and 1
	h.setTopic("t", 3)
	r := h.hb("g", "a", hbOpts{epoch: 1, owned: a.owned}).ok() // lost answer: epoch 2 with 3 partitions
	if r.MemberEpoch != 2 {
		t.Fatalf("epoch after growth %d", r.MemberEpoch)
	}
	wantCode(t, "previous epoch with owned subset", h.hb("g", "a", hbOpts{epoch: 1, owned: a.owned}).code(), nil)
	wantCode(t, "previous epoch with foreign partitions", h.hb("g", "a", hbOpts{epoch: 1, owned: parts("u", 0)}).code(), kerr.FencedMemberEpoch)
}

func TestConsumerSessionExpiry(t *testing.T) {
	h, a, b := twoMembers(t, 4)
	settle(t, a, b)
	for i := 0; i < 10; i++ {
		h.advance(5000)
		a.mustBeat()
	}
	gi, _ := h.c.ConsumerGroup("g")
	if len(gi.Members) != 1 || a.owned.count() != 4 {
		t.Fatalf("after b's session expired: %+v, a owns %v", gi, a.owned)
	}
	h.advance(46000)
	if gi, _ := h.c.ConsumerGroup("g"); gi.State != ConsumerEmpty {
		t.Fatalf("after every session expired: %+v", gi)
	}
}

// A member that does not revoke within its rebalance timeout is fenced,
// and its partitions go to the member waiting for them.
func TestConsumerRevocationTimeout(t *testing.T) {
	h, a, b := twoMembers(t, 2)
	a.mustBeat()
	b.mustBeat()
	h.hb("g", "a", hbOpts{epoch: a.epoch, owned: a.owned}).ok() // told to revoke; never does
	fenced := false
	for i := 0; i < 7 && !fenced; i++ {
		h.advance(5000)
		code := h.hb("g", "a", hbOpts{epoch: a.epoch, owned: a.owned}).code()
		fenced = code == kerr.UnknownMemberID.Code
		if !fenced {
			wantCode(t, "heartbeat before the rebalance timeout", code, nil)
		}
		b.mustBeat()
	}
	if gi, _ := h.c.ConsumerGroup("g"); len(gi.Members) != 1 || gi.Members[0].ID != "b" {
		t.Fatalf("member that did not revoke kept: %+v", gi)
	}
	b.mustBeat()
	b.mustBeat()
	if b.owned.count() != 2 {
		t.Fatalf("b owns %v after a was fenced", b.owned)
	}
}

func TestConsumerStaticMember(t *testing.T) {
	h, a, b := twoMembers(t, 4)
	a.instance = strp("ia")
	settle(t, a, b)
	epochBefore, _ := h.c.ConsumerGroup("g")
	owned := a.owned
	r := h.hb("g", "a", hbOpts{epoch: staticLeaveEpoch, instanceID: a.instance}).ok()
	if r.MemberEpoch != staticLeaveEpoch {
		t.Fatalf("static leave answer %+v", r)
	}
	// The holder left with -2, so a new member id with the instance id
	// takes its place over, assignment included.
	wantCode(t, "static member comes back", h.hb("g", "other", hbOpts{instanceID: a.instance, topics: []string{"t"}}).code(), nil)
	gi, _ := h.c.ConsumerGroup("g")
	if gi.Epoch != epochBefore.Epoch {
		t.Fatalf("static member's return moved the group epoch %d → %d", epochBefore.Epoch, gi.Epoch)
	}
	var got ConsumerMemberInfo
	for _, mi := range gi.Members {
		if mi.InstanceID == "ia" {
			got = mi
		}
	}
	if got.ID != "other" || !assignment(got.Assigned).equal(owned) {
		t.Fatalf("replacement member %+v, want other with %v", got, owned)
	}
	wantCode(t, "old member id", h.hb("g", "a", hbOpts{epoch: a.epoch, instanceID: a.instance, owned: owned}).code(), kerr.FencedInstanceID)
	wantCode(t, "instance id held by a live member", h.hb("g", "third", hbOpts{instanceID: a.instance, topics: []string{"t"}}).code(), kerr.UnreleasedInstanceID)
	wantCode(t, "static leave without instance id", h.hb("g", "other", hbOpts{epoch: staticLeaveEpoch}).code(), kerr.InvalidRequest)
}

func TestConsumerRegexSubscription(t *testing.T) {
	h := newHarness(t, testConfig())
	h.setTopic("foo-1", 2)
	h.setTopic("bar", 2)
	h.setTopic("__consumer_offsets", 2)
	a := h.member("g", "a")
	a.regex = strp("foo-.*|__.*")
	a.mustBeat()
	if !a.owned.equal(parts("foo-1", 0, 1)) {
		t.Fatalf("regex member owns %v", a.owned)
	}
	h.setTopic("foo-2", 1)
	h.advance(regexRefreshMs)
	a.mustBeat()
	a.mustBeat()
	if a.owned.count() != 3 || !a.owned.has(tid("foo-2"), 0) {
		t.Fatalf("after foo-2 appeared: %v", a.owned)
	}
	h.setTopic("foo-1", 0) // deleted
	h.advance(regexRefreshMs)
	a.mustBeat()
	a.mustBeat()
	if !a.owned.equal(parts("foo-2", 0)) {
		t.Fatalf("after foo-1 went: %v", a.owned)
	}
	wantCode(t, "invalid regex", h.hb("g", "b", hbOpts{regex: strp("(")}).code(), kerr.InvalidRegularExpression)
}

// Topics that grow are noticed at the next heartbeat.
func TestConsumerTopicGrows(t *testing.T) {
	h, a, b := twoMembers(t, 2)
	settle(t, a, b)
	h.setTopic("t", 6)
	settle(t, a, b)
	if a.owned.count()+b.owned.count() != 6 || a.owned.count() != 3 {
		t.Fatalf("after growth: a %v b %v", a.owned, b.owned)
	}
}

func TestConsumerInvalidRequests(t *testing.T) {
	h := newHarness(t, testConfig())
	for _, tc := range []struct {
		name string
		mod  func(*kmsg.ConsumerGroupHeartbeatRequest)
		want *kerr.Error
	}{
		{"empty member id at v1", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }, kerr.InvalidRequest},
		{"empty group", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Group = "" }, kerr.InvalidRequest},
		{"empty instance id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.InstanceID = strp("") }, kerr.InvalidRequest},
		{"empty rack", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RackID = strp("") }, kerr.InvalidRequest},
		{"no rebalance timeout", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = -1 }, kerr.InvalidRequest},
		{"owned on join", func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: tid("t"), Partitions: []int32{0}}}
		}, kerr.InvalidRequest},
		{"null owned on join", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Topics = nil }, kerr.InvalidRequest},
		{"no subscription", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicNames = nil }, kerr.InvalidRequest},
		{"epoch -3", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -3 }, kerr.InvalidRequest},
		{"unknown assignor", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.ServerAssignor = strp("sticky") }, kerr.UnsupportedAssignor},
	} {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Version, req.Group, req.MemberID, req.RebalanceTimeoutMillis = 1, "g", "m", 30000
		req.SubscribedTopicNames = []string{"t"}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		tc.mod(req)
		var resp *kmsg.ConsumerGroupHeartbeatResponse
		h.c.ConsumerGroupHeartbeat(h.now, Client{}, req, func(r *kmsg.ConsumerGroupHeartbeatResponse) { resp = r })
		wantCode(t, tc.name, resp.ErrorCode, tc.want)
	}
	if _, ok := h.c.ConsumerGroup("g"); ok {
		t.Fatal("an invalid request created the group")
	}
}

// v0 members are named by the coordinator.
func TestConsumerV0MemberID(t *testing.T) {
	h := newHarness(t, testConfig())
	h.setTopic("t", 1)
	r := h.hb("g", "", hbOpts{v0: true, topics: []string{"t"}}).ok()
	if r.MemberID == nil || len(*r.MemberID) != 22 || r.MemberEpoch != 1 {
		t.Fatalf("v0 join: %+v", r)
	}
}

func TestConsumerMaxSize(t *testing.T) {
	cfg := testConfig()
	cfg.ConsumerMaxSize = 1
	h := newHarness(t, cfg)
	h.setTopic("t", 1)
	h.member("g", "a", "t").mustBeat()
	wantCode(t, "second member", h.member("g", "b", "t").beat(), kerr.GroupMaxSizeReached)
}

func TestConsumerAndClassicDoNotMix(t *testing.T) {
	h := newHarness(t, testConfig())
	h.setTopic("t", 1)
	h.member("g", "a", "t").mustBeat()
	if err := h.join("g", "").err(); err != kerr.InconsistentGroupProtocol {
		t.Fatalf("classic join to a consumer group: %v", err)
	}
	wantCode(t, "classic heartbeat", h.heartbeat("g", "a", 1), kerr.UnknownMemberID)
	ra := h.joinNew("c").ok()
	h.sync("c", ra.MemberID, ra.Generation, map[string]string{ra.MemberID: "x"})
	wantCode(t, "consumer heartbeat to a classic group", h.member("c", "m", "t").beat(), kerr.GroupIDNotFound)

	// An empty classic group with offsets becomes a consumer group and
	// keeps them, across a reload too.
	wantCode(t, "simple commit", h.commit(8, "s", "", -1, "t", 0, 9), nil)
	h.member("s", "m", "t").mustBeat()
	h.reload()
	if off, ok := h.c.Committed("s", "t", 0); !ok || off != 9 {
		t.Fatalf("offset after the group changed type: %d %v", off, ok)
	}
	if _, ok := h.c.ConsumerGroup("s"); !ok {
		t.Fatal("converted group not a consumer group after reload")
	}
}

func TestConsumerOffsetCommitEpochs(t *testing.T) {
	h := newHarness(t, testConfig())
	h.setTopic("t", 2)
	a := h.member("g", "a", "t")
	a.mustBeat()
	wantCode(t, "current epoch", h.commit(9, "g", "a", a.epoch, "t", 0, 5), nil)
	wantCode(t, "older epoch", h.commit(9, "g", "a", a.epoch-1, "t", 0, 5), kerr.StaleMemberEpoch)
	wantCode(t, "unknown member", h.commit(9, "g", "b", a.epoch, "t", 0, 5), kerr.UnknownMemberID)
	wantCode(t, "v8", h.commit(8, "g", "a", a.epoch, "t", 0, 5), kerr.UnsupportedVersion)
	wantCode(t, "simple commit to a group with members", h.commit(9, "g", "", -1, "t", 0, 5), kerr.UnknownMemberID)

	fetch := func(member *string, epoch int32) int16 {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = 9
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group, rg.MemberID, rg.MemberEpoch = "g", member, epoch
		req.Groups = append(req.Groups, rg)
		return h.c.OffsetFetch(h.now, req).Groups[0].ErrorCode
	}
	wantCode(t, "fetch with current epoch", fetch(strp("a"), a.epoch), nil)
	wantCode(t, "fetch with stale epoch", fetch(strp("a"), a.epoch+1), kerr.StaleMemberEpoch)
	wantCode(t, "fetch of unknown member", fetch(strp("x"), 1), kerr.UnknownMemberID)
	wantCode(t, "admin fetch", fetch(nil, -1), nil)

	// While the write that moves the member is in flight, the member does
	// not know its new epoch yet: commits still check the old one.
	h.hold = true
	h.setTopic("t", 3)
	c := h.hb("g", "a", hbOpts{epoch: a.epoch, owned: a.owned})
	if c.done() {
		t.Fatal("answered before the write")
	}
	h.hold = false
	wantCode(t, "commit while the epoch moves", h.commit(9, "g", "a", a.epoch, "t", 0, 6), nil)
	if c.ok().MemberEpoch != a.epoch+1 {
		t.Fatalf("epoch after growth: %d", c.resp.MemberEpoch)
	}
	a.epoch = c.resp.MemberEpoch
	if as := respAssignment(c.resp); as != nil {
		a.owned = as
	}

	// KIP-1251: an older epoch commits the partitions the member has held
	// since then, not those it gained later.
	first := a.epoch
	h.setTopic("t", 4)
	a.mustBeat()
	if a.epoch == first {
		t.Fatal("a new partition did not move the member's epoch")
	}
	wantCode(t, "older epoch, partition held since", h.commit(9, "g", "a", first, "t", 0, 6), nil)
	wantCode(t, "older epoch, partition assigned later", h.commit(9, "g", "a", first, "t", 3, 6), kerr.StaleMemberEpoch)
	wantCode(t, "newer epoch", h.commit(9, "g", "a", a.epoch+1, "t", 0, 6), kerr.StaleMemberEpoch)
	wantCode(t, "current epoch, new partition", h.commit(9, "g", "a", a.epoch, "t", 3, 6), nil)
	h.reload() // assignment epochs are not stored: a reloaded member's count from its epoch
	wantCode(t, "older epoch after a reload", h.commit(9, "g", "a", first, "t", 0, 7), kerr.StaleMemberEpoch)
	wantCode(t, "current epoch after a reload", h.commit(9, "g", "a", a.epoch, "t", 0, 7), nil)
}

// Answers wait for their records; a failed write answers its error and is
// followed by a write of the whole group, which a reload then sees.
func TestConsumerWritesBeforeAnswers(t *testing.T) {
	h := newHarness(t, testConfig())
	h.setTopic("t", 2)
	h.hold = true
	c := h.hb("g", "a", hbOpts{topics: []string{"t"}})
	if c.done() {
		t.Fatal("join answered before its records were committed")
	}
	h.host.failWith = kerr.NotCoordinator
	h.host.flush()
	wantCode(t, "join whose write failed", c.code(), kerr.NotCoordinator)
	h.host.failWith = nil
	h.hold = false
	// The member retries its join; memory already has it, and the answer
	// waits for a full write.
	r := h.hb("g", "a", hbOpts{topics: []string{"t"}}).ok()
	if r.MemberEpoch != 1 || respAssignment(r).count() != 2 {
		t.Fatalf("retried join: %+v", r)
	}
	h.reload()
	gi, _ := h.c.ConsumerGroup("g")
	if len(gi.Members) != 1 || gi.Members[0].Epoch != 1 || assignment(gi.Members[0].Assigned).count() != 2 {
		t.Fatalf("after reload: %+v", gi)
	}
}

// A new coordinator resumes the group with its epochs, targets and
// assignments; members carry on without a rebalance.
func TestConsumerReloadKeepsEpochsAndAssignments(t *testing.T) {
	h, a, b := twoMembers(t, 5)
	b.instance = strp("ib")
	settle(t, a, b)
	wantCode(t, "commit", h.commit(9, "g", "a", a.epoch, "t", 1, 11), nil)
	before, _ := h.c.ConsumerGroup("g")
	h.reload()
	after, ok := h.c.ConsumerGroup("g")
	if !ok || after.Epoch != before.Epoch || after.TargetEpoch != before.TargetEpoch || len(after.Members) != 2 {
		t.Fatalf("reloaded %+v, was %+v", after, before)
	}
	for i, mi := range after.Members {
		bi := before.Members[i]
		if mi.ID != bi.ID || mi.Epoch != bi.Epoch || mi.InstanceID != bi.InstanceID ||
			!assignment(mi.Assigned).equal(assignment(bi.Assigned)) || !assignment(mi.Target).equal(assignment(bi.Target)) {
			t.Fatalf("member %d reloaded as %+v, was %+v", i, mi, bi)
		}
	}
	epochA := a.epoch
	a.mustBeat()
	if a.epoch != epochA {
		t.Fatalf("epoch moved after reload: %d → %d", epochA, a.epoch)
	}
	wantCode(t, "commit after reload", h.commit(9, "g", "a", a.epoch, "t", 1, 12), nil)
	// A member leaving and a reload: it stays gone.
	h.hb("g", "b", hbOpts{epoch: leaveEpoch, instanceID: b.instance}).ok()
	h.reload()
	if gi, _ := h.c.ConsumerGroup("g"); len(gi.Members) != 1 {
		t.Fatalf("left member back after reload: %+v", gi)
	}
}

func TestConsumerGroupAdminViews(t *testing.T) {
	h := newHarness(t, testConfig())
	h.setTopic("t", 2)
	h.joinNew("classic").ok()
	a := h.member("g", "a", "t")
	a.mustBeat()

	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.Version = 5
	lreq.TypesFilter = []string{"consumer"}
	l := h.c.ListGroups(h.now, lreq)
	if len(l.Groups) != 1 || l.Groups[0].Group != "g" || l.Groups[0].GroupType != "consumer" || l.Groups[0].GroupState != "Stable" || l.Groups[0].ProtocolType != "consumer" {
		t.Fatalf("list of consumer groups: %+v", l.Groups)
	}
	lreq.TypesFilter, lreq.StatesFilter = nil, []string{"stable"}
	if l := h.c.ListGroups(h.now, lreq); len(l.Groups) != 1 || l.Groups[0].Group != "g" {
		t.Fatalf("list of stable groups: %+v", l.Groups)
	}

	dreq := kmsg.NewPtrConsumerGroupDescribeRequest()
	dreq.Version = 1
	dreq.Groups = []string{"g", "classic", "none"}
	d := h.c.ConsumerGroupDescribe(h.now, dreq)
	g := d.Groups[0]
	if g.ErrorCode != 0 || g.State != "Stable" || g.Epoch != 1 || g.AssignmentEpoch != 1 || g.AssignorName != "uniform" ||
		len(g.Members) != 1 || len(g.Members[0].Assignment.TopicPartitions) != 1 || g.Members[0].Assignment.TopicPartitions[0].Topic != "t" || g.Members[0].MemberType != 1 {
		t.Fatalf("described consumer group: %+v", g)
	}
	wantCode(t, "describe classic", d.Groups[1].ErrorCode, kerr.GroupIDNotFound)
	wantCode(t, "describe missing", d.Groups[2].ErrorCode, kerr.GroupIDNotFound)

	greq := kmsg.NewPtrDescribeGroupsRequest()
	greq.Groups = []string{"g"}
	dg := h.c.DescribeGroups(h.now, greq).Groups[0]
	var asg kmsg.ConsumerMemberAssignment
	if err := asg.ReadFrom(dg.Members[0].MemberAssignment); err != nil || dg.ProtocolType != "consumer" || dg.State != "Stable" || len(asg.Topics) != 1 || len(asg.Topics[0].Partitions) != 2 {
		t.Fatalf("DescribeGroups of a consumer group: %+v (%v)", dg, err)
	}

	// OffsetDelete keeps the offsets of topics members subscribe to.
	wantCode(t, "commit", h.commit(9, "g", "a", a.epoch, "t", 0, 3), nil)
	wantCode(t, "commit", h.commit(9, "g", "a", a.epoch, "u", 0, 3), nil)
	odel := func(topic string) int16 { return h.offsetDelete("g", topic).Topics[0].Partitions[0].ErrorCode }
	wantCode(t, "offset delete of a subscribed topic", odel("t"), kerr.GroupSubscribedToTopic)
	wantCode(t, "offset delete of another topic", odel("u"), nil)

	del := func() int16 {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Groups = []string{"g"}
		return h.deleteGroups(req).Groups[0].ErrorCode
	}
	wantCode(t, "delete with members", del(), kerr.NonEmptyGroup)
	h.hb("g", "a", hbOpts{epoch: leaveEpoch}).ok()
	wantCode(t, "delete empty", del(), nil)
	h.reload()
	if _, ok := h.c.ConsumerGroup("g"); ok {
		t.Fatal("deleted consumer group back after reload")
	}
}

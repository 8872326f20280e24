package group

import (
	"regexp"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestJoinOneMember(t *testing.T) {
	h := newHarness(t, testConfig())
	j := h.joinWith("g", "", joinOpts{version: 3}) // before KIP-394: no second round
	r := j.ok()
	if r.Generation != 1 || r.LeaderID != r.MemberID || len(r.Members) != 1 || *r.Protocol != "range" || *r.ProtocolType != "consumer" {
		t.Fatalf("join: %+v", r)
	}
	if string(r.Members[0].ProtocolMetadata) != "md-range" {
		t.Fatalf("leader got metadata %q", r.Members[0].ProtocolMetadata)
	}
	if h.state("g") != CompletingRebalance {
		t.Fatalf("state %v", h.state("g"))
	}
	s := h.sync("g", r.MemberID, 1, map[string]string{r.MemberID: "all"})
	wantCode(t, "sync", s.errCode(), nil)
	if string(s.resp.MemberAssignment) != "all" || *s.resp.Protocol != "range" {
		t.Fatalf("sync: %+v", s.resp)
	}
	if h.state("g") != Stable {
		t.Fatalf("state %v", h.state("g"))
	}
	wantCode(t, "heartbeat", h.heartbeat("g", r.MemberID, 1), nil)
	wantCode(t, "stale heartbeat", h.heartbeat("g", r.MemberID, 0), kerr.IllegalGeneration)
	wantCode(t, "unknown heartbeat", h.heartbeat("g", "nobody", 1), kerr.UnknownMemberID)

	// A follower-style rejoin of the only member (the leader) rebalances.
	j2 := h.join("g", r.MemberID)
	if r2 := j2.ok(); r2.Generation != 2 {
		t.Fatalf("leader rejoin: generation %d", r2.Generation)
	}
}

var memberIDPattern = regexp.MustCompile(`^cl-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestMemberIDRequired(t *testing.T) {
	h := newHarness(t, testConfig())
	first := h.join("g", "")
	if first.err() != kerr.MemberIDRequired {
		t.Fatalf("got %v", first.err())
	}
	id := first.resp.MemberID
	if !memberIDPattern.MatchString(id) {
		t.Fatalf("member id %q is not <client.id>-<uuid v4>", id)
	}
	if gi, _ := h.c.Group("g"); len(gi.Pending) != 1 || len(gi.Members) != 0 {
		t.Fatalf("after MEMBER_ID_REQUIRED: %+v", gi)
	}
	r := h.join("g", id).ok()
	if r.MemberID != id || r.Generation != 1 {
		t.Fatalf("rejoin: %+v", r)
	}
	wantCode(t, "sync", h.sync("g", id, 1, nil).errCode(), nil)

	// A pending id that never comes back holds the barrier only for its
	// session timeout, then is forgotten.
	second := h.join("g", "")
	if second.err() != kerr.MemberIDRequired {
		t.Fatal(second.err())
	}
	lead := h.join("g", id) // leader rejoins: rebalance, waits for the pending id
	if lead.done() {
		t.Fatal("barrier fell with a pending member outstanding")
	}
	h.advance(9999)
	if lead.done() {
		t.Fatal("barrier fell before the pending member's session timeout")
	}
	h.advance(1)
	if r := lead.ok(); r.Generation != 2 || len(r.Members) != 1 {
		t.Fatalf("after pending expiry: %+v", r)
	}
	if gi, _ := h.c.Group("g"); len(gi.Pending) != 0 {
		t.Fatalf("pending left: %v", gi.Pending)
	}
	// The forgotten id is unknown now.
	if j := h.join("g", second.resp.MemberID); j.err() != kerr.UnknownMemberID {
		t.Fatalf("late rejoin with an expired id: %v", j.err())
	}
}

// formGroup brings n members into one stable generation, the leader
// assigning "a-<index>" to each, and returns their member ids in join
// order. With no initial delay the first member forms a generation alone,
// so members whose answer came early rejoin, as clients do.
func formGroup(t *testing.T, h *harness, groupID string, n int) ([]string, int32) {
	t.Helper()
	joined := joinAll(t, h, groupID, n)
	var ids []string
	for _, r := range joined {
		ids = append(ids, r.MemberID)
	}
	gen, leader := joined[0].Generation, joined[0].LeaderID
	assign := map[string]string{}
	for i, id := range ids {
		assign[id] = "a-" + string(rune('0'+i))
	}
	var syncs []*syncCall
	for _, id := range ids[1:] {
		syncs = append(syncs, h.sync(groupID, id, gen, nil))
	}
	syncs = append(syncs, h.sync(groupID, leader, gen, assign))
	for _, s := range syncs {
		wantCode(t, "sync", s.errCode(), nil)
	}
	if h.state(groupID) != Stable {
		t.Fatalf("state %v", h.state(groupID))
	}
	return ids, gen
}

// joinAll brings n new members into one generation and returns their
// JoinGroup answers in join order; the first member leads.
func joinAll(t *testing.T, h *harness, groupID string, n int) []*kmsg.JoinGroupResponse {
	t.Helper()
	ids := make([]string, n)
	calls := make([]*joinCall, n)
	for i := range calls {
		first := h.join(groupID, "")
		if first.err() != kerr.MemberIDRequired {
			t.Fatalf("first join: %v", first.err())
		}
		ids[i] = first.resp.MemberID
		calls[i] = h.join(groupID, ids[i])
	}
	for round := 0; ; round++ {
		formed := true
		for _, j := range calls {
			formed = formed && j.done() && j.ok().Generation == calls[0].resp.Generation
		}
		if formed {
			break
		}
		if round == 3 {
			t.Fatal("no generation with every member")
		}
		h.advance(int64(h.c.cfg.InitialRebalanceDelayMs))
		for i, j := range calls {
			if j.done() {
				calls[i] = h.join(groupID, ids[i])
			}
		}
	}
	var out []*kmsg.JoinGroupResponse
	for _, j := range calls {
		out = append(out, j.resp)
	}
	if out[0].LeaderID != ids[0] {
		t.Fatalf("leader %s, want the first member %s", out[0].LeaderID, ids[0])
	}
	return out
}

func TestThreeMembersOneLeaves(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelayMs = 3000
	h := newHarness(t, cfg)
	a := h.joinNew("g")
	h.advance(1000)
	b := h.joinNew("g")
	h.advance(1000)
	c := h.joinNew("g")
	if a.done() || b.done() || c.done() {
		t.Fatal("answered during the initial delay")
	}
	h.advance(1000) // first delay ends; members arrived: extended by 3 s
	if a.done() {
		t.Fatal("initial delay not extended although members kept arriving")
	}
	h.advance(3000)
	ra, rb, rc := a.ok(), b.ok(), c.ok()
	if ra.Generation != 1 || rb.Generation != 1 || rc.Generation != 1 {
		t.Fatal("not one generation")
	}
	if ra.LeaderID != ra.MemberID || len(ra.Members) != 3 || len(rb.Members) != 0 || rb.LeaderID != ra.MemberID {
		t.Fatalf("leader should be the first to join: %+v %+v", ra, rb)
	}
	for i, m := range ra.Members {
		if m.MemberID != []string{ra.MemberID, rb.MemberID, rc.MemberID}[i] {
			t.Fatal("leader's member list is not in join order")
		}
	}
	sb := h.sync("g", rb.MemberID, 1, nil)
	sc := h.sync("g", rc.MemberID, 1, nil)
	if sb.done() || sc.done() {
		t.Fatal("follower sync answered before the leader's assignment")
	}
	sa := h.sync("g", ra.MemberID, 1, map[string]string{ra.MemberID: "A", rb.MemberID: "B", rc.MemberID: "C", "stranger": "X"})
	for i, s := range []*syncCall{sa, sb, sc} {
		wantCode(t, "sync", s.errCode(), nil)
		if want := []string{"A", "B", "C"}[i]; string(s.resp.MemberAssignment) != want {
			t.Fatalf("member %d got %q, want %q", i, s.resp.MemberAssignment, want)
		}
	}

	// C leaves: the others learn of the rebalance from their heartbeats.
	if codes := h.leave("g", rc.MemberID); codes[0] != 0 {
		t.Fatal(codes)
	}
	wantCode(t, "heartbeat", h.heartbeat("g", ra.MemberID, 1), kerr.RebalanceInProgress)
	ja := h.join("g", ra.MemberID)
	if ja.done() {
		t.Fatal("barrier fell before b rejoined")
	}
	jb := h.join("g", rb.MemberID)
	ra2, rb2 := ja.ok(), jb.ok()
	if ra2.Generation != 2 || rb2.Generation != 2 || len(ra2.Members) != 2 || ra2.LeaderID != ra.MemberID {
		t.Fatalf("after leave: %+v", ra2)
	}
	wantCode(t, "left member's heartbeat", h.heartbeat("g", rc.MemberID, 1), kerr.UnknownMemberID)
}

func TestSessionExpiry(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := formGroup(t, h, "g", 2)
	a, b := ids[0], ids[1]
	for i := 0; i < 9; i++ {
		h.advance(1000)
		wantCode(t, "a heartbeat", h.heartbeat("g", a, gen), nil)
	}
	h.advance(999)
	if gi, _ := h.c.Group("g"); len(gi.Members) != 2 {
		t.Fatal("b removed before its session timeout")
	}
	h.advance(1) // 10 s after b's last sign of life
	if gi, _ := h.c.Group("g"); len(gi.Members) != 1 || gi.State != PreparingRebalance {
		t.Fatalf("after b's session expired: %+v", gi)
	}
	wantCode(t, "a heartbeat", h.heartbeat("g", a, gen), kerr.RebalanceInProgress)
	wantCode(t, "b heartbeat", h.heartbeat("g", b, gen), kerr.UnknownMemberID)
	if r := h.join("g", a).ok(); r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("rejoin: %+v", r)
	}
	// A member waiting in a held SyncGroup is not expired: the leader is,
	// and that turns the follower away to rejoin.
}

func TestJoinBarrierTimeout(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := formGroup(t, h, "g", 2)
	a, b := ids[0], ids[1]
	ja := h.join("g", a) // the leader asks for a rebalance
	// b keeps heartbeating but never rejoins.
	for i := 0; i < 19; i++ {
		h.advance(1000)
		wantCode(t, "b heartbeat", h.heartbeat("g", b, gen), kerr.RebalanceInProgress)
	}
	if ja.done() {
		t.Fatal("barrier fell before the rebalance timeout")
	}
	h.advance(1000)
	if r := ja.ok(); r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("after the rebalance timeout: %+v", r)
	}
	wantCode(t, "b heartbeat", h.heartbeat("g", b, gen), kerr.UnknownMemberID)
}

func TestPendingSyncTimeout(t *testing.T) {
	h := newHarness(t, testConfig())
	joined := joinAll(t, h, "g", 2)
	ra, rb := joined[0], joined[1]
	gen := ra.Generation
	sa := h.sync("g", ra.MemberID, gen, map[string]string{ra.MemberID: "A", rb.MemberID: "B"})
	wantCode(t, "leader sync", sa.errCode(), nil)
	// b heartbeats (so its session holds) but never syncs.
	for i := 0; i < 19; i++ {
		h.advance(1000)
		h.heartbeat("g", rb.MemberID, gen)
		h.heartbeat("g", ra.MemberID, gen)
	}
	if h.state("g") != Stable {
		t.Fatal(h.state("g"))
	}
	h.advance(1000)
	gi, _ := h.c.Group("g")
	if gi.State != PreparingRebalance || len(gi.Members) != 1 || gi.Members[0].ID != ra.MemberID {
		t.Fatalf("after the sync timeout: %+v", gi)
	}
}

func TestHeldSyncTurnedAwayWhenLeaderFails(t *testing.T) {
	h := newHarness(t, testConfig())
	joined := joinAll(t, h, "g", 2)
	rb := joined[1]
	sb := h.sync("g", rb.MemberID, rb.Generation, nil)
	// The leader never syncs nor heartbeats; the held follower is not
	// expired meanwhile, the leader is.
	h.advance(10000)
	wantCode(t, "follower sync", sb.errCode(), kerr.RebalanceInProgress)
	gi, _ := h.c.Group("g")
	if len(gi.Members) != 1 || gi.Members[0].ID != rb.MemberID || gi.Leader != rb.MemberID {
		t.Fatalf("after the leader failed: %+v", gi)
	}
}

func TestStaleCommit(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := formGroup(t, h, "g", 2)
	a, b := ids[0], ids[1]
	wantCode(t, "commit", h.commit(8, "g", a, gen, "t", 0, 10), nil)
	wantCode(t, "unknown partition", h.commit(8, "g", a, gen, "t", 9, 10), kerr.UnknownTopicOrPartition)
	wantCode(t, "unknown topic", h.commit(8, "g", a, gen, "missing", 0, 10), kerr.UnknownTopicOrPartition)
	wantCode(t, "stale generation", h.commit(8, "g", a, gen-1, "t", 0, 11), kerr.IllegalGeneration)
	wantCode(t, "unknown member", h.commit(8, "g", "x", gen, "t", 0, 11), kerr.UnknownMemberID)
	wantCode(t, "simple commit to a group with members", h.commit(8, "g", "", -1, "t", 0, 11), kerr.UnknownMemberID)

	// Rebalance: commits stay allowed while preparing, refused while
	// completing, and the old generation is refused afterwards.
	ja := h.join("g", a)
	wantCode(t, "commit while preparing", h.commit(8, "g", b, gen, "t", 1, 5), nil)
	jb := h.join("g", b)
	ja.ok()
	jb.ok()
	wantCode(t, "commit while completing", h.commit(8, "g", a, gen+1, "t", 0, 12), kerr.RebalanceInProgress)
	h.sync("g", a, gen+1, map[string]string{a: "x", b: "y"})
	wantCode(t, "commit from the old generation", h.commit(8, "g", a, gen, "t", 0, 13), kerr.IllegalGeneration)
	wantCode(t, "commit", h.commit(8, "g", a, gen+1, "t", 0, 14), nil)
	if o, ok := h.c.Committed("g", "t", 0); !ok || o != 14 {
		t.Fatalf("committed %d %v", o, ok)
	}

	// A group that does not exist: a member's commit is stale (v9 says so
	// explicitly); a simple commit creates an Empty group.
	wantCode(t, "member commit to no group (v8)", h.commit(8, "none", "m", 3, "t", 0, 1), kerr.IllegalGeneration)
	wantCode(t, "member commit to no group (v9)", h.commit(9, "none", "m", 3, "t", 0, 1), kerr.GroupIDNotFound)
	wantCode(t, "simple commit", h.commit(9, "simple", "", -1, "t", 0, 7), nil)
	if gi, ok := h.c.Group("simple"); !ok || gi.State != Empty || gi.ProtocolType != "" {
		t.Fatalf("simple group: %+v", gi)
	}
}

func TestOffsetMetadataTooLarge(t *testing.T) {
	cfg := testConfig()
	cfg.OffsetMetadataMaxBytes = 4
	h := newHarness(t, cfg)
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.Generation = "g", -1
	small, big := "abcd", "abcde"
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{
		{Partition: 0, Offset: 1, Metadata: &small}, {Partition: 1, Offset: 1, Metadata: &big},
	}}}
	var resp *kmsg.OffsetCommitResponse
	h.c.OffsetCommit(h.now, req, func(r *kmsg.OffsetCommitResponse) { resp = r })
	if resp != nil {
		t.Fatal("OffsetCommit answered before its write was committed")
	}
	h.flush()
	wantCode(t, "fits", resp.Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "too large", resp.Topics[0].Partitions[1].ErrorCode, kerr.OffsetMetadataTooLarge)
	if _, ok := h.c.Committed("g", "t", 1); ok {
		t.Fatal("stored an offset whose metadata was too large")
	}
}

func TestOffsetFetch(t *testing.T) {
	h := newHarness(t, testConfig())
	for _, c := range []struct {
		topic string
		p     int32
	}{{"b", 2}, {"a", 1}, {"b", 0}, {"a", 0}} {
		wantCode(t, "commit", h.commit(8, "g", "", -1, c.topic, c.p, int64(c.p)+100), nil)
	}
	// v7, null topics: everything, sorted.
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group = "g"
	resp := h.c.OffsetFetch(h.now, req)
	var got []string
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			got = append(got, t.Topic+string(rune('0'+p.Partition)))
			if p.Offset != int64(p.Partition)+100 || p.LeaderEpoch != 3 || p.Metadata == nil || *p.Metadata != "" {
				panic("wrong partition")
			}
		}
	}
	if !slices.Equal(got, []string{"a0", "a1", "b0", "b2"}) {
		t.Fatalf("all offsets: %v", got)
	}
	// v8, two groups, named partitions (one never committed) and an
	// unknown group.
	req = kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	req.Groups = []kmsg.OffsetFetchRequestGroup{
		{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "b", Partitions: []int32{2, 1}}}},
		{Group: "nope", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "a", Partitions: []int32{0}}}},
	}
	resp = h.c.OffsetFetch(h.now, req)
	if len(resp.Groups) != 2 {
		t.Fatal(resp.Groups)
	}
	ps := resp.Groups[0].Topics[0].Partitions
	if ps[0].Partition != 2 || ps[0].Offset != 102 || ps[1].Partition != 1 || ps[1].Offset != -1 || ps[1].LeaderEpoch != -1 {
		t.Fatalf("group g: %+v", ps)
	}
	if p := resp.Groups[1].Topics[0].Partitions[0]; p.Offset != -1 || p.ErrorCode != 0 {
		t.Fatalf("unknown group: %+v", p)
	}
}

func TestInitialRebalanceDelay(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelayMs = 3000
	t.Run("no newcomers", func(t *testing.T) {
		h := newHarness(t, cfg)
		a := h.joinNew("g")
		h.advance(2999)
		if a.done() {
			t.Fatal("answered before the delay")
		}
		h.advance(1)
		a.ok()
	})
	t.Run("extended", func(t *testing.T) {
		h := newHarness(t, cfg)
		a := h.joinNew("g") // rebalance timeout 20 s
		h.advance(2000)
		h.joinNew("g")
		h.advance(1000) // 3 s: a newcomer arrived, extend to 6 s
		h.advance(2999)
		if a.done() {
			t.Fatal("answered before the extension ended")
		}
		h.advance(1)
		if r := a.ok(); len(r.Members) != 2 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("capped by the rebalance timeout", func(t *testing.T) {
		h := newHarness(t, cfg)
		a := h.joinWith("g", "", joinOpts{version: 3, rebalance: 10000})
		// A newcomer every 2 s. Deadlines: 3 s, 6 s, 9 s (remaining 1 s),
		// then 10 s with no time left.
		for i := 0; i < 4; i++ {
			h.advance(2000)
			h.joinWith("g", "", joinOpts{version: 3, rebalance: 10000})
			if a.done() {
				t.Fatalf("answered at %d s", 2*(i+1))
			}
		}
		h.advance(1999) // 9.999 s
		if a.done() {
			t.Fatal("answered before the cap")
		}
		h.advance(1)
		if r := a.ok(); len(r.Members) != 5 || r.Generation != 1 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("not after the first generation's barrier", func(t *testing.T) {
		h := newHarness(t, cfg)
		ids, gen := formGroup(t, h, "g", 1)
		// A rebalance of a non-empty group completes as soon as all are in.
		if r := h.join("g", ids[0]).ok(); r.Generation != gen+1 {
			t.Fatal(r)
		}
	})
}

func TestProtocolSelection(t *testing.T) {
	h := newHarness(t, testConfig())
	j1 := h.joinWith("g", "", joinOpts{version: 3, protocols: protos("range", "sticky")})
	r := j1.ok()
	h.sync("g", r.MemberID, 1, nil)
	if j := h.joinWith("g", "", joinOpts{version: 3, protocols: protos("roundrobin")}); j.err() != kerr.InconsistentGroupProtocol {
		t.Fatalf("disjoint protocols: %v", j.err())
	}
	j2 := h.joinWith("g", "", joinOpts{version: 3, protocols: protos("sticky", "range")})
	j3 := h.joinWith("g", "", joinOpts{version: 3, protocols: protos("sticky")})
	j1 = h.joinWith("g", r.MemberID, joinOpts{version: 3, protocols: protos("range", "sticky")})
	if r := j1.ok(); *r.Protocol != "sticky" {
		t.Fatalf("selected %q, want the only protocol all support", *r.Protocol)
	}
	_, _ = j2.ok(), j3.ok()

	// Votes: range 2, sticky 1.
	h2 := newHarness(t, testConfig())
	a := h2.joinWith("g", "", joinOpts{version: 3, protocols: protos("range", "sticky")})
	ra := a.ok()
	h2.sync("g", ra.MemberID, 1, nil)
	b := h2.joinWith("g", "", joinOpts{version: 3, protocols: protos("sticky", "range")})
	c := h2.joinWith("g", "", joinOpts{version: 3, protocols: protos("range", "sticky")})
	a = h2.joinWith("g", ra.MemberID, joinOpts{version: 3, protocols: protos("range", "sticky")})
	if r := a.ok(); *r.Protocol != "range" {
		t.Fatalf("selected %q, want the most voted", *r.Protocol)
	}
	_, _ = b.ok(), c.ok()

	// An empty group takes nothing without a protocol type and list.
	h3 := newHarness(t, testConfig())
	if j := h3.joinWith("g", "", joinOpts{version: 3, protocols: []kmsg.JoinGroupRequestProtocol{}}); j.err() != kerr.InconsistentGroupProtocol {
		t.Fatal(j.err())
	}
}

func TestJoinValidation(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSize = 2
	h := newHarness(t, cfg)
	if j := h.join("", ""); j.err() != kerr.InvalidGroupID {
		t.Fatal(j.err())
	}
	if j := h.joinWith("g", "", joinOpts{session: 5999}); j.err() != kerr.InvalidSessionTimeout {
		t.Fatal(j.err())
	}
	if j := h.joinWith("g", "", joinOpts{session: 1800001}); j.err() != kerr.InvalidSessionTimeout {
		t.Fatal(j.err())
	}
	if j := h.join("nogroup", "some-id"); j.err() != kerr.UnknownMemberID {
		t.Fatal(j.err())
	}
	formGroup(t, h, "g", 2)
	if j := h.join("g", ""); j.err() != kerr.GroupMaxSizeReached {
		t.Fatal(j.err())
	}
	wantCode(t, "heartbeat to no group", h.heartbeat("x", "m", 1), kerr.UnknownMemberID)
	wantCode(t, "heartbeat without group", h.heartbeat("", "m", 1), kerr.InvalidGroupID)
}

func TestSupersededJoinIsAnswered(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, _ := formGroup(t, h, "g", 3)
	j0 := h.join("g", ids[0]) // the leader starts a rebalance
	j1 := h.join("g", ids[1])
	j1b := h.join("g", ids[1])
	if j1.err() != kerr.RebalanceInProgress {
		t.Fatalf("replaced join: %v", j1.err())
	}
	h.join("g", ids[2]).ok()
	j0.ok()
	j1b.ok()
}

func TestStaticMembership(t *testing.T) {
	h := newHarness(t, testConfig())
	inst := func(s string) *string { return &s }
	// Static members get their id at once (no MEMBER_ID_REQUIRED).
	ja := h.joinWith("g", "", joinOpts{instanceID: inst("i-a")})
	ra := ja.ok()
	if ra.MemberID[:4] != "i-a-" {
		t.Fatalf("static member id %q", ra.MemberID)
	}
	jb := h.joinWith("g", "", joinOpts{instanceID: inst("i-b")})
	ja = h.joinWith("g", ra.MemberID, joinOpts{instanceID: inst("i-a")})
	ra, rb := ja.ok(), jb.ok()
	h.sync("g", rb.MemberID, ra.Generation, nil)
	h.sync("g", ra.MemberID, ra.Generation, map[string]string{ra.MemberID: "A", rb.MemberID: "B"})
	gen := ra.Generation

	// b restarts: same instance id, no member id. It takes its old place
	// and assignment without a rebalance.
	jb2 := h.joinWith("g", "", joinOpts{instanceID: inst("i-b")})
	rb2 := jb2.ok()
	if rb2.MemberID == rb.MemberID || rb2.Generation != gen || rb2.LeaderID != ra.MemberID || h.state("g") != Stable {
		t.Fatalf("static rejoin: %+v (state %v)", rb2, h.state("g"))
	}
	s := h.sync("g", rb2.MemberID, gen, nil)
	if s.errCode() != 0 || string(s.resp.MemberAssignment) != "B" {
		t.Fatalf("static sync: %+v", s.resp)
	}
	// The old incarnation is fenced.
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation, req.InstanceID = "g", rb.MemberID, gen, inst("i-b")
	wantCode(t, "old incarnation", h.c.Heartbeat(h.now, req).ErrorCode, kerr.FencedInstanceID)
	req.MemberID = rb2.MemberID
	wantCode(t, "new incarnation", h.c.Heartbeat(h.now, req).ErrorCode, nil)

	// The leader restarts: it is told it leads, with the members, and that
	// it may skip the assignment (v9).
	ra2 := h.joinWith("g", "", joinOpts{instanceID: inst("i-a")}).ok()
	if ra2.LeaderID != ra2.MemberID || !ra2.SkipAssignment || len(ra2.Members) != 2 || ra2.Generation != gen {
		t.Fatalf("static leader rejoin: %+v", ra2)
	}

	// A static member that changes protocols rebalances the group.
	jb3 := h.joinWith("g", "", joinOpts{instanceID: inst("i-b"), protocols: protos("sticky", "range")})
	if jb3.done() || h.state("g") != Stable {
		// Protocol choice unchanged ("range" still wins the vote).
		if !jb3.done() {
			t.Fatal("held although the protocol choice did not change")
		}
	}

	// Administrative removal by instance id.
	lreq := kmsg.NewPtrLeaveGroupRequest()
	lreq.Version = 5
	lreq.Group = "g"
	lreq.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: inst("i-b")}, {InstanceID: inst("i-zzz")}}
	lresp := h.c.LeaveGroup(h.now, lreq)
	wantCode(t, "leave i-b", lresp.Members[0].ErrorCode, nil)
	wantCode(t, "leave unknown instance", lresp.Members[1].ErrorCode, kerr.UnknownMemberID)
	if gi, _ := h.c.Group("g"); len(gi.Members) != 1 || gi.State != PreparingRebalance {
		t.Fatalf("after removing i-b: %+v", gi)
	}
}

func TestDescribeListDelete(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := formGroup(t, h, "busy", 2)
	wantCode(t, "commit", h.commit(8, "idle", "", -1, "t", 0, 5), nil)

	dreq := kmsg.NewPtrDescribeGroupsRequest()
	dreq.Version = 5
	dreq.Groups = []string{"busy", "idle", "none"}
	dresp := h.c.DescribeGroups(h.now, dreq)
	busy, idle, none := dresp.Groups[0], dresp.Groups[1], dresp.Groups[2]
	if busy.State != "Stable" || busy.Protocol != "range" || busy.ProtocolType != "consumer" || len(busy.Members) != 2 {
		t.Fatalf("busy: %+v", busy)
	}
	if m := busy.Members[1]; m.MemberID != ids[1] || m.ClientID != "cl" || m.ClientHost != "/127.0.0.1" ||
		string(m.ProtocolMetadata) != "md-range" || string(m.MemberAssignment) != "a-1" {
		t.Fatalf("busy member: %+v", m)
	}
	if idle.State != "Empty" || idle.ProtocolType != "" || none.State != "Dead" || none.ErrorCode != 0 {
		t.Fatalf("idle %+v none %+v", idle, none)
	}

	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.Version = 5
	lresp := h.c.ListGroups(h.now, lreq)
	if len(lresp.Groups) != 2 || lresp.Groups[0].Group != "busy" || lresp.Groups[1].Group != "idle" ||
		lresp.Groups[0].GroupState != "Stable" || lresp.Groups[0].GroupType != "classic" {
		t.Fatalf("list: %+v", lresp.Groups)
	}
	lreq.StatesFilter = []string{"empty"}
	if g := h.c.ListGroups(h.now, lreq).Groups; len(g) != 1 || g[0].Group != "idle" {
		t.Fatalf("state filter: %+v", g)
	}
	lreq.StatesFilter, lreq.TypesFilter = nil, []string{"consumer"}
	if g := h.c.ListGroups(h.now, lreq).Groups; len(g) != 0 {
		t.Fatalf("type filter: %+v", g)
	}

	delreq := kmsg.NewPtrDeleteGroupsRequest()
	delreq.Version = 2
	delreq.Groups = []string{"busy", "idle", "none"}
	delresp := h.deleteGroups(delreq)
	wantCode(t, "delete busy", delresp.Groups[0].ErrorCode, kerr.NonEmptyGroup)
	wantCode(t, "delete idle", delresp.Groups[1].ErrorCode, nil)
	wantCode(t, "delete none", delresp.Groups[2].ErrorCode, kerr.GroupIDNotFound)
	if _, ok := h.c.Committed("idle", "t", 0); ok {
		t.Fatal("offsets outlived their group")
	}

	// Once its members leave, busy is Empty and can go.
	h.leave("busy", ids...)
	if h.state("busy") != Empty {
		t.Fatal(h.state("busy"))
	}
	if gi, _ := h.c.Group("busy"); gi.Generation != gen+1 {
		t.Fatalf("emptying the group should start a generation: %d", gi.Generation)
	}
	delreq.Groups = []string{"busy"}
	wantCode(t, "delete emptied", h.deleteGroups(delreq).Groups[0].ErrorCode, nil)
}

func TestRetentionSweep(t *testing.T) {
	cfg := testConfig()
	cfg.OffsetsRetentionMs = 60000
	cfg.OffsetsRetentionCheckIntervalMs = 10000
	h := newHarness(t, cfg)
	ids, gen := formGroup(t, h, "g", 1)
	wantCode(t, "commit", h.commit(8, "g", ids[0], gen, "t", 0, 1), nil)
	wantCode(t, "simple commit", h.commit(8, "s", "", -1, "t", 0, 1), nil)
	h.leave("g", ids[0])
	// A group with a member stays, offsets or not.
	lj := h.joinWith("alive", "", joinOpts{version: 3, session: 1800000})
	h.sync("alive", lj.ok().MemberID, 1, nil)
	// An empty group without offsets goes at the next sweep.
	jreq := h.joinWith("gone", "", joinOpts{protocols: []kmsg.JoinGroupRequestProtocol{}})
	if jreq.err() != kerr.InconsistentGroupProtocol {
		t.Fatal(jreq.err())
	}
	h.advance(10000)
	if _, ok := h.c.Group("gone"); ok {
		t.Fatal("an empty group without offsets survived the sweep")
	}
	if _, ok := h.c.Committed("g", "t", 0); !ok {
		t.Fatal("offsets expired early")
	}
	h.advance(60000)
	if _, ok := h.c.Group("g"); ok {
		t.Fatal("an empty group's offsets should expire retention after it emptied")
	}
	if _, ok := h.c.Group("s"); ok {
		t.Fatal("a simple group's offsets should expire retention after their commit")
	}
	if _, ok := h.c.Group("alive"); !ok {
		t.Fatal("a group with a member was swept")
	}
}

func TestNextDeadline(t *testing.T) {
	h := newHarness(t, testConfig())
	sweep := h.c.NextDeadline()
	if sweep != h.now+600000*1e6 {
		t.Fatalf("sweep at %d", sweep)
	}
	ids, _ := formGroup(t, h, "g", 1)
	if d := h.c.NextDeadline(); d != h.now+10000*1e6 {
		t.Fatalf("session deadline %d, want %d", d, h.now+10000*1e6)
	}
	h.leave("g", ids...)
	if d := h.c.NextDeadline(); d != sweep {
		t.Fatalf("after leaving: %d", d)
	}
}

func TestDeleteTopicOffsets(t *testing.T) {
	h := newHarness(t, testConfig())
	wantCode(t, "commit", h.commit(8, "g", "", -1, "gone", 0, 5), nil)
	wantCode(t, "commit", h.commit(8, "g", "", -1, "kept", 0, 6), nil)
	h.c.DeleteTopicOffsets(h.now, "gone")
	if _, ok := h.c.Committed("g", "gone", 0); ok {
		t.Fatal("offset of a deleted topic kept")
	}
	if o, ok := h.c.Committed("g", "kept", 0); !ok || o != 6 {
		t.Fatal("offset of another topic lost")
	}
}

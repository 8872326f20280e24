package group

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A new coordinator that replays __consumer_offsets has the stored
// generation with its members and assignments, and the committed offsets;
// members carry on without a rebalance.
func TestReloadKeepsGenerationAndOffsets(t *testing.T) {
	h := newHarness(t, testConfig())
	ra := h.joinNew("g").ok()
	h.sync("g", ra.MemberID, 1, map[string]string{ra.MemberID: "A"})
	wantCode(t, "commit", h.commit(8, "g", ra.MemberID, 1, "t", 3, 42), nil)
	wantCode(t, "simple commit", h.commit(8, "simple", "", -1, "t", 0, 7), nil)

	h.reload()
	gi, ok := h.c.Group("g")
	if !ok || gi.State != Stable || gi.Generation != 1 || gi.Leader != ra.MemberID || len(gi.Members) != 1 || string(gi.Members[0].Assignment) != "A" {
		t.Fatalf("reloaded group: %+v", gi)
	}
	if off, ok := h.c.Committed("g", "t", 3); !ok || off != 42 {
		t.Fatalf("reloaded offset %d %v, want 42", off, ok)
	}
	if off, ok := h.c.Committed("simple", "t", 0); !ok || off != 7 {
		t.Fatalf("reloaded simple offset %d %v, want 7", off, ok)
	}
	wantCode(t, "heartbeat after reload", h.heartbeat("g", ra.MemberID, 1), nil)
	// The member's session was restarted at the reload.
	h.advance(11000)
	if h.state("g") != Empty {
		t.Fatalf("member without heartbeats kept: %v", h.state("g"))
	}
	// The empty generation is stored too: generations keep counting up.
	h.reload()
	if gi, _ := h.c.Group("g"); gi.State != Empty || gi.Generation != 2 {
		t.Fatalf("after the member expired and a reload: %+v", gi)
	}
}

// An OffsetCommit is answered once its write is committed, and is not
// visible before; a failed write answers the host's error and changes
// nothing.
func TestCommitWaitsForTheWrite(t *testing.T) {
	h := newHarness(t, testConfig())
	h.hold = true
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.Generation = "g", -1
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5}}}}
	var resp *kmsg.OffsetCommitResponse
	h.c.OffsetCommit(h.now, req, func(r *kmsg.OffsetCommitResponse) { resp = r })
	if resp != nil {
		t.Fatal("answered before the write")
	}
	if _, ok := h.c.Committed("g", "t", 0); ok {
		t.Fatal("visible before the write")
	}
	h.host.flush()
	if resp == nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("after the write: %+v", resp)
	}

	h.host.failWith = kerr.CoordinatorNotAvailable
	req.Topics[0].Partitions[0].Offset = 9
	resp = nil
	h.c.OffsetCommit(h.now, req, func(r *kmsg.OffsetCommitResponse) { resp = r })
	h.host.flush()
	wantCode(t, "failed write", resp.Topics[0].Partitions[0].ErrorCode, kerr.CoordinatorNotAvailable)
	if off, _ := h.c.Committed("g", "t", 0); off != 5 {
		t.Fatalf("offset after a failed write: %d, want 5", off)
	}
}

// Members get their assignment only once the generation is stored; a
// failed store sends them back to rejoin with the host's error.
func TestAssignmentWaitsForTheWrite(t *testing.T) {
	h := newHarness(t, testConfig())
	ra := h.joinNew("g").ok()
	h.hold = true
	s := h.sync("g", ra.MemberID, 1, map[string]string{ra.MemberID: "A"})
	if s.done() || h.state("g") != CompletingRebalance {
		t.Fatal("assignment handed out before it was stored")
	}
	h.host.failWith = kerr.NotCoordinator
	h.host.flush()
	wantCode(t, "sync after a failed store", s.errCode(), kerr.NotCoordinator)
	if h.state("g") != PreparingRebalance {
		t.Fatalf("state after a failed store: %v", h.state("g"))
	}
}

// A coordinator that gives up a partition answers what its groups hold
// NOT_COORDINATOR; a group the host says is elsewhere gets its error.
func TestUnloadAndOwnership(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelayMs = 3000
	h := newHarness(t, cfg)
	j := h.join("g", "")
	second := h.join("g", j.resp.MemberID)
	if second.done() {
		t.Fatal("join of a new group answered at once")
	}
	h.c.Unload(h.now, 0, func(id string) bool { return id == "g" })
	if second.err() != kerr.NotCoordinator {
		t.Fatalf("held join after unload: %v", second.err())
	}
	if _, ok := h.c.Group("g"); ok {
		t.Fatal("group kept after unload")
	}
	h.host.notOwned["g"] = kerr.CoordinatorLoadInProgress
	wantCode(t, "heartbeat while loading", h.heartbeat("g", "m", 1), kerr.CoordinatorLoadInProgress)
	wantCode(t, "commit while loading", h.commit(8, "g", "", -1, "t", 0, 1), kerr.CoordinatorLoadInProgress)
}

// OffsetDelete removes offsets of an Empty group, and of topics no member
// of a consumer group subscribes to; the deletion survives a reload.
func TestOffsetDelete(t *testing.T) {
	h := newHarness(t, testConfig())
	wantCode(t, "commit", h.commit(8, "g", "", -1, "t", 0, 5), nil)
	wantCode(t, "commit", h.commit(8, "g", "", -1, "u", 0, 6), nil)
	md := (&kmsg.ConsumerMemberMetadata{Version: 0, Topics: []string{"t"}}).AppendTo(nil)
	ra := h.joinWith("g", "", joinOpts{version: 3, protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: md}}}).ok()
	h.sync("g", ra.MemberID, ra.Generation, map[string]string{ra.MemberID: "A"})

	del := func(topic string) (int16, int16) {
		resp := h.offsetDelete("g", topic)
		return resp.ErrorCode, resp.Topics[0].Partitions[0].ErrorCode
	}
	if top, part := del("t"); top != 0 || part != kerr.GroupSubscribedToTopic.Code {
		t.Fatalf("subscribed topic: %v %v", kerr.ErrorForCode(top), kerr.ErrorForCode(part))
	}
	if top, part := del("u"); top != 0 || part != 0 {
		t.Fatalf("unsubscribed topic: %v %v", kerr.ErrorForCode(top), kerr.ErrorForCode(part))
	}
	h.reload()
	if _, ok := h.c.Committed("g", "u", 0); ok {
		t.Fatal("deleted offset back after a reload")
	}
	if off, _ := h.c.Committed("g", "t", 0); off != 5 {
		t.Fatalf("kept offset after a reload: %d", off)
	}
}

// A consumer group whose members' subscriptions do not decode counts as
// subscribed to every topic, as in Kafka: OffsetDelete keeps its offsets.
func TestOffsetDeleteUnknownSubscription(t *testing.T) {
	h := newHarness(t, testConfig())
	wantCode(t, "commit", h.commit(8, "g", "", -1, "u", 0, 6), nil)
	ra := h.joinWith("g", "", joinOpts{version: 3, protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{}}}}).ok()
	h.sync("g", ra.MemberID, ra.Generation, map[string]string{ra.MemberID: "A"})
	resp := h.offsetDelete("g", "u")
	if top, part := resp.ErrorCode, resp.Topics[0].Partitions[0].ErrorCode; top != 0 || part != kerr.GroupSubscribedToTopic.Code {
		t.Fatalf("undecodable subscription: %v %v", kerr.ErrorForCode(top), kerr.ErrorForCode(part))
	}
	if off, _ := h.c.Committed("g", "u", 0); off != 6 {
		t.Fatalf("offset of a topic the group may use: %d", off)
	}
}

// Deletions are visible only once their tombstones are committed: until
// then reads see the group and its offsets as they were and changes to
// the group are asked to retry; a failed write leaves everything in place.
func TestDeletionsWaitForTheirTombstones(t *testing.T) {
	h := newHarness(t, testConfig())
	wantCode(t, "commit", h.commit(8, "g", "", -1, "t", 0, 5), nil)
	wantCode(t, "commit", h.commit(8, "g", "", -1, "u", 0, 6), nil)

	h.hold = true
	if resp := h.offsetDelete("g", "u"); resp != nil {
		t.Fatal("OffsetDelete answered before its tombstone was committed")
	}
	if off, _ := h.c.Committed("g", "u", 0); off != 6 {
		t.Fatalf("offset while its deletion is written: %d, want 6", off)
	}
	h.host.flush()
	if _, ok := h.c.Committed("g", "u", 0); ok {
		t.Fatal("offset outlived its committed tombstone")
	}

	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Groups = []string{"g"}
	var answer *kmsg.DeleteGroupsResponse
	h.c.DeleteGroups(h.now, req, func(r *kmsg.DeleteGroupsResponse) { answer = r })
	if answer != nil {
		t.Fatal("DeleteGroups answered before its tombstones were committed")
	}
	if off, _ := h.c.Committed("g", "t", 0); off != 5 {
		t.Fatalf("offset while its group's deletion is written: %d, want 5", off)
	}
	if gi, ok := h.c.Group("g"); !ok || gi.State != Empty {
		t.Fatalf("group while its deletion is written: %+v, %v", gi, ok)
	}
	wantCode(t, "commit while deleting", h.commit(8, "g", "", -1, "t", 0, 7), kerr.CoordinatorLoadInProgress)
	if resp := h.deleteGroups(req); resp == nil || resp.Groups[0].ErrorCode != kerr.CoordinatorLoadInProgress.Code {
		t.Fatalf("a second DeleteGroups while the first is written: %+v", resp)
	}

	// The write fails: the answer says so, and the group stays and takes
	// changes again.
	h.host.failWith = kerr.NotCoordinator
	h.host.flush()
	h.host.failWith = nil
	h.hold = false
	if answer == nil || answer.Groups[0].ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("DeleteGroups whose write failed: %+v", answer)
	}
	if off, _ := h.c.Committed("g", "t", 0); off != 5 {
		t.Fatalf("offset after a failed deletion: %d, want 5", off)
	}
	wantCode(t, "commit after a failed deletion", h.commit(8, "g", "", -1, "t", 0, 7), nil)

	// Committed, the deletion takes the group away.
	if resp := h.deleteGroups(req); resp == nil || resp.Groups[0].ErrorCode != 0 {
		t.Fatalf("DeleteGroups: %+v", resp)
	}
	if _, ok := h.c.Group("g"); ok {
		t.Fatal("group outlived its committed tombstones")
	}
}

package group

import (
	"math/rand/v2"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testConfig is Kafka's defaults except for a zero initial rebalance delay
// and a short retention sweep interval that tests do not reach.
func testConfig() Config {
	return Config{
		InitialRebalanceDelayMs:         0,
		MinSessionTimeoutMs:             6000,
		MaxSessionTimeoutMs:             1800000,
		MaxSize:                         1000,
		OffsetMetadataMaxBytes:          4096,
		OffsetsRetentionMs:              7 * 24 * 3600 * 1000,
		OffsetsRetentionCheckIntervalMs: 600000,
		ConsumerSessionTimeoutMs:        45000,
		ConsumerHeartbeatIntervalMs:     5000,
		ConsumerMaxSize:                 1000,
		ConsumerAssignors:               []string{"uniform", "range"},
	}
}

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// memHost is a coordinator's host with __consumer_offsets in memory:
// appends wait until flush commits them (or fails them with failWith), so
// tests see what waits for a write.
type memHost struct {
	now      *int64
	log      []Record // committed records, in order
	pending  []memAppend
	failWith *kerr.Error
	notOwned map[string]*kerr.Error
	topics   []TopicMeta // sorted by name; see consumer_helpers_test.go
}

type memAppend struct {
	recs []Record
	done func(int64, *kerr.Error)
}

func (m *memHost) Owns(group string) *kerr.Error { return m.notOwned[group] }

func (m *memHost) Append(_ string, recs []Record, done func(int64, *kerr.Error)) {
	m.pending = append(m.pending, memAppend{recs, done})
}

func (m *memHost) Exists(topic string, p int32) bool { return topic != "missing" && p >= 0 && p < 8 }

// WallMs runs a fixed distance ahead of the monotonic clock.
func (m *memHost) WallMs() int64 { return 1_700_000_000_000 + *m.now/1e6 }

// flush commits (or fails) every pending append, in order, including
// those the completions append.
func (m *memHost) flush() {
	for len(m.pending) > 0 {
		a := m.pending[0]
		m.pending = m.pending[1:]
		if m.failWith == nil {
			m.log = append(m.log, a.recs...)
		}
		a.done(*m.now, m.failWith)
	}
}

// harness drives a Coordinator with a fake clock; every call's writes are
// committed before the call's helper returns, unless the test holds them
// (hold).
type harness struct {
	t    tb
	c    *Coordinator
	host *memHost
	now  int64
	hold bool
	// reloads seeds each new coordinator's member ids differently, as
	// the broker's one stream of randomness does.
	reloads uint64
}

func newHarness(t tb, cfg Config) *harness {
	h := &harness{t: t, now: 1e9}
	h.host = &memHost{now: &h.now, notOwned: map[string]*kerr.Error{}}
	h.c = New(cfg, rand.New(rand.NewPCG(1, 2)), h.host, nil, h.now)
	return h
}

// flush commits pending writes unless the test holds them.
func (h *harness) flush() {
	if !h.hold {
		h.host.flush()
	}
}

// deleteGroups sends a DeleteGroups and returns its answer, which comes
// once the tombstones are committed (nil while the test holds writes).
func (h *harness) deleteGroups(req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	var resp *kmsg.DeleteGroupsResponse
	h.c.DeleteGroups(h.now, req, func(r *kmsg.DeleteGroupsResponse) { resp = r })
	h.flush()
	return resp
}

// offsetDelete sends an OffsetDelete for partition 0 of topic and returns
// its answer (nil while the test holds writes).
func (h *harness) offsetDelete(group, topic string) *kmsg.OffsetDeleteResponse {
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = group
	req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	resp.Topics = []kmsg.OffsetDeleteResponseTopic{{Topic: topic, Partitions: []kmsg.OffsetDeleteResponseTopicPartition{{Partition: 0}}}}
	var answered *kmsg.OffsetDeleteResponse
	h.c.OffsetDelete(h.now, req, resp, func(r *kmsg.OffsetDeleteResponse) { answered = r })
	h.flush()
	return answered
}

// reload makes a new coordinator from the records written so far, as a
// new leader of the partition does after a failover.
func (h *harness) reload() {
	h.t.Helper()
	h.reloads++
	h.c = New(h.c.cfg, rand.New(rand.NewPCG(3, h.reloads)), h.host, nil, h.now)
	h.c.BeginLoad(0)
	for _, r := range h.host.log {
		if err := h.c.Replay(0, r); err != nil {
			h.t.Fatal(err)
		}
	}
	h.c.Loaded(h.now, 0)
}

// advance moves the clock by ms and expires what is due.
func (h *harness) advance(ms int64) {
	h.now += ms * 1e6
	h.c.Expire(h.now)
	h.flush()
}

// joinCall is a JoinGroup whose answer may come later.
type joinCall struct {
	t     tb
	resp  *kmsg.JoinGroupResponse
	calls int
}

func (j *joinCall) done() bool { return j.calls > 0 }

func (j *joinCall) ok() *kmsg.JoinGroupResponse {
	j.t.Helper()
	if j.calls != 1 {
		j.t.Fatalf("JoinGroup answered %d times, want once", j.calls)
	}
	if j.resp.ErrorCode != 0 {
		j.t.Fatalf("JoinGroup: %v", kerr.ErrorForCode(j.resp.ErrorCode))
	}
	return j.resp
}

func (j *joinCall) err() *kerr.Error {
	j.t.Helper()
	if j.calls != 1 {
		j.t.Fatalf("JoinGroup answered %d times, want once", j.calls)
	}
	if j.resp.ErrorCode == 0 {
		return nil
	}
	return kerr.ErrorForCode(j.resp.ErrorCode).(*kerr.Error)
}

type joinOpts struct {
	version    int16
	session    int32
	rebalance  int32
	instanceID *string
	protocols  []kmsg.JoinGroupRequestProtocol
	client     string
}

func protos(names ...string) []kmsg.JoinGroupRequestProtocol {
	var out []kmsg.JoinGroupRequestProtocol
	for _, n := range names {
		out = append(out, kmsg.JoinGroupRequestProtocol{Name: n, Metadata: []byte("md-" + n)})
	}
	return out
}

func (h *harness) joinWith(groupID, memberID string, o joinOpts) *joinCall {
	if o.version == 0 {
		o.version = 9 // v0 is never tested; zero means the newest
	}
	if o.session == 0 {
		o.session = 10000
	}
	if o.rebalance == 0 {
		o.rebalance = 20000
	}
	if o.protocols == nil {
		o.protocols = protos("range")
	}
	if o.client == "" {
		o.client = "cl"
	}
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = o.version
	req.Group = groupID
	req.MemberID = memberID
	req.SessionTimeoutMillis = o.session
	req.RebalanceTimeoutMillis = o.rebalance
	req.InstanceID = o.instanceID
	req.ProtocolType = "consumer"
	req.Protocols = o.protocols
	j := &joinCall{t: h.t}
	h.c.JoinGroup(h.now, Client{ID: o.client, Host: "/127.0.0.1"}, req, func(r *kmsg.JoinGroupResponse) {
		j.resp = r
		j.calls++
	})
	h.flush()
	return j
}

// join joins at v9 with the default options.
func (h *harness) join(groupID, memberID string) *joinCall {
	return h.joinWith(groupID, memberID, joinOpts{})
}

// joinNew runs the KIP-394 two-step join and returns the held second call.
func (h *harness) joinNew(groupID string) *joinCall {
	h.t.Helper()
	first := h.join(groupID, "")
	if first.err() != kerr.MemberIDRequired {
		h.t.Fatalf("first join: %v, want MEMBER_ID_REQUIRED", first.err())
	}
	return h.join(groupID, first.resp.MemberID)
}

type syncCall struct {
	t     tb
	resp  *kmsg.SyncGroupResponse
	calls int
}

func (s *syncCall) done() bool { return s.calls > 0 }

func (s *syncCall) errCode() int16 {
	s.t.Helper()
	if s.calls != 1 {
		s.t.Fatalf("SyncGroup answered %d times, want once", s.calls)
	}
	return s.resp.ErrorCode
}

func (h *harness) sync(groupID, memberID string, gen int32, assign map[string]string) *syncCall {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = groupID, memberID, gen
	for id, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte(a)})
	}
	s := &syncCall{t: h.t}
	h.c.SyncGroup(h.now, req, func(r *kmsg.SyncGroupResponse) {
		s.resp = r
		s.calls++
	})
	h.flush()
	return s
}

func (h *harness) heartbeat(groupID, memberID string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation = groupID, memberID, gen
	return h.c.Heartbeat(h.now, req).ErrorCode
}

func (h *harness) leave(groupID string, memberIDs ...string) []int16 {
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 5
	req.Group = groupID
	for _, id := range memberIDs {
		req.Members = append(req.Members, kmsg.LeaveGroupRequestMember{MemberID: id})
	}
	var codes []int16
	resp := h.c.LeaveGroup(h.now, req)
	h.flush()
	for _, m := range resp.Members {
		codes = append(codes, m.ErrorCode)
	}
	return codes
}

// commit commits one offset and returns its error code.
func (h *harness) commit(version int16, groupID, memberID string, gen int32, topic string, p int32, offset int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = version
	req.Group, req.MemberID, req.Generation = groupID, memberID, gen
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: p, Offset: offset, LeaderEpoch: 3}}}}
	var code int16 = -100
	h.c.OffsetCommit(h.now, req, func(r *kmsg.OffsetCommitResponse) { code = r.Topics[0].Partitions[0].ErrorCode })
	h.flush()
	if code == -100 {
		h.t.Fatal("OffsetCommit not answered")
	}
	return code
}

func (h *harness) state(groupID string) State {
	gi, _ := h.c.Group(groupID)
	return gi.State
}

func wantCode(t tb, what string, got int16, want *kerr.Error) {
	t.Helper()
	var wantCode int16
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Fatalf("%s: got %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(wantCode))
	}
}

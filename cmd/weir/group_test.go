package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Consumer groups end to end against the real binary. Every test sets
// group.initial.rebalance.delay.ms=0 so that a group forms as soon as its
// members are in, and uses short session and rebalance timeouts.

var groupBrokerFlags = []string{"--override", "group.initial.rebalance.delay.ms=0"}

const groupPartitions = 6

// groupSeen records which values consumers got, and who got them.
type groupSeen struct {
	mu    sync.Mutex
	vals  map[string]int // value → times consumed
	byWho map[string]int // consumer → records consumed
}

func newGroupSeen() *groupSeen {
	return &groupSeen{vals: map[string]int{}, byWho: map[string]int{}}
}

func (s *groupSeen) add(who, val string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals[val]++
	s.byWho[who]++
}

func (s *groupSeen) count(who string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byWho[who]
}

func (s *groupSeen) shares() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.byWho)
}

// values lists every value consumed so far.
func (s *groupSeen) values() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for v := range s.vals {
		out = append(out, v)
	}
	return out
}

// waitAll waits until every value in want was consumed at least once.
func (s *groupSeen) waitAll(ctx context.Context, t *testing.T, want []string) {
	t.Helper()
	for {
		s.mu.Lock()
		missing := 0
		for _, v := range want {
			if s.vals[v] == 0 {
				missing++
			}
		}
		s.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d records never consumed", missing, len(want))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// produceGroupRecords writes n records spread evenly over the partitions
// and returns their values.
func produceGroupRecords(ctx context.Context, t *testing.T, addr, topic, prefix string, n int) []string {
	t.Helper()
	prod := newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var vals []string
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("%s-%05d", prefix, i)
		vals = append(vals, v)
		recs = append(recs, &kgo.Record{Value: []byte(v), Partition: int32(i % groupPartitions)})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return vals
}

// startGroupTest starts a broker with flags and creates topic on it for a
// group test; ctx ends after timeout, or with the test.
func startGroupTest(t *testing.T, timeout time.Duration, topic string, flags ...string) (b *process, ctx context.Context, adm *kadm.Client) {
	t.Helper()
	b = startBroker(t, "", flags...)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	adm = kadm.NewClient(newClient(t, b.addr))
	createGroupTopic(ctx, t, adm, topic)
	return b, ctx, adm
}

func createGroupTopic(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) {
	t.Helper()
	r, err := adm.CreateTopic(ctx, groupPartitions, 1, nil, topic)
	if err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
}

// waitGroup waits until the group is in state with n members.
func waitGroup(ctx context.Context, t *testing.T, adm *kadm.Client, group, state string, n int) kadm.DescribedGroup {
	t.Helper()
	for {
		gs, err := adm.DescribeGroups(ctx, group)
		if err == nil {
			if g := gs[group]; g.Err == nil && g.State == state && len(g.Members) == n {
				return g
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s never reached %s with %d members (last: %+v, %v)", group, state, n, gs[group], err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// committedTotal is the sum of the group's committed offsets.
func committedTotal(ctx context.Context, t *testing.T, adm *kadm.Client, group string) int64 {
	t.Helper()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, ps := range offs {
		for _, o := range ps {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			total += o.At
		}
	}
	return total
}

// TestGroupFranz runs franz-go consumer groups with the eager range and the
// cooperative-sticky balancers: three members share a 6-partition topic of
// 3000 records, every record is consumed, every member gets a share; after
// they commit and leave, a new member of the group resumes exactly where
// they stopped. The admin side (describe, list, fetch offsets, delete) is
// checked along the way.
func TestGroupFranz(t *testing.T) {
	for _, bal := range []struct {
		name string
		b    kgo.GroupBalancer
	}{
		{"range", kgo.RangeBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	} {
		t.Run(bal.name, func(t *testing.T) { testGroupFranz(t, bal.b) })
	}
}

func testGroupFranz(t *testing.T, balancer kgo.GroupBalancer) {
	const topic, group = "events", "franz-group"
	b, ctx, adm := startGroupTest(t, 20*time.Second, topic, groupBrokerFlags...)

	consumerOpts := []kgo.Opt{
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.Balancers(balancer),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.RebalanceTimeout(5 * time.Second), kgo.AutoCommitInterval(200 * time.Millisecond),
		kgo.FetchMaxWait(200 * time.Millisecond),
	}
	seen := newGroupSeen()
	var wg sync.WaitGroup
	pollCtx, stopPolling := context.WithCancel(ctx)
	var members []*kgo.Client
	for i := 0; i < 3; i++ {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.addr), kgo.ClientID(fmt.Sprintf("member-%d", i))}, consumerOpts...)...)
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, cl)
		who := fmt.Sprint(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pollCtx.Err() == nil {
				fs := cl.PollFetches(pollCtx)
				fs.EachError(func(topic string, p int32, err error) {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("member %s: fetch %s/%d: %v", who, topic, p, err)
					}
				})
				fs.EachRecord(func(r *kgo.Record) { seen.add(who, string(r.Value)) })
			}
		}()
	}
	// Produce only once the three have formed a group, so each gets a share.
	g := waitGroup(ctx, t, adm, group, "Stable", 3)
	if g.ProtocolType != "consumer" || g.Protocol != balancer.ProtocolName() {
		t.Fatalf("group: %+v", g)
	}
	for _, m := range g.Members {
		if !strings.HasPrefix(m.ClientID, "member-") || !strings.HasPrefix(m.MemberID, m.ClientID+"-") || m.ClientHost != "/127.0.0.1" {
			t.Fatalf("member: %+v", m)
		}
	}
	vals := produceGroupRecords(ctx, t, b.addr, topic, "v", 3000)
	seen.waitAll(ctx, t, vals)
	stopPolling()
	wg.Wait()
	t.Logf("records consumed per member: %v", seen.shares())
	for i := 0; i < 3; i++ {
		if seen.count(fmt.Sprint(i)) == 0 {
			t.Errorf("member %d consumed nothing: the group did not share the partitions", i)
		}
	}
	for _, cl := range members {
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("commit: %v", err)
		}
		cl.Close() // leaves the group
	}
	waitGroup(ctx, t, adm, group, "Empty", 0)
	if total := committedTotal(ctx, t, adm, group); total != 3000 {
		t.Fatalf("committed offsets sum to %d, want 3000", total)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil || listed[group].State != "Empty" || listed[group].ProtocolType != "consumer" {
		t.Fatalf("list groups: %+v %v", listed, err)
	}

	// A new member resumes from the committed offsets: it sees only what
	// was produced after.
	more := produceGroupRecords(ctx, t, b.addr, topic, "w", 300)
	late := newClient(t, b.addr, consumerOpts...)
	got := 0
	for got < len(more) {
		fs := late.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("late member: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !strings.HasPrefix(string(r.Value), "w-") {
				t.Fatalf("late member got %q at %d/%d: it did not resume from the committed offset", r.Value, r.Partition, r.Offset)
			}
			got++
		})
	}
	if err := late.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	late.Close()
	waitGroup(ctx, t, adm, group, "Empty", 0)

	// An empty group can be deleted, with its offsets.
	if r, err := adm.DeleteGroup(ctx, group); err != nil || r.Err != nil {
		t.Fatalf("delete group: %v %v", err, r.Err)
	}
	if r, _ := adm.DeleteGroup(ctx, group); !errors.Is(r.Err, kerr.GroupIDNotFound) {
		t.Fatalf("deleting a deleted group: %v", r.Err)
	}
	if total := committedTotal(ctx, t, adm, group); total != 0 {
		t.Fatalf("offsets survived their group: %d", total)
	}
}

// TestGroupCoordinatorProtocol speaks FindCoordinator, DescribeGroups and
// friends by hand at their oldest and newest versions.
func TestGroupCoordinatorProtocol(t *testing.T) {
	b := startBroker(t, "", groupBrokerFlags...)
	r := dialRaw(t, b.addr)
	host, port := b.addr[:strings.LastIndexByte(b.addr, ':')], b.addr[strings.LastIndexByte(b.addr, ':')+1:]
	// The first request finds no __consumer_offsets: it is created, and
	// the client is told to retry until its partition has a leader
	// that loaded it.
	first := kmsg.NewPtrFindCoordinatorRequest()
	first.CoordinatorKey = "g"
	if resp := r.roundTrip(first).(*kmsg.FindCoordinatorResponse); resp.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("before __consumer_offsets exists: %+v", resp)
	}
	waitFor(t, 10*time.Second, "the group coordinator", func() error {
		resp := r.roundTrip(first).(*kmsg.FindCoordinatorResponse)
		return kerr.ErrorForCode(resp.ErrorCode)
	})
	for v := int16(0); v <= 5; v++ {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version = v
		req.CoordinatorKey = "g"
		req.CoordinatorKeys = []string{"g", "h"}
		resp := r.roundTrip(req).(*kmsg.FindCoordinatorResponse)
		if v < 4 {
			if resp.ErrorCode != 0 || resp.NodeID != 1 || resp.Host != host || fmt.Sprint(resp.Port) != port {
				t.Fatalf("v%d: %+v", v, resp)
			}
			continue
		}
		if len(resp.Coordinators) != 2 || resp.Coordinators[1].Key != "h" || resp.Coordinators[1].Host != host || resp.Coordinators[0].NodeID != 1 {
			t.Fatalf("v%d: %+v", v, resp)
		}
	}
	txn := kmsg.NewPtrFindCoordinatorRequest()
	txn.Version = 3
	txn.CoordinatorType = 1
	txn.CoordinatorKey = "tx"
	tresp := r.roundTrip(txn).(*kmsg.FindCoordinatorResponse)
	if tresp.ErrorCode != kerr.CoordinatorNotAvailable.Code || tresp.ErrorMessage == nil || !strings.Contains(*tresp.ErrorMessage, "transactions") {
		t.Fatalf("transaction coordinator: %+v", tresp)
	}

	// v0 JoinGroup (no KIP-394 round trip), v0 SyncGroup, v0 Heartbeat,
	// v0 LeaveGroup.
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version = 0
	join.Group, join.SessionTimeoutMillis, join.ProtocolType = "old", 6000, "consumer"
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{1}}}
	jresp := r.roundTrip(join).(*kmsg.JoinGroupResponse)
	if jresp.ErrorCode != 0 || jresp.Generation != 1 || jresp.LeaderID != jresp.MemberID || !strings.HasPrefix(jresp.MemberID, "raw-") {
		t.Fatalf("join v0: %+v", jresp)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 0
	sync.Group, sync.Generation, sync.MemberID = "old", 1, jresp.MemberID
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: jresp.MemberID, MemberAssignment: []byte("mine")}}
	if s := r.roundTrip(sync).(*kmsg.SyncGroupResponse); s.ErrorCode != 0 || string(s.MemberAssignment) != "mine" {
		t.Fatalf("sync v0: %+v", s)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 0
	hb.Group, hb.Generation, hb.MemberID = "old", 1, jresp.MemberID
	if h := r.roundTrip(hb).(*kmsg.HeartbeatResponse); h.ErrorCode != 0 {
		t.Fatalf("heartbeat v0: %v", kerr.ErrorForCode(h.ErrorCode))
	}
	desc := kmsg.NewPtrDescribeGroupsRequest()
	desc.Version = 0
	desc.Groups = []string{"old", "nothing"}
	d := r.roundTrip(desc).(*kmsg.DescribeGroupsResponse)
	if d.Groups[0].State != "Stable" || string(d.Groups[0].Members[0].MemberAssignment) != "mine" || d.Groups[1].State != "Dead" {
		t.Fatalf("describe v0: %+v", d)
	}
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 0
	leave.Group, leave.MemberID = "old", jresp.MemberID
	if l := r.roundTrip(leave).(*kmsg.LeaveGroupResponse); l.ErrorCode != 0 {
		t.Fatalf("leave v0: %v", kerr.ErrorForCode(l.ErrorCode))
	}
	if l := r.roundTrip(leave).(*kmsg.LeaveGroupResponse); l.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("second leave v0: %v", kerr.ErrorForCode(l.ErrorCode))
	}
	list := kmsg.NewPtrListGroupsRequest()
	list.Version = 4
	list.StatesFilter = []string{"Empty"}
	if l := r.roundTrip(list).(*kmsg.ListGroupsResponse); len(l.Groups) != 1 || l.Groups[0].Group != "old" || l.Groups[0].GroupState != "Empty" {
		t.Fatalf("list v4: %+v", l)
	}
}

// saramaGroupHandler consumes claims and marks every message.
type saramaGroupHandler struct {
	who  string
	seen *groupSeen
	// onSetup and onCleanup, if set, see each session as it starts and
	// ends: sarama's only view of which partitions a member holds.
	onSetup, onCleanup func(sarama.ConsumerGroupSession)
}

func (h saramaGroupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	if h.onSetup != nil {
		h.onSetup(sess)
	}
	return nil
}

func (h saramaGroupHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	if h.onCleanup != nil {
		h.onCleanup(sess)
	}
	return nil
}
func (h saramaGroupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		h.seen.add(h.who, string(msg.Value))
		sess.MarkMessage(msg, "")
	}
	return nil
}

func saramaGroupConfig(version sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = version
	cfg.ClientID = "weir-sarama-group"
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 200 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 5 * time.Second
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	return cfg
}

// runSaramaMember consumes in a goroutine until ctx ends, then closes. A
// Consume error fails the test unless tolerateErrors (a cluster test, which
// kills brokers under its members): then it is logged (unless the same as
// the last) and the member joins again.
func runSaramaMember(ctx context.Context, t *testing.T, wg *sync.WaitGroup, addrs []string, group, topic string, cfg *sarama.Config, h saramaGroupHandler, tolerateErrors bool) {
	t.Helper()
	cg, err := sarama.NewConsumerGroup(addrs, group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cg.Close()
		var last string
		for ctx.Err() == nil {
			err := cg.Consume(ctx, []string{topic}, h)
			switch {
			case err == nil || ctx.Err() != nil:
			case tolerateErrors:
				if err.Error() != last {
					t.Logf("sarama member %s: %v (joining again)", h.who, err)
					last = err.Error()
				}
				time.Sleep(100 * time.Millisecond)
			default:
				t.Errorf("sarama member %s: %v", h.who, err)
				return
			}
		}
	}()
}

// TestGroupSarama runs sarama's consumer group: two members share the
// topic, commit what they mark, and a new member resumes after them; then a
// static member (KIP-345) restarts and takes its place back without a
// rebalance.
func TestGroupSarama(t *testing.T) {
	for _, v := range []struct {
		name    string
		version sarama.KafkaVersion
	}{{"default", sarama.DefaultVersion}, {"max", sarama.MaxVersion}} {
		t.Run(v.name, func(t *testing.T) { testGroupSarama(t, v.version) })
	}
}

func testGroupSarama(t *testing.T, version sarama.KafkaVersion) {
	const topic, group = "sarama-events", "sarama-group"
	b, ctx, adm := startGroupTest(t, 20*time.Second, topic, groupBrokerFlags...)

	seen := newGroupSeen()
	var wg sync.WaitGroup
	runCtx, stop := context.WithCancel(ctx)
	for i, strategy := range []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange(), sarama.NewBalanceStrategyRange()} {
		cfg := saramaGroupConfig(version)
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy}
		runSaramaMember(runCtx, t, &wg, []string{b.addr}, group, topic, cfg, saramaGroupHandler{who: fmt.Sprint(i), seen: seen}, false)
	}
	waitGroup(ctx, t, adm, group, "Stable", 2)
	vals := produceGroupRecords(ctx, t, b.addr, topic, "v", 3000)
	seen.waitAll(ctx, t, vals)
	t.Logf("records consumed per member: %v", seen.shares())
	if seen.count("0") == 0 || seen.count("1") == 0 {
		t.Errorf("the members did not share the partitions: %v", seen.byWho)
	}
	// Closing commits what was marked, then leaves.
	stop()
	wg.Wait()
	waitGroup(ctx, t, adm, group, "Empty", 0)
	if total := committedTotal(ctx, t, adm, group); total != 3000 {
		t.Fatalf("committed offsets sum to %d, want 3000", total)
	}

	// A static member joins, consumes what was produced since, and stops
	// without leaving (KIP-345).
	more := produceGroupRecords(ctx, t, b.addr, topic, "w", 300)
	if version.IsAtLeast(sarama.V2_3_0_0) {
		static := saramaGroupConfig(version)
		static.Consumer.Group.InstanceId = "sarama-static"
		late := newGroupSeen()
		runCtx, stop = context.WithCancel(ctx)
		runSaramaMember(runCtx, t, &wg, []string{b.addr}, group, topic, static, saramaGroupHandler{who: "static", seen: late}, false)
		late.waitAll(ctx, t, more)
		for _, v := range late.values() {
			if !strings.HasPrefix(v, "w-") {
				t.Fatalf("static member got %q: it did not resume from the committed offset", v)
			}
		}
		before := waitGroup(ctx, t, adm, group, "Stable", 1)
		stop()
		wg.Wait()
		// Still a member: static members do not leave when they stop.
		gone := waitGroup(ctx, t, adm, group, "Stable", 1)
		if gone.Members[0].InstanceID == nil || *gone.Members[0].InstanceID != "sarama-static" || gone.Members[0].MemberID != before.Members[0].MemberID {
			t.Fatalf("static member after stopping: %+v", gone.Members[0])
		}
		gen := groupGeneration(ctx, t, b.addr, group)

		// It restarts under the same instance id: a new member id, the
		// same generation, and it carries on where it stopped.
		even := produceGroupRecords(ctx, t, b.addr, topic, "x", 60)
		again := newGroupSeen()
		runCtx, stop = context.WithCancel(ctx)
		runSaramaMember(runCtx, t, &wg, []string{b.addr}, group, topic, static, saramaGroupHandler{who: "static", seen: again}, false)
		again.waitAll(ctx, t, even)
		for _, v := range again.values() {
			if !strings.HasPrefix(v, "x-") {
				t.Fatalf("restarted static member got %q", v)
			}
		}
		back := waitGroup(ctx, t, adm, group, "Stable", 1)
		if back.Members[0].MemberID == before.Members[0].MemberID {
			t.Fatal("the restarted static member kept its old member id")
		}
		if g := groupGeneration(ctx, t, b.addr, group); g != gen {
			t.Fatalf("the static member's return rebalanced the group: generation %d → %d", gen, g)
		}
		stop()
		wg.Wait()
		return
	}
	late := newGroupSeen()
	runCtx, stop = context.WithCancel(ctx)
	runSaramaMember(runCtx, t, &wg, []string{b.addr}, group, topic, saramaGroupConfig(version), saramaGroupHandler{who: "late", seen: late}, false)
	late.waitAll(ctx, t, more)
	for _, v := range late.values() {
		if !strings.HasPrefix(v, "w-") {
			t.Fatalf("late member got %q: it did not resume from the committed offset", v)
		}
	}
	stop()
	wg.Wait()
}

// groupGeneration reads a group's generation, which DescribeGroups does not
// report: a heartbeat for the group's first member is ILLEGAL_GENERATION at
// every generation but the current one.
func groupGeneration(ctx context.Context, t *testing.T, addr, group string) int32 {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil || len(gs[group].Members) == 0 {
		t.Fatalf("describe: %v %+v", err, gs)
	}
	m := gs[group].Members[0]
	r := dialRaw(t, addr)
	for gen := int32(1); gen < 100; gen++ {
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Version = 4
		hb.Group, hb.Generation, hb.MemberID, hb.InstanceID = group, gen, m.MemberID, m.InstanceID
		if resp := r.roundTrip(hb).(*kmsg.HeartbeatResponse); resp.ErrorCode != kerr.IllegalGeneration.Code {
			return gen
		}
	}
	t.Fatal("no generation found")
	return 0
}

// TestGroupKafkaGo runs segmentio/kafka-go Readers with a GroupID (its
// JoinGroup v1/v2, SyncGroup v0, OffsetCommit v2 and OffsetFetch v1): two
// readers share the topic and commit; a new reader resumes after them.
func TestGroupKafkaGo(t *testing.T) {
	const topic, group = "kafkago-events", "kafkago-group"
	b, ctx, adm := startGroupTest(t, 20*time.Second, topic, groupBrokerFlags...)

	newReader := func() *kafka.Reader { return newGroupReader([]string{b.addr}, group, topic, nil) }
	read := func(ctx context.Context, wg *sync.WaitGroup, r *kafka.Reader, who string, seen *groupSeen) {
		readGroup(ctx, t, wg, r, who, seen, false)
	}

	seen := newGroupSeen()
	var wg sync.WaitGroup
	runCtx, stop := context.WithCancel(ctx)
	readers := []*kafka.Reader{newReader(), newReader()}
	for i, r := range readers {
		read(runCtx, &wg, r, fmt.Sprint(i), seen)
	}
	waitGroup(ctx, t, adm, group, "Stable", 2)
	vals := produceGroupRecords(ctx, t, b.addr, topic, "v", 3000)
	seen.waitAll(ctx, t, vals)
	t.Logf("records consumed per member: %v", seen.shares())
	if seen.count("0") == 0 || seen.count("1") == 0 {
		t.Errorf("the readers did not share the partitions: %v", seen.byWho)
	}
	stop()
	wg.Wait()
	for _, r := range readers {
		if err := r.Close(); err != nil { // commits what was read, leaves
			t.Fatalf("close: %v", err)
		}
	}
	waitGroup(ctx, t, adm, group, "Empty", 0)
	if total := committedTotal(ctx, t, adm, group); total != 3000 {
		t.Fatalf("committed offsets sum to %d, want 3000", total)
	}

	more := produceGroupRecords(ctx, t, b.addr, topic, "w", 300)
	late := newGroupSeen()
	runCtx, stop = context.WithCancel(ctx)
	lr := newReader()
	read(runCtx, &wg, lr, "late", late)
	late.waitAll(ctx, t, more)
	stop()
	wg.Wait()
	lr.Close()
	for _, v := range late.values() {
		if !strings.HasPrefix(v, "w-") {
			t.Fatalf("late reader got %q: it did not resume from the committed offset", v)
		}
	}
}

// newGroupReader is a kafka-go Reader of topic in group, with the short
// timeouts of these tests; logger, if not nil, gets its log lines.
func newGroupReader(brokers []string, group, topic string, logger kafka.Logger) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, GroupID: group, Topic: topic,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, SessionTimeout: 6 * time.Second,
		RebalanceTimeout: 3 * time.Second, JoinGroupBackoff: 100 * time.Millisecond,
		CommitInterval: 100 * time.Millisecond, StartOffset: kafka.FirstOffset,
		ReadBackoffMin: 50 * time.Millisecond, ReadBackoffMax: 200 * time.Millisecond,
		Logger: logger,
	})
}

// readGroup reads r in a goroutine until ctx ends, recording what it reads
// as who's. A read error fails the test unless tolerateErrors (a cluster
// test, which kills brokers under its readers): then it is logged (unless
// the same as the last) and the reader goes on, as kafka-go's Reader
// rejoins by itself.
func readGroup(ctx context.Context, t *testing.T, wg *sync.WaitGroup, r *kafka.Reader, who string, seen *groupSeen, tolerateErrors bool) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last string
		for {
			m, err := r.ReadMessage(ctx)
			switch {
			case err == nil:
				seen.add(who, string(m.Value))
			case ctx.Err() != nil:
				return
			case tolerateErrors:
				if err.Error() != last {
					t.Logf("reader %s: %v (reading on)", who, err)
					last = err.Error()
				}
				time.Sleep(100 * time.Millisecond)
			default:
				t.Errorf("reader %s: %v", who, err)
				return
			}
		}
	}()
}

// TestGroupSurvivesRestart: committed offsets and the group's generation
// are in __consumer_offsets, so a broker killed with SIGKILL and restarted
// still has them; a member of the old generation carries on (its
// heartbeat is accepted) without a rebalance.
func TestGroupSurvivesRestart(t *testing.T) {
	b, ctx, adm := startGroupTest(t, 30*time.Second, "durable", groupBrokerFlags...)
	offsets := kadm.Offsets{}
	for p := int32(0); p < groupPartitions; p++ {
		offsets.Add(kadm.Offset{Topic: "durable", Partition: p, At: int64(100 + p), LeaderEpoch: -1})
	}
	r, err := adm.CommitOffsets(ctx, "simple", offsets)
	if err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	r2 := dialRaw(t, b.addr)
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version = 3 // no KIP-394 round trip
	join.Group, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis, join.ProtocolType = "members", 30000, 30000, "consumer"
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{1}}}
	jresp := r2.roundTrip(join).(*kmsg.JoinGroupResponse)
	if jresp.ErrorCode != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(jresp.ErrorCode))
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.Generation, sync.MemberID = "members", jresp.Generation, jresp.MemberID
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: jresp.MemberID, MemberAssignment: []byte("mine")}}
	if s := r2.roundTrip(sync).(*kmsg.SyncGroupResponse); s.ErrorCode != 0 {
		t.Fatalf("sync: %v", kerr.ErrorForCode(s.ErrorCode))
	}

	b.kill()
	b.restart()
	adm = kadm.NewClient(newClient(t, b.addr))
	var fetched kadm.OffsetResponses
	waitFor(t, 20*time.Second, "offsets after the restart", func() error {
		fetched, err = adm.FetchOffsets(ctx, "simple")
		if err == nil {
			err = fetched.Error()
		}
		return err
	})
	for p := int32(0); p < groupPartitions; p++ {
		if o, ok := fetched.Lookup("durable", p); !ok || o.At != int64(100+p) {
			t.Fatalf("partition %d after the restart: %+v (found %v), want %d", p, o, ok, 100+p)
		}
	}
	r3 := dialRaw(t, b.addr)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.Generation, hb.MemberID = "members", jresp.Generation, jresp.MemberID
	if h := r3.roundTrip(hb).(*kmsg.HeartbeatResponse); h.ErrorCode != 0 {
		t.Fatalf("heartbeat of the stored generation after the restart: %v", kerr.ErrorForCode(h.ErrorCode))
	}
	gs, err := adm.DescribeGroups(ctx, "members")
	if err != nil || gs["members"].State != "Stable" || len(gs["members"].Members) != 1 {
		t.Fatalf("group after the restart: %+v %v", gs["members"], err)
	}
}

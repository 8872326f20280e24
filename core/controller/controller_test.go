package controller

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/port"
)

// allRequests returns one request of every kind the controller serves.
func allRequests() []kmsg.Request {
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Version = 6
	dt := kmsg.NewDeleteTopicsRequestTopic()
	name := "t"
	dt.Topic = &name
	del.Topics = append(del.Topics, dt)
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = "t", 3
	cp.Topics = append(cp.Topics, cpt)
	el := kmsg.NewPtrElectLeadersRequest()
	elt := kmsg.NewElectLeadersRequestTopic()
	elt.Topic, elt.Partitions = "t", []int32{0, 1}
	el.Topics = append(el.Topics, elt)
	pid := kmsg.NewPtrAllocateProducerIDsRequest()
	pid.BrokerID, pid.BrokerEpoch = 1, 1
	alter := kmsg.NewPtrAlterPartitionRequest()
	alter.Version, alter.BrokerID, alter.BrokerEpoch = 3, 1, 1
	at := kmsg.NewAlterPartitionRequestTopic()
	at.TopicID = [16]byte{1}
	at.Partitions = append(at.Partitions, kmsg.NewAlterPartitionRequestTopicPartition())
	alter.Topics = append(alter.Topics, at)
	return []kmsg.Request{
		registrationReq(1, 1), heartbeatReq(1, 1, 1),
		createReq(newTopic("t", 1, 1), newTopic("u", 1, 1)), del, cp, el, pid, alter,
		reassignReq(0, move{"t", 0, []int32{1}}, move{"t", 1, nil}, move{"u", 0, []int32{2}}), listReq(nil),
	}
}

// checkNotController checks that resp answers every item of its request
// with NOT_CONTROLLER.
func checkNotController(t *testing.T, resp kmsg.Response) {
	t.Helper()
	nc := kerr.NotController
	switch r := resp.(type) {
	case *kmsg.BrokerRegistrationResponse:
		wantCode(t, "registration", r.ErrorCode, nc)
		if r.BrokerEpoch != -1 {
			t.Fatalf("registration epoch %d", r.BrokerEpoch)
		}
	case *kmsg.BrokerHeartbeatResponse:
		wantCode(t, "heartbeat", r.ErrorCode, nc)
		if !r.IsFenced {
			t.Fatalf("heartbeat says unfenced")
		}
	case *kmsg.CreateTopicsResponse:
		if len(r.Topics) != 2 {
			t.Fatalf("create topics: %d results", len(r.Topics))
		}
		for _, rt := range r.Topics {
			wantCode(t, "create "+rt.Topic, rt.ErrorCode, nc)
		}
	case *kmsg.DeleteTopicsResponse:
		if len(r.Topics) != 1 || str(r.Topics[0].Topic) != "t" {
			t.Fatalf("delete topics: %+v", r.Topics)
		}
		wantCode(t, "delete", r.Topics[0].ErrorCode, nc)
	case *kmsg.CreatePartitionsResponse:
		if len(r.Topics) != 1 || r.Topics[0].Topic != "t" {
			t.Fatalf("create partitions: %+v", r.Topics)
		}
		wantCode(t, "create partitions", r.Topics[0].ErrorCode, nc)
	case *kmsg.ElectLeadersResponse:
		wantCode(t, "elect", r.ErrorCode, nc)
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 2 {
			t.Fatalf("elect leaders: %+v", r.Topics)
		}
		for _, p := range r.Topics[0].Partitions {
			wantCode(t, "elect partition", p.ErrorCode, nc)
		}
	case *kmsg.AllocateProducerIDsResponse:
		wantCode(t, "allocate", r.ErrorCode, nc)
	case *kmsg.AlterPartitionResponse:
		// The top-level error alone, as in Kafka.
		wantCode(t, "alter partition", r.ErrorCode, nc)
		if r.Topics != nil {
			t.Fatalf("alter partition: %+v", r.Topics)
		}
	case *kmsg.AlterPartitionAssignmentsResponse:
		wantCode(t, "reassign", r.ErrorCode, nc)
		if len(r.Topics) != 2 || len(r.Topics[0].Partitions) != 2 || len(r.Topics[1].Partitions) != 1 {
			t.Fatalf("reassign: %+v", r.Topics)
		}
		for _, rt := range r.Topics {
			for _, p := range rt.Partitions {
				wantCode(t, "reassign partition", p.ErrorCode, nc)
			}
		}
	case *kmsg.ListPartitionReassignmentsResponse:
		wantCode(t, "list reassignments", r.ErrorCode, nc)
		if r.Topics != nil {
			t.Fatalf("list reassignments: %+v", r.Topics)
		}
	default:
		t.Fatalf("unexpected response %T", resp)
	}
}

func TestInactiveAnswersNotController(t *testing.T) {
	log := newFakeLog()
	c := New(testConfig(), log)
	for _, req := range allRequests() {
		var got kmsg.Response
		c.Handle(0, req, func(r kmsg.Response) { got = r })
		if got == nil {
			t.Fatalf("%T not answered", req)
		}
		checkNotController(t, got)
	}
	c.Tick(1e9)
	if log.proposed != 0 {
		t.Fatalf("inactive controller proposed %d batches", log.proposed)
	}

	// The same after losing leadership.
	e := newEnv(t)
	e.addBrokers(1)
	e.c.Deactivate()
	before := e.log.proposed
	for _, req := range allRequests() {
		checkNotController(t, e.send(req).resp)
	}
	e.c.Tick(e.now + 10*sessionMs)
	if e.log.proposed != before {
		t.Fatalf("deactivated controller proposed")
	}
	// ErrorResponse, which brokers use when the controller is unreachable,
	// fills every item alike.
	for _, req := range allRequests() {
		checkNotController(t, ErrorResponse(req, kerr.NotController))
	}
}

func TestActivateNamesCluster(t *testing.T) {
	for _, given := range []string{"", "given-id"} {
		log := newFakeLog()
		cfg := testConfig()
		cfg.ClusterID = given
		var n uint64
		cfg.Rand = func() uint64 { n++; return n * 0x1234567 }
		c := New(cfg, log)
		c.Activate(metadata.New(), 0)
		if len(log.pending) != 1 {
			t.Fatalf("activation proposed %d batches", len(log.pending))
		}
		recs := log.pending[0].recs
		if len(recs) != 1 || recs[0].Cluster == nil {
			t.Fatalf("activation proposed %+v", recs)
		}
		id := recs[0].Cluster.ClusterID
		if given != "" && id != given || given == "" && len(id) != 22 {
			t.Fatalf("cluster id %q (given %q)", id, given)
		}
		log.commit(-1)
		if log.committed.ClusterID() != id {
			t.Fatalf("committed cluster id %q", log.committed.ClusterID())
		}
		// A later controller of the same cluster names nothing.
		c.Deactivate()
		c.Activate(log.committed, 0)
		if len(log.pending) != 0 {
			t.Fatalf("second activation proposed %+v", log.pending[0].recs)
		}
	}
}

func TestRegistration(t *testing.T) {
	e := newEnv(t)
	a := e.send(registrationReq(1, 1))
	index := e.log.next - 1
	recs := e.log.lastRecs(t)
	if a.n != 0 {
		t.Fatalf("registration answered before its commit")
	}
	if len(recs) != 1 || recs[0].RegisterBroker == nil || recs[0].RegisterBroker.Epoch != int64(index) {
		t.Fatalf("registration proposed %+v at %d", recs, index)
	}
	// A retry while the first is in flight gets the same epoch, once the
	// registration is committed, and proposes nothing.
	retry := e.send(registrationReq(1, 1))
	if e.log.proposed != 2 || retry.n != 0 {
		t.Fatalf("retry proposed or answered before the commit (%d proposals)", e.log.proposed)
	}
	e.log.commit(-1)
	for _, x := range []*answer{a, retry} {
		r := x.resp.(*kmsg.BrokerRegistrationResponse)
		wantCode(t, "register", r.ErrorCode, nil)
		if r.BrokerEpoch != int64(index) {
			t.Fatalf("epoch %d, want the record's index %d", r.BrokerEpoch, index)
		}
	}
	if b := e.broker(1); !b.Fenced || b.Epoch != int64(index) || len(b.Endpoints) != 1 {
		t.Fatalf("registered broker %+v", b)
	}
	again := e.register(1, 1)
	if again.BrokerEpoch != int64(index) || e.log.proposed != 2 {
		t.Fatalf("retry after commit: epoch %d, %d proposals", again.BrokerEpoch, e.log.proposed)
	}

	// Wrong cluster id.
	bad := registrationReq(2, 2)
	bad.ClusterID = "other"
	r := e.call(bad).(*kmsg.BrokerRegistrationResponse)
	wantCode(t, "wrong cluster", r.ErrorCode, kerr.InconsistentClusterID)
	if r.BrokerEpoch != -1 || e.log.proposed != 2 {
		t.Fatalf("wrong cluster id: epoch %d, %d proposals", r.BrokerEpoch, e.log.proposed)
	}

	// Malformed registrations are refused instead of reaching Apply.
	for _, mut := range []func(*kmsg.BrokerRegistrationRequest){
		func(r *kmsg.BrokerRegistrationRequest) { r.BrokerID = -1 },
		func(r *kmsg.BrokerRegistrationRequest) { r.Listeners[0].Name = "" },
		func(r *kmsg.BrokerRegistrationRequest) { r.Listeners = append(r.Listeners, r.Listeners[0]) },
	} {
		req := registrationReq(3, 3)
		mut(req)
		r := e.call(req).(*kmsg.BrokerRegistrationResponse)
		wantCode(t, "malformed registration", r.ErrorCode, kerr.InvalidRequest)
	}

	// A failed registration answers NOT_CONTROLLER.
	f := e.send(registrationReq(4, 4))
	e.failover()
	r = f.resp.(*kmsg.BrokerRegistrationResponse)
	wantCode(t, "failed registration", r.ErrorCode, kerr.NotController)
	if r.BrokerEpoch != -1 {
		t.Fatalf("failed registration epoch %d", r.BrokerEpoch)
	}
}

func TestReregistrationLeavesPartitions(t *testing.T) {
	e := newEnv(t)
	epochs := e.addBrokers(1, 2, 3)
	e.seed(topicRecs("t", 1,
		ps(ids(1, 2, 3), ids(1, 2, 3), 1), // leader moves to 2, ISR shrinks
		ps(ids(1, 2), ids(1), 1),          // last ISR member: to the ELR, no leader
		ps(ids(2, 1), ids(2, 1), 2),       // ISR shrinks, leader stays
		ps(ids(3, 2), ids(3, 2), 3),       // untouched
	)...)
	before := e.log.committed.Clone()
	r := e.register(1, 9) // a new incarnation: the broker restarted
	wantCode(t, "re-register", r.ErrorCode, nil)
	if r.BrokerEpoch <= epochs[1] {
		t.Fatalf("new epoch %d not above %d", r.BrokerEpoch, epochs[1])
	}
	if b := e.broker(1); !b.Fenced || b.Epoch != r.BrokerEpoch {
		t.Fatalf("re-registered broker %+v", b)
	}
	tp, _ := before.Topic("t")
	want := []partSpec{ps(ids(1, 2, 3), ids(2, 3), 2), ps(ids(1, 2), nil, -1).eligible(1), ps(ids(2, 1), ids(2), 2), ps(ids(3, 2), ids(3, 2), 3)}
	for i, w := range want {
		got, old := e.partition("t", int32(i)), tp.Partitions[i]
		if got.Leader != w.leader || !equal(got.ISR, w.isr) || !equal(got.ELR, w.elr) {
			t.Fatalf("partition %d: %+v, want leader %d ISR %v ELR %v", i, got, w.leader, w.isr, w.elr)
		}
		changed := i != 3
		if changed != (got.PartitionEpoch == old.PartitionEpoch+1) || !changed && got.PartitionEpoch != old.PartitionEpoch {
			t.Fatalf("partition %d epoch %d from %d", i, got.PartitionEpoch, old.PartitionEpoch)
		}
		if (got.Leader != old.Leader) != (got.LeaderEpoch == old.LeaderEpoch+1) {
			t.Fatalf("partition %d leader epoch %d from %d (leader %d from %d)", i, got.LeaderEpoch, old.LeaderEpoch, got.Leader, old.Leader)
		}
	}
	// The old process is fenced by epoch.
	hb := e.heartbeat(1, epochs[1])
	wantCode(t, "old incarnation heartbeat", hb.ErrorCode, kerr.StaleBrokerEpoch)

	// Once back, it leads the leaderless partition whose ELR it is.
	hb = e.heartbeat(1, r.BrokerEpoch)
	if hb.ErrorCode != 0 || hb.IsFenced {
		t.Fatalf("unfence after restart: %+v", hb)
	}
	if p := e.partition("t", 1); p.Leader != 1 {
		t.Fatalf("leaderless partition not given back: %+v", p)
	}
	if err := e.checkImage(e.log.committed); err != nil {
		t.Fatal(err)
	}
}

func equal(a, b []port.NodeID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHeartbeat(t *testing.T) {
	e := newEnv(t)
	r := e.register(1, 1)
	epoch := r.BrokerEpoch

	for _, hb := range []*kmsg.BrokerHeartbeatRequest{heartbeatReq(1, epoch-1, 100), heartbeatReq(7, 1, 100)} {
		resp := e.call(hb).(*kmsg.BrokerHeartbeatResponse)
		wantCode(t, "stale heartbeat", resp.ErrorCode, kerr.StaleBrokerEpoch)
		if !resp.IsFenced {
			t.Fatalf("stale heartbeat unfenced")
		}
	}

	// Not caught up: stays fenced.
	n := e.log.proposed
	resp := e.call(heartbeatReq(1, epoch, epoch-1)).(*kmsg.BrokerHeartbeatResponse)
	if resp.ErrorCode != 0 || !resp.IsFenced || resp.IsCaughtUp || e.log.proposed != n {
		t.Fatalf("behind heartbeat: %+v, %d proposals", resp, e.log.proposed-n)
	}
	// Caught up but asking to stay fenced.
	req := heartbeatReq(1, epoch, epoch)
	req.WantFence = true
	resp = e.call(req).(*kmsg.BrokerHeartbeatResponse)
	if !resp.IsFenced || !resp.IsCaughtUp || e.log.proposed != n {
		t.Fatalf("want-fence heartbeat: %+v", resp)
	}
	// Caught up: unfenced, answered after the commit.
	a := e.send(heartbeatReq(1, epoch, epoch))
	recs := e.log.lastRecs(t)
	if len(recs) != 1 || recs[0].UnfenceBroker == nil || a.n != 0 {
		t.Fatalf("unfence proposed %+v, answered %d", recs, a.n)
	}
	// Another heartbeat meanwhile does not see the unfencing early.
	early := e.send(heartbeatReq(1, epoch, epoch))
	if early.n != 0 {
		t.Fatalf("heartbeat answered from an uncommitted unfencing: %+v", early.resp)
	}
	e.log.commit(-1)
	for _, x := range []*answer{a, early} {
		if r := x.resp.(*kmsg.BrokerHeartbeatResponse); !x.ok() || r.IsFenced || r.ErrorCode != 0 {
			t.Fatalf("unfence answer %+v", r)
		}
	}
	if e.broker(1).Fenced {
		t.Fatalf("broker still fenced")
	}
	// Asking to be fenced again.
	req = heartbeatReq(1, epoch, epoch)
	req.WantFence = true
	if resp = e.call(req).(*kmsg.BrokerHeartbeatResponse); !resp.IsFenced || !e.broker(1).Fenced {
		t.Fatalf("want-fence: %+v", resp)
	}
}

func TestUnfenceElectsLeaderless(t *testing.T) {
	e := newEnv(t)
	epochs := e.addBrokers(1, 2)
	// Broker 2 asks to be fenced; then partitions are left without a leader
	// with it as the only ISR member.
	req := heartbeatReq(2, epochs[2], 1<<40)
	req.WantFence = true
	e.call(req)
	e.seed(topicRecs("t", 1,
		ps(ids(2, 1), ids(2), -1),
		ps(ids(1, 2), ids(1, 2), 1),
		ps(ids(1), ids(1), -1), // led by no one though 1 could: any unfencing elects it too
	)...)
	old := e.partition("t", 0)
	e.heartbeat(2, epochs[2])
	p := e.partition("t", 0)
	if p.Leader != 2 || p.LeaderEpoch != old.LeaderEpoch+1 || p.PartitionEpoch != old.PartitionEpoch+1 {
		t.Fatalf("leaderless partition after unfence: %+v (was %+v)", p, old)
	}
	if p := e.partition("t", 1); p.Leader != 1 {
		t.Fatalf("led partition changed: %+v", p)
	}
	if p := e.partition("t", 2); p.Leader != 1 {
		t.Fatalf("partition 2 not elected: %+v", p)
	}
}

func TestControlledShutdown(t *testing.T) {
	e := newEnv(t)
	epochs := e.addBrokers(1, 2)
	e.seed(topicRecs("t", 1,
		ps(ids(1, 2), ids(1, 2), 1),
		ps(ids(1), ids(1), 1),
		ps(ids(2, 1), ids(2, 1), 2),
	)...)
	before := e.log.committed.Clone()
	req := heartbeatReq(1, epochs[1], 1<<40)
	req.WantShutdown = true
	a := e.send(req)
	if a.n != 0 {
		t.Fatalf("shutdown answered before its batch committed")
	}
	e.log.commit(-1)
	resp := a.resp.(*kmsg.BrokerHeartbeatResponse)
	if resp.ErrorCode != 0 || !resp.ShouldShutdown {
		t.Fatalf("shutdown heartbeat: %+v", resp)
	}
	if b := e.broker(1); !b.ShuttingDown {
		t.Fatalf("broker not shutting down: %+v", b)
	}
	bt, _ := before.Topic("t")
	for i, w := range []partSpec{ps(nil, ids(2), 2), ps(nil, nil, -1).eligible(1), ps(nil, ids(2), 2)} {
		p := e.partition("t", int32(i))
		if p.Leader != w.leader || !equal(p.ISR, w.isr) || !equal(p.ELR, w.elr) {
			t.Fatalf("partition %d after shutdown: %+v", i, p)
		}
		if o := bt.Partitions[i]; (p.Leader != o.Leader) != (p.LeaderEpoch == o.LeaderEpoch+1) {
			t.Fatalf("partition %d leader epoch %d from %d", i, p.LeaderEpoch, o.LeaderEpoch)
		}
	}
	n := e.log.proposed
	resp = e.call(req).(*kmsg.BrokerHeartbeatResponse)
	if !resp.ShouldShutdown || e.log.proposed != n {
		t.Fatalf("second shutdown heartbeat: %+v", resp)
	}
	// New topics avoid it.
	if rt := e.create(newTopic("u", 1, 2))[0]; rt.ErrorCode != kerr.InvalidReplicationFactor.Code {
		t.Fatalf("rf 2 with one usable broker: %v", kerr.ErrorForCode(rt.ErrorCode))
	}

	// A shutdown whose batch fails is answered NOT_CONTROLLER.
	req = heartbeatReq(2, epochs[2], 1<<40)
	req.WantShutdown = true
	a = e.send(req)
	e.failover()
	wantCode(t, "failed shutdown", a.resp.(*kmsg.BrokerHeartbeatResponse).ErrorCode, kerr.NotController)
	if err := e.checkImage(e.log.committed); err != nil {
		t.Fatal(err)
	}
}

func TestSessionExpiry(t *testing.T) {
	e := newEnv(t)
	epochs := e.addBrokers(1, 2)
	e.seed(topicRecs("t", 1, ps(ids(1, 2), ids(1, 2), 1))...)
	start := e.now // the new activation gave both a fresh session
	e.now = start + 5000
	e.heartbeat(2, epochs[2])
	n := e.log.proposed
	e.c.Tick(start + sessionMs)
	if e.log.proposed != n {
		t.Fatalf("fenced at exactly the session timeout")
	}
	e.c.Tick(start + sessionMs + 1)
	e.log.commit(-1)
	if !e.broker(1).Fenced || e.broker(2).Fenced {
		t.Fatalf("after expiry: 1 %+v, 2 %+v", e.broker(1), e.broker(2))
	}
	if p := e.partition("t", 0); p.Leader != 2 || !equal(p.ISR, ids(2)) {
		t.Fatalf("partition after expiry: %+v", p)
	}
	// Fenced brokers are not fenced again.
	n = e.log.proposed
	e.c.Tick(start + 100*sessionMs)
	e.log.commit(-1)
	if e.log.proposed != n+1 || !e.broker(2).Fenced {
		t.Fatalf("second expiry: %d proposals, broker 2 %+v", e.log.proposed-n, e.broker(2))
	}

	// A new controller gives every broker a fresh session.
	e2 := newEnv(t)
	e2.addBrokers(1, 2)
	e2.now += 100 * sessionMs
	e2.failover()
	n = e2.log.proposed
	e2.c.Tick(e2.now + sessionMs)
	if e2.log.proposed != n {
		t.Fatalf("new controller fenced on stale sessions")
	}
	e2.c.Tick(e2.now + sessionMs + 1)
	e2.log.commit(-1)
	if !e2.broker(1).Fenced || !e2.broker(2).Fenced {
		t.Fatalf("not fenced after the fresh session ended")
	}
}

func TestCreateTopicsNames(t *testing.T) {
	e := newEnv(t)
	e.addBrokers(1)
	long := strings.Repeat("a", 249)
	for _, c := range []struct {
		name string
		want *kerr.Error
		msg  string
	}{
		{"", kerr.InvalidTopicException, "Topic name is illegal, it can't be empty"},
		{".", kerr.InvalidTopicException, `Topic name cannot be "." or ".."`},
		{"..", kerr.InvalidTopicException, `Topic name cannot be "." or ".."`},
		{long + "a", kerr.InvalidTopicException, "Topic name is illegal, it can't be longer than 249 characters, topic name: " + long + "a"},
		{"a b", kerr.InvalidTopicException, `Topic name "a b" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'`},
		{"ü", kerr.InvalidTopicException, ""},
		{"a/b", kerr.InvalidTopicException, ""},
		{long, nil, ""},
		{"A-z_0.9", nil, ""},
	} {
		rt := e.create(newTopic(c.name, 1, 1))[0]
		wantCode(t, "create "+c.name, rt.ErrorCode, c.want)
		if c.msg != "" && str(rt.ErrorMessage) != c.msg {
			t.Fatalf("create %q: message %q, want %q", c.name, str(rt.ErrorMessage), c.msg)
		}
	}
	// Duplicates in one request, an existing name, a collision.
	rts := e.create(newTopic("dup", 1, 1), newTopic("x.y", 1, 1), newTopic("dup", 1, 1))
	wantCode(t, "dup 0", rts[0].ErrorCode, kerr.InvalidRequest)
	wantCode(t, "dup 2", rts[2].ErrorCode, kerr.InvalidRequest)
	wantCode(t, "x.y", rts[1].ErrorCode, nil)
	if _, ok := e.log.committed.Topic("dup"); ok {
		t.Fatalf("duplicated topic created")
	}
	rt := e.create(newTopic("x.y", 1, 1))[0]
	wantCode(t, "exists", rt.ErrorCode, kerr.TopicAlreadyExists)
	if str(rt.ErrorMessage) != "Topic 'x.y' already exists." {
		t.Fatalf("exists message %q", str(rt.ErrorMessage))
	}
	rt = e.create(newTopic("x_y", 1, 1))[0]
	wantCode(t, "collision", rt.ErrorCode, kerr.InvalidTopicException)
	if str(rt.ErrorMessage) != "Topic 'x_y' collides with existing topic: x.y" {
		t.Fatalf("collision message %q", str(rt.ErrorMessage))
	}
	if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 || rt.TopicID != [16]byte{} {
		t.Fatalf("failed topic result %+v", rt)
	}
}

func TestCreateTopicsDefaultsAndPlacement(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DefaultPartitions, c.DefaultReplicationFactor = 3, 2 })
	e.addBrokers(1, 2, 3)
	rt := e.create(newTopic("d", -1, -1))[0]
	wantCode(t, "defaults", rt.ErrorCode, nil)
	tp, _ := e.log.committed.Topic("d")
	if rt.NumPartitions != 3 || rt.ReplicationFactor != 2 || rt.TopicID != tp.ID || len(tp.Partitions) != 3 {
		t.Fatalf("default topic result %+v, committed %+v", rt, tp)
	}
	// A new partition's log is empty, so every replica is in sync.
	for i, p := range tp.Partitions {
		if len(p.Replicas) != 2 || p.Leader != p.Replicas[0] || !equal(p.ISR, p.Replicas) || p.LeaderEpoch != 0 || p.PartitionEpoch != 0 {
			t.Fatalf("partition %d: %+v", i, p)
		}
	}
	rt = e.create(newTopic("p", 4, -1))[0]
	if rt.ErrorCode != 0 || rt.NumPartitions != 4 || rt.ReplicationFactor != 2 {
		t.Fatalf("partitions given: %+v", rt)
	}
	for _, c := range []struct {
		partitions int32
		rf         int16
		want       *kerr.Error
		msg        string
	}{
		{1, 0, kerr.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value."},
		{1, -2, kerr.InvalidReplicationFactor, ""},
		{0, 0, kerr.InvalidReplicationFactor, ""},
		{0, 1, kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value."},
		{-5, 1, kerr.InvalidPartitions, ""},
		{1 << 30, 1, kerr.PolicyViolation, "Unable to perform excessively large batch operation."},
		{1, 4, kerr.InvalidReplicationFactor, "Unable to replicate the partition 4 time(s): The target replication factor of 4 cannot be reached because only 3 broker(s) are registered."},
		{2, 3, nil, ""},
	} {
		rt := e.create(newTopic("bad", c.partitions, c.rf))[0]
		wantCode(t, "create bad", rt.ErrorCode, c.want)
		if c.msg != "" && str(rt.ErrorMessage) != c.msg {
			t.Fatalf("message %q, want %q", str(rt.ErrorMessage), c.msg)
		}
	}
	// With every broker fenced.
	e2 := newEnv(t)
	e2.register(1, 1)
	rt = e2.create(newTopic("f", 1, 1))[0]
	wantCode(t, "all fenced", rt.ErrorCode, kerr.InvalidReplicationFactor)
	if str(rt.ErrorMessage) != "Unable to replicate the partition 1 time(s): All brokers are currently fenced." {
		t.Fatalf("all fenced message %q", str(rt.ErrorMessage))
	}
}

func TestCreateTopicsManualAssignment(t *testing.T) {
	e := newEnv(t)
	e.addBrokers(1, 2, 3)
	e.register(4, 4) // registered, fenced

	// Partitions may come in any order; the first usable replica leads.
	tp := assigned("m", []int32{4, 2}, []int32{1, 3})
	tp.ReplicaAssignment[0].Partition, tp.ReplicaAssignment[1].Partition = 1, 0
	rt := e.create(tp)[0]
	if rt.ErrorCode != 0 || rt.NumPartitions != 2 || rt.ReplicationFactor != 2 {
		t.Fatalf("manual: %+v %s", rt, str(rt.ErrorMessage))
	}
	// The ISR is every usable replica: fenced 4 joins once caught up.
	if p := e.partition("m", 0); !equal(p.Replicas, ids(1, 3)) || p.Leader != 1 || !equal(p.ISR, ids(1, 3)) {
		t.Fatalf("m-0 %+v", p)
	}
	if p := e.partition("m", 1); !equal(p.Replicas, ids(4, 2)) || p.Leader != 2 || !equal(p.ISR, ids(2)) {
		t.Fatalf("m-1 %+v", p)
	}
	for _, c := range []struct {
		topic kmsg.CreateTopicsRequestTopic
		want  *kerr.Error
		msg   string
	}{
		{assigned("u", []int32{1, 9}), kerr.InvalidReplicaAssignment, "The manual partition assignment includes broker 9, but no such broker is registered."},
		{assigned("u", []int32{1, 1}), kerr.InvalidReplicaAssignment, "The manual partition assignment includes the broker 1 more than once."},
		{assigned("u", []int32{1, 2}, []int32{3}), kerr.InvalidReplicaAssignment, "The manual partition assignment includes a partition with 1 replica(s), but this is not consistent with previous partitions, which have 2 replica(s)."},
		{assigned("u", []int32{}), kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list."},
		{assigned("u", []int32{4}), kerr.InvalidReplicaAssignment, "All brokers specified in the manual partition assignment for partition 0 are fenced or in controlled shutdown."},
		{func() kmsg.CreateTopicsRequestTopic {
			t := assigned("u", []int32{1}, []int32{2})
			t.ReplicaAssignment[1].Partition = 2
			return t
		}(), kerr.InvalidReplicaAssignment, "partitions should be a consecutive 0-based integer sequence"},
		{func() kmsg.CreateTopicsRequestTopic {
			t := assigned("u", []int32{1}, []int32{2})
			t.ReplicaAssignment[1].Partition = 0
			return t
		}(), kerr.InvalidReplicaAssignment, "Found multiple manual partition assignments for partition 0"},
		{func() kmsg.CreateTopicsRequestTopic {
			t := assigned("u", []int32{1})
			t.NumPartitions = 1
			return t
		}(), kerr.InvalidRequest, ""},
		{func() kmsg.CreateTopicsRequestTopic {
			t := assigned("u", []int32{1})
			t.ReplicationFactor = 1
			return t
		}(), kerr.InvalidRequest, ""},
	} {
		n := e.log.proposed
		rt := e.create(c.topic)[0]
		wantCode(t, "manual", rt.ErrorCode, c.want)
		if c.msg != "" && str(rt.ErrorMessage) != c.msg {
			t.Fatalf("message %q, want %q", str(rt.ErrorMessage), c.msg)
		}
		if e.log.proposed != n {
			t.Fatalf("refused topic proposed")
		}
	}
}

func TestCreateTopicsValidateOnlyAndConfigs(t *testing.T) {
	e := newEnv(t)
	e.addBrokers(1)
	n := e.log.proposed
	req := createReq(newTopic("v", 2, 1), newTopic("", 1, 1))
	req.ValidateOnly = true
	rts := e.call(req).(*kmsg.CreateTopicsResponse).Topics
	if rts[0].ErrorCode != 0 || rts[0].NumPartitions != 2 || rts[0].ReplicationFactor != 1 || rts[1].ErrorCode == 0 {
		t.Fatalf("validate only: %+v", rts)
	}
	if e.log.proposed != n {
		t.Fatalf("validate only proposed")
	}
	if _, ok := e.log.committed.Topic("v"); ok {
		t.Fatalf("validate only created")
	}

	cfg := func(name string, kv ...*string) kmsg.CreateTopicsRequestTopic {
		t := newTopic(name, 1, 1)
		for i := 0; i < len(kv); i += 2 {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = *kv[i], kv[i+1]
			t.Configs = append(t.Configs, c)
		}
		return t
	}
	s := func(v string) *string { return &v }
	rts = e.create(
		cfg("c1", s("cleanup.policy"), s("compact"), s("retention.ms"), s("1000")),
		cfg("c2", s("cleanup.policy"), s("bogus")),
		cfg("c3", s("retention.ms"), nil),
		cfg("c4", s("nonexistent.key"), s("1")),
		cfg("c5", s("retention.ms"), s("1"), s("retention.ms"), s("2")),
	)
	wantCode(t, "good configs", rts[0].ErrorCode, nil)
	wantCode(t, "bad value", rts[1].ErrorCode, kerr.InvalidConfig)
	wantCode(t, "null value", rts[2].ErrorCode, kerr.InvalidConfig)
	if str(rts[2].ErrorMessage) != "Null value not supported for topic configs: retention.ms" {
		t.Fatalf("null config message %q", str(rts[2].ErrorMessage))
	}
	wantCode(t, "unknown key", rts[3].ErrorCode, kerr.InvalidConfig)
	wantCode(t, "repeated key", rts[4].ErrorCode, kerr.InvalidRequest)
	if v, ok := e.log.committed.Config(metadata.ResourceTopic, "c1", "cleanup.policy"); !ok || v != "compact" {
		t.Fatalf("config not committed: %q %v", v, ok)
	}
	for _, name := range []string{"c2", "c3", "c4", "c5"} {
		if _, ok := e.log.committed.Topic(name); ok {
			t.Fatalf("%s created", name)
		}
	}
}

func TestCreateTopicsInFlight(t *testing.T) {
	e := newEnv(t)
	e.addBrokers(1)
	first := e.send(createReq(newTopic("t", 1, 1)))
	second := e.send(createReq(newTopic("t", 1, 1), newTopic("t2", 1, 1)))
	if first.n != 0 || second.n != 0 {
		t.Fatalf("answered before commit")
	}
	e.log.commit(1)
	if !first.ok() || second.n != 0 {
		t.Fatalf("after the first commit: first %d, second %d", first.n, second.n)
	}
	e.log.commit(-1)
	rts := second.resp.(*kmsg.CreateTopicsResponse).Topics
	wantCode(t, "second create", rts[0].ErrorCode, kerr.TopicAlreadyExists)
	wantCode(t, "t2", rts[1].ErrorCode, nil)

	// A proposal that fails answers NOT_CONTROLLER, and so does an answer
	// read from the view behind it.
	a := e.send(createReq(newTopic("f", 1, 1)))
	b := e.send(createReq(newTopic("f", 1, 1)))
	e.failover()
	for _, x := range []*answer{a, b} {
		rt := x.resp.(*kmsg.CreateTopicsResponse).Topics[0]
		wantCode(t, "failed create", rt.ErrorCode, kerr.NotController)
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 || rt.TopicID != [16]byte{} {
			t.Fatalf("failed create result %+v", rt)
		}
	}
	if _, ok := e.log.committed.Topic("f"); ok {
		t.Fatalf("failed topic committed")
	}
	// The new controller does not know it.
	wantCode(t, "create after failover", e.create(newTopic("f", 1, 1))[0].ErrorCode, nil)

	// Leadership gone before the proposal.
	e.log.refuse = true
	rt := e.call(createReq(newTopic("g", 1, 1))).(*kmsg.CreateTopicsResponse).Topics[0]
	wantCode(t, "refused create", rt.ErrorCode, kerr.NotController)
}

func deleteReq(version int16) *kmsg.DeleteTopicsRequest {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = version
	return req
}

func byName(name string) kmsg.DeleteTopicsRequestTopic {
	t := kmsg.NewDeleteTopicsRequestTopic()
	t.Topic = &name
	return t
}

func byID(id [16]byte) kmsg.DeleteTopicsRequestTopic {
	t := kmsg.NewDeleteTopicsRequestTopic()
	t.TopicID = id
	return t
}

func TestDeleteTopics(t *testing.T) {
	e := newEnv(t)
	e.addBrokers(1)
	a := e.mustCreate("a", 1, 1)
	b := e.mustCreate("b", 1, 1)
	e.mustCreate("c", 1, 1)

	req := deleteReq(6)
	req.Topics = append(req.Topics, byName("a"), byID(b.ID), byName("nope"), byID([16]byte{9}))
	resp := e.call(req).(*kmsg.DeleteTopicsResponse)
	if len(resp.Topics) != 4 {
		t.Fatalf("delete results %+v", resp.Topics)
	}
	r := resp.Topics
	if r[0].ErrorCode != 0 || str(r[0].Topic) != "a" || r[0].TopicID != a.ID {
		t.Fatalf("delete by name %+v", r[0])
	}
	if r[1].ErrorCode != 0 || str(r[1].Topic) != "b" || r[1].TopicID != b.ID {
		t.Fatalf("delete by id %+v", r[1])
	}
	wantCode(t, "unknown name", r[2].ErrorCode, kerr.UnknownTopicOrPartition)
	if str(r[2].Topic) != "nope" || r[2].TopicID != [16]byte{} {
		t.Fatalf("unknown name %+v", r[2])
	}
	wantCode(t, "unknown id", r[3].ErrorCode, kerr.UnknownTopicID)
	if r[3].Topic != nil || r[3].TopicID != [16]byte{9} {
		t.Fatalf("unknown id %+v", r[3])
	}
	for _, name := range []string{"a", "b"} {
		if _, ok := e.log.committed.Topic(name); ok {
			t.Fatalf("%s not deleted", name)
		}
	}
	// Malformed entries.
	c, _ := e.log.committed.Topic("c")
	both := byName("c")
	both.TopicID = c.ID
	req = deleteReq(6)
	req.Topics = append(req.Topics, both, byID([16]byte{}), byName("x"), byName("x"), byID([16]byte{7}), byID([16]byte{7}))
	for i, rt := range e.call(req).(*kmsg.DeleteTopicsResponse).Topics {
		wantCode(t, "malformed delete "+str(rt.Topic), rt.ErrorCode, kerr.InvalidRequest)
		_ = i
	}
	if _, ok := e.log.committed.Topic("c"); !ok {
		t.Fatalf("c deleted by a malformed entry")
	}
	// v0-v5 name topics in TopicNames.
	req = deleteReq(5)
	req.TopicNames = []string{"c", "c2"}
	resp = e.call(req).(*kmsg.DeleteTopicsResponse)
	wantCode(t, "v5 delete", resp.Topics[0].ErrorCode, nil)
	wantCode(t, "v5 unknown", resp.Topics[1].ErrorCode, kerr.UnknownTopicOrPartition)

	// Deletion disabled: every entry, known or not, and INVALID_REQUEST
	// before v3 (which had no TOPIC_DELETION_DISABLED).
	d := newEnv(t, func(c *Config) { c.DeleteTopicEnable = false })
	d.addBrokers(1)
	d.mustCreate("k", 1, 1)
	n := d.log.proposed
	req = deleteReq(6)
	req.Topics = append(req.Topics, byName("k"), byName("unknown"))
	for _, rt := range d.call(req).(*kmsg.DeleteTopicsResponse).Topics {
		wantCode(t, "disabled "+str(rt.Topic), rt.ErrorCode, kerr.TopicDeletionDisabled)
	}
	req = deleteReq(2)
	req.TopicNames = []string{"k"}
	wantCode(t, "disabled v2", d.call(req).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode, kerr.InvalidRequest)
	if d.log.proposed != n {
		t.Fatalf("disabled deletion proposed")
	}

	// A deletion in flight: a create of the same name waits for it.
	e.mustCreate("r", 1, 1)
	req = deleteReq(6)
	req.Topics = append(req.Topics, byName("r"))
	del := e.send(req)
	again := e.send(req)
	cr := e.send(createReq(newTopic("r", 1, 1)))
	e.log.commit(-1)
	wantCode(t, "delete", del.resp.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode, nil)
	wantCode(t, "delete again", again.resp.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode, kerr.UnknownTopicOrPartition)
	wantCode(t, "recreate", cr.resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode, nil)
}

func TestCreatePartitions(t *testing.T) {
	e := newEnv(t)
	e.addBrokers(1, 2, 3)
	e.register(4, 4) // fenced
	e.mustCreate("t", 1, 2)
	cp := func(validate bool, topics ...kmsg.CreatePartitionsRequestTopic) []kmsg.CreatePartitionsResponseTopic {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.Version = 3
		req.ValidateOnly, req.Topics = validate, topics
		return e.call(req).(*kmsg.CreatePartitionsResponse).Topics
	}
	topic := func(name string, count int32, assignment ...[]int32) kmsg.CreatePartitionsRequestTopic {
		t := kmsg.NewCreatePartitionsRequestTopic()
		t.Topic, t.Count = name, count
		for _, a := range assignment {
			x := kmsg.NewCreatePartitionsRequestTopicAssignment()
			x.Replicas = a
			t.Assignment = append(t.Assignment, x)
		}
		return t
	}
	n := e.log.proposed
	wantCode(t, "validate only", cp(true, topic("t", 3))[0].ErrorCode, nil)
	if e.log.proposed != n {
		t.Fatalf("validate only proposed")
	}
	wantCode(t, "increase", cp(false, topic("t", 3))[0].ErrorCode, nil)
	tp, _ := e.log.committed.Topic("t")
	if len(tp.Partitions) != 3 {
		t.Fatalf("partitions %d", len(tp.Partitions))
	}
	for _, p := range tp.Partitions {
		if len(p.Replicas) != 2 || p.Leader != p.Replicas[0] || !equal(p.ISR, p.Replicas) {
			t.Fatalf("new partition %+v", p)
		}
	}
	r := cp(false, topic("t", 3), topic("nope", 5))
	wantCode(t, "same count", r[0].ErrorCode, kerr.InvalidPartitions)
	if str(r[0].ErrorMessage) != "Topic already has 3 partition(s)." {
		t.Fatalf("message %q", str(r[0].ErrorMessage))
	}
	wantCode(t, "unknown", r[1].ErrorCode, kerr.UnknownTopicOrPartition)
	r = cp(false, topic("t", 2))
	wantCode(t, "decrease", r[0].ErrorCode, kerr.InvalidPartitions)
	if str(r[0].ErrorMessage) != "The topic t currently has 3 partition(s); 2 would not be an increase." {
		t.Fatalf("message %q", str(r[0].ErrorMessage))
	}

	wantCode(t, "assigned", cp(false, topic("t", 5, []int32{3, 1}, []int32{4, 2}))[0].ErrorCode, nil)
	if p := e.partition("t", 3); !equal(p.Replicas, ids(3, 1)) || p.Leader != 3 {
		t.Fatalf("t-3 %+v", p)
	}
	if p := e.partition("t", 4); !equal(p.Replicas, ids(4, 2)) || p.Leader != 2 || !equal(p.ISR, ids(2)) {
		t.Fatalf("t-4 %+v", p)
	}
	for _, c := range []kmsg.CreatePartitionsRequestTopic{
		topic("t", 7, []int32{1, 2}),
		topic("t", 6, []int32{1, 9}),
		topic("t", 6, []int32{1}),
		topic("t", 6, []int32{1, 1}),
		topic("t", 6, []int32{4}),
	} {
		wantCode(t, "bad assignment", cp(false, c)[0].ErrorCode, kerr.InvalidReplicaAssignment)
	}
	wantCode(t, "six", cp(false, topic("t", 6))[0].ErrorCode, nil)
	wantCode(t, "huge", cp(false, topic("t", 1<<30))[0].ErrorCode, kerr.PolicyViolation)
	r = cp(false, topic("t", 8), topic("t", 9))
	wantCode(t, "dup 0", r[0].ErrorCode, kerr.InvalidRequest)
	wantCode(t, "dup 1", r[1].ErrorCode, kerr.InvalidRequest)
}

func electReq(typ int8, topics map[string][]int32) *kmsg.ElectLeadersRequest {
	req := kmsg.NewPtrElectLeadersRequest()
	req.Version, req.ElectionType = 2, typ
	if topics == nil {
		return req
	}
	req.Topics = []kmsg.ElectLeadersRequestTopic{}
	for name, parts := range topics {
		t := kmsg.NewElectLeadersRequestTopic()
		t.Topic, t.Partitions = name, parts
		req.Topics = append(req.Topics, t)
	}
	return req
}

func electCodes(resp kmsg.Response) map[string][]int16 {
	out := map[string][]int16{}
	for _, t := range resp.(*kmsg.ElectLeadersResponse).Topics {
		out[t.Topic] = []int16{}
		for _, p := range t.Partitions {
			out[t.Topic] = append(out[t.Topic], p.ErrorCode)
		}
	}
	return out
}

func TestElectLeaders(t *testing.T) {
	e := newEnv(t)
	epochs := e.addBrokers(1, 2, 3)
	req := heartbeatReq(3, epochs[3], 1<<40)
	req.WantFence = true
	e.call(req)
	e.seed(topicRecs("t", 1,
		ps(ids(1, 2), ids(1, 2), 2), // preferred election moves it to 1
		ps(ids(1, 2), ids(1, 2), 1), // already preferred
		ps(ids(3, 1), ids(3, 1), 1), // preferred 3 is fenced
		ps(ids(2, 3), ids(3), -1),   // unclean: 2 leads with ISR {2}
		ps(ids(3), ids(3), -1),      // no live replica
	)...)
	old := e.partition("t", 0)
	resp := e.call(electReq(0, map[string][]int32{"t": {0, 1, 2, 7}, "nope": {0}}))
	got := electCodes(resp)
	want := map[string][]int16{
		"t":    {0, kerr.ElectionNotNeeded.Code, kerr.PreferredLeaderNotAvailable.Code, kerr.UnknownTopicOrPartition.Code},
		"nope": {kerr.UnknownTopicOrPartition.Code},
	}
	for k, w := range want {
		if !slicesEqual(got[k], w) {
			t.Fatalf("preferred election codes %v, want %v", got, want)
		}
	}
	if p := e.partition("t", 0); p.Leader != 1 || p.LeaderEpoch != old.LeaderEpoch+1 || p.PartitionEpoch != old.PartitionEpoch+1 {
		t.Fatalf("preferred election: %+v (was %+v)", p, old)
	}

	// Unclean.
	old = e.partition("t", 3)
	got = electCodes(e.call(electReq(1, map[string][]int32{"t": {0, 3, 4}})))
	if w := []int16{kerr.ElectionNotNeeded.Code, 0, kerr.EligibleLeadersNotAvailable.Code}; !slicesEqual(got["t"], w) {
		t.Fatalf("unclean election codes %v, want %v", got, w)
	}
	if p := e.partition("t", 3); p.Leader != 2 || !equal(p.ISR, ids(2)) || p.LeaderEpoch != old.LeaderEpoch+1 {
		t.Fatalf("unclean election: %+v", p)
	}

	// Every partition: those that need no election are left out.
	e.seed(topicRecs("u", 2, ps(ids(2, 1), ids(2, 1), 1), ps(ids(1), ids(1), 1))...)
	resp = e.call(electReq(0, nil))
	got = electCodes(resp)
	pna := kerr.PreferredLeaderNotAvailable.Code
	if !slicesEqual(got["t"], []int16{pna, pna}) || !slicesEqual(got["u"], []int16{0}) {
		t.Fatalf("all-partition election: %+v", resp.(*kmsg.ElectLeadersResponse).Topics)
	}
	if p := e.partition("u", 0); p.Leader != 2 {
		t.Fatalf("u-0 not elected: %+v", p)
	}

	// A partition named twice is elected once.
	e.seed(topicRecs("w", 3, ps(ids(2, 1), ids(2, 1), 1))...)
	r2 := electReq(0, map[string][]int32{"w": {0, 0}})
	r2.Topics = append(r2.Topics, r2.Topics[0])
	got = electCodes(e.call(r2))
	if !slicesEqual(got["w"], []int16{0, 0}) {
		t.Fatalf("duplicate election codes %v", got)
	}
	if p := e.partition("w", 0); p.Leader != 2 {
		t.Fatalf("w-0 %+v", p)
	}

	// A v0 request whose election fails: every partition says so.
	e.seed(topicRecs("x", 4, ps(ids(2, 1), ids(2, 1), 1))...)
	r0 := electReq(0, map[string][]int32{"x": {0}})
	r0.Version = 0
	a := e.send(r0)
	e.failover()
	if got := electCodes(a.resp); got["x"][0] != kerr.NotController.Code {
		t.Fatalf("failed v0 election: %v", got)
	}
	if err := e.checkImage(e.log.committed); err != nil {
		t.Fatal(err)
	}
}

func slicesEqual(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAllocateProducerIDs(t *testing.T) {
	e := newEnv(t)
	epochs := e.addBrokers(1, 2)
	alloc := func(id int32, epoch int64) *kmsg.AllocateProducerIDsRequest {
		req := kmsg.NewPtrAllocateProducerIDsRequest()
		req.BrokerID, req.BrokerEpoch = id, epoch
		return req
	}
	a := e.send(alloc(1, epochs[1]))
	b := e.send(alloc(2, epochs[2]))
	if a.n != 0 || b.n != 0 {
		t.Fatalf("answered before commit")
	}
	e.log.commit(-1)
	c := e.call(alloc(1, epochs[1])).(*kmsg.AllocateProducerIDsResponse)
	var next int64
	for i, r := range []*kmsg.AllocateProducerIDsResponse{a.resp.(*kmsg.AllocateProducerIDsResponse), b.resp.(*kmsg.AllocateProducerIDsResponse), c} {
		if r.ErrorCode != 0 || r.ProducerIDStart != next || r.ProducerIDLen != 1000 {
			t.Fatalf("block %d: %+v", i, r)
		}
		next += 1000
	}
	if e.log.committed.NextProducerID() != next {
		t.Fatalf("next producer id %d", e.log.committed.NextProducerID())
	}
	for _, r := range []*kmsg.AllocateProducerIDsRequest{alloc(1, epochs[1]-1), alloc(9, 1)} {
		resp := e.call(r).(*kmsg.AllocateProducerIDsResponse)
		wantCode(t, "stale", resp.ErrorCode, kerr.StaleBrokerEpoch)
		if resp.ProducerIDLen != 0 {
			t.Fatalf("stale allocation handed out %+v", resp)
		}
	}
	// A failed block is not handed out, and the next controller continues
	// after the committed ones.
	f := e.send(alloc(1, epochs[1]))
	e.failover()
	if r := f.resp.(*kmsg.AllocateProducerIDsResponse); r.ErrorCode != kerr.NotController.Code || r.ProducerIDLen != 0 {
		t.Fatalf("failed allocation %+v", r)
	}
	if r := e.call(alloc(2, epochs[2])).(*kmsg.AllocateProducerIDsResponse); r.ProducerIDStart != next {
		t.Fatalf("after failover: %+v", r)
	}
}

func TestAutoLeaderRebalance(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AutoLeaderRebalance, c.RebalanceIntervalMs = true, 1000 })
	e.addBrokers(1, 2)
	e.seed(topicRecs("t", 1, ps(ids(1, 2), ids(1, 2), 2), ps(ids(2, 1), ids(2, 1), 2))...)
	e.c.Tick(e.now + 999)
	if len(e.log.pending) != 0 {
		t.Fatalf("rebalanced early")
	}
	e.c.Tick(e.now + 1000)
	e.log.commit(-1)
	if p := e.partition("t", 0); p.Leader != 1 {
		t.Fatalf("not rebalanced: %+v", p)
	}
	if p := e.partition("t", 1); p.Leader != 2 || p.PartitionEpoch != 5 {
		t.Fatalf("preferred partition changed: %+v", p)
	}
}

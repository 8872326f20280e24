package controller

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/port"
)

// alterReq asks, as the committed leader of topic-p, for the ISR isr at
// the committed epochs, as a broker that has replayed the log would. From
// v3 each member carries its committed broker epoch (-1 if unregistered).
func (e *env) alterReq(version int16, topic string, p int32, isr ...int32) *kmsg.AlterPartitionRequest {
	e.t.Helper()
	tp, ok := e.log.committed.Topic(topic)
	if !ok {
		e.t.Fatalf("no committed topic %s", topic)
	}
	cur := tp.Partitions[p]
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version, req.BrokerID = version, int32(cur.Leader)
	if b, ok := e.log.committed.Broker(cur.Leader); ok {
		req.BrokerEpoch = b.Epoch
	}
	rt := kmsg.NewAlterPartitionRequestTopic()
	if version >= 2 {
		rt.TopicID = tp.ID
	} else {
		rt.Topic = topic
	}
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = p, cur.LeaderEpoch, cur.PartitionEpoch
	for _, id := range isr {
		if version < 3 {
			rp.NewISR = append(rp.NewISR, id)
			continue
		}
		m := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		m.BrokerID = id
		if b, ok := e.log.committed.Broker(port.NodeID(id)); ok {
			m.BrokerEpoch = b.Epoch
		}
		rp.NewEpochISR = append(rp.NewEpochISR, m)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// altered returns the only partition of an AlterPartition answer.
func altered(t *testing.T, resp kmsg.Response) kmsg.AlterPartitionResponseTopicPartition {
	t.Helper()
	r := resp.(*kmsg.AlterPartitionResponse)
	wantCode(t, "alter partition top level", r.ErrorCode, nil)
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		t.Fatalf("alter partition answer %+v", r.Topics)
	}
	return r.Topics[0].Partitions[0]
}

// wantState checks that an answer carries the committed state of topic-p,
// with the given ISR.
func (e *env) wantState(t *testing.T, rp kmsg.AlterPartitionResponseTopicPartition, topic string, p int32, isr ...int32) {
	t.Helper()
	if cur := e.partition(topic, p); !answers(rp, cur, isr) {
		t.Fatalf("answer %+v, committed %+v, want ISR %v", rp, cur, isr)
	}
}

// answers reports whether an AlterPartition answer carries the partition
// state p, whose ISR holds the brokers asked for.
func answers(rp kmsg.AlterPartitionResponseTopicPartition, p metadata.Partition, asked []int32) bool {
	nodes := func(v []int32) []port.NodeID {
		out := make([]port.NodeID, len(v))
		for i, r := range v {
			out[i] = port.NodeID(r)
		}
		return out
	}
	return rp.ErrorCode == 0 && port.NodeID(rp.LeaderID) == p.Leader && rp.LeaderEpoch == p.LeaderEpoch &&
		rp.PartitionEpoch == p.PartitionEpoch && rp.LeaderRecoveryState == 0 &&
		slices.Equal(nodes(rp.ISR), p.ISR) && sameMembers(nodes(asked), p.ISR)
}

func TestAlterPartitionShrinkAndExpand(t *testing.T) {
	e := newEnv(t)
	e.addBrokers(1, 2, 3)
	e.create(assigned("t", []int32{1, 2, 3}))
	old := e.partition("t", 0)
	if !equal(old.ISR, ids(1, 2, 3)) || old.Leader != 1 {
		t.Fatalf("new partition %+v", old)
	}
	for i, step := range []struct {
		version int16
		isr     []int32
	}{
		{0, []int32{1, 2}},    // shrink
		{1, []int32{1}},       // shrink to the leader alone
		{2, []int32{2, 1}},    // expand, in any order
		{3, []int32{1, 3, 2}}, // expand with broker epochs
	} {
		a := e.send(e.alterReq(step.version, "t", 0, step.isr...))
		if a.n != 0 || len(e.log.pending) != 1 {
			t.Fatalf("step %d: answered %d times before its commit, %d batches pending", i, a.n, len(e.log.pending))
		}
		e.log.commit(-1)
		if !a.ok() {
			t.Fatalf("step %d not answered after its commit", i)
		}
		e.wantState(t, altered(t, a.resp), "t", 0, step.isr...)
		p := e.partition("t", 0)
		if p.Leader != 1 || p.LeaderEpoch != old.LeaderEpoch || p.PartitionEpoch != old.PartitionEpoch+1 {
			t.Fatalf("step %d: %+v after %+v", i, p, old)
		}
		old = p
	}

	// The ISR it already has, in any order: nothing proposed, the current
	// state answered, but only once what the view holds is committed.
	n := e.log.proposed
	rp := altered(t, e.call(e.alterReq(3, "t", 0, 3, 2, 1)))
	e.wantState(t, rp, "t", 0, 1, 2, 3)
	if e.log.proposed != n {
		t.Fatalf("an unchanged ISR proposed")
	}
	e.send(createReq(newTopic("pending", 1, 1)))
	a := e.send(e.alterReq(3, "t", 0, 1, 2, 3))
	if a.n != 0 {
		t.Fatalf("answered while a batch of the view is pending")
	}
	e.log.commit(-1)
	e.wantState(t, altered(t, a.resp), "t", 0, 1, 2, 3)
	e.send(createReq(newTopic("lost", 1, 1)))
	a = e.send(e.alterReq(3, "t", 0, 1, 2, 3))
	e.failover()
	wantCode(t, "unchanged behind a failed batch", a.resp.(*kmsg.AlterPartitionResponse).ErrorCode, kerr.NotController)

	// A change whose batch fails is answered NOT_CONTROLLER and is lost.
	a = e.send(e.alterReq(3, "t", 0, 1))
	e.failover()
	if r := a.resp.(*kmsg.AlterPartitionResponse); r.ErrorCode != kerr.NotController.Code || r.Topics != nil {
		t.Fatalf("failed alter partition answer %+v", r)
	}
	if p := e.partition("t", 0); !equal(p.ISR, ids(1, 3, 2)) {
		t.Fatalf("failed change committed: %+v", p)
	}
	e.log.refuse = true
	r := e.call(e.alterReq(3, "t", 0, 1)).(*kmsg.AlterPartitionResponse)
	wantCode(t, "refused alter partition", r.ErrorCode, kerr.NotController)
}

// TestAlterPartitionSeesInFlight: a second request validated while the
// first is in flight sees its partition epoch, as the view holds it.
func TestAlterPartitionSeesInFlight(t *testing.T) {
	e := newEnv(t)
	e.addBrokers(1, 2)
	e.create(assigned("t", []int32{1, 2}))
	first := e.send(e.alterReq(3, "t", 0, 1))
	second := e.send(e.alterReq(3, "t", 0, 1))
	e.log.commit(-1)
	e.wantState(t, altered(t, first.resp), "t", 0, 1)
	wantCode(t, "stale partition epoch", altered(t, second.resp).ErrorCode, kerr.InvalidUpdateVersion)
}

func TestAlterPartitionErrors(t *testing.T) {
	e := newEnv(t)
	epochs := e.addBrokers(1, 2, 3, 4)
	e.create(assigned("t", []int32{1, 2, 3}))
	e.call(e.alterReq(3, "t", 0, 1, 2)) // 3 leaves the ISR: partition epoch 1
	cur := e.partition("t", 0)

	part := func(r *kmsg.AlterPartitionRequest) *kmsg.AlterPartitionRequestTopicPartition {
		return &r.Topics[0].Partitions[0]
	}
	type mutation func(*kmsg.AlterPartitionRequest)
	for _, c := range []struct {
		name    string
		version int16
		isr     []int32
		mut     mutation
		want    *kerr.Error
	}{
		{"unknown topic id", 2, []int32{1}, func(r *kmsg.AlterPartitionRequest) { r.Topics[0].TopicID = [16]byte{9} }, kerr.UnknownTopicID},
		{"unknown topic name", 1, []int32{1}, func(r *kmsg.AlterPartitionRequest) { r.Topics[0].Topic = "nope" }, kerr.UnknownTopicOrPartition},
		{"unknown partition", 3, []int32{1}, func(r *kmsg.AlterPartitionRequest) { part(r).Partition = 1 }, kerr.UnknownTopicOrPartition},
		{"negative partition", 3, []int32{1}, func(r *kmsg.AlterPartitionRequest) { part(r).Partition = -1 }, kerr.UnknownTopicOrPartition},
		{"newer leader epoch", 3, []int32{1}, func(r *kmsg.AlterPartitionRequest) { part(r).LeaderEpoch++ }, kerr.NotController},
		{"newer partition epoch", 3, []int32{1}, func(r *kmsg.AlterPartitionRequest) { part(r).PartitionEpoch++ }, kerr.NotController},
		{"older leader epoch", 3, []int32{1}, func(r *kmsg.AlterPartitionRequest) { part(r).LeaderEpoch-- }, kerr.FencedLeaderEpoch},
		{"not the leader", 3, []int32{1}, func(r *kmsg.AlterPartitionRequest) { r.BrokerID, r.BrokerEpoch = 2, epochs[2] }, kerr.InvalidRequest},
		{"older partition epoch", 3, []int32{1}, func(r *kmsg.AlterPartitionRequest) { part(r).PartitionEpoch-- }, kerr.InvalidUpdateVersion},
		{"leader left out", 3, []int32{2}, nil, kerr.InvalidRequest},
		{"empty ISR", 3, nil, nil, kerr.InvalidRequest},
		{"not a replica", 3, []int32{1, 4}, nil, kerr.InvalidRequest},
		{"member twice", 2, []int32{1, 2, 2}, nil, kerr.InvalidRequest},
		{"recovering", 3, []int32{1}, func(r *kmsg.AlterPartitionRequest) { part(r).LeaderRecoveryState = 1 }, kerr.InvalidRequest},
		{"new member's stale broker epoch", 3, []int32{1, 2, 3}, func(r *kmsg.AlterPartitionRequest) { part(r).NewEpochISR[2].BrokerEpoch-- }, kerr.IneligibleReplica},
		{"new member's unknown broker epoch", 3, []int32{1, 2, 3}, func(r *kmsg.AlterPartitionRequest) { part(r).NewEpochISR[2].BrokerEpoch = -1 }, kerr.IneligibleReplica},
	} {
		req := e.alterReq(c.version, "t", 0, c.isr...)
		if c.mut != nil {
			c.mut(req)
		}
		n := e.log.proposed
		rp := altered(t, e.call(req))
		wantCode(t, c.name, rp.ErrorCode, c.want)
		if rp.Partition != part(req).Partition || rp.ISR != nil || rp.PartitionEpoch != 0 {
			t.Fatalf("%s: answer %+v", c.name, rp)
		}
		if e.log.proposed != n {
			t.Fatalf("%s: proposed", c.name)
		}
	}
	if p := e.partition("t", 0); p.PartitionEpoch != cur.PartitionEpoch {
		t.Fatalf("refused requests changed %+v into %+v", cur, p)
	}

	// An ISR member already in keeps its place whatever epoch is given for
	// it: only joining brokers are checked.
	req := e.alterReq(3, "t", 0, 1)
	part(req).NewEpochISR[0].BrokerEpoch = 12345
	e.wantState(t, altered(t, e.call(req)), "t", 0, 1)
	req = e.alterReq(3, "t", 0, 1, 2)
	part(req).NewEpochISR[0].BrokerEpoch = 12345
	e.wantState(t, altered(t, e.call(req)), "t", 0, 1, 2)

	// The requesting broker's own epoch is checked first, for the whole
	// request.
	for _, mut := range []func(*kmsg.AlterPartitionRequest){
		func(r *kmsg.AlterPartitionRequest) { r.BrokerEpoch-- },
		func(r *kmsg.AlterPartitionRequest) { r.BrokerID = 9 },
	} {
		req := e.alterReq(3, "t", 0, 1)
		mut(req)
		r := e.call(req).(*kmsg.AlterPartitionResponse)
		if r.ErrorCode != kerr.StaleBrokerEpoch.Code || r.Topics != nil {
			t.Fatalf("stale broker epoch answer %+v", r)
		}
	}

	// A partition named twice in one request: both refused.
	req = e.alterReq(2, "t", 0, 1)
	req.Topics = append(req.Topics, req.Topics[0])
	for _, rt := range e.call(req).(*kmsg.AlterPartitionResponse).Topics {
		wantCode(t, "partition named twice", rt.Partitions[0].ErrorCode, kerr.InvalidRequest)
	}
	if p := e.partition("t", 0); !equal(p.ISR, ids(1, 2)) {
		t.Fatalf("partition named twice changed: %+v", p)
	}
}

// TestAlterPartitionIneligible: a broker joins the ISR only while
// registered, unfenced and not shutting down, and (v3) as the incarnation
// the leader saw; INELIGIBLE_REPLICA came with v2.
func TestAlterPartitionIneligible(t *testing.T) {
	e := newEnv(t)
	epochs := e.addBrokers(1, 2, 3)
	e.create(assigned("t", []int32{1, 2, 3}))
	e.call(e.alterReq(3, "t", 0, 1))
	wantIneligible := func(what string) {
		t.Helper()
		for v := range int16(4) {
			want := kerr.IneligibleReplica
			if v < 2 {
				want = kerr.OperationNotAttempted
			}
			wantCode(t, what, altered(t, e.call(e.alterReq(v, "t", 0, 1, 2))).ErrorCode, want)
		}
	}

	fence := heartbeatReq(2, epochs[2], 1<<40)
	fence.WantFence = true
	e.call(fence)
	wantIneligible("fenced")

	e.heartbeat(2, epochs[2])
	shutdown := heartbeatReq(2, epochs[2], 1<<40)
	shutdown.WantShutdown = true
	e.call(shutdown)
	wantIneligible("shutting down")

	// Broker 2 restarts: the leader must have seen the new incarnation.
	epoch := e.register(2, 9).BrokerEpoch
	e.heartbeat(2, epoch)
	stale := e.alterReq(3, "t", 0, 1, 2)
	stale.Topics[0].Partitions[0].NewEpochISR[1].BrokerEpoch = epochs[2]
	wantCode(t, "previous incarnation", altered(t, e.call(stale)).ErrorCode, kerr.IneligibleReplica)
	e.wantState(t, altered(t, e.call(e.alterReq(3, "t", 0, 1, 2))), "t", 0, 1, 2)
	// Before v3 there are no broker epochs to check.
	e.wantState(t, altered(t, e.call(e.alterReq(0, "t", 0, 1, 2, 3))), "t", 0, 1, 2, 3)
}

// logTo returns a logger that writes to buf.
func logTo(buf *bytes.Buffer) func(*Config) {
	return func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(buf, nil)) }
}

func TestUncleanLeaderElection(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, logTo(&logs))
	epochs := e.addBrokers(1, 2, 3)
	unclean := assigned("u", []int32{1, 2}, []int32{1, 3})
	c := kmsg.NewCreateTopicsRequestTopicConfig()
	on := "true"
	c.Name, c.Value = uncleanKey, &on
	unclean.Configs = append(unclean.Configs, c)
	e.create(unclean, assigned("c", []int32{1, 2}))
	for _, tp := range []string{"u", "c"} {
		e.call(e.alterReq(3, tp, 0, 1))
	}
	fence := func(id int32) {
		req := heartbeatReq(id, epochs[id], 1<<40)
		req.WantFence = true
		e.call(req)
	}
	// Broker 3 is down too (and leaves u-1's ISR): u-1 has no replica
	// left to lead.
	fence(3)
	before := e.log.committed.Clone()
	if logs.Len() != 0 {
		t.Fatalf("logged before any unclean election: %s", logs.String())
	}

	// The ISR's last member fails. Where the topic allows it, a replica
	// outside the ISR takes over at once; elsewhere the partition waits for
	// its ISR.
	fence(1)
	old, _ := before.Topic("u")
	if p := e.partition("u", 0); p.Leader != 2 || !equal(p.ISR, ids(2)) || p.LeaderEpoch != old.Partitions[0].LeaderEpoch+1 {
		t.Fatalf("u-0 after its ISR failed: %+v", p)
	}
	if p := e.partition("u", 1); p.Leader != -1 || len(p.ISR) != 0 || !equal(p.ELR, ids(1)) {
		t.Fatalf("u-1 without a live replica: %+v", p)
	}
	if p := e.partition("c", 0); p.Leader != -1 || len(p.ISR) != 0 || !equal(p.ELR, ids(1)) {
		t.Fatalf("c-0 elected without unclean election: %+v", p)
	}
	wantLogged(t, &logs, "topic=u partition=0 leader=2")

	// A replica of u-1 comes back: it is elected, unclean, when unfenced.
	e.heartbeat(3, epochs[3])
	if p := e.partition("u", 1); p.Leader != 3 || !equal(p.ISR, ids(3)) {
		t.Fatalf("u-1 after 3 came back: %+v", p)
	}
	wantLogged(t, &logs, "topic=u partition=1 leader=3")
	if p := e.partition("c", 0); p.Leader != -1 {
		t.Fatalf("c-0 elected without unclean election: %+v", p)
	}

	// An explicit unclean election needs no topic config.
	got := electCodes(e.call(electReq(electUnclean, map[string][]int32{"c": {0}})))
	if got["c"][0] != 0 {
		t.Fatalf("unclean election of c-0: %v", got)
	}
	if p := e.partition("c", 0); p.Leader != 2 || !equal(p.ISR, ids(2)) {
		t.Fatalf("c-0 after unclean election: %+v", p)
	}
	wantLogged(t, &logs, "topic=c partition=0 leader=2")
	if err := e.checkImage(e.log.committed); err != nil {
		t.Fatal(err)
	}
}

// wantLogged checks that the next line of logs is an unclean election
// warning with want among its attributes.
func wantLogged(t *testing.T, logs *bytes.Buffer, want string) {
	t.Helper()
	line, _ := logs.ReadString('\n')
	if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "unclean leader election") || !strings.Contains(line, want) {
		t.Fatalf("log line %q, want an unclean election warning with %q", line, want)
	}
}

// TestElectionsStayInISR: with unclean election off, no automatic election
// (controlled shutdown, fencing, unfencing, rebalance) gives the
// leadership to a replica outside the ISR.
func TestElectionsStayInISR(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AutoLeaderRebalance, c.RebalanceIntervalMs = true, 1000 })
	epochs := e.addBrokers(1, 2, 3)
	e.create(assigned("t", []int32{2, 1, 3}))
	// 1 leads, with 2 (the preferred replica) out of the ISR.
	req := heartbeatReq(2, epochs[2], 1<<40)
	req.WantFence = true
	e.call(req)
	e.heartbeat(2, epochs[2])
	if p := e.partition("t", 0); p.Leader != 1 || !equal(p.ISR, ids(1, 3)) {
		t.Fatalf("after 2 was fenced: %+v", p)
	}
	e.c.Tick(e.now + 1000)
	e.log.commit(-1)
	if p := e.partition("t", 0); p.Leader != 1 {
		t.Fatalf("rebalanced to a replica outside the ISR: %+v", p)
	}
	shutdown := heartbeatReq(1, epochs[1], 1<<40)
	shutdown.WantShutdown = true
	e.call(shutdown)
	if p := e.partition("t", 0); p.Leader != 3 || !equal(p.ISR, ids(3)) {
		t.Fatalf("after 1 shut down: %+v", p)
	}
	req = heartbeatReq(3, epochs[3], 1<<40)
	req.WantFence = true
	e.call(req)
	if p := e.partition("t", 0); p.Leader != -1 || len(p.ISR) != 0 || !equal(p.ELR, ids(3)) {
		t.Fatalf("after the ISR's last member failed: %+v", p)
	}
	// 2 is fenced and unfenced again: it cannot lead from outside the ISR
	// and the ELR.
	req = heartbeatReq(2, epochs[2], 1<<40)
	req.WantFence = true
	e.call(req)
	e.heartbeat(2, epochs[2])
	if p := e.partition("t", 0); p.Leader != -1 {
		t.Fatalf("elected outside the ISR: %+v", p)
	}
	e.heartbeat(3, epochs[3])
	if p := e.partition("t", 0); p.Leader != 3 || !equal(p.ISR, ids(3)) {
		t.Fatalf("the ISR's last member did not lead again: %+v", p)
	}
}

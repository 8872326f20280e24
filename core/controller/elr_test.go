package controller

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// withMinISR is topic t with min.insync.replicas m.
func withMinISR(t kmsg.CreateTopicsRequestTopic, m string) kmsg.CreateTopicsRequestTopic {
	c := kmsg.NewCreateTopicsRequestTopicConfig()
	c.Name, c.Value = minISRKey, &m
	t.Configs = append(t.Configs, c)
	return t
}

func (e *env) fence(id int32, epoch int64) {
	e.t.Helper()
	req := heartbeatReq(id, epoch, 1<<40)
	req.WantFence = true
	if hb := e.call(req).(*kmsg.BrokerHeartbeatResponse); hb.ErrorCode != 0 || !hb.IsFenced {
		e.t.Fatalf("fence %d: %+v", id, hb)
	}
}

// registerDisk registers broker id as incarnation inc with the log
// directory of its disk number disk.
func (e *env) registerDisk(id int32, inc, disk byte) int64 {
	e.t.Helper()
	req := registrationReq(id, inc)
	req.LogDirs = [][16]byte{dir(id, disk)}
	r := e.call(req).(*kmsg.BrokerRegistrationResponse)
	wantCode(e.t, "register", r.ErrorCode, nil)
	return r.BrokerEpoch
}

// TestELRTransitions: members leaving an ISR smaller than
// min.insync.replicas join the ELR, members back in the ISR leave it, an
// ELR member leads when no ISR member can, and the ELR empties once the
// ISR is large enough again.
func TestELRTransitions(t *testing.T) {
	e := newEnv(t)
	epochs := e.addBrokers(1, 2, 3)
	e.create(withMinISR(assigned("t", []int32{1, 2, 3}), "3"))
	p := e.partition("t", 0)
	p = e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[1 2 3] leader=1", 0, 0)

	e.call(e.alterReq(3, "t", 0, 1))
	p = e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[1] leader=1 elr=[2 3]", 0, 1)
	e.call(e.alterReq(3, "t", 0, 1, 2))
	p = e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[1 2] leader=1 elr=[3]", 0, 1)

	// The leader fails: another ISR member leads, the old one joins the
	// ELR.
	e.fence(1, epochs[1])
	p = e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[2] leader=2 elr=[3 1]", 1, 1)
	// The last ISR member fails: the first ELR member that can lead
	// takes over, alone in the ISR; the others stay eligible.
	e.fence(2, epochs[2])
	p = e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[3] leader=3 elr=[1 2]", 1, 1)

	e.heartbeat(1, epochs[1])
	e.call(e.alterReq(3, "t", 0, 3, 1))
	p = e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[3 1] leader=3 elr=[2]", 0, 1)
	e.heartbeat(2, epochs[2])
	e.call(e.alterReq(3, "t", 0, 3, 1, 2))
	e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[3 1 2] leader=3", 0, 1)

	// min.insync.replicas above the replica count counts as the replica
	// count: an ISR of every replica has no ELR, and nothing else changes.
	e.create(withMinISR(assigned("u", []int32{1, 2}), "3"))
	p = e.partition("u", 0)
	e.call(e.alterReq(3, "u", 0, 1))
	e.wantPartition(t, "u", 0, p, "replicas=[1 2] isr=[1] leader=1 elr=[2]", 0, 1)
	e.call(e.alterReq(3, "u", 0, 1, 2))
	e.wantPartition(t, "u", 0, p, "replicas=[1 2] isr=[1 2] leader=1", 0, 2)
}

// TestELRNeedsASmallISR: members leaving an ISR that stays at least
// min.insync.replicas large are not eligible: the high watermark goes on
// without them.
func TestELRNeedsASmallISR(t *testing.T) {
	e := newEnv(t)
	epochs := e.addBrokers(1, 2, 3)
	e.create(withMinISR(assigned("t", []int32{1, 2, 3}), "2"))
	p := e.partition("t", 0)
	e.call(e.alterReq(3, "t", 0, 1, 2))
	p = e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[1 2] leader=1", 0, 1)
	e.fence(1, epochs[1])
	p = e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[2] leader=2 elr=[1]", 1, 1)
	// 3 left while the ISR was large enough: it may not lead.
	e.fence(2, epochs[2])
	p = e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[] leader=-1 elr=[1 2]", 1, 1)
	e.heartbeat(2, epochs[2])
	e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[2] leader=2 elr=[1]", 1, 1)
}

// TestDiskLossRegistration: a broker registering with another log
// directory leaves every ISR and ELR in the registration's own batch, even
// as the last member, and cannot lead until it rejoins an ISR; a restart
// with the same directory keeps its ELR places.
func TestDiskLossRegistration(t *testing.T) {
	e := newEnv(t)
	epochs := e.addBrokers(1, 2, 3)
	e.create(withMinISR(assigned("t", []int32{1, 2, 3}), "2"), assigned("solo", []int32{3}))
	e.call(e.alterReq(3, "t", 0, 1))
	e.wantLost(t, "t", "replicas=[1 2 3] isr=[1] leader=1 elr=[2 3]")

	// 2 restarts with its disk: still eligible.
	epochs[2] = e.registerDisk(2, 20, 0)
	e.wantLost(t, "t", "replicas=[1 2 3] isr=[1] leader=1 elr=[2 3]")
	e.heartbeat(2, epochs[2])

	// 3 comes back with a new disk: it leaves the ELR, and solo-0, whose
	// only replica it is, has nothing left to elect.
	a := e.send(func() *kmsg.BrokerRegistrationRequest {
		req := registrationReq(3, 30)
		req.LogDirs = [][16]byte{dir(3, 1)}
		return req
	}())
	recs := e.log.lastRecs(t)
	if len(recs) != 3 || recs[0].RegisterBroker == nil || recs[0].RegisterBroker.DirectoryID != dir(3, 1) ||
		recs[1].Partition == nil || recs[2].Partition == nil {
		t.Fatalf("disk loss batch %+v, want the registration and both partitions", recs)
	}
	e.log.commit(-1)
	epochs[3] = a.resp.(*kmsg.BrokerRegistrationResponse).BrokerEpoch
	e.wantLost(t, "t", "replicas=[1 2 3] isr=[1] leader=1 elr=[2]")
	e.wantLost(t, "solo", "replicas=[3] isr=[] leader=-1")
	e.heartbeat(3, epochs[3])
	e.wantLost(t, "solo", "replicas=[3] isr=[] leader=-1")

	// The leader, last in the ISR, loses its disk: the ELR member leads,
	// and the lost broker is eligible nowhere.
	e.registerDisk(1, 10, 1)
	e.wantLost(t, "t", "replicas=[1 2 3] isr=[2] leader=2")

	// 3 catches up and rejoins, then leaves an ISR too small: eligible
	// again. A registration that names no directory cannot prove it kept
	// its disk: the leader, 2, is taken for lost, and 3 takes over.
	e.call(e.alterReq(3, "t", 0, 2, 3))
	e.call(e.alterReq(3, "t", 0, 2))
	e.wantLost(t, "t", "replicas=[1 2 3] isr=[2] leader=2 elr=[3]")
	req := registrationReq(2, 21)
	req.Version, req.LogDirs = 1, nil
	wantCode(t, "register without a directory", e.call(req).(*kmsg.BrokerRegistrationResponse).ErrorCode, nil)
	e.wantLost(t, "t", "replicas=[1 2 3] isr=[3] leader=3")
	if b := e.broker(2); b.DirectoryID != ([16]byte{}) {
		t.Fatalf("registered directory %x, want none", b.DirectoryID)
	}

	// Two directories are refused: Weir serves one.
	req = registrationReq(2, 22)
	req.LogDirs = [][16]byte{dir(2, 0), dir(2, 1)}
	wantCode(t, "two directories", e.call(req).(*kmsg.BrokerRegistrationResponse).ErrorCode, kerr.InvalidRequest)
}

// wantLost checks topic-0's committed state, in a cluster where disks were
// lost (so checkImage does not hold).
func (e *env) wantLost(t *testing.T, topic, want string) {
	t.Helper()
	if got := state(e.partition(topic, 0)); got != want {
		t.Fatalf("%s-0: %s\n      want %s", topic, got, want)
	}
}

// TestReassignmentKeepsMinISR: a reassignment completes only once the
// target's ISR is min.insync.replicas large: the replicas it removes may
// hold committed records the target's lagging members lack.
func TestReassignmentKeepsMinISR(t *testing.T) {
	e := newEnv(t)
	e.addBrokers(1, 2, 3)
	e.create(withMinISR(assigned("t", []int32{1, 2, 3}), "2"))
	p := e.partition("t", 0)
	e.call(e.alterReq(3, "t", 0, 1, 3))
	p = e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[1 3] leader=1", 0, 1)
	e.mustReassign("t", 0, 1, 2)
	p = e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[1 3] leader=1 adding=[] removing=[3]", 0, 1)
	// The leader drops the replica removed from the ISR: that leaves the
	// target's ISR too small, so 3 stays, eligible, until 2 catches up.
	e.call(e.alterReq(3, "t", 0, 1))
	p = e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[1] leader=1 elr=[3] adding=[] removing=[3]", 0, 1)
	e.call(e.alterReq(3, "t", 0, 1, 2))
	e.wantPartition(t, "t", 0, p, "replicas=[1 2] isr=[1 2] leader=1", 1, 1)
}

// TestCancelKeepsMinISR: a cancel that would drop in-sync replicas being
// added, leaving fewer than min.insync.replicas replicas with every
// committed record, waits until the others catch up.
func TestCancelKeepsMinISR(t *testing.T) {
	e := newEnv(t)
	e.addBrokers(1, 2, 3, 4, 5)
	e.create(withMinISR(assigned("t", []int32{1, 2, 3}), "2"))
	p := e.partition("t", 0)
	e.mustReassign("t", 0, 1, 4, 5)
	e.call(e.alterReq(3, "t", 0, 1, 4))
	p = e.wantPartition(t, "t", 0, p, "replicas=[1 4 5 2 3] isr=[1 4] leader=1 adding=[4 5] removing=[2 3]", 0, 2)
	wantCode(t, "cancel", e.reassign("t", 0).ErrorCode, kerr.InvalidReplicaAssignment)
	e.call(e.alterReq(3, "t", 0, 1, 4, 2))
	p = e.wantPartition(t, "t", 0, p, "replicas=[1 4 5 2 3] isr=[1 4 2] leader=1 adding=[4 5] removing=[2 3]", 0, 1)
	wantCode(t, "cancel", e.reassign("t", 0).ErrorCode, nil)
	e.wantPartition(t, "t", 0, p, "replicas=[1 2 3] isr=[1 2] leader=1", 1, 1)
}

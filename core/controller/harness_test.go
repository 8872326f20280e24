package controller

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/port"
)

// fatalf is what the harness needs of *testing.T and *rapid.T.
type fatalf interface {
	Helper()
	Fatalf(format string, args ...any)
}

// fakeLog is the Raft log as the controller sees it: proposals get
// increasing indexes and wait until the test commits or fails them.
// Committed batches are applied to an image, which panics on any broken
// invariant.
type fakeLog struct {
	next      uint64
	refuse    bool
	pending   []fakeProposal
	committed *metadata.Image
	// proposed counts the batches accepted, committed those applied.
	proposed, committedN int
	// onCommit runs after each committed batch is applied.
	onCommit func(index uint64, recs []metadata.Record)
}

type fakeProposal struct {
	index uint64
	recs  []metadata.Record
	done  func(committed bool)
}

func newFakeLog() *fakeLog { return &fakeLog{next: 1, committed: metadata.New()} }

func (l *fakeLog) NextIndex() uint64 { return l.next }

func (l *fakeLog) Propose(recs []metadata.Record, done func(bool)) (uint64, bool) {
	if l.refuse {
		return 0, false
	}
	p := fakeProposal{index: l.next, recs: slices.Clone(recs), done: done}
	l.next++
	l.proposed++
	l.pending = append(l.pending, p)
	return p.index, true
}

// commit commits the n oldest pending batches (all when n < 0), in order.
// A done callback may propose more; those are committed too when n < 0.
func (l *fakeLog) commit(n int) {
	for n != 0 && len(l.pending) > 0 {
		p := l.pending[0]
		l.pending = l.pending[1:]
		l.apply(p)
		p.done(true)
		n--
	}
}

func (l *fakeLog) apply(p fakeProposal) {
	l.committed.Apply(p.index, p.recs)
	l.committedN++
	if l.onCommit != nil {
		l.onCommit(p.index, p.recs)
	}
}

// fail ends every pending batch as not committed.
func (l *fakeLog) fail() {
	ps := l.pending
	l.pending = nil
	for _, p := range ps {
		p.done(false)
	}
}

// lastRecs returns the records of the newest pending batch.
func (l *fakeLog) lastRecs(t fatalf) []metadata.Record {
	t.Helper()
	if len(l.pending) == 0 {
		t.Fatalf("nothing pending")
	}
	return l.pending[len(l.pending)-1].recs
}

// env is a controller over a fakeLog, with a clock.
type env struct {
	t    fatalf
	log  *fakeLog
	c    *Controller
	cfg  Config
	now  int64
	rand uint64
}

const sessionMs = 9000 // broker.session.timeout.ms's default

func testConfig() Config {
	return Config{
		SessionTimeoutMs:         sessionMs,
		DefaultPartitions:        1,
		DefaultReplicationFactor: 1,
		DeleteTopicEnable:        true,
		RebalanceIntervalMs:      300_000,
		ValidateTopicConfig:      validateConfig,
		UncleanLeaderElection:    func(o map[string]string) bool { return o[uncleanKey] == "true" },
		MinInsyncReplicas: func(o map[string]string) int32 {
			m, err := strconv.Atoi(o[minISRKey])
			if err != nil {
				return 1
			}
			return int32(m)
		},
		ClusterID: "test-cluster",
	}
}

const (
	uncleanKey = "unclean.leader.election.enable"
	minISRKey  = "min.insync.replicas"
)

// validateConfig knows four topic keys.
func validateConfig(o map[string]string) error {
	for k, v := range o {
		switch k {
		case "cleanup.policy":
			if v != "delete" && v != "compact" {
				return fmt.Errorf("invalid value %q for cleanup.policy", v)
			}
		case "retention.ms":
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return fmt.Errorf("invalid value %q for retention.ms", v)
			}
		case minISRKey:
			if m, err := strconv.Atoi(v); err != nil || m < 1 {
				return fmt.Errorf("invalid value %q for %s", v, minISRKey)
			}
		case uncleanKey:
			if _, err := strconv.ParseBool(v); err != nil {
				return fmt.Errorf("invalid value %q for %s", v, uncleanKey)
			}
		default:
			return fmt.Errorf("unknown topic config %q", k)
		}
	}
	return nil
}

// newEnv returns an active controller of a new cluster whose cluster id
// record is committed.
func newEnv(t fatalf, opts ...func(*Config)) *env {
	e := &env{t: t, log: newFakeLog(), cfg: testConfig(), now: 1_000}
	e.cfg.Rand = func() uint64 {
		// splitmix64
		e.rand += 0x9e3779b97f4a7c15
		z := e.rand
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	for _, o := range opts {
		o(&e.cfg)
	}
	e.c = New(e.cfg, e.log)
	e.activate()
	e.log.commit(-1)
	return e
}

// activate makes the controller active from the committed image, after a
// new leader's empty entry.
func (e *env) activate() {
	e.log.next = max(e.log.next, e.log.committed.AppliedIndex()+1) + 1
	e.c.Activate(e.log.committed, e.now)
}

// failover loses leadership: the pending batches fail, and the controller
// starts again from the committed image.
func (e *env) failover() {
	e.c.Deactivate()
	e.log.fail()
	e.activate()
}

// seed applies records to the committed image as an earlier controller
// would have, and makes the controller start again from it.
func (e *env) seed(recs ...metadata.Record) {
	e.t.Helper()
	if len(e.log.pending) > 0 {
		e.t.Fatalf("seed with batches pending")
	}
	e.c.Deactivate()
	e.log.apply(fakeProposal{index: e.log.next, recs: recs})
	e.log.next++
	e.activate()
}

// answer is a reply, once it came.
type answer struct {
	resp kmsg.Response
	n    int
}

func (a *answer) ok() bool { return a.n == 1 }

// send hands req to the controller without committing anything.
func (e *env) send(req kmsg.Request) *answer {
	a := &answer{}
	e.c.Handle(e.now, req, func(r kmsg.Response) {
		a.n++
		a.resp = r
		if a.n > 1 {
			e.t.Fatalf("%s answered twice", kmsg.NameForKey(req.Key()))
		}
	})
	return a
}

// call sends req, commits everything, and returns the reply.
func (e *env) call(req kmsg.Request) kmsg.Response {
	e.t.Helper()
	a := e.send(req)
	e.log.commit(-1)
	if !a.ok() {
		e.t.Fatalf("%s not answered after commit", kmsg.NameForKey(req.Key()))
	}
	return a.resp
}

func incarnation(b byte) [16]byte {
	var id [16]byte
	for i := range id {
		id[i] = b
	}
	return id
}

// registrationReq registers broker id as incarnation inc, with the log
// directory dir(id): the same disk every time.
func registrationReq(id int32, inc byte) *kmsg.BrokerRegistrationRequest {
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.Version = 2
	req.BrokerID, req.ClusterID, req.IncarnationID = id, "test-cluster", incarnation(inc)
	req.LogDirs = [][16]byte{dir(id, 0)}
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port = "PLAINTEXT", "broker"+strconv.Itoa(int(id)), 9092
	req.Listeners = append(req.Listeners, l)
	return req
}

// dir is the directory id of broker id's disk number disk.
func dir(id int32, disk byte) [16]byte { return [16]byte{byte(id), disk, 0xd} }

func (e *env) register(id int32, inc byte) *kmsg.BrokerRegistrationResponse {
	e.t.Helper()
	return e.call(registrationReq(id, inc)).(*kmsg.BrokerRegistrationResponse)
}

func heartbeatReq(id int32, epoch, offset int64) *kmsg.BrokerHeartbeatRequest {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch, req.CurrentMetadataOffset = id, epoch, offset
	return req
}

func (e *env) heartbeat(id int32, epoch int64) *kmsg.BrokerHeartbeatResponse {
	e.t.Helper()
	return e.call(heartbeatReq(id, epoch, int64(e.log.committed.AppliedIndex()))).(*kmsg.BrokerHeartbeatResponse)
}

// addBrokers registers and unfences brokers, returning their epochs.
func (e *env) addBrokers(ids ...int32) map[int32]int64 {
	e.t.Helper()
	epochs := map[int32]int64{}
	for _, id := range ids {
		r := e.register(id, byte(id))
		if r.ErrorCode != 0 {
			e.t.Fatalf("register %d: %v", id, kerr.ErrorForCode(r.ErrorCode))
		}
		epochs[id] = r.BrokerEpoch
		if hb := e.heartbeat(id, r.BrokerEpoch); hb.ErrorCode != 0 || hb.IsFenced {
			e.t.Fatalf("unfence %d: %v fenced=%v", id, kerr.ErrorForCode(hb.ErrorCode), hb.IsFenced)
		}
	}
	return epochs
}

func createReq(topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	req.Topics = topics
	return req
}

func newTopic(name string, partitions int32, rf int16) kmsg.CreateTopicsRequestTopic {
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, partitions, rf
	return t
}

func assigned(name string, replicas ...[]int32) kmsg.CreateTopicsRequestTopic {
	t := newTopic(name, -1, -1)
	for i, r := range replicas {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), r
		t.ReplicaAssignment = append(t.ReplicaAssignment, a)
	}
	return t
}

func (e *env) create(topics ...kmsg.CreateTopicsRequestTopic) []kmsg.CreateTopicsResponseTopic {
	e.t.Helper()
	return e.call(createReq(topics...)).(*kmsg.CreateTopicsResponse).Topics
}

// mustCreate creates a topic and returns it as committed.
func (e *env) mustCreate(name string, partitions int32, rf int16) metadata.Topic {
	e.t.Helper()
	rt := e.create(newTopic(name, partitions, rf))[0]
	if rt.ErrorCode != 0 {
		e.t.Fatalf("create %s: %v %s", name, kerr.ErrorForCode(rt.ErrorCode), str(rt.ErrorMessage))
	}
	t, ok := e.log.committed.Topic(name)
	if !ok {
		e.t.Fatalf("topic %s not committed", name)
	}
	return t
}

func (e *env) partition(name string, p int32) metadata.Partition {
	e.t.Helper()
	t, ok := e.log.committed.Topic(name)
	if !ok || int(p) >= len(t.Partitions) {
		e.t.Fatalf("no committed partition %s-%d", name, p)
	}
	return t.Partitions[p]
}

func (e *env) broker(id int32) metadata.Broker {
	e.t.Helper()
	b, ok := e.log.committed.Broker(port.NodeID(id))
	if !ok {
		e.t.Fatalf("broker %d not committed", id)
	}
	return b
}

// topicRecs returns the records of a topic with the given partitions,
// each as {replicas, isr, leader}.
func topicRecs(name string, id byte, parts ...partSpec) []metadata.Record {
	tid := [16]byte{id, 0xee}
	recs := []metadata.Record{{Topic: &metadata.TopicRecord{Name: name, ID: tid}}}
	for i, p := range parts {
		recs = append(recs, metadata.Record{Partition: &metadata.PartitionRecord{
			TopicID: tid, Partition: int32(i), Replicas: p.replicas, ISR: p.isr, ELR: p.elr, Leader: p.leader,
			LeaderEpoch: 3, PartitionEpoch: 5}})
	}
	return recs
}

type partSpec struct {
	replicas, isr, elr []port.NodeID
	leader             port.NodeID
}

// eligible is s with an ELR.
func (s partSpec) eligible(elr ...port.NodeID) partSpec {
	s.elr = elr
	return s
}

func ps(replicas, isr []port.NodeID, leader port.NodeID) partSpec {
	return partSpec{replicas: replicas, isr: isr, leader: leader}
}

func ids(v ...port.NodeID) []port.NodeID { return v }

func str(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func wantCode(t fatalf, what string, got int16, want *kerr.Error) {
	t.Helper()
	var wantCode int16
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

// checkImage checks the invariants every image the controller writes
// must keep, beyond those Apply enforces.
func (e *env) checkImage(img *metadata.Image) error {
	for _, t := range img.Topics() {
		if len(t.Partitions) == 0 {
			return fmt.Errorf("topic %s has no partitions", t.Name)
		}
		overrides := map[string]string{}
		for _, c := range img.Configs(metadata.ResourceTopic, t.Name) {
			overrides[c.Key] = c.Value
		}
		minInsync := e.cfg.MinInsyncReplicas(overrides)
		for i, p := range t.Partitions {
			name := fmt.Sprintf("%s-%d %+v", t.Name, i, p)
			// Without disk losses, some replica holds every committed
			// record: an ISR member, or else an eligible leader.
			if len(p.ISR) == 0 && len(p.ELR) == 0 {
				return errors.New(name + ": empty ISR and ELR")
			}
			for _, r := range p.ISR {
				if !slices.Contains(p.Replicas, r) {
					return errors.New(name + ": ISR member not a replica")
				}
			}
			for _, r := range p.ELR {
				if !slices.Contains(p.Replicas, r) || slices.Contains(p.ISR, r) {
					return errors.New(name + ": ELR member not a replica outside the ISR")
				}
			}
			if len(p.ELR) > 0 && len(p.ISR) >= p.MinISR(minInsync) {
				return fmt.Errorf("%s: an ELR beside an ISR of min.insync.replicas %d", name, minInsync)
			}
			for j, r := range p.Replicas {
				if slices.Contains(p.Replicas[:j], r) {
					return errors.New(name + ": replicas not distinct")
				}
			}
			if err := checkReassignment(p, minInsync); err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
			if p.Leader == metadata.NoLeader {
				continue
			}
			if !slices.Contains(p.ISR, p.Leader) {
				return errors.New(name + ": leader not in ISR")
			}
			b, ok := img.Broker(p.Leader)
			if !ok || b.Fenced || b.ShuttingDown {
				return fmt.Errorf("%s: leader %d is fenced or shutting down (%+v)", name, p.Leader, b)
			}
		}
	}
	return nil
}

// checkReassignment checks a partition's reassignment: the replicas being
// added and removed are replicas, none both, and the replicas list the
// target first. Once it is due (see reassignmentDue), every change
// completes it as far as it can (see completeReassignment): the ISR still
// holds a replica being removed (else the reassignment would be complete),
// and a replica being removed does not lead (the change moved the
// leadership to a member of the target in the ISR, all of which can lead
// while the partition has a leader; see checkISRsServe).
func checkReassignment(p metadata.Partition, minInsync int32) error {
	if !p.Reassigning() {
		return nil
	}
	for _, r := range p.AddingReplicas {
		if !slices.Contains(p.Replicas, r) || slices.Contains(p.RemovingReplicas, r) {
			return fmt.Errorf("replica %d being added is not a replica, or also being removed", r)
		}
	}
	n := len(p.Replicas) - len(p.RemovingReplicas)
	if n <= 0 || !slices.Equal(p.Replicas[n:], p.RemovingReplicas) {
		return errors.New("the replicas being removed do not follow the target")
	}
	if !reassignmentDue(p, p.ISR, minInsync) {
		return nil
	}
	switch {
	case !slices.ContainsFunc(p.ISR, func(r port.NodeID) bool { return slices.Contains(p.RemovingReplicas, r) }):
		return errors.New("the ISR completes the reassignment, yet it goes on")
	case slices.Contains(p.RemovingReplicas, p.Leader):
		return fmt.Errorf("replica %d being removed leads a reassignment that is due", p.Leader)
	}
	return nil
}

// reassignmentDue reports whether p's reassignment may complete with isr:
// it holds every replica being added and, of the target, at least its
// min.insync.replicas (at most its size).
func reassignmentDue(p metadata.Partition, isr []port.NodeID, minInsync int32) bool {
	target := metadata.Partition{Replicas: p.Replicas[:len(p.Replicas)-len(p.RemovingReplicas)]}
	inTarget := 0
	for _, r := range isr {
		if slices.Contains(target.Replicas, r) {
			inTarget++
		}
	}
	return containsAll(isr, p.AddingReplicas) && inTarget >= target.MinISR(minInsync)
}

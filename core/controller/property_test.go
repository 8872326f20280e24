package controller

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"

	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/port"
)

// TestControllerProperties drives the controller with random requests,
// ticks, commits, failed proposals and failovers, applying every committed
// batch to an image (whose Apply panics on a broken invariant), and checks
// after each step that:
//   - every partition's leader is in its ISR and is an unfenced, not
//     shutting down broker, or -1; no ISR is empty; replicas are distinct;
//     the ISR is within the replicas, and while the partition has a
//     leader every member can serve;
//   - every committed change of a partition raises its partition epoch,
//     and its leader epoch exactly when the leader changes or replicas
//     are taken away; a broker becomes a replica only as one being added;
//   - a reassignment's replicas being added and removed are replicas,
//     none both, listed after the target; once due (every replica added
//     in the ISR, and some member of the target), it is complete as soon
//     as its ISR holds no replica being removed, and in progress as long
//     as it holds one, and no replica being removed leads it;
//   - a replica being removed that leads leaves the ISR only after
//     another leader has taken over, by a later change (or when it stops
//     serving): the change that deposes it keeps it in the ISR;
//   - an ISR change that AlterPartition answers is the ISR asked for, no
//     replica being removed trimmed from it;
//   - at the end, every reassignment whose replicas can serve completes
//     through its leaders' AlterPartition (the replicas added joining,
//     then the replicas removed dropped by the leader of the moment);
//   - every request is answered once, and once nothing is pending, all
//     are; what an answer acknowledges is committed when it leaves
//     (topics created, broker epochs, unfencing, producer id blocks,
//     which never overlap, ISR changes and the partition state
//     AlterPartition answers, reassignments started, completed or
//     cancelled), and a list of reassignments is the committed one.
func TestControllerProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		m := newModel(rt)
		steps := rapid.IntRange(1, 120).Draw(rt, "steps")
		for range steps {
			m.step()
			m.check()
		}
		// Drain: everything decided, everything answered.
		m.e.log.refuse = false
		m.e.log.commit(-1)
		m.check()
		m.completeReassignments()
	})
}

// TestReassignmentProperties is TestControllerProperties with longer runs
// of mostly reassignments, ISR changes and what gets in their way
// (brokers failing and coming back, failovers, elections), so that
// reassignments get to complete, be replaced and be cancelled.
func TestReassignmentProperties(t *testing.T) {
	const (
		heartbeat = 1
		elect     = 6
		tick      = 8
		commit    = 9
		failover  = 13
		restart   = 14
		alter     = 15
		reassign  = 17
		list      = 19
	)
	actions := []int{heartbeat, heartbeat, elect, tick, commit, commit, commit, failover, restart,
		alter, alter, alter, alter, reassign, reassign, reassign, list}
	rapid.Check(t, func(rt *rapid.T) {
		m := newModel(rt)
		steps := rapid.IntRange(20, 150).Draw(rt, "steps")
		for range steps {
			m.do(rapid.SampledFrom(actions).Draw(rt, "action"))
			m.check()
		}
		m.e.log.refuse = false
		m.e.log.commit(-1)
		m.check()
		m.completeReassignments()
	})
}

type model struct {
	t *rapid.T
	e *env
	// epochs is the last epoch each broker was told, incarnations its
	// current process.
	epochs       map[int32]int64
	incarnations map[int32]byte
	// sent counts requests; answered those answered.
	sent, answered int
	// parts is each partition's committed state.
	parts map[partKey]metadata.PartitionRecord
	// pids are the producer id blocks handed out.
	pids [][2]int64
	// minInsync is every topic's min.insync.replicas.
	minInsync int32
}

type partKey struct {
	topic [16]byte
	part  int32
}

var (
	propNames   = []string{"a", "b", "c.d", "c_d"}
	propBrokers = []int32{0, 1, 2, 3}
)

func newModel(t *rapid.T) *model {
	m := &model{t: t, epochs: map[int32]int64{}, incarnations: map[int32]byte{}, parts: map[partKey]metadata.PartitionRecord{}}
	m.e = newEnv(t, func(c *Config) {
		c.DefaultPartitions = int32(rapid.IntRange(1, 3).Draw(t, "defaultPartitions"))
		c.DefaultReplicationFactor = int16(rapid.IntRange(1, 3).Draw(t, "defaultRF"))
		c.DeleteTopicEnable = rapid.Bool().Draw(t, "deleteEnable")
		c.AutoLeaderRebalance = rapid.Bool().Draw(t, "rebalance")
		c.RebalanceIntervalMs = 3000
		m.minInsync = int32(rapid.IntRange(1, 3).Draw(t, "minInsync"))
		c.MinInsyncReplicas = func(map[string]string) int32 { return m.minInsync }
	})
	m.e.log.onCommit = m.checkCommit
	// Start with some brokers registered and unfenced.
	for _, id := range propBrokers {
		if rapid.IntRange(0, 3).Draw(t, "startBroker") == 0 {
			continue
		}
		r := m.e.register(id, 0)
		m.epochs[id] = r.BrokerEpoch
		m.e.heartbeat(id, r.BrokerEpoch)
	}
	// And some topics, so that the partition changes (AlterPartition,
	// reassignments) have partitions to work on from the start.
	for i := range 2 - rapid.IntRange(0, 2).Draw(t, "startTopics") {
		m.e.create(newTopic(propNames[i], int32(rapid.IntRange(1, 3).Draw(t, "startPartitions")), int16(rapid.IntRange(1, 3).Draw(t, "startRF"))))
	}
	return m
}

// send hands a request to the controller; check runs on its answer, when
// it comes, against the committed image of that moment.
func (m *model) send(req kmsg.Request, check func(kmsg.Response)) {
	m.sent++
	n := 0
	m.e.c.Handle(m.e.now, req, func(r kmsg.Response) {
		n++
		if n > 1 {
			m.t.Fatalf("%s answered twice", kmsg.NameForKey(req.Key()))
		}
		m.answered++
		if check != nil {
			check(r)
		}
	})
}

func (m *model) step() { m.do(rapid.IntRange(0, 19).Draw(m.t, "action")) }

func (m *model) do(action int) {
	e, t := m.e, m.t
	switch action {
	case 0:
		m.register(rapid.SampledFrom(propBrokers).Draw(t, "broker"))
	case 1, 2:
		m.heartbeat()
	case 3:
		m.createTopic()
	case 4:
		m.deleteTopic()
	case 5:
		m.createPartitions()
	case 6:
		m.electLeaders()
	case 7:
		m.allocate()
	case 8:
		e.now += int64(rapid.IntRange(0, 6000).Draw(t, "advance"))
		e.c.Tick(e.now)
	case 9, 10, 11:
		e.log.commit(rapid.IntRange(0, 4).Draw(t, "commits"))
	case 12:
		e.log.refuse = rapid.Bool().Draw(t, "refuse")
	case 13:
		m.failover()
	case 14:
		// A broker restarts: it registers as a new incarnation.
		id := rapid.SampledFrom(propBrokers).Draw(t, "restart")
		m.incarnations[id]++
		m.register(id)
	case 15, 16:
		m.alterPartition()
	case 17, 18:
		m.reassign()
	case 19:
		m.listReassignments()
	}
}

// checkCommit checks each partition change of a committed batch against
// the partition's state before it.
func (m *model) checkCommit(_ uint64, recs []metadata.Record) {
	for _, r := range recs {
		switch {
		case r.Partition != nil:
			p := *r.Partition
			k := partKey{p.TopicID, p.Partition}
			if old, ok := m.parts[k]; ok {
				if p.PartitionEpoch <= old.PartitionEpoch {
					m.t.Fatalf("partition epoch %d after %d: %+v", p.PartitionEpoch, old.PartitionEpoch, p)
				}
				bump := p.Leader != old.Leader || !containsAll(p.Replicas, old.Replicas)
				if bump != (p.LeaderEpoch > old.LeaderEpoch) || p.LeaderEpoch < old.LeaderEpoch {
					m.t.Fatalf("leader %d epoch %d replicas %v after leader %d epoch %d replicas %v",
						p.Leader, p.LeaderEpoch, p.Replicas, old.Leader, old.LeaderEpoch, old.Replicas)
				}
				for _, r := range p.Replicas {
					if !slices.Contains(old.Replicas, r) && !slices.Contains(p.AddingReplicas, r) {
						m.t.Fatalf("%d became a replica without being added: %+v after %+v", r, p, old)
					}
				}
				// A replica being removed that led stays in the ISR through
				// the change that deposes it (or that completes the
				// reassignment): it leaves only once it follows, unless it
				// stopped serving. (The batch is applied: the broker's
				// state is the one after it.)
				if l := old.Leader; l != metadata.NoLeader && slices.Contains(old.RemovingReplicas, l) && !slices.Contains(p.ISR, l) {
					if b, ok := m.e.log.committed.Broker(l); ok && !b.Fenced && !b.ShuttingDown {
						m.t.Fatalf("replica %d being removed led and left the ISR in one change, still serving: %+v after %+v", l, p, old)
					}
				}
			}
			m.parts[k] = p
		case r.RemoveTopic != nil:
			for k := range m.parts {
				if k.topic == r.RemoveTopic.ID {
					delete(m.parts, k)
				}
			}
		}
	}
}

// failover: some pending batches commit (answered or not), the rest are
// lost; another controller may change an ISR meanwhile; this node then
// becomes the active controller again from the committed image.
func (m *model) failover() {
	e, t := m.e, m.t
	e.log.commit(rapid.IntRange(0, len(e.log.pending)).Draw(t, "committedBefore"))
	e.c.Deactivate()
	// Of what remains, a prefix is committed by the next leader, but this
	// node has already failed it.
	keep := rapid.IntRange(0, len(e.log.pending)).Draw(t, "committedAfter")
	for _, p := range e.log.pending[:keep] {
		e.log.apply(p)
	}
	e.log.fail()
	e.log.refuse = false
	if rapid.Bool().Draw(t, "expandISR") {
		m.expandISR()
	}
	e.now += int64(rapid.IntRange(0, 3000).Draw(t, "electionTime"))
	e.activate()
}

// expandISR adds a usable replica to some partition's ISR, as an
// AlterPartition decided by another controller would.
func (m *model) expandISR() {
	img := m.e.log.committed
	var recs []metadata.Record
	for _, tp := range img.Topics() {
		for i, p := range tp.Partitions {
			for _, r := range p.Replicas {
				b, _ := img.Broker(r)
				// (A reassignment's ISR change is the controller's own to
				// decide: it may complete it.)
				if slices.Contains(p.ISR, r) || b.Fenced || b.ShuttingDown || p.Leader == -1 || p.Reassigning() {
					continue
				}
				if !rapid.Bool().Draw(m.t, "expand") {
					continue
				}
				recs = append(recs, metadata.Record{Partition: &metadata.PartitionRecord{
					TopicID: tp.ID, Partition: int32(i), Replicas: p.Replicas, ISR: append(slices.Clone(p.ISR), r),
					Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch + 1}})
				break
			}
		}
	}
	if len(recs) > 0 {
		m.e.log.apply(fakeProposal{index: m.e.log.next, recs: recs})
		m.e.log.next++
	}
}

func (m *model) register(id int32) {
	t := m.t
	req := registrationReq(id, m.incarnations[id])
	if rapid.IntRange(0, 9).Draw(t, "wrongCluster") == 0 {
		req.ClusterID = "other"
	}
	m.send(req, func(r kmsg.Response) {
		resp := r.(*kmsg.BrokerRegistrationResponse)
		if resp.ErrorCode != 0 {
			return
		}
		b, ok := m.e.log.committed.Broker(port.NodeID(id))
		if !ok || b.Epoch < resp.BrokerEpoch {
			m.t.Fatalf("registration epoch %d answered but not committed (%+v)", resp.BrokerEpoch, b)
		}
		m.epochs[id] = resp.BrokerEpoch
	})
}

func (m *model) heartbeat() {
	t := m.t
	id := rapid.SampledFrom(propBrokers).Draw(t, "broker")
	epoch, ok := m.epochs[id]
	if !ok || rapid.IntRange(0, 9).Draw(t, "staleEpoch") == 0 {
		epoch = int64(rapid.IntRange(0, 50).Draw(t, "epoch"))
	}
	offset := int64(m.e.log.committed.AppliedIndex())
	if rapid.IntRange(0, 5).Draw(t, "behind") == 0 {
		offset = 0
	}
	req := heartbeatReq(id, epoch, offset)
	req.WantFence = rapid.IntRange(0, 9).Draw(t, "wantFence") == 0
	req.WantShutdown = rapid.IntRange(0, 19).Draw(t, "wantShutdown") == 0
	m.send(req, func(r kmsg.Response) {
		resp := r.(*kmsg.BrokerHeartbeatResponse)
		if resp.ErrorCode != 0 {
			if !resp.IsFenced {
				m.t.Fatalf("failed heartbeat says unfenced")
			}
			return
		}
		b, _ := m.e.log.committed.Broker(port.NodeID(id))
		if !resp.IsFenced && (b.Fenced || b.Epoch != epoch) {
			m.t.Fatalf("heartbeat answered unfenced, committed %+v", b)
		}
		if resp.ShouldShutdown && !b.ShuttingDown {
			m.t.Fatalf("told to shut down, committed %+v", b)
		}
		if resp.ShouldShutdown {
			for _, tp := range m.e.log.committed.Topics() {
				for _, p := range tp.Partitions {
					if p.Leader == port.NodeID(id) {
						m.t.Fatalf("told to shut down while leading %s", tp.Name)
					}
				}
			}
		}
	})
}

func (m *model) createTopic() {
	t := m.t
	name := rapid.SampledFrom(propNames).Draw(t, "topic")
	var topic kmsg.CreateTopicsRequestTopic
	if rapid.IntRange(0, 3).Draw(t, "manual") == 0 {
		n := rapid.IntRange(1, 3).Draw(t, "manualPartitions")
		rf := rapid.IntRange(1, 3).Draw(t, "manualRF")
		var replicas [][]int32
		for range n {
			replicas = append(replicas, rapid.SliceOfNDistinct(rapid.SampledFrom(propBrokers), rf, rf, rapid.ID[int32]).Draw(t, "replicas"))
		}
		topic = assigned(name, replicas...)
	} else {
		topic = newTopic(name, int32(rapid.IntRange(-1, 3).Draw(t, "partitions")), int16(rapid.IntRange(-1, 3).Draw(t, "rf")))
	}
	if rapid.IntRange(0, 3).Draw(t, "unclean") == 0 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		on := "true"
		c.Name, c.Value = uncleanKey, &on
		topic.Configs = append(topic.Configs, c)
	}
	req := createReq(topic)
	req.ValidateOnly = rapid.IntRange(0, 5).Draw(t, "validateOnly") == 0
	m.send(req, func(r kmsg.Response) {
		rts := r.(*kmsg.CreateTopicsResponse).Topics
		if len(rts) != 1 || rts[0].Topic != name {
			m.t.Fatalf("create topics answer %+v", rts)
		}
		out := rts[0]
		if out.ErrorCode != 0 || req.ValidateOnly {
			return
		}
		tp, ok := m.e.log.committed.TopicByID(out.TopicID)
		if !ok || tp.Name != name || int32(len(tp.Partitions)) != out.NumPartitions || int16(len(tp.Partitions[0].Replicas)) != out.ReplicationFactor {
			m.t.Fatalf("created %s %+v, committed %+v", name, out, tp)
		}
	})
}

func (m *model) deleteTopic() {
	t := m.t
	req := deleteReq(6)
	name := rapid.SampledFrom(propNames).Draw(t, "topic")
	if tp, ok := m.view().Topic(name); ok && rapid.Bool().Draw(t, "byID") {
		req.Topics = append(req.Topics, byID(tp.ID))
	} else {
		req.Topics = append(req.Topics, byName(name))
	}
	m.send(req, func(r kmsg.Response) {
		rts := r.(*kmsg.DeleteTopicsResponse).Topics
		if len(rts) != 1 {
			m.t.Fatalf("delete answer %+v", rts)
		}
		if rts[0].ErrorCode == 0 {
			if _, ok := m.e.log.committed.TopicByID(rts[0].TopicID); ok {
				m.t.Fatalf("deleted topic %x still committed", rts[0].TopicID)
			}
		}
	})
}

func (m *model) createPartitions() {
	t := m.t
	req := kmsg.NewPtrCreatePartitionsRequest()
	tp := kmsg.NewCreatePartitionsRequestTopic()
	tp.Topic = rapid.SampledFrom(propNames).Draw(t, "topic")
	tp.Count = int32(rapid.IntRange(0, 6).Draw(t, "count"))
	if cur, ok := m.view().Topic(tp.Topic); ok && rapid.IntRange(0, 3).Draw(t, "assign") == 0 {
		rf := len(cur.Partitions[0].Replicas)
		for range max(0, int(tp.Count)-len(cur.Partitions)) {
			a := kmsg.NewCreatePartitionsRequestTopicAssignment()
			a.Replicas = rapid.SliceOfNDistinct(rapid.SampledFrom(propBrokers), rf, rf, rapid.ID[int32]).Draw(t, "replicas")
			tp.Assignment = append(tp.Assignment, a)
		}
	}
	req.Topics = append(req.Topics, tp)
	req.ValidateOnly = rapid.IntRange(0, 5).Draw(t, "validateOnly") == 0
	m.send(req, func(r kmsg.Response) {
		rts := r.(*kmsg.CreatePartitionsResponse).Topics
		if len(rts) != 1 {
			m.t.Fatalf("create partitions answer %+v", rts)
		}
		if rts[0].ErrorCode == 0 && !req.ValidateOnly {
			cur, ok := m.e.log.committed.Topic(tp.Topic)
			if !ok || int32(len(cur.Partitions)) < tp.Count {
				m.t.Fatalf("partitions of %s not committed: %+v", tp.Topic, cur)
			}
		}
	})
}

func (m *model) electLeaders() {
	t := m.t
	var topics map[string][]int32
	if rapid.IntRange(0, 3).Draw(t, "allPartitions") > 0 {
		topics = map[string][]int32{}
		name := rapid.SampledFrom(propNames).Draw(t, "topic")
		topics[name] = rapid.SliceOfN(rapid.Int32Range(-1, 4), 1, 4).Draw(t, "partitions")
	}
	req := electReq(int8(rapid.IntRange(0, 1).Draw(t, "electionType")), topics)
	m.send(req, nil)
}

func (m *model) allocate() {
	t := m.t
	id := rapid.SampledFrom(propBrokers).Draw(t, "broker")
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID, req.BrokerEpoch = id, m.epochs[id]
	m.send(req, func(r kmsg.Response) {
		resp := r.(*kmsg.AllocateProducerIDsResponse)
		if resp.ErrorCode != 0 {
			return
		}
		block := [2]int64{resp.ProducerIDStart, resp.ProducerIDStart + int64(resp.ProducerIDLen)}
		if resp.ProducerIDLen != producerIDBlock || block[1] > m.e.log.committed.NextProducerID() {
			m.t.Fatalf("block %v answered, committed next id %d", block, m.e.log.committed.NextProducerID())
		}
		for _, b := range m.pids {
			if block[0] < b[1] && b[0] < block[1] {
				m.t.Fatalf("block %v overlaps %v", block, b)
			}
		}
		m.pids = append(m.pids, block)
	})
}

// view is the controller's view, or the committed image while inactive.
func (m *model) view() *metadata.Image {
	if m.e.c.view == nil {
		return m.e.log.committed
	}
	return m.e.c.view
}

func (m *model) check() {
	e, t := m.e, m.t
	if err := e.checkImage(e.log.committed); err != nil {
		t.Fatalf("committed image: %v", err)
	}
	if e.c.Active() {
		if err := e.checkImage(e.c.view); err != nil {
			t.Fatalf("controller view: %v", err)
		}
	}
	for _, img := range []*metadata.Image{e.log.committed, m.view()} {
		if err := checkISRsServe(img); err != nil {
			t.Fatalf("%v", err)
		}
	}
	if len(e.log.pending) == 0 && m.answered != m.sent {
		t.Fatalf("%d requests sent, %d answered, nothing pending", m.sent, m.answered)
	}
}

// checkISRsServe checks that every ISR member of a partition with a leader
// can serve: the controller admits only such brokers (at creation and in
// AlterPartition) and takes out every broker that stops.
func checkISRsServe(img *metadata.Image) error {
	for _, tp := range img.Topics() {
		for i, p := range tp.Partitions {
			if p.Leader == metadata.NoLeader {
				continue
			}
			for _, r := range p.ISR {
				if b, ok := img.Broker(r); !ok || b.Fenced || b.ShuttingDown {
					return fmt.Errorf("%s-%d %+v: ISR member %d cannot serve (%+v)", tp.Name, i, p, r, b)
				}
			}
		}
	}
	return nil
}

// alterPartition sends AlterPartition for a partition as a broker would:
// mostly its leader, at the epochs and with the ISR of the committed image
// (sometimes the view) give or take a member, sometimes stale or wrong.
func (m *model) alterPartition() {
	t := m.t
	img := m.e.log.committed
	if rapid.IntRange(0, 3).Draw(t, "alterFromView") == 0 {
		img = m.view()
	}
	topics := img.Topics()
	if len(topics) == 0 {
		return
	}
	// rarely is true for one draw in about twenty (and shrinks to false).
	rarely := func(label string) bool { return rapid.IntRange(0, 19).Draw(t, label) == 19 }
	tp := topics[rapid.IntRange(0, len(topics)-1).Draw(t, "alterTopic")]
	index := rapid.IntRange(0, len(tp.Partitions)-1).Draw(t, "alterPartition")
	// Partitions being reassigned wait for AlterPartition: favour them.
	var moving [][2]int
	for i, tp := range topics {
		for j, p := range tp.Partitions {
			if p.Reassigning() {
				moving = append(moving, [2]int{i, j})
			}
		}
	}
	if len(moving) > 0 && rapid.Bool().Draw(t, "alterMoving") {
		k := moving[rapid.IntRange(0, len(moving)-1).Draw(t, "alterMovingIndex")]
		tp, index = topics[k[0]], k[1]
	}
	cur := tp.Partitions[index]
	if rarely("unknownPartition") {
		index, cur = len(tp.Partitions), metadata.Partition{Leader: metadata.NoLeader}
	}
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version = int16(rapid.IntRange(0, 3).Draw(t, "alterVersion"))
	req.BrokerID = int32(cur.Leader)
	if cur.Leader == metadata.NoLeader || rarely("notLeader") {
		req.BrokerID = rapid.SampledFrom(propBrokers).Draw(t, "alterBroker")
	}
	// skew puts a value of the request off by one, rarely.
	skew := rapid.Custom(func(t *rapid.T) int64 {
		switch rapid.IntRange(0, 19).Draw(t, "skew") {
		case 18:
			return 1
		case 19:
			return -1
		}
		return 0
	})
	req.BrokerEpoch = m.epochs[req.BrokerID] + skew.Draw(t, "brokerEpochSkew")
	rt := kmsg.NewAlterPartitionRequestTopic()
	if req.Version >= 2 {
		rt.TopicID = tp.ID
	} else {
		rt.Topic = tp.Name
	}
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition = int32(index)
	rp.LeaderEpoch = cur.LeaderEpoch + int32(skew.Draw(t, "leaderEpochSkew"))
	rp.PartitionEpoch = cur.PartitionEpoch + int32(skew.Draw(t, "partitionEpochSkew"))
	if rarely("recovering") {
		rp.LeaderRecoveryState = 1
	}
	// A leader whose reassignment is due mostly drops the replicas being
	// removed (once they have fetched from it).
	dropRemoving := cur.Reassigning() && containsAll(cur.ISR, cur.AddingReplicas) && rapid.Bool().Draw(t, "dropRemoving")
	var isr []int32
	for _, r := range cur.Replicas {
		in := slices.Contains(cur.ISR, r)
		switch {
		case dropRemoving && r != cur.Leader && slices.Contains(cur.RemovingReplicas, r):
			in = false
		case r == cur.Leader:
			in = !rarely("dropLeader")
		case slices.Contains(cur.AddingReplicas, r) && !in:
			// A replica being added has mostly caught up by now.
			in = rapid.IntRange(0, 3).Draw(t, "addingJoins") > 0
		default:
			in = in != rapid.Bool().Draw(t, "flip")
		}
		if in {
			isr = append(isr, int32(r))
		}
	}
	if len(isr) > 0 && rarely("memberTwice") {
		isr = append(isr, isr[0])
	}
	for _, id := range isr {
		if req.Version < 3 {
			rp.NewISR = append(rp.NewISR, id)
			continue
		}
		member := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		member.BrokerID, member.BrokerEpoch = id, m.epochs[id]+skew.Draw(t, "memberEpochSkew")
		rp.NewEpochISR = append(rp.NewEpochISR, member)
	}
	rt.Partitions = append(rt.Partitions, rp)
	if rarely("partitionTwice") {
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	m.send(req, func(r kmsg.Response) {
		resp := r.(*kmsg.AlterPartitionResponse)
		if resp.ErrorCode != 0 {
			if resp.Topics != nil {
				m.t.Fatalf("AlterPartition failed with %v, yet answers %+v", kerr.ErrorForCode(resp.ErrorCode), resp.Topics)
			}
			return
		}
		for _, out := range resp.Topics[0].Partitions {
			if out.ErrorCode != 0 {
				continue
			}
			// Before v2 the topic is named by name, which may have been
			// deleted and created again since the broker looked.
			id := tp.ID
			if req.Version < 2 {
				now, _ := m.e.log.committed.Topic(tp.Name)
				id = now.ID
			}
			p, ok := m.e.log.committed.Partition(id, out.Partition)
			// The ISR committed is the one asked for: a replica being
			// removed that it holds is not trimmed, so the reassignment
			// goes on.
			if !ok || !answers(out, p, isr) || p.Leader != port.NodeID(req.BrokerID) {
				m.t.Fatalf("AlterPartition %+v by %d answered %+v, committed %+v", rp, req.BrokerID, out, p)
			}
			// (A request whose partition epoch is skewed past cur's was
			// applied to a newer state, which cur does not show.)
			for _, r := range isr {
				if rp.PartitionEpoch == cur.PartitionEpoch && slices.Contains(cur.RemovingReplicas, port.NodeID(r)) && !p.Reassigning() {
					m.t.Fatalf("AlterPartition %+v by %d kept %d, being removed in %+v, yet completed %+v", rp, req.BrokerID, r, cur, p)
				}
			}
		}
	})
}

// reassign sends AlterPartitionReassignments for some partitions of a
// topic, as an operator would: mostly existing partitions to registered
// brokers, sometimes unknown ones, to no broker, one twice or brokers
// unknown, sometimes a cancel.
func (m *model) reassign() {
	t := m.t
	img := m.view()
	var registered []int32
	for _, b := range img.Brokers() {
		registered = append(registered, int32(b.ID))
	}
	topics := img.Topics()
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.Version = int16(rapid.IntRange(0, 1).Draw(t, "reassignVersion"))
	req.AllowReplicationFactorChange = rapid.IntRange(0, 3).Draw(t, "allowRFChange") > 0
	type target struct {
		name      string
		partition int32
		replicas  []int32
	}
	var targets []target
	for range 1 + rapid.IntRange(0, 3).Draw(t, "reassignTopics")/3 {
		rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
		// Mostly an existing partition, moved to registered brokers.
		partitions := 0
		if len(topics) > 0 && rapid.IntRange(0, 9).Draw(t, "reassignUnknownTopic") < 9 {
			tp := topics[rapid.IntRange(0, len(topics)-1).Draw(t, "reassignTopicIndex")]
			rt.Topic, partitions = tp.Name, len(tp.Partitions)
		} else {
			rt.Topic = rapid.SampledFrom(propNames).Draw(t, "reassignTopic")
		}
		for range 1 + rapid.IntRange(0, 3).Draw(t, "reassignPartitions")/3 {
			rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
			switch unknown := rapid.IntRange(0, 19).Draw(t, "reassignUnknownPartition"); {
			case unknown == 19 || partitions == 0:
				rp.Partition = int32(partitions)
			case unknown == 18:
				rp.Partition = -1
			default:
				rp.Partition = int32(rapid.IntRange(0, partitions-1).Draw(t, "reassignPartition"))
			}
			switch kind := rapid.IntRange(0, 9).Draw(t, "reassignKind"); {
			case kind > 6:
				// A cancel: nil replicas.
			case kind == 6 || len(registered) == 0:
				rp.Replicas = rapid.SliceOfN(rapid.Int32Range(-1, 5), 0, 4).Draw(t, "oddReplicas")
			default:
				rp.Replicas = rapid.SliceOfNDistinct(rapid.SampledFrom(registered), 1, 3, rapid.ID[int32]).Draw(t, "targetReplicas")
			}
			rt.Partitions = append(rt.Partitions, rp)
			targets = append(targets, target{rt.Topic, rp.Partition, rp.Replicas})
		}
		req.Topics = append(req.Topics, rt)
	}
	m.send(req, func(r kmsg.Response) {
		resp := r.(*kmsg.AlterPartitionAssignmentsResponse)
		var outs []kmsg.AlterPartitionAssignmentsResponseTopicPartition
		for _, rt := range resp.Topics {
			outs = append(outs, rt.Partitions...)
		}
		if len(outs) != len(targets) {
			m.t.Fatalf("reassignment of %d partitions answered %+v", len(targets), resp)
		}
		if resp.ErrorCode != 0 {
			return
		}
		for i, out := range outs {
			tg := targets[i]
			if out.ErrorCode != 0 || out.Partition != tg.partition {
				continue
			}
			tp, ok := m.e.log.committed.Topic(tg.name)
			if !ok || int(tg.partition) >= len(tp.Partitions) {
				m.t.Fatalf("reassigned %s-%d, not committed", tg.name, tg.partition)
			}
			p := tp.Partitions[tg.partition]
			want := make([]port.NodeID, len(tg.replicas))
			for j, r := range tg.replicas {
				want[j] = port.NodeID(r)
			}
			switch {
			case tg.replicas == nil && p.Reassigning():
				m.t.Fatalf("cancelled %s-%d, committed %+v", tg.name, tg.partition, p)
			case tg.replicas == nil:
			case !p.Reassigning() && !slices.Equal(p.Replicas, want),
				p.Reassigning() && (len(p.Replicas) < len(want) || !slices.Equal(p.Replicas[:len(want)], want)):
				m.t.Fatalf("reassigned %s-%d to %v, committed %+v", tg.name, tg.partition, want, p)
			}
		}
	})
}

// listReassignments lists reassignments, of every partition or of some:
// the answer is what the committed image holds when it leaves.
func (m *model) listReassignments() {
	t := m.t
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	if rapid.Bool().Draw(t, "listSome") {
		rt := kmsg.NewListPartitionReassignmentsRequestTopic()
		rt.Topic = rapid.SampledFrom(propNames).Draw(t, "listTopic")
		rt.Partitions = rapid.SliceOfN(rapid.Int32Range(-1, 3), 0, 3).Draw(t, "listPartitions")
		req.Topics = append(req.Topics, rt)
	}
	m.send(req, func(r kmsg.Response) {
		resp := r.(*kmsg.ListPartitionReassignmentsResponse)
		if resp.ErrorCode != 0 {
			return
		}
		want := map[string]bool{}
		for _, tp := range m.e.log.committed.Topics() {
			for i, p := range tp.Partitions {
				if !p.Reassigning() {
					continue
				}
				if req.Topics != nil && (tp.Name != req.Topics[0].Topic || !slices.Contains(req.Topics[0].Partitions, int32(i))) {
					continue
				}
				want[fmt.Sprintf("%s-%d %v %v %v", tp.Name, i, int32s(p.Replicas), int32s(p.AddingReplicas), int32s(p.RemovingReplicas))] = true
			}
		}
		got := map[string]bool{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				got[fmt.Sprintf("%s-%d %v %v %v", rt.Topic, rp.Partition, rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas)] = true
			}
		}
		if !maps.Equal(got, want) {
			m.t.Fatalf("listed %v, committed %v", got, want)
		}
	})
}

// completeReassignments drives, once everything is committed, every
// reassignment whose replicas can serve to completion as brokers do: the
// leader of the moment asks, at the current epochs, for the replicas of
// the target that can serve to join the ISR (which, with the last replica
// added, moves the leadership off a replica being removed, keeping it in
// the ISR), then for the ISR without the replicas being removed, which
// completes it. Two changes at most.
func (m *model) completeReassignments() {
	e, t := m.e, m.t
	if !e.c.Active() {
		e.activate()
		e.log.commit(-1)
	}
	serves := func(id port.NodeID) bool {
		b, ok := e.log.committed.Broker(id)
		return ok && !b.Fenced && !b.ShuttingDown
	}
	for _, tp := range e.log.committed.Topics() {
		for i := range tp.Partitions {
			for round := 0; ; round++ {
				now, _ := e.log.committed.TopicByID(tp.ID)
				p := now.Partitions[i]
				if !p.Reassigning() || p.Leader == metadata.NoLeader {
					break
				}
				target := p.Replicas[:len(p.Replicas)-len(p.RemovingReplicas)]
				isr := slices.Clone(p.ISR)
				due := reassignmentDue(p, p.ISR, m.minInsync)
				if due {
					isr = slices.DeleteFunc(isr, func(r port.NodeID) bool { return slices.Contains(p.RemovingReplicas, r) })
				} else {
					for _, r := range target {
						if !slices.Contains(isr, r) && serves(r) {
							isr = append(isr, r)
						}
					}
					if !reassignmentDue(p, isr, m.minInsync) {
						break // the target cannot serve: it waits
					}
				}
				if round == 2 {
					t.Fatalf("%s-%d still being reassigned after two changes: %s", now.Name, i, state(p))
				}
				asked := make([]int32, len(isr))
				for j, r := range isr {
					asked[j] = int32(r)
				}
				resp := e.call(e.alterReq(3, now.Name, int32(i), asked...)).(*kmsg.AlterPartitionResponse)
				after, _ := e.log.committed.Partition(tp.ID, int32(i))
				if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
					t.Fatalf("%s-%d: AlterPartition %v answered %+v", now.Name, i, asked, resp)
				}
				out := resp.Topics[0].Partitions[0]
				switch {
				case due && (after.Reassigning() || !slices.Equal(after.Replicas, target) || after.Leader != p.Leader || !answers(out, after, asked)):
					t.Fatalf("%s-%d: dropping the replicas removed (ISR %v) from %s gave %s, answered %+v", now.Name, i, asked, state(p), state(after), out)
				case !due && (out.ErrorCode != 0 && out.ErrorCode != kerr.NewLeaderElected.Code || !sameMembers(after.ISR, isr)):
					t.Fatalf("%s-%d: the target joining (ISR %v) %s gave %s, answered %+v", now.Name, i, asked, state(p), state(after), out)
				}
				if err := e.checkImage(e.log.committed); err != nil {
					t.Fatalf("%v", err)
				}
			}
		}
	}
}

package controller

import (
	"slices"
	"testing"

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
//   - leader and partition epochs never go back;
//   - every request is answered once, and once nothing is pending, all
//     are; what an answer acknowledges is committed when it leaves
//     (topics created, broker epochs, unfencing, producer id blocks,
//     which never overlap).
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
	// epochsSeen: the highest leader and partition epochs committed.
	epochsSeen map[partKey][2]int32
	// pids are the producer id blocks handed out.
	pids [][2]int64
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
	m := &model{t: t, epochs: map[int32]int64{}, incarnations: map[int32]byte{}, epochsSeen: map[partKey][2]int32{}}
	m.e = newEnv(t, func(c *Config) {
		c.DefaultPartitions = int32(rapid.IntRange(1, 3).Draw(t, "defaultPartitions"))
		c.DefaultReplicationFactor = int16(rapid.IntRange(1, 3).Draw(t, "defaultRF"))
		c.DeleteTopicEnable = rapid.Bool().Draw(t, "deleteEnable")
		c.AutoLeaderRebalance = rapid.Bool().Draw(t, "rebalance")
		c.RebalanceIntervalMs = 3000
	})
	// Start with some brokers registered and unfenced.
	for _, id := range propBrokers {
		if rapid.IntRange(0, 3).Draw(t, "startBroker") == 0 {
			continue
		}
		r := m.e.register(id, 0)
		m.epochs[id] = r.BrokerEpoch
		m.e.heartbeat(id, r.BrokerEpoch)
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

func (m *model) step() {
	e, t := m.e, m.t
	switch rapid.IntRange(0, 14).Draw(t, "action") {
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
				if slices.Contains(p.ISR, r) || b.Fenced || b.ShuttingDown || p.Leader == -1 {
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
	if err := checkImage(e.log.committed); err != nil {
		t.Fatalf("committed image: %v", err)
	}
	if e.c.Active() {
		if err := checkImage(e.c.view); err != nil {
			t.Fatalf("controller view: %v", err)
		}
	}
	for _, tp := range e.log.committed.Topics() {
		for i, p := range tp.Partitions {
			k := partKey{tp.ID, int32(i)}
			if old, ok := m.epochsSeen[k]; ok && (p.LeaderEpoch < old[0] || p.PartitionEpoch < old[1]) {
				t.Fatalf("%s-%d epochs went back: %d/%d after %d/%d", tp.Name, i, p.LeaderEpoch, p.PartitionEpoch, old[0], old[1])
			}
			m.epochsSeen[k] = [2]int32{p.LeaderEpoch, p.PartitionEpoch}
		}
	}
	if len(e.log.pending) == 0 && m.answered != m.sent {
		t.Fatalf("%d requests sent, %d answered, nothing pending", m.sent, m.answered)
	}
}

package group

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"
)

// The KIP-848 property test drives one consumer group with random
// clients heartbeating, leaving, crashing and coming back, topics being
// created, grown and deleted, writes held, failed and committed, time
// passing and coordinators failing over, and checks after every step:
//   - no partition is held by two members at once, counting what a member
//     still has to revoke (the coordinator also asserts it);
//   - what a client owns is held for it by the coordinator, so no two
//     clients that are members own a partition at once;
//   - the epoch a member is given never goes back, failovers included,
//     and a new coordinator's group epoch is never below an epoch given;
// and at the end, once the clients are well-behaved and nothing fails,
// that every member converges to its target assignment and the group is
// stable.

type cgActor struct {
	name     string
	id       string
	instance *string
	topics   []string
	regex    *string
	assignor *string
	incarn   int
	epoch    int32
	owned    assignment
	waiting  bool
	crashed  bool
}

type cgModel struct {
	t        *rapid.T
	h        *harness
	actors   []*cgActor
	topicGn  map[string]int // topic generation: a deleted topic comes back with a new id
	maxGiven int32
}

func (m *cgModel) topicID(name string) topicID {
	id := tid(name)
	id[14] = byte(m.topicGn[name])
	return id
}

func (m *cgModel) setTopic(name string, partitions int32) {
	host := m.h.host
	host.topics = slices.DeleteFunc(host.topics, func(t TopicMeta) bool { return t.Name == name })
	if partitions > 0 {
		host.topics = append(host.topics, TopicMeta{Name: name, ID: m.topicID(name), Partitions: partitions})
		slices.SortFunc(host.topics, func(a, b TopicMeta) int {
			if a.Name < b.Name {
				return -1
			}
			if a.Name > b.Name {
				return 1
			}
			return 0
		})
	}
}

func (m *cgModel) reset(a *cgActor, newID bool) {
	if newID {
		a.incarn++
	}
	a.id = fmt.Sprintf("%s-%d", a.name, a.incarn)
	a.epoch, a.owned = 0, assignment{}
}

// send heartbeats for a (joining at epoch 0).
func (m *cgModel) send(a *cgActor, epoch int32) {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group, req.MemberID, req.MemberEpoch, req.InstanceID = "g", a.id, epoch, a.instance
	req.RebalanceTimeoutMillis = -1
	if epoch == joinEpoch {
		req.RebalanceTimeoutMillis = 20000
		req.SubscribedTopicNames, req.SubscribedTopicRegex, req.ServerAssignor = a.topics, a.regex, a.assignor
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	} else if epoch > 0 {
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		for _, t := range a.owned.sortedTopics() {
			req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: t, Partitions: a.owned[t]})
		}
	}
	a.waiting = true
	sentID := a.id
	m.h.c.ConsumerGroupHeartbeat(m.h.now, Client{ID: a.name, Host: "/h"}, req, func(r *kmsg.ConsumerGroupHeartbeatResponse) {
		a.waiting = false
		if a.crashed || a.id != sentID {
			return
		}
		switch {
		case r.ErrorCode == 0 && epoch < 0:
			m.reset(a, true) // a v1 client takes a fresh member id after leaving
		case r.ErrorCode == 0:
			if r.MemberEpoch < a.epoch {
				m.t.Fatalf("%s: epoch went back from %d to %d", a.id, a.epoch, r.MemberEpoch)
			}
			a.epoch = r.MemberEpoch
			m.maxGiven = max(m.maxGiven, r.MemberEpoch)
			if r.Assignment != nil {
				a.owned = respAssignment(r) // what is not in it is revoked at once
			}
		case r.ErrorCode == kerr.UnknownMemberID.Code:
			m.reset(a, true)
		case r.ErrorCode == kerr.FencedMemberEpoch.Code:
			m.reset(a, false)
		}
	})
	m.h.flush()
}

func (m *cgModel) check() {
	gi, ok := m.h.c.ConsumerGroup("g")
	if !ok {
		return
	}
	holds := map[string]assignment{}
	seen := map[idPartition]string{}
	for _, mi := range gi.Members {
		h := assignment(mi.Assigned).union(assignment(mi.Pending))
		holds[mi.ID] = h
		for _, tp := range h.partitions() {
			if o, dup := seen[tp]; dup {
				m.t.Fatalf("partition %d held by %s and %s", tp.partition, o, mi.ID)
			}
			seen[tp] = mi.ID
		}
	}
	for _, a := range m.actors {
		if h, member := holds[a.id]; member && !a.crashed && !a.owned.subsetOf(h) {
			m.t.Fatalf("%s owns %v but the coordinator holds %v for it", a.id, a.owned, h)
		}
	}
}

func (m *cgModel) failover() {
	m.h.host.failWith = kerr.NotCoordinator
	m.h.host.flush()
	m.h.host.failWith = nil
	m.h.c.Unload(m.h.now, 0, func(string) bool { return true })
	m.h.reload()
	for _, a := range m.actors {
		if a.waiting {
			m.t.Fatalf("%s still waits after its coordinator went", a.id)
		}
	}
	if gi, ok := m.h.c.ConsumerGroup("g"); m.maxGiven > 0 && (!ok || gi.Epoch < m.maxGiven) {
		m.t.Fatalf("after failover the group epoch is %d (exists %v), but epoch %d was given", gi.Epoch, ok, m.maxGiven)
	}
}

func TestConsumerGroupProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		cfg := testConfig()
		cfg.ConsumerMaxSize = int32(rapid.IntRange(2, 6).Draw(rt, "max_size"))
		cfg.OffsetsRetentionCheckIntervalMs = 0
		m := &cgModel{t: rt, h: newHarness(t, cfg), topicGn: map[string]int{}}
		m.h.t = rt
		topicNames := []string{"t0", "t1", "t2"}
		for _, tn := range topicNames {
			m.setTopic(tn, int32(rapid.IntRange(0, 6).Draw(rt, "partitions")))
		}
		n := rapid.IntRange(1, 5).Draw(rt, "actors")
		for i := 0; i < n; i++ {
			a := &cgActor{name: fmt.Sprintf("c%d", i)}
			if rapid.IntRange(0, 2).Draw(rt, "static") == 0 {
				a.instance = strp(a.name)
			}
			switch rapid.IntRange(0, 3).Draw(rt, "subscription") {
			case 0:
				a.regex = strp("t[01]")
			default:
				a.topics = rapid.SliceOfDistinct(rapid.SampledFrom(topicNames), func(s string) string { return s }).Draw(rt, "topics")
			}
			a.assignor = rapid.SampledFrom([]*string{nil, strp("uniform"), strp("range")}).Draw(rt, "assignor")
			m.reset(a, false)
			m.actors = append(m.actors, a)
		}
		actor := func() *cgActor { return rapid.SampledFrom(m.actors).Draw(rt, "actor") }
		beat := func(rt *rapid.T) {
			if a := actor(); !a.waiting {
				a.crashed = false
				m.send(a, a.epoch)
			}
		}
		rt.Repeat(map[string]func(*rapid.T){
			"beat1": beat, "beat2": beat, "beat3": beat, "beat4": beat,
			"leave": func(rt *rapid.T) {
				if a := actor(); !a.waiting && a.epoch > 0 {
					e := int32(leaveEpoch)
					if a.instance != nil && rapid.Bool().Draw(rt, "static_leave") {
						e = staticLeaveEpoch
					}
					a.owned = assignment{} // a leaving client stops consuming first
					m.send(a, e)
				}
			},
			"crash": func(rt *rapid.T) {
				a := actor()
				a.crashed = true
				m.reset(a, true)
			},
			"topic": func(rt *rapid.T) {
				tn := rapid.SampledFrom(topicNames).Draw(rt, "topic")
				old, exists := m.h.host.Topic(tn)
				switch {
				case exists && rapid.IntRange(0, 3).Draw(rt, "delete") == 0:
					m.setTopic(tn, 0)
					m.topicGn[tn]++
				case exists:
					m.setTopic(tn, old.Partitions+int32(rapid.IntRange(1, 3).Draw(rt, "grow")))
				default:
					m.setTopic(tn, int32(rapid.IntRange(1, 4).Draw(rt, "create")))
				}
			},
			"hold": func(rt *rapid.T) { m.h.hold = true },
			"commit": func(rt *rapid.T) {
				m.h.hold = false
				if rapid.IntRange(0, 3).Draw(rt, "fail") == 0 {
					m.h.host.failWith = kerr.CoordinatorNotAvailable
				}
				m.h.host.flush()
				m.h.host.failWith = nil
			},
			"time":     func(rt *rapid.T) { m.h.advance(int64(rapid.IntRange(0, 20000).Draw(rt, "ms"))) },
			"failover": func(rt *rapid.T) { m.failover() },
			"":         func(rt *rapid.T) { m.check() },
		})
		// Quiet: writes go through, crashed members expire, live
		// clients heartbeat every second until everyone is reconciled.
		m.h.hold = false
		m.h.host.flush()
		for _, a := range m.actors {
			a.crashed = false
		}
		for i := 0; i < 120; i++ {
			m.h.advance(1000)
			for _, a := range m.actors {
				if !a.waiting {
					m.send(a, a.epoch)
				}
			}
			m.check()
		}
		gi, _ := m.h.c.ConsumerGroup("g")
		if gi.State != ConsumerStable && gi.State != ConsumerEmpty {
			rt.Fatalf("group did not converge: %+v", gi)
		}
		for _, mi := range gi.Members {
			if !assignment(mi.Assigned).equal(assignment(mi.Target)) || len(mi.Pending) != 0 {
				rt.Fatalf("member %s not at its target: %+v", mi.ID, mi)
			}
			for _, a := range m.actors {
				if a.id == mi.ID && !a.owned.equal(assignment(mi.Target)) {
					rt.Fatalf("client %s owns %v, target %v", a.id, a.owned, mi.Target)
				}
			}
		}
	})
}

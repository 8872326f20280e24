package workload

import (
	"maps"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/sim/fault"
	"github.com/weirmq/weir/sim/history"
)

// admin creates the setup topics and, during the run, adds partitions,
// refreshes metadata, and cycles churn topics through create and delete
// under the same names, so that a name comes back as a new topic (a new
// id). It does one thing at a time, so its operations on a name reach the
// controller in order. Its requests go to any broker, which forwards them to
// the controller.
type admin struct {
	*router
	busy bool
	// dirty names churn topics whose existence is unknown (an operation's
	// outcome was lost): the next action on them is a delete.
	dirty map[string]bool
}

func newAdmin(w *World) *admin {
	return &admin{router: newRouter(w, "admin"), dirty: map[string]bool{}}
}

func (a *admin) start() { a.w.every(a.rnd, a.w.cfg.AdminEvery, &a.busy, a.act) }

func (a *admin) act() {
	switch a.rnd.Pick(4) {
	case 0:
		a.refresh(func() {})
	case 1:
		a.addPartitions()
	default:
		a.churn()
	}
}

// churn moves one churn topic along its cycle.
func (a *admin) churn() {
	var churn []*Topic
	for _, t := range a.w.Topics {
		if t.Churn {
			churn = append(churn, t)
		}
	}
	if len(churn) == 0 {
		return
	}
	t := churn[a.rnd.Pick(len(churn))]
	if t.Exists || a.dirty[t.Name] {
		a.delete(t)
		return
	}
	t.Partitions = int32(a.rnd.Range(1, 3))
	a.create(t, a.w.cfg.ChurnConfigs, func(bool) {})
}

// create creates t and reports whether it was created. Version 7 returns
// the new topic's id, which ties later operations to this incarnation.
func (a *admin) create(t *Topic, configs map[string]string, done func(bool)) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = t.Name
	rt.NumPartitions = t.Partitions
	rt.ReplicationFactor = []int16{-1, 1}[a.rnd.Pick(2)]
	if rf, minISR := a.w.cfg.EffectiveReplication(); rf > 0 {
		// A cluster run: the controller places the replicas.
		rt.ReplicationFactor = rf
		configs = maps.Clone(configs)
		if configs == nil {
			configs = map[string]string{}
		}
		configs["min.insync.replicas"] = strconv.Itoa(int(minISR))
	}
	keys := make([]string, 0, len(configs))
	for k := range configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(configs[k])
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	op := &history.Admin{Kind: history.CreateTopic, Topic: t.Name, Partitions: t.Partitions}
	a.w.History.StartAdmin(op)
	op.Call = a.w.Loop.Now()
	a.busy = true
	a.w.counts.Inc(fault.AdminCreateTopic)
	a.any(req, func(r reply) {
		a.busy = false
		resp, ok := r.resp.(*kmsg.CreateTopicsResponse)
		switch {
		case r.err != nil:
			op.Err = r.err.Error()
			a.dirty[t.Name] = true
		case !ok || len(resp.Topics) != 1:
			a.w.fail("protocol", "admin: create topics response does not answer its one topic")
		case resp.Topics[0].ErrorCode == 0:
			op.Outcome, op.Return = history.OK, a.w.Loop.Now()
			op.TopicID = resp.Topics[0].TopicID
			t.ID, t.Exists = op.TopicID, true
			delete(a.dirty, t.Name)
		default:
			op.Outcome, op.Return = history.Failed, a.w.Loop.Now()
			op.Err = kerr.ErrorForCode(resp.Topics[0].ErrorCode).Error()
			a.dirty[t.Name] = true
		}
		a.w.trace("admin: create %s (%d partitions) -> %s %s %s", t.Name, t.Partitions, op.Outcome, op.TopicID, op.Err)
		done(op.Outcome == history.OK)
	})
}

// delete deletes t, by id (v6) when known, else by name.
func (a *admin) delete(t *Topic) {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = a.version(1, 6)
	req.TimeoutMillis = 10000
	byID := req.Version >= 6 && t.Exists && !a.dirty[t.Name] && a.rnd.Coin()
	switch {
	case byID:
		dt := kmsg.NewDeleteTopicsRequestTopic()
		dt.TopicID = t.ID
		req.Topics = append(req.Topics, dt)
	case req.Version >= 6:
		dt := kmsg.NewDeleteTopicsRequestTopic()
		dt.Topic = kmsg.StringPtr(t.Name)
		req.Topics = append(req.Topics, dt)
	default:
		req.TopicNames = []string{t.Name}
	}
	op := &history.Admin{Kind: history.DeleteTopic, Topic: t.Name, TopicID: t.ID}
	a.w.History.StartAdmin(op)
	op.Call = a.w.Loop.Now()
	// Producers and consumers leave it from now on.
	t.Exists = false
	a.busy = true
	a.w.counts.Inc(fault.AdminDeleteTopic)
	a.any(req, func(r reply) {
		a.busy = false
		resp, ok := r.resp.(*kmsg.DeleteTopicsResponse)
		switch {
		case r.err != nil:
			op.Err = r.err.Error()
			a.dirty[t.Name] = true
		case !ok || len(resp.Topics) != 1:
			a.w.fail("protocol", "admin: delete topics response does not answer its one topic")
		case resp.Topics[0].ErrorCode == 0:
			op.Outcome, op.Return = history.OK, a.w.Loop.Now()
			delete(a.dirty, t.Name)
		default:
			err := kerr.ErrorForCode(resp.Topics[0].ErrorCode)
			op.Outcome, op.Return, op.Err = history.Failed, a.w.Loop.Now(), err.Error()
			if err == kerr.UnknownTopicOrPartition || err == kerr.UnknownTopicID {
				delete(a.dirty, t.Name) // gone already
			} else {
				a.dirty[t.Name] = true
			}
		}
		a.w.trace("admin: delete %s -> %s %s", t.Name, op.Outcome, op.Err)
	})
}

// addPartitions grows a live topic by one or two partitions.
func (a *admin) addPartitions() {
	topics := a.w.live()
	if len(topics) == 0 {
		return
	}
	t := topics[a.rnd.Pick(len(topics))]
	if t.Partitions >= 8 {
		return
	}
	count := t.Partitions + int32(a.rnd.Range(1, 2))
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.Version = a.version(0, 3)
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = t.Name, count
	req.Topics = append(req.Topics, rt)
	op := &history.Admin{Kind: history.CreatePartitions, Topic: t.Name, TopicID: t.ID, Partitions: count}
	a.w.History.StartAdmin(op)
	op.Call = a.w.Loop.Now()
	a.busy = true
	a.w.counts.Inc(fault.AdminCreatePartitions)
	a.any(req, func(r reply) {
		a.busy = false
		resp, ok := r.resp.(*kmsg.CreatePartitionsResponse)
		switch {
		case r.err != nil:
			op.Err = r.err.Error()
		case !ok || len(resp.Topics) != 1:
			a.w.fail("protocol", "admin: create partitions response does not answer its one topic")
		case resp.Topics[0].ErrorCode == 0:
			op.Outcome, op.Return = history.OK, a.w.Loop.Now()
			if t.Name == op.Topic && t.ID == op.TopicID {
				t.Partitions = max(t.Partitions, count)
			}
		default:
			op.Outcome, op.Return = history.Failed, a.w.Loop.Now()
			op.Err = kerr.ErrorForCode(resp.Topics[0].ErrorCode).Error()
		}
		a.w.trace("admin: create partitions %s -> %d: %s %s", t.Name, count, op.Outcome, op.Err)
	})
}

// refresh reads metadata for every topic and updates partition counts and
// ids of topics clients already know (the catalogue is only the clients'
// belief; checkers never rely on it).
func (a *admin) refresh(done func()) {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = a.version(1, 12)
	a.busy = true
	a.any(req, func(r reply) {
		a.busy = false
		resp, ok := r.resp.(*kmsg.MetadataResponse)
		if r.err != nil || !ok {
			done()
			return
		}
		a.learn(resp)
		for _, mt := range resp.Topics {
			if mt.Topic == nil || mt.ErrorCode != 0 {
				continue
			}
			t := a.w.topic(*mt.Topic)
			if t == nil || !t.Exists {
				continue
			}
			if req.Version >= 10 && mt.TopicID != t.ID {
				continue // another incarnation than the one we know
			}
			t.Partitions = max(t.Partitions, int32(len(mt.Partitions)))
		}
		done()
	})
}

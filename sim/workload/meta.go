package workload

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/sim/history"
	"github.com/weirmq/weir/sim/sched"
)

// MetaPrefix starts the names of the metadata workload's topics.
const MetaPrefix = "meta-"

// Meta is the metadata workload of a cluster run: CreateTopics,
// DeleteTopics and CreatePartitions sent to random nodes (which forward
// them to the controller), each recorded with what its client learned.
type Meta struct {
	w       *World
	clients []*client
	brokers int
	Ops     []*history.MetaOp
	next    int
	// names lists topics with a create that may have succeeded, and
	// maxCount each topic's highest partition count asked for.
	names    []string
	maxCount map[string]int32
}

// NewMeta returns a metadata workload over the world's nodes, brokers of
// which have the broker role.
func NewMeta(w *World, brokers int) *Meta {
	m := &Meta{w: w, brokers: brokers, maxCount: map[string]int32{}}
	for i := range w.Nodes {
		m.clients = append(m.clients, newClientTo(w, fmt.Sprintf("meta-n%d", i), i))
	}
	return m
}

// Start issues operations until the world stops being active.
func (m *Meta) Start() { m.tick() }

func (m *Meta) tick() {
	if !m.w.active {
		return
	}
	r := m.w.rnd
	switch pick := r.Pick(5); {
	case pick < 2 || len(m.names) == 0:
		m.create(r.Pick(len(m.clients)), int32(r.Range(1, 3)), int16(r.Range(1, int64(min(3, m.brokers)))), nil)
	case pick == 2:
		m.delete(r.Pick(len(m.clients)), m.names[r.Pick(len(m.names))])
	case pick == 3:
		name := m.names[r.Pick(len(m.names))]
		m.addPartitions(r.Pick(len(m.clients)), name, m.maxCount[name]+int32(r.Range(1, 2)))
	default:
		m.electLeaders(r.Pick(len(m.clients)), m.names[r.Pick(len(m.names))])
	}
	m.w.Loop.After(r.Range(50*sched.Millisecond, 400*sched.Millisecond), m.tick)
}

func (m *Meta) record(kind history.MetaKind, node int, topic string, partitions int32) *history.MetaOp {
	op := &history.MetaOp{Kind: kind, Topic: topic, Partitions: partitions, Node: node, Start: m.w.Loop.Now()}
	m.Ops = append(m.Ops, op)
	m.w.trace("meta: %s %s (%d partitions) via node %d", kind, topic, partitions, node)
	return op
}

// finish records an operation's outcome from its error code, or from the
// call's error when no response came.
func (m *Meta) finish(op *history.MetaOp, code int16, callErr error) {
	op.End = m.w.Loop.Now()
	switch err := kerr.ErrorForCode(code); {
	case callErr != nil:
		op.Outcome, op.Err = history.MetaUnknown, callErr.Error()
	case err == nil:
		op.Outcome = history.MetaOK
	case definite(err):
		op.Outcome, op.Err = history.MetaFailed, err.Error()
	default:
		op.Outcome, op.Err = history.MetaUnknown, err.Error()
	}
	m.w.trace("meta: %s %s -> %v %s", op.Kind, op.Topic, op.Outcome, op.Err)
}

// definite reports whether an error means the controller changed nothing.
func definite(err error) bool {
	switch err {
	case kerr.TopicAlreadyExists, kerr.InvalidPartitions, kerr.InvalidReplicationFactor,
		kerr.UnknownTopicOrPartition, kerr.InvalidTopicException, kerr.InvalidRequest,
		kerr.InvalidReplicaAssignment:
		return true
	}
	return false
}

func (m *Meta) create(node int, partitions int32, rf int16, done func(*history.MetaOp)) {
	m.next++
	name := fmt.Sprintf("%s%d", MetaPrefix, m.next)
	op := m.record(history.MetaCreate, node, name, partitions)
	m.names = append(m.names, name)
	m.maxCount[name] = partitions
	c := m.clients[node]
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(c.version(2, 7))
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	req.Topics = append(req.Topics, rt)
	c.do(req, false, func(rep reply) {
		var code int16
		if rep.err == nil {
			resp := rep.resp.(*kmsg.CreateTopicsResponse)
			if len(resp.Topics) != 1 {
				m.w.fail("protocol", fmt.Sprintf("CreateTopics answered %d topics for 1", len(resp.Topics)))
				return
			}
			code = resp.Topics[0].ErrorCode
		}
		m.finish(op, code, rep.err)
		if done != nil {
			done(op)
		}
	})
}

func (m *Meta) delete(node int, name string) {
	op := m.record(history.MetaDelete, node, name, 0)
	c := m.clients[node]
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.SetVersion(c.version(1, 6))
	req.TimeoutMillis = 10000
	if req.Version >= 6 {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = &name
		req.Topics = append(req.Topics, rt)
	} else {
		req.TopicNames = []string{name}
	}
	c.do(req, false, func(rep reply) {
		var code int16
		if rep.err == nil {
			resp := rep.resp.(*kmsg.DeleteTopicsResponse)
			if len(resp.Topics) != 1 {
				m.w.fail("protocol", fmt.Sprintf("DeleteTopics answered %d topics for 1", len(resp.Topics)))
				return
			}
			code = resp.Topics[0].ErrorCode
		}
		m.finish(op, code, rep.err)
	})
}

func (m *Meta) addPartitions(node int, name string, count int32) {
	op := m.record(history.MetaAddPartitions, node, name, count)
	m.maxCount[name] = max(m.maxCount[name], count)
	c := m.clients[node]
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.SetVersion(c.version(0, 3))
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = name, count
	req.Topics = append(req.Topics, rt)
	c.do(req, false, func(rep reply) {
		var code int16
		if rep.err == nil {
			resp := rep.resp.(*kmsg.CreatePartitionsResponse)
			if len(resp.Topics) != 1 {
				m.w.fail("protocol", fmt.Sprintf("CreatePartitions answered %d topics for 1", len(resp.Topics)))
				return
			}
			code = resp.Topics[0].ErrorCode
		}
		m.finish(op, code, rep.err)
	})
}

// electLeaders asks for a preferred (or, rarely, unclean) leader election
// of a topic's partitions. It changes no topic, so it is not recorded as a
// metadata operation; what it decides is checked by the metadata log
// checkers (one leader per partition per leader epoch) and the image's own
// invariants.
func (m *Meta) electLeaders(node int, name string) {
	c := m.clients[node]
	req := kmsg.NewPtrElectLeadersRequest()
	req.SetVersion(c.version(1, 2))
	req.TimeoutMillis = 10000
	if m.w.rnd.Pick(8) == 0 {
		req.ElectionType = 1
	}
	rt := kmsg.NewElectLeadersRequestTopic()
	rt.Topic = name
	for p := range m.maxCount[name] {
		rt.Partitions = append(rt.Partitions, p)
	}
	req.Topics = append(req.Topics, rt)
	c.do(req, false, func(rep reply) {
		if rep.err == nil {
			m.w.trace("meta: elect leaders %s (type %d) via node %d: %d topics answered", name, req.ElectionType, node, len(rep.resp.(*kmsg.ElectLeadersResponse).Topics))
		}
	})
}

// Probe creates a topic through each node in turn until one is
// acknowledged (liveness after the heal), then calls done.
func (m *Meta) Probe(done func()) {
	var try func(node int)
	try = func(node int) {
		if m.w.stopped {
			return
		}
		m.create(node, 1, 1, func(op *history.MetaOp) {
			if op.Outcome == history.MetaOK {
				done()
				return
			}
			m.w.Loop.After(200*sched.Millisecond, func() { try((node + 1) % len(m.clients)) })
		})
	}
	try(0)
}

// Active sets whether the workload starts new operations.
func (w *World) Active(on bool) { w.active = on }

package controller

import (
	"encoding/base64"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/port"
)

// Config is what the controller needs of the node's configuration.
type Config struct {
	SessionTimeoutMs         int64
	DefaultPartitions        int32
	DefaultReplicationFactor int16
	DeleteTopicEnable        bool
	// AutoLeaderRebalance moves leadership back to preferred leaders
	// every RebalanceIntervalMs.
	AutoLeaderRebalance bool
	RebalanceIntervalMs int64
	// ValidateTopicConfig checks a new topic's config overrides.
	ValidateTopicConfig func(overrides map[string]string) error
	// UncleanLeaderElection reports whether a topic with these config
	// overrides has unclean.leader.election.enable, set on the topic or
	// by the broker default; nil means no topic has.
	UncleanLeaderElection func(overrides map[string]string) bool
	// MinInsyncReplicas returns min.insync.replicas for a topic with these
	// config overrides, set on the topic or by the broker default; nil
	// means 1. It decides when replicas leaving an ISR become eligible
	// leaders (see eligibleLeaders).
	MinInsyncReplicas func(overrides map[string]string) int32
	// Rand returns random bits (topic and cluster ids) from the node's
	// seeded source.
	Rand func() uint64
	// ClusterID names a new cluster (cluster.id); "" draws one.
	ClusterID string
	// Logger gets what operators must hear of (unclean elections); nil
	// discards it.
	Logger *slog.Logger
}

// Proposer is the Raft log as the controller sees it.
type Proposer interface {
	// NextIndex is the log index the next proposal will get.
	NextIndex() uint64
	// Propose appends a batch; done runs once it is committed (true) or
	// can no longer be (false). It returns the batch's index, or false
	// when this node no longer leads.
	Propose(recs []metadata.Record, done func(committed bool)) (uint64, bool)
}

// Controller is the active controller's state. Inactive, it answers every
// request with NOT_CONTROLLER.
type Controller struct {
	cfg    Config
	log    Proposer
	logger *slog.Logger
	active bool
	// view is the committed image plus proposed batches.
	view *metadata.Image
	// contactMs is each broker's last heartbeat; only ever indexed.
	contactMs         map[port.NodeID]int64
	nextRebalanceMs   int64
	shutdownCompleted map[port.NodeID]bool
	// last is the newest batch proposed; an answer read from the view
	// waits for it (see Handle).
	last *batch
}

// batch is one proposal's outcome, for the answers that wait on it.
type batch struct {
	done, committed bool
	waiters         []func(committed bool)
}

// New returns an inactive controller.
func New(cfg Config, log Proposer) *Controller {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Controller{cfg: cfg, log: log, logger: logger}
}

// Activate makes this node the active controller, starting from the
// committed image (which must include every entry of earlier terms).
func (c *Controller) Activate(committed *metadata.Image, nowMs int64) {
	c.active = true
	c.view = committed.Clone()
	c.last = nil
	c.contactMs = map[port.NodeID]int64{}
	for _, b := range c.view.Brokers() {
		c.contactMs[b.ID] = nowMs // a fresh session each (see package doc)
	}
	c.nextRebalanceMs = nowMs + c.cfg.RebalanceIntervalMs
	if c.view.ClusterID() == "" {
		// The first controller of a new cluster names it.
		id := c.cfg.ClusterID
		if id == "" {
			raw := c.newTopicID()
			id = base64.RawURLEncoding.EncodeToString(raw[:])
		}
		c.propose([]metadata.Record{{Cluster: &metadata.ClusterRecord{ClusterID: id}}}, func(bool) {})
	}
}

// Deactivate drops the controller's state after leadership was lost.
func (c *Controller) Deactivate() {
	c.active, c.view, c.contactMs, c.last = false, nil, nil, nil
}

// Active reports whether this node is the active controller.
func (c *Controller) Active() bool { return c.active }

// propose applies recs to the view and proposes them; done gets the
// outcome. It reports false when leadership is already gone.
func (c *Controller) propose(recs []metadata.Record, done func(committed bool)) bool {
	b := &batch{}
	index, ok := c.log.Propose(recs, func(committed bool) {
		done(committed)
		b.done, b.committed = true, committed
		waiters := b.waiters
		b.waiters = nil
		for _, w := range waiters {
			w(committed)
		}
	})
	if !ok {
		return false
	}
	c.view.Apply(index, recs)
	c.last = b
	return true
}

// Tick runs the controller's timers: broker session expiry and the
// preferred-leader rebalance.
func (c *Controller) Tick(nowMs int64) {
	if !c.active {
		return
	}
	for _, b := range c.view.Brokers() {
		if b.Fenced || nowMs-c.contactMs[b.ID] <= c.cfg.SessionTimeoutMs {
			continue
		}
		recs := append([]metadata.Record{{FenceBroker: &metadata.BrokerEpochRecord{ID: b.ID, Epoch: b.Epoch}}},
			c.leaveBroker(b.ID, false)...)
		if !c.propose(recs, func(bool) {}) {
			return
		}
	}
	if c.cfg.AutoLeaderRebalance && nowMs >= c.nextRebalanceMs {
		c.nextRebalanceMs = nowMs + c.cfg.RebalanceIntervalMs
		if recs := c.rebalance(); len(recs) > 0 {
			c.propose(recs, func(bool) {})
		}
	}
}

// Handle serves one controller request from broker from; reply runs once,
// possibly later (after the decision is committed).
//
// An answer that proposes nothing is read from the view, which may hold
// batches not yet committed (a topic being created, a broker's unfencing);
// as in Kafka's controller, it leaves only once the newest of those is
// committed, and becomes NOT_CONTROLLER if that batch fails, so that no
// reply reveals a decision that may yet be lost.
func (c *Controller) Handle(nowMs int64, req kmsg.Request, reply func(kmsg.Response)) {
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if !c.active {
		reply(fillError(req, resp, kerr.NotController))
		return
	}
	before := c.last
	var held kmsg.Response
	holding := true
	c.dispatch(nowMs, req, resp, func(r kmsg.Response) {
		if holding {
			held = r
			return
		}
		reply(r)
	})
	holding = false
	switch {
	case held == nil:
		// The handler answers once its own batches are decided.
	case c.last != before || before == nil || before.done && before.committed:
		reply(held)
	case before.done:
		reply(ErrorResponse(req, kerr.NotController))
	default:
		before.waiters = append(before.waiters, func(committed bool) {
			if !committed {
				held = ErrorResponse(req, kerr.NotController)
			}
			reply(held)
		})
	}
}

func (c *Controller) dispatch(nowMs int64, req kmsg.Request, resp kmsg.Response, reply func(kmsg.Response)) {
	switch req := req.(type) {
	case *kmsg.BrokerRegistrationRequest:
		c.register(nowMs, req, resp.(*kmsg.BrokerRegistrationResponse), reply)
	case *kmsg.BrokerHeartbeatRequest:
		c.heartbeat(nowMs, req, resp.(*kmsg.BrokerHeartbeatResponse), reply)
	case *kmsg.CreateTopicsRequest:
		c.createTopics(req, resp.(*kmsg.CreateTopicsResponse), reply)
	case *kmsg.DeleteTopicsRequest:
		c.deleteTopics(req, resp.(*kmsg.DeleteTopicsResponse), reply)
	case *kmsg.CreatePartitionsRequest:
		c.createPartitions(req, resp.(*kmsg.CreatePartitionsResponse), reply)
	case *kmsg.ElectLeadersRequest:
		c.electLeaders(req, resp.(*kmsg.ElectLeadersResponse), reply)
	case *kmsg.AllocateProducerIDsRequest:
		c.allocateProducerIDs(req, resp.(*kmsg.AllocateProducerIDsResponse), reply)
	case *kmsg.AlterPartitionRequest:
		c.alterPartition(req, resp.(*kmsg.AlterPartitionResponse), reply)
	case *kmsg.AlterPartitionAssignmentsRequest:
		c.alterPartitionReassignments(req, resp.(*kmsg.AlterPartitionAssignmentsResponse), reply)
	case *kmsg.ListPartitionReassignmentsRequest:
		c.listPartitionReassignments(req, resp.(*kmsg.ListPartitionReassignmentsResponse), reply)
	default:
		reply(fillError(req, resp, kerr.UnsupportedVersion))
	}
}

// ErrorResponse answers a controller request with err for every item.
func ErrorResponse(req kmsg.Request, err *kerr.Error) kmsg.Response {
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	return fillError(req, resp, err)
}

// fillError fills resp with err for every item of req.
func fillError(req kmsg.Request, resp kmsg.Response, err *kerr.Error) kmsg.Response {
	switch resp := resp.(type) {
	case *kmsg.BrokerRegistrationResponse:
		resp.ErrorCode, resp.BrokerEpoch = err.Code, -1
	case *kmsg.BrokerHeartbeatResponse:
		resp.ErrorCode, resp.IsFenced = err.Code, true
	case *kmsg.AllocateProducerIDsResponse:
		resp.ErrorCode = err.Code
	case *kmsg.AlterPartitionResponse:
		// The top-level error alone, as Kafka's
		// AlterPartitionRequest.getErrorResponse.
		resp.ErrorCode, resp.Topics = err.Code, nil
	case *kmsg.ListPartitionReassignmentsResponse:
		resp.ErrorCode, resp.Topics = err.Code, nil
	case *kmsg.AlterPartitionAssignmentsResponse:
		// The top-level error and each partition's, as Kafka's
		// AlterPartitionReassignmentsRequest.getErrorResponse.
		resp.ErrorCode, resp.ErrorMessage, resp.Topics = err.Code, nil, nil
		for _, t := range req.(*kmsg.AlterPartitionAssignmentsRequest).Topics {
			rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, err.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	case *kmsg.ElectLeadersResponse:
		// v0 has no top-level error code: each partition carries it, as
		// in Kafka's ElectLeadersRequest.getErrorResponse.
		resp.ErrorCode = err.Code
		resp.Topics = nil
		for _, t := range req.(*kmsg.ElectLeadersRequest).Topics {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewElectLeadersResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, err.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	case *kmsg.CreateTopicsResponse:
		resp.Topics = nil
		for _, t := range req.(*kmsg.CreateTopicsRequest).Topics {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, err.Code
			resp.Topics = append(resp.Topics, rt)
		}
	case *kmsg.DeleteTopicsResponse:
		r := req.(*kmsg.DeleteTopicsRequest)
		resp.Topics = nil
		for _, t := range r.Topics {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, err.Code
			resp.Topics = append(resp.Topics, rt)
		}
		for _, name := range r.TopicNames {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = &name, err.Code
			resp.Topics = append(resp.Topics, rt)
		}
	case *kmsg.CreatePartitionsResponse:
		resp.Topics = nil
		for _, t := range req.(*kmsg.CreatePartitionsRequest).Topics {
			rt := kmsg.NewCreatePartitionsResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, err.Code
			resp.Topics = append(resp.Topics, rt)
		}
	}
	return resp
}

// usable reports whether a broker may lead: registered, unfenced and not
// shutting down.
func (c *Controller) usable(id port.NodeID) bool {
	b, ok := c.view.Broker(id)
	return ok && !b.Fenced && !b.ShuttingDown
}

// barrier calls done once every wait it handed out has finished.
type barrier struct {
	left int
	done func()
}

func newBarrier(done func()) *barrier { return &barrier{left: 1, done: done} }

func (b *barrier) add() func() {
	b.left++
	return b.release
}

func (b *barrier) release() {
	b.left--
	if b.left == 0 {
		b.done()
	}
}

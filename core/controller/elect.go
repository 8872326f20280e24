package controller

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/bugs"
	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/port"
)

// Election types of ElectLeaders.
const (
	electPreferred int8 = 0
	electUnclean   int8 = 1
)

// electLeaders handles ElectLeaders (v0 means a preferred election). No
// topics means every partition, and then, as in Kafka, partitions that
// need no election are left out of the response.
func (c *Controller) electLeaders(req *kmsg.ElectLeadersRequest, resp *kmsg.ElectLeadersResponse, reply func(kmsg.Response)) {
	type target struct {
		topic string
		parts []int32
	}
	all := req.Topics == nil
	var targets []target
	if all {
		for _, t := range c.view.Topics() {
			tg := target{topic: t.Name}
			for i := range t.Partitions {
				tg.parts = append(tg.parts, int32(i))
			}
			targets = append(targets, tg)
		}
	}
	for _, t := range req.Topics {
		targets = append(targets, target{topic: t.Topic, parts: t.Partitions})
	}
	type key struct {
		topic string
		part  int32
	}
	// A partition named twice is elected once: two records computed from
	// the same state would not follow each other.
	results := map[key]error{}
	var recs []metadata.Record
	var elected []*kmsg.ElectLeadersResponseTopicPartition
	for _, tg := range targets {
		rt := kmsg.NewElectLeadersResponseTopic()
		rt.Topic = tg.topic
		t, known := c.view.Topic(tg.topic)
		for _, p := range tg.parts {
			rp := kmsg.NewElectLeadersResponseTopicPartition()
			rp.Partition = p
			err, dup := results[key{tg.topic, p}]
			switch {
			case dup:
			case !known || p < 0 || int(p) >= len(t.Partitions):
				err = fmt.Errorf("%w: No such partition as %s-%d", kerr.UnknownTopicOrPartition, tg.topic, p)
			default:
				var rec metadata.Record
				if rec, err = c.elect(t, p, req.ElectionType); err == nil {
					recs = append(recs, rec)
				}
			}
			results[key{tg.topic, p}] = err
			if all && errors.Is(err, kerr.ElectionNotNeeded) {
				continue
			}
			if err != nil {
				setErr(&rp.ErrorCode, &rp.ErrorMessage, err)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if rp := &resp.Topics[i].Partitions[j]; rp.ErrorCode == 0 {
				elected = append(elected, rp)
			}
		}
	}
	if len(recs) == 0 {
		reply(resp)
		return
	}
	if !c.propose(recs, func(committed bool) {
		if !committed {
			resp.ErrorCode = kerr.NotController.Code
			for _, rp := range elected {
				rp.ErrorCode = kerr.NotController.Code
			}
		}
		reply(resp)
	}) {
		reply(fillError(req, resp, kerr.NotController))
	}
}

// elect returns the change that makes partition p of t follow the
// election type, or why it cannot.
func (c *Controller) elect(t metadata.Topic, p int32, electionType int8) (metadata.Record, error) {
	cur := t.Partitions[p]
	next := cur
	switch electionType {
	case electPreferred:
		preferred := cur.Replicas[0]
		if cur.Leader == preferred {
			return metadata.Record{}, fmt.Errorf("%w: %d already leads", kerr.ElectionNotNeeded, preferred)
		}
		if !slices.Contains(cur.ISR, preferred) || !c.usable(preferred) {
			return metadata.Record{}, fmt.Errorf("%w: preferred replica %d is not in the ISR or cannot lead", kerr.PreferredLeaderNotAvailable, preferred)
		}
		next.Leader = preferred
	case electUnclean:
		if cur.Leader != -1 {
			return metadata.Record{}, fmt.Errorf("%w: the partition has a leader", kerr.ElectionNotNeeded)
		}
		if next = c.electLeader(t.Name, p, cur, metadata.NoLeader, true); next.Leader == -1 {
			return metadata.Record{}, fmt.Errorf("%w: no replica can lead", kerr.EligibleLeadersNotAvailable)
		}
	default:
		return metadata.Record{}, fmt.Errorf("%w: unknown election type %d", kerr.InvalidRequest, electionType)
	}
	rec, _ := c.change(t, p, cur, next) // the leader changes
	return rec, nil
}

// rebalance moves leadership back to each preferred replica that is in
// the ISR and can lead (auto.leader.rebalance.enable).
func (c *Controller) rebalance() []metadata.Record {
	var recs []metadata.Record
	for _, t := range c.view.Topics() {
		for i := range t.Partitions {
			if rec, err := c.elect(t, int32(i), electPreferred); err == nil {
				recs = append(recs, rec)
			}
		}
	}
	return recs
}

// electLeader returns p led by the first replica, in preference order,
// that is in the ISR and can lead, other than except. With none, the first
// eligible leader replica (ELR) that can lead takes over: it holds every
// committed record (see eligibleLeaders), the ISR restarts from it alone
// and it leaves the ELR. With none either, p has no leader, unless an
// unclean election is asked for (ElectLeaders type 1) or the topic allows
// one (unclean.leader.election.enable): then the first replica that can
// lead takes over and the ISR restarts from it alone.
func (c *Controller) electLeader(topic string, partition int32, p metadata.Partition, except port.NodeID, unclean bool) metadata.Partition {
	next := p
	next.Leader = metadata.NoLeader
	canLead := func(r port.NodeID) bool { return r != except && c.usable(r) }
	for _, r := range p.Replicas {
		if slices.Contains(p.ISR, r) && canLead(r) {
			next.Leader = r
			return next
		}
	}
	for _, r := range p.Replicas {
		if slices.Contains(p.ELR, r) && canLead(r) {
			next.Leader, next.ISR = r, []port.NodeID{r}
			next.ELR = without(p.ELR, r)
			return next
		}
	}
	if !unclean && !c.uncleanAllowed(topic) && !bugs.On(bugs.ElectOutsideISR) {
		return next
	}
	for _, r := range p.Replicas {
		if canLead(r) {
			next.Leader, next.ISR = r, []port.NodeID{r}
			// Records acknowledged by the old ISR alone are lost: an
			// operator must hear of it.
			c.logger.Warn("unclean leader election: a replica outside the ISR leads, records acknowledged only by the old ISR are lost",
				"topic", topic, "partition", partition, "leader", r, "old_isr", p.ISR, "old_elr", p.ELR)
			return next
		}
	}
	return next
}

// uncleanAllowed reports whether topic has unclean.leader.election.enable,
// by its own config or the broker default.
func (c *Controller) uncleanAllowed(topic string) bool {
	return c.cfg.UncleanLeaderElection != nil && c.cfg.UncleanLeaderElection(c.topicOverrides(topic))
}

// minISR is partition p of topic's Partition.MinISR, with the topic's
// min.insync.replicas by its own config or the broker default.
func (c *Controller) minISR(topic string, p metadata.Partition) int {
	m := int32(1)
	if c.cfg.MinInsyncReplicas != nil {
		m = c.cfg.MinInsyncReplicas(c.topicOverrides(topic))
	}
	return p.MinISR(m)
}

// topicOverrides returns the config keys set on topic.
func (c *Controller) topicOverrides(topic string) map[string]string {
	overrides := map[string]string{}
	for _, e := range c.view.Configs(metadata.ResourceTopic, topic) {
		overrides[e.Key] = e.Value
	}
	return overrides
}

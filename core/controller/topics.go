package controller

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/port"
)

// createTopics handles CreateTopics: each topic is validated against the
// view and becomes one batch (the topic, its partitions, its configs); its
// result is known once that batch commits. Until the replication issue
// lands, a partition's ISR starts as its leader alone: followers join it
// only once they have really caught up.
func (c *Controller) createTopics(req *kmsg.CreateTopicsRequest, resp *kmsg.CreateTopicsResponse, reply func(kmsg.Response)) {
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	bar := newBarrier(func() { reply(resp) })
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		out := &resp.Topics[i]
		*out = kmsg.NewCreateTopicsResponseTopic()
		out.Topic = rt.Topic
		if seen[rt.Topic] > 1 {
			setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: the topic is listed more than once in the request", kerr.InvalidRequest))
			continue
		}
		assignment, overrides, err := c.checkNewTopic(rt)
		if err != nil {
			setErr(&out.ErrorCode, &out.ErrorMessage, err)
			continue
		}
		out.NumPartitions, out.ReplicationFactor = int32(len(assignment)), int16(len(assignment[0]))
		if req.ValidateOnly {
			continue
		}
		id := c.newTopicID()
		out.TopicID = id
		recs := []metadata.Record{{Topic: &metadata.TopicRecord{Name: rt.Topic, ID: id}}}
		recs = append(recs, c.newPartitions(id, 0, assignment)...)
		for _, k := range slices.Sorted(mapKeys(overrides)) {
			v := overrides[k]
			recs = append(recs, metadata.Record{Config: &metadata.ConfigRecord{Resource: metadata.ResourceTopic, Name: rt.Topic, Key: k, Value: &v}})
		}
		finish := bar.add()
		if !c.propose(recs, func(committed bool) {
			if !committed {
				setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: leadership moved before the topic was committed", kerr.NotController))
			}
			finish()
		}) {
			setErr(&out.ErrorCode, &out.ErrorMessage, kerr.NotController)
			finish()
		}
	}
	bar.release()
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// newPartitions returns the records of new partitions from first on, led
// by the first usable replica of each.
func (c *Controller) newPartitions(topicID [16]byte, first int32, assignment [][]port.NodeID) []metadata.Record {
	var recs []metadata.Record
	for i, replicas := range assignment {
		leader := port.NodeID(-1)
		for _, r := range replicas {
			if c.usable(r) {
				leader = r
				break
			}
		}
		isr := []port.NodeID{leader}
		if leader == -1 {
			isr = replicas[:1]
		}
		recs = append(recs, metadata.Record{Partition: &metadata.PartitionRecord{
			TopicID: topicID, Partition: first + int32(i), Replicas: replicas, ISR: isr, Leader: leader}})
	}
	return recs
}

func setErr(code *int16, msg **string, err error) {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		ke = kerr.InvalidRequest
	}
	text := err.Error()
	*code, *msg = ke.Code, &text
}

func (c *Controller) newTopicID() [16]byte {
	for {
		var id [16]byte
		a, b := c.cfg.Rand(), c.cfg.Rand()
		for i := range 8 {
			id[i], id[8+i] = byte(a>>(8*i)), byte(b>>(8*i))
		}
		if _, taken := c.view.TopicByID(id); !taken && id != ([16]byte{}) {
			return id
		}
	}
}

// checkNewTopic validates one topic of a CreateTopics request and returns
// its replica assignment and config overrides.
func (c *Controller) checkNewTopic(rt kmsg.CreateTopicsRequestTopic) ([][]port.NodeID, map[string]string, error) {
	if err := ValidTopicName(rt.Topic); err != nil {
		return nil, nil, err
	}
	if _, ok := c.view.Topic(rt.Topic); ok {
		return nil, nil, fmt.Errorf("%w: topic %q already exists", kerr.TopicAlreadyExists, rt.Topic)
	}
	if other := c.collidingTopic(rt.Topic); other != "" {
		return nil, nil, fmt.Errorf("%w: topic %q collides with existing topic %q ('.' and '_' are interchangeable in metric names)", kerr.InvalidTopicException, rt.Topic, other)
	}
	overrides := map[string]string{}
	for _, cfg := range rt.Configs {
		if _, dup := overrides[cfg.Name]; dup {
			return nil, nil, fmt.Errorf("%w: config %q is given more than once", kerr.InvalidRequest, cfg.Name)
		}
		if cfg.Value != nil {
			overrides[cfg.Name] = *cfg.Value
		}
	}
	if err := c.cfg.ValidateTopicConfig(overrides); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return nil, nil, fmt.Errorf("%w: both a replica assignment and partitions or replication factor were given", kerr.InvalidRequest)
		}
		var assignment [][]port.NodeID
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) {
				return nil, nil, fmt.Errorf("%w: assigned partitions must be 0..%d", kerr.InvalidReplicaAssignment, len(rt.ReplicaAssignment)-1)
			}
			replicas, err := c.checkReplicas(a.Replicas, len(rt.ReplicaAssignment[0].Replicas))
			if err != nil {
				return nil, nil, err
			}
			assignment = append(assignment, replicas)
		}
		return assignment, overrides, nil
	}
	partitions, rf := rt.NumPartitions, rt.ReplicationFactor
	if partitions == -1 {
		partitions = c.cfg.DefaultPartitions
	}
	if rf == -1 {
		rf = c.cfg.DefaultReplicationFactor
	}
	assignment, err := c.place(partitions, rf)
	return assignment, overrides, err
}

// place assigns replicas to new partitions, with Kafka's errors.
func (c *Controller) place(partitions int32, rf int16) ([][]port.NodeID, error) {
	if partitions <= 0 {
		return nil, fmt.Errorf("%w: number of partitions must be larger than 0", kerr.InvalidPartitions)
	}
	if rf <= 0 {
		return nil, fmt.Errorf("%w: replication factor must be larger than 0", kerr.InvalidReplicationFactor)
	}
	assignment, err := metadata.Place(c.view, partitions, rf)
	if errors.Is(err, metadata.ErrInvalidReplicationFactor) {
		usable := 0
		for _, b := range c.view.Brokers() {
			if !b.Fenced && !b.ShuttingDown {
				usable++
			}
		}
		return nil, fmt.Errorf("%w: replication factor: %d larger than available brokers: %d", kerr.InvalidReplicationFactor, rf, usable)
	}
	return assignment, err
}

// checkReplicas validates a manual assignment of one partition.
func (c *Controller) checkReplicas(replicas []int32, rf int) ([]port.NodeID, error) {
	if len(replicas) == 0 || len(replicas) != rf {
		return nil, fmt.Errorf("%w: every partition must have the same, non-zero number of replicas", kerr.InvalidReplicaAssignment)
	}
	out := make([]port.NodeID, len(replicas))
	for i, r := range replicas {
		if _, ok := c.view.Broker(port.NodeID(r)); !ok {
			return nil, fmt.Errorf("%w: replica %d is not a registered broker", kerr.InvalidReplicaAssignment, r)
		}
		if slices.Contains(out[:i], port.NodeID(r)) {
			return nil, fmt.Errorf("%w: replica %d is listed twice", kerr.InvalidReplicaAssignment, r)
		}
		out[i] = port.NodeID(r)
	}
	return out, nil
}

// ValidTopicName applies Kafka's Topic.validate.
func ValidTopicName(name string) error {
	const maxLen = 249
	switch {
	case name == "":
		return fmt.Errorf("%w: topic name is empty", kerr.InvalidTopicException)
	case name == "." || name == "..":
		return fmt.Errorf("%w: topic name cannot be %q", kerr.InvalidTopicException, name)
	case len(name) > maxLen:
		return fmt.Errorf("%w: topic name is longer than %d characters", kerr.InvalidTopicException, maxLen)
	}
	for _, ch := range name {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-') {
			return fmt.Errorf("%w: topic name %q has characters other than ASCII alphanumerics, '.', '_' and '-'", kerr.InvalidTopicException, name)
		}
	}
	return nil
}

func (c *Controller) collidingTopic(name string) string {
	norm := strings.ReplaceAll(name, ".", "_")
	for _, t := range c.view.Topics() {
		if t.Name != name && strings.ReplaceAll(t.Name, ".", "_") == norm {
			return t.Name
		}
	}
	return ""
}

// deleteTopics handles DeleteTopics by name (v0-v5) or by name or id (v6+).
func (c *Controller) deleteTopics(req *kmsg.DeleteTopicsRequest, resp *kmsg.DeleteTopicsResponse, reply func(kmsg.Response)) {
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	for _, name := range req.TopicNames {
		targets = append(targets, target{name: &name})
	}
	for _, t := range req.Topics {
		targets = append(targets, target{name: t.Topic, id: t.TopicID})
	}
	bar := newBarrier(func() { reply(resp) })
	resp.Topics = make([]kmsg.DeleteTopicsResponseTopic, len(targets))
	for i, tg := range targets {
		out := &resp.Topics[i]
		*out = kmsg.NewDeleteTopicsResponseTopic()
		out.Topic, out.TopicID = tg.name, tg.id
		var t metadata.Topic
		var ok bool
		if tg.name != nil {
			t, ok = c.view.Topic(*tg.name)
			if !ok {
				setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, *tg.name))
				continue
			}
		} else {
			t, ok = c.view.TopicByID(tg.id)
			if !ok {
				setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: no topic has that id", kerr.UnknownTopicID))
				continue
			}
			name := t.Name
			out.Topic = &name
		}
		out.TopicID = t.ID
		if !c.cfg.DeleteTopicEnable {
			setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: delete.topic.enable is false", kerr.TopicDeletionDisabled))
			continue
		}
		finish := bar.add()
		if !c.propose([]metadata.Record{{RemoveTopic: &metadata.RemoveTopicRecord{ID: t.ID}}}, func(committed bool) {
			if !committed {
				setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: leadership moved before the deletion was committed", kerr.NotController))
			}
			finish()
		}) {
			setErr(&out.ErrorCode, &out.ErrorMessage, kerr.NotController)
			finish()
		}
	}
	bar.release()
}

// createPartitions handles CreatePartitions.
func (c *Controller) createPartitions(req *kmsg.CreatePartitionsRequest, resp *kmsg.CreatePartitionsResponse, reply func(kmsg.Response)) {
	bar := newBarrier(func() { reply(resp) })
	resp.Topics = make([]kmsg.CreatePartitionsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		out := &resp.Topics[i]
		*out = kmsg.NewCreatePartitionsResponseTopic()
		out.Topic = rt.Topic
		t, ok := c.view.Topic(rt.Topic)
		if !ok {
			setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, rt.Topic))
			continue
		}
		have := int32(len(t.Partitions))
		if rt.Count <= have {
			setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: topic currently has %d partitions, %d would not be an increase", kerr.InvalidPartitions, have, rt.Count))
			continue
		}
		rf := len(t.Partitions[0].Replicas)
		var assignment [][]port.NodeID
		var err error
		if rt.Assignment != nil {
			if len(rt.Assignment) != int(rt.Count-have) {
				err = fmt.Errorf("%w: %d assignments given for %d new partitions", kerr.InvalidReplicaAssignment, len(rt.Assignment), rt.Count-have)
			}
			for _, a := range rt.Assignment {
				if err != nil {
					break
				}
				var replicas []port.NodeID
				replicas, err = c.checkReplicas(a.Replicas, rf)
				assignment = append(assignment, replicas)
			}
		} else {
			assignment, err = c.place(rt.Count-have, int16(rf))
		}
		if err != nil {
			setErr(&out.ErrorCode, &out.ErrorMessage, err)
			continue
		}
		if req.ValidateOnly {
			continue
		}
		finish := bar.add()
		if !c.propose(c.newPartitions(t.ID, have, assignment), func(committed bool) {
			if !committed {
				setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: leadership moved before the partitions were committed", kerr.NotController))
			}
			finish()
		}) {
			setErr(&out.ErrorCode, &out.ErrorMessage, kerr.NotController)
			finish()
		}
	}
	bar.release()
}

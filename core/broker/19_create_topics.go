package broker

// CreateTopics v2-v7.
//
// Defaults for partitions and replication factor (-1) come from
// num.partitions and default.replication.factor. The replication factor
// cannot exceed the number of brokers (one, until the cluster issue). The
// response comes once the topic's metadata is durable, unless timeout_ms is
// zero, in which case it comes at once, as in Kafka. Topic names that
// collide once '.' and '_' are treated alike are refused, as in Kafka.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/partlog"
)

// brokerCount is the number of brokers replicas can be placed on.
const brokerCount = 1

func (n *Node) handleCreateTopics(s *slot, req *kmsg.CreateTopicsRequest) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	bar := newBarrier(func() { n.respond(s, resp) })
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		out := &resp.Topics[i]
		*out = kmsg.NewCreateTopicsResponseTopic()
		out.Topic = rt.Topic
		if seen[rt.Topic] > 1 {
			setErr(&out.ErrorCode, &out.ErrorMessage, kerr.InvalidRequest, "the topic is listed more than once in the request")
			continue
		}
		partitions, overrides, err := n.checkNewTopic(rt)
		if err != nil {
			var ke *kerr.Error
			if !errors.As(err, &ke) {
				ke = kerr.InvalidRequest
			}
			setErr(&out.ErrorCode, &out.ErrorMessage, ke, err.Error())
			continue
		}
		out.NumPartitions, out.ReplicationFactor = partitions, 1
		for _, e := range n.cfg.DescribeTopic(overrides, false) {
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name, c.Value, c.ReadOnly, c.Source, c.IsSensitive = e.Name, e.Value, e.ReadOnly, e.Source, e.Sensitive
			out.Configs = append(out.Configs, c)
		}
		if req.ValidateOnly {
			continue
		}
		if n.storageErr != nil {
			setErr(&out.ErrorCode, &out.ErrorMessage, kerr.KafkaStorageError, "the log directory is offline")
			continue
		}
		finish := bar.wait(req.TimeoutMillis > 0)
		t, err := n.createTopic(rt.Topic, partitions, overrides, func(ok bool) {
			if !ok {
				setErr(&out.ErrorCode, &out.ErrorMessage, kerr.KafkaStorageError, "the log directory went offline")
			}
			finish()
		})
		if err != nil {
			panic(fmt.Sprintf("broker: create checked topic: %v", err))
		}
		out.TopicID = t.id
	}
	bar.done()
}

func setErr(code *int16, msg **string, e *kerr.Error, text string) {
	*code = e.Code
	*msg = &text
}

// checkNewTopic validates one topic of a CreateTopics request and returns
// its partition count and config overrides.
func (n *Node) checkNewTopic(rt kmsg.CreateTopicsRequestTopic) (int32, map[string]string, error) {
	if err := validTopicName(rt.Topic); err != nil {
		return 0, nil, err
	}
	if n.topics.byName[rt.Topic] != nil {
		return 0, nil, fmt.Errorf("%w: topic %q already exists", kerr.TopicAlreadyExists, rt.Topic)
	}
	if n.deleting[rt.Topic] != nil {
		return 0, nil, fmt.Errorf("%w: topic %q is marked for deletion", kerr.TopicAlreadyExists, rt.Topic)
	}
	if other := n.collidingTopic(rt.Topic); other != "" {
		return 0, nil, fmt.Errorf("%w: topic %q collides with existing topic %q ('.' and '_' are interchangeable in metric names)", kerr.InvalidTopicException, rt.Topic, other)
	}
	partitions := rt.NumPartitions
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return 0, nil, fmt.Errorf("%w: both a replica assignment and partitions or replication factor were given", kerr.InvalidRequest)
		}
		partitions = int32(len(rt.ReplicaAssignment))
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) {
				return 0, nil, fmt.Errorf("%w: assigned partitions must be 0..%d", kerr.InvalidReplicaAssignment, partitions-1)
			}
			if err := n.checkReplicas(a.Replicas); err != nil {
				return 0, nil, err
			}
		}
	} else {
		if partitions == -1 {
			partitions = n.cfg.NumPartitions
		}
		if partitions <= 0 {
			return 0, nil, fmt.Errorf("%w: number of partitions must be larger than 0", kerr.InvalidPartitions)
		}
		rf := rt.ReplicationFactor
		if rf == -1 {
			rf = n.cfg.DefaultReplicationFactor
		}
		if rf <= 0 {
			return 0, nil, fmt.Errorf("%w: replication factor must be larger than 0", kerr.InvalidReplicationFactor)
		}
		if rf > brokerCount {
			return 0, nil, fmt.Errorf("%w: replication factor: %d larger than available brokers: %d", kerr.InvalidReplicationFactor, rf, brokerCount)
		}
	}
	overrides := map[string]string{}
	for _, c := range rt.Configs {
		if _, dup := overrides[c.Name]; dup {
			return 0, nil, fmt.Errorf("%w: config %q is given more than once", kerr.InvalidRequest, c.Name)
		}
		if c.Value != nil {
			overrides[c.Name] = *c.Value
		}
	}
	if _, err := n.cfg.TopicConfig(overrides); err != nil {
		return 0, nil, fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	if len(overrides) == 0 {
		overrides = nil
	}
	return partitions, overrides, nil
}

func (n *Node) checkReplicas(replicas []int32) error {
	if len(replicas) != 1 || replicas[0] != n.cfg.NodeID {
		return fmt.Errorf("%w: replicas %v: the only broker is %d", kerr.InvalidReplicaAssignment, replicas, n.cfg.NodeID)
	}
	return nil
}

// createTopic adds a topic that clients see once its metadata is durable,
// when done runs.
func (n *Node) createTopic(name string, partitions int32, overrides map[string]string, done func(ok bool)) (*topic, error) {
	tc, err := n.cfg.TopicConfig(overrides)
	if err != nil {
		return nil, err
	}
	t := n.topics.add(name, n.newTopicID(), overrides, tc)
	n.addPartitions(t, partitions)
	n.meta.image.Topics = append(n.meta.image.Topics, metaTopic{Name: name, ID: encodeUUID(t.id), Partitions: partitions, Configs: overrides})
	n.meta.commit(func(ok bool) {
		if ok {
			t.visible = true
			for _, p := range t.partitions {
				p.visible = true
			}
		}
		if done != nil {
			done(ok)
		}
	})
	return t, nil
}

// addPartitions creates partition logs up to count; they stay invisible
// until the caller's metadata commit makes them so.
func (n *Node) addPartitions(t *topic, count int32) {
	for p := int32(len(t.partitions)); p < count; p++ {
		l, ops := partlog.New(partitionDir(t.name, p), logConfig(t.cfg))
		part := t.addPartition(l)
		part.visible = false
		n.issue(part, ops)
	}
}

// validTopicName applies Kafka's Topic.validate.
func validTopicName(name string) error {
	const maxLen = 249
	switch {
	case name == "":
		return fmt.Errorf("%w: topic name is empty", kerr.InvalidTopicException)
	case name == "." || name == "..":
		return fmt.Errorf("%w: topic name cannot be %q", kerr.InvalidTopicException, name)
	case len(name) > maxLen:
		return fmt.Errorf("%w: topic name is longer than %d characters", kerr.InvalidTopicException, maxLen)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: topic name %q has characters other than ASCII alphanumerics, '.', '_' and '-'", kerr.InvalidTopicException, name)
		}
	}
	return nil
}

func (n *Node) collidingTopic(name string) string {
	norm := strings.ReplaceAll(name, ".", "_")
	for _, t := range n.topics.sorted {
		if t.name != name && strings.ReplaceAll(t.name, ".", "_") == norm {
			return t.name
		}
	}
	return ""
}

// parsePartitionDir splits "orders-3" into "orders" and 3.
func parsePartitionDir(dir string) (string, int32, bool) {
	i := strings.LastIndexByte(dir, '-')
	if i <= 0 {
		return "", 0, false
	}
	p, err := strconv.ParseInt(dir[i+1:], 10, 32)
	if err != nil || p < 0 {
		return "", 0, false
	}
	return dir[:i], int32(p), true
}

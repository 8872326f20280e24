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
// result is known once that batch commits.
func (c *Controller) createTopics(req *kmsg.CreateTopicsRequest, resp *kmsg.CreateTopicsResponse, reply func(kmsg.Response)) {
	seen := countNames(len(req.Topics), func(i int) string { return req.Topics[i].Topic })
	bar := newBarrier(func() { reply(resp) })
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		out := &resp.Topics[i]
		*out = kmsg.NewCreateTopicsResponseTopic()
		out.Topic = rt.Topic
		if seen[rt.Topic] > 1 {
			setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: Duplicate topic name.", kerr.InvalidRequest))
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
		c.commitItem(bar, recs, "the topic", &out.ErrorCode, &out.ErrorMessage, func() {
			out.NumPartitions, out.ReplicationFactor, out.TopicID = -1, -1, [16]byte{}
		})
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

// newPartitions returns the records of new partitions from first on. As
// in Kafka, a new partition's ISR is every usable replica (an empty log is
// trivially in sync) and the first of them leads; a replica fenced or
// shutting down joins once its leader sees it caught up (AlterPartition).
// Every assignment has a usable replica: Place picks only usable brokers,
// and checkLeadable refuses manual assignments without one.
func (c *Controller) newPartitions(topicID [16]byte, first int32, assignment [][]port.NodeID) []metadata.Record {
	var recs []metadata.Record
	for i, replicas := range assignment {
		isr := slices.DeleteFunc(slices.Clone(replicas), func(r port.NodeID) bool { return !c.usable(r) })
		recs = append(recs, metadata.Record{Partition: &metadata.PartitionRecord{
			TopicID: topicID, Partition: first + int32(i), Replicas: replicas, ISR: isr, Leader: isr[0]}})
	}
	return recs
}

func setErr(code *int16, msg **string, err error) {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		ke = kerr.InvalidRequest
	}
	// The message is the explanation alone, as Kafka's ApiError message:
	// the code already names the error.
	text := strings.TrimPrefix(err.Error(), ke.Error()+": ")
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
		return nil, nil, fmt.Errorf("%w: Topic '%s' already exists.", kerr.TopicAlreadyExists, rt.Topic)
	}
	if other := c.collidingTopic(rt.Topic); other != "" {
		return nil, nil, fmt.Errorf("%w: Topic '%s' collides with existing topic: %s", kerr.InvalidTopicException, rt.Topic, other)
	}
	overrides := map[string]string{}
	var nulls []string
	for _, cfg := range rt.Configs {
		if _, dup := overrides[cfg.Name]; dup {
			return nil, nil, fmt.Errorf("%w: config %q is given more than once", kerr.InvalidRequest, cfg.Name)
		}
		if cfg.Value == nil {
			nulls = append(nulls, cfg.Name)
			continue
		}
		overrides[cfg.Name] = *cfg.Value
	}
	if len(nulls) > 0 {
		// Kafka's computeConfigChanges.
		return nil, nil, fmt.Errorf("%w: Null value not supported for topic configs: %s", kerr.InvalidConfig, strings.Join(nulls, ","))
	}
	if err := c.cfg.ValidateTopicConfig(overrides); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return nil, nil, fmt.Errorf("%w: both a replica assignment and partitions or replication factor were given", kerr.InvalidRequest)
		}
		// Partitions may be listed in any order, once each, numbered
		// densely from 0 (Kafka's createTopic).
		byPartition := map[int32][]port.NodeID{}
		for _, a := range rt.ReplicaAssignment {
			if _, dup := byPartition[a.Partition]; dup {
				return nil, nil, fmt.Errorf("%w: Found multiple manual partition assignments for partition %d", kerr.InvalidReplicaAssignment, a.Partition)
			}
			replicas, err := c.checkReplicas(a.Replicas, len(rt.ReplicaAssignment[0].Replicas))
			if err == nil {
				err = c.checkLeadable(a.Partition, replicas)
			}
			if err != nil {
				return nil, nil, err
			}
			byPartition[a.Partition] = replicas
		}
		assignment := make([][]port.NodeID, len(byPartition))
		for i := range assignment {
			replicas, ok := byPartition[int32(i)]
			if !ok {
				return nil, nil, fmt.Errorf("%w: partitions should be a consecutive 0-based integer sequence", kerr.InvalidReplicaAssignment)
			}
			assignment[i] = replicas
		}
		return assignment, overrides, nil
	}
	partitions, rf := rt.NumPartitions, rt.ReplicationFactor
	// -1 asks for the default; other values below 1 are refused, the
	// replication factor first, as in Kafka.
	if rf < -1 || rf == 0 {
		return nil, nil, fmt.Errorf("%w: Replication factor must be larger than 0, or -1 to use the default value.", kerr.InvalidReplicationFactor)
	}
	if partitions < -1 || partitions == 0 {
		return nil, nil, fmt.Errorf("%w: Number of partitions was set to an invalid non-positive value.", kerr.InvalidPartitions)
	}
	if partitions == -1 {
		partitions = c.cfg.DefaultPartitions
	}
	if rf == -1 {
		rf = c.cfg.DefaultReplicationFactor
	}
	if err := checkBatchSize(partitions); err != nil {
		return nil, nil, err
	}
	assignment, err := c.place(partitions, rf)
	if errors.Is(err, kerr.InvalidReplicationFactor) {
		err = fmt.Errorf("%w: Unable to replicate the partition %d time(s): %s", kerr.InvalidReplicationFactor, rf, placeReason(err))
	}
	return assignment, overrides, err
}

// maxRecordsPerBatch bounds the records one request may add, as Kafka's
// MAX_RECORDS_PER_USER_OP: a partition count near 2^31 must be refused,
// not placed.
const maxRecordsPerBatch = 10000

func checkBatchSize(partitions int32) error {
	if partitions > maxRecordsPerBatch {
		return fmt.Errorf("%w: Unable to perform excessively large batch operation.", kerr.PolicyViolation)
	}
	return nil
}

// checkLeadable refuses a manual assignment whose replicas are all fenced
// or shutting down: the new partition would have no leader.
func (c *Controller) checkLeadable(partition int32, replicas []port.NodeID) error {
	for _, r := range replicas {
		if c.usable(r) {
			return nil
		}
	}
	return fmt.Errorf("%w: All brokers specified in the manual partition assignment for partition %d are fenced or in controlled shutdown.", kerr.InvalidReplicaAssignment, partition)
}

// place assigns replicas to new partitions, with the errors of Kafka's
// StripedReplicaPlacer.
func (c *Controller) place(partitions int32, rf int16) ([][]port.NodeID, error) {
	if rf <= 0 {
		return nil, &placeError{fmt.Sprintf("Invalid replication factor %d: the replication factor must be positive.", rf)}
	}
	if partitions <= 0 {
		return nil, fmt.Errorf("%w: Number of partitions was set to an invalid non-positive value.", kerr.InvalidPartitions)
	}
	assignment, err := metadata.Place(c.view, partitions, rf)
	if errors.Is(err, metadata.ErrInvalidReplicationFactor) {
		usable := 0
		for _, b := range c.view.Brokers() {
			if !b.Fenced && !b.ShuttingDown {
				usable++
			}
		}
		if usable == 0 {
			return nil, &placeError{"All brokers are currently fenced."}
		}
		return nil, &placeError{fmt.Sprintf("The target replication factor of %d cannot be reached because only %d broker(s) are registered.", rf, usable)}
	}
	return assignment, err
}

// placeError is an INVALID_REPLICATION_FACTOR of place, with the placer's
// message alone so that CreateTopics can wrap it as Kafka does.
type placeError struct{ reason string }

func (e *placeError) Error() string { return kerr.InvalidReplicationFactor.Error() + ": " + e.reason }
func (e *placeError) Unwrap() error { return kerr.InvalidReplicationFactor }
func placeReason(err error) string {
	var pe *placeError
	if errors.As(err, &pe) {
		return pe.reason
	}
	return err.Error()
}

// checkReplicas validates a manual assignment of one partition, with the
// messages of Kafka's validateManualPartitionAssignment.
func (c *Controller) checkReplicas(replicas []int32, rf int) ([]port.NodeID, error) {
	if len(replicas) == 0 {
		return nil, fmt.Errorf("%w: The manual partition assignment includes an empty replica list.", kerr.InvalidReplicaAssignment)
	}
	out := make([]port.NodeID, len(replicas))
	for i, r := range replicas {
		if _, ok := c.view.Broker(port.NodeID(r)); !ok {
			return nil, fmt.Errorf("%w: The manual partition assignment includes broker %d, but no such broker is registered.", kerr.InvalidReplicaAssignment, r)
		}
		if slices.Contains(out[:i], port.NodeID(r)) {
			return nil, fmt.Errorf("%w: The manual partition assignment includes the broker %d more than once.", kerr.InvalidReplicaAssignment, r)
		}
		out[i] = port.NodeID(r)
	}
	if len(replicas) != rf {
		return nil, fmt.Errorf("%w: The manual partition assignment includes a partition with %d replica(s), but this is not consistent with previous partitions, which have %d replica(s).", kerr.InvalidReplicaAssignment, len(replicas), rf)
	}
	return out, nil
}

// ValidTopicName applies Kafka's Topic.validate, with its messages.
func ValidTopicName(name string) error {
	const maxLen = 249
	switch {
	case name == "":
		return fmt.Errorf("%w: Topic name is illegal, it can't be empty", kerr.InvalidTopicException)
	case name == "." || name == "..":
		return fmt.Errorf("%w: Topic name cannot be \".\" or \"..\"", kerr.InvalidTopicException)
	case len(name) > maxLen:
		return fmt.Errorf("%w: Topic name is illegal, it can't be longer than %d characters, topic name: %s", kerr.InvalidTopicException, maxLen, name)
	}
	for _, ch := range name {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-') {
			return fmt.Errorf("%w: Topic name \"%s\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'", kerr.InvalidTopicException, name)
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

// deleteTopics handles DeleteTopics by name (v0-v5) or by name or id (v6+),
// with the checks of Kafka's ControllerApis.deleteTopics: deletion must be
// enabled, and each entry names one topic, by name or by id, once.
func (c *Controller) deleteTopics(req *kmsg.DeleteTopicsRequest, resp *kmsg.DeleteTopicsResponse, reply func(kmsg.Response)) {
	if !c.cfg.DeleteTopicEnable {
		err := kerr.TopicDeletionDisabled
		if req.Version < 3 {
			err = kerr.InvalidRequest // TOPIC_DELETION_DISABLED came with v3
		}
		reply(fillError(req, resp, err))
		return
	}
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
	names, ids := map[string]int{}, map[[16]byte]int{}
	for _, tg := range targets {
		if tg.name != nil {
			names[*tg.name]++
		} else {
			ids[tg.id]++
		}
	}
	bar := newBarrier(func() { reply(resp) })
	resp.Topics = make([]kmsg.DeleteTopicsResponseTopic, len(targets))
	for i, tg := range targets {
		out := &resp.Topics[i]
		*out = kmsg.NewDeleteTopicsResponseTopic()
		out.Topic, out.TopicID = tg.name, tg.id
		var t metadata.Topic
		var ok bool
		switch {
		case tg.name != nil && tg.id != [16]byte{}:
			setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: You may not specify both topic name and topic id.", kerr.InvalidRequest))
			continue
		case tg.name == nil && tg.id == [16]byte{}:
			setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: Neither topic name nor id were specified.", kerr.InvalidRequest))
			continue
		case tg.name != nil && names[*tg.name] > 1:
			setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: Duplicate topic name.", kerr.InvalidRequest))
			continue
		case tg.name == nil && ids[tg.id] > 1:
			setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: Duplicate topic id.", kerr.InvalidRequest))
			continue
		case tg.name != nil:
			t, ok = c.view.Topic(*tg.name)
			if !ok {
				setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: This server does not host this topic-partition.", kerr.UnknownTopicOrPartition))
				continue
			}
			if ids[t.ID] > 0 {
				out.TopicID = t.ID
				setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: The provided topic name maps to an ID that was already supplied.", kerr.InvalidRequest))
				continue
			}
		default:
			t, ok = c.view.TopicByID(tg.id)
			if !ok {
				setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: This server does not host this topic ID.", kerr.UnknownTopicID))
				continue
			}
			name := t.Name
			out.Topic = &name
		}
		out.TopicID = t.ID
		c.commitItem(bar, []metadata.Record{{RemoveTopic: &metadata.RemoveTopicRecord{ID: t.ID}}}, "the deletion",
			&out.ErrorCode, &out.ErrorMessage, nil)
	}
	bar.release()
}

// createPartitions handles CreatePartitions.
func (c *Controller) createPartitions(req *kmsg.CreatePartitionsRequest, resp *kmsg.CreatePartitionsResponse, reply func(kmsg.Response)) {
	seen := countNames(len(req.Topics), func(i int) string { return req.Topics[i].Topic })
	bar := newBarrier(func() { reply(resp) })
	resp.Topics = make([]kmsg.CreatePartitionsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		out := &resp.Topics[i]
		*out = kmsg.NewCreatePartitionsResponseTopic()
		out.Topic = rt.Topic
		if seen[rt.Topic] > 1 {
			setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: Duplicate topic name.", kerr.InvalidRequest))
			continue
		}
		t, ok := c.view.Topic(rt.Topic)
		if !ok {
			setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: This server does not host this topic-partition.", kerr.UnknownTopicOrPartition))
			continue
		}
		have := int32(len(t.Partitions))
		if rt.Count == have {
			setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: Topic already has %d partition(s).", kerr.InvalidPartitions, have))
			continue
		}
		if rt.Count < have {
			setErr(&out.ErrorCode, &out.ErrorMessage, fmt.Errorf("%w: The topic %s currently has %d partition(s); %d would not be an increase.", kerr.InvalidPartitions, rt.Topic, have, rt.Count))
			continue
		}
		rf := len(t.Partitions[0].Replicas)
		var assignment [][]port.NodeID
		err := checkBatchSize(rt.Count - have)
		switch {
		case err != nil:
		case rt.Assignment != nil:
			if len(rt.Assignment) != int(rt.Count-have) {
				err = fmt.Errorf("%w: Attempted to add %d additional partition(s), but only %d assignment(s) were specified.", kerr.InvalidReplicaAssignment, rt.Count-have, len(rt.Assignment))
			}
			for j, a := range rt.Assignment {
				if err != nil {
					break
				}
				var replicas []port.NodeID
				if replicas, err = c.checkReplicas(a.Replicas, rf); err == nil {
					err = c.checkLeadable(have+int32(j), replicas)
				}
				assignment = append(assignment, replicas)
			}
		default:
			assignment, err = c.place(rt.Count-have, int16(rf))
		}
		if err != nil {
			setErr(&out.ErrorCode, &out.ErrorMessage, err)
			continue
		}
		if req.ValidateOnly {
			continue
		}
		c.commitItem(bar, c.newPartitions(t.ID, have, assignment), "the partitions", &out.ErrorCode, &out.ErrorMessage, nil)
	}
	bar.release()
}

// commitItem proposes the batch for one item of a request and makes bar
// wait for it. If the batch cannot commit, the item gets NOT_CONTROLLER
// (the client retries) and undo clears what the reply had promised.
func (c *Controller) commitItem(bar *barrier, recs []metadata.Record, what string, code *int16, msg **string, undo func()) {
	finish := bar.add()
	fail := func(err error) {
		setErr(code, msg, err)
		if undo != nil {
			undo()
		}
		finish()
	}
	if !c.propose(recs, func(committed bool) {
		if !committed {
			fail(fmt.Errorf("%w: leadership moved before %s was committed", kerr.NotController, what))
			return
		}
		finish()
	}) {
		fail(kerr.NotController)
	}
}

// countNames counts how often each of n names occurs.
func countNames(n int, name func(int) string) map[string]int {
	seen := make(map[string]int, n)
	for i := range n {
		seen[name(i)]++
	}
	return seen
}

package broker

// CreatePartitions v0-v3.
//
// Manual assignments may only name this node (one broker). New partitions
// appear to clients once the change is durable.

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleCreatePartitions(s *slot, req *kmsg.CreatePartitionsRequest) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	bar := newBarrier(func() { n.respond(s, resp) })
	resp.Topics = make([]kmsg.CreatePartitionsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		out := &resp.Topics[i]
		*out = kmsg.NewCreatePartitionsResponseTopic()
		out.Topic = rt.Topic
		t, err := n.checkNewPartitions(rt, seen[rt.Topic] > 1)
		if err != nil {
			var ke *kerr.Error
			if !errors.As(err, &ke) {
				ke = kerr.InvalidRequest
			}
			setErr(&out.ErrorCode, &out.ErrorMessage, ke, err.Error())
			continue
		}
		if req.ValidateOnly {
			continue
		}
		finish := bar.wait(req.TimeoutMillis > 0)
		n.addPartitions(t, rt.Count)
		mt := n.meta.topic(t.name)
		mt.Partitions = rt.Count
		n.meta.commit(func(ok bool) {
			if ok {
				for _, p := range t.partitions {
					p.visible = true
				}
			} else {
				out.ErrorCode = kerr.KafkaStorageError.Code
			}
			finish()
		})
	}
	bar.done()
}

func (n *Node) checkNewPartitions(rt kmsg.CreatePartitionsRequestTopic, duplicate bool) (*topic, error) {
	if duplicate {
		return nil, fmt.Errorf("%w: the topic is listed more than once in the request", kerr.InvalidRequest)
	}
	t := n.topics.visible(rt.Topic)
	if t == nil {
		return nil, fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, rt.Topic)
	}
	if n.storageErr != nil {
		return nil, fmt.Errorf("%w: the log directory is offline", kerr.KafkaStorageError)
	}
	current := int32(len(t.partitions))
	if len(t.visiblePartitions()) != len(t.partitions) {
		return nil, fmt.Errorf("%w: a partition change for %q is in progress", kerr.ReassignmentInProgress, rt.Topic)
	}
	if rt.Count <= current {
		return nil, fmt.Errorf("%w: topic currently has %d partitions, %d would not be an increase", kerr.InvalidPartitions, current, rt.Count)
	}
	if rt.Assignment != nil {
		if int32(len(rt.Assignment)) != rt.Count-current {
			return nil, fmt.Errorf("%w: %d assignments for %d new partitions", kerr.InvalidReplicaAssignment, len(rt.Assignment), rt.Count-current)
		}
		for _, a := range rt.Assignment {
			if err := n.checkReplicas(a.Replicas); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

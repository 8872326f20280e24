package broker

// DeleteTopics v1-v6 (by name, and by topic id from v6).
//
// With delete.topic.enable=false every deletion is refused with
// TOPIC_DELETION_DISABLED. Until its directories are removed, a deleted
// topic's name cannot be reused (TOPIC_ALREADY_EXISTS, "marked for
// deletion", as Kafka answers). A deleted topic disappears for clients at once; its directories are
// removed after the metadata change is durable, and the response waits for
// that, unless timeout_ms is zero.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleDeleteTopics(s *slot, req *kmsg.DeleteTopicsRequest) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for i := range req.TopicNames {
			targets = append(targets, target{name: &req.TopicNames[i]})
		}
	}
	bar := newBarrier(func() { n.respond(s, resp) })
	resp.Topics = make([]kmsg.DeleteTopicsResponseTopic, len(targets))
	for i, tg := range targets {
		out := &resp.Topics[i]
		*out = kmsg.NewDeleteTopicsResponseTopic()
		out.Topic, out.TopicID = tg.name, tg.id
		var t *topic
		if tg.name != nil {
			t = n.topics.visible(*tg.name)
			if t == nil {
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
		} else if t = n.topics.visibleByID(tg.id); t == nil {
			out.ErrorCode = kerr.UnknownTopicID.Code
			continue
		}
		out.Topic, out.TopicID = &t.name, t.id
		if !n.cfg.DeleteTopicEnable {
			out.ErrorCode = kerr.TopicDeletionDisabled.Code
			continue
		}
		if n.storageErr != nil {
			out.ErrorCode = kerr.KafkaStorageError.Code
			continue
		}
		finish := bar.wait(req.TimeoutMillis > 0)
		n.deleteTopic(t, func(ok bool) {
			if !ok {
				out.ErrorCode = kerr.KafkaStorageError.Code
			}
			finish()
		})
	}
	bar.done()
}

func (n *Node) deleteTopic(t *topic, done func(ok bool)) {
	n.topics.remove(t)
	d := &deletion{name: t.name}
	n.deleting[t.name] = d
	n.meta.removeTopic(t.name)
	n.meta.commit(func(ok bool) {
		if ok {
			// Kafka drops a deleted topic's committed offsets, so a topic
			// created later under the same name starts with none.
			n.groups.DeleteTopicOffsets(n.now.MonoNs, t.name)
			for _, p := range t.partitions {
				n.issueAs(opRef{part: p, deletion: d}, p.log.Remove())
			}
		}
		if d.left == 0 {
			delete(n.deleting, t.name)
		}
		done(ok)
	})
}

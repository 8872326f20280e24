package group

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (m *memHost) Topic(name string) (TopicMeta, bool) {
	i, ok := slices.BinarySearchFunc(m.topics, name, func(t TopicMeta, n string) int { return strings.Compare(t.Name, n) })
	if !ok {
		return TopicMeta{}, false
	}
	return m.topics[i], true
}

func (m *memHost) Topics() []TopicMeta { return slices.Clone(m.topics) }

// tid is the id of test topic name: its first bytes.
func tid(name string) topicID {
	var id topicID
	copy(id[:], name)
	id[15] = 1
	return id
}

// setTopic creates (or resizes) a topic; zero partitions deletes it.
func (h *harness) setTopic(name string, partitions int32) {
	m := h.host
	m.topics = slices.DeleteFunc(m.topics, func(t TopicMeta) bool { return t.Name == name })
	if partitions > 0 {
		m.topics = append(m.topics, TopicMeta{Name: name, ID: tid(name), Partitions: partitions})
		slices.SortFunc(m.topics, func(a, b TopicMeta) int { return strings.Compare(a.Name, b.Name) })
	}
}

// cghb is a ConsumerGroupHeartbeat call whose answer may come later.
type cghb struct {
	t     tb
	resp  *kmsg.ConsumerGroupHeartbeatResponse
	calls int
}

func (c *cghb) done() bool { return c.calls > 0 }

func (c *cghb) ok() *kmsg.ConsumerGroupHeartbeatResponse {
	c.t.Helper()
	if c.calls != 1 {
		c.t.Fatalf("ConsumerGroupHeartbeat answered %d times, want once", c.calls)
	}
	if c.resp.ErrorCode != 0 {
		msg := ""
		if c.resp.ErrorMessage != nil {
			msg = *c.resp.ErrorMessage
		}
		c.t.Fatalf("ConsumerGroupHeartbeat: %v %s", kerr.ErrorForCode(c.resp.ErrorCode), msg)
	}
	return c.resp
}

func (c *cghb) code() int16 {
	c.t.Helper()
	if c.calls != 1 {
		c.t.Fatalf("ConsumerGroupHeartbeat answered %d times, want once", c.calls)
	}
	return c.resp.ErrorCode
}

// hbOpts is a heartbeat; nil fields are sent null.
type hbOpts struct {
	v0         bool // send version 0 rather than 1
	epoch      int32
	instanceID *string
	topics     []string
	regex      *string
	assignor   *string
	owned      assignment // nil: not reported
	rebalance  int32      // zero means 30000 on join, -1 (unchanged) otherwise
}

func (h *harness) hb(groupID, memberID string, o hbOpts) *cghb {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	if o.v0 {
		req.Version = 0
	}
	req.Group, req.MemberID, req.MemberEpoch = groupID, memberID, o.epoch
	req.InstanceID = o.instanceID
	req.SubscribedTopicNames = o.topics
	req.SubscribedTopicRegex = o.regex
	req.ServerAssignor = o.assignor
	req.RebalanceTimeoutMillis = o.rebalance
	if o.rebalance == 0 {
		req.RebalanceTimeoutMillis = -1
		if o.epoch == 0 {
			req.RebalanceTimeoutMillis = 30000
		}
	}
	if o.owned != nil {
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		for _, t := range o.owned.sortedTopics() {
			req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: t, Partitions: o.owned[t]})
		}
	}
	if o.epoch == 0 && req.Topics == nil {
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	}
	c := &cghb{t: h.t}
	h.c.ConsumerGroupHeartbeat(h.now, Client{ID: "cl", Host: "/127.0.0.1"}, req, func(r *kmsg.ConsumerGroupHeartbeatResponse) {
		c.resp = r
		c.calls++
	})
	h.flush()
	return c
}

// respAssignment is what a heartbeat answer assigned, nil if it carried
// no assignment.
func respAssignment(r *kmsg.ConsumerGroupHeartbeatResponse) assignment {
	if r.Assignment == nil {
		return nil
	}
	var parts []idPartition
	for _, t := range r.Assignment.Topics {
		for _, p := range t.Partitions {
			parts = append(parts, idPartition{t.TopicID, p})
		}
	}
	return assignmentOf(parts)
}

// parts builds an assignment of one topic.
func parts(topic string, ps ...int32) assignment {
	var out []idPartition
	for _, p := range ps {
		out = append(out, idPartition{tid(topic), p})
	}
	return assignmentOf(out)
}

func strp(s string) *string { return &s }

func (a assignment) count() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

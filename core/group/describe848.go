package group

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupDescribe handles a ConsumerGroupDescribe request (KIP-848,
// v0 and v1): each group's epochs, assignor and members with their current
// and target assignments. A group that does not exist, or is classic, gets
// GROUP_ID_NOT_FOUND. Authorized operations are not computed (no ACLs
// yet) and carry Kafka's "not requested" value.
func (c *Coordinator) ConsumerGroupDescribe(nowNs int64, req *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	c.begin(nowNs)
	defer c.end()
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	var names map[topicID]string
	for _, id := range req.Groups {
		dg := kmsg.NewConsumerGroupDescribeResponseGroup()
		dg.Group = id
		switch g, err := c.lookup(id); {
		case err != nil:
			dg.ErrorCode = err.Code
		case g == nil || g.cg == nil:
			msg := fmt.Sprintf("Group %s not found.", id)
			if g != nil {
				msg = fmt.Sprintf("Group %s is not a consumer group.", id)
			}
			dg.ErrorCode, dg.ErrorMessage = kerr.GroupIDNotFound.Code, &msg
		default:
			if names == nil {
				names = c.topicNames()
			}
			c.describeConsumerMembers(g, &dg, names)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (c *Coordinator) describeConsumerMembers(g *group, dg *kmsg.ConsumerGroupDescribeResponseGroup, names map[topicID]string) {
	cg := g.cg
	dg.State = cg.state().String()
	dg.Epoch, dg.AssignmentEpoch = cg.epoch, cg.targetEpoch
	dg.AssignorName = c.groupAssignor(cg)
	for _, m := range cg.members {
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.RackID = m.id, m.instanceID, m.rackID
		dm.MemberEpoch, dm.ClientID, dm.ClientHost = m.epoch, m.clientID, m.clientHost
		dm.SubscribedTopics = slices.Clone(m.topicNames)
		dm.SubscribedTopicRegex = optional(m.regex)
		dm.Assignment = describedAssignment(m.assigned, names)
		dm.TargetAssignment = describedAssignment(cg.target[m.id], names)
		dm.MemberType = 1 // a member of the consumer protocol
		dg.Members = append(dg.Members, dm)
	}
}

func describedAssignment(a assignment, names map[topicID]string) kmsg.Assignment {
	out := kmsg.NewAssignment()
	out.TopicPartitions = []kmsg.AssignmentTopicPartition{}
	for _, t := range a.sortedTopics() {
		tp := kmsg.NewAssignmentTopicPartition()
		tp.TopicID, tp.Topic, tp.Partitions = t, names[t], slices.Clone(a[t])
		out.TopicPartitions = append(out.TopicPartitions, tp)
	}
	return out
}

// topicNames maps the host's topic ids to names, for describing
// assignments.
func (c *Coordinator) topicNames() map[topicID]string {
	names := map[topicID]string{}
	for _, t := range c.host.Topics() {
		names[t.ID] = t.Name
	}
	return names
}

// describeConsumerGroup is a consumer group as DescribeGroups shows it, as
// Kafka's ConsumerGroup.asDescribedGroup: protocol type "consumer", the
// default assignor as the protocol, and each member's subscription and
// assignment in the classic consumer protocol's encoding.
func (c *Coordinator) describeConsumerGroup(g *group) kmsg.DescribeGroupsResponseGroup {
	cg := g.cg
	dg := kmsg.NewDescribeGroupsResponseGroup()
	dg.Group = g.id
	dg.State = cg.state().String()
	dg.ProtocolType = "consumer"
	dg.Protocol = c.cfg.ConsumerAssignors[0]
	names := c.topicNames()
	for _, m := range cg.members {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		sub := kmsg.NewConsumerMemberMetadata()
		sub.Version = 3
		sub.Topics = cg.subscribedNames(m)
		if m.rackID != nil {
			sub.Rack = m.rackID
		}
		dm.ProtocolMetadata = sub.AppendTo(nil)
		asg := kmsg.NewConsumerMemberAssignment()
		asg.Version = 3
		for _, t := range m.assigned.sortedTopics() {
			asg.Topics = append(asg.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: names[t], Partitions: slices.Clone(m.assigned[t])})
		}
		dm.MemberAssignment = asg.AppendTo(nil)
		dg.Members = append(dg.Members, dm)
	}
	return dg
}

// ConsumerGroupInfo is a snapshot of a consumer group, for tests, checkers
// and the simulator.
type ConsumerGroupInfo struct {
	ID          string
	State       ConsumerState
	Epoch       int32
	TargetEpoch int32
	Members     []ConsumerMemberInfo // in join order
}

// ConsumerMemberInfo is a snapshot of one member of a consumer group.
type ConsumerMemberInfo struct {
	ID, InstanceID string
	Epoch          int32
	State          string
	Assigned       map[[16]byte][]int32
	Pending        map[[16]byte][]int32
	Target         map[[16]byte][]int32
}

// ConsumerGroup returns a snapshot of consumer group id, or false if there
// is no consumer group of that id.
func (c *Coordinator) ConsumerGroup(id string) (ConsumerGroupInfo, bool) {
	g := c.groups[id]
	if g == nil || g.cg == nil {
		return ConsumerGroupInfo{ID: id}, false
	}
	cg := g.cg
	gi := ConsumerGroupInfo{ID: id, State: cg.state(), Epoch: cg.epoch, TargetEpoch: cg.targetEpoch}
	clone := func(a assignment) map[[16]byte][]int32 {
		out := map[[16]byte][]int32{}
		for t, ps := range a {
			out[t] = slices.Clone(ps)
		}
		return out
	}
	for _, m := range cg.members {
		mi := ConsumerMemberInfo{ID: m.id, Epoch: m.epoch, State: m.state.String(),
			Assigned: clone(m.assigned), Pending: clone(m.pending), Target: clone(cg.target[m.id])}
		if m.instanceID != nil {
			mi.InstanceID = *m.instanceID
		}
		gi.Members = append(gi.Members, mi)
	}
	return gi, true
}

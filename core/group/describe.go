package group

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups handles a DescribeGroups request. A group that does not
// exist is described as Dead with no error, as Kafka does before v6.
// Member metadata and assignments are shown only while the group is Stable,
// as in Kafka: in other states they are stale or not yet agreed.
// Authorized operations are not computed (no ACLs yet) and carry Kafka's
// "not requested" value.
func (c *Coordinator) DescribeGroups(nowNs int64, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	c.begin(nowNs)
	defer c.end()
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		switch g, err := c.lookup(id); {
		case err != nil:
			dg.ErrorCode = err.Code
		case g == nil:
			dg.State = Dead.String()
		case g.cg != nil:
			dg = c.describeConsumerGroup(g)
		default:
			describeClassicGroup(g, &dg)
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// lookup finds a group that a request names, for the requests about
// several groups: an error for an invalid id or a group this coordinator
// does not own (or is still loading), else the group, nil if there is
// none.
func (c *Coordinator) lookup(id string) (*group, *kerr.Error) {
	if id == "" {
		return nil, kerr.InvalidGroupID
	}
	if err := c.host.Owns(id); err != nil {
		return nil, err
	}
	return c.groups[id], nil
}

func describeClassicGroup(g *group, dg *kmsg.DescribeGroupsResponseGroup) {
	dg.State = g.state.String()
	dg.ProtocolType = g.protocolType
	stable := g.state == Stable
	if stable {
		dg.Protocol = *g.protocol
	}
	for _, m := range g.members {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
		if stable {
			dm.ProtocolMetadata = m.metadata(*g.protocol)
			dm.MemberAssignment = m.assignment
		}
		dg.Members = append(dg.Members, dm)
	}
}

// ListGroups handles a ListGroups request, groups sorted by id. The v4
// state filter and the v5 type filter match case-insensitively; a group is
// of type "classic" or (KIP-848) "consumer".
func (c *Coordinator) ListGroups(nowNs int64, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	c.begin(nowNs)
	defer c.end()
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	matches := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(strings.TrimSpace(f), v) {
				return true
			}
		}
		return false
	}
	if len(c.loads) > 0 {
		// Kafka's answer while any partition is loading: the list
		// would miss its groups.
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		return resp
	}
	for _, id := range c.sortedIDs() {
		g := c.groups[id]
		state, protocolType, groupType := g.state.String(), g.protocolType, "classic"
		if g.cg != nil {
			state, protocolType, groupType = g.cg.state().String(), "consumer", "consumer"
		}
		if !matches(req.StatesFilter, state) || !matches(req.TypesFilter, groupType) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = id
		lg.ProtocolType = protocolType
		lg.GroupState = state
		lg.GroupType = groupType
		resp.Groups = append(resp.Groups, lg)
	}
	return resp
}

// DeleteGroups handles a DeleteGroups request: an Empty group is deleted
// with its committed offsets; a group with members gets NON_EMPTY_GROUP.
// As in Kafka 4's group coordinator (every write goes through its runtime),
// the answer waits until the tombstones are committed: a deletion that is
// acknowledged survives any failover, and one that fails answers the
// write's error (it may still take effect). reply is called once.
func (c *Coordinator) DeleteGroups(nowNs int64, req *kmsg.DeleteGroupsRequest, reply func(*kmsg.DeleteGroupsResponse)) {
	c.begin(nowNs)
	defer c.end()
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(req.Groups))
	writing := 0
	for i, id := range req.Groups {
		dg := &resp.Groups[i]
		*dg = kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = id
		switch g, err := c.lookup(id); {
		case err != nil:
			dg.ErrorCode = err.Code
		case g == nil:
			dg.ErrorCode = kerr.GroupIDNotFound.Code
		case g.deleting:
			dg.ErrorCode = kerr.CoordinatorLoadInProgress.Code // being deleted: ask again
		case !g.empty():
			dg.ErrorCode = kerr.NonEmptyGroup.Code
		default:
			c.log.Info("deleting group", "group", id, "offsets", len(g.offsets))
			writing++
			c.removeGroup(g, func(werr *kerr.Error) {
				if werr != nil {
					dg.ErrorCode = werr.Code
				}
				if writing--; writing == 0 {
					reply(resp)
				}
			})
		}
	}
	if writing == 0 {
		reply(resp)
	}
}

// GroupInfo is a snapshot of one group, for tests, checkers and the
// simulator.
type GroupInfo struct {
	ID           string
	State        State
	Generation   int32
	ProtocolType string
	Protocol     string // "" outside a generation
	Leader       string
	Members      []MemberInfo // in join order
	Pending      []string     // KIP-394 ids handed out and not yet used
}

// MemberInfo is a snapshot of one member.
type MemberInfo struct {
	ID         string
	InstanceID string // "" for a dynamic member
	ClientID   string
	ClientHost string
	Assignment []byte
}

// Group returns a snapshot of group id, or false if there is no such group.
func (c *Coordinator) Group(id string) (GroupInfo, bool) {
	g := c.groups[id]
	if g == nil {
		return GroupInfo{ID: id, State: Dead}, false
	}
	gi := GroupInfo{ID: id, State: g.state, Generation: g.generation, ProtocolType: g.protocolType, Leader: g.leader}
	if g.protocol != nil {
		gi.Protocol = *g.protocol
	}
	for _, m := range g.members {
		mi := MemberInfo{ID: m.id, ClientID: m.clientID, ClientHost: m.clientHost, Assignment: slices.Clone(m.assignment)}
		if m.instanceID != nil {
			mi.InstanceID = *m.instanceID
		}
		gi.Members = append(gi.Members, mi)
	}
	for _, p := range g.pending {
		gi.Pending = append(gi.Pending, p.id)
	}
	return gi, true
}

// Groups lists every group id, sorted.
func (c *Coordinator) Groups() []string { return c.sortedIDs() }

// Committed returns the offset committed by group for a partition.
func (c *Coordinator) Committed(group, topic string, partition int32) (offset int64, ok bool) {
	g := c.groups[group]
	if g == nil {
		return -1, false
	}
	o, ok := g.offsets[topicPartition{topic, partition}]
	if !ok {
		return -1, false
	}
	return o.offset, true
}

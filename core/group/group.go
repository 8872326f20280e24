package group

import (
	"bytes"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a classic group's state, as Kafka names it.
type State int8

const (
	// Empty: no members. Committed offsets may remain.
	Empty State = iota
	// PreparingRebalance: the join barrier is up; JoinGroup responses are
	// held until every member has rejoined or the rebalance timeout passes.
	PreparingRebalance
	// CompletingRebalance: the generation is formed; members wait in
	// SyncGroup for the leader's assignment.
	CompletingRebalance
	// Stable: every member has (or may fetch) its assignment.
	Stable
	// Dead: the group does not exist (DescribeGroups of an unknown group).
	Dead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

// String is the state's name in DescribeGroups and ListGroups.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "Unknown"
}

// member is one member of a group.
type member struct {
	id         string
	instanceID *string // KIP-345 group.instance.id; nil for dynamic members
	clientID   string
	clientHost string

	sessionTimeoutMs   int32
	rebalanceTimeoutMs int32
	protocolType       string
	// protocols are the member's protocols in its order of preference,
	// without repeated names (the first of a name wins), so that counting
	// support per name counts members.
	protocols  []kmsg.JoinGroupRequestProtocol
	assignment []byte

	// join is the held JoinGroup reply (the member is "awaiting join");
	// joinVersion is that request's version.
	join        func(*kmsg.JoinGroupResponse)
	joinVersion int16
	// sync is the held SyncGroup reply (the member is "awaiting sync").
	sync func(*kmsg.SyncGroupResponse)

	// isNew: the member joined during the current rebalance. Its session
	// does not run yet (it has no id to heartbeat with until the join
	// completes); its join is bounded by newMemberJoinTimeoutMs instead.
	isNew bool
	// pendingSync: the member got this generation's JoinGroup answer but
	// has not sent SyncGroup yet.
	pendingSync bool
	// deadlineNs is when the member's session expires; zero when no expiry
	// is armed (a member awaiting a held response cannot heartbeat).
	deadlineNs int64
}

// heartbeatSatisfied reports whether an expired session should be forgiven,
// as Kafka's MemberMetadata.hasSatisfiedHeartbeat: a member blocked in a
// held JoinGroup or SyncGroup cannot heartbeat, so it is not failed for it;
// the rebalance timeout bounds that wait instead.
func (m *member) heartbeatSatisfied() bool {
	if m.isNew {
		return false
	}
	return m.join != nil || m.sync != nil
}

// matches reports whether protos are exactly the member's protocols.
func (m *member) matches(protos []kmsg.JoinGroupRequestProtocol) bool {
	if len(protos) != len(m.protocols) {
		return false
	}
	for i := range protos {
		if protos[i].Name != m.protocols[i].Name || !bytes.Equal(protos[i].Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// dedupProtocols drops repeated protocol names, keeping the first.
func dedupProtocols(in []kmsg.JoinGroupRequestProtocol) []kmsg.JoinGroupRequestProtocol {
	out := make([]kmsg.JoinGroupRequestProtocol, 0, len(in))
	for _, p := range in {
		dup := false
		for _, q := range out {
			if q.Name == p.Name {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, kmsg.JoinGroupRequestProtocol{Name: p.Name, Metadata: p.Metadata})
		}
	}
	return out
}

// pendingMember is a KIP-394 member id handed out with MEMBER_ID_REQUIRED
// and not yet used to rejoin.
type pendingMember struct {
	id         string
	deadlineNs int64
}

type topicPartition struct {
	topic     string
	partition int32
}

// committed is one committed offset.
type committed struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitNs    int64
	// expireNs is the explicit expiry of an OffsetCommit v2-v4 retention
	// time; zero when the broker's retention applies.
	expireNs int64
}

// group is one group. Members are kept in a slice in join order (byID and
// static only index it), so every output that lists members, and every
// choice that picks one, follows join order rather than map order.
type group struct {
	id           string
	state        State
	stateSinceNs int64
	generation   int32
	// protocolType is set by the first member to join an empty group; ""
	// for a group that only ever stored offsets (a "simple" group).
	protocolType string
	protocol     *string // selected protocol; nil outside a generation
	leader       string  // "" when there are no members

	members []*member
	byID    map[string]*member
	static  map[string]string // instance id → member id
	pending []pendingMember

	// joinDeadlineNs ends the join barrier (0 unless PreparingRebalance).
	// While initialJoin is set the barrier is Kafka's InitialDelayedJoin:
	// it cannot complete early, and is extended by initialDelayMs while
	// newMemberAdded, for at most initialRemainingMs more.
	joinDeadlineNs     int64
	initialJoin        bool
	initialDelayMs     int32
	initialRemainingMs int32
	newMemberAdded     bool
	// syncDeadlineNs ends the wait for SyncGroup from every member of the
	// generation; members still pendingSync then are removed.
	syncDeadlineNs int64

	offsets map[topicPartition]committed
	// pendingCommits are the partitions of commits being written (one
	// entry per commit), so that a deletion meanwhile also buries them.
	pendingCommits []topicPartition

	// cg is set when the group is a KIP-848 consumer group (type
	// "consumer"); the classic fields then stay empty (state Empty, no
	// members), so classic requests find no member in it.
	cg *consumerGroup

	// wakeNs is the deadline the coordinator's timer heap holds for this
	// group; deleted is set once the group left the coordinator.
	wakeNs  int64
	deleted bool
	touched bool
	// deleting is set while the tombstones of a DeleteGroups are being
	// written: the group stays as it is for reads until they commit, and
	// takes no change meanwhile (see Coordinator.writable).
	deleting bool
}

func newGroup(id string, nowNs int64) *group {
	return &group{
		id:           id,
		state:        Empty,
		stateSinceNs: nowNs,
		byID:         map[string]*member{},
		static:       map[string]string{},
		offsets:      map[topicPartition]committed{},
	}
}

func (g *group) transition(s State, nowNs int64) {
	g.state = s
	g.stateSinceNs = nowNs
}

func (g *group) isPending(id string) bool {
	for _, p := range g.pending {
		if p.id == id {
			return true
		}
	}
	return false
}

func (g *group) removePending(id string) {
	for i, p := range g.pending {
		if p.id == id {
			g.pending = append(g.pending[:i], g.pending[i+1:]...)
			return
		}
	}
}

func (g *group) numAwaitingJoin() int {
	n := 0
	for _, m := range g.members {
		if m.join != nil {
			n++
		}
	}
	return n
}

// allJoined is Kafka's hasAllMembersJoined: every member is waiting in
// JoinGroup and no handed-out member id is still to come back.
func (g *group) allJoined() bool {
	return g.numAwaitingJoin() == len(g.members) && len(g.pending) == 0
}

// rebalanceTimeoutMs is the largest rebalance timeout among the members.
func (g *group) rebalanceTimeoutMs() int32 {
	var t int32
	for _, m := range g.members {
		t = max(t, m.rebalanceTimeoutMs)
	}
	return t
}

// supportCount is how many members list protocol name.
func (g *group) supportCount(name string) int {
	n := 0
	for _, m := range g.members {
		for _, p := range m.protocols {
			if p.Name == name {
				n++
				break
			}
		}
	}
	return n
}

// supportsProtocols is Kafka's GroupMetadata.supportsProtocols: an empty
// group takes any non-empty protocol type and list; otherwise the type must
// match and one of the protocols must be supported by every member.
func (g *group) supportsProtocols(protocolType string, protos []kmsg.JoinGroupRequestProtocol) bool {
	if g.state == Empty {
		return protocolType != "" && len(protos) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protos {
		if g.supportCount(p.Name) == len(g.members) {
			return true
		}
	}
	return false
}

// selectProtocol lets every member vote for its most preferred protocol
// among those all members support, and takes the most voted. Kafka breaks
// ties by hash order; Weir by the order in which the protocols first got a
// vote, members taken in join order.
func (g *group) selectProtocol() string {
	var names []string
	var votes []int
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.supportCount(p.Name) != len(g.members) {
				continue
			}
			i := 0
			for i < len(names) && names[i] != p.Name {
				i++
			}
			if i == len(names) {
				names = append(names, p.Name)
				votes = append(votes, 0)
			}
			votes[i]++
			break
		}
	}
	if len(names) == 0 {
		// JoinGroup admits only members that share a protocol with all
		// others, so a generation can always pick one.
		panic("group: members share no protocol")
	}
	best := 0
	for i := range votes {
		if votes[i] > votes[best] {
			best = i
		}
	}
	return names[best]
}

// add makes m a member, as Kafka's GroupMetadata.add.
func (g *group) add(m *member) {
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	if g.leader == "" {
		g.leader = m.id
	}
	g.members = append(g.members, m)
	g.byID[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	g.removePending(m.id)
}

// remove takes m out of the group. Its held responses must have been
// answered already. A leader that leaves is replaced by the first member in
// join order.
func (g *group) remove(m *member) {
	if m.join != nil || m.sync != nil {
		panic("group: removing a member with a held response")
	}
	for i, x := range g.members {
		if x == m {
			g.members = append(g.members[:i], g.members[i+1:]...)
			break
		}
	}
	delete(g.byID, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if len(g.members) > 0 {
			g.leader = g.members[0].id
		}
	}
}

// validateMember is Kafka's ClassicGroup.validateMember: a static member
// must be the current holder of its instance id, and the member must exist.
func (g *group) validateMember(memberID string, instanceID *string) *kerr.Error {
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		if !ok {
			return kerr.UnknownMemberID
		}
		if cur != memberID {
			return kerr.FencedInstanceID
		}
	}
	if g.byID[memberID] == nil {
		return kerr.UnknownMemberID
	}
	return nil
}

// memberMetadata is what the leader gets in its JoinGroup response: every
// member, in join order, with its metadata for the selected protocol.
func (g *group) memberMetadata() []kmsg.JoinGroupResponseMember {
	out := make([]kmsg.JoinGroupResponseMember, 0, len(g.members))
	for _, m := range g.members {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = m.instanceID
		jm.ProtocolMetadata = m.metadata(*g.protocol)
		out = append(out, jm)
	}
	return out
}

// nextDeadline is the earliest armed timer of the group, or zero.
func (g *group) nextDeadline() int64 {
	var d int64
	at := func(t int64) {
		if t != 0 && (d == 0 || t < d) {
			d = t
		}
	}
	at(g.joinDeadlineNs)
	at(g.syncDeadlineNs)
	for _, p := range g.pending {
		at(p.deadlineNs)
	}
	for _, m := range g.members {
		at(m.deadlineNs)
	}
	if g.cg != nil {
		for _, m := range g.cg.members {
			at(m.sessionDeadlineNs)
			at(m.revokeDeadlineNs)
		}
	}
	return d
}

// empty reports whether the group has no members, of either protocol.
func (g *group) empty() bool {
	if g.cg != nil {
		return len(g.cg.members) == 0
	}
	return g.state == Empty
}

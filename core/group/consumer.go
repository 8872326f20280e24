package group

import (
	"fmt"
	"slices"

	"github.com/weirmq/weir/core/bugs"
)

// ConsumerState is a consumer group's state (KIP-848), as Kafka names it.
// It is not stored: it follows from the epochs and the members.
type ConsumerState int8

const (
	// ConsumerEmpty: no members.
	ConsumerEmpty ConsumerState = iota
	// ConsumerAssigning: the group epoch moved past the target
	// assignment's; the next heartbeat computes a new target.
	ConsumerAssigning
	// ConsumerReconciling: some member is not yet at the target.
	ConsumerReconciling
	// ConsumerStable: every member has its target assignment.
	ConsumerStable
)

var consumerStateNames = [...]string{"Empty", "Assigning", "Reconciling", "Stable"}

func (s ConsumerState) String() string { return consumerStateNames[s] }

// memberState is where a member is in its reconciliation, with Kafka's
// stored values (MemberState).
type memberState int8

const (
	// memberStable: the member has all of its target assignment.
	memberStable memberState = 0
	// memberUnrevoked: the member must first give up partitions; it keeps
	// its epoch until its heartbeat shows they are released.
	memberUnrevoked memberState = 1
	// memberUnreleased: the member is at the target epoch but waits for
	// partitions other members still have to release.
	memberUnreleased memberState = 2
	// memberUnknown is any state this version does not know (a record
	// of a newer broker); such a member is fenced unless it owns nothing.
	memberUnknown memberState = 127
)

var memberStateNames = map[memberState]string{
	memberStable: "stable", memberUnrevoked: "unrevoked_partitions",
	memberUnreleased: "unreleased_partitions", memberUnknown: "unknown",
}

func (s memberState) String() string { return memberStateNames[s] }

// Member epochs with a meaning of their own in ConsumerGroupHeartbeat.
const (
	joinEpoch        = 0
	leaveEpoch       = -1 // the member leaves for good
	staticLeaveEpoch = -2 // a static member leaves for now, keeping its place
)

// consumerMember is one member of a consumer group.
type consumerMember struct {
	id         string
	instanceID *string // group.instance.id; nil for dynamic members
	rackID     *string
	clientID   string
	clientHost string

	// The subscription: topic names (sorted, no repeats) and/or a regex
	// ("" for none), and the server assignor the member asks for ("" for
	// none).
	topicNames     []string
	regex          string
	serverAssignor string

	rebalanceTimeoutMs int32
	epoch, prevEpoch   int32
	state              memberState
	// assigned is what the member may consume; pending what it must give
	// up before it moves to the next epoch.
	assigned, pending assignment
	// durableEpoch is the epoch of the last committed record of the
	// member's assignment: offset commits are checked against it, as Kafka
	// checks them against its last committed state. durableHeld is what
	// the member held in that state (assigned or pending revocation), each
	// partition with its assignment epoch (KIP-1251): the epoch since which
	// the member has held it without a break.
	durableEpoch int32
	durableHeld  map[idPartition]int32

	sessionDeadlineNs int64
	// revokeDeadlineNs fences the member if it has not revoked what it
	// must by then (its rebalance timeout); zero when nothing is pending.
	revokeDeadlineNs int64
}

// subscriptionEqual reports whether m and o subscribe to the same topics
// with the same assignor, which is what moves the group epoch.
func (m *consumerMember) subscriptionEqual(o *consumerMember) bool {
	return slices.Equal(m.topicNames, o.topicNames) && m.regex == o.regex && m.serverAssignor == o.serverAssignor
}

// settle records that the member's state at epoch, holding held, is
// committed: a partition it already held keeps its assignment epoch, one
// it did not hold is assigned at epoch.
func (m *consumerMember) settle(epoch int32, held assignment) {
	next := make(map[idPartition]int32, len(held))
	for _, k := range held.partitions() {
		if e, ok := m.durableHeld[k]; ok {
			next[k] = e
		} else {
			next[k] = epoch
		}
	}
	m.durableEpoch, m.durableHeld = epoch, next
}

// holds is every partition the member still has: its assignment and what
// it has yet to revoke.
func (m *consumerMember) holds() assignment {
	if bugs.On(bugs.HandoutBeforeRelease) {
		return m.assigned // forgets what it still has to revoke
	}
	return m.assigned.union(m.pending)
}

// consumerGroup is the KIP-848 part of a group whose type is "consumer".
// Members are kept in a slice in join order; maps only index it.
type consumerGroup struct {
	epoch int32
	// metadataHash fingerprints the subscribed topics (names, ids,
	// partition counts) the group epoch was last computed with: when it
	// changes, the epoch moves and the target is recomputed.
	metadataHash int64

	members []*consumerMember
	byID    map[string]*consumerMember
	static  map[string]string // instance id → member id

	// targetEpoch is the group epoch the target assignment was computed
	// for; target is each member's share of it.
	targetEpoch int32
	target      map[string]assignment
	// owners maps each partition a member holds (assigned or pending
	// revocation) to that member: a partition another member still holds
	// is not handed out.
	owners map[idPartition]string

	// regexes caches the topic names each subscribed regex matched at
	// regexesNs.
	regexes   map[string][]string
	regexesNs int64

	writes groupWrites
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{
		byID:    map[string]*consumerMember{},
		static:  map[string]string{},
		target:  map[string]assignment{},
		owners:  map[idPartition]string{},
		regexes: map[string][]string{},
	}
}

// state computes Kafka's consumer group state.
func (cg *consumerGroup) state() ConsumerState {
	switch {
	case len(cg.members) == 0:
		return ConsumerEmpty
	case cg.epoch > cg.targetEpoch:
		return ConsumerAssigning
	}
	for _, m := range cg.members {
		if m.state != memberStable || m.epoch != cg.targetEpoch {
			return ConsumerReconciling
		}
	}
	return ConsumerStable
}

// add makes m a member, holding what m says it holds.
func (cg *consumerGroup) add(m *consumerMember) {
	if cg.byID[m.id] != nil {
		panic(fmt.Sprintf("group: member %s added twice", m.id))
	}
	cg.members = append(cg.members, m)
	cg.byID[m.id] = m
	if m.instanceID != nil {
		cg.static[*m.instanceID] = m.id
	}
	cg.claim(m, nil)
}

// remove takes m out of the group; what it held is free again.
func (cg *consumerGroup) remove(m *consumerMember) {
	cg.release(m.holds())
	i := slices.Index(cg.members, m)
	if i < 0 {
		panic(fmt.Sprintf("group: removing member %s, which is not in the group", m.id))
	}
	cg.members = slices.Delete(cg.members, i, i+1)
	delete(cg.byID, m.id)
	delete(cg.target, m.id)
	if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
		delete(cg.static, *m.instanceID)
	}
}

// setHoldings changes what m holds: the partitions it gave up are free,
// the new ones become its own.
func (cg *consumerGroup) setHoldings(m *consumerMember, assigned, pending assignment) {
	before := m.holds()
	m.assigned, m.pending = assigned, pending
	after := m.holds()
	cg.release(before.filter(func(t topicID, p int32) bool { return !after.has(t, p) }))
	cg.claim(m, before)
}

func (cg *consumerGroup) release(a assignment) {
	for _, tp := range a.partitions() {
		delete(cg.owners, tp)
	}
}

// claim records m as the holder of what it holds beyond had. Reconciliation
// hands out only free partitions, so a partition held by another member is
// a broken invariant.
func (cg *consumerGroup) claim(m *consumerMember, had assignment) {
	for _, tp := range m.holds().partitions() {
		if had.has(tp.topic, tp.partition) {
			continue
		}
		if o, ok := cg.owners[tp]; ok && o != m.id {
			panic(fmt.Sprintf("group: partition %x/%d given to %s while %s holds it", tp.topic, tp.partition, m.id, o))
		}
		cg.owners[tp] = m.id
	}
}

// free reports whether no member other than m holds a partition.
func (cg *consumerGroup) free(m *consumerMember, tp idPartition) bool {
	o, ok := cg.owners[tp]
	return !ok || o == m.id
}

package group

// Reconciliation moves one member from its current assignment towards the
// group's target, as Kafka's CurrentAssignmentBuilder: a member first gives
// up what the target takes away (keeping its epoch: it may not be handed
// anything new before the heartbeat that shows the revocation), then moves
// to the target epoch and gets what the target adds, except partitions
// another member still holds, which it gets at a later heartbeat once they
// are released.

// reconciled is a member's next reconciliation step.
type reconciled struct {
	epoch             int32
	state             memberState
	assigned, pending assignment
}

// reconcile computes m's next step. owned is what its heartbeat reports it
// owns (nil when it does not say); subscribed tells the topic ids it
// subscribes to now.
func (cg *consumerGroup) reconcile(m *consumerMember, owned assignment, subscribed func(topicID) bool) reconciled {
	cur := reconciled{m.epoch, m.state, m.assigned, m.pending}
	switch m.state {
	case memberStable:
		if m.epoch == cg.targetEpoch {
			return cur
		}
	case memberUnrevoked:
		if ownsAny(owned, m.pending) {
			return cur
		}
	case memberUnreleased:
	default:
		// memberUnknown: the caller fences it unless it owns nothing.
	}
	return cg.nextAssignment(m, owned, subscribed)
}

// ownsAny is Kafka's ownsRevokedPartitions: a member that does not report
// what it owns is taken to own everything it was given.
func ownsAny(owned, revoked assignment) bool {
	if owned == nil {
		return true
	}
	for _, tp := range owned.partitions() {
		if revoked.has(tp.topic, tp.partition) {
			return true
		}
	}
	return false
}

// nextAssignment is Kafka's computeNextAssignment.
func (cg *consumerGroup) nextAssignment(m *consumerMember, owned assignment, subscribed func(topicID) bool) reconciled {
	target := cg.target[m.id].filter(func(t topicID, _ int32) bool { return subscribed(t) })
	assigned := m.assigned.filter(target.has)
	revoke := m.assigned.filter(func(t topicID, p int32) bool { return !target.has(t, p) })
	unreleased := false
	var add []idPartition
	for _, tp := range target.partitions() {
		switch {
		case assigned.has(tp.topic, tp.partition):
		case cg.free(m, tp):
			add = append(add, tp)
		default:
			unreleased = true
		}
	}
	if len(revoke) > 0 && ownsAny(owned, revoke) {
		return reconciled{m.epoch, memberUnrevoked, assigned, revoke}
	}
	next := reconciled{cg.targetEpoch, memberStable, assigned.union(assignmentOf(add)), assignment{}}
	if unreleased {
		next.state = memberUnreleased
	}
	return next
}

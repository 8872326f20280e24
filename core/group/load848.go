package group

import (
	"fmt"
	"maps"
	"slices"
)

// loadingConsumer is what the replay of a partition found of one consumer
// group so far: the last record of each key, a tombstone removing it.
// Records may come in any order Kafka writes them (a member's records
// before the group's), so the group is put together only at Loaded.
type loadingConsumer struct {
	meta        *cgMetadataValue
	targetEpoch int32
	members     map[string]*loadingMember
}

type loadingMember struct {
	meta    *consumerMember
	target  assignment // nil when there is none
	current *storedCurrent
}

// replayConsumer takes one record of types 3 to 8.
func (c *Coordinator) replayConsumer(l *loading, r Record) error {
	k, err := readCGKey(r.Key)
	if err != nil {
		return fmt.Errorf("%w: consumer group key: %v", ErrBadRecord, err)
	}
	lc := l.consumers[k.group]
	if lc == nil {
		if r.Value == nil {
			return nil // a tombstone of something already gone
		}
		lc = &loadingConsumer{members: map[string]*loadingMember{}}
		l.consumers[k.group] = lc
	}
	lm := lc.members[k.member]
	if lm == nil && k.member != "" {
		lm = &loadingMember{}
		lc.members[k.member] = lm
	}
	bad := func(err error) error {
		return fmt.Errorf("%w: consumer group record type %d: %v", ErrBadRecord, k.typ, err)
	}
	switch k.typ {
	case cgMetadataType:
		if r.Value == nil {
			delete(l.consumers, k.group)
			return nil
		}
		v, err := decodeCGMetadata(r.Value)
		if err != nil {
			return bad(err)
		}
		lc.meta = &v
		delete(l.groups, k.group) // the group is a consumer group from here on
	case cgPartitionMetadataType:
		// Recomputed from the broker's topics instead.
	case cgMemberType:
		if r.Value == nil {
			delete(lc.members, k.member)
			return nil
		}
		if lm.meta, err = decodeMember(k.member, r.Value); err != nil {
			return bad(err)
		}
	case cgTargetMetadataType:
		lc.targetEpoch = 0
		if r.Value != nil {
			if lc.targetEpoch, err = decodeEpochValue(r.Value); err != nil {
				return bad(err)
			}
		}
	case cgTargetMemberType:
		lm.target = nil
		if r.Value != nil {
			if lm.target, err = decodeTarget(r.Value); err != nil {
				return bad(err)
			}
		}
	case cgCurrentType:
		lm.current = nil
		if r.Value != nil {
			v, err := decodeCurrent(r.Value)
			if err != nil {
				return bad(err)
			}
			lm.current = &v
		}
	default:
		panic(fmt.Sprintf("group: record type %d is not a consumer group's", k.typ))
	}
	return nil
}

// restoreConsumer makes g the consumer group the replay found. Members
// resume where their records leave them, each with a fresh session (and a
// fresh rebalance timeout if it has partitions to revoke), in member id
// order. A partition two members' records both claim (which a write lost
// between two others could leave) stays with the first.
func (c *Coordinator) restoreConsumer(g *group, lc *loadingConsumer) {
	cg := newConsumerGroup()
	cg.epoch, cg.metadataHash, cg.targetEpoch = lc.meta.epoch, lc.meta.metadataHash, lc.targetEpoch
	for _, id := range slices.Sorted(maps.Keys(lc.members)) {
		lm := lc.members[id]
		if lm.meta == nil {
			continue // records of a member removed meanwhile
		}
		m := lm.meta
		m.assigned, m.pending = assignment{}, assignment{}
		if v := lm.current; v != nil {
			m.epoch, m.prevEpoch, m.state = v.epoch, v.prevEpoch, v.state
			m.assigned, m.pending = c.unclaimed(g.id, cg, m.id, v.assigned), c.unclaimed(g.id, cg, m.id, v.pending)
		}
		// Kafka's records carry assignment epochs since KIP-1251;
		// Weir's do not, so a reloaded member's partitions count as
		// assigned at its epoch: older epochs are refused, as before.
		m.settle(m.epoch, m.holds())
		m.sessionDeadlineNs = c.nowNs + int64(c.cfg.ConsumerSessionTimeoutMs)*msNs
		if m.state == memberUnrevoked {
			m.revokeDeadlineNs = c.nowNs + int64(m.rebalanceTimeoutMs)*msNs
		}
		cg.add(m)
		if lm.target != nil {
			cg.target[id] = lm.target
		}
	}
	g.cg = cg
}

// unclaimed is the part of a stored assignment of member that no member
// restored before it holds.
func (c *Coordinator) unclaimed(groupID string, cg *consumerGroup, member string, a assignment) assignment {
	var kept []idPartition
	for _, tp := range a.partitions() {
		if o, taken := cg.owners[tp]; taken {
			c.log.Warn("partition claimed by two members of a consumer group; the first keeps it",
				"group", groupID, "member_id", member, "holder", o, "partition", tp.partition)
			continue
		}
		kept = append(kept, tp)
	}
	return assignmentOf(kept)
}

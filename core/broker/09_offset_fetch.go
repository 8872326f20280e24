package broker

// OffsetFetch v1-v9: one group up to v7, a batch of groups from v8.
//
// The group's coordinator answers from its committed state: a commit still
// being written to __consumer_offsets is not seen. A partition without a
// commit, or an unknown group, gets offset -1 and no error; null topics
// (v2+) return every committed partition sorted by topic and partition.
// The KIP-848 member id and epoch of v9 are checked for consumer groups
// (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH) and ignored for classic ones, as
// in Kafka; v10 (topic ids) is not served. RequireStable (v7+) has nothing to wait for, since
// there are no transactions yet.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleOffsetFetch(s *slot, req *kmsg.OffsetFetchRequest) {
	n.respond(s, n.groups.OffsetFetch(n.now.MonoNs, req))
}

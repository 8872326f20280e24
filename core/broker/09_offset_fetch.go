package broker

// OffsetFetch v1-v9: one group up to v7, a batch of groups from v8.
//
// Offsets come from memory (see 08_offset_commit.go: they do not survive a
// restart yet). A partition without a commit, or an unknown group, gets
// offset -1 and no error; null topics (v2+) return every committed
// partition sorted by topic and partition. The KIP-848 member id and epoch
// of v9 are ignored, as Kafka ignores them for classic groups; v10 (topic
// ids) is not served. RequireStable (v7+) has nothing to wait for, since
// there are no transactions yet.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleOffsetFetch(s *slot, req *kmsg.OffsetFetchRequest) {
	n.respond(s, n.groups.OffsetFetch(n.now.MonoNs, req))
}

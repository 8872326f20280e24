package broker

// DeleteGroups v0-v2.
//
// Deletes Empty groups and their committed offsets, answering once the
// tombstones are committed; a group with members gets NON_EMPTY_GROUP, an
// unknown one GROUP_ID_NOT_FOUND. Results are in request order (v3's error
// messages are not served).

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleDeleteGroups(s *slot, req *kmsg.DeleteGroupsRequest) {
	n.groups.DeleteGroups(n.now.MonoNs, req, func(resp *kmsg.DeleteGroupsResponse) { n.respond(s, resp) })
}

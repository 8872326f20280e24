package network

import (
	"fmt"

	"github.com/weirmq/weir/sim/fault"
	"github.com/weirmq/weir/sim/sched"
)

// Cluster traffic between nodes travels on links named after the sending
// node, so partitions and slow links apply to it as to clients. Messages
// on one link arrive in the order they were sent, as on a TCP connection;
// a message whose link is partitioned when it is sent or when it would
// arrive is lost (the peer transport drops what it cannot deliver).

// PeerName is the link name of node id's outgoing cluster traffic.
func PeerName(id int) string { return fmt.Sprintf("node%d", id) }

// Peer sends size bytes from node from to node to; deliver runs on arrival
// unless the message is lost on the way.
func (n *Network) Peer(from, to int, size int, deliver func()) {
	l := n.link(PeerName(from), to)
	now := n.loop.Now()
	if now < l.downUntil {
		return
	}
	at := max(now+n.delay(l, size), l.lastArrival)
	l.lastArrival = at
	n.loop.At(at, func() {
		if n.loop.Now() < l.downUntil {
			return
		}
		deliver()
	})
}

// IsolatePeers cuts the cluster links between nodes a and b, both ways,
// until the given time.
func (n *Network) IsolatePeers(a, b int, until sched.Time) {
	for _, k := range []linkKey{{PeerName(a), b}, {PeerName(b), a}} {
		l := n.link(k.client, k.node)
		l.downUntil = max(l.downUntil, until)
	}
	n.counts.Inc(fault.NetPartition)
	n.tr.Addf("net", "cut node %d from node %d until %s", a, b, fmtTime(until))
}

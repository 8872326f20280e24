package network

import (
	"strconv"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/sim/fault"
	"github.com/weirmq/weir/sim/rng"
	"github.com/weirmq/weir/sim/sched"
	"github.com/weirmq/weir/sim/trace"
)

// Config is the network's latency model, drawn per seed.
type Config struct {
	// Each link's one-way latency is drawn from [MinLatency, MaxLatency].
	MinLatency, MaxLatency sched.Time
	// Jitter is the most a frame's latency varies above its link's.
	Jitter sched.Time
	// BytesPerSecond is every link's bandwidth.
	BytesPerSecond int64
	// DialTimeout is how long a client waits for an answer to a dial that
	// went nowhere (the link is partitioned).
	DialTimeout sched.Time
}

// Node is what the network needs of a node process.
type Node interface {
	// Running reports whether a process is there to accept connections (a
	// paused process is running: its kernel accepts).
	Running() bool
	// Opened, Frame and Closed deliver connection events to the process.
	Opened(c *Conn)
	Frame(c *Conn, frame []byte)
	Closed(c *Conn)
}

// Client is what the network needs of a client.
type Client interface {
	// Frame delivers a response frame; flipped says a disk fault flipped a
	// bit of record data in it, which the client's CRC check must catch.
	Frame(c *Conn, frame []byte, flipped bool)
	// Closed says the connection ended: reset, closed by the node, or a
	// dial that failed.
	Closed(c *Conn, reason string)
	// Connected says a dial succeeded.
	Connected(c *Conn)
}

// Network connects clients to nodes.
type Network struct {
	loop   *sched.Loop
	rnd    *rng.Rand
	cfg    Config
	counts *fault.Counts
	tr     *trace.Trace

	// Faults switches jitter on; partitions, slow links and resets are
	// applied by whoever drives the faults.
	Jitter bool

	links  map[linkKey]*Link
	conns  []*Conn // open connections, in opening order
	nextID port.ConnID
}

type linkKey struct {
	client string
	node   int
}

// Link is the path between one client and one node.
type Link struct {
	latency   sched.Time
	downUntil sched.Time // partitioned until then
	slowUntil sched.Time
	slowBy    int64 // latency multiplier while slow
	// lastArrival keeps cluster messages on the link in order.
	lastArrival sched.Time
}

// New returns an empty network.
func New(loop *sched.Loop, rnd *rng.Rand, cfg Config, counts *fault.Counts, tr *trace.Trace) *Network {
	return &Network{loop: loop, rnd: rnd, cfg: cfg, counts: counts, tr: tr, links: map[linkKey]*Link{}}
}

func (n *Network) link(client string, node int) *Link {
	k := linkKey{client, node}
	l := n.links[k]
	if l == nil {
		l = &Link{latency: n.rnd.Range(n.cfg.MinLatency, n.cfg.MaxLatency), slowBy: 1}
		n.links[k] = l
	}
	return l
}

// delay is how long a frame of size bytes takes on l from now.
func (n *Network) delay(l *Link, size int) sched.Time {
	d := l.latency + int64(size)*sched.Second/n.cfg.BytesPerSecond
	if n.Jitter && n.cfg.Jitter > 0 {
		d += n.rnd.Int64n(n.cfg.Jitter)
		n.counts.Inc(fault.NetJitter)
	}
	if n.loop.Now() < l.slowUntil {
		d *= l.slowBy
	}
	return d
}

// Partition cuts client off from node until the given time.
func (n *Network) Partition(client string, node int, until sched.Time) {
	l := n.link(client, node)
	l.downUntil = max(l.downUntil, until)
	n.counts.Inc(fault.NetPartition)
	n.tr.Addf("net", "partition %s from node %d until %s", client, node, fmtTime(until))
}

// Slow multiplies the latency of client's link to node by factor until the
// given time.
func (n *Network) Slow(client string, node int, factor int64, until sched.Time) {
	l := n.link(client, node)
	l.slowBy, l.slowUntil = factor, until
	n.counts.Inc(fault.NetSlowLink)
	n.tr.Addf("net", "slow link %s to node %d x%d until %s", client, node, factor, fmtTime(until))
}

// Heal ends every partition and slow link.
func (n *Network) Heal() {
	now := n.loop.Now()
	for _, l := range n.links {
		l.downUntil = min(l.downUntil, now)
		l.slowUntil = min(l.slowUntil, now)
	}
}

// Conns lists the open connections in opening order.
func (n *Network) Conns() []*Conn { return n.conns }

// Conn is one connection between a client and a node.
type Conn struct {
	n      *Network
	ID     port.ConnID
	Client Client
	name   string
	node   Node
	nodeID int
	link   *Link
	// open: both sides may send; closed: it is over.
	open, closed     bool
	toNode, toClient pipe
}

// Remote is the client's name, as the node sees it.
func (c *Conn) Remote() string { return c.name }

// Dial connects client (named name) to node. The client hears Connected
// or Closed.
func (n *Network) Dial(client Client, name string, nodeID int, node Node) *Conn {
	n.nextID++
	c := &Conn{n: n, ID: n.nextID, Client: client, name: name, node: node, nodeID: nodeID, link: n.link(name, nodeID)}
	d := n.delay(c.link, 0)
	n.loop.After(d, func() {
		if c.closed {
			return
		}
		now := n.loop.Now()
		switch {
		case now < c.link.downUntil:
			// The SYN is lost; the client gives up after its dial timeout.
			n.loop.After(n.cfg.DialTimeout, func() { c.fail("dial timed out") })
		case !node.Running():
			n.loop.After(d, func() { c.fail("connection refused") })
		default:
			c.open = true
			n.conns = append(n.conns, c)
			node.Opened(c)
			n.loop.After(d, func() {
				if !c.closed {
					client.Connected(c)
				}
			})
		}
	})
	return c
}

func (c *Conn) fail(reason string) {
	if c.closed {
		return
	}
	c.closed = true
	c.Client.Closed(c, reason)
}

// pipe is one direction of a connection: frames leave in order, each
// after its own delay but never before the one ahead of it.
type pipe struct {
	queue []frameInFlight
	// last is the arrival time of the newest frame; pumping: an event is
	// scheduled for the head.
	last    sched.Time
	pumping bool
}

type frameInFlight struct {
	at      sched.Time
	size    int
	deliver func()
}

// deliver sends a frame of size bytes down p; deliver runs on arrival,
// unless the connection closes first.
func (c *Conn) deliver(p *pipe, size int, deliver func()) {
	n := c.n
	p.last = max(n.loop.Now()+n.delay(c.link, size), p.last)
	p.queue = append(p.queue, frameInFlight{at: p.last, size: size, deliver: deliver})
	if !p.pumping {
		p.pumping = true
		n.loop.At(p.queue[0].at, func() { c.pump(p) })
	}
}

// pump delivers the frames at the head of p that are due.
func (c *Conn) pump(p *pipe) {
	n := c.n
	if c.closed {
		p.queue, p.pumping = nil, false
		return
	}
	now := n.loop.Now()
	if now < c.link.downUntil {
		// Lost in the partition; TCP sends it again once healed.
		head := &p.queue[0]
		head.at = c.link.downUntil + n.delay(c.link, head.size)
		p.last = max(p.last, head.at)
		n.loop.At(head.at, func() { c.pump(p) })
		return
	}
	for len(p.queue) > 0 && p.queue[0].at <= now && !c.closed {
		f := p.queue[0]
		p.queue = p.queue[1:]
		f.deliver()
	}
	if len(p.queue) == 0 || c.closed {
		p.pumping = false
		return
	}
	n.loop.At(max(p.queue[0].at, now), func() { c.pump(p) })
}

// Send sends a request frame from the client to the node.
func (c *Conn) Send(frame []byte) {
	if !c.open || c.closed {
		return
	}
	c.deliver(&c.toNode, len(frame), func() { c.node.Frame(c, frame) })
}

// Reply sends a response frame from the node to the client.
func (c *Conn) Reply(frame []byte, flipped bool) {
	if !c.open || c.closed {
		return
	}
	c.deliver(&c.toClient, len(frame), func() { c.Client.Frame(c, frame, flipped) })
}

// Close is the client closing (abortively) its connection: frames in flight
// are dropped and the node hears of it after a delay.
func (c *Conn) Close() {
	if c.closed {
		return
	}
	wasOpen := c.open
	c.closed = true
	c.n.remove(c)
	if wasOpen {
		c.notifyNode()
	}
}

// NodeClose is the node closing the connection (a CloseConn effect): the
// client hears of it after the frames already sent, and the node's own
// ConnClosed follows at once.
func (c *Conn) NodeClose() {
	if c.closed {
		return
	}
	c.open = false
	c.n.remove(c)
	// The client hears of it behind the frames sent before it.
	c.deliver(&c.toClient, 0, func() { c.fail("closed by the node") })
	c.n.loop.After(0, func() { c.node.Closed(c) })
}

// Reset resets the connection: both sides learn, each after a delay.
func (n *Network) Reset(c *Conn) {
	if c.closed {
		return
	}
	n.counts.Inc(fault.NetReset)
	n.tr.Addf("net", "reset conn %d (%s)", c.ID, c.name)
	c.closed = true
	n.remove(c)
	c.notifyNode()
	n.loop.After(n.delay(c.link, 0), func() { c.Client.Closed(c, "connection reset") })
}

// NodeDown is a node's process dying: every connection to it is reset, and
// its clients hear of it after a delay (once any partition heals).
func (n *Network) NodeDown(nodeID int) {
	var kept []*Conn
	for _, c := range n.conns {
		if c.nodeID != nodeID {
			kept = append(kept, c)
			continue
		}
		c.closed = true
		lnk := c.link
		at := max(n.loop.Now(), lnk.downUntil) + n.delay(lnk, 0)
		n.loop.At(at, func() { c.Client.Closed(c, "connection reset by peer") })
	}
	n.conns = kept
}

// notifyNode tells the node the client side went away, after the delay a
// FIN or RST takes (and not before a partition heals).
func (c *Conn) notifyNode() {
	n := c.n
	at := max(n.loop.Now(), c.link.downUntil) + n.delay(c.link, 0)
	n.loop.At(at, func() { c.node.Closed(c) })
}

func (n *Network) remove(c *Conn) {
	for i, o := range n.conns {
		if o == c {
			n.conns = append(n.conns[:i], n.conns[i+1:]...)
			return
		}
	}
}

// fmtTime renders virtual time as seconds with milliseconds.
func fmtTime(t sched.Time) string {
	return strconv.FormatFloat(float64(t)/1e9, 'f', 3, 64) + "s"
}

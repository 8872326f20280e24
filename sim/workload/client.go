package workload

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/wire"
	"github.com/weirmq/weir/sim/network"
	"github.com/weirmq/weir/sim/rng"
	"github.com/weirmq/weir/sim/sched"
)

// Errors a call can end with besides a response.
var (
	// errNotSent: the request never left the client; it cannot have taken
	// effect.
	errNotSent = errors.New("not sent: no connection")
	// errLost: the connection ended or the request timed out after it was
	// sent; it may or may not have taken effect.
	errLost = errors.New("outcome unknown: connection lost or request timed out")
)

// client is one connection's worth of a Kafka client: it dials, sends
// requests in order, matches responses by correlation id, times requests
// out, and redials on demand.
type client struct {
	w    *World
	name string
	// nodeID and node are the node the client talks to.
	nodeID  int
	node    network.Node
	idx     int // history client index
	rnd     *rng.Rand
	timeout sched.Time

	conn      *network.Conn
	connected bool
	// dialing: a dial is scheduled; redialAt is when the next may start
	// (a client backs off after losing a connection, as real ones do).
	dialing  bool
	redialAt sched.Time
	waiting  []*call // calls waiting for the connection
	inflight []*call // sent, awaiting a response, in order
	corr     int32
	gen      uint64 // changes with every connection
}

type call struct {
	req     kmsg.Request
	corr    int32
	noReply bool
	done    func(reply)
}

// reply is how a call ended: a response, or an error (errNotSent or
// errLost). flipped says a simulated disk fault flipped a bit of record
// data in the response, which the client's CRC check must then catch.
type reply struct {
	resp    kmsg.Response
	err     error
	flipped bool
}

func newClient(w *World, name string) *client { return newClientTo(w, name, 0, w.Node) }

// newClientTo returns a client of node nodeID.
func newClientTo(w *World, name string, nodeID int, node network.Node) *client {
	return &client{w: w, name: name, nodeID: nodeID, node: node, idx: w.History.Client(name), rnd: w.rnd.Child(name),
		timeout: w.cfg.RequestTimeout}
}

// do sends req at its version (set by the caller) and calls done with the
// response or an error. noReply is for acks=0 produces: done runs once
// the request is handed to the network.
func (c *client) do(req kmsg.Request, noReply bool, done func(reply)) {
	cl := &call{req: req, noReply: noReply, done: done}
	if c.connected {
		c.send(cl)
		return
	}
	c.waiting = append(c.waiting, cl)
	if c.conn == nil && !c.dialing {
		c.dialing = true
		c.w.Loop.At(c.redialAt, func() {
			c.dialing = false
			if c.conn == nil && len(c.waiting) > 0 {
				c.gen++
				c.conn = c.w.Net.Dial(c, c.name, c.nodeID, c.node)
			}
		})
	}
}

func (c *client) send(cl *call) {
	c.corr++
	cl.corr = c.corr
	id := c.name
	frame := wire.AppendRequest(nil, wire.RequestHeader{
		APIKey: cl.req.Key(), APIVersion: cl.req.GetVersion(), CorrelationID: cl.corr, ClientID: &id,
	}, cl.req)
	c.conn.Send(frame)
	if cl.noReply {
		cl.done(reply{})
		return
	}
	c.inflight = append(c.inflight, cl)
	gen := c.gen
	c.w.Loop.After(c.timeout, func() {
		if c.gen == gen && c.pending(cl) {
			c.w.trace("%s: request %s corr %d timed out", c.name, kmsg.NameForKey(cl.req.Key()), cl.corr)
			c.abort("request timed out")
		}
	})
}

func (c *client) pending(cl *call) bool {
	for _, o := range c.inflight {
		if o == cl {
			return true
		}
	}
	return false
}

// abort closes the connection (abortively: nothing in flight arrives
// after) and fails every call on it.
func (c *client) abort(reason string) {
	if c.conn != nil {
		c.conn.Close()
	}
	c.lost(reason)
}

// lost fails the calls of the current connection and forgets it.
func (c *client) lost(reason string) {
	c.conn, c.connected = nil, false
	c.redialAt = c.w.Loop.Now() + c.rnd.Range(20*sched.Millisecond, 300*sched.Millisecond)
	c.gen++
	inflight, waiting := c.inflight, c.waiting
	c.inflight, c.waiting = nil, nil
	for _, cl := range inflight {
		cl.done(reply{err: fmt.Errorf("%w (%s)", errLost, reason)})
	}
	for _, cl := range waiting {
		cl.done(reply{err: fmt.Errorf("%w (%s)", errNotSent, reason)})
	}
}

// Connected implements network.Client.
func (c *client) Connected(conn *network.Conn) {
	if conn != c.conn {
		return
	}
	c.connected = true
	waiting := c.waiting
	c.waiting = nil
	for _, cl := range waiting {
		if c.conn != conn {
			// A call's done aborted the connection; the rest wait anew.
			c.waiting = append(c.waiting, cl)
			continue
		}
		c.send(cl)
	}
}

// Closed implements network.Client.
func (c *client) Closed(conn *network.Conn, reason string) {
	if conn != c.conn {
		return
	}
	c.w.trace("%s: connection %d closed: %s", c.name, conn.ID, reason)
	c.lost(reason)
}

// Frame implements network.Client: one response frame.
func (c *client) Frame(conn *network.Conn, frame []byte, flipped bool) {
	if conn != c.conn {
		return
	}
	if len(c.inflight) == 0 {
		c.w.fail("protocol", fmt.Sprintf("%s: a response arrived with no request in flight", c.name))
		return
	}
	cl := c.inflight[0]
	c.inflight = c.inflight[1:]
	if len(frame) < 4 || int(binary.BigEndian.Uint32(frame)) != len(frame)-4 {
		c.w.fail("protocol", fmt.Sprintf("%s: response frame size prefix does not match its %d bytes", c.name, len(frame)))
		return
	}
	corr, resp, err := wire.ParseResponse(frame[4:], cl.req.Key(), cl.req.GetVersion())
	if err != nil {
		c.w.fail("protocol", fmt.Sprintf("%s: cannot decode %s v%d response: %v", c.name, kmsg.NameForKey(cl.req.Key()), cl.req.GetVersion(), err))
		return
	}
	if corr != cl.corr {
		c.w.fail("protocol", fmt.Sprintf("%s: response correlation id %d, want %d (responses out of order)", c.name, corr, cl.corr))
		return
	}
	cl.done(reply{resp: resp, flipped: flipped})
}

// version draws a version of key between lo and hi.
func (c *client) version(lo, hi int16) int16 {
	return int16(c.rnd.Range(int64(lo), int64(hi)))
}

package workload

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/wire"
	"github.com/weirmq/weir/sim/history"
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
	// errNoRoute: the router knew no leader for the partition, or the
	// leader did not hold the topic incarnation meant; the request was
	// never sent (it is an errNotSent).
	errNoRoute = fmt.Errorf("%w: no leader known for the partition", errNotSent)
	// errExpired: the request waited for a leader, or behind other
	// requests for its partition, until its deadline, and was never sent
	// (it is an errNotSent), as Kafka clients expire such requests
	// (delivery.timeout.ms, default.api.timeout.ms).
	errExpired = fmt.Errorf("%w: timed out before it could be sent", errNotSent)
)

// client is one connection's worth of a Kafka client: it dials, sends
// requests in order, matches responses by correlation id, times requests
// out, and redials on demand. A workload client holds one per node it
// talks to (see router).
type client struct {
	w    *World
	name string
	// nodeID and node are the node the client talks to (nodeID is its
	// index in World.Nodes; its broker id is nodeID+1).
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
	// halted: the client has ended; it sends nothing more.
	halted bool
	// held maps topic names to the incarnation (topic id) the node said,
	// in a Metadata answer on connection heldGen, that it holds.
	held    map[string]history.TopicID
	heldGen uint64
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

// newClientTo returns a client of node nodeID alone, with its own name,
// history index and random stream.
func newClientTo(w *World, name string, nodeID int) *client {
	return &client{w: w, name: name, nodeID: nodeID, node: w.Nodes[nodeID], idx: w.History.Client(name), rnd: w.rnd.Child(name),
		timeout: w.cfg.RequestTimeout}
}

// do sends req at its version (set by the caller) and calls done with the
// response or an error. noReply is for acks=0 produces: done runs once
// the request is handed to the network.
func (c *client) do(req kmsg.Request, noReply bool, done func(reply)) {
	if c.halted {
		done(reply{err: fmt.Errorf("%w (halted)", errNotSent)})
		return
	}
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

// holds reports whether the node said, on the connection now open, that
// it holds incarnation id of topic (a zero id: any incarnation will do).
func (c *client) holds(topic string, id history.TopicID) bool {
	if id == (history.TopicID{}) {
		return true
	}
	return c.connected && c.heldGen == c.gen && c.held[topic] == id
}

// learnHeld notes which incarnations a Metadata answer on the open
// connection says the node holds.
func (c *client) learnHeld(resp *kmsg.MetadataResponse) {
	if c.heldGen != c.gen || c.held == nil {
		c.held, c.heldGen = map[string]history.TopicID{}, c.gen
	}
	for _, mt := range resp.Topics {
		switch {
		case mt.Topic == nil:
		case mt.ErrorCode == 0:
			c.held[*mt.Topic] = mt.TopicID
		default:
			delete(c.held, *mt.Topic)
		}
	}
}

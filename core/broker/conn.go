package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/wire"
)

// conn keeps a connection's requests in arrival order, because Kafka
// clients match responses to requests by order: a produce waiting for fsync
// holds back a metadata response that arrived after it.
type conn struct {
	id     port.ConnID
	remote string
	closed bool
	queue  []*slot
}

// slot is one request awaiting its response.
type slot struct {
	conn          *conn
	correlationID int32
	key, version  int16
	clientID      string
	done          bool
	chunks        []port.Chunk // nil with done: no response (acks=0)
	// onHead, if set, is called when every earlier response on the
	// connection has gone, so this one would go out at once.
	onHead func()
}

// atHead reports whether s's response would go out as soon as it is given.
func (s *slot) atHead() bool { q := s.conn.queue; return len(q) > 0 && q[0] == s }

func (c *conn) enqueue(h wire.RequestHeader) *slot {
	s := &slot{conn: c, correlationID: h.CorrelationID, key: h.APIKey, version: h.APIVersion}
	if h.ClientID != nil {
		s.clientID = *h.ClientID
	}
	c.queue = append(c.queue, s)
	return s
}

// respond encodes resp at the request's version and sends it when every
// earlier response on the connection has gone.
func (n *Node) respond(s *slot, resp kmsg.Response) {
	resp.SetVersion(s.version)
	n.respondChunks(s, []port.Chunk{{Bytes: wire.AppendResponse(nil, s.correlationID, resp)}})
}

// respondNothing completes a request that gets no response (acks=0).
func (n *Node) respondNothing(s *slot) { n.respondChunks(s, nil) }

func (n *Node) respondChunks(s *slot, chunks []port.Chunk) {
	if s.done {
		panic("broker: request answered twice")
	}
	s.done, s.chunks = true, chunks
	c := s.conn
	if c.closed {
		return
	}
	i := 0
	for ; i < len(c.queue) && c.queue[i].done; i++ {
		if c.queue[i].chunks != nil {
			n.emit(port.Send{Conn: c.id, Chunks: c.queue[i].chunks})
		}
	}
	c.queue = c.queue[i:]
	if i > 0 && len(c.queue) > 0 && c.queue[0].onHead != nil {
		c.queue[0].onHead()
	}
}

// barrier answers a request once all the work it waits for is done, for
// handlers whose parts finish at different times (each topic's metadata
// write, say). The handler itself holds one part until it has issued all
// the others, and finishes it with done.
type barrier struct {
	pending int
	answer  func()
}

func newBarrier(answer func()) *barrier { return &barrier{pending: 1, answer: answer} }

// wait adds a part to wait for, if block (Kafka's admin requests do not wait
// when timeout_ms is zero), and returns what finishes it.
func (b *barrier) wait(block bool) func() {
	if !block {
		return func() {}
	}
	b.pending++
	return b.done
}

func (b *barrier) done() {
	if b.pending--; b.pending == 0 {
		b.answer()
	}
}

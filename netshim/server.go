package netshim

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/wire"
	"github.com/weirmq/weir/diskshim"
)

// Config configures a Server.
type Config struct {
	// Listen lists host:port addresses to accept clients on.
	Listen []string
	// MaxRequestBytes is socket.request.max.bytes: larger frames close the
	// connection. Zero means Kafka's default, 100 MiB.
	MaxRequestBytes int32
	// Supported is the API versions the node serves, for wire.ParseRequest.
	Supported wire.Supported
	// Precheck, if set, runs on the connection goroutine after a request is
	// decoded and before the loop sees it: the node's CPU-heavy, stateless
	// validation (broker.Precheck), done in parallel across connections.
	Precheck func(*port.Request)
	// Logger receives connection events (Debug) and protocol errors (Warn).
	// Nil means slog.Default().
	Logger *slog.Logger
	// ShutdownTimeout bounds how long shutdown waits for responses owed to
	// clients. Zero means 10 s.
	ShutdownTimeout time.Duration
	// Peers, if set, enables the peer transport for cluster traffic
	// (SendPeer effects, PeerMessage inputs); see PeerConfig.
	Peers *PeerConfig
}

const (
	// maxBatch bounds the inputs Stepped before one Ready, so effects (and
	// responses) are not held back for long under a flood of inputs.
	maxBatch = 256
	// inputQueue is the input channel's capacity; when it is full, readers
	// wait, which pushes back on clients through TCP.
	inputQueue = 1024
	// readBufSize is each connection's read buffer: small requests arrive
	// with one read syscall, large frames are read straight into place.
	readBufSize = 32 << 10
	// pauseBytes: a reader stops reading requests while this many response
	// bytes wait to be written to its client.
	pauseBytes = 16 << 20
	// maxQueuedBytes: past this many bytes of responses held in memory, a
	// client is too far behind and is dropped (pausing its reader bounds
	// this only loosely: requests already read still get answered). A
	// single response of any size is accepted into an empty queue.
	maxQueuedBytes = 64 << 20
	// closeLinger bounds how long a CloseConn waits to flush earlier sends.
	closeLinger = 5 * time.Second
	// drainPoll is how often shutdown re-checks whether writers are done
	// (writers do not report progress to the loop).
	drainPoll = 10 * time.Millisecond
)

// Server is a bound set of listeners waiting to serve one node.
type Server struct {
	cfg Config
	log *slog.Logger
	lns []net.Listener

	peerLn    net.Listener // nil: no peer connections accepted
	peers     *peers       // set by Serve when cfg.Peers is set
	peerDrops atomic.Uint64

	in       chan any      // port.Input (incl. PeerMessage), *conn (opened) or connGone
	loopDone chan struct{} // closed when the loop takes no more inputs
	stopping atomic.Bool
	readers  atomic.Int64 // reader goroutines not yet finished
	nextConn atomic.Uint64
	wg       sync.WaitGroup // acceptors, readers, writers

	// Owned by the loop goroutine.
	// stopAsked: the context ended and the node was sent Stop;
	// nodeStopped: the node reported its graceful stop done.
	stopAsked, nodeStopped bool
	node                   port.Node
	disk                   *diskshim.Disk
	start                  time.Time
	conns                  map[port.ConnID]*conn
	inflight               int          // disk ops submitted and not yet completed
	later                  []port.Input // inputs produced while dispatching effects
	timer                  *time.Timer
	wakeAt                 int64
	diskDone               func(port.DiskDone)
}

// connGone is posted by a reader when it stops. quiet means it stopped for
// shutdown and the connection stays open for the responses still owed.
type connGone struct {
	c     *conn
	quiet bool
}

// Listen binds every address in cfg.Listen, so that a bad address fails
// before the node starts.
func Listen(cfg Config) (*Server, error) {
	if len(cfg.Listen) == 0 && (cfg.Peers == nil || cfg.Peers.Listen == "") {
		return nil, errors.New("netshim: no listen address")
	}
	if cfg.Supported == nil {
		return nil, errors.New("netshim: Config.Supported is nil")
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 100 << 20
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	for _, addr := range cfg.Listen {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range s.lns {
				l.Close()
			}
			return nil, err
		}
		s.lns = append(s.lns, ln)
	}
	if err := s.listenPeers(); err != nil {
		for _, l := range s.lns {
			l.Close()
		}
		return nil, err
	}
	return s, nil
}

// Addrs returns the bound addresses (useful with port 0).
func (s *Server) Addrs() []net.Addr {
	addrs := make([]net.Addr, len(s.lns))
	for i, ln := range s.lns {
		addrs[i] = ln.Addr()
	}
	return addrs
}

// Run listens on cfg.Listen and serves node until ctx is cancelled.
func Run(ctx context.Context, cfg Config, node port.Node, disk *diskshim.Disk) error {
	s, err := Listen(cfg)
	if err != nil {
		return err
	}
	return s.Serve(ctx, node, disk)
}

// Serve runs the node's loop and accepts clients until ctx is cancelled,
// then shuts down gracefully (see the package documentation) and returns
// nil. The calling goroutine becomes the loop. Serve may be called once.
func (s *Server) Serve(ctx context.Context, node port.Node, disk *diskshim.Disk) error {
	s.node, s.disk = node, disk
	s.start = time.Now()
	s.in = make(chan any, inputQueue)
	s.loopDone = make(chan struct{})
	s.conns = make(map[port.ConnID]*conn)
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	s.diskDone = func(d port.DiskDone) { s.post(d) } // one closure, not one per op
	for _, ln := range s.lns {
		s.wg.Add(1)
		go s.accept(ln)
	}
	s.startPeers()

	// A node comes out of recovery with effects already queued (repairs,
	// the first sync round): carry them out before waiting for any input.
	s.flush()
	s.loop(ctx)

	close(s.loopDone)
	s.timer.Stop()
	for _, c := range s.conns {
		c.shut()
	}
	s.stopPeers()
	s.wg.Wait()
	return nil
}

// post hands an input to the loop, or drops it once the loop has finished.
func (s *Server) post(ev any) bool {
	select {
	case s.in <- ev:
		return true
	case <-s.loopDone:
		return false
	}
}

func (s *Server) now() port.Time {
	t := time.Now()
	return port.Time{MonoNs: int64(t.Sub(s.start)), WallMs: t.UnixMilli()}
}

func (s *Server) step(in port.Input) { s.node.Step(s.now(), in) }

func (s *Server) loop(ctx context.Context) {
	cancelled := ctx.Done()
	var deadline time.Time
	var poll <-chan time.Time
	for {
		select {
		case ev := <-s.in:
			s.handle(ev)
		case <-s.timer.C:
			s.wakeAt = 0 // consumed: the next Ready's wish re-arms it
			s.step(port.Wake{})
		case <-cancelled:
			// The node hands off what it leads first (controlled
			// shutdown); the drain starts once it reports Stopped.
			cancelled = nil
			t := time.NewTicker(drainPoll)
			defer t.Stop()
			poll = t.C
			s.stopAsked = true
			s.step(port.Stop{})
		case <-poll:
		}
	batch:
		for range maxBatch - 1 {
			select {
			case ev := <-s.in:
				s.handle(ev)
			default:
				break batch
			}
		}
		s.flush()
		if s.stopAsked && s.nodeStopped && !s.stopping.Load() {
			deadline = time.Now().Add(s.cfg.ShutdownTimeout)
			s.beginShutdown()
		}
		if s.stopping.Load() && s.inflight == 0 && (s.drained() || time.Now().After(deadline)) {
			return
		}
	}
}

func (s *Server) handle(ev any) {
	switch ev := ev.(type) {
	case port.Request:
		c := s.conns[ev.Conn]
		if c == nil || c.closing {
			return // the node asked to close it: later requests are moot
		}
		if expectsResponse(ev) {
			c.owed++
		}
		s.step(ev)
	case port.DiskDone:
		s.inflight--
		s.step(ev)
	case port.PeerMessage:
		s.step(ev)
	case *conn:
		s.conns[ev.id] = ev
		if s.stopping.Load() {
			ev.stopReading()
		}
		s.log.Debug("connection opened", "conn", ev.id, "remote", ev.remote)
		s.step(port.ConnOpened{Conn: ev.id, Remote: ev.remote})
	case connGone:
		c := ev.c
		if ev.quiet {
			// Stopped for shutdown: the connection stays registered, and
			// open, until its responses are out.
			c.readerGone = true
			if c.closing {
				s.reportClosed(c)
			}
			return
		}
		s.gone(c)
		s.step(port.ConnClosed{Conn: c.id})
	}
}

// gone forgets a connection whose ConnClosed is being reported.
func (s *Server) gone(c *conn) {
	delete(s.conns, c.id)
	c.shut()
	s.log.Debug("connection closed", "conn", c.id, "remote", c.remote)
}

// expectsResponse: every Kafka request is answered except a produce with
// acks=0. Shutdown waits only for answers that will come.
func expectsResponse(r port.Request) bool {
	p, ok := r.Body.(*kmsg.ProduceRequest)
	return !ok || p.Acks != 0
}

// flush calls Ready and dispatches its effects. Inputs that dispatching
// produces are Stepped only after it, then Ready is called again: the node
// must not be Stepped while its effects are being walked.
func (s *Server) flush() {
	for {
		rd := s.node.Ready()
		for _, e := range rd.Effects {
			switch e := e.(type) {
			case port.Send:
				s.send(e)
			case port.CloseConn:
				if c := s.conns[e.Conn]; c != nil {
					s.closeConn(c)
				}
			case port.DiskOp:
				s.inflight++
				s.disk.Submit(e, s.diskDone)
			case port.SendPeer:
				s.sendPeer(e)
			default:
				s.log.Error("unknown effect", "effect", e)
			}
		}
		s.nodeStopped = s.nodeStopped || rd.Stopped
		if rd.WakeAtMonoNs != s.wakeAt {
			s.wakeAt = rd.WakeAtMonoNs
			if s.wakeAt == 0 {
				s.timer.Stop()
			} else {
				s.timer.Reset(time.Duration(s.wakeAt - s.now().MonoNs))
			}
		}
		if len(s.later) == 0 {
			return
		}
		later := s.later
		s.later = nil
		for _, in := range later {
			s.step(in)
		}
	}
}

func (s *Server) send(e port.Send) {
	c := s.conns[e.Conn]
	if c == nil || c.closing {
		return // responses owed to a closed connection are dropped
	}
	if c.owed > 0 {
		c.owed--
	}
	m := out{chunks: e.Chunks}
	for i, ch := range e.Chunks {
		m.size += ch.Size()
		if ch.File == "" {
			m.heap += int64(len(ch.Bytes))
			continue
		}
		// Acquire now, in the loop: a Remove emitted after this Send cannot
		// have run yet, so the file is still there.
		h, err := s.disk.Acquire(ch.File)
		if err != nil {
			m.release()
			s.log.Error("closing connection: response file unreadable", "conn", c.id, "remote", c.remote, "err", err)
			s.abort(c)
			return
		}
		if m.files == nil {
			m.files = make([]*diskshim.File, len(e.Chunks))
		}
		m.files[i] = h
	}
	if heap, ok := c.enqueue(m); !ok {
		m.release()
		if heap >= 0 {
			s.log.Warn("closing connection: client is not reading its responses", "conn", c.id,
				"remote", c.remote, "queued_bytes", heap)
			s.abort(c)
		}
	}
}

// closeConn carries out CloseConn: earlier sends are flushed first (within
// closeLinger), then the writer closes the socket and the reader reports.
func (s *Server) closeConn(c *conn) {
	if c.closing {
		return
	}
	c.closing = true
	c.nc.SetWriteDeadline(time.Now().Add(closeLinger))
	c.enqueue(out{close: true})
	if c.readerGone {
		s.reportClosed(c)
	}
}

// abort closes a connection at once; its reader reports ConnClosed.
func (s *Server) abort(c *conn) {
	c.closing = true
	c.shut()
	if c.readerGone {
		s.reportClosed(c)
	}
}

// reportClosed reports ConnClosed for a connection whose reader stopped
// quietly for shutdown, so cannot. It is queued, not Stepped: this may run
// while the node's effects are being dispatched.
func (s *Server) reportClosed(c *conn) {
	if !c.reported {
		c.reported = true
		s.later = append(s.later, port.ConnClosed{Conn: c.id})
	}
}

func (s *Server) beginShutdown() {
	s.log.Info("shutting down: draining responses", "conns", len(s.conns))
	s.stopping.Store(true)
	for _, ln := range s.lns {
		ln.Close()
	}
	if s.peerLn != nil {
		s.peerLn.Close() // peer connections stay up until the loop ends
	}
	for _, c := range s.conns {
		c.stopReading()
	}
}

// drained reports whether no request can come in any more (readers post
// before they count themselves out) and every live connection has been
// written everything it is owed.
func (s *Server) drained() bool {
	if s.readers.Load() > 0 || len(s.in) > 0 {
		return false
	}
	for _, c := range s.conns {
		if !c.idle() {
			return false
		}
	}
	return true
}

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Like net/http: out of descriptors and the like pass; back off.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "addr", ln.Addr(), "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		// Count the reader before checking stopping, so that shutdown either
		// sees it or this conn is never registered.
		s.readers.Add(1)
		c := newConn(port.ConnID(s.nextConn.Add(1)), nc)
		if s.stopping.Load() || !s.post(c) {
			s.readers.Add(-1)
			nc.Close()
			continue
		}
		s.wg.Add(2)
		go s.read(c)
		go s.write(c)
	}
}

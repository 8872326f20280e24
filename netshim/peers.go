package netshim

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"sync"
	"time"

	"github.com/weirmq/weir/core/port"
)

// PeerConfig configures the peer transport: the connections that carry
// cluster traffic (Raft messages, broker-to-controller calls) between nodes
// as opaque messages (port.SendPeer out, port.PeerMessage in).
//
// Listen binds PeerConfig.Listen; everything else is read when Serve starts,
// so Addrs may be completed after Listen (for example with the PeerAddr of
// other servers listening on port 0).
type PeerConfig struct {
	// Self is this node's id, sent in the handshake.
	Self port.NodeID
	// Listen is the host:port this node accepts peer connections on; ""
	// means it accepts none (a broker-only node: it only dials).
	Listen string
	// Addrs are the nodes this node dials (the controller quorum voters),
	// by id. An entry for Self is skipped.
	Addrs map[port.NodeID]string
	// MaxMessageBytes bounds one message: a larger frame closes the
	// connection, and a larger SendPeer is dropped. Zero means 64 MiB.
	MaxMessageBytes int
	// QueueMessages bounds the messages waiting to be written to one peer;
	// sends past it are dropped. Zero means 4096.
	QueueMessages int
}

const (
	peerMagic   = "WEIRPEER"
	peerVersion = 1
	helloSize   = len(peerMagic) + 2 + 4

	peerHandshakeTimeout = 5 * time.Second
	peerDialTimeout      = 5 * time.Second
	// peerWriteTimeout bounds one write of up to peerBatchBytes: a peer
	// that stops reading loses its connection instead of wedging the
	// writer.
	peerWriteTimeout = 10 * time.Second
	peerBatchBytes   = 1 << 20
	peerBackoffMin   = 50 * time.Millisecond
	peerBackoffMax   = time.Second
	peerReadBufSize  = 64 << 10
)

var (
	errPeerFrameTooBig = errors.New("peer frame exceeds MaxMessageBytes")
	errLoopDone        = errors.New("loop stopped")
	errPeersClosed     = errors.New("peer transport shut down")
)

// errHandshake is a handshake that was read but is not acceptable.
type errHandshake struct{ msg string }

func (e errHandshake) Error() string { return e.msg }

// peers is the running peer transport of a Server.
//
// Sending to a node in Addrs goes through a peerLink: a queue and a
// goroutine that dials the node (on the first send), writes the queue to
// the connection and redials with backoff when it fails; a reader
// goroutine per dialed connection delivers what the node sends back on it.
// Sending to any other node goes through the newest live connection that
// node dialed to us (a peerConn, with its own queue and writer). The loop
// only ever appends to queues, so it never blocks on a peer.
type peers struct {
	s      *Server
	cfg    PeerConfig // defaults applied; Addrs cloned without Self
	ctx    context.Context
	cancel context.CancelFunc // at shutdown: stops dials and backoff sleeps

	mu      sync.Mutex
	closed  bool
	live    map[net.Conn]struct{} // every open peer socket, closed at shutdown
	links   map[port.NodeID]*peerLink
	inbound map[port.NodeID][]*peerConn // live accepted connections, newest last
}

// peerLink is the connection this node dials to a node in Addrs.
type peerLink struct {
	to   port.NodeID
	addr string
	q    *peerQueue
}

// peerConn is a connection another node dialed to this one.
type peerConn struct {
	from port.NodeID
	q    *peerQueue
}

// listenPeers binds the peer listener, if any.
func (s *Server) listenPeers() error {
	if s.cfg.Peers == nil || s.cfg.Peers.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Peers.Listen)
	if err != nil {
		return fmt.Errorf("netshim: peer listener: %w", err)
	}
	s.peerLn = ln
	return nil
}

// PeerAddr returns the bound peer listener's address (useful with port 0),
// or nil when the server accepts no peer connections.
func (s *Server) PeerAddr() net.Addr {
	if s.peerLn == nil {
		return nil
	}
	return s.peerLn.Addr()
}

// PeerDrops returns how many SendPeer messages were dropped: the peer's
// queue was full or closed, no connection to it existed, or the message
// was too large.
func (s *Server) PeerDrops() uint64 { return s.peerDrops.Load() }

// startPeers starts the peer transport; Serve calls it before the loop.
func (s *Server) startPeers() {
	if s.cfg.Peers == nil {
		return
	}
	cfg := *s.cfg.Peers
	cfg.Addrs = maps.Clone(cfg.Addrs)
	delete(cfg.Addrs, cfg.Self)
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 64 << 20
	}
	if cfg.QueueMessages <= 0 {
		cfg.QueueMessages = 4096
	}
	p := &peers{
		s:       s,
		cfg:     cfg,
		live:    make(map[net.Conn]struct{}),
		links:   make(map[port.NodeID]*peerLink),
		inbound: make(map[port.NodeID][]*peerConn),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	s.peers = p
	if s.peerLn != nil {
		s.wg.Add(1)
		go p.accept(s.peerLn)
	}
}

// stopPeers closes the peer listener and every peer connection and stops
// the dialers; the goroutines finish on their own (Serve waits for them).
func (s *Server) stopPeers() {
	if s.peerLn != nil {
		s.peerLn.Close()
	}
	if p := s.peers; p != nil {
		p.cancel()
		p.mu.Lock()
		p.closed = true
		for nc := range p.live {
			nc.Close()
		}
		for _, l := range p.links {
			l.q.close()
		}
		for _, pcs := range p.inbound {
			for _, pc := range pcs {
				pc.q.close()
			}
		}
		p.mu.Unlock()
	}
}

// sendPeer carries out a SendPeer effect, on the loop. It never blocks:
// the message is queued for the peer's writer, or dropped.
func (s *Server) sendPeer(e port.SendPeer) {
	p := s.peers
	if p == nil {
		s.peerDrops.Add(1)
		s.log.Debug("dropping peer message: no peer transport configured", "to", e.To)
		return
	}
	if size := e.Size(); size > int64(p.cfg.MaxMessageBytes) {
		s.peerDrops.Add(1)
		s.log.Warn("dropping peer message: larger than MaxMessageBytes", "to", e.To,
			"bytes", size, "max", p.cfg.MaxMessageBytes)
		return
	}
	data, err := s.readChunks(e)
	if err != nil {
		s.peerDrops.Add(1)
		s.log.Error("dropping peer message: file unreadable", "to", e.To, "err", err)
		return
	}
	if !p.enqueue(e.To, data) {
		s.peerDrops.Add(1)
	}
}

// readChunks returns a message's bytes with its file chunks read in. It
// runs on the loop, like Send's Acquire, so no later Remove can have run;
// the reads hit the page cache (the data was just written or read).
func (s *Server) readChunks(e port.SendPeer) ([]byte, error) {
	if len(e.Chunks) == 0 {
		return e.Data, nil
	}
	data := make([]byte, 0, e.Size())
	data = append(data, e.Data...)
	for _, ch := range e.Chunks {
		if ch.File == "" {
			data = append(data, ch.Bytes...)
			continue
		}
		f, err := s.disk.Acquire(ch.File)
		if err != nil {
			return nil, err
		}
		at := len(data)
		data = data[:at+int(ch.Len)]
		_, err = f.ReadAt(data[at:], ch.Pos)
		f.Release()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", ch.File, err)
		}
	}
	return data, nil
}

func (p *peers) enqueue(to port.NodeID, data []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || to == p.cfg.Self {
		return false
	}
	if addr, ok := p.cfg.Addrs[to]; ok {
		l := p.links[to]
		if l == nil {
			l = &peerLink{to: to, addr: addr, q: newPeerQueue(p.cfg.QueueMessages)}
			p.links[to] = l
			p.s.wg.Add(1)
			go p.runLink(l)
		}
		return l.q.push(data)
	}
	if pcs := p.inbound[to]; len(pcs) > 0 {
		return pcs[len(pcs)-1].q.push(data)
	}
	return false
}

// track registers an open socket so shutdown closes it; false means the
// transport is shut down (the caller closes the socket).
func (p *peers) track(nc net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.live[nc] = struct{}{}
	return true
}

func (p *peers) untrack(nc net.Conn) {
	nc.Close()
	p.mu.Lock()
	delete(p.live, nc)
	p.mu.Unlock()
}

func (p *peers) addInbound(pc *peerConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.inbound[pc.from] = append(p.inbound[pc.from], pc)
	return true
}

func (p *peers) removeInbound(pc *peerConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc.q.close()
	pcs := p.inbound[pc.from]
	for i, x := range pcs {
		if x == pc {
			pcs = append(pcs[:i:i], pcs[i+1:]...)
			break
		}
	}
	if len(pcs) == 0 {
		delete(p.inbound, pc.from)
	} else {
		p.inbound[pc.from] = pcs
	}
}

func (p *peers) accept(ln net.Listener) {
	defer p.s.wg.Done()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if p.s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			p.s.log.Warn("peer accept failed", "addr", ln.Addr(), "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if !p.track(nc) {
			nc.Close()
			continue
		}
		p.s.wg.Add(1)
		go p.serveInbound(nc)
	}
}

// serveInbound answers a connection another node dialed: handshake, then
// it reads the node's messages while a writer sends what is queued for it.
func (p *peers) serveInbound(nc net.Conn) {
	defer p.s.wg.Done()
	defer p.untrack(nc)
	log := p.s.log
	remote := nc.RemoteAddr().String()
	nc.SetDeadline(time.Now().Add(peerHandshakeTimeout))
	br := bufio.NewReaderSize(nc, peerReadBufSize)
	from, err := readHello(br)
	if err == nil && from == p.cfg.Self {
		err = errHandshake{fmt.Sprintf("peer claims this node's id %d", from)}
	}
	if err != nil {
		p.handshakeFailed("inbound", remote, err)
		return
	}
	if _, err := nc.Write(appendHello(nil, p.cfg.Self)); err != nil {
		log.Debug("peer handshake failed", "dir", "inbound", "node", from, "remote", remote, "err", err)
		return
	}
	nc.SetDeadline(time.Time{})

	pc := &peerConn{from: from, q: newPeerQueue(p.cfg.QueueMessages)}
	if !p.addInbound(pc) {
		return
	}
	log.Debug("peer connected", "dir", "inbound", "node", from, "remote", remote)
	p.s.wg.Add(1)
	go func() {
		defer p.s.wg.Done()
		if err := p.drain(nc, pc.q); err != nil {
			nc.Close() // the reader notices
		}
	}()
	err = p.readLoop(br, from)
	nc.Close()
	p.removeInbound(pc) // stops the writer
	log.Debug("peer disconnected", "dir", "inbound", "node", from, "remote", remote, "err", quietErr(err))
}

// runLink keeps a connection to l.to up once something was sent to it:
// dial, handshake, serve until the connection fails, back off, redial.
// Messages queued while it is down wait (up to the queue's bound).
func (p *peers) runLink(l *peerLink) {
	defer p.s.wg.Done()
	var delay time.Duration
	for {
		nc, br, err := p.dial(l)
		if err == nil {
			delay = 0
			p.serveLink(l, nc, br)
		}
		if p.ctx.Err() != nil {
			return
		}
		delay = min(max(2*delay, peerBackoffMin), peerBackoffMax)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
			return
		}
	}
}

// dial connects to l and checks, through the handshake, that it reached
// node l.to.
func (p *peers) dial(l *peerLink) (net.Conn, *bufio.Reader, error) {
	log := p.s.log
	d := net.Dialer{Timeout: peerDialTimeout}
	nc, err := d.DialContext(p.ctx, "tcp", l.addr)
	if err != nil {
		if p.ctx.Err() == nil {
			log.Debug("peer dial failed", "node", l.to, "addr", l.addr, "err", err)
		}
		return nil, nil, err
	}
	if !p.track(nc) {
		nc.Close()
		return nil, nil, errPeersClosed
	}
	remote := nc.RemoteAddr().String()
	nc.SetDeadline(time.Now().Add(peerHandshakeTimeout))
	br := bufio.NewReaderSize(nc, peerReadBufSize)
	var id port.NodeID
	if _, err = nc.Write(appendHello(nil, p.cfg.Self)); err == nil {
		id, err = readHello(br)
	}
	if err == nil && id != l.to {
		err = errHandshake{fmt.Sprintf("reached node %d at %s, want node %d", id, l.addr, l.to)}
	}
	if err != nil {
		p.untrack(nc)
		p.handshakeFailed("outbound", remote, err)
		return nil, nil, err
	}
	nc.SetDeadline(time.Time{})
	return nc, br, nil
}

// serveLink runs one dialed connection until it fails or shutdown: this
// goroutine writes l's queue, a second one reads what the node sends.
func (p *peers) serveLink(l *peerLink, nc net.Conn, br *bufio.Reader) {
	log := p.s.log
	remote := nc.RemoteAddr().String()
	log.Debug("peer connected", "dir", "outbound", "node", l.to, "remote", remote)
	var rerr error
	readerDone := make(chan struct{})
	p.s.wg.Add(1)
	go func() {
		defer p.s.wg.Done()
		defer close(readerDone)
		rerr = p.readLoop(br, l.to)
		nc.Close()
		l.q.setDown(true) // wakes the writer
	}()
	werr := p.drain(nc, l.q)
	nc.Close()
	<-readerDone
	l.q.setDown(false)
	p.untrack(nc)
	log.Debug("peer disconnected", "dir", "outbound", "node", l.to, "remote", remote,
		"err", quietErr(errors.Join(werr, rerr)))
}

func (p *peers) handshakeFailed(dir, remote string, err error) {
	var he errHandshake
	if errors.As(err, &he) {
		p.s.log.Warn("peer handshake rejected", "dir", dir, "remote", remote, "err", err)
	} else if p.ctx.Err() == nil {
		p.s.log.Debug("peer handshake failed", "dir", dir, "remote", remote, "err", err)
	}
}

// readLoop posts the frames read from a peer connection to the loop until
// the connection fails or the loop stops.
func (p *peers) readLoop(br *bufio.Reader, from port.NodeID) error {
	var prefix [4]byte
	for {
		if _, err := io.ReadFull(br, prefix[:]); err != nil {
			return err
		}
		size := binary.BigEndian.Uint32(prefix[:])
		if uint64(size) > uint64(p.cfg.MaxMessageBytes) {
			p.s.log.Warn("closing peer connection: frame too large", "node", from,
				"bytes", size, "max", p.cfg.MaxMessageBytes)
			return errPeerFrameTooBig
		}
		// A fresh slice per message: the core may keep it.
		data, err := readFrame(br, int(size))
		if err != nil {
			return err
		}
		if !p.s.post(port.PeerMessage{From: from, Data: data}) {
			return errLoopDone
		}
	}
}

// drain writes q's messages to nc, in order, until q is closed or marked
// down (nil) or a write fails (the error).
func (p *peers) drain(nc net.Conn, q *peerQueue) error {
	var w frameWriter
	var spare [][]byte
	for {
		batch, ok := q.take(spare)
		if !ok {
			return nil
		}
		err := w.write(nc, batch)
		clear(batch) // do not pin sent messages
		spare = batch[:0]
		if err != nil {
			return err
		}
	}
}

// quietErr hides the errors of an ordinary close.
func quietErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, errLoopDone) {
		return nil
	}
	return err
}

// peerQueue holds the messages waiting for one peer's writer.
type peerQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	q      [][]byte
	limit  int
	closed bool // no more sends; the writer stops
	down   bool // the current connection failed; the writer stops, the queue stays
}

func newPeerQueue(limit int) *peerQueue {
	q := &peerQueue{limit: limit}
	q.cond.L = &q.mu
	return q
}

// push appends a message; false when the queue is full or closed.
func (q *peerQueue) push(b []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || len(q.q) >= q.limit {
		return false
	}
	q.q = append(q.q, b)
	q.cond.Signal()
	return true
}

func (q *peerQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.q = nil
	q.cond.Broadcast()
	q.mu.Unlock()
}

func (q *peerQueue) setDown(down bool) {
	q.mu.Lock()
	q.down = down
	q.cond.Broadcast()
	q.mu.Unlock()
}

// take waits for messages and returns all of them (reusing spare for the
// queue's next contents); false when the queue is closed or down.
func (q *peerQueue) take(spare [][]byte) ([][]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.q) == 0 && !q.closed && !q.down {
		q.cond.Wait()
	}
	if q.closed || q.down {
		return nil, false
	}
	batch := q.q
	q.q = spare
	return batch, true
}

// frameWriter writes messages as length-prefixed frames, gathering up to
// peerBatchBytes of them into one writev, each under a write deadline.
type frameWriter struct {
	hdrs []byte
	bufs net.Buffers
}

func (w *frameWriter) write(nc net.Conn, batch [][]byte) error {
	if cap(w.hdrs) < 4*len(batch) {
		w.hdrs = make([]byte, 4*len(batch))
	}
	hdrs := w.hdrs[:4*len(batch)]
	size := 0
	for i, m := range batch {
		h := hdrs[4*i : 4*i+4]
		binary.BigEndian.PutUint32(h, uint32(len(m)))
		w.bufs = append(w.bufs, h)
		if len(m) > 0 {
			w.bufs = append(w.bufs, m)
		}
		size += 4 + len(m)
		if size >= peerBatchBytes || i == len(batch)-1 {
			if err := w.flush(nc); err != nil {
				return err
			}
			size = 0
		}
	}
	return nil
}

func (w *frameWriter) flush(nc net.Conn) error {
	nc.SetWriteDeadline(time.Now().Add(peerWriteTimeout))
	bufs := w.bufs
	_, err := w.bufs.WriteTo(nc) // consumes w.bufs; writev on a TCP conn
	clear(bufs)
	w.bufs = bufs[:0]
	return err
}

// appendHello appends a handshake: magic, version, node id.
func appendHello(b []byte, id port.NodeID) []byte {
	b = append(b, peerMagic...)
	b = binary.BigEndian.AppendUint16(b, peerVersion)
	return binary.BigEndian.AppendUint32(b, uint32(id))
}

// readHello reads and checks a handshake, returning the sender's node id.
func readHello(r io.Reader) (port.NodeID, error) {
	var b [helloSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, err
	}
	if string(b[:len(peerMagic)]) != peerMagic {
		return 0, errHandshake{fmt.Sprintf("bad handshake magic %q", b[:len(peerMagic)])}
	}
	if v := binary.BigEndian.Uint16(b[len(peerMagic):]); v != peerVersion {
		return 0, errHandshake{fmt.Sprintf("unsupported peer protocol version %d", v)}
	}
	return port.NodeID(int32(binary.BigEndian.Uint32(b[len(peerMagic)+2:]))), nil
}

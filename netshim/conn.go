package netshim

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/wire"
	"github.com/weirmq/weir/diskshim"
)

// conn is one client connection: a reader goroutine, a writer goroutine and
// the queue between the loop and the writer.
type conn struct {
	id     port.ConnID
	nc     net.Conn
	raw    syscall.RawConn // for sendfile; nil if nc is not a syscall.Conn
	remote string

	mu     sync.Mutex
	cond   sync.Cond // queue or closed changed (writer and paused reader wait)
	q      []out
	spare  []out // the writer's previous batch, reused
	queued int64 // bytes enqueued and not yet written
	heap   int64 // the part of queued held in memory (byte chunks)
	closed bool  // socket closed: the writer drops what is left

	nb net.Buffers // writer's scratch for writev

	// Owned by the loop.
	owed       int  // requests Stepped that still expect a response
	closing    bool // a CloseConn or abort was issued: drop further sends
	readerGone bool // the reader stopped quietly for shutdown
	reported   bool // ConnClosed was queued for a readerGone conn
}

// out is one Send, or the close marker a CloseConn leaves in the queue.
type out struct {
	chunks []port.Chunk
	files  []*diskshim.File // files[i] serves chunks[i] when it is a file chunk
	size   int64            // bytes on the wire
	heap   int64            // bytes of byte chunks
	close  bool
}

func (m *out) release() {
	for _, f := range m.files {
		if f != nil {
			f.Release()
		}
	}
	m.files = nil
}

var errCloseRequested = errors.New("close requested")

func newConn(id port.ConnID, nc net.Conn) *conn {
	c := &conn{id: id, nc: nc, remote: nc.RemoteAddr().String()}
	c.cond.L = &c.mu
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	return c
}

// enqueue hands m to the writer. It fails on a closed connection (heap is
// -1) or when the client is too far behind (heap is what was waiting).
// Only byte chunks count against maxQueuedBytes: file chunks cost a
// descriptor reference, not memory.
func (c *conn) enqueue(m out) (heap int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return -1, false
	}
	if c.heap > 0 && c.heap+m.heap > maxQueuedBytes {
		return c.heap, false
	}
	c.q = append(c.q, m)
	c.queued += m.size
	c.heap += m.heap
	c.cond.Broadcast()
	return c.heap, true
}

// shut closes the socket and tells the writer (and a paused reader) to stop.
func (c *conn) shut() {
	c.nc.Close()
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
}

// stopReading makes the reader stop at its next read, for shutdown. The
// past deadline also fails a read that is blocked right now.
func (c *conn) stopReading() {
	c.nc.SetReadDeadline(time.Unix(1, 0))
	c.mu.Lock()
	c.cond.Broadcast() // a paused reader re-checks stopping
	c.mu.Unlock()
}

// idle: everything owed to the client has been written, or never will be.
func (c *conn) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed || c.owed == 0 && c.queued == 0
}

func (s *Server) read(c *conn) {
	defer s.wg.Done()
	quiet := false
	defer func() {
		if !quiet {
			c.shut()
		}
		s.post(connGone{c: c, quiet: quiet})
		s.readers.Add(-1)
	}()
	br := bufio.NewReaderSize(c.nc, readBufSize)
	var prefix [4]byte
	for {
		if !c.waitRoom(&s.stopping) {
			return
		}
		if s.stopping.Load() {
			quiet = true
			return
		}
		if _, err := io.ReadFull(br, prefix[:]); err != nil {
			quiet = s.readFailed(c, err)
			return
		}
		size, err := wire.ReadFrameSize(prefix, s.cfg.MaxRequestBytes)
		if err != nil {
			s.log.Warn("closing connection: bad request frame", "conn", c.id, "remote", c.remote, "err", err)
			return
		}
		// A fresh buffer per frame: decoded requests alias it and the core
		// keeps produce data past this loop iteration. It grows as bytes
		// arrive, so a client that declares 100 MiB and sends nothing
		// costs nothing.
		frame, err := readFrame(br, int(size))
		if err != nil {
			quiet = s.readFailed(c, err)
			return
		}
		hdr, body, err := wire.ParseRequest(frame, s.cfg.Supported)
		if err != nil {
			s.log.Debug("request did not decode", "conn", c.id, "remote", c.remote, "err", err)
		}
		req := port.Request{Conn: c.id, Header: hdr, Body: body, Err: err, FrameBytes: 4 + int(size)}
		if err == nil && s.cfg.Precheck != nil {
			s.cfg.Precheck(&req)
		}
		s.post(req)
	}
}

// readFailed logs a read error and reports whether it is shutdown's
// deadline (the reader then leaves the connection open for writes).
func (s *Server) readFailed(c *conn, err error) (quiet bool) {
	if s.stopping.Load() {
		return true
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		s.log.Debug("connection read failed", "conn", c.id, "remote", c.remote, "err", err)
	}
	return false
}

// waitRoom pauses the reader while its client has too many unread
// responses. It returns false if the connection closed meanwhile.
func (c *conn) waitRoom(stopping *atomic.Bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.queued >= pauseBytes && !c.closed && !stopping.Load() {
		c.cond.Wait()
	}
	return !c.closed
}

func (s *Server) write(c *conn) {
	defer s.wg.Done()
	for {
		c.mu.Lock()
		for len(c.q) == 0 && !c.closed {
			c.cond.Wait()
		}
		if c.closed {
			rest := c.q
			c.q = nil
			c.mu.Unlock()
			for i := range rest {
				rest[i].release()
			}
			return
		}
		batch := c.q
		c.q = c.spare[:0]
		c.mu.Unlock()

		err := c.writeBatch(batch)
		var n, heap int64
		for i := range batch {
			n += batch[i].size
			heap += batch[i].heap
			batch[i].release()
		}
		clear(batch)
		c.mu.Lock()
		c.queued -= n
		c.heap -= heap
		c.spare = batch[:0]
		c.cond.Broadcast() // a paused reader may go on
		c.mu.Unlock()

		if err != nil {
			if err != errCloseRequested && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("connection write failed", "conn", c.id, "remote", c.remote, "err", err)
			}
			c.shut() // the reader notices and reports ConnClosed
		}
	}
}

// writeBatch writes sends in order: consecutive byte chunks (across sends)
// go out in one writev, file chunks by sendfile between them.
func (c *conn) writeBatch(batch []out) error {
	c.nb = c.nb[:0]
	for _, m := range batch {
		if m.close {
			if err := c.flushBufs(); err != nil {
				return err
			}
			return errCloseRequested
		}
		for i, ch := range m.chunks {
			if ch.File == "" {
				if len(ch.Bytes) > 0 {
					c.nb = append(c.nb, ch.Bytes)
				}
				continue
			}
			if err := c.flushBufs(); err != nil {
				return err
			}
			if err := c.sendFile(m.files[i].OSFile(), ch.Pos, ch.Len); err != nil {
				return err
			}
		}
	}
	return c.flushBufs()
}

func (c *conn) flushBufs() error {
	if len(c.nb) == 0 {
		return nil
	}
	bufs := c.nb
	_, err := c.nb.WriteTo(c.nc) // consumes c.nb; writev on a TCP conn
	clear(bufs)                  // do not pin response bytes until next time
	c.nb = bufs[:0]
	return err
}

// copyFile is the portable path for file chunks: through a heap buffer.
func copyFile(w io.Writer, f *os.File, off, n int64) error {
	written, err := io.Copy(w, io.NewSectionReader(f, off, n))
	if err == nil && written < n {
		err = io.ErrUnexpectedEOF // the file is shorter than the range
	}
	return err
}

// frameChunk is how much of a frame is allocated before its bytes arrive.
const frameChunk = 1 << 20

// readFrame reads exactly size bytes, allocating at most frameGrowth times
// what has been received: a client that declares 100 MiB and sends nothing
// costs one chunk, and a frame of a few MiB costs one copy of its first
// chunk (doubling would copy and clear three times as much: at hundreds of
// MB/s of produce that garbage is what the collector spends its time on).
func readFrame(r io.Reader, size int) ([]byte, error) {
	frame := make([]byte, min(size, frameChunk))
	if _, err := io.ReadFull(r, frame); err != nil {
		return nil, err
	}
	for len(frame) < size {
		grown := make([]byte, min(size, frameGrowth*len(frame)))
		have := copy(grown, frame)
		frame = grown
		if _, err := io.ReadFull(r, frame[have:]); err != nil {
			return nil, err
		}
	}
	return frame, nil
}

// frameGrowth bounds a frame's buffer relative to the bytes received.
const frameGrowth = 4

package netshim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/diskshim"
)

// peerNode is a fake port.Node for the peer transport: it records the peer
// messages it is given, emits the SendPeer effects a test queues, answers
// "echo:x" with "re:x" to the sender, and asks for a wake-up every few
// milliseconds so that queued sends go out without other input.
type peerNode struct {
	mu      sync.Mutex
	got     []port.PeerMessage
	out     []port.Effect
	now     int64
	steps   int
	stopped bool
}

func (n *peerNode) Step(now port.Time, in port.Input) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.now = now.MonoNs
	n.steps++
	if _, ok := in.(port.Stop); ok {
		n.stopped = true
	}
	if m, ok := in.(port.PeerMessage); ok {
		n.got = append(n.got, m)
		if rest, ok := bytes.CutPrefix(m.Data, []byte("echo:")); ok {
			n.out = append(n.out, port.SendPeer{To: m.From, Data: append([]byte("re:"), rest...)})
		}
	}
}

func (n *peerNode) Ready() port.Ready {
	n.mu.Lock()
	defer n.mu.Unlock()
	rd := port.Ready{Effects: n.out, WakeAtMonoNs: n.now + int64(5*time.Millisecond), Stopped: n.stopped}
	n.out = nil
	return rd
}

// send queues a SendPeer for the node's next Ready.
func (n *peerNode) send(to port.NodeID, data []byte) {
	n.mu.Lock()
	n.out = append(n.out, port.SendPeer{To: to, Data: data})
	n.mu.Unlock()
}

func (n *peerNode) messages() []port.PeerMessage {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]port.PeerMessage(nil), n.got...)
}

func (n *peerNode) stepCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.steps
}

// eventually polls cond for up to 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitMessage waits until the node has a message from `from` with data.
func (n *peerNode) waitMessage(t testing.TB, from port.NodeID, data string) {
	t.Helper()
	eventually(t, fmt.Sprintf("message %q from %d", data, from), func() bool {
		for _, m := range n.messages() {
			if m.From == from && string(m.Data) == data {
				return true
			}
		}
		return false
	})
}

type peerHarness struct {
	s      *Server
	pc     *PeerConfig
	node   *peerNode
	logs   *syncBuffer
	disk   *diskshim.Disk
	cancel context.CancelFunc
	done   chan error
	served bool
	ended  bool
}

// listenPeer binds a server for node self, with a peer listener when
// listen is set. Fill pc.Addrs, then call serve.
func listenPeer(t testing.TB, self port.NodeID, listen bool) *peerHarness {
	t.Helper()
	h := &peerHarness{
		pc:   &PeerConfig{Self: self, Addrs: map[port.NodeID]string{}},
		node: &peerNode{},
		logs: &syncBuffer{},
		done: make(chan error, 1),
	}
	if listen {
		h.pc.Listen = "127.0.0.1:0"
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	disk, err := diskshim.New(t.TempDir(), 1, log)
	if err != nil {
		t.Fatal(err)
	}
	h.disk = disk
	s, err := Listen(Config{Listen: []string{"127.0.0.1:0"}, Supported: supported, Logger: log, Peers: h.pc,
		ShutdownTimeout: time.Second})
	if err != nil {
		disk.Close()
		t.Fatal(err)
	}
	h.s = s
	t.Cleanup(func() {
		h.stop(t)
		if t.Failed() {
			t.Logf("node %d logs:\n%s", self, h.logs)
		}
	})
	return h
}

func (h *peerHarness) addr() string { return h.s.PeerAddr().String() }

func (h *peerHarness) serve() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.served = true
	go func() { h.done <- h.s.Serve(ctx, h.node, h.disk) }()
}

// stop ends Serve (or releases an unserved server) and closes the disk.
func (h *peerHarness) stop(t testing.TB) {
	t.Helper()
	if h.ended {
		return
	}
	h.ended = true
	if h.served {
		h.cancel()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Serve did not return")
		}
	} else {
		for _, ln := range h.s.lns {
			ln.Close()
		}
		if h.s.peerLn != nil {
			h.s.peerLn.Close()
		}
	}
	h.disk.Close()
}

func payload(from port.NodeID, i int) []byte {
	b := fmt.Appendf(nil, "%d:%d:", from, i)
	return append(b, bytes.Repeat([]byte{byte(i)}, (i*7919)%50000)...)
}

func checkInOrder(t testing.TB, got []port.PeerMessage, from port.NodeID, n int) {
	t.Helper()
	var mine []port.PeerMessage
	for _, m := range got {
		if m.From == from {
			mine = append(mine, m)
		}
	}
	if len(mine) != n {
		t.Fatalf("got %d messages from %d, want %d", len(mine), from, n)
	}
	for i, m := range mine {
		if !bytes.Equal(m.Data, payload(from, i)) {
			t.Fatalf("message %d from %d: got %d bytes %.20q, want %.20q", i, from, len(m.Data), m.Data, payload(from, i))
		}
	}
}

func TestPeersExchangeInOrder(t *testing.T) {
	a, b := listenPeer(t, 1, true), listenPeer(t, 2, true)
	addrs := map[port.NodeID]string{1: a.addr(), 2: b.addr()}
	a.pc.Addrs, b.pc.Addrs = addrs, addrs // each skips itself
	a.serve()
	b.serve()
	const n = 1000
	for i := range n {
		a.node.send(2, payload(1, i))
		b.node.send(1, payload(2, i))
	}
	eventually(t, "all messages", func() bool {
		return len(a.node.messages()) >= n && len(b.node.messages()) >= n
	})
	// Checked after everything arrived: an earlier message's Data must not
	// have been overwritten by later reads.
	checkInOrder(t, b.node.messages(), 1, n)
	checkInOrder(t, a.node.messages(), 2, n)
	if d := a.s.PeerDrops() + b.s.PeerDrops(); d != 0 {
		t.Errorf("%d messages dropped", d)
	}
}

func TestPeerDialOnlyGetsReplies(t *testing.T) {
	ctrl := listenPeer(t, 1, true)
	ctrl.pc.Addrs = map[port.NodeID]string{1: ctrl.addr()}
	ctrl.serve()
	broker := listenPeer(t, 7, false)
	if broker.s.PeerAddr() != nil {
		t.Fatalf("PeerAddr = %v for a node without a peer listener", broker.s.PeerAddr())
	}
	broker.pc.Addrs = map[port.NodeID]string{1: ctrl.addr()}
	broker.serve()

	// The controller cannot reach node 7 before it dialed: dropped.
	ctrl.node.send(7, []byte("too early"))
	eventually(t, "drop of a send to an unknown node", func() bool { return ctrl.s.PeerDrops() == 1 })

	broker.node.send(1, []byte("echo:hello"))
	broker.node.waitMessage(t, 1, "re:hello")
	// Unsolicited, over the broker's connection too, in order.
	for i := range 50 {
		ctrl.node.send(7, payload(1, i))
	}
	eventually(t, "controller's messages", func() bool { return len(broker.node.messages()) >= 51 })
	checkInOrder(t, broker.node.messages()[1:], 1, 50)
}

func TestPeerUnreachableDropsThenReconnects(t *testing.T) {
	// Reserve a port, then free it: node 2 is not there yet.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr2 := ln.Addr().String()
	ln.Close()

	a := listenPeer(t, 1, true)
	a.pc.QueueMessages = 8
	a.pc.Addrs = map[port.NodeID]string{2: addr2}
	a.serve()
	for i := range 100 {
		a.node.send(2, payload(1, i))
	}
	// Dispatch never blocks: the loop goes on stepping while the queue is
	// full and the dialer backs off.
	eventually(t, "drops", func() bool { return a.s.PeerDrops() >= 100-8 })
	steps := a.node.stepCount()
	eventually(t, "the loop to keep running", func() bool { return a.node.stepCount() > steps+10 })

	b := listenPeerAt(t, 2, addr2)
	b.serve()
	// The queue is full until the link reconnects: keep sending, as Raft
	// would, until a message gets through.
	eventually(t, "delivery after node 2 started", func() bool {
		for _, m := range b.node.messages() {
			if string(m.Data) == "after" {
				return true
			}
		}
		a.node.send(2, []byte("after"))
		return false
	})
	// What was queued during the outage went first, in order.
	got := b.node.messages()
	for i, m := range got {
		want := []byte("after")
		if i < 8 {
			want = payload(1, i)
		}
		if m.From != 1 || !bytes.Equal(m.Data, want) {
			t.Fatalf("message %d: got %.20q from %d, want %.20q from 1", i, m.Data, m.From, want)
		}
	}
}

// listenPeerAt is listenPeer with a given peer listen address.
func listenPeerAt(t testing.TB, self port.NodeID, addr string) *peerHarness {
	t.Helper()
	var h *peerHarness
	eventually(t, "binding "+addr, func() bool {
		var err error
		h, err = tryListenPeer(t, self, addr)
		return err == nil
	})
	return h
}

func tryListenPeer(t testing.TB, self port.NodeID, addr string) (*peerHarness, error) {
	h := &peerHarness{
		pc:   &PeerConfig{Self: self, Listen: addr},
		node: &peerNode{},
		logs: &syncBuffer{},
		done: make(chan error, 1),
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	disk, err := diskshim.New(t.TempDir(), 1, log)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Listen(Config{Supported: supported, Logger: log, Peers: h.pc, ShutdownTimeout: time.Second})
	if err != nil {
		disk.Close()
		return nil, err
	}
	h.s, h.disk = s, disk
	t.Cleanup(func() {
		h.stop(t)
		if t.Failed() {
			t.Logf("node %d logs:\n%s", self, h.logs)
		}
	})
	return h, nil
}

// rawPeer dials addr and performs the dialer's side of the handshake as
// node id, returning the acceptor's id.
func rawPeer(t testing.TB, addr string, id port.NodeID) (net.Conn, *bufio.Reader, port.NodeID) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(appendHello(nil, id)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	got, err := readHello(br)
	if err != nil {
		t.Fatalf("acceptor's handshake: %v", err)
	}
	return nc, br, got
}

func frameOf(data []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(data))), data...)
}

// expectClosed reads until the server closes the connection.
func expectClosed(t testing.TB, nc net.Conn, r io.Reader) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection was not closed")
	}
}

func TestPeerBadInputCloses(t *testing.T) {
	a := listenPeer(t, 1, true)
	a.pc.MaxMessageBytes = 1024
	a.serve()

	// The acceptor identifies itself; a good frame is delivered.
	nc, br, id := rawPeer(t, a.addr(), 5)
	if id != 1 {
		t.Fatalf("acceptor says it is node %d, want 1", id)
	}
	nc.Write(frameOf([]byte("hi")))
	a.node.waitMessage(t, 5, "hi")
	// An oversize frame closes the connection.
	nc.Write(frameOf(make([]byte, 1025)))
	expectClosed(t, nc, br)

	// Garbage instead of a handshake.
	g, err := net.Dial("tcp", a.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	expectClosed(t, g, g)

	// A wrong protocol version.
	v, err := net.Dial("tcp", a.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	hello := appendHello(nil, 5)
	hello[len(peerMagic)+1] = 2
	v.Write(hello)
	expectClosed(t, v, v)

	// Silence: the handshake times out.
	q, err := net.Dial("tcp", a.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	expectClosed(t, q, q)

	// The node is still fine.
	nc2, _, _ := rawPeer(t, a.addr(), 6)
	nc2.Write(frameOf([]byte("still here")))
	a.node.waitMessage(t, 6, "still here")
	if !strings.Contains(a.logs.String(), "bad handshake magic") {
		t.Error("garbage handshake not logged")
	}
}

func TestPeerWrongNodeRejected(t *testing.T) {
	imposter := listenPeer(t, 3, true)
	imposter.serve()
	a := listenPeer(t, 1, true)
	a.pc.Addrs = map[port.NodeID]string{2: imposter.addr()} // node 3 is there
	a.serve()
	a.node.send(2, []byte("for node 2 only"))
	eventually(t, "handshake rejection", func() bool {
		return strings.Contains(a.logs.String(), "reached node 3")
	})
	// It keeps retrying (with backoff) and keeps rejecting.
	eventually(t, "a second rejection", func() bool {
		return strings.Count(a.logs.String(), "reached node 3") >= 2
	})
	if m := imposter.node.messages(); len(m) != 0 {
		t.Fatalf("the wrong node received %v", m)
	}
}

func TestPeerShutdownNoLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		ln.Close()

		a, b := listenPeer(t, 1, true), listenPeer(t, 2, true)
		c := listenPeer(t, 9, false)
		addrs := map[port.NodeID]string{1: a.addr(), 2: b.addr(), 3: dead}
		a.pc.Addrs, b.pc.Addrs, c.pc.Addrs = addrs, addrs, addrs
		a.serve()
		b.serve()
		c.serve()
		for i := range 20 {
			a.node.send(2, payload(1, i))
			a.node.send(3, payload(1, i)) // never connects: backoff
			b.node.send(1, payload(2, i))
		}
		c.node.send(1, []byte("echo:x"))
		c.node.waitMessage(t, 1, "re:x")
		eventually(t, "messages", func() bool {
			return len(a.node.messages()) >= 20 && len(b.node.messages()) >= 20
		})
		// A half-open handshake and a live raw peer at shutdown.
		h, err := net.Dial("tcp", a.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		nc, _, _ := rawPeer(t, b.addr(), 8)
		defer nc.Close()
		b.node.send(8, []byte("to raw"))

		for _, x := range []*peerHarness{a, b, c} {
			x.stop(t)
		}
	}()
	var n int
	deadline := time.Now().Add(10 * time.Second)
	for {
		n = runtime.NumGoroutine()
		if n <= before || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("goroutines: %d before, %d after shutdown", before, n)
	if n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after shutdown:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

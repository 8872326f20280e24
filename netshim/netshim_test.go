package netshim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/wire"
	"github.com/weirmq/weir/diskshim"
)

// fakeNode is a tiny port.Node: ApiVersions answers at once; Produce
// appends its records to logPath and answers after the fsync (acks=0: no
// answer), with at most one fsync in flight, covering every produce before
// it, as the broker's group commit does (noSync: answers once written); Fetch answers with a header and the whole log as a file chunk
// (and removes the log right after if ReplicaID is removeFlag); Metadata
// answers metadataDelay later, through a Wake.
type fakeNode struct {
	events chan string // what happened, for the test to wait on

	noSync  bool
	stopped bool // a Stop came: the fake has nothing to hand off

	eff      []port.Effect
	nextOp   port.OpID
	made     bool
	size     int64
	unsynced []pending
	syncOp   port.OpID               // the fsync in flight
	waiting  map[port.OpID][]pending // by the op that completes them
	delayed  []pending
}

type pending struct {
	conn    port.ConnID
	corr    int32
	version int16
	acks    int16
	due     int64
}

const (
	logPath       = "t-0/00000000000000000000.log"
	removeFlag    = -7
	metadataDelay = 300 * time.Millisecond
	bigResponse   = 8 << 20
)

func newFakeNode() *fakeNode {
	return &fakeNode{events: make(chan string, 1000), waiting: map[port.OpID][]pending{}}
}

func (n *fakeNode) emit(e port.Effect) { n.eff = append(n.eff, e) }

func (n *fakeNode) disk(kind port.OpKind, path string, pos int64, data []byte) port.OpID {
	n.nextOp++
	n.emit(port.DiskOp{ID: n.nextOp, Kind: kind, Lane: "t-0", Path: path, Pos: pos, Data: data})
	return n.nextOp
}

func (n *fakeNode) respond(c port.ConnID, corr int32, resp kmsg.Response) {
	n.emit(port.Send{Conn: c, Chunks: []port.Chunk{{Bytes: wire.AppendResponse(nil, corr, resp)}}})
}

func (n *fakeNode) Step(now port.Time, in port.Input) {
	switch in := in.(type) {
	case port.Stop:
		n.stopped = true
	case port.ConnOpened:
		n.events <- fmt.Sprint("opened ", in.Conn)
	case port.ConnClosed:
		n.events <- fmt.Sprint("closed ", in.Conn)
	case port.DiskDone:
		if in.Err != nil {
			panic(in.Err)
		}
		if in.Op == n.syncOp {
			n.syncOp = 0
		}
		for _, p := range n.waiting[in.Op] {
			if p.acks != 0 {
				resp := kmsg.NewPtrProduceResponse()
				resp.SetVersion(p.version)
				n.respond(p.conn, p.corr, resp)
			}
		}
		delete(n.waiting, in.Op)
	case port.Request:
		n.request(now, in)
	}
	kept := n.delayed[:0]
	for _, p := range n.delayed {
		if now.MonoNs < p.due {
			kept = append(kept, p)
			continue
		}
		resp := kmsg.NewPtrMetadataResponse()
		resp.SetVersion(p.version)
		n.respond(p.conn, p.corr, resp)
	}
	n.delayed = kept
}

func (n *fakeNode) request(now port.Time, r port.Request) {
	if r.Err != nil {
		n.events <- "bad request"
		n.emit(port.CloseConn{Conn: r.Conn})
		return
	}
	h := r.Header
	n.events <- fmt.Sprint("request ", kmsg.NameForKey(h.APIKey))
	switch req := r.Body.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.SetVersion(h.APIVersion)
		resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MaxVersion: 3}}
		switch req.ClientSoftwareName {
		case "bye": // answer, then close: the answer must still arrive
			n.respond(r.Conn, h.CorrelationID, resp)
			n.emit(port.CloseConn{Conn: r.Conn})
		case "big": // a response held in memory, for the queue cap
			big := binary.BigEndian.AppendUint32(nil, bigResponse-4)
			big = binary.BigEndian.AppendUint32(big, uint32(h.CorrelationID))
			n.emit(port.Send{Conn: r.Conn, Chunks: []port.Chunk{{Bytes: append(big, make([]byte, bigResponse-8)...)}}})
		default:
			n.respond(r.Conn, h.CorrelationID, resp)
		}
	case *kmsg.ProduceRequest:
		if !n.made {
			n.made = true
			n.disk(port.OpMkdir, "t-0", 0, nil)
		}
		data := req.Topics[0].Partitions[0].Records
		op := n.disk(port.OpWrite, logPath, n.size, data)
		n.size += int64(len(data))
		p := pending{conn: r.Conn, corr: h.CorrelationID, version: h.APIVersion, acks: req.Acks}
		if n.noSync {
			n.waiting[op] = append(n.waiting[op], p)
		} else {
			n.unsynced = append(n.unsynced, p)
		}
	case *kmsg.FetchRequest:
		hdr := binary.BigEndian.AppendUint32(nil, uint32(4+n.size))
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(h.CorrelationID))
		n.emit(port.Send{Conn: r.Conn, Chunks: []port.Chunk{{Bytes: hdr}, {File: logPath, Len: n.size}}})
		if req.ReplicaID == removeFlag {
			n.disk(port.OpRemove, logPath, 0, nil)
			n.size = 0
		}
	case *kmsg.MetadataRequest:
		n.delayed = append(n.delayed, pending{conn: r.Conn, corr: h.CorrelationID, version: h.APIVersion,
			due: now.MonoNs + int64(metadataDelay)})
	}
}

func (n *fakeNode) Ready() port.Ready {
	if len(n.unsynced) > 0 && n.syncOp == 0 {
		n.syncOp = n.disk(port.OpSync, logPath, 0, nil)
		n.waiting[n.syncOp] = n.unsynced
		n.unsynced = nil
	}
	rd := port.Ready{Effects: n.eff, Stopped: n.stopped}
	n.eff = nil
	for _, p := range n.delayed {
		if rd.WakeAtMonoNs == 0 || p.due < rd.WakeAtMonoNs {
			rd.WakeAtMonoNs = p.due
		}
	}
	return rd
}

// wait reads node events until want, failing on timeout.
func (n *fakeNode) wait(t testing.TB, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-n.events:
			if ev == want {
				return
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %q", want)
		}
	}
}

func supported(key int16) (wire.VersionRange, bool) {
	switch key {
	case 0:
		return wire.VersionRange{Min: 3, Max: 9}, true
	case 1:
		return wire.VersionRange{Min: 4, Max: 11}, true
	case 3:
		return wire.VersionRange{Min: 0, Max: 12}, true
	case 18:
		return wire.VersionRange{Min: 0, Max: 3}, true
	}
	return wire.VersionRange{}, false
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type harness struct {
	addr     string
	node     *fakeNode
	dataDir  string
	logs     *syncBuffer
	cancel   context.CancelFunc
	done     chan error
	returned bool
}

func start(t testing.TB, maxRequestBytes int32) *harness {
	return startNode(t, maxRequestBytes, newFakeNode())
}

func startNode(t testing.TB, maxRequestBytes int32, node *fakeNode) *harness {
	t.Helper()
	h := &harness{node: node, dataDir: t.TempDir(), logs: &syncBuffer{}, done: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	disk, err := diskshim.New(h.dataDir, 2, log)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Listen(Config{Listen: []string{"127.0.0.1:0"}, MaxRequestBytes: maxRequestBytes, Supported: supported, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h.addr = s.Addrs()[0].String()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- s.Serve(ctx, h.node, disk) }()
	t.Cleanup(func() {
		h.stop(t)
		disk.Close()
		if t.Failed() {
			t.Logf("logs:\n%s", h.logs)
		}
	})
	return h
}

// stop cancels Serve and waits for it to return.
func (h *harness) stop(t testing.TB) {
	t.Helper()
	h.cancel()
	h.wait(t, 15*time.Second)
}

func (h *harness) wait(t testing.TB, timeout time.Duration) {
	t.Helper()
	if h.returned {
		return
	}
	select {
	case err := <-h.done:
		h.returned = true
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(timeout):
		t.Fatal("Serve did not return")
	}
}

type client struct {
	t    testing.TB
	conn net.Conn
	corr int32
}

func (h *harness) dial(t testing.TB) *client {
	t.Helper()
	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, conn: nc}
}

func (c *client) frame(req kmsg.Request) []byte {
	c.corr++
	id := "test"
	return wire.AppendRequest(nil, wire.RequestHeader{APIKey: req.Key(), APIVersion: req.GetVersion(), CorrelationID: c.corr, ClientID: &id}, req)
}

func (c *client) write(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next response frame's correlation id and the rest.
func (c *client) read() (int32, []byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var prefix [4]byte
	if _, err := io.ReadFull(c.conn, prefix[:]); err != nil {
		return 0, nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(prefix[:]))
	if _, err := io.ReadFull(c.conn, b); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(b)), b[4:], nil
}

func (c *client) mustRead(corr int32) []byte {
	c.t.Helper()
	got, body, err := c.read()
	if err != nil {
		c.t.Fatalf("reading response %d: %v", corr, err)
	}
	if got != corr {
		c.t.Fatalf("response for correlation id %d, want %d", got, corr)
	}
	return body
}

// expectEOF checks that the server closed the connection.
func (c *client) expectEOF() {
	c.t.Helper()
	if _, _, err := c.read(); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) &&
		!strings.Contains(fmt.Sprint(err), "reset") {
		c.t.Fatalf("read = %v, want EOF", err)
	}
}

func apiVersions(v int16) *kmsg.ApiVersionsRequest { return apiVersionsFrom(v, "t") }

// apiVersionsFrom sets ClientSoftwareName (v3+), which steers the fake.
func apiVersionsFrom(v int16, software string) *kmsg.ApiVersionsRequest {
	r := kmsg.NewPtrApiVersionsRequest()
	r.SetVersion(v)
	r.ClientSoftwareName, r.ClientSoftwareVersion = software, "1"
	return r
}

func produce(acks int16, data []byte) *kmsg.ProduceRequest {
	r := kmsg.NewPtrProduceRequest()
	r.SetVersion(7)
	r.Acks, r.TimeoutMillis = acks, 1000
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = data
	tp := kmsg.NewProduceRequestTopic()
	tp.Topic, tp.Partitions = "t", []kmsg.ProduceRequestTopicPartition{p}
	r.Topics = []kmsg.ProduceRequestTopic{tp}
	return r
}

func fetch(replica int32) *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.SetVersion(4)
	r.ReplicaID = replica
	return r
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestFramingAndOrder(t *testing.T) {
	h := start(t, 0)
	c := h.dial(t)
	h.node.wait(t, "opened 1")

	// Two requests in one write, then one dribbled a byte at a time.
	c.write(append(c.frame(apiVersions(3)), c.frame(apiVersions(0))...))
	dribble := c.frame(apiVersions(1))
	for i := range dribble {
		c.write(dribble[i : i+1])
		time.Sleep(time.Millisecond)
	}
	for corr, v := range []int16{3, 0, 1} {
		body := c.mustRead(int32(corr + 1))
		frame := binary.BigEndian.AppendUint32(nil, uint32(corr+1))
		_, resp, err := wire.ParseResponse(append(frame, body...), 18, v)
		if err != nil {
			t.Fatalf("v%d response: %v", v, err)
		}
		if keys := resp.(*kmsg.ApiVersionsResponse).ApiKeys; len(keys) != 1 || keys[0].MaxVersion != 3 {
			t.Fatalf("v%d response: %+v", v, resp)
		}
	}
	c.conn.Close()
	h.node.wait(t, "closed 1")
}

func TestOversizedFrameCloses(t *testing.T) {
	h := start(t, 1024)
	c := h.dial(t)
	c.write(c.frame(apiVersions(3))) // fits
	c.mustRead(1)
	c.write(binary.BigEndian.AppendUint32(nil, 1025))
	c.expectEOF()
	h.node.wait(t, "closed 1")
	if logs := h.logs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "remote="+c.conn.LocalAddr().String()) {
		t.Fatalf("no warning naming the client:\n%s", logs)
	}
}

func TestBadRequestCloseConn(t *testing.T) {
	h := start(t, 0)
	c := h.dial(t)
	bad := c.frame(apiVersions(3))
	binary.BigEndian.PutUint16(bad[4:], 999) // unknown api key
	c.write(bad)
	h.node.wait(t, "bad request")
	c.expectEOF()
	h.node.wait(t, "closed 1")
	h.stop(t)
	select {
	case ev := <-h.node.events:
		t.Fatalf("unexpected event after close: %s", ev)
	default:
	}
}

// CloseConn after a Send flushes the Send first.
func TestCloseConnFlushes(t *testing.T) {
	h := start(t, 0)
	c := h.dial(t)
	c.write(append(c.frame(apiVersionsFrom(3, "bye")), c.frame(apiVersions(3))...))
	c.mustRead(1)
	c.expectEOF() // the request after the close is not answered
	h.node.wait(t, "closed 1")
}

// A client that has asked for more than maxQueuedBytes of in-memory
// responses without reading them is disconnected.
func TestQueueCapCloses(t *testing.T) {
	h := start(t, 0)
	c := h.dial(t)
	var reqs []byte
	for range 3 * maxQueuedBytes / bigResponse {
		reqs = append(reqs, c.frame(apiVersionsFrom(3, "big"))...)
	}
	c.write(reqs)
	h.node.wait(t, "closed 1")
	for {
		if _, _, err := c.read(); err != nil {
			break // EOF or reset, after whatever was in flight
		}
	}
	if logs := h.logs.String(); !strings.Contains(logs, "not reading its responses") {
		t.Fatalf("no log line for the dropped client:\n%s", logs)
	}
}

func TestProduceFetchSendfile(t *testing.T) {
	h := start(t, 0)
	c := h.dial(t)
	var want []byte
	for i, size := range []int{1, 256 << 10, 3<<20 + 7} {
		data := randomBytes(size)
		want = append(want, data...)
		acks := int16(1)
		if i == 1 {
			acks = 0 // no response: the next one must still line up
		}
		c.write(c.frame(produce(acks, data)))
	}
	c.mustRead(1)
	c.mustRead(3)

	c.write(c.frame(fetch(-1)))
	if got := c.mustRead(4); !bytes.Equal(got, want) {
		t.Fatalf("fetch returned %d bytes, want the %d written", len(got), len(want))
	}
	// The node removes the file right after the Send: the bytes must still
	// all go out from the descriptor acquired at dispatch.
	c.write(c.frame(fetch(removeFlag)))
	if got := c.mustRead(5); !bytes.Equal(got, want) {
		t.Fatalf("fetch of removed file returned %d bytes, want %d", len(got), len(want))
	}
	c.write(c.frame(apiVersions(3))) // a round trip: the Remove has run
	c.mustRead(6)
	if _, err := os.Stat(filepath.Join(h.dataDir, logPath)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("log not removed: %v", err)
	}
}

// A client that pipelines far more response bytes than pauseBytes before
// reading anything gets all of them, in order: file chunks are not held in
// memory, so the connection is not dropped.
func TestPipelinedFetches(t *testing.T) {
	h := start(t, 0)
	c := h.dial(t)
	data := randomBytes(1 << 20)
	c.write(c.frame(produce(1, data)))
	c.mustRead(1)
	const n = 100
	go func() {
		var reqs []byte
		for range n {
			reqs = append(reqs, c.frame(fetch(-1))...)
		}
		c.conn.Write(reqs)
	}()
	time.Sleep(200 * time.Millisecond) // let the queue fill
	for i := range n {
		if got := c.mustRead(int32(i + 2)); !bytes.Equal(got, data) {
			t.Fatalf("fetch %d: wrong bytes", i)
		}
	}
}

func TestShutdownDrains(t *testing.T) {
	h := start(t, 0)
	c := h.dial(t)
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(9)
	c.write(c.frame(md))
	h.node.wait(t, "request Metadata")
	began := time.Now()
	h.cancel()
	// The response owed is still written, then the connection closes.
	c.mustRead(1)
	if d := time.Since(began); d < metadataDelay/2 {
		t.Fatalf("response after %v: the Wake path did not run", d)
	}
	c.expectEOF()
	h.wait(t, 5*time.Second)
	if _, err := net.Dial("tcp", h.addr); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// Requests sent after shutdown began are not read.
func TestShutdownStopsReading(t *testing.T) {
	h := start(t, 0)
	c := h.dial(t)
	h.node.wait(t, "opened 1")
	h.cancel()
	time.Sleep(50 * time.Millisecond)
	c.conn.Write(c.frame(apiVersions(3))) // may fail: the server is closing
	c.expectEOF()
	h.wait(t, 5*time.Second)
	close(h.node.events) // Serve has returned: nothing steps the node now
	for ev := range h.node.events {
		if strings.HasPrefix(ev, "request") {
			t.Fatalf("request handled during shutdown: %s", ev)
		}
	}
}

// BenchmarkProduce pipelines acks=1 produces of 256 KiB through framing,
// decoding, the loop and diskshim and back, over conns connections.
// "sync" fsyncs once per Ready (group commit, disk-bound); "nosync" answers
// once written, which measures the shims themselves.
func BenchmarkProduce(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		for _, conns := range []int{1, 4} {
			name := fmt.Sprintf("sync/conns=%d", conns)
			if noSync {
				name = "no" + name
			}
			b.Run(name, func(b *testing.B) {
				node := newFakeNode()
				node.noSync = noSync
				go func() { // nobody waits on events here
					for range node.events {
					}
				}()
				benchProduce(b, startNode(b, 0, node), conns)
			})
		}
	}
}

func benchProduce(b *testing.B, h *harness, conns int) {
	data := randomBytes(256 << 10)
	b.SetBytes(int64(len(data)))
	var wg sync.WaitGroup
	per := b.N/conns + 1
	b.ResetTimer()
	for range conns {
		c := h.dial(b)
		frame := c.frame(produce(1, data))
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range per {
				if _, err := c.conn.Write(frame); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range per {
				if _, _, err := c.read(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

package proc

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/weirmq/weir/core/broker"
	"github.com/weirmq/weir/core/config"
	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/record"
	"github.com/weirmq/weir/core/wire"
	"github.com/weirmq/weir/sim/disk"
	"github.com/weirmq/weir/sim/fault"
	"github.com/weirmq/weir/sim/network"
	"github.com/weirmq/weir/sim/rng"
	"github.com/weirmq/weir/sim/sched"
	"github.com/weirmq/weir/sim/trace"
)

// Config is a node process's drawn configuration.
type Config struct {
	ID     int
	Broker *config.Broker
	// SkewMs offsets the node's wall clock; DriftPPM makes it run fast or
	// slow, in parts per million.
	SkewMs, DriftPPM int64
	// BatchWindow is the longest Ready waits for more inputs.
	BatchWindow sched.Time
}

// busyLoop is how many wake-ups already due in a row count as spinning.
const busyLoop = 1000

// Node is one node process and its machine (disk, clock).
type Node struct {
	loop   *sched.Loop
	rnd    *rng.Rand
	cfg    Config
	tr     *trace.Trace
	log    *slog.Logger
	counts *fault.Counts
	Disk   *disk.Disk
	net    *network.Network

	bn *broker.Node
	// inc counts processes; callbacks carry the one they belong to.
	inc     uint64
	running bool
	paused  bool
	queued  []port.Input // inputs that arrived while paused

	bootAt     sched.Time
	monoOrigin int64
	jumpMs     int64 // sum of wall clock jumps
	maxWallMs  int64

	readyPending bool
	wakeGen      uint64
	wakesNow     int // consecutive Readys asking for a wake-up already due
	conns        map[port.ConnID]*network.Conn

	// StorageError is called once per process when an injected disk fault
	// took its log directory offline.
	StorageError func()
	// Unexpected reports a failure that is a bug, not a fault.
	Unexpected func(msg string)
	// SendPeer carries a cluster message to another node; nil drops it.
	SendPeer func(e port.SendPeer)
	// Observer is installed on every process the node boots.
	Observer broker.Observer

	// stopped runs once the process reports its graceful stop done.
	stopped func()
}

// Stop asks the process to stop gracefully (SIGTERM: a controlled
// shutdown first); done runs once it reports Stopped, after which the
// caller ends the process.
func (n *Node) Stop(done func()) {
	if !n.running {
		return
	}
	n.tr.Addf(n.name(), "SIGTERM to process %d", n.inc)
	n.stopped = done
	n.input(n.inc, port.Stop{})
}

// New returns a node whose process is not running yet.
func New(loop *sched.Loop, rnd *rng.Rand, cfg Config, d *disk.Disk, net *network.Network, counts *fault.Counts, tr *trace.Trace) *Node {
	return &Node{
		loop: loop, rnd: rnd, cfg: cfg, tr: tr, counts: counts, Disk: d, net: net,
		log: trace.Logger(tr, fmt.Sprintf("node%d", cfg.ID)),
	}
}

// Running reports whether a process is up (paused or not).
func (n *Node) Running() bool { return n.running }

// Paused reports whether the process is paused.
func (n *Node) Paused() bool { return n.paused }

// MaxWallMs is the latest wall clock time the node has been handed.
func (n *Node) MaxWallMs() int64 { return n.maxWallMs }

func (n *Node) now() port.Time {
	vt := n.loop.Now()
	wall := sched.EpochMs + vt/1e6 + n.cfg.SkewMs + vt/1000*n.cfg.DriftPPM/1e9 + n.jumpMs
	n.maxWallMs = max(n.maxWallMs, wall)
	return port.Time{MonoNs: n.monoOrigin + (vt - n.bootAt), WallMs: wall}
}

// JumpClock steps the node's wall clock by ms.
func (n *Node) JumpClock(ms int64) {
	n.jumpMs += ms
	n.counts.Inc(fault.ClockJump)
	n.tr.Addf(n.name(), "wall clock jumps %+dms", ms)
}

func (n *Node) name() string { return fmt.Sprintf("node%d", n.cfg.ID) }

// Boot starts a process: recovery through the disk's BootFS, then inputs.
func (n *Node) Boot() error {
	n.inc++
	n.bootAt = n.loop.Now()
	// A new process's monotonic clock starts anywhere.
	n.monoOrigin = n.rnd.Int64n(1 << 40)
	n.conns = map[port.ConnID]*network.Conn{}
	n.paused, n.queued, n.readyPending, n.stopped = false, nil, false, nil
	n.wakeGen++
	bn, err := broker.Boot(n.Disk.BootFS(), n.cfg.Broker, n.rnd.Uint64(), n.now(), n.log)
	if err != nil {
		return fmt.Errorf("boot: %w", err)
	}
	bn.Observe(n.Observer)
	n.bn = bn
	n.running = true
	n.tr.Addf(n.name(), "booted process %d", n.inc)
	n.scheduleReady()
	return nil
}

// CrashKind says how a process ends.
type CrashKind uint8

const (
	// Kill is kill -9: the page cache survives.
	Kill CrashKind = iota
	// MachineCrash is a power loss: the page cache is lost too.
	MachineCrash
	// OperatorRestart is an operator stopping the process after a disk
	// error took its log directory offline; the page cache survives.
	OperatorRestart
)

// Crash ends the process; nothing it had not completed happens.
func (n *Node) Crash(kind CrashKind) {
	if !n.running {
		return
	}
	n.counts.Inc([...]fault.Class{fault.ProcKill, fault.ProcMachineCrash, fault.ProcRestart}[kind])
	n.tr.Addf(n.name(), "%s process %d", [...]string{"kill -9", "machine crash of", "operator stops"}[kind], n.inc)
	n.running, n.paused, n.queued, n.bn = false, false, nil, nil
	n.inc++
	n.net.NodeDown(n.cfg.ID)
	n.Disk.Crash(kind == MachineCrash)
}

// Pause stops the process taking inputs until Resume.
func (n *Node) Pause() {
	if !n.running || n.paused {
		return
	}
	n.counts.Inc(fault.ProcPause)
	n.tr.Addf(n.name(), "pause")
	n.paused = true
}

// Resume lets a paused process take the inputs that queued up.
func (n *Node) Resume() {
	if !n.running || !n.paused {
		return
	}
	n.tr.Addf(n.name(), "resume with %d queued inputs", len(n.queued))
	n.paused = false
	q := n.queued
	n.queued = nil
	for _, in := range q {
		n.step(in)
	}
}

// input hands an input to the process, or queues it while paused.
func (n *Node) input(inc uint64, in port.Input) {
	if !n.running || inc != n.inc {
		return
	}
	if n.paused {
		n.queued = append(n.queued, in)
		return
	}
	n.step(in)
}

func (n *Node) step(in port.Input) {
	n.tr.Add(n.name(), describeInput(in))
	n.bn.Step(n.now(), in)
	n.scheduleReady()
}

func (n *Node) scheduleReady() {
	if n.readyPending {
		return
	}
	n.readyPending = true
	inc := n.inc
	n.loop.After(n.rnd.Range(0, n.cfg.BatchWindow), func() {
		if inc != n.inc || !n.running {
			return
		}
		if n.paused {
			// Ready runs on the process's loop, which is stopped too.
			n.queued = append(n.queued, port.Wake{})
			n.readyPending = false
			return
		}
		n.readyPending = false
		n.ready()
	})
}

func (n *Node) ready() {
	rd := n.bn.Ready()
	inc := n.inc
	for _, e := range rd.Effects {
		n.tr.Add(n.name(), describeEffect(e))
		switch e := e.(type) {
		case port.DiskOp:
			n.Disk.Submit(e, func(data []byte, err error) { n.diskDone(inc, e, data, err) })
		case port.Send:
			n.send(e)
		case port.CloseConn:
			// The connection stays known until its ConnClosed is delivered.
			if c := n.conns[e.Conn]; c != nil {
				c.NodeClose()
			}
		case port.SendPeer:
			if n.SendPeer != nil {
				n.SendPeer(n.flatten(e))
			}
		default:
			panic(fmt.Sprintf("proc: unknown effect %T", e))
		}
	}
	if rd.Stopped && n.stopped != nil {
		done := n.stopped
		n.stopped = nil
		n.loop.After(0, done)
	}
	n.wakeGen++
	// A node that keeps asking to be woken at once spins: the production
	// loop would burn a core doing nothing.
	if rd.WakeAtMonoNs != 0 && rd.WakeAtMonoNs <= n.now().MonoNs {
		if n.wakesNow++; n.wakesNow == busyLoop {
			n.Unexpected(fmt.Sprintf("the node asked to be woken immediately %d times in a row: a busy loop", busyLoop))
		}
	} else {
		n.wakesNow = 0
	}
	if rd.WakeAtMonoNs != 0 {
		gen := n.wakeGen
		at := n.bootAt + (rd.WakeAtMonoNs - n.monoOrigin)
		n.loop.At(at, func() {
			if gen == n.wakeGen {
				n.input(inc, port.Wake{})
			}
		})
	}
}

func (n *Node) diskDone(inc uint64, op port.DiskOp, data []byte, err error) {
	if inc != n.inc {
		return
	}
	if err != nil && (errors.Is(err, disk.ErrIO) || errors.Is(err, disk.ErrNoSpace)) && n.StorageError != nil {
		n.StorageError()
	}
	n.input(inc, port.DiskDone{Op: op.ID, Err: err, Data: data})
}

// send assembles a response frame (reading file chunks from the page cache
// now, as sendfile would) and puts it on the connection.
func (n *Node) send(s port.Send) {
	c := n.conns[s.Conn]
	if c == nil {
		return
	}
	var frame []byte
	flipped := false
	for _, ch := range s.Chunks {
		if ch.File == "" {
			frame = append(frame, ch.Bytes...)
			continue
		}
		b, f := n.Disk.ReadForSend(ch.File, ch.Pos, ch.Len)
		frame = append(frame, b...)
		flipped = flipped || f
	}
	c.Reply(frame, flipped)
}

// flatten reads a cluster message's file chunks from the page cache now,
// as the production driver does, and returns it as plain bytes. A bit the
// disk flips on the way is the receiver's to catch (record CRCs).
func (n *Node) flatten(e port.SendPeer) port.SendPeer {
	if len(e.Chunks) == 0 {
		return e
	}
	data := append([]byte(nil), e.Data...)
	for _, ch := range e.Chunks {
		if ch.File == "" {
			data = append(data, ch.Bytes...)
			continue
		}
		b, _ := n.Disk.ReadForSend(ch.File, ch.Pos, ch.Len)
		data = append(data, b...)
	}
	return port.SendPeer{To: e.To, Data: data}
}

// Incarnation names the running process; a cluster message sent to one
// process is lost if another runs by the time it arrives.
func (n *Node) Incarnation() uint64 { return n.inc }

// Peer delivers a cluster message to process inc.
func (n *Node) Peer(inc uint64, from port.NodeID, data []byte) {
	n.input(inc, port.PeerMessage{From: from, Data: data})
}

// Broker is the running process's node, or nil.
func (n *Node) Broker() *broker.Node {
	if !n.running {
		return nil
	}
	return n.bn
}

// Opened implements network.Node.
func (n *Node) Opened(c *network.Conn) {
	n.conns[c.ID] = c
	n.input(n.inc, port.ConnOpened{Conn: c.ID, Remote: c.Remote()})
}

// Closed implements network.Node.
func (n *Node) Closed(c *network.Conn) {
	if n.conns[c.ID] != c {
		return // a connection of an earlier process, or already closed
	}
	delete(n.conns, c.ID)
	n.input(n.inc, port.ConnClosed{Conn: c.ID})
}

// Frame implements network.Node: the driver frames and decodes requests
// with the real codec, as netshim's connection readers do.
func (n *Node) Frame(c *network.Conn, frame []byte) {
	if n.conns[c.ID] != c {
		return
	}
	var prefix [4]byte
	copy(prefix[:], frame)
	size, err := wire.ReadFrameSize(prefix, n.cfg.Broker.SocketRequestMaxBytes)
	if err != nil || int(size) != len(frame)-4 {
		n.Unexpected(fmt.Sprintf("bad request frame from %s: size %d, %d bytes, %v", c.Remote(), size, len(frame)-4, err))
		return
	}
	hdr, req, err := wire.ParseRequest(frame[4:], broker.Supported)
	in := port.Request{Conn: c.ID, Header: hdr, Body: req, Err: err, FrameBytes: len(frame)}
	if err == nil {
		// netshim checks record batches on the connection side too.
		broker.Precheck(&in, record.DecompressLimit(n.cfg.Broker.MessageMaxBytes))
	}
	n.input(n.inc, in)
}

package port

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/record"
	"github.com/weirmq/weir/core/wire"
)

// Time is the driver's clock, handed to the core with every input.
type Time struct {
	// MonoNs is monotonic nanoseconds since an arbitrary origin; it never
	// goes back. All timeouts are measured on it.
	MonoNs int64
	// WallMs is the wall clock in Unix milliseconds; it may be skewed or
	// jump. It is used only for record timestamps and time-based retention.
	WallMs int64
}

// ConnID names one client connection for the lifetime of a node process.
type ConnID uint64

// OpID names one disk operation; completions refer back to it.
type OpID uint64

// Input is something that happened outside the core.
type Input interface{ isInput() }

// ConnOpened: a client connected.
type ConnOpened struct {
	Conn   ConnID
	Remote string
}

// ConnClosed: a connection ended (by the peer, an error, or a Close effect).
// Responses still owed to it are dropped.
type ConnClosed struct{ Conn ConnID }

// Request is one framed request read from a connection, already decoded
// (in parallel, off the core's thread) by wire.ParseRequest. When Err is
// set, Body is nil and Header holds whatever could be parsed.
type Request struct {
	Conn   ConnID
	Header wire.RequestHeader
	Body   kmsg.Request
	Err    error
	// FrameBytes is the size of the frame on the wire, for limits and metrics.
	FrameBytes int
	// Checked holds, for a Produce request, what record.Check found in
	// each partition's records, in request order (topics, then their
	// partitions). The driver fills it off the core's thread with
	// broker.Precheck; when nil the core checks the records itself.
	Checked []CheckedBatch
}

// CheckedBatch is one partition's record.Check outcome.
type CheckedBatch struct {
	record.Checked
	Err error
}

// DiskDone reports the end of a disk operation. Err is nil on success.
type DiskDone struct {
	Op  OpID
	Err error
	// Data is, for OpRead, the bytes read: exactly the op's Len bytes on
	// success, nil on failure. Reading past the file's end is an error.
	// Other ops leave it nil.
	Data []byte
}

// Wake is delivered when the time the core asked for in Ready.WakeAtMonoNs
// has come (or later). It carries no data: the core looks at the clock.
type Wake struct{}

// NodeID is a cluster member's node.id.
type NodeID int32

// PeerMessage is one message from another node of the cluster (Raft
// traffic and broker-to-controller calls). Delivery is best effort: peer
// messages may be lost, duplicated across reconnects, or arrive late, but
// those from one sender arrive in the order they were sent.
type PeerMessage struct {
	From NodeID
	Data []byte
}

// Stop asks the node to stop gracefully (SIGTERM): a broker first hands
// its partition leaderships to other brokers (controlled shutdown). The
// node reports Ready.Stopped once it is done; the driver then drains
// connections and exits.
type Stop struct{}

func (Stop) isInput()        {}
func (PeerMessage) isInput() {}
func (ConnOpened) isInput()  {}
func (ConnClosed) isInput()  {}
func (Request) isInput()     {}
func (DiskDone) isInput()    {}
func (Wake) isInput()        {}

// Effect is something the core wants done.
type Effect interface{ isEffect() }

// Send writes one whole response frame to a connection. The frame is the
// concatenation of its chunks; a chunk is either bytes or a range of a file
// (record data leaves by sendfile, never copied through the heap).
type Send struct {
	Conn   ConnID
	Chunks []Chunk
}

// Chunk is Bytes when File is empty, else Len bytes of File from Pos.
type Chunk struct {
	Bytes []byte
	File  string
	Pos   int64
	Len   int64
}

// Size is the number of bytes the chunk puts on the wire.
func (c Chunk) Size() int64 {
	if c.File == "" {
		return int64(len(c.Bytes))
	}
	return c.Len
}

// CloseConn closes a connection; the driver reports ConnClosed afterwards.
type CloseConn struct{ Conn ConnID }

// OpKind is the kind of a disk operation.
type OpKind uint8

const (
	// OpMkdir creates directory Path (and missing parents).
	OpMkdir OpKind = iota + 1
	// OpWrite writes Data at Pos of file Path, creating the file if needed.
	OpWrite
	// OpSync makes every earlier write to Path durable (fsync).
	OpSync
	// OpSyncDir makes directory entries in Path (creates, renames,
	// removes) durable.
	OpSyncDir
	// OpTruncate cuts file Path to Pos bytes.
	OpTruncate
	// OpRename moves Path to To, replacing To atomically.
	OpRename
	// OpRemove deletes file Path (missing is not an error).
	OpRemove
	// OpRemoveAll deletes directory Path and everything below it.
	OpRemoveAll
	// OpRead reads Len bytes at Pos of file Path; DiskDone.Data holds
	// them. Like every op it runs in order with the other ops of its
	// Lane, so it sees the writes emitted before it on that lane (from
	// the page cache: they need not have been synced). A missing file or
	// a range past the file's end fails.
	OpRead
)

var opNames = [...]string{"", "mkdir", "write", "fsync", "syncdir", "truncate", "rename", "remove", "removeall", "read"}

func (k OpKind) String() string {
	if int(k) < len(opNames) {
		return opNames[k]
	}
	return "op?"
}

// DiskOp is one disk operation. Paths are relative to the node's data
// directory and use forward slashes.
type DiskOp struct {
	ID   OpID
	Kind OpKind
	// Lane orders operations: the driver runs ops of one lane one at a time
	// in emission order, and ops of different lanes in any order or in
	// parallel. The core uses one lane per partition directory.
	Lane string
	Path string
	To   string
	Pos  int64
	Data []byte
	// Len is the number of bytes to read; only OpRead uses it.
	Len int64
}

// SendPeer sends one message to another node of the cluster. It is best
// effort (see PeerMessage): the driver may drop it when the peer is
// unreachable or its queue is full, and never reports the outcome.
type SendPeer struct {
	To   NodeID
	Data []byte
	// Chunks, when set, follow Data in the message. A file chunk is read
	// when the effect is carried out, under the rule for Send's chunks: a
	// replica fetch response carries record batches this way, so the core
	// never copies them.
	Chunks []Chunk
}

// Size is the message's length in bytes.
func (e SendPeer) Size() int64 {
	n := int64(len(e.Data))
	for _, c := range e.Chunks {
		n += c.Size()
	}
	return n
}

func (SendPeer) isEffect()  {}
func (DiskOp) isEffect()    {}
func (Send) isEffect()      {}
func (CloseConn) isEffect() {}

// Ready is what a node wants done after the inputs it was given.
type Ready struct {
	Effects []Effect
	// WakeAtMonoNs asks for a Wake input at that monotonic time; zero
	// means no timer is needed.
	WakeAtMonoNs int64
	// Stopped: after a Stop input, the node finished its graceful stop.
	Stopped bool
}

// BootFS is the read-only view of a data directory used by recovery before a
// node starts. Paths are relative to the data directory.
type BootFS interface {
	// List returns the names in directory path, sorted; a missing directory
	// returns no names and no error.
	List(path string) ([]DirEntry, error)
	// ReadAt reads len(buf) bytes at off, like io.ReaderAt.
	ReadAt(path string, buf []byte, off int64) (int, error)
	// DropCache makes later reads of path return what the disk holds
	// rather than what the page cache remembers. It matters after a
	// failed fsync: Linux marks the pages it failed to write clean, so
	// they still read back but are not on disk, and no later fsync writes
	// them ("fsyncgate"); recovery that trusted them would build on data a
	// power loss takes away. Production drops the file's clean cached
	// pages (posix_fadvise DONTNEED); dirty pages are kept.
	DropCache(path string) error
}

// DirEntry is one name in a directory.
type DirEntry struct {
	Name  string
	IsDir bool
	Size  int64
}

// Node is a deterministic state machine as the drivers see it. Step may be
// called many times before Ready; Ready returns and forgets the effects
// accumulated since the previous call.
type Node interface {
	Step(now Time, in Input)
	Ready() Ready
}

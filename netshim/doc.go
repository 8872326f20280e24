// Package netshim is the production network driver and the node's event
// loop: it accepts Kafka client connections, frames and decodes requests,
// feeds them to a port.Node, and carries out the node's effects (sends,
// closes, disk operations through diskshim, wake-ups).
//
// Goroutines, and why:
//   - One loop goroutine is the only caller of Node.Step and Node.Ready. It
//     takes inputs from one channel, Steps up to a batch of whatever is
//     already queued, then calls Ready once, so one Ready (and one fsync
//     round in the core) covers many requests under load.
//   - Per connection, a reader frames requests (wire.ReadFrameSize, then one
//     fresh []byte per frame, because the core keeps produce data aliased
//     into it) and decodes them with wire.ParseRequest, so decoding runs in
//     parallel, off the loop. A writer sends responses in order: byte chunks
//     gathered into one writev, file chunks by sendfile(2) with an explicit
//     offset, so record data never passes through the heap and no shared
//     file offset moves.
//   - Disk ops run on diskshim's workers; their completions come back
//     through the same input channel.
//
// The loop never blocks on IO. Sends are appended to the connection's
// queue. A client that stops reading makes its reader pause: no new request
// is read while more than pauseBytes of responses wait (Kafka's channel
// muting, in spirit). Requests read before the pause are still answered;
// if the response bytes held in memory for one client then pass
// maxQueuedBytes, the connection is closed. File chunks count toward the
// pause but not the cap: they pin a descriptor, not memory.
//
// File chunks are acquired from diskshim when the loop dispatches the Send,
// before any later effect can remove the file, and released once written:
// that keeps the port's rule that a sent file stays readable.
//
// ConnClosed is reported exactly once per connection, after its reader has
// stopped, so no Request for a connection follows its ConnClosed.
//
// Wake-ups: Ready.WakeAtMonoNs is read as the node's whole current wish (the
// broker recomputes it on every Ready); the single timer is re-armed when it
// changes and stopped on zero.
//
// Peers (Config.Peers, peers.go): cluster traffic travels as opaque
// length-prefixed messages over TCP after a handshake naming both nodes.
// SendPeer to a node in PeerConfig.Addrs uses the connection this node
// dials to it (lazily, redialled with backoff); to any other node, the
// newest live connection that node dialed here; otherwise it is dropped.
// Each peer has a bounded queue and a writer goroutine, so the loop never
// blocks on a peer; a full queue drops the message (PeerDrops counts it).
// Readers post PeerMessage inputs through the same channel as requests.
//
// Shutdown (ctx cancelled): listeners close, readers stop reading, and the
// loop keeps running until every request already handed to the node has had
// its response written (or its connection died), or ShutdownTimeout passes;
// then it waits for disk ops in flight, closes the connections (peer
// connections too) and returns.
// The caller still owns the Disk and closes it afterwards.
package netshim

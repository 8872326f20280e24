package broker

// The node's part in the cluster: its Raft replica of the metadata log,
// stored by metalog and replayed into the metadata image, and, while it
// leads the quorum, the active controller.
//
// Every Raft Ready is carried out in order: its entries and hard state are
// written and fsynced on the metadata lane, and only then are its messages
// sent and its committed entries applied (the rule core/raft's safety rests
// on). Peer traffic is one byte of envelope kind and a body: a Raft
// message, or a controller request or response encoded with kmsg, as
// Kafka's brokers forward requests to the KRaft controller.

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/bugs"
	"github.com/weirmq/weir/core/controller"
	"github.com/weirmq/weir/core/metadata"
	"github.com/weirmq/weir/core/metalog"
	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/raft"
)

// Envelope kinds of peer messages.
const (
	peerRaft       byte = 1
	peerCtrlReq    byte = 2
	peerCtrlResp   byte = 3
	peerFetchReq   byte = 4
	peerFetchResp  byte = 5
	electionTicks       = 10
	heartbeatTicks      = 1
)

// cluster is the node's Raft and controller state.
type cluster struct {
	self   port.NodeID
	voters []port.NodeID
	raft   *raft.Raft
	store  *metalog.Store
	// image is the committed metadata, replayed from the log.
	image *metadata.Image
	ctrl  *controller.Controller

	tickNs     int64
	nextTickNs int64

	// persisting: a Ready is being written. opsLeft counts the
	// metadata-log ops issued and not completed; queued holds those not
	// issued yet (see queueCluster).
	persisting *raft.Ready
	opsLeft    int
	queued     []port.DiskOp
	// compacting: a snapshot is being written.
	compacting *raft.Snapshot
	// waiting maps a proposed entry's index to its term and outcome.
	waiting map[uint64]proposal
	// leaderTermStart is the index of this node's first entry as leader
	// in its term; the controller activates once it is applied.
	leaderTermStart uint64
	leaderTerm      uint64
	applied         uint64
	// knownLeader is the Raft leader as last seen, to notice changes.
	knownLeader port.NodeID

	// bootLast is the last log index stored at boot. Until the node has
	// applied that far, its image may lack topics whose directories it
	// recovered, so orphan directories wait (see reconcile).
	bootLast uint64
	caughtUp bool
	// bootSynced: the sync of what recovery read, and of the log
	// directory's id, has completed.
	bootSynced bool
	// directory is the log directory's id (see directory.go).
	directory [16]byte

	// Controller requests this node sent and awaits, by request id.
	calls    map[uint64]*controllerCall
	nextCall uint64

	reg      registration
	observer Observer
}

// Observer sees the node's metadata log from outside: the simulator checks
// the cluster's claims with it. Its functions are called synchronously and
// must not call back into the node.
type Observer struct {
	// Applied: the entry at index, of term, was applied (data nil for a
	// leader's empty entry).
	Applied func(index, term uint64, data []byte)
	// Controller: the node became the active controller in term.
	Controller func(term uint64)
}

// Observe installs o (the simulator's checkers).
func (n *Node) Observe(o Observer) { n.cluster.observer = o }

// RaftStatus is the node's Raft state, for the simulator's checkers.
func (n *Node) RaftStatus() raft.Status { return n.cluster.raft.Status() }

// MetadataImage returns the index the node applied its metadata log to and
// its image's snapshot bytes, for comparing nodes.
func (n *Node) MetadataImage() (uint64, []byte) {
	return n.cluster.applied, n.cluster.image.Snapshot()
}

type proposal struct {
	term uint64
	done func(committed bool)
}

// bootCluster recovers the metadata log and starts Raft. It returns the
// provisional image: the snapshot plus every stored entry, committed or
// not, which tells recovery which partition directories to open.
func (n *Node) bootCluster(fs port.BootFS) (*metadata.Image, error) {
	c := &n.cluster
	c.self = port.NodeID(n.cfg.NodeID)
	for _, v := range n.cfg.ControllerQuorumVoters {
		c.voters = append(c.voters, port.NodeID(v.ID))
	}
	if len(c.voters) == 0 && len(n.cfg.ControllerQuorumBootstrapServers) > 0 {
		return nil, fmt.Errorf("controller.quorum.bootstrap.servers (a dynamic quorum, KIP-853) is not supported yet: list the voters in controller.quorum.voters")
	}
	if len(c.voters) == 0 {
		c.voters = []port.NodeID{c.self} // a lone combined node is its own quorum
	}
	store, state, err := metalog.Recover(fs)
	if err != nil {
		return nil, fmt.Errorf("metadata log: %w", err)
	}
	c.store = store
	c.image = metadata.New()
	provisional := metadata.New()
	if state.Snapshot.Index > 0 {
		if c.image, err = metadata.FromSnapshot(state.Snapshot.Data); err != nil {
			return nil, fmt.Errorf("metadata snapshot: %w", err)
		}
		provisional = c.image.Clone()
	}
	for _, e := range state.Entries {
		if e.Data == nil {
			continue
		}
		recs, err := metadata.DecodeBatch(e.Data)
		if err != nil {
			return nil, fmt.Errorf("metadata log entry %d: %w", e.Index, err)
		}
		provisional.Apply(e.Index, recs)
	}
	c.applied = state.Snapshot.Index
	c.bootLast = state.Snapshot.Index + uint64(len(state.Entries))
	c.caughtUp = c.bootLast == c.applied
	c.tickNs = int64(n.cfg.ControllerQuorumElectionTimeoutMs) * 1e6 / electionTicks
	c.nextTickNs = n.now.MonoNs + c.tickNs
	c.raft = raft.New(raft.Config{
		ID: c.self, Voters: c.voters, ElectionTicks: electionTicks, HeartbeatTicks: heartbeatTicks,
		Rand: func(k int) int { return n.rnd.IntN(k) },
	}, state.HardState, state.Snapshot, state.Entries)
	if len(c.voters) == 1 && c.voters[0] == c.self {
		c.raft.Campaign() // a lone voter need not wait for a timeout
	}
	c.waiting = map[uint64]proposal{}
	c.calls = map[uint64]*controllerCall{}
	// Call ids start anywhere, so that a controller's answer to a call of
	// this node's previous process is never taken for one of this process.
	c.nextCall = n.rnd.Uint64()
	c.ctrl = controller.New(controller.Config{
		SessionTimeoutMs:         int64(n.cfg.BrokerSessionTimeoutMs),
		DefaultPartitions:        n.cfg.NumPartitions,
		DefaultReplicationFactor: n.cfg.DefaultReplicationFactor,
		DeleteTopicEnable:        n.cfg.DeleteTopicEnable,
		AutoLeaderRebalance:      n.cfg.AutoLeaderRebalanceEnable,
		RebalanceIntervalMs:      n.cfg.LeaderImbalanceCheckIntervalSeconds * 1000,
		ValidateTopicConfig: func(o map[string]string) error {
			_, err := n.cfg.TopicConfig(o)
			return err
		},
		UncleanLeaderElection: func(o map[string]string) bool {
			t, err := n.cfg.TopicConfig(o)
			return err == nil && t.UncleanLeaderElection
		},
		MinInsyncReplicas: func(o map[string]string) int32 {
			t, err := n.cfg.TopicConfig(o)
			if err != nil {
				return n.cfg.TopicDefaults.MinInsyncReplicas
			}
			return t.MinInsyncReplicas
		},
		Logger:    n.log,
		Rand:      n.rnd.Uint64,
		ClusterID: n.cfg.ClusterID,
	}, (*raftLog)(n))
	c.reg.incarnation = n.newUUID()
	c.reg.leaseFromNs = math.MinInt64
	if err := n.bootDirectory(fs); err != nil {
		return nil, err
	}
	n.queueCluster(store.BootOps())
	c.bootSynced = c.idle()
	return provisional, nil
}

// raftLog is the Node seen as the controller's Proposer.
type raftLog Node

func (l *raftLog) NextIndex() uint64 { return l.cluster.raft.Status().LastIndex + 1 }

func (l *raftLog) Propose(recs []metadata.Record, done func(bool)) (uint64, bool) {
	c := &l.cluster
	index, term, err := c.raft.Propose(metadata.EncodeBatch(recs))
	if err != nil {
		return 0, false
	}
	c.waiting[index] = proposal{term: term, done: done}
	return index, true
}

// queueCluster issues metadata-log ops in order, except that a rename
// waits until every op before it has succeeded: the driver runs the ops
// queued on a lane even after one failed, and a rename over a file whose
// fsync failed would install what a power loss takes away.
func (n *Node) queueCluster(ops []port.DiskOp) {
	c := &n.cluster
	c.queued = append(c.queued, ops...)
	for len(c.queued) > 0 && n.storageErr == nil {
		op := c.queued[0]
		if op.Kind == port.OpRename && c.opsLeft > 0 {
			return
		}
		c.queued = c.queued[1:]
		op.ID = n.newOpID(opRef{cluster: true})
		c.opsLeft++
		n.emit(op)
	}
}

// idle reports whether no metadata-log op is in flight or waiting.
func (c *cluster) idle() bool { return c.opsLeft == 0 && len(c.queued) == 0 }

// tickCluster runs Raft's clock and the controller's and broker's timers.
func (n *Node) tickCluster() {
	c := &n.cluster
	for n.now.MonoNs >= c.nextTickNs {
		c.nextTickNs += c.tickNs
		c.raft.Tick()
	}
	n.checkLeadership()
	c.ctrl.Tick(n.now.MonoNs / 1e6)
	n.expireCalls()
	n.brokerLifecycle()
}

// checkLeadership activates the controller once this node leads and has
// applied everything earlier terms left, and deactivates it when
// leadership is gone, failing what it had not committed.
func (n *Node) checkLeadership() {
	c := &n.cluster
	st := c.raft.Status()
	if st.Leader != c.knownLeader {
		// Calls forwarded to the old leader will not be answered by a
		// controller any more: fail them now rather than at their timeout.
		c.knownLeader = st.Leader
		n.failCalls(kerr.NotController)
	}
	if st.Role != raft.Leader || st.Term != c.leaderTerm {
		// Not leading, or leading in a term this node has not
		// activated for (leadership lost and won back between two
		// checks): the controller's view belongs to an older term.
		c.leaderTermStart, c.leaderTerm = 0, 0
		if c.ctrl.Active() {
			n.log.Info("no longer the active controller", "term", st.Term)
			c.ctrl.Deactivate()
		}
		n.failWaiting()
		if st.Role != raft.Leader {
			return
		}
	}
	if c.leaderTermStart == 0 {
		c.leaderTerm = st.Term
		c.leaderTermStart = st.LastIndex // the empty entry of the new term
	}
	if !c.ctrl.Active() && c.applied >= c.leaderTermStart {
		n.log.Info("active controller", "term", st.Term)
		c.ctrl.Activate(c.image, n.now.MonoNs/1e6)
		if c.observer.Controller != nil {
			c.observer.Controller(st.Term)
		}
	}
}

func (n *Node) failWaiting() {
	c := &n.cluster
	if len(c.waiting) == 0 {
		return
	}
	indexes := make([]uint64, 0, len(c.waiting))
	for i := range c.waiting {
		indexes = append(indexes, i)
	}
	slices.Sort(indexes)
	for _, i := range indexes {
		p := c.waiting[i]
		delete(c.waiting, i)
		p.done(false)
	}
}

// pumpRaft starts persisting the next Ready if none is in flight.
func (n *Node) pumpRaft() {
	c := &n.cluster
	for c.persisting == nil && c.compacting == nil && n.storageErr == nil && c.raft.HasReady() {
		rd := c.raft.Ready()
		c.persisting = &rd
		toSave := rd
		if bugs.On(bugs.VoteNotPersisted) {
			toSave.HardState = nil
		}
		ops := c.store.Save(toSave)
		if bugs.On(bugs.RaftSkipsFsync) {
			ops = slices.DeleteFunc(ops, func(op port.DiskOp) bool { return op.Kind == port.OpSync })
		}
		n.queueCluster(ops)
		if c.idle() {
			n.readyPersisted()
		}
	}
}

// clusterOpDone counts a metadata-log operation; when a Ready's last one
// completes, the Ready takes effect.
func (n *Node) clusterOpDone() {
	c := &n.cluster
	c.opsLeft--
	n.queueCluster(nil)
	if !c.idle() {
		return
	}
	c.bootSynced = true // the boot sync ops are the first on the lane
	switch {
	case c.persisting != nil:
		n.readyPersisted()
		n.pumpRaft()
	case c.compacting != nil:
		s := c.compacting
		c.compacting = nil
		c.raft.Compact(s.Index, s.Data)
		n.pumpRaft()
	}
}

// readyPersisted carries out a durable Ready: messages, then the
// committed entries.
func (n *Node) readyPersisted() {
	c := &n.cluster
	rd := c.persisting
	c.persisting = nil
	for _, m := range rd.Messages {
		n.emit(port.SendPeer{To: m.To, Data: raft.AppendMessage([]byte{peerRaft}, m)})
	}
	if s := rd.Snapshot; s != nil {
		img, err := metadata.FromSnapshot(s.Data)
		if err != nil {
			panic(fmt.Sprintf("broker: snapshot from the leader does not decode: %v", err))
		}
		c.image, c.applied = img, s.Index
		c.bootLast = min(c.bootLast, s.Index)
	}
	if len(rd.Entries) > 0 && rd.Entries[0].Index <= c.bootLast {
		// The tail stored at boot was replaced by the leader's log.
		c.bootLast = rd.Entries[0].Index - 1
	}
	for _, e := range rd.Committed {
		if e.Data != nil {
			recs, err := metadata.DecodeBatch(e.Data)
			if err != nil {
				panic(fmt.Sprintf("broker: committed metadata entry %d does not decode: %v", e.Index, err))
			}
			c.image.Apply(e.Index, recs)
		}
		c.applied = e.Index
		if c.observer.Applied != nil {
			c.observer.Applied(e.Index, e.Term, e.Data)
		}
		if p, ok := c.waiting[e.Index]; ok {
			delete(c.waiting, e.Index)
			p.done(p.term == e.Term)
		}
	}
	c.raft.Advance()
	if rd.Snapshot != nil || len(rd.Committed) > 0 {
		if !c.caughtUp && c.applied >= c.bootLast {
			c.caughtUp = true
		}
		if c.caughtUp {
			n.reconcile()
		}
		n.checkLeadership()
		n.maybeCompact()
		if r := &c.reg; r.epoch == 0 && !r.inFlight {
			r.nextNs = n.now.MonoNs // registration may wait on what was applied
		}
	}
}

// maybeCompact snapshots the image once the log since the last snapshot
// holds metadata.log.max.record.bytes.between.snapshots.
func (n *Node) maybeCompact() {
	c := &n.cluster
	if c.compacting != nil || c.persisting != nil || c.store.Size() < n.cfg.MetadataSnapshotBytes {
		return
	}
	term, ok := c.raft.TermAt(c.applied)
	if !ok {
		return // a newer snapshot from the leader is being installed
	}
	snap := raft.Snapshot{Index: c.applied, Term: term, Data: c.image.Snapshot()}
	ops := c.store.Compact(snap)
	if len(ops) == 0 {
		return // the stored snapshot is already as new
	}
	c.compacting = &snap
	n.queueCluster(ops)
}

// peerMessage handles a message from another node.
func (n *Node) peerMessage(m port.PeerMessage) {
	if len(m.Data) == 0 {
		return
	}
	c := &n.cluster
	body := m.Data[1:]
	switch m.Data[0] {
	case peerRaft:
		msg, err := raft.DecodeMessage(body)
		if err != nil || msg.From != m.From || msg.To != c.self {
			n.log.Warn("dropping a malformed raft message", "from", m.From, "err", err)
			return
		}
		c.raft.Step(msg)
		n.checkLeadership()
	case peerCtrlReq:
		id, req, err := decodeCall(body)
		if err != nil {
			n.log.Warn("dropping a malformed controller request", "from", m.From, "err", err)
			return
		}
		from := m.From
		c.ctrl.Handle(n.now.MonoNs/1e6, req, func(resp kmsg.Response) {
			n.emit(port.SendPeer{To: from, Data: encodeCallResponse(id, resp)})
		})
	case peerCtrlResp:
		if len(body) < 8 {
			return
		}
		id := binary.BigEndian.Uint64(body)
		call := c.calls[id]
		if call == nil {
			return // timed out already, or never asked
		}
		delete(c.calls, id)
		resp := call.req.ResponseKind()
		resp.SetVersion(call.req.GetVersion())
		if err := resp.ReadFrom(body[8:]); err != nil {
			call.done(nil, fmt.Errorf("%w: malformed controller response: %v", kerr.UnknownServerError, err))
			return
		}
		call.done(resp, nil)
	case peerFetchReq:
		n.replicaFetch(m.From, body)
	case peerFetchResp:
		n.replicaFetched(m.From, body)
	}
}

// controllerCall is a request forwarded to the controller, awaiting its
// response.
type controllerCall struct {
	req        kmsg.Request
	done       func(kmsg.Response, error)
	deadlineNs int64
}

// callTimeoutNs bounds how long a forwarded request waits: peer messages
// may be lost, and the caller retries.
const callTimeoutNs = 5e9

// callController sends a controller request to the active controller (this
// node, or the Raft leader); done gets its response, or NOT_CONTROLLER
// when no controller is known, or REQUEST_TIMED_OUT.
func (n *Node) callController(req kmsg.Request, done func(kmsg.Response, error)) {
	c := &n.cluster
	if c.ctrl.Active() {
		c.ctrl.Handle(n.now.MonoNs/1e6, req, func(resp kmsg.Response) { done(resp, nil) })
		return
	}
	lead := c.raft.Leader()
	if lead == raft.None || lead == c.self {
		done(nil, kerr.NotController)
		return
	}
	c.nextCall++
	c.calls[c.nextCall] = &controllerCall{req: req, done: done, deadlineNs: n.now.MonoNs + callTimeoutNs}
	b := binary.BigEndian.AppendUint64([]byte{peerCtrlReq}, c.nextCall)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	n.emit(port.SendPeer{To: lead, Data: req.AppendTo(b)})
}

// controllerKeys are the requests a controller serves from peers.
var controllerKeys = map[int16]bool{
	kmsg.BrokerRegistration.Int16(): true, kmsg.BrokerHeartbeat.Int16(): true,
	kmsg.CreateTopics.Int16(): true, kmsg.DeleteTopics.Int16(): true,
	kmsg.CreatePartitions.Int16(): true, kmsg.ElectLeaders.Int16(): true,
	kmsg.AllocateProducerIDs.Int16(): true, kmsg.AlterPartition.Int16(): true,
	kmsg.AlterPartitionAssignments.Int16(): true, kmsg.ListPartitionReassignments.Int16(): true,
}

// decodeCall parses a forwarded controller request.
func decodeCall(b []byte) (uint64, kmsg.Request, error) {
	if len(b) < 12 {
		return 0, nil, fmt.Errorf("short controller request")
	}
	id := binary.BigEndian.Uint64(b)
	key, version := int16(binary.BigEndian.Uint16(b[8:])), int16(binary.BigEndian.Uint16(b[10:]))
	if !controllerKeys[key] {
		return 0, nil, fmt.Errorf("api key %d is not a controller request", key)
	}
	req := kmsg.RequestForKey(key)
	if version < 0 || version > req.MaxVersion() {
		return 0, nil, fmt.Errorf("api key %d version %d is not supported", key, version)
	}
	req.SetVersion(version)
	if err := req.ReadFrom(b[12:]); err != nil {
		return 0, nil, err
	}
	return id, req, nil
}

func encodeCallResponse(id uint64, resp kmsg.Response) []byte {
	return resp.AppendTo(binary.BigEndian.AppendUint64([]byte{peerCtrlResp}, id))
}

// expireCalls times out forwarded requests whose controller did not answer.
func (n *Node) expireCalls() {
	n.endCalls(kerr.RequestTimedOut, func(call *controllerCall) bool { return n.now.MonoNs >= call.deadlineNs })
}

// failCalls ends every forwarded request with err.
func (n *Node) failCalls(err *kerr.Error) {
	n.endCalls(err, func(*controllerCall) bool { return true })
}

func (n *Node) endCalls(err *kerr.Error, which func(*controllerCall) bool) {
	c := &n.cluster
	var ended []uint64
	for id, call := range c.calls {
		if which(call) {
			ended = append(ended, id)
		}
	}
	slices.Sort(ended)
	for _, id := range ended {
		call := c.calls[id]
		delete(c.calls, id)
		call.done(nil, err)
	}
}

// DescribePeer renders a cluster message for traces: its Raft message type
// and term, or the kind of controller call.
func DescribePeer(e port.SendPeer) string {
	data := e.Data
	if len(data) == 0 && len(e.Chunks) > 0 {
		data = e.Chunks[0].Bytes // a replica fetch response
	}
	if len(data) == 0 {
		return "(empty)"
	}
	switch data[0] {
	case peerRaft:
		m, ok := PeerRaftMessage(data)
		if !ok {
			return "raft (undecodable)"
		}
		return fmt.Sprintf("raft %s term %d", m.Type, m.Term)
	case peerCtrlReq:
		if len(data) >= 11 {
			return "controller request " + kmsg.NameForKey(int16(binary.BigEndian.Uint16(data[9:])))
		}
	case peerCtrlResp:
		return "controller response"
	case peerFetchReq:
		return "replica fetch"
	case peerFetchResp:
		return "replica fetch response"
	}
	return "unknown cluster message"
}

// PeerRaftMessage decodes a cluster message that carries a Raft message,
// for the simulator's checkers.
func PeerRaftMessage(data []byte) (raft.Message, bool) {
	if len(data) == 0 || data[0] != peerRaft {
		return raft.Message{}, false
	}
	m, err := raft.DecodeMessage(data[1:])
	return m, err == nil
}

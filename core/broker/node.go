package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/config"
	"github.com/weirmq/weir/core/group"
	"github.com/weirmq/weir/core/partlog"
	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/wire"
)

// Node is one Weir broker. It is not safe for concurrent use: one driver
// goroutine owns it.
type Node struct {
	cfg *config.Broker
	log *slog.Logger
	rnd *rand.Rand
	now port.Time

	effects []port.Effect
	nextOp  port.OpID
	// ops routes disk completions; it is only ever indexed, never ranged.
	ops map[port.OpID]opRef

	conns map[port.ConnID]*conn

	cluster cluster
	topics  topicTable
	// pool holds the partition logs recovered at boot, by directory,
	// until reconcile hands each to the partition that owns it or removes
	// it. A pooled partition's placeholder topic carries the id its
	// directory records, zero if it records none (no topic has id zero).
	pool    map[string]*partition
	pids    pidAllocator
	syncing []*partition // partitions appended to since the last Ready
	// flushDue are page-cache-mode partitions waiting for flush.ms.
	flushDue []*partition

	produces []*pendingProduce
	fetches  []*pendingFetch

	// Replication: follower fetches waiting at this leader; the
	// partitions this node follows, in topic order; whether some may
	// fetch now; the last fetch id; when follower fetches next need a look
	// (timeouts, backoffs), when ISRs are next checked for laggards, and
	// when an ISR change of unknown outcome is next sent again (zero:
	// none is due).
	// fetchAtHead: some waiting fetch reached the head of its
	// connection's queue (expire looks at it).
	fetchAtHead    bool
	replicaFetches []*pendingReplicaFetch
	following      []*partition
	fetchDue       bool
	nextFetchID    uint64
	followCheckNs  int64
	nextISRCheckNs int64
	alterRetryNs   int64
	sessions       sessionCache
	groups         *group.Coordinator
	// offsetsLoads are the partitions of __consumer_offsets this node
	// leads and has loaded, or is loading, by partition (only indexed);
	// coordWrites the coordinator's batches waiting to commit, in append
	// order; creatingOffsets: the topic is being created.
	offsetsLoads    map[int32]*offsetsLoad
	coordWrites     []*coordWrite
	creatingOffsets bool

	nextRetentionMonoNs int64

	// booting holds requests until recovery's first sync round covers
	// every log, so nothing unsynced from before a crash is ever served,
	// and until the broker has replayed the metadata log and the
	// controller has unfenced it, as a KRaft broker waits before it
	// serves.
	booting bool
	held    []port.Request

	// storageErr is set once a disk operation failed: the log directory is
	// offline from then on.
	storageErr error
}

// opRef says what a disk operation was for: a partition log's, the
// metadata log's (cluster), a group coordinator's replay (load), or none
// of them (removing an orphan directory).
type opRef struct {
	part       *partition
	completion partlog.Completion
	cluster    bool
	// load is set on a read of a __consumer_offsets partition being
	// replayed.
	load *offsetsLoad
}

// Boot recovers a node from its data directory and returns it ready for
// inputs. The repairs recovery needs are its first effects.
func Boot(fs port.BootFS, cfg *config.Broker, seed uint64, now port.Time, logger *slog.Logger) (*Node, error) {
	n := &Node{
		cfg:      cfg,
		log:      logger,
		rnd:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:      now,
		ops:      map[port.OpID]opRef{},
		conns:    map[port.ConnID]*conn{},
		topics:   newTopicTable(),
		sessions: newSessionCache(cfg.MaxIncrementalFetchSessionCacheSlots),
		booting:  true,

		offsetsLoads: map[int32]*offsetsLoad{},
	}
	// The coordinator draws member ids from its own stream, so that group
	// traffic does not shift the node's other random draws.
	n.groups = group.New(group.ConfigFrom(cfg), rand.New(rand.NewPCG(seed^0x6a09e667f3bcc909, seed^0xbb67ae8584caa73b)),
		groupHost{n}, logger, now.MonoNs)
	provisional, err := n.bootCluster(fs)
	if err != nil {
		return nil, err
	}
	if err := n.recoverPartitions(fs, provisional); err != nil {
		return nil, err
	}
	if n.cluster.caughtUp {
		// A snapshot covered the whole log: nothing to replay.
		n.reconcile()
	}
	n.nextRetentionMonoNs = now.MonoNs + cfg.RetentionCheckIntervalMs*1e6
	n.nextISRCheckNs = now.MonoNs + n.isrCheckIntervalNs()
	n.log.Info("recovered", "topics", len(n.topics.sorted), "metadata_index", n.cluster.bootLast)
	return n, nil
}

// Step gives the node one input.
func (n *Node) Step(now port.Time, in port.Input) {
	if now.MonoNs < n.now.MonoNs {
		panic("broker: monotonic time went back")
	}
	n.now = now
	switch in := in.(type) {
	case port.ConnOpened:
		n.conns[in.Conn] = &conn{id: in.Conn, remote: in.Remote}
	case port.ConnClosed:
		if c := n.conns[in.Conn]; c != nil {
			c.closed = true
			delete(n.conns, in.Conn)
		}
	case port.Request:
		if n.booting {
			n.held = append(n.held, in)
			return
		}
		n.handleRequest(in)
	case port.DiskDone:
		n.diskDone(in)
	case port.PeerMessage:
		n.peerMessage(in)
	case port.Stop:
		n.stop()
	case port.Wake:
	}
	n.tickCluster()
	n.expire()
}

// Ready returns the effects wanted since the last call. Sync rounds start
// here, after a whole batch of inputs, so one fsync covers all of them.
func (n *Node) Ready() port.Ready {
	for _, p := range n.syncing {
		p.syncQueued = false
		n.issue(p, p.log.MaybeSync(n.now.MonoNs))
		if p.log.FlushDueMonoNs() > 0 && !p.flushTracked {
			p.flushTracked = true
			n.flushDue = append(n.flushDue, p)
		}
	}
	n.syncing = n.syncing[:0]
	n.sendReplicaFetches()
	n.pumpRaft()
	eff := n.effects
	n.effects = nil
	return port.Ready{Effects: eff, WakeAtMonoNs: n.nextWake(), Stopped: n.cluster.reg.stopped}
}

func (n *Node) emit(e port.Effect) { n.effects = append(n.effects, e) }

// issue numbers a partition's disk operations and emits them.
func (n *Node) issue(p *partition, ops []partlog.Op) { n.issueAs(opRef{part: p}, ops) }

// issueAs emits ops whose completions ref describes.
func (n *Node) issueAs(ref opRef, ops []partlog.Op) {
	for _, op := range ops {
		n.nextOp++
		op.ID = n.nextOp
		ref.completion = op.Completion
		op.ID = n.newOpID(ref)
		n.emit(op.DiskOp)
	}
}

// newOpID numbers a disk operation and remembers what it is for.
func (n *Node) newOpID(ref opRef) port.OpID {
	n.nextOp++
	n.ops[n.nextOp] = ref
	return n.nextOp
}

func (n *Node) diskDone(d port.DiskDone) {
	ref, ok := n.ops[d.Op]
	if !ok {
		panic(fmt.Sprintf("broker: completion for unknown op %d", d.Op))
	}
	delete(n.ops, d.Op)
	if d.Err != nil {
		n.failStorage(d.Err)
		return
	}
	if n.storageErr != nil {
		return
	}
	if ref.cluster {
		n.clusterOpDone()
	} else if ref.load != nil {
		n.loadRead(ref.load, d.Data)
	} else if ref.completion != partlog.NoCompletion {
		ref.part.log.Completed(ref.completion)
		if ref.completion == partlog.SyncPart {
			n.queueSync(ref.part)
		}
		n.partitionAdvanced(ref.part)
	}
	n.releaseHeldIfReady()
}

// failStorage takes the log directory offline: Kafka's behaviour on an
// IOException, and the only safe one, since after a failed write or fsync
// nobody knows what reached the disk.
func (n *Node) failStorage(err error) {
	if n.storageErr == nil {
		n.log.Error("log directory offline after a disk error; restart after fixing the disk", "err", err)
		n.storageErr = err
	}
	for _, pp := range n.produces {
		pp.failAll(n, kerr.KafkaStorageError)
	}
	n.produces = nil
	// Kafka unloads the groups of an offline log directory: what they
	// hold is answered NOT_COORDINATOR, and no rebalance completes here.
	for _, i := range slices.Sorted(maps.Keys(n.offsetsLoads)) {
		n.unloadCoordinator(n.offsetsLoads[i].part)
	}
	for _, f := range n.replicaFetches {
		n.answerReplicaFetch(f) // each partition answers KAFKA_STORAGE_ERROR
	}
	n.replicaFetches = nil
	n.failWaiting()
	// A node that has replayed its metadata answers what it holds with
	// KAFKA_STORAGE_ERROR. One that has not keeps holding requests: its
	// image lacks topics it may hold, and a client told they do not exist
	// would be misled (the operator restarts the node).
	if n.booting && n.cluster.caughtUp {
		n.booting = false
		n.releaseHeld()
	}
}

// releaseHeldIfReady ends booting once every recovered log is synced,
// the metadata log is replayed, and the controller has unfenced this
// broker (or it is not a broker).
func (n *Node) releaseHeldIfReady() {
	if !n.booting || !n.cluster.bootSynced || !n.cluster.caughtUp {
		return
	}
	if n.isBroker() && (n.cluster.reg.epoch == 0 || n.cluster.reg.fenced) {
		return
	}
	for _, t := range n.topics.sorted {
		for _, p := range t.partitions {
			if p.log != nil && !p.log.RecoveryDurable() {
				return
			}
		}
	}
	for _, p := range n.pool {
		if !p.log.RecoveryDurable() {
			return
		}
	}
	n.booting = false
	n.log.Info("ready")
	n.releaseHeld()
}

func (n *Node) releaseHeld() {
	held := n.held
	n.held = nil
	for _, r := range held {
		n.handleRequest(r)
	}
}

// expire answers fetches whose time is up, runs the group coordinator's
// timers and runs retention.
func (n *Node) expire() {
	now := n.now.MonoNs
	n.groups.Expire(now)
	n.expireCoordWrites()
	// Answering one fetch may bring another to the head of its
	// connection's queue, hence the loop.
	for first := true; first || n.fetchAtHead; first = false {
		n.fetchAtHead = false
		n.fetches = slices.DeleteFunc(n.fetches, func(f *pendingFetch) bool {
			closed := f.slot.conn.closed
			if !closed && !f.slot.atHead() {
				return false
			}
			due := closed || now >= f.deadlineMonoNs || f.atHead && n.fetchReady(f)
			f.atHead = false
			if !due {
				return false
			}
			n.answerFetch(f)
			return true
		})
	}
	n.replicaFetches = slices.DeleteFunc(n.replicaFetches, func(f *pendingReplicaFetch) bool {
		if now < f.deadlineMonoNs {
			return false
		}
		n.answerReplicaFetch(f)
		return true
	})
	n.produces = slices.DeleteFunc(n.produces, func(pp *pendingProduce) bool {
		if now < pp.deadlineMonoNs {
			return false
		}
		pp.failAll(n, kerr.RequestTimedOut)
		return true
	})
	if n.followCheckNs > 0 && now >= n.followCheckNs {
		n.followCheckNs = n.expireReplicaFetches()
	}
	if now >= n.nextISRCheckNs {
		n.nextISRCheckNs = now + n.isrCheckIntervalNs()
		if !n.booting && n.storageErr == nil {
			n.shrinkISRs()
		}
	}
	if n.alterRetryNs > 0 && now >= n.alterRetryNs {
		n.retryAlters()
	}
	n.flushDue = slices.DeleteFunc(n.flushDue, func(p *partition) bool {
		if due := p.log.FlushDueMonoNs(); due > 0 && now < due {
			return false
		}
		p.flushTracked = false
		n.queueSync(p)
		return true
	})
	if now >= n.nextRetentionMonoNs {
		// The check moves on even while booting or offline, when no
		// retention runs: nextWake would otherwise ask for a wake-up in
		// the past after every input, a busy loop.
		n.nextRetentionMonoNs = now + n.cfg.RetentionCheckIntervalMs*1e6
		if !n.booting && n.storageErr == nil {
			n.applyRetention()
		}
	}
}

func (n *Node) applyRetention() {
	for _, t := range n.topics.sorted {
		for _, p := range t.partitions {
			if p.log == nil {
				continue // a replica held elsewhere
			}
			if ops := p.log.ApplyRetention(n.now.WallMs, p.hw); len(ops) > 0 {
				n.issue(p, ops)
				n.queueSync(p)
			}
		}
	}
}

func (n *Node) nextWake() int64 {
	wake := min(n.nextRetentionMonoNs, n.cluster.nextTickNs)
	if r := &n.cluster.reg; !r.inFlight && !r.stopped && n.isBroker() && n.storageErr == nil {
		wake = min(wake, max(r.nextNs, n.now.MonoNs+1))
	}
	for _, f := range n.fetches {
		if f.slot.atHead() || f.slot.conn.closed {
			// One behind another response waits for that (onHead).
			wake = min(wake, f.deadlineMonoNs)
		}
	}
	if n.fetchAtHead {
		wake = min(wake, n.now.MonoNs+1) // a fetch came to the head after expire ran
	}
	for _, f := range n.replicaFetches {
		wake = min(wake, f.deadlineMonoNs)
	}
	for _, pp := range n.produces {
		wake = min(wake, pp.deadlineMonoNs)
	}
	for _, w := range n.coordWrites {
		wake = min(wake, w.deadlineNs)
	}
	wake = min(wake, n.nextISRCheckNs)
	if n.followCheckNs > 0 {
		wake = min(wake, n.followCheckNs)
	}
	if n.alterRetryNs > 0 {
		wake = min(wake, n.alterRetryNs)
	}
	if d := n.groups.NextDeadline(); d > 0 {
		wake = min(wake, d)
	}
	for _, p := range n.flushDue {
		if due := p.log.FlushDueMonoNs(); due > 0 {
			wake = min(wake, due)
		}
	}
	return wake
}

// partitionAdvanced follows a change to a partition's log or replicas:
// a leader's high watermark may move, and what waits on it, or on the
// stable offset, or (follower fetches) on new data, may be answered; a
// follower may fetch again.
func (n *Node) partitionAdvanced(p *partition) {
	if p.lead != nil {
		n.advanceHW(p)
		if len(n.replicaFetches) > 0 {
			n.wakeReplicaFetches(p)
		}
	}
	if p.follow != nil && n.canFetch(p) {
		n.fetchDue = true
	}
	n.coordinatorChanged(p)
	stable := p.log.StableOffset()
	if stable == p.lastStable && p.hw == p.lastHW {
		return
	}
	p.lastStable, p.lastHW = stable, p.hw
	n.produces = slices.DeleteFunc(n.produces, func(pp *pendingProduce) bool { return pp.advance(n, p) })
	n.wakeFetches(p)
}

// wakeFetches answers the consumer fetches waiting on p that are ready and
// whose answer can go out at once.
func (n *Node) wakeFetches(p *partition) {
	n.fetches = slices.DeleteFunc(n.fetches, func(f *pendingFetch) bool {
		if !f.includes(p) || !f.slot.atHead() || !n.fetchReady(f) {
			return false
		}
		n.answerFetch(f)
		return true
	})
}

// dropProduces answers the produces waiting on p with err.
func (n *Node) dropProduces(p *partition, err *kerr.Error) {
	n.produces = slices.DeleteFunc(n.produces, func(pp *pendingProduce) bool { return pp.drop(n, p, err) })
}

func (n *Node) handleRequest(r port.Request) {
	c := n.conns[r.Conn]
	if c == nil {
		return // the connection closed while the request was in flight
	}
	s := c.enqueue(r.Header)
	if r.Err != nil {
		if r.Header.APIKey == kmsg.ApiVersions.Int16() && errors.Is(r.Err, wire.ErrUnsupportedVersion) {
			s.version = 0
			n.respond(s, wire.APIVersionsFallback(supportedKeys(), Supported))
			return
		}
		// Kafka closes the connection on a request it cannot parse.
		n.log.Warn("closing connection after a bad request", "remote", c.remote, "api_key", r.Header.APIKey,
			"api_version", r.Header.APIVersion, "err", r.Err)
		n.closeConn(c)
		return
	}
	switch req := r.Body.(type) {
	case *kmsg.ProduceRequest:
		n.handleProduce(s, req, r.Checked)
	case *kmsg.FetchRequest:
		n.handleFetch(s, req)
	case *kmsg.ListOffsetsRequest:
		n.handleListOffsets(s, req)
	case *kmsg.MetadataRequest:
		n.handleMetadata(s, req)
	case *kmsg.ApiVersionsRequest:
		n.handleAPIVersions(s, req)
	case *kmsg.CreateTopicsRequest:
		n.handleCreateTopics(s, req)
	case *kmsg.DeleteTopicsRequest:
		n.handleDeleteTopics(s, req)
	case *kmsg.InitProducerIDRequest:
		n.handleInitProducerID(s, req)
	case *kmsg.DescribeConfigsRequest:
		n.handleDescribeConfigs(s, req)
	case *kmsg.CreatePartitionsRequest:
		n.handleCreatePartitions(s, req)
	case *kmsg.DescribeClusterRequest:
		n.handleDescribeCluster(s, req)
	case *kmsg.ElectLeadersRequest:
		n.handleElectLeaders(s, req)
	case *kmsg.OffsetForLeaderEpochRequest:
		n.handleOffsetForLeaderEpoch(s, req)
	case *kmsg.OffsetCommitRequest:
		n.handleOffsetCommit(s, req)
	case *kmsg.OffsetFetchRequest:
		n.handleOffsetFetch(s, req)
	case *kmsg.FindCoordinatorRequest:
		n.handleFindCoordinator(s, req)
	case *kmsg.JoinGroupRequest:
		n.handleJoinGroup(s, req)
	case *kmsg.HeartbeatRequest:
		n.handleHeartbeat(s, req)
	case *kmsg.LeaveGroupRequest:
		n.handleLeaveGroup(s, req)
	case *kmsg.SyncGroupRequest:
		n.handleSyncGroup(s, req)
	case *kmsg.DescribeGroupsRequest:
		n.handleDescribeGroups(s, req)
	case *kmsg.ListGroupsRequest:
		n.handleListGroups(s, req)
	case *kmsg.DeleteGroupsRequest:
		n.handleDeleteGroups(s, req)
	case *kmsg.OffsetDeleteRequest:
		n.handleOffsetDelete(s, req)
	case *kmsg.ConsumerGroupHeartbeatRequest:
		n.handleConsumerGroupHeartbeat(s, req)
	case *kmsg.ConsumerGroupDescribeRequest:
		n.handleConsumerGroupDescribe(s, req)
	case *kmsg.DescribeLogDirsRequest:
		n.handleDescribeLogDirs(s, req)
	case *kmsg.AlterPartitionAssignmentsRequest:
		n.handleAlterPartitionReassignments(s, req)
	case *kmsg.ListPartitionReassignmentsRequest:
		n.handleListPartitionReassignments(s, req)
	default:
		// wire.ParseRequest admits only keys Supported lists.
		panic(fmt.Sprintf("broker: no handler for api key %d", r.Header.APIKey))
	}
}

func (n *Node) closeConn(c *conn) {
	if !c.closed {
		c.closed = true
		delete(n.conns, c.id)
		n.emit(port.CloseConn{Conn: c.id})
	}
}

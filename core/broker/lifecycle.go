package broker

// The broker's lifecycle with the controller, as in KRaft: it registers
// (a new incarnation id per process, so the controller can tell a restart
// from a retry, and the id of its log directory, so it can tell a restart
// from a lost disk; see directory.go), heartbeats every broker.heartbeat.interval.ms, asks to be
// unfenced once it has replayed the metadata log up to its registration,
// and on a graceful stop asks for a controlled shutdown: the controller
// moves its leaderships away before the process exits.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/weirmq/weir/core/bugs"
)

type registration struct {
	incarnation [16]byte
	// epoch is the broker epoch the controller gave; 0 until registered.
	epoch    int64
	inFlight bool
	nextNs   int64
	fenced   bool
	// stopping: the driver asked the node to stop; stopped: the
	// controlled shutdown finished (or was not needed).
	stopping, stopped bool
	stopDeadlineNs    int64
	// leaseFromNs is when the last heartbeat the controller answered
	// "unfenced" was sent (see leaseValid); math.MinInt64 until one is:
	// a new process holds no lease, whatever its clock reads.
	leaseFromNs int64
}

// leaseValid reports whether this broker may still act as a partition
// leader. The controller fences a broker, and elects other leaders for its
// partitions, only once broker.session.timeout.ms have passed since it last
// received a heartbeat, which is after that heartbeat was sent; a new
// controller starts every session afresh. So a broker that stops leading a
// little before a session timeout has passed since it sent its last
// answered heartbeat has stopped before anyone else can lead in its
// place: a broker cut off from the controller but not from clients never
// serves reads that miss records a new leader acknowledged (claim 2), as
// Kafka's brokers can. The margin covers monotonic clocks running at
// slightly different rates.
//
// A controlled shutdown moves leaderships without waiting for a session to
// expire, from the moment the controller hears of it: a stopping broker,
// which may not hear of the move (cut off, or the controller it asked
// lost its quorum), leads nothing from the moment it starts stopping,
// unlike Kafka's, which serve until they see the move.
func (n *Node) leaseValid() bool {
	if !n.isBroker() || n.cluster.reg.stopping {
		return false
	}
	if bugs.On(bugs.NoLeaderLease) {
		return true
	}
	sessionNs := int64(n.cfg.BrokerSessionTimeoutMs) * 1e6
	return n.now.MonoNs < n.cluster.reg.leaseFromNs+sessionNs-sessionNs/8
}

// brokerRegistrationVersion is the first to carry log directories (v2).
const brokerRegistrationVersion = 2

// controlledShutdownTimeoutNs bounds how long a stop waits for the
// controller to move leadership away before giving up.
const controlledShutdownTimeoutNs = 30e9

// newUUID draws a UUID's 16 bytes from the node's seeded source.
func (n *Node) newUUID() [16]byte {
	var id [16]byte
	a, b := n.rnd.Uint64(), n.rnd.Uint64()
	for i := range 8 {
		id[i], id[8+i] = byte(a>>(8*i)), byte(b>>(8*i))
	}
	return id
}

// brokerLifecycle sends the registration or heartbeat that is due.
func (n *Node) brokerLifecycle() {
	r := &n.cluster.reg
	if r.stopping && !r.stopped && n.now.MonoNs >= r.stopDeadlineNs {
		n.log.Warn("controlled shutdown timed out; stopping anyway")
		r.stopped = true
	}
	if r.inFlight || n.now.MonoNs < r.nextNs || r.stopped || !n.isBroker() {
		return
	}
	if n.storageErr != nil {
		// The log directory is offline: stop heartbeating, so the
		// controller fences this broker and moves its leaderships away
		// (Kafka halts a broker whose only log directory fails).
		return
	}
	interval := int64(n.cfg.BrokerHeartbeatIntervalMs) * 1e6
	if r.fenced || r.epoch == 0 || r.stopping {
		interval = min(interval, 200e6) // converge quickly while changing state
	}
	r.nextNs = n.now.MonoNs + interval
	if r.epoch == 0 {
		n.register()
		return
	}
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch = n.cfg.NodeID, r.epoch
	req.CurrentMetadataOffset = int64(n.cluster.applied)
	req.WantFence = !n.cluster.caughtUp
	req.WantShutdown = r.stopping
	epoch, sentNs := r.epoch, n.now.MonoNs
	r.inFlight = true
	n.callController(req, func(kr kmsg.Response, err error) {
		r.inFlight = false
		if err != nil || r.epoch != epoch {
			return
		}
		resp := kr.(*kmsg.BrokerHeartbeatResponse)
		switch kerr.ErrorForCode(resp.ErrorCode) {
		case nil:
		case kerr.StaleBrokerEpoch:
			n.log.Info("broker epoch is stale; registering again", "epoch", epoch)
			r.epoch, r.nextNs = 0, n.now.MonoNs
			return
		default:
			return
		}
		if r.fenced != resp.IsFenced {
			n.log.Info("broker fencing changed", "fenced", resp.IsFenced, "epoch", epoch)
		}
		r.fenced = resp.IsFenced
		if !r.fenced {
			r.leaseFromNs = max(r.leaseFromNs, sentNs)
		}
		// Being unfenced may be the last thing a booting broker waits for.
		n.releaseHeldIfReady()
		if r.stopping && resp.ShouldShutdown {
			n.log.Info("controlled shutdown complete")
			r.stopped = true
		}
	})
}

func (n *Node) register() {
	r := &n.cluster.reg
	cid := n.cluster.image.ClusterID()
	if cid == "" {
		return // the first controller has not named the cluster yet
	}
	if !n.cluster.bootSynced {
		return // the directory id is not durable yet
	}
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.Version = brokerRegistrationVersion
	req.BrokerID, req.ClusterID, req.IncarnationID = n.cfg.NodeID, cid, r.incarnation
	req.LogDirs = [][16]byte{n.cluster.directory}
	if n.cfg.Rack != "" {
		req.Rack = &n.cfg.Rack
	}
	for _, l := range n.cfg.AdvertisedListeners {
		rl := kmsg.NewBrokerRegistrationRequestListener()
		rl.Name, rl.Host, rl.Port = l.Name, l.Host, uint16(l.Port)
		rl.SecurityProtocol = securityProtocolCode(l.SecurityProtocol)
		req.Listeners = append(req.Listeners, rl)
	}
	r.inFlight = true
	n.callController(req, func(kr kmsg.Response, err error) {
		r.inFlight = false
		if err != nil {
			return
		}
		resp := kr.(*kmsg.BrokerRegistrationResponse)
		if resp.ErrorCode != 0 {
			n.log.Warn("broker registration refused", "err", kerr.ErrorForCode(resp.ErrorCode))
			return
		}
		n.log.Info("registered with the controller", "broker_epoch", resp.BrokerEpoch)
		r.epoch, r.fenced, r.nextNs = resp.BrokerEpoch, true, n.now.MonoNs
	})
}

// securityProtocolCode is Kafka's SecurityProtocol id.
func securityProtocolCode(name string) int16 {
	switch name {
	case "SSL":
		return 1
	case "SASL_PLAINTEXT":
		return 2
	case "SASL_SSL":
		return 3
	}
	return 0
}

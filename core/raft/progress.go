package raft

// progressState is how the leader replicates to one follower.
type progressState uint8

const (
	// probe: the leader does not know where the logs match; it sends one
	// append per heartbeat interval until one is accepted.
	probe progressState = iota
	// replicate: logs match up to Match; appends are pipelined.
	replicate
	// snapshot: the follower needs entries the leader compacted away; one
	// snapshot is in flight.
	snapshot
)

// progress is the leader's view of one follower (or learner).
type progress struct {
	match, next uint64
	state       progressState
	// paused: a probe or snapshot is in flight; send nothing more until a
	// response or the next heartbeat.
	paused bool
	// inflight holds the last index of each pipelined append not yet
	// acknowledged, oldest first.
	inflight []uint64
	// recentActive: heard from since the last check-quorum round.
	recentActive bool
	learner      bool
	// snapshotWaits counts heartbeat answers while a snapshot is out.
	snapshotWaits int
}

const maxInflightMsgs = 64

func (p *progress) becomeProbe() {
	if p.state == snapshot {
		// The snapshot was installed or lost: resume after it at the latest.
		p.next = max(p.match+1, p.next)
	} else {
		p.next = p.match + 1
	}
	p.state, p.paused, p.inflight = probe, false, p.inflight[:0]
}

func (p *progress) becomeReplicate() {
	p.state, p.paused, p.inflight = replicate, false, p.inflight[:0]
	p.next = p.match + 1
}

func (p *progress) becomeSnapshot(index uint64) {
	p.state, p.paused, p.inflight = snapshot, true, p.inflight[:0]
	p.next, p.snapshotWaits = index+1, 0
}

// canSend reports whether another append may go out now.
func (p *progress) canSend() bool {
	switch p.state {
	case replicate:
		return len(p.inflight) < maxInflightMsgs
	default:
		return !p.paused
	}
}

// sent records an append whose last entry is last.
func (p *progress) sent(last uint64, entries int) {
	switch p.state {
	case replicate:
		if entries > 0 {
			p.next = last + 1
			p.inflight = append(p.inflight, last)
		}
	case probe:
		p.paused = true
	}
}

// acked records that the follower's log matches up to index; it reports
// whether anything changed.
func (p *progress) acked(index uint64) bool {
	i := 0
	for i < len(p.inflight) && p.inflight[i] <= index {
		i++
	}
	p.inflight = append(p.inflight[:0], p.inflight[i:]...)
	if index <= p.match {
		return false
	}
	p.match = index
	p.next = max(p.next, index+1)
	return true
}

// rejected handles a rejected append at index with the follower's hint;
// it reports whether the leader should send again.
func (p *progress) rejected(index, hint uint64) bool {
	if p.state == replicate {
		// Only the rejection of the first unacknowledged append counts;
		// later ones are stale answers to a pipeline already reset.
		if index <= p.match {
			return false
		}
		p.becomeProbe()
		p.next = max(p.match+1, min(index, hint+1))
		return true
	}
	if p.next-1 != index {
		return false // a stale rejection
	}
	p.next = max(p.match+1, min(index, hint+1))
	p.paused = false
	return true
}

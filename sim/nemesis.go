package sim

import (
	"github.com/weirmq/weir/sim/proc"
	"github.com/weirmq/weir/sim/sched"
)

// nemesis schedules the process and network faults switched on for this
// seed. Disk faults are drawn by the disk itself, per operation.
func (r *run) nemesis() {
	c := r.cfg
	r.every(c.CrashEvery, func() {
		if !r.node.Running() {
			return
		}
		kind := proc.Kill
		if r.nem.Chance(c.MachineCrash) {
			kind = proc.MachineCrash
		}
		crash := func() {
			if r.phase == phaseChaos && r.node.Running() {
				r.crash(kind)
				r.restartIn(r.nem.Range(c.RestartAfter[0], c.RestartAfter[1]))
			}
		}
		// Half the crashes wait for the middle of a burst of IO, where
		// torn writes and unsynced directory entries are.
		if r.nem.Coin() {
			r.disk.AfterOps(int(r.nem.Range(1, 40)), crash)
			return
		}
		crash()
	})
	r.every(c.PauseEvery, func() {
		if !r.node.Running() || r.node.Paused() {
			return
		}
		r.node.Pause()
		r.loop.After(r.nem.Range(c.PauseFor[0], c.PauseFor[1]), r.node.Resume)
	})
	r.every(c.ResetEvery, func() {
		if conns := r.net.Conns(); len(conns) > 0 {
			r.net.Reset(conns[r.nem.Pick(len(conns))])
		}
	})
	r.every(c.PartitionEvery, func() {
		if name, ok := r.client(); ok {
			r.net.Partition(name, 0, r.loop.Now()+r.nem.Range(c.PartitionFor[0], c.PartitionFor[1]))
		}
	})
	r.every(c.SlowLinkEvery, func() {
		if name, ok := r.client(); ok {
			r.net.Slow(name, 0, r.nem.Range(2, 50), r.loop.Now()+r.nem.Range(sched.Second, 10*sched.Second))
		}
	})
	r.every(c.ClockJumpEvery, func() {
		ms := r.nem.Range(1, 600_000)
		if r.nem.Coin() {
			ms = -ms
		}
		r.node.JumpClock(ms)
	})
}

// every runs fn at random intervals within iv while the chaos phase lasts.
func (r *run) every(iv [2]sched.Time, fn func()) {
	if iv[0] == 0 {
		return
	}
	var tick func()
	tick = func() {
		if r.phase != phaseChaos {
			return
		}
		fn()
		r.loop.After(r.nem.Range(iv[0], iv[1]), tick)
	}
	r.loop.After(r.nem.Range(iv[0], iv[1]), tick)
}

// client picks a client to cut off or slow down.
func (r *run) client() (string, bool) {
	if len(r.hist.Clients) == 0 {
		return "", false
	}
	return r.hist.Clients[r.nem.Pick(len(r.hist.Clients))], true
}

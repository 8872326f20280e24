package fault

import (
	"fmt"
	"strings"
)

// Class is one kind of fault.
type Class int

// The fault classes. Each is switched on or off per seed (swarm testing).
const (
	NetReset     Class = iota // a connection is reset; both sides learn
	NetPartition              // a client is cut off from the node for a while
	NetSlowLink               // a link's latency is multiplied for a while
	NetJitter                 // per-frame latency varies (in-order delivery is kept)

	DiskSlow         // an operation takes far longer than usual
	DiskWriteEIO     // a write fails with EIO (a prefix of it may have landed)
	DiskSyncEIO      // an fsync fails with EIO (unsynced pages may be lost)
	DiskNoSpace      // a write fails with ENOSPC
	DiskBitFlip      // a bit of record data served to a fetch is flipped
	DiskTornWrite    // a machine crash keeps some unsynced sectors and drops others
	DiskLostUnsynced // a machine crash drops unsynced data
	DiskDirRevert    // a machine crash forgets unsynced directory entries
	DiskLoss         // a whole disk is lost: its node comes back with a new, empty one

	ProcMachineCrash // the machine loses power: the page cache is lost
	ProcKill         // the process is killed (kill -9): the page cache survives
	ProcPause        // the process stops taking inputs for a while
	ProcRestart      // an operator restarts the node after a disk error

	ClockSkew  // the node's wall clock is offset from true time
	ClockDrift // the node's wall clock runs fast or slow
	ClockJump  // the node's wall clock steps forward or back

	AdminCreateTopic      // topics are created during the run
	AdminDeleteTopic      // topics are deleted during the run
	AdminCreatePartitions // partitions are added during the run
	AdminReassign         // a data partition's replicas are reassigned (cluster runs)
	AdminCancelReassign   // a partition reassignment is cancelled (cluster runs)
	AdminDeleteGroup      // a consumer group is deleted (acknowledged)
	AdminDeleteOffsets    // a group's committed offsets are deleted (acknowledged)

	NumClasses
)

var names = [NumClasses]string{
	NetReset:              "net.reset",
	NetPartition:          "net.partition",
	NetSlowLink:           "net.slow-link",
	NetJitter:             "net.jitter",
	DiskSlow:              "disk.slow",
	DiskWriteEIO:          "disk.write-eio",
	DiskSyncEIO:           "disk.fsync-eio",
	DiskNoSpace:           "disk.enospc",
	DiskBitFlip:           "disk.bit-flip",
	DiskTornWrite:         "disk.torn-write",
	DiskLostUnsynced:      "disk.lost-unsynced",
	DiskDirRevert:         "disk.dir-revert",
	DiskLoss:              "disk.loss",
	ProcMachineCrash:      "proc.machine-crash",
	ProcKill:              "proc.kill",
	ProcPause:             "proc.pause",
	ProcRestart:           "proc.operator-restart",
	ClockSkew:             "clock.skew",
	ClockDrift:            "clock.drift",
	ClockJump:             "clock.jump",
	AdminCreateTopic:      "admin.create-topic",
	AdminDeleteTopic:      "admin.delete-topic",
	AdminCreatePartitions: "admin.create-partitions",
	AdminReassign:         "admin.reassign",
	AdminCancelReassign:   "admin.cancel-reassign",
	AdminDeleteGroup:      "admin.delete-group",
	AdminDeleteOffsets:    "admin.delete-offsets",
}

func (c Class) String() string {
	if c >= 0 && c < NumClasses {
		return names[c]
	}
	return "fault?"
}

// Counts is how often each class fired.
type Counts [NumClasses]int

// Inc records one firing of c.
func (n *Counts) Inc(c Class) { n[c]++ }

// Add adds other into n.
func (n *Counts) Add(other *Counts) {
	for i := range n {
		n[i] += other[i]
	}
}

// String lists the classes that fired, in class order.
func (n *Counts) String() string {
	var sb strings.Builder
	for c := Class(0); c < NumClasses; c++ {
		if n[c] > 0 {
			if sb.Len() > 0 {
				sb.WriteByte(' ')
			}
			fmt.Fprintf(&sb, "%s=%d", c, n[c])
		}
	}
	return sb.String()
}

// Never lists the classes that never fired.
func (n *Counts) Never() []Class {
	var out []Class
	for c := Class(0); c < NumClasses; c++ {
		if n[c] == 0 {
			out = append(out, c)
		}
	}
	return out
}

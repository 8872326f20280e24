// Package bugs plants known bugs in the core so that the simulator can prove
// it catches them (DESIGN.md section 7: "the simulator proves it has teeth").
//
// Each bug is a named check, `if bugs.On(bugs.X) { ... }`, at the one spot
// where a real mistake of that kind would be made. In a normal build
// (without the weirbugs build tag) On is a function that returns false, so
// the compiler drops every planted branch: production binaries carry none
// of them. Built with -tags weirbugs, the simulator's teeth test switches
// one bug on, runs seeds until a checker fails, and switches it off.
//
// Set is not safe for concurrent use with On: switch bugs only while no run
// is in progress (before starting goroutines that run seeds).
package bugs

// Bug names one planted bug.
type Bug int

// The planted bugs. Each comment says what the bug does and which claim of
// DESIGN.md section 6 should catch it.
const (
	// AckBeforeFsync makes the stable offset the written offset, so a produce
	// is acknowledged (and served) before its fsync: a machine crash loses
	// acknowledged records (claim 1).
	AckBeforeFsync Bug = iota + 1
	// KeepTornTail makes recovery keep a torn tail instead of truncating it:
	// the log believes the segment ends at the file's end and appends after
	// the garbage, which the next recovery cuts off with the acknowledged
	// records behind it (claim 1).
	KeepTornTail
	// FetchUnsynced lets fetches read (and report as high watermark) what
	// is written but not yet fsynced: a consumer sees records a crash then
	// loses (claim 2).
	FetchUnsynced
	// ForgetProducers skips rebuilding idempotent-producer state in
	// recovery: a retry after a restart is appended again (claim 3).
	ForgetProducers
	// IndexOffByOne makes a read start at the batch after the one holding
	// the requested offset when that offset is a batch's last: consumers
	// skip records (claim 2).
	IndexOffByOne
	// RetentionUnsafe lets retention delete the active segment and data
	// that is not yet durable (claims 1 and 2).
	RetentionUnsafe
	// RollSkipsDirSync forgets that rolling a segment creates a file whose
	// directory entry needs a directory fsync: a crash loses the new
	// segment with its acknowledged records (claim 1).
	RollSkipsDirSync
	// RaftSkipsFsync carries out a Raft Ready (sends its votes and
	// acknowledgements, applies what it commits) without the fsync that
	// makes its entries and hard state durable: a machine crash forgets a
	// committed topic with its acknowledged records (claim 1) or a vote
	// already cast (claim 6).
	RaftSkipsFsync
	// TrustCacheAfterFsyncError makes recovery read segments through the
	// page cache, where a failed fsync left pages clean but unwritten
	// ("fsyncgate"): recovery builds on data a power loss then takes away,
	// with acknowledged records after it (claim 1).
	TrustCacheAfterFsyncError
	// CommitWithoutQuorum makes a Raft leader count an entry committed as
	// soon as one voter (itself) holds it: a leader crash then loses, and
	// the next leader overwrites, committed metadata (claim 6).
	CommitWithoutQuorum
	// StaleLeaderAccepted makes a follower take appends from a leader of
	// an older term: a deposed controller rewrites committed metadata
	// (claim 6).
	StaleLeaderAccepted
	// LeaderEpochNotBumped makes the controller move a partition's
	// leadership without raising its leader epoch: two leaders share an
	// epoch (claim 6).
	LeaderEpochNotBumped
	// VoteNotPersisted sends votes (and acts on new terms) without
	// storing the hard state: a restarted node votes again in a term it
	// already voted in, and two controllers win one term (claim 6).
	VoteNotPersisted
	// NoCheckQuorum keeps a Raft leader leading when it no longer hears
	// from a quorum: cut off, it goes on acting as the active controller
	// while the others elect a new one (claim 6).
	NoCheckQuorum
	// AckBeforeReplicas answers an acks=all produce once the leader has
	// the batch durably, without waiting for the ISR: a leader crash then
	// elects a follower without acknowledged records (claim 1).
	AckBeforeReplicas
	// HWIgnoresLaggard advances the high watermark past the ISR member
	// furthest behind: if that member is elected, records below the
	// high watermark are lost (claims 1 and 2).
	HWIgnoresLaggard
	// NoDivergenceCheck makes a leader skip the last-fetched-epoch check,
	// so a follower never learns its log diverged (claims 1 and 2).
	NoDivergenceCheck
	// NoTruncation makes a follower ignore a diverging epoch: its log
	// keeps a tail the leader does not have (claims 1 and 2).
	NoTruncation
	// FollowerReportsUnsynced lets a follower fetch (and so report as
	// replicated) before its appends are fsynced: a machine crash of the
	// ISR loses acknowledged records (claim 1).
	FollowerReportsUnsynced
	// ElectOutsideISR lets the controller elect a leader that is not in
	// the ISR: it may lack acknowledged records (claim 1).
	ElectOutsideISR
	// StaleGenerationCommit lets a member commit offsets with a generation
	// older than the group's: a consumer that lost its partitions in a
	// rebalance overwrites the new owner's progress (claim 5).
	StaleGenerationCommit
	// NoGroupReload makes a new coordinator start without replaying its
	// partition of __consumer_offsets: committed offsets vanish and
	// generations start over, handing partitions out twice (claim 5).
	NoGroupReload
	// AssignmentOverlap keeps the assignment of a member the leader left
	// out of the new generation, instead of an empty one: two members own
	// one partition in the same generation (claim 5).
	AssignmentOverlap
	// HandoutBeforeRelease makes a KIP-848 coordinator forget that a
	// member still holds the partitions it was asked to revoke: they are
	// handed to their new member before the old one released them
	// (claim 5).
	HandoutBeforeRelease
	// DiskLossNotDetected makes the controller ignore a broker registering
	// with a new log directory id: a broker whose disk was wiped stays an
	// eligible leader and, elected, leads with an empty log (claim 1).
	DiskLossNotDetected
	// HWIgnoresMinISR lets a leader advance its high watermark while its
	// ISR is smaller than min.insync.replicas: a replica that left the ISR
	// then lacks committed records, yet is elected from the ELR (claim 1).
	HWIgnoresMinISR
	// NoLeaderLease lets a broker go on serving as a partition leader
	// after its lease from the controller ran out: cut off from the
	// controller but not from clients, it answers fetches and offset
	// lookups that miss records a new leader has acknowledged (claim 2).
	NoLeaderLease
	// TombstoneNotReplayed makes the replay of __consumer_offsets skip
	// the tombstones of offsets and groups: after a coordinator moves, a
	// deleted group comes back with the offsets it had (claim 5).
	TombstoneNotReplayed

	numBugs
)

var names = [...]string{
	AckBeforeFsync:            "AckBeforeFsync",
	KeepTornTail:              "KeepTornTail",
	FetchUnsynced:             "FetchUnsynced",
	ForgetProducers:           "ForgetProducers",
	IndexOffByOne:             "IndexOffByOne",
	RetentionUnsafe:           "RetentionUnsafe",
	RollSkipsDirSync:          "RollSkipsDirSync",
	RaftSkipsFsync:            "RaftSkipsFsync",
	TrustCacheAfterFsyncError: "TrustCacheAfterFsyncError",
	CommitWithoutQuorum:       "CommitWithoutQuorum",
	StaleLeaderAccepted:       "StaleLeaderAccepted",
	LeaderEpochNotBumped:      "LeaderEpochNotBumped",
	VoteNotPersisted:          "VoteNotPersisted",
	NoCheckQuorum:             "NoCheckQuorum",
	AckBeforeReplicas:         "AckBeforeReplicas",
	HWIgnoresLaggard:          "HWIgnoresLaggard",
	NoDivergenceCheck:         "NoDivergenceCheck",
	NoTruncation:              "NoTruncation",
	FollowerReportsUnsynced:   "FollowerReportsUnsynced",
	ElectOutsideISR:           "ElectOutsideISR",
	StaleGenerationCommit:     "StaleGenerationCommit",
	NoGroupReload:             "NoGroupReload",
	AssignmentOverlap:         "AssignmentOverlap",
	HandoutBeforeRelease:      "HandoutBeforeRelease",
	DiskLossNotDetected:       "DiskLossNotDetected",
	HWIgnoresMinISR:           "HWIgnoresMinISR",
	NoLeaderLease:             "NoLeaderLease",
	TombstoneNotReplayed:      "TombstoneNotReplayed",
}

func (b Bug) String() string {
	if b > 0 && b < numBugs {
		return names[b]
	}
	return "Bug?"
}

// All lists every planted bug, in declaration order.
func All() []Bug {
	all := make([]Bug, 0, numBugs-1)
	for b := Bug(1); b < numBugs; b++ {
		all = append(all, b)
	}
	return all
}

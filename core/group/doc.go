// Package group is the group coordinator of the classic consumer group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) and the store of
// committed offsets (OffsetCommit, OffsetFetch), as a pure state machine.
// It follows Apache Kafka's GroupCoordinator: the same states (Empty,
// PreparingRebalance, CompletingRebalance, Stable, Dead), generations,
// KIP-394 member ids, KIP-345 static membership, the join barrier with
// group.initial.rebalance.delay.ms, the pending-sync timeout, session
// timeouts, group.max.size and KIP-211 offset retention.
//
// Contract:
//   - One Coordinator holds every group of a node. It is driven by calls that
//     take kmsg requests and the monotonic time in nanoseconds; it reads no
//     clock, draws randomness only from the Rand it was given (member ids),
//     performs no IO and never lets map order reach an output, so the same
//     calls give the same answers, byte for byte.
//   - JoinGroup, SyncGroup and OffsetCommit answer through a reply callback,
//     because Kafka holds JoinGroup and SyncGroup until the group moves on.
//     A callback may run before the call returns or during a later call
//     (another member's request, or Expire). Every reply callback is called
//     exactly once, whatever happens to the group: a held request is never
//     dropped, because the broker keeps a connection's responses in request
//     order and one missing answer would stall the connection forever.
//     Callbacks must not call back into the Coordinator.
//   - Timers: NextDeadline says when the coordinator next has work (a join
//     barrier, a session, a pending member, a sync timeout, the retention
//     sweep); Expire(now) does it. Every call first expires what is due, so
//     a request that arrives after a deadline sees its effect, and finishes
//     by doing what its own changes made due at once (such as a zero
//     group.initial.rebalance.delay.ms).
//   - Client input never panics the coordinator; internal invariants are
//     asserted.
//
// Durability: a coordinator serves the groups of the __consumer_offsets
// partitions its node leads (Host.Owns says which). It writes Kafka's
// records there through Host.Append: an offset commit record per committed
// partition, and a group metadata record (generation, protocol, leader,
// members with their assignments) when a generation's assignment is
// handed out, when a group becomes empty and when a static member is
// replaced; tombstones when offsets expire or are deleted and when a group
// goes. A commit is answered, and becomes visible to OffsetFetch, only once
// its write is committed (replicated like acks=all); members get their
// assignment only once the generation is, so a new coordinator that
// replays the partition (BeginLoad, Replay, Loaded) never hands out a
// generation number a member already holds with a different assignment,
// and never forgets an acknowledged commit. Membership changes not yet
// stored (a member that joined or left since the last stored generation)
// may be undone by a failover, as in Kafka: the members concerned rejoin.
package group

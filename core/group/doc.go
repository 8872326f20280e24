// Package group is the group coordinator, as a pure state machine: the
// classic consumer group protocol (JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup), the KIP-848 consumer group protocol (ConsumerGroupHeartbeat,
// ConsumerGroupDescribe), and the store of committed offsets (OffsetCommit,
// OffsetFetch) both share.
//
// Classic groups follow Apache Kafka's GroupCoordinator: the same states
// (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead),
// generations, KIP-394 member ids, KIP-345 static membership, the join
// barrier with group.initial.rebalance.delay.ms, the pending-sync timeout,
// session timeouts, group.max.size and KIP-211 offset retention.
//
// Consumer groups (type "consumer") follow Kafka 4's GroupMetadataManager:
// a group epoch that moves when members or subscriptions or subscribed
// topics change, a target assignment computed by a server-side assignor
// (uniform or range), and each member reconciled towards it one heartbeat
// at a time, revoking before anything is reassigned (CurrentAssignmentBuilder).
// A group id is of one type at a time: an empty group changes type when a
// member of the other protocol joins it, keeping its offsets.
//
// Contract:
//   - One Coordinator holds every group of a node. It is driven by calls that
//     take kmsg requests and the monotonic time in nanoseconds; it reads no
//     clock, draws randomness only from the Rand it was given (member ids),
//     performs no IO and never lets map order reach an output, so the same
//     calls give the same answers, byte for byte.
//   - JoinGroup, SyncGroup, OffsetCommit and ConsumerGroupHeartbeat answer
//     through a reply callback, because Kafka holds JoinGroup and SyncGroup
//     until the group moves on, and answers commits and heartbeats once
//     their records are written. A callback may run before the call
//     returns or during a later call (another member's request, Expire, or
//     the completion of a write). Every reply callback is called exactly
//     once, whatever happens to the group: a held request is never
//     dropped, because the broker keeps a connection's responses in request
//     order and one missing answer would stall the connection forever.
//     Callbacks must not call back into the Coordinator.
//   - Durability: offsets, classic generations and every consumer group
//     change are written to __consumer_offsets through the Host, in Kafka's
//     records, and an answer that reveals them is sent only once they are
//     committed; BeginLoad, Replay and Loaded rebuild the groups of a
//     partition from its records after a failover.
//   - Timers: NextDeadline says when the coordinator next has work (a join
//     barrier, a session, a pending member, a sync timeout, a revocation
//     timeout, the retention sweep); Expire(now) does it. Every call first
//     expires what is due, so a request that arrives after a deadline sees
//     its effect, and finishes by doing what its own changes made due at
//     once (such as a zero group.initial.rebalance.delay.ms).
//   - Client input never panics the coordinator; internal invariants are
//     asserted.
package group

// Package raft is the consensus algorithm under Weir's metadata quorum, as a
// pure state machine in the style of etcd-io/raft's RawNode.
//
// The host feeds it inputs — Tick, Step (a message from a peer), Propose —
// and collects a Ready listing what must happen next: a HardState, log
// entries and a snapshot to persist, messages to send, committed entries to
// apply. The package itself never touches a disk, a socket or a clock; the
// randomised election timeout comes from the source the host hands in.
//
// One rule carries the safety of the whole algorithm: the host persists
// (and fsyncs) everything in a Ready before it sends that Ready's messages,
// then calls Advance. A vote is therefore never granted, nor an append
// acknowledged, on state a crash could forget. The leader counts its own
// copy of an entry toward commitment only after Advance says it is durable.
//
// What it implements, following the Raft paper (Ongaro's thesis) and etcd:
//   - pre-vote (thesis §9.6): a node that was cut off does not disturb the
//     cluster with a higher term when it returns;
//   - check-quorum: a leader that has not heard from a quorum within an
//     election timeout steps down, and a node that has heard from a live
//     leader within one ignores vote requests (leader leases), so an
//     isolated old leader cannot keep acting as one;
//   - log replication with probing and pipelining, fast backtracking by
//     term on rejection, and commitment by counting only entries of the
//     leader's own term (§5.4.2);
//   - snapshots: the host compacts the log up to an applied index, and the
//     leader sends the snapshot to a follower that is too far behind;
//   - learners: nodes outside the voter set (Weir's broker-only nodes)
//     receive the log without voting. A learner announces itself to the
//     voters until a leader adopts it. A learner may lose its disk (it
//     counts for no quorum): the leader then replicates to it afresh.
//
// Membership is static (the voter set comes from configuration), as in a
// KRaft quorum defined by controller.quorum.voters.
package raft

// Package sim is Weir's deterministic simulator: one goroutine, one
// priority queue of events ordered by (virtual time, sequence number), and
// one seed from which every choice is drawn, through named streams per
// component (package rng), so that a change in one place does not reshuffle
// the rest. A run uses no goroutines, no wall clock and no map order; the
// same seed yields the same trace, which is hashed to prove it
// (TestDeterminism, and the swarm re-runs a sample of its seeds).
//
// A run wires the real core (core/broker, booted and recovered through
// broker.Boot) to simulated ports: a clock per node process (package proc),
// a disk (package disk) and a network (package network), and drives it
// with simulated clients that speak the real Kafka protocol through the
// real codec (package workload). Each seed draws its configuration (swarm
// testing): which fault classes are on and how often they fire, topic and
// segment sizes (small, so segments roll; retention sometimes, so they are
// deleted), page-cache mode sometimes, and the workload mix (consumer
// groups in some seeds). See Config.
//
// Every run has three phases. Chaos: workloads run and faults fire.
// Heal: faults stop, a crashed node is restarted, and within a stated
// bound (30 simulated seconds) every partition must take a write and serve
// it back (claim 7), and idempotent producers must settle every batch.
// Final: every client is stopped and a fresh client reads every partition
// back from its log start. Then the checkers of package check run over the
// history, each tied to a claim of DESIGN.md section 6; invariants are also
// checked as each response arrives, stopping the run at the first
// violation so the trace tail shows its cause.
//
// Replay a seed with `go test ./sim -run Sim -seed N` (-v prints the whole
// trace, the broker's own log included, in virtual time); run a swarm with
// `go run ./cmd/weir-sim -seeds 1-10000 -parallel 2`. A failure prints the
// seed, the drawn configuration, the last 200 trace lines, the build, the
// replay command, and the path of Porcupine's visualization of the failing
// partition. Every seed that ever failed is in testdata/sim/seeds.txt and
// replayed by `go test ./...`.
//
// Cluster runs (Options.Cluster; `go test ./sim -run Sim -cluster -seed N`)
// simulate 3 or 5 nodes with a Raft metadata quorum, some with broker-only
// learners or controller-only voters: peer messages travel the simulated
// network, crashes and cut-offs aim at the active controller half the
// time (else at any node), a metadata workload creates, deletes and
// grows topics through random nodes, and in half the seeds an operator
// reassigns the data topics' partitions (see Operator actions). The data
// workloads run over every broker: their topics get a replication factor and min.insync.replicas
// drawn per seed (capped by MaxReplicationFactor) and placed by the
// controller, and clients route each request
// to its partition's leader from the metadata, as Kafka clients do;
// consumer groups still coordinate through one broker. Their
// checkers (cluster.go, check/metadata.go) keep claim 6: one active
// controller per term and none without a quorum's lease, committed
// metadata never rewritten or lost, one leader per partition per leader
// epoch, state durable before any message that depends on it, one vote per
// term; and claim 7: after the heal a metadata operation succeeds, every
// node's image converges with every acknowledged operation in it, and no
// partition reassignment stays under way. Cluster seeds that ever failed
// are in testdata/sim/cluster-seeds.txt.
//
// The simulator proves it has teeth: core/bugs plants known bugs, compiled
// out of normal builds, and `go test -tags weirbugs ./sim -run Teeth`
// requires each to be caught within 300 seeds.
//
// # Fault atlas
//
// Every fault stays inside the fault model the claims are made for, so a
// failing seed is a bug in Weir (or in the simulator), never bad luck. What
// each class does, and why it is fair:
//
// Network (package network):
//   - Latency, jitter and bandwidth per link; frames of one connection
//     arrive in order (TCP). Jitter reorders nothing.
//   - Connection reset: both sides learn, each after a delay; frames in
//     flight are lost. A client treats what it had in flight as of unknown
//     outcome, as real clients must.
//   - Partition: a client is cut off from the node for a while. Frames wait
//     and arrive after it heals (TCP retransmits), unless the client gives
//     up first: clients time requests out and close the connection
//     abortively, after which nothing of theirs can still arrive.
//   - Slow link: a link's latency is multiplied for a while.
//   - Between nodes (cluster runs): a node cut off from some or all of the
//     others; messages on one link arrive in order, and one whose link is
//     down when sent or due is lost, as the peer transport drops what it
//     cannot deliver.
//   - Not modelled: corrupted or duplicated frames (TCP checksums and
//     sequence numbers), one-way partitions.
//
// Disk (package disk), page cache included:
//   - Latency and slow operations, per operation; operations of one lane
//     run one at a time, in order, as the port requires.
//   - EIO on write (a prefix of whole sectors may have reached the page
//     cache), EIO on fsync (and, as Linux may, part of the file's unsynced
//     pages are dropped), ENOSPC on write. The node must take its log
//     directory offline; an operator restarts it after a delay, with the
//     disk fixed (disk errors stay off for a grace period), so liveness can
//     return. Errors after an injected one, until the restart, are taken as
//     its consequences.
//   - Machine crash: all fsynced data and all directory entries made durable
//     by a directory fsync survive; of the unsynced data a seeded subset of
//     512-byte sectors survives (any subset: torn writes, holes); each
//     directory keeps all or none of its unsynced entry changes (creates by
//     first write, mkdir, rename, remove), so a rename is atomic. Half the
//     crashes are timed to land in the middle of a burst of IO.
//   - Bit flips in record data read for a fetch response, only inside the
//     bytes a batch's CRC covers: the client's CRC check must catch them
//     and retry. Never in data read by recovery: one node has one copy, and
//     surviving corruption of the only copy of synced data is outside claim
//     1's fault model for a single node (replication will bring it in).
//     Never in a batch's base offset, length, leader epoch or magic, which
//     the CRC does not cover and no reader could detect.
//   - Whole-disk loss (cluster runs): claim 1 tolerates losing M-1 disks
//     when every topic has min.insync.replicas M, so in three in four of
//     the seeds whose topics all have M >= 2 (the broker default too, for
//     __consumer_offsets) and that have broker-only nodes, up to M-1 times
//     a broker-only node's machine crashes and it restarts on a new, empty
//     disk, half the time the one leading most partitions
//     (Config.DiskLossEvery; the configuration prints "disk loss: ...").
//     Never a voter's: its log and votes are the quorum's safety. With one
//     node, never.
//   - Not modelled: fsync that lies, misdirected writes.
//
// Process (package proc):
//   - kill -9 at any event: the page cache survives. Machine crash: it does
//     not (see Disk). Every connection drops; the node restarts after a
//     delay through broker.Boot, recovering from the disk's BootFS.
//   - Pause: the process takes no inputs for a while; they queue (socket
//     buffers, IO completions) and are handled on resume.
//   - Page-cache mode (flush.messages > 1, Kafka's default behaviour):
//     acknowledged data may rest in the page cache only, so durability is
//     claimed across process crashes, and machine crashes are switched
//     off for the seed; a failed fsync then drops no pages either.
//
// Clock (package proc): each node's wall clock is skewed, drifts (up to
// 10%), and jumps forward or back; it only stamps records and drives
// time-based retention. The monotonic clock never goes back within a
// process; a new process starts it anywhere.
//
// Operator actions (package workload): topics created and deleted (a name
// comes back as a new topic with a new id; records of a deleted topic are
// exempt from durability once its delete is acknowledged), partitions
// added, nodes restarted gracefully (cluster runs), and partition
// reassignment (KIP-455) of the data topics in half the cluster seeds
// (Config.Workload.ReassignEvery; the configuration prints "operator:
// partition reassignment on, every ..." or "off"). Every so often
// AlterPartitionReassignments, through a random broker, moves a random
// data partition to a random set of brokers: usually as many as it has,
// sometimes one more or one fewer, never fewer than min.insync.replicas;
// sometimes a reassignment under way is cancelled, and sometimes
// ListPartitionReassignments is asked and its answer checked to be well
// formed. Answers are judged: errors the controller may give under faults
// (NOT_CONTROLLER, REQUEST_TIMED_OUT, KAFKA_STORAGE_ERROR from the
// forwarding broker, INVALID_REPLICA_ASSIGNMENT, NO_REASSIGNMENT_IN_PROGRESS
// for a cancel, INVALID_REPLICATION_FACTOR where v1 forbade a change,
// UNKNOWN_TOPIC_OR_PARTITION for a churn topic) are fine; any other fails
// the run as a protocol violation. No acknowledged record may be lost or
// moved while replicas move: the durability and Porcupine checkers hold
// as ever (those runs use acks=0 or acks=all, since acks=1 is not durable
// on a partition with several replicas). Reassignments stop with the
// chaos phase, and every one still under way must complete within the
// liveness bound after the heal, its new replicas caught up and in the
// ISR.
//
// Each class counts how often it fired (package fault); a swarm prints the
// classes that never fired, so a fault that silently stopped firing is
// noticed.
package sim

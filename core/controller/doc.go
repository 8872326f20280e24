// Package controller is Weir's active controller: the node that leads the
// Raft metadata quorum decides every change to the cluster's metadata, as
// the KRaft controller does in Apache Kafka.
//
// It handles the controller's requests (broker registration and
// heartbeats, CreateTopics, DeleteTopics, CreatePartitions, ElectLeaders,
// AllocateProducerIds, AlterPartition, AlterPartitionReassignments,
// ListPartitionReassignments), validates each against its view of
// the metadata, and turns it into a batch of metadata records that it
// proposes to Raft. A reply leaves only once its batch is committed, so
// nothing acknowledged can be lost; a controller that loses leadership
// fails what it had not committed, and its successor starts from the
// committed image.
//
// The controller's view is the committed image plus the batches it has
// proposed and not yet seen committed: two requests in flight are
// validated against each other, as Kafka's controller does with its
// in-memory timeline. Epochs fence everything it decides: a broker epoch is
// the log index of the broker's registration, every leader change raises
// the partition's leader epoch, and every partition change its partition
// epoch.
//
// Broker liveness is in memory, as in KRaft: a broker that has not sent a
// heartbeat within broker.session.timeout.ms is fenced (it loses its
// leaderships and leaves every ISR, even as the last member). A new
// controller gives every broker a fresh session rather than fencing on
// stale information.
//
// The ISR is Kafka's: a new partition's is every usable replica, its
// leader shrinks and expands it with AlterPartition, and leaders are
// elected from it. Beside it each partition keeps its eligible leader
// replicas (the ELR, KIP-966; see eligibleLeaders): the members that left
// an ISR smaller than min.insync.replicas, while leaders hold their high
// watermark, so they have every committed record and are elected when no
// ISR member can lead. Only an explicit unclean ElectLeaders, or a topic
// with unclean.leader.election.enable whose ISR and ELR have no member
// able to lead, gives the leadership to another replica, and that is
// logged.
//
// A broker names its log directory when it registers; one that comes back
// with another directory lost its disk, and leaves every ISR and ELR in
// the batch that registers it (see register).
//
// Reassignments are Kafka's (KIP-455, see reassign.go): the new replicas
// join the partition as replicas being added, enter the ISR like any
// follower, and the change that brings the last of them in drops the
// replicas being removed, moving the leadership if its holder is one.
package controller

// Package port is the contract between Weir's deterministic core and the
// drivers that run it: the production driver (netshim, diskshim, cmd/weir)
// and the simulator (sim).
//
// The model is etcd raft's RawNode. A driver hands the core one Input at a
// time together with the current Time; the core changes its state and lists
// the Effects it wants; the driver carries those out through its ports (disk,
// network, timers) and feeds each completion back as a new Input. Nothing
// happens inside a core call: the core never blocks, never performs IO, and
// reads the time only from the value it is handed.
//
// Ordering rules the drivers must keep, because the core's correctness
// depends on them:
//   - Disk operations that share a Lane run one at a time, in the order they
//     were emitted; a Sync covers every Write emitted before it on its lane,
//     and a Read sees every Write emitted before it on its lane.
//   - Sends on one connection leave in the order they were emitted.
//   - A file named by a Send's Chunk must stay readable until the send is
//     done, even if a later effect removes it (production keeps the open
//     descriptor; the simulator reads at send time).
//
// Boot is the one exception to "no IO through the core": before a node
// starts, recovery reads its log directories through the read-only BootFS.
// It runs before the first Input, through an interface the simulator
// implements deterministically, so replay is unaffected. At run time the
// core reads files like any other disk operation: it emits an OpRead and
// gets the bytes back in its DiskDone.
package port

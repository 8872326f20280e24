// Package proc is the simulated process of one node: it boots a
// core/broker.Node from its simulated disk, feeds it inputs (requests
// decoded with the real codec, connection events, disk completions,
// wake-ups) with the node's own view of time, and carries out the effects
// its Ready returns through the simulated disk and network — the
// simulator's counterpart of netshim's loop.
//
// It also models what can happen to a process: a crash (kill -9, or the
// whole machine losing power), a restart through broker.Boot, a pause (no
// inputs are taken; they queue, as in a stopped process's socket buffers),
// and clock skew, drift and jumps of the wall clock. The monotonic clock is
// virtual time from a per-process origin: it never goes back within a
// process, and a new process may start it anywhere.
//
// Inputs are batched as the production loop batches them: Ready runs once
// after every input that arrived within a short, drawn window, so one sync
// round (group commit) can cover several requests.
package proc

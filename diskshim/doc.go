// Package diskshim is the production disk driver: it carries out the
// port.DiskOp effects a node emits against a real data directory and
// reports each completion as a port.DiskDone.
//
// Contract (see package port):
//   - Ops of one lane run one at a time, in submission order. A fixed pool
//     of worker goroutines serves the lanes: a worker takes the lane that
//     has waited longest and runs everything queued on it, then moves on.
//     So busy lanes run in parallel up to the pool's size (no two lanes
//     share a worker while another worker idles, as they would if lanes
//     were hashed onto workers), without a goroutine per op.
//   - done is called once per op, on the worker goroutine, never from inside
//     Submit; completions of one lane arrive in submission order.
//   - Errors are the OS errors, returned in DiskDone.Err; nothing panics on
//     an IO failure. The core decides what a failed write or fsync means
//     (for Weir: the log directory is taken offline).
//   - OpRead preads Len bytes at Pos through the registry's descriptor (so
//     it sees the lane's earlier writes) and returns them in DiskDone.Data.
//     Fewer than Len bytes (the range runs past the file's end) is an
//     error wrapping io.ErrUnexpectedEOF, with no Data.
//
// Group commit: a worker takes a lane's whole queue at once, so a run of adjacent
// OpSync for one path (nothing can have been written to that path between
// them) is completed by a single fdatasync, each op still getting its own
// DiskDone. No other kind of op is coalesced: any other op, a read
// included, ends the run.
//
// Files stay open: a registry keeps one descriptor per path, so appends are
// plain pwrites and fetches can sendfile from the same descriptor. Entries
// are reference counted. Acquire hands the network side a counted handle;
// a Remove, RemoveAll or Rename only drops the registry's reference, so a
// handle acquired before it keeps reading the old file (unlinked files live
// on while a descriptor is open). That is how the port's rule "a file named
// by a Send stays readable until the send is done" is kept.
package diskshim

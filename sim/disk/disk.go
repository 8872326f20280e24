package disk

import (
	"encoding/binary"
	"fmt"
	"io"
	"syscall"

	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/sim/fault"
	"github.com/weirmq/weir/sim/rng"
	"github.com/weirmq/weir/sim/sched"
	"github.com/weirmq/weir/sim/trace"
)

// Config is a disk's latency and fault rates, drawn per seed.
type Config struct {
	// MinLatency and MaxLatency bound an ordinary operation's duration.
	MinLatency, MaxLatency sched.Time
	// Slow is the chance an operation takes up to SlowLatency instead.
	Slow        rng.Ratio
	SlowLatency sched.Time

	WriteEIO rng.Ratio // per write
	SyncEIO  rng.Ratio // per fsync (file or directory)
	NoSpace  rng.Ratio // per write
	BitFlip  rng.Ratio // per file range read for a response or by an OpRead

	// KeepSector is the chance that an unsynced sector survives a machine
	// crash; KeepDirOps the chance that a directory keeps its unsynced
	// entry changes.
	KeepSector rng.Ratio
	KeepDirOps rng.Ratio

	// DropOnSyncError: a failed fsync also loses part of the file's
	// unsynced sectors from the page cache (Linux may drop pages whose
	// writeback failed). Off in page-cache mode, whose acknowledgements
	// rest on the page cache alone.
	DropOnSyncError bool

	// Unexpected is told about an operation that failed, or a read that
	// went wrong, without an injected fault: a bug in the node.
	Unexpected func(msg string)
}

// Disk is one node's simulated disk.
type Disk struct {
	loop   *sched.Loop
	rnd    *rng.Rand
	cfg    Config
	counts *fault.Counts
	tr     *trace.Trace

	// Faults switches injection of errors, slowness and bit flips.
	Faults bool

	root  *inode
	lanes map[string]*lane
	// epoch changes at every crash; completions of an older epoch are void.
	epoch uint64
	// tainted: a fault was injected since the process started, so later
	// failures may be its consequences (a sync of a file whose write
	// failed), not bugs.
	tainted bool
	// hook runs when hookIn more operations have completed (see AfterOps).
	hook   func()
	hookIn int
}

// AfterOps runs fn right after the n-th next operation completes, before
// the node hears of it: a crash timed to land in the middle of IO, where
// unsynced data and unsynced directory entries are.
func (d *Disk) AfterOps(n int, fn func()) {
	d.hook, d.hookIn = fn, n
}

type lane struct {
	queue []pending
	busy  bool
}

type pending struct {
	op   port.DiskOp
	done func(data []byte, err error)
}

// New returns an empty disk.
func New(loop *sched.Loop, rnd *rng.Rand, cfg Config, counts *fault.Counts, tr *trace.Trace) *Disk {
	return &Disk{loop: loop, rnd: rnd, cfg: cfg, counts: counts, tr: tr, root: newDir(), lanes: map[string]*lane{}}
}

// Injected errors wrap the errno a real disk would give.
var (
	ErrIO      = fmt.Errorf("simulated disk fault: %w", syscall.EIO)
	ErrNoSpace = fmt.Errorf("simulated disk fault: %w", syscall.ENOSPC)
)

// BootFS is the read-only view recovery reads through.
func (d *Disk) BootFS() port.BootFS { return bootFS{d} }

// Submit queues op on its lane; done is called when it completes, with
// what an OpRead read (nil for other ops and on failure) and the error the
// op failed with. After a crash, done is never called for ops submitted
// before it.
func (d *Disk) Submit(op port.DiskOp, done func(data []byte, err error)) {
	l := d.lanes[op.Lane]
	if l == nil {
		l = &lane{}
		d.lanes[op.Lane] = l
	}
	l.queue = append(l.queue, pending{op, done})
	if !l.busy {
		d.start(l)
	}
}

func (d *Disk) start(l *lane) {
	l.busy = true
	p := l.queue[0]
	lat := d.rnd.Range(d.cfg.MinLatency, d.cfg.MaxLatency)
	if d.Faults && d.rnd.Chance(d.cfg.Slow) {
		lat = d.rnd.Range(d.cfg.MaxLatency, d.cfg.SlowLatency)
		d.counts.Inc(fault.DiskSlow)
	}
	epoch := d.epoch
	d.loop.After(lat, func() {
		if d.epoch != epoch {
			return
		}
		l.queue = l.queue[1:]
		l.busy = false
		data, err := d.exec(p.op)
		if len(l.queue) > 0 {
			d.start(l)
		}
		if d.hook != nil {
			if d.hookIn--; d.hookIn <= 0 {
				fn := d.hook
				d.hook = nil
				fn()
				if d.epoch != epoch {
					return
				}
			}
		}
		p.done(data, err)
	})
}

// exec applies a completed operation, or fails it. data is what an OpRead
// read.
func (d *Disk) exec(op port.DiskOp) (data []byte, err error) {
	if err := d.inject(op); err != nil {
		d.tr.Addf("disk", "%s %s failed: %v", op.Kind, op.Path, err)
		d.tainted = true
		return nil, err
	}
	switch op.Kind {
	case port.OpMkdir:
		err = d.mkdirAll(op.Path)
	case port.OpWrite:
		var f *inode
		if f, err = d.file(op.Path, true); err == nil {
			f.write(op.Pos, op.Data)
		}
	case port.OpSync:
		var f *inode
		if f, err = d.file(op.Path, false); err == nil {
			f.sync()
		}
	case port.OpSyncDir:
		var dir *inode
		if dir, err = d.lookup(op.Path); err == nil {
			if !dir.dir {
				err = fmt.Errorf("syncdir %s: %w", op.Path, errNotDir)
			} else {
				dir.syncDir()
			}
		}
	case port.OpTruncate:
		var f *inode
		if f, err = d.file(op.Path, false); err == nil {
			f.truncate(op.Pos)
		}
	case port.OpRename:
		err = d.rename(op.Path, op.To)
	case port.OpRemove:
		err = d.remove(op.Path, false)
	case port.OpRemoveAll:
		err = d.remove(op.Path, true)
	case port.OpRead:
		data, err = d.read(op)
	default:
		err = fmt.Errorf("unknown op kind %d", op.Kind)
	}
	if err != nil {
		err = fmt.Errorf("%s %s: %w", op.Kind, op.Path, err)
		if !d.tainted {
			d.cfg.Unexpected(fmt.Sprintf("disk op failed without an injected fault: %v", err))
		}
	}
	return data, err
}

// read carries out an OpRead from the page cache (the file's current
// content, as ReadForSend reads it). The core reads only ranges it knows
// exist, so a missing file or a range past the end fails, and exec reports
// it as unexpected. A bit may be flipped in the copy handed back, as in
// ReadForSend: the reader checks CRCs, and the file itself is unharmed, so
// reading again gives the right bytes.
func (d *Disk) read(op port.DiskOp) ([]byte, error) {
	f, err := d.file(op.Path, false)
	if err != nil {
		return nil, err
	}
	if op.Pos < 0 || op.Len < 0 || op.Pos+op.Len > int64(len(f.cur)) {
		return nil, fmt.Errorf("[%d, %d) past its end %d: %w", op.Pos, op.Pos+op.Len, len(f.cur), io.ErrUnexpectedEOF)
	}
	out := make([]byte, op.Len)
	copy(out, f.cur[op.Pos:])
	if d.Faults && d.rnd.Chance(d.cfg.BitFlip) && flipCovered(out, d.rnd) {
		d.counts.Inc(fault.DiskBitFlip)
		d.tr.Addf("disk", "read %s [%d, %d): a bit flipped", op.Path, op.Pos, op.Pos+op.Len)
	}
	return out, nil
}

// inject decides whether op fails, and applies what a failing op leaves
// behind.
func (d *Disk) inject(op port.DiskOp) error {
	if !d.Faults {
		return nil
	}
	switch op.Kind {
	case port.OpWrite:
		if d.rnd.Chance(d.cfg.NoSpace) {
			d.counts.Inc(fault.DiskNoSpace)
			d.file(op.Path, true) // open(O_CREAT) succeeds, the write does not
			return ErrNoSpace
		}
		if d.rnd.Chance(d.cfg.WriteEIO) {
			d.counts.Inc(fault.DiskWriteEIO)
			// A prefix of whole sectors may have reached the page cache.
			if f, err := d.file(op.Path, true); err == nil && len(op.Data) > 0 {
				n := d.rnd.Range(0, int64(len(op.Data)))
				n -= (op.Pos + n) % sectorSize
				if n > 0 {
					f.write(op.Pos, op.Data[:n])
				}
			}
			return ErrIO
		}
	case port.OpSync, port.OpSyncDir:
		if d.rnd.Chance(d.cfg.SyncEIO) {
			d.counts.Inc(fault.DiskSyncEIO)
			if f, err := d.file(op.Path, false); err == nil && op.Kind == port.OpSync {
				if d.cfg.DropOnSyncError {
					d.dropUnsynced(f)
				}
				f.failWriteback()
			}
			return ErrIO
		}
	}
	return nil
}

// ReadForSend reads a file range for a fetch response at the moment the
// response is sent. It reports whether a bit was flipped (a fault the
// client's CRC check must catch).
func (d *Disk) ReadForSend(path string, pos, n int64) ([]byte, bool) {
	out := make([]byte, n)
	f, err := d.lookup(path)
	if err != nil || f.dir {
		d.cfg.Unexpected(fmt.Sprintf("a response names %s, which does not exist", path))
		return out, false
	}
	if pos+n > int64(len(f.cur)) {
		d.cfg.Unexpected(fmt.Sprintf("a response names %s [%d, %d) past its end %d", path, pos, pos+n, len(f.cur)))
	}
	if pos < int64(len(f.cur)) {
		copy(out, f.cur[pos:])
	}
	if !d.Faults || !d.rnd.Chance(d.cfg.BitFlip) {
		return out, false
	}
	if !flipCovered(out, d.rnd) {
		return out, false
	}
	d.counts.Inc(fault.DiskBitFlip)
	return out, true
}

// flipCovered flips one bit of one batch in buf (whole batches), inside the
// bytes the batch's CRC covers (from the CRC field on). Base offset, length,
// leader epoch and magic are outside the CRC: a flip there could not be
// detected, and detection is the fault model's premise.
func flipCovered(buf []byte, r *rng.Rand) bool {
	const crcField, lengthEnd = 17, 12
	var starts, ends []int
	for pos := 0; pos+lengthEnd <= len(buf); {
		size := lengthEnd + int(int32(binary.BigEndian.Uint32(buf[pos+8:])))
		if size <= crcField || pos+size > len(buf) {
			break
		}
		starts, ends = append(starts, pos+crcField), append(ends, pos+size)
		pos += size
	}
	if len(starts) == 0 {
		return false
	}
	i := r.Pick(len(starts))
	at := starts[i] + r.Pick(ends[i]-starts[i])
	buf[at] ^= 1 << r.Pick(8)
	return true
}

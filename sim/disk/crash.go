package disk

import (
	"sort"

	"github.com/weirmq/weir/sim/fault"
)

// Crash drops every operation not yet completed. A machine crash also
// loses what the page cache held and the disk did not: see the package
// documentation for what survives. A process crash (machine false) keeps
// the page cache.
func (d *Disk) Crash(machine bool) {
	d.epoch++
	d.tainted = false
	clear(d.lanes)
	if !machine {
		return
	}
	var torn, lost, reverted bool
	d.crashDir(d.root, &torn, &lost, &reverted)
	if torn {
		d.counts.Inc(fault.DiskTornWrite)
	}
	if lost {
		d.counts.Inc(fault.DiskLostUnsynced)
	}
	if reverted {
		d.counts.Inc(fault.DiskDirRevert)
	}
}

// Replace swaps the disk of a crashed node for a new, empty one, as an
// operator does after a disk died: every file and directory is gone.
func (d *Disk) Replace() {
	if len(d.lanes) > 0 {
		panic("sim/disk: a disk in use is replaced: crash its node first")
	}
	d.root = newDir()
	d.counts.Inc(fault.DiskLoss)
}

// crashDir settles a directory and everything below it. Names are visited
// in sorted order so that the draws do not depend on map order.
func (d *Disk) crashDir(dir *inode, torn, lost, reverted *bool) {
	if !sameEntries(dir.entries, dir.durEntries) {
		if !d.rnd.Chance(d.cfg.KeepDirOps) {
			*reverted = true
			clear(dir.entries)
			for name, in := range dir.durEntries {
				dir.entries[name] = in
			}
		}
		dir.syncDir()
	}
	names := make([]string, 0, len(dir.entries))
	for name := range dir.entries {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		in := dir.entries[name]
		if in.dir {
			d.crashDir(in, torn, lost, reverted)
			continue
		}
		kept, dropped := d.crashFile(in)
		if kept && dropped {
			*torn = true
		}
		if dropped {
			*lost = true
		}
	}
}

func sameEntries(a, b map[string]*inode) bool {
	if len(a) != len(b) {
		return false
	}
	for name, in := range a {
		if b[name] != in {
			return false
		}
	}
	return true
}

// crashFile leaves a file as a machine crash would: durable content, plus a
// seeded subset of its unsynced sectors. It reports whether any unsynced
// sector was kept and whether any was dropped.
func (d *Disk) crashFile(f *inode) (kept, dropped bool) {
	if len(f.failed) > 0 {
		f.revertFailed()
		dropped = true
	}
	if len(f.unsynced) == 0 {
		return false, dropped
	}
	keep := map[int64]bool{}
	for _, sec := range f.unsynced.sorted() {
		k := d.rnd.Chance(d.cfg.KeepSector)
		keep[sec] = k
		kept, dropped = kept || k, dropped || !k
	}
	f.cur = d.settle(f, keep)
	f.dur = append(f.dur[:0], f.cur...)
	f.unsynced = nil
	return kept, dropped
}

// dropUnsynced loses part of a file's unsynced sectors from the page cache
// after a failed fsync; the kept ones stay unsynced until failWriteback.
func (d *Disk) dropUnsynced(f *inode) {
	keep := map[int64]bool{}
	for _, sec := range f.unsynced.sorted() {
		keep[sec] = d.rnd.Chance(d.cfg.KeepSector)
	}
	f.cur = d.settle(f, keep)
	for sec, k := range keep {
		if !k {
			delete(f.unsynced, sec)
		}
	}
}

// settle computes the content a file has when, of its unsynced sectors,
// only those keep says survive. The length is the durable one, grown to
// cover the last kept sector (up to the current length) or, after an
// unsynced truncation, shrunk to the current one if that survives.
func (d *Disk) settle(f *inode, keep map[int64]bool) []byte {
	curLen, durLen := int64(len(f.cur)), int64(len(f.dur))
	size := durLen
	if curLen >= durLen {
		for sec, k := range keep {
			if k && sec*sectorSize < curLen {
				size = max(size, min((sec+1)*sectorSize, curLen))
			}
		}
	} else if d.rnd.Coin() {
		size = curLen
	}
	out := make([]byte, size)
	copy(out, f.dur)
	for sec, k := range keep {
		from := sec * sectorSize
		if !k || from >= size || from >= curLen {
			continue
		}
		// Past the current length the sector keeps its durable bytes: a
		// truncation survives only through the chosen size.
		to := min(from+sectorSize, size, curLen)
		copy(out[from:to], f.cur[from:to])
	}
	return out
}

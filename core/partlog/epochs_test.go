package partlog

import "testing"

// The leader epoch cache answers as Kafka's LeaderEpochFileCache.endOffsetFor.
func TestEndOffsetForEpoch(t *testing.T) {
	l := &Log{}
	for _, e := range []epochStart{{0, 0}, {2, 10}, {2, 12}, {5, 20}, {4, 25}} {
		l.noteEpoch(e.epoch, e.start) // repeats and stale epochs are ignored
	}
	const end = 30
	cases := []struct {
		epoch     int32
		wantEpoch int32
		wantEnd   int64
	}{
		{-1, -1, -1}, // undefined
		{0, 0, 10},
		{1, 0, 10}, // not in the log: the floor epoch, ending where 2 starts
		{2, 2, 20},
		{3, 2, 20},
		{4, 2, 20},
		{5, 5, end}, // the latest epoch ends at the end
		{6, -1, -1}, // newer than anything here
	}
	for _, c := range cases {
		if e, off := l.EndOffsetForEpoch(c.epoch, end); e != c.wantEpoch || off != c.wantEnd {
			t.Errorf("epoch %d: got (%d, %d), want (%d, %d)", c.epoch, e, off, c.wantEpoch, c.wantEnd)
		}
	}
	// Retention moves the log start to 15: epoch 0 is gone, epoch 2 now
	// starts at the log start, and an epoch before it ends there.
	l.start = 15
	l.trimEpochs()
	if len(l.epochs) != 2 || l.epochs[0] != (epochStart{2, 15}) {
		t.Fatalf("after trimming to 15: %v", l.epochs)
	}
	if e, off := l.EndOffsetForEpoch(0, end); e != 0 || off != 15 {
		t.Errorf("epoch 0 after trimming: got (%d, %d), want (0, 15)", e, off)
	}
}

// Appends stamp their leader epoch on the stored batch, and recovery
// rebuilds the cache from the batches.
func TestEpochsSurviveRecovery(t *testing.T) {
	d := newMemDisk()
	l, ops := New(dir, testConfig())
	d.apply(ops)
	for i, epoch := range []int32{1, 1, 3, 3, 4} {
		b, h := batch(t, 2, 10, int64(1000+i))
		res, err := l.Append(b, h, epoch, int64(1000+i), false)
		if err != nil {
			t.Fatal(err)
		}
		d.complete(l, res.Ops)
		d.complete(l, l.MaybeSync(0))
	}
	want := []epochStart{{1, 0}, {3, 4}, {4, 8}}
	r, _, err := Open(d, dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range [][]epochStart{l.epochs, r.epochs} {
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Errorf("epochs %v, want %v", got, want)
		}
	}
	if e, off := r.EndOffsetForEpoch(3, r.EndOffset()); e != 3 || off != 8 {
		t.Errorf("after recovery, epoch 3 ends at (%d, %d), want (3, 8)", e, off)
	}
}

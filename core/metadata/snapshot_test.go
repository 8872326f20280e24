package metadata

import (
	"bytes"
	"errors"
	"testing"

	"pgregory.net/rapid"
)

func TestSnapshotOfEmptyImage(t *testing.T) {
	img, err := FromSnapshot(New().Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	eq(t, img.AppliedIndex(), uint64(0))
	eq(t, img.Snapshot(), New().Snapshot())
}

func TestSnapshotRestoresEveryField(t *testing.T) {
	img := New()
	img.Apply(3, base())
	img.Apply(8, []Record{
		reassigning(partition(topicA, 1, ids(1, 3, 2), ids(2), 2, 0, 1), ids(1), ids(2)),
		eligible(partition(topicA, 0, ids(1, 2), ids(1), 1, 0, 1), ids(2)),
		{RegisterBroker: &RegisterBrokerRecord{ID: 3, Epoch: 31, Incarnation: "inc2", DirectoryID: [16]byte{0xd}}},
		{ShutdownBroker: &BrokerEpochRecord{ID: 2, Epoch: 20}},
		config(ResourceBroker, "", "k", strp("v")),
		{ProducerIDs: &ProducerIDsRecord{Broker: 1, BrokerEpoch: 10, NextProducerID: 5000}},
	})
	got, err := FromSnapshot(img.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	eq(t, got.AppliedIndex(), uint64(8))
	eq(t, got.ClusterID(), "c1")
	eq(t, got.Brokers(), img.Brokers())
	eq(t, got.Topics(), img.Topics())
	eq(t, got.Configs(ResourceTopic, "orders"), img.Configs(ResourceTopic, "orders"))
	eq(t, got.Configs(ResourceBroker, ""), []ConfigEntry{{"k", "v"}})
	eq(t, got.NextProducerID(), int64(5000))
	eq(t, got.Snapshot(), img.Snapshot())
}

// v1Snapshot is what Snapshot wrote before batch version 2, of the image
// base() builds at index 3.
const v1Snapshot = "0103010a0102633102021403696e630109504c41494e544558540168888e0102723103021402042803696e630109504c41494e5445" +
	"58540168888e0102723203042802063c03696e630109504c41494e544558540168888e0102723106066f72646572730a0000000000000000000000" +
	"00000000070a00000000000000000000000000000000020204020204020000070a000000000000000000000000000000020204060104040000090206" +
	"6f72646572730c726574656e74696f6e2e6d73010431303030"

// TestFromSnapshotVersion1: a snapshot written before reassignments loads
// as the same image, whose snapshot, with no reassignment in progress, is
// the same bytes.
func TestFromSnapshotVersion1(t *testing.T) {
	b := unhex(t, v1Snapshot)
	got, err := FromSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	want := New()
	want.Apply(3, base())
	eq(t, got.Topics(), want.Topics())
	eq(t, want.Snapshot(), b)
	eq(t, got.Snapshot(), b)
}

func TestFromSnapshotRejects(t *testing.T) {
	img := New()
	img.Apply(1, base())
	good := img.Snapshot()
	// A snapshot whose records decode but do not fit together: a partition
	// of a topic the snapshot never created.
	misfit := append([]byte{snapshotVersion, 1}, EncodeBatch([]Record{partition(topicA, 0, ids(1), ids(1), 1, 0, 0)})...)
	cases := []struct {
		name  string
		input []byte
	}{
		{"empty", nil},
		{"unknown version", append([]byte{9}, good[1:]...)},
		{"truncated index", []byte{snapshotVersion, 0x80}},
		{"no batch", []byte{snapshotVersion, 1}},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(append([]byte{}, good...), 1)},
		{"records that do not fit", misfit},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img, err := FromSnapshot(tc.input)
			if err == nil || img != nil {
				t.Fatalf("FromSnapshot = %v, %v; want an error", img, err)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
		})
	}
}

// TestSnapshotThenReplay is the property a restarting node relies on:
// loading a snapshot taken at any point and applying the entries after it
// gives, byte for byte, the image of a node that applied every entry.
func TestSnapshotThenReplay(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := drawHistory(t, 40)
		cut := rapid.IntRange(0, len(h)).Draw(t, "snapshot after entry")

		full := New()
		var atCut *Image
		var atCutBytes []byte
		for i, e := range h {
			if i == cut {
				atCut = full.Clone()
				atCutBytes = full.Snapshot()
			}
			full.Apply(e.index, e.recs)
			checkInvariants(t, full)
		}
		if cut == len(h) {
			atCut = full.Clone()
			atCutBytes = full.Snapshot()
		}
		// The clone taken at the cut did not see the later entries.
		if !bytes.Equal(atCut.Snapshot(), atCutBytes) {
			t.Fatal("a clone changed when the original applied more entries")
		}

		restored, err := FromSnapshot(atCutBytes)
		if err != nil {
			t.Fatalf("FromSnapshot of a valid snapshot: %v", err)
		}
		if !bytes.Equal(restored.Snapshot(), atCutBytes) {
			t.Fatal("FromSnapshot then Snapshot changes the bytes")
		}
		checkInvariants(t, restored)
		for _, e := range h[cut:] {
			restored.Apply(e.index, e.recs)
		}
		if !bytes.Equal(restored.Snapshot(), full.Snapshot()) {
			t.Fatal("snapshot + replay differs from full replay")
		}
		eq(t, restored.Topics(), full.Topics())
		eq(t, restored.Brokers(), full.Brokers())
		eq(t, restored.AppliedIndex(), full.AppliedIndex())

		// Entries carried through the encoding apply the same way.
		viaBytes := New()
		for _, e := range h {
			recs, err := DecodeBatch(EncodeBatch(e.recs))
			if err != nil {
				t.Fatal(err)
			}
			if err := viaBytes.TryApply(e.index, recs); err != nil {
				t.Fatalf("TryApply of a valid entry: %v", err)
			}
		}
		if !bytes.Equal(viaBytes.Snapshot(), full.Snapshot()) {
			t.Fatal("applying decoded entries differs from applying the originals")
		}
	})
}

// validSnapshot draws the snapshot of a random valid image.
func validSnapshot(t *rapid.T) []byte {
	img := New()
	for _, e := range drawHistory(t, 15) {
		img.Apply(e.index, e.recs)
	}
	return img.Snapshot()
}

// TestFromSnapshotSurvivesMutation: bytes from a disk or a peer may be
// damaged anywhere; FromSnapshot must answer with an image or an error,
// never a panic, and any image it returns must be self-consistent.
func TestFromSnapshotSurvivesMutation(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := validSnapshot(t)
		for range rapid.IntRange(1, 4).Draw(t, "mutations") {
			switch op := rapid.IntRange(0, 3).Draw(t, "op"); {
			case len(b) == 0:
				b = append(b, rapid.Byte().Draw(t, "byte"))
			case op == 0: // flip bits
				i := rapid.IntRange(0, len(b)-1).Draw(t, "at")
				b[i] ^= rapid.Byte().Draw(t, "xor")
			case op == 1: // truncate
				b = b[:rapid.IntRange(0, len(b)-1).Draw(t, "length")]
			case op == 2: // insert
				i := rapid.IntRange(0, len(b)).Draw(t, "at")
				b = append(b[:i], append([]byte{rapid.Byte().Draw(t, "byte")}, b[i:]...)...)
			default: // delete
				i := rapid.IntRange(0, len(b)-1).Draw(t, "at")
				b = append(b[:i], b[i+1:]...)
			}
		}
		checkFromSnapshot(t, b)
	})
}

func checkFromSnapshot(t tb, b []byte) {
	t.Helper()
	img, err := FromSnapshot(b)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		return
	}
	checkInvariants(t, img)
	again, err := FromSnapshot(img.Snapshot())
	if err != nil {
		t.Fatalf("the snapshot of a restored image does not load: %v", err)
	}
	if !bytes.Equal(again.Snapshot(), img.Snapshot()) {
		t.Fatal("snapshot of a restored image is not stable")
	}
}

func FuzzFromSnapshot(f *testing.F) {
	img := New()
	img.Apply(1, base())
	f.Add(img.Snapshot())
	f.Add(New().Snapshot())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) { checkFromSnapshot(t, b) })
}

package netshim

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestReadFrame(t *testing.T) {
	want := make([]byte, 3*frameChunk+12345)
	for i := range want {
		want[i] = byte(i * 7)
	}
	got, err := readFrame(bytes.NewReader(want), len(want))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}
	// A frame that declares far more than arrives fails without the
	// declared size ever being allocated.
	allocs := testing.AllocsPerRun(1, func() {
		if _, err := readFrame(bytes.NewReader(want[:10]), 100<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("short frame: %v", err)
		}
	})
	if allocs > 3 {
		t.Fatalf("%v allocations for a 10-byte frame", allocs)
	}
}

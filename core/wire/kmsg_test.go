package wire

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// forgedTagCount is an ApiVersions v3 request whose body ends in a tag
// section announcing count tags and carrying none.
func forgedTagCount(count uint32) []byte {
	frame := AppendRequest(nil, RequestHeader{18, 3, 1, nil}, &kmsg.ApiVersionsRequest{Version: 3})[4:]
	frame = frame[:len(frame)-1] // drop the body's empty tag section
	for ; count >= 0x80; count >>= 7 {
		frame = append(frame, byte(count)|0x80)
	}
	return append(frame, byte(count))
}

// BenchmarkKmsgForgedTagCount documents a defect in kmsg v1.15.0 that
// ParseRequest cannot guard against (see doc.go): the time to reject the
// request grows with the forged count, not with the ~20-byte input, to about
// 40s for a count of 2^32-1. Run with -bench KmsgForgedTagCount.
func BenchmarkKmsgForgedTagCount(b *testing.B) {
	for _, count := range []uint32{1 << 8, 1 << 16, 1 << 20, 1 << 24} {
		frame := forgedTagCount(count)
		b.Run(fmt.Sprintf("count=%d", count), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := ParseRequest(frame, serveAll); !errors.Is(err, ErrMalformed) {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestForgedTagCountIsMalformed(t *testing.T) {
	if _, _, err := ParseRequest(forgedTagCount(1<<10), serveAll); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
}

package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// seedKeys are the APIs every client sends first and most: Produce, Fetch,
// Metadata, ApiVersions.
var seedKeys = []int16{0, 1, 3, 18}

// seedVersions picks the oldest, the last classic, the first flexible and
// the newest version of key.
func seedVersions(key int16) []int16 {
	req := kmsg.RequestForKey(key)
	vs := []int16{0, req.MaxVersion()}
	for v := range req.MaxVersion() + 1 {
		req.SetVersion(v)
		if req.IsFlexible() {
			return append(vs, v-1, v)
		}
	}
	return vs
}

var sentinels = []error{ErrTruncated, ErrUnknownAPIKey, ErrUnsupportedVersion, ErrMalformed}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func FuzzParseRequest(f *testing.F) {
	r := rng(3)
	for _, key := range seedKeys {
		for _, v := range seedVersions(key) {
			for _, small := range []bool{false, true} {
				req := kmsg.RequestForKey(key)
				fill(req, &r, small)
				req.SetVersion(v)
				f.Add(AppendRequest(nil, RequestHeader{key, v, int32(r.intn(1 << 20)), strp("seed")}, req)[4:])
			}
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) >= 8 && MayForgeTagCount(frame[8:]) {
			if req := kmsg.RequestForKey(int16(binary.BigEndian.Uint16(frame))); req != nil {
				req.SetVersion(int16(binary.BigEndian.Uint16(frame[2:])))
				if req.IsFlexible() {
					t.Skip("may forge a tag count; see MayForgeTagCount")
				}
			}
		}
		hdr, req, err := ParseRequest(frame, serveAll)
		var want RequestHeader
		if len(frame) >= 8 {
			want.APIKey = int16(binary.BigEndian.Uint16(frame))
			want.APIVersion = int16(binary.BigEndian.Uint16(frame[2:]))
			want.CorrelationID = int32(binary.BigEndian.Uint32(frame[4:]))
		}
		if hdr.APIKey != want.APIKey || hdr.APIVersion != want.APIVersion || hdr.CorrelationID != want.CorrelationID {
			t.Fatalf("header %+v does not match the frame's first bytes", hdr)
		}
		if err != nil {
			if req != nil || !isSentinel(err) {
				t.Fatalf("request %v with error %v", req, err)
			}
			return
		}
		// Decoding normalizes (non-minimal varints, null vs empty), so the
		// frame itself need not come back; but what we encode must decode
		// to something that encodes the same again.
		enc := AppendRequest(nil, hdr, req)
		hdr2, req2, err := ParseRequest(enc[4:], serveAll)
		if err != nil {
			t.Fatalf("re-encoded request does not parse: %v", err)
		}
		if !reflect.DeepEqual(hdr2, hdr) {
			t.Fatalf("header %+v became %+v", hdr, hdr2)
		}
		if enc2 := AppendRequest(nil, hdr2, req2); !bytes.Equal(enc2, enc) {
			t.Fatalf("%s v%d: encoding not stable\n%x\n%x", kmsg.NameForKey(hdr.APIKey), hdr.APIVersion, enc, enc2)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	r := rng(4)
	keys := kmsgKeys()
	index := make(map[int16]int16) // the fuzz target maps its key argument through keys
	for i, k := range keys {
		index[k] = int16(i)
	}
	for _, key := range seedKeys {
		for _, v := range seedVersions(key) {
			for _, small := range []bool{false, true} {
				resp := kmsg.ResponseForKey(key)
				fill(resp, &r, small)
				resp.SetVersion(v)
				f.Add(AppendResponse(nil, int32(r.intn(1<<20)), resp)[4:], index[key], v)
			}
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte, key, version int16) {
		// Aim every input at a key that exists, and nearly every one at a
		// version that does, so that the fuzzer spends its time inside the
		// decoders; unknown keys are covered by TestParseResponseErrors.
		key = keys[int(uint16(key))%len(keys)]
		max := kmsg.ResponseForKey(key).MaxVersion()
		version = int16(int(uint16(version)) % int(max+2)) // max+1: one beyond the codec
		if probe := kmsg.ResponseForKey(key); len(frame) >= 4 && MayForgeTagCount(frame[4:]) {
			if probe.SetVersion(version); probe.IsFlexible() {
				t.Skip("may forge a tag count; see MayForgeTagCount")
			}
		}

		corr, resp, err := ParseResponse(frame, key, version)
		if err != nil {
			if resp != nil || !isSentinel(err) {
				t.Fatalf("response %v with error %v", resp, err)
			}
			return
		}
		if corr != int32(binary.BigEndian.Uint32(frame)) {
			t.Fatalf("correlation id %d does not match the frame", corr)
		}
		enc := AppendResponse(nil, corr, resp)
		corr2, resp2, err := ParseResponse(enc[4:], key, resp.GetVersion())
		if err != nil || corr2 != corr {
			t.Fatalf("re-encoded response does not parse: %d, %v", corr2, err)
		}
		if enc2 := AppendResponse(nil, corr2, resp2); !bytes.Equal(enc2, enc) {
			t.Fatalf("%s v%d: encoding not stable\n%x\n%x", kmsg.NameForKey(key), resp.GetVersion(), enc, enc2)
		}
	})
}

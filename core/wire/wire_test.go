package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func strp(s string) *string { return &s }

// body strips the size prefix after checking it against the frame's length.
func body(t *testing.T, frame []byte) []byte {
	t.Helper()
	size, err := ReadFrameSize([4]byte(frame), math.MaxInt32)
	if err != nil || int(size) != len(frame)-4 {
		t.Fatalf("size prefix %d (err %v), frame has %d bytes after it", size, err, len(frame)-4)
	}
	return frame[4:]
}

// TestRequestRoundTrip encodes a randomly filled request for every key and
// version kmsg knows, parses it back, and checks that the header is equal
// and that re-encoding yields the same bytes.
func TestRequestRoundTrip(t *testing.T) {
	r := rng(1)
	clientIDs := []*string{nil, strp(""), strp("weir-sim-client")}
	n := 0
	for _, key := range kmsgKeys() {
		for version := range kmsg.RequestForKey(key).MaxVersion() + 1 {
			for i := range 3 {
				req := kmsg.RequestForKey(key)
				fill(req, &r, false)
				req.SetVersion(version)
				hdr := RequestHeader{key, version, int32(r.next()), clientIDs[i]}
				if isHeaderV0(key, version) {
					hdr.ClientID = nil
				}
				frame := AppendRequest(nil, hdr, req)
				gotHdr, got, err := ParseRequest(body(t, frame), serveAll)
				if err != nil {
					t.Fatalf("%s v%d: %v", kmsg.NameForKey(key), version, err)
				}
				if !reflect.DeepEqual(gotHdr, hdr) {
					t.Fatalf("%s v%d: header %+v, want %+v", kmsg.NameForKey(key), version, gotHdr, hdr)
				}
				if again := AppendRequest(nil, gotHdr, got); !bytes.Equal(again, frame) {
					t.Fatalf("%s v%d: re-encoded\n%x\nwant\n%x", kmsg.NameForKey(key), version, again, frame)
				}
				n++
			}
		}
	}
	t.Logf("%d requests over %d keys", n, len(kmsgKeys()))
}

func TestResponseRoundTrip(t *testing.T) {
	r := rng(2)
	for _, key := range kmsgKeys() {
		for version := range kmsg.ResponseForKey(key).MaxVersion() + 1 {
			for range 3 {
				resp := kmsg.ResponseForKey(key)
				fill(resp, &r, false)
				resp.SetVersion(version)
				if av, ok := resp.(*kmsg.ApiVersionsResponse); ok && av.ErrorCode == kerr.UnsupportedVersion.Code {
					av.ErrorCode = 0 // 35 means a v0 body; see TestAPIVersionsFallback
				}
				corr := int32(r.next())
				frame := AppendResponse(nil, corr, resp)
				gotCorr, got, err := ParseResponse(body(t, frame), key, version)
				if err != nil {
					t.Fatalf("%s v%d: %v", kmsg.NameForKey(key), version, err)
				}
				if gotCorr != corr || got.GetVersion() != version {
					t.Fatalf("%s v%d: got correlation id %d v%d, want %d", kmsg.NameForKey(key), version, gotCorr, got.GetVersion(), corr)
				}
				if again := AppendResponse(nil, gotCorr, got); !bytes.Equal(again, frame) {
					t.Fatalf("%s v%d: re-encoded\n%x\nwant\n%x", kmsg.NameForKey(key), version, again, frame)
				}
			}
		}
	}
}

// AppendResponse takes the response header version from the response's
// flexibility, where Kafka takes it from the request's; that is only right
// while the two agree for every key and version.
func TestRequestAndResponseFlexibilityAgree(t *testing.T) {
	for _, key := range kmsgKeys() {
		req, resp := kmsg.RequestForKey(key), kmsg.ResponseForKey(key)
		if req.MaxVersion() != resp.MaxVersion() {
			t.Errorf("%s: request max v%d, response max v%d", kmsg.NameForKey(key), req.MaxVersion(), resp.MaxVersion())
		}
		for v := range req.MaxVersion() + 2 { // +1: unknown newer versions too
			req.SetVersion(v)
			resp.SetVersion(v)
			if req.IsFlexible() != resp.IsFlexible() {
				t.Errorf("%s v%d: request flexible %v, response %v", kmsg.NameForKey(key), v, req.IsFlexible(), resp.IsFlexible())
			}
		}
	}
}

func TestHeaderLayout(t *testing.T) {
	meta := kmsg.NewPtrMetadataRequest()
	for _, tc := range []struct {
		name string
		hdr  RequestHeader
		want string // header bytes after key, version and correlation id
	}{
		{"v1 null client id", RequestHeader{3, 8, 7, nil}, "\xff\xff"},
		{"v1", RequestHeader{3, 8, 7, strp("ab")}, "\x00\x02ab"},
		{"v2 keeps a classic client id", RequestHeader{3, 9, 7, strp("ab")}, "\x00\x02ab\x00"},
		{"v0 has no client id", RequestHeader{7, 0, 7, strp("ignored")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := AppendRequest(nil, tc.hdr, meta)
			got := string(frame[12 : len(frame)-len(meta.AppendTo(nil))])
			if got != tc.want {
				t.Errorf("header tail %q, want %q", got, tc.want)
			}
		})
	}
	// A flexible response carries an empty tagged-field section after the
	// correlation id; ApiVersions never does (KIP-511).
	for _, tc := range []struct {
		resp kmsg.Response
		want int
	}{
		{&kmsg.MetadataResponse{Version: 8}, 4},
		{&kmsg.MetadataResponse{Version: 9}, 5},
		{&kmsg.ApiVersionsResponse{Version: 3}, 4},
	} {
		frame := AppendResponse(nil, 1, tc.resp)
		if got := len(frame) - 4 - len(tc.resp.AppendTo(nil)); got != tc.want {
			t.Errorf("%s v%d: header of %d bytes, want %d", kmsg.NameForKey(tc.resp.Key()), tc.resp.GetVersion(), got, tc.want)
		}
	}
}

// TestAPIVersionsFallback walks KIP-511: a client sends ApiVersions v5 to a
// broker serving v0-v4 and learns the broker's ranges from a v0 answer.
func TestAPIVersionsFallback(t *testing.T) {
	served := serveOnly(map[int16]VersionRange{0: {3, 11}, 3: {0, 12}, 18: {0, 4}})
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(5)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "weir", "1.0"
	hdr := RequestHeader{18, 5, 42, strp("cli")}

	// Parse it both as kmsg encodes it and with a tagged field in the
	// header, which a newer client may send and a broker must skip.
	plain := body(t, AppendRequest(nil, hdr, req))
	tagged := append(plain[:13:13], 1, 7, 3, 'x', 'y', 'z') // one tag, replacing the empty section
	tagged = append(tagged, plain[14:]...)
	for _, frame := range [][]byte{plain, tagged} {
		gotHdr, got, err := ParseRequest(frame, served)
		if !errors.Is(err, ErrUnsupportedVersion) || got != nil {
			t.Fatalf("got %v, %v; want ErrUnsupportedVersion", got, err)
		}
		if !reflect.DeepEqual(gotHdr, hdr) {
			t.Fatalf("header %+v, want %+v", gotHdr, hdr)
		}
	}

	fb := APIVersionsFallback([]int16{0, 1, 3, 18}, served) // 1 is not served
	frame := AppendResponse(nil, hdr.CorrelationID, fb)
	want := []byte{
		0, 0, 0, 4 + 2 + 4 + 3*6, // size
		0, 0, 0, 42, // correlation id, no tagged fields
		0, 35, // UNSUPPORTED_VERSION
		0, 0, 0, 3, // three keys, classic array
		0, 0, 0, 3, 0, 11,
		0, 3, 0, 0, 0, 12,
		0, 18, 0, 0, 0, 4,
	}
	if !bytes.Equal(frame, want) {
		t.Fatalf("fallback frame\n%x\nwant\n%x", frame, want)
	}

	// The client reads the v0 body although it asked for v5.
	corr, resp, err := ParseResponse(frame[4:], 18, 5)
	if err != nil || corr != 42 {
		t.Fatalf("ParseResponse: correlation id %d, %v", corr, err)
	}
	av := resp.(*kmsg.ApiVersionsResponse)
	if av.GetVersion() != 0 || av.ErrorCode != 35 || len(av.ApiKeys) != 3 || av.ApiKeys[2].MaxVersion != 4 {
		t.Fatalf("decoded %+v", av)
	}
}

func TestParseRequestErrors(t *testing.T) {
	served := serveOnly(map[int16]VersionRange{3: {4, 12}, 18: {0, 4}, 0: {3, 13}})
	meta := func(version int16) []byte {
		m := kmsg.NewPtrMetadataRequest()
		m.SetVersion(version)
		return body(t, AppendRequest(nil, RequestHeader{3, version, 9, strp("c")}, m))
	}
	fixed := func(key, version int16) []byte { // the 8 fixed bytes only
		return binary.BigEndian.AppendUint32([]byte{byte(key >> 8), byte(key), byte(version >> 8), byte(version)}, 9)
	}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, tc := range []struct {
		name      string
		frame     []byte
		want      error
		wantFixed bool // header key/version/correlation id are filled
	}{
		{"empty", nil, ErrTruncated, false},
		{"7 bytes", meta(4)[:7], ErrTruncated, false},
		{"no client id", fixed(3, 4), ErrTruncated, true},
		{"half a client id length", cat(fixed(3, 4), []byte{0}), ErrTruncated, true},
		{"client id longer than frame", cat(fixed(3, 4), []byte{0, 5, 'a'}), ErrTruncated, true},
		{"no tag section", cat(fixed(3, 9), []byte{0, 0}), ErrTruncated, true},
		{"tag longer than frame", cat(fixed(3, 9), []byte{0, 0, 1, 0, 9, 1}), ErrTruncated, true},
		{"forged tag count", cat(fixed(3, 9), []byte{0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}), ErrTruncated, true},
		{"varint over 5 bytes", cat(fixed(3, 9), []byte{0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0}), ErrMalformed, true},
		{"varint over 32 bits", cat(fixed(3, 9), []byte{0, 0, 0xff, 0xff, 0xff, 0xff, 0x7f}), ErrMalformed, true},
		{"key unknown to kmsg", cat(fixed(999, 0), []byte{0, 0}), ErrUnknownAPIKey, true},
		{"negative key", cat(fixed(-1, 0), []byte{0, 0}), ErrUnknownAPIKey, true},
		{"key not served", cat(fixed(1, 4), []byte{0, 0}), ErrUnknownAPIKey, true},
		{"version below min", meta(3), ErrUnsupportedVersion, true},
		{"version above max", cat(fixed(3, 13), []byte{0, 0, 0}), ErrUnsupportedVersion, true},
		{"negative version", cat(fixed(3, -1), []byte{0, 0}), ErrUnsupportedVersion, true},
		{"empty body", meta(4)[:11], ErrMalformed, true},
		{"truncated body", meta(4)[:len(meta(4))-1], ErrMalformed, true},
		{"garbage body", cat(fixed(0, 9), []byte{0, 0, 0}, bytes.Repeat([]byte{0xfe}, 40)), ErrMalformed, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr, req, err := ParseRequest(tc.frame, served)
			if !errors.Is(err, tc.want) || req != nil {
				t.Fatalf("got %v, %v; want %v", req, err, tc.want)
			}
			if tc.wantFixed != (hdr.CorrelationID == 9) {
				t.Fatalf("header %+v", hdr)
			}
		})
	}
}

// A served key whose served range reaches past what kmsg can decode must
// not be decoded with kmsg's newest layout.
func TestParseRequestBeyondCodec(t *testing.T) {
	max := kmsg.NewPtrMetadataRequest().MaxVersion()
	frame := body(t, AppendRequest(nil, RequestHeader{3, max + 1, 1, nil}, &kmsg.MetadataRequest{Version: max}))
	_, _, err := ParseRequest(frame, serveOnly(map[int16]VersionRange{3: {0, math.MaxInt16}}))
	if !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("got %v", err)
	}
}

// Kafka does not check that a request body was consumed to its end
// (AbstractRequest.parseRequest never looks at buffer.remaining()), so
// neither do we; see the package documentation.
func TestTrailingBytesTolerated(t *testing.T) {
	m := &kmsg.MetadataRequest{Version: 12, Topics: []kmsg.MetadataRequestTopic{{Topic: strp("t")}}}
	frame := append(body(t, AppendRequest(nil, RequestHeader{3, 12, 1, nil}, m)), 1, 2, 3)
	if _, got, err := ParseRequest(frame, serveAll); err != nil || *got.(*kmsg.MetadataRequest).Topics[0].Topic != "t" {
		t.Fatalf("got %v, %v", got, err)
	}
	r := &kmsg.MetadataResponse{Version: 12}
	if _, _, err := ParseResponse(append(body(t, AppendResponse(nil, 1, r)), 0), 3, 12); err != nil {
		t.Fatal(err)
	}
}

// The zero-copy contract: record bytes alias the frame, strings do not.
func TestParseRequestAliasesFrame(t *testing.T) {
	records := []byte("pretend-record-batch")
	p := kmsg.NewPtrProduceRequest()
	p.SetVersion(9)
	p.Topics = []kmsg.ProduceRequestTopic{{Topic: "topic", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: records}}}}
	frame := body(t, AppendRequest(nil, RequestHeader{0, 9, 1, strp("client")}, p))

	hdr, req, err := ParseRequest(frame, serveAll)
	if err != nil {
		t.Fatal(err)
	}
	got := req.(*kmsg.ProduceRequest)
	i := bytes.Index(frame, records)
	frame[i] = 'X'
	for j := range frame { // a reused buffer
		if j != i {
			frame[j] = 0
		}
	}
	if rec := got.Topics[0].Partitions[0].Records; rec[0] != 'X' || &rec[0] != &frame[i] {
		t.Errorf("records %q do not alias the frame", rec)
	}
	if got.Topics[0].Topic != "topic" || *hdr.ClientID != "client" {
		t.Errorf("strings changed with the frame: %q, %q", got.Topics[0].Topic, *hdr.ClientID)
	}
}

func TestParseResponseErrors(t *testing.T) {
	meta := body(t, AppendResponse(nil, 5, &kmsg.MetadataResponse{Version: 9}))
	for _, tc := range []struct {
		name    string
		frame   []byte
		key     int16
		version int16
		want    error
	}{
		{"empty", nil, 3, 9, ErrTruncated},
		{"3 bytes", meta[:3], 3, 9, ErrTruncated},
		{"no tag section", meta[:4], 3, 9, ErrTruncated},
		{"unknown key", meta, 999, 0, ErrUnknownAPIKey},
		{"version beyond codec", meta, 3, 99, ErrUnsupportedVersion},
		{"negative version", meta, 3, -1, ErrUnsupportedVersion},
		{"truncated body", meta[:len(meta)-1], 3, 9, ErrMalformed},
		{"garbage", append(meta[:5:5], bytes.Repeat([]byte{0xfe}, 30)...), 3, 9, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, resp, err := ParseResponse(tc.frame, tc.key, tc.version); !errors.Is(err, tc.want) || resp != nil {
				t.Fatalf("got %v, %v; want %v", resp, err, tc.want)
			}
		})
	}
}

func TestReadFrameSize(t *testing.T) {
	for _, tc := range []struct {
		prefix [4]byte
		max    int32
		want   int32
		err    error
	}{
		{[4]byte{0, 0, 0, 0}, 100, 0, nil},
		{[4]byte{0, 0, 0, 100}, 100, 100, nil},
		{[4]byte{0, 0, 0, 101}, 100, 0, ErrFrameTooLarge},
		{[4]byte{0x7f, 0xff, 0xff, 0xff}, math.MaxInt32, math.MaxInt32, nil},
		{[4]byte{0xff, 0xff, 0xff, 0xff}, math.MaxInt32, 0, ErrMalformed},
		{[4]byte{0x80, 0, 0, 0}, math.MaxInt32, 0, ErrMalformed},
	} {
		got, err := ReadFrameSize(tc.prefix, tc.max)
		if got != tc.want || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("ReadFrameSize(%x, %d) = %d, %v; want %d, %v", tc.prefix, tc.max, got, err, tc.want, tc.err)
		}
	}
}

// AppendRequest and AppendResponse append: bytes already in dst stay.
func TestAppendKeepsPrefix(t *testing.T) {
	dst := []byte("prefix")
	out := AppendRequest(dst, RequestHeader{18, 0, 1, nil}, &kmsg.ApiVersionsRequest{})
	out = AppendResponse(out, 1, &kmsg.ApiVersionsResponse{})
	if string(out[:6]) != "prefix" || binary.BigEndian.Uint32(out[6:]) != 10 || binary.BigEndian.Uint32(out[20:]) != 10 {
		t.Fatalf("%x", out)
	}
}

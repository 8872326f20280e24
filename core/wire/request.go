package wire

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// RequestHeader is a Kafka request header, v0, v1 or v2; the version is not
// a field because it follows from the key and version (see ParseRequest).
type RequestHeader struct {
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
	// ClientID is nil when the client sent a null client id (any negative
	// length, as Kafka reads it), or for header v0, which has none.
	ClientID *string
}

// VersionRange is the inclusive range of versions the broker serves for one
// API key.
type VersionRange struct{ Min, Max int16 }

// Supported reports the versions of key the broker serves; ok is false for
// keys it does not serve at all.
type Supported func(key int16) (r VersionRange, ok bool)

const (
	keyControlledShutdown = 7
	keyAPIVersions        = 18

	// fixedHeaderLen is key, version and correlation id: the part of the
	// request header that every header version shares.
	fixedHeaderLen = 8
)

// ParseRequest decodes one request frame: the bytes after the 4-byte size
// prefix. See the package documentation for the contract; in short:
//
//   - The returned header is filled whenever the frame has its first 8 bytes,
//     including on error, so that the caller can answer or log with the
//     correlation id. ClientID is filled only once the rest of the header
//     parsed.
//   - An ApiVersions request at a version the broker does not serve yields
//     ErrUnsupportedVersion with the whole header parsed and a nil request:
//     the caller answers with APIVersionsFallback (KIP-511).
//   - The request's []byte fields (Produce records, SASL tokens, ...) alias
//     frame. The caller must not reuse or modify frame while the request is
//     alive. Strings are copied, so they never pin a large frame.
func ParseRequest(frame []byte, supported Supported) (RequestHeader, kmsg.Request, error) {
	if len(frame) < fixedHeaderLen {
		return RequestHeader{}, nil, fmt.Errorf("%w: request header needs %d bytes, frame has %d",
			ErrTruncated, fixedHeaderLen, len(frame))
	}
	hdr := RequestHeader{
		APIKey:        int16(binary.BigEndian.Uint16(frame[0:])),
		APIVersion:    int16(binary.BigEndian.Uint16(frame[2:])),
		CorrelationID: int32(binary.BigEndian.Uint32(frame[4:])),
	}
	key, version := hdr.APIKey, hdr.APIVersion
	req := kmsg.RequestForKey(key)
	if req == nil {
		// Without the key's schema the header version is unknown, so the
		// client id cannot be located either.
		return hdr, nil, fmt.Errorf("%w: key %d", ErrUnknownAPIKey, key)
	}
	// The header version follows the request's flexibility at this version,
	// also for versions beyond those kmsg knows, where kmsg (like Kafka's
	// generated ApiMessageType.requestHeaderVersion) extends the last rule.
	// That is what lets a too-new ApiVersions request be read for KIP-511.
	req.SetVersion(version)
	clientID, body, err := readHeaderTail(frame[fixedHeaderLen:], key, version, req.IsFlexible())
	if err != nil {
		return hdr, nil, fmt.Errorf("%s v%d request header: %w", kmsg.NameForKey(key), version, err)
	}
	hdr.ClientID = clientID

	r, ok := supported(key)
	if !ok {
		return hdr, nil, fmt.Errorf("%w: %s (%d) is not served", ErrUnknownAPIKey, kmsg.NameForKey(key), key)
	}
	if version < r.Min || version > r.Max {
		return hdr, nil, fmt.Errorf("%w: %s v%d, broker serves v%d-v%d",
			ErrUnsupportedVersion, kmsg.NameForKey(key), version, r.Min, r.Max)
	}
	// kmsg decodes an unknown newer version with the newest layout it
	// knows, which would silently misread fields; refuse instead, should
	// supported ever claim more than kmsg implements.
	if version < 0 || version > req.MaxVersion() {
		return hdr, nil, fmt.Errorf("%w: %s v%d, codec knows v0-v%d",
			ErrUnsupportedVersion, kmsg.NameForKey(key), version, req.MaxVersion())
	}
	// ReadFrom, not UnsafeReadFrom: strings such as topic and group names
	// outlive the request in the core's state, and unsafe strings would keep
	// the whole frame (possibly a large produce) reachable and mutable.
	if err := req.ReadFrom(body); err != nil {
		return hdr, nil, fmt.Errorf("%w: %s v%d: %v", ErrMalformed, kmsg.NameForKey(key), version, err)
	}
	return hdr, req, nil
}

// AppendRequest appends a whole request frame to dst: size prefix, header
// and req's body. The header is written from hdr as given, its version
// chosen from hdr.APIKey and hdr.APIVersion exactly as ParseRequest reads it.
// Those two normally equal req.Key() and req.GetVersion(); they are not
// checked against req so that tests can build inconsistent frames.
// hdr.ClientID must be at most math.MaxInt16 bytes long.
func AppendRequest(dst []byte, hdr RequestHeader, req kmsg.Request) []byte {
	dst, start := beginFrame(dst)
	dst = binary.BigEndian.AppendUint16(dst, uint16(hdr.APIKey))
	dst = binary.BigEndian.AppendUint16(dst, uint16(hdr.APIVersion))
	dst = binary.BigEndian.AppendUint32(dst, uint32(hdr.CorrelationID))
	if !isHeaderV0(hdr.APIKey, hdr.APIVersion) {
		// The client id is a classic (not compact) nullable string even in
		// header v2, so that a broker can read it before it knows whether
		// it understands the request's version.
		if hdr.ClientID == nil {
			dst = binary.BigEndian.AppendUint16(dst, math.MaxUint16) // -1: null
		} else {
			dst = binary.BigEndian.AppendUint16(dst, uint16(len(*hdr.ClientID)))
			dst = append(dst, *hdr.ClientID...)
		}
		if headerFlexible(hdr, req) {
			dst = append(dst, 0) // no tagged fields
		}
	}
	dst = req.AppendTo(dst)
	return endFrame(dst, start)
}

// isHeaderV0 reports the one request whose header has no client id:
// ControlledShutdown v0 predates the field.
func isHeaderV0(key, version int16) bool {
	return key == keyControlledShutdown && version == 0
}

func headerFlexible(hdr RequestHeader, req kmsg.Request) bool {
	if hdr.APIKey != req.Key() || hdr.APIVersion != req.GetVersion() {
		req = kmsg.RequestForKey(hdr.APIKey)
		if req == nil {
			return false
		}
		req.SetVersion(hdr.APIVersion)
	}
	return req.IsFlexible()
}

// readHeaderTail reads the request header after its fixed 8 bytes: the
// client id (v1, v2) and tagged fields (v2). It returns the body.
func readHeaderTail(b []byte, key, version int16, flexible bool) (*string, []byte, error) {
	if isHeaderV0(key, version) {
		return nil, b, nil
	}
	if len(b) < 2 {
		return nil, nil, fmt.Errorf("%w: no client id length", ErrTruncated)
	}
	n := int(int16(binary.BigEndian.Uint16(b)))
	b = b[2:]
	var clientID *string
	if n >= 0 {
		if n > len(b) {
			return nil, nil, fmt.Errorf("%w: client id of %d bytes, %d left", ErrTruncated, n, len(b))
		}
		s := string(b[:n])
		clientID, b = &s, b[n:]
	}
	if flexible {
		var err error
		if b, err = skipTags(b); err != nil {
			return nil, nil, err
		}
	}
	return clientID, b, nil
}

// skipTags skips a tagged-field section. No tagged header fields are defined,
// so they are dropped, as Kafka drops unknown tags. Each iteration consumes
// at least two bytes or fails, so a forged count cannot make it spin.
func skipTags(b []byte) ([]byte, error) {
	count, b, err := readUvarint(b)
	for ; err == nil && count > 0; count-- {
		var size uint32
		if _, b, err = readUvarint(b); err != nil { // tag number
			break
		}
		if size, b, err = readUvarint(b); err != nil {
			break
		}
		if uint64(size) > uint64(len(b)) {
			return nil, fmt.Errorf("%w: tagged field of %d bytes, %d left", ErrTruncated, size, len(b))
		}
		b = b[size:]
	}
	return b, err
}

// readUvarint reads Kafka's unsigned varint: at most 5 bytes, at most
// math.MaxUint32, as Kafka's ByteUtils.readUnsignedVarint enforces.
func readUvarint(b []byte) (uint32, []byte, error) {
	v, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, nil, fmt.Errorf("%w: varint", ErrTruncated)
	case n < 0 || n > 5 || v > math.MaxUint32:
		return 0, nil, fmt.Errorf("%w: varint too long", ErrMalformed)
	}
	return uint32(v), b[n:], nil
}

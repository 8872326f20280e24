package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AppendResponse appends a whole response frame to dst: size prefix,
// response header and resp's body. resp's version must be the request's
// version (0 for APIVersionsFallback). The header is v1 (correlation id and
// an empty tagged-field section) when the exchange is flexible, else v0.
// Kafka decides this by the request's flexibility; kmsg gives every key the
// same flexible versions for request and response, so resp's is the same.
func AppendResponse(dst []byte, correlationID int32, resp kmsg.Response) []byte {
	dst, start := beginFrame(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if responseHeaderFlexible(resp.Key(), resp.IsFlexible()) {
		dst = append(dst, 0) // no tagged fields
	}
	dst = resp.AppendTo(dst)
	return endFrame(dst, start)
}

// responseHeaderFlexible: ApiVersions responses always use header v0
// (KIP-511), so that a client which sent a version the broker does not know
// can still find the error code right after the correlation id.
func responseHeaderFlexible(key int16, flexible bool) bool {
	return flexible && key != keyAPIVersions
}

// APIVersionsFallback builds the answer to an ApiVersions request whose
// version the broker does not serve (KIP-511): a v0 body with error
// UNSUPPORTED_VERSION and the broker's ranges for keys (in the order given,
// skipping keys supported does not serve), from which the client picks a
// version to retry with. Encode it with AppendResponse.
func APIVersionsFallback(keys []int16, supported Supported) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	for _, key := range keys {
		r, ok := supported(key)
		if !ok {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = key, r.Min, r.Max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	return resp
}

// ParseResponse decodes a response frame (the bytes after the size prefix)
// to a request of the given key and version. The caller matches the returned
// correlation id against the request it sent.
//
// An ApiVersions response carrying UNSUPPORTED_VERSION is decoded as v0,
// whatever version was asked, because that is how a broker answers a version
// it does not know (KIP-511); the returned response's GetVersion says which.
// As with ParseRequest, []byte fields (Fetch records) alias frame.
func ParseResponse(frame []byte, key, version int16) (correlationID int32, resp kmsg.Response, err error) {
	if len(frame) < 4 {
		return 0, nil, fmt.Errorf("%w: response header needs 4 bytes, frame has %d", ErrTruncated, len(frame))
	}
	correlationID = int32(binary.BigEndian.Uint32(frame))
	resp = kmsg.ResponseForKey(key)
	if resp == nil {
		return correlationID, nil, fmt.Errorf("%w: key %d", ErrUnknownAPIKey, key)
	}
	if version < 0 || version > resp.MaxVersion() {
		return correlationID, nil, fmt.Errorf("%w: %s v%d, codec knows v0-v%d",
			ErrUnsupportedVersion, kmsg.NameForKey(key), version, resp.MaxVersion())
	}
	resp.SetVersion(version)
	body := frame[4:]
	if responseHeaderFlexible(key, resp.IsFlexible()) {
		if body, err = skipTags(body); err != nil {
			return correlationID, nil, fmt.Errorf("%s v%d response header: %w", kmsg.NameForKey(key), version, err)
		}
	}
	// The error code leads the ApiVersions body in every version.
	if key == keyAPIVersions && len(body) >= 2 &&
		int16(binary.BigEndian.Uint16(body)) == kerr.UnsupportedVersion.Code {
		resp.SetVersion(0)
	}
	if err := resp.ReadFrom(body); err != nil {
		return correlationID, nil, fmt.Errorf("%w: %s v%d response: %v",
			ErrMalformed, kmsg.NameForKey(key), resp.GetVersion(), err)
	}
	return correlationID, resp, nil
}

package wire

import "encoding/binary"

// MayForgeTagCount reports whether b holds, at any offset, an unsigned
// varint of at least 1<<21 (four bytes or more). kmsg v1.15.0 (api.go,
// internalReadTags) keeps looping over a tag section's count after its input
// ran out, so such a varint read as the tag count of a flexible struct costs
// up to 2^32 iterations (41s measured) before ReadFrom fails. ParseRequest
// cannot see that without the message schemas (see doc.go and
// BenchmarkKmsgForgedTagCount), so fuzz targets that feed flexible messages
// to kmsg skip inputs that might carry one instead of hanging on them;
// smaller counts (under ~0.1s) remain fuzzed. The fuzzer's first find,
// testdata/fuzz/FuzzParseRequest/b84b09938632de99, is such a request:
// ApiVersions v5 ending in a tag count of some 200 million.
func MayForgeTagCount(b []byte) bool {
	for i := range b {
		if v, n := binary.Uvarint(b[i:]); n > 0 && n <= 5 && v >= 1<<21 {
			return true
		}
	}
	return false
}

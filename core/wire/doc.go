// Package wire is Kafka's framing: the size prefix and the request and
// response headers around message bodies, which kmsg
// (github.com/twmb/franz-go/pkg/kmsg) encodes and decodes. The production
// network driver and the simulator share it, so simulated clients speak the
// real protocol through the same code as the broker. It is pure: no IO, no
// clock, no goroutines, no global state; every function is deterministic.
//
// # Frames
//
// Every request and response is a 4-byte big-endian size followed by that
// many bytes. ReadFrameSize checks the prefix against the size limit before
// the driver allocates the rest; ParseRequest and ParseResponse take the
// bytes after the prefix; AppendRequest and AppendResponse write the prefix.
//
// A request header is key, version and correlation id (8 bytes), then the
// client id as a classic nullable string (v1), then a tagged-field section
// (v2) when the request is flexible at that version. ControlledShutdown v0
// alone has header v0, without client id. A response header is the
// correlation id (v0), plus a tagged-field section (v1) when the exchange is
// flexible, except that ApiVersions responses always use v0 (KIP-511). No
// tagged header fields are defined; unknown ones are skipped, as in Kafka.
//
// # Parsing requests
//
// ParseRequest checks, in order: the 8 fixed header bytes (ErrTruncated,
// nothing known); the key is one kmsg knows (ErrUnknownAPIKey); the rest of
// the header (ErrTruncated, or ErrMalformed for a bad varint); the key is
// served (ErrUnknownAPIKey); the version is served and within kmsg's range
// (ErrUnsupportedVersion); the body decodes (ErrMalformed). Once the first
// check passes, the returned header carries key, version and correlation id,
// and once the third passes also the client id, so that the caller can
// answer or log even on error. Kafka's SocketServer closes the connection
// on any of these errors but one: ApiVersions at an unserved version, whose
// header is parsed with the header version of that (possibly unknown to
// kmsg) version, and which is answered with APIVersionsFallback encoded by
// AppendResponse, so that the client can retry with a version both sides
// know (KIP-511).
//
// # Trailing bytes
//
// Bytes after a decoded body are ignored, in requests and in responses.
// Apache Kafka does the same: RequestContext.parseRequest and the Java
// client's AbstractResponse.parseResponse decode the fields a version
// defines and never check that the buffer was consumed. Forward
// compatibility is not the reason (new fields come with a new version or
// as tagged fields); the reason is that any client which works against
// Kafka must work against weir, and a client that pads its requests would
// work against Kafka. Nothing in the trailing bytes is ever interpreted.
// Our own encoders are checked to be exact by the round-trip tests.
//
// # Buffer ownership
//
// Decoding copies no bulk data: []byte fields of the decoded message (the
// record batches of a Produce request or Fetch response, SASL tokens,
// member metadata) alias the frame, so the frame buffer belongs to the
// message from then on and the caller must neither reuse nor modify it
// while the message is in use. Strings are copied (ReadFrom, not
// UnsafeReadFrom): they are small, and names kept in the core's state must
// not keep a large frame alive.
//
// # Limits of the decoder
//
// Hostile input cannot make this package panic (fuzzed), but it can cost
// more than its size:
//
//   - CPU. kmsg v1.15.0 (api.go, internalReadTags) loops over the count of a
//     tagged-field section even after the input ran out, so a request of a
//     few bytes whose tag count is forged to 2^32-1 takes tens of seconds of
//     CPU before ReadFrom fails (BenchmarkKmsgForgedTagCount). At most one
//     such loop runs per message, and only in flexible versions. It cannot
//     be detected here without the message schemas; the fix is one
//     condition in kmsg (stop when the reader is exhausted) and belongs
//     there. Until then the driver should decode off the node's loop (it
//     does) and bound connections per client. The fuzz targets skip inputs
//     that could forge such a count.
//   - Memory. kmsg allocates each array's elements before reading them,
//     bounded only by the bytes left in the frame, so a hostile frame can
//     make the decoder allocate up to about 250 times its size (the largest
//     element struct of a request). socket.request.max.bytes bounds it.
package wire

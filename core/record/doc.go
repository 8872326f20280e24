// Package record holds the pure functions the broker applies to Kafka record
// batches (magic v2 only): parsing, produce-time validation, the few in-place
// rewrites a leader makes before storing a batch, crash-recovery scanning,
// and decoding for tests and the simulator.
//
// Batches are stored exactly as produced, so validation is the only gate in
// front of the log: Validate mirrors Apache Kafka's LogValidator for v2 and
// reports failures as errors wrapping a *kerr.Error (use errors.As or
// errors.Is to recover the Kafka error code; the wrapping adds detail for
// the produce response's error message). Scan, ScanOne and ParseHeader work
// on stored bytes and report ErrTorn or ErrCorrupt instead.
//
// Nothing here keeps state, reads the clock or spawns goroutines, and no
// input, however malformed, makes a function panic, except the mutators,
// whose batches must have passed Validate or Scan. Decompression is bounded
// so that a small batch cannot make the broker allocate without limit.
package record

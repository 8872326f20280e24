// Package trace is a run's event trace: one line per thing that happened,
// stamped with virtual time. Every line feeds a running hash (two runs of
// one seed must produce the same hash: that is the determinism test), the
// last lines are kept for the failure report, and in verbose mode every line
// is printed as it happens.
//
// The broker's own log is part of the trace: Handler is a slog.Handler that
// writes records into it with virtual time, never wall time.
package trace

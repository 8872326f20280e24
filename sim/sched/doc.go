// Package sched is the simulator's clock and event queue: one goroutine,
// one priority queue of events ordered by (virtual time, sequence number).
// An event is a function; running it may schedule more. Two events at the
// same time run in the order they were scheduled, so a run depends only on
// what was scheduled, never on the Go runtime.
package sched

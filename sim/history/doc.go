// Package history is what the simulated clients observed: every produce,
// every fetch (and offset lookup) result, every admin operation, each with
// its call and return times in virtual time. Checkers read it after the
// run; observers see each operation as it completes, to check invariants
// at once, when the trace still shows what led to a violation.
//
// An operation whose outcome the client never learned (a timeout, a reset)
// has Return = Infinity: it may or may not have taken effect.
package history

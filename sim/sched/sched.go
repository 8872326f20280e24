package sched

// Time is virtual nanoseconds since the start of the run.
type Time = int64

// Common durations in virtual nanoseconds.
const (
	Microsecond Time = 1000
	Millisecond Time = 1000 * Microsecond
	Second      Time = 1000 * Millisecond
)

// EpochMs is the true wall clock at virtual time zero (2025-01-01 UTC), in
// Unix milliseconds: the clients' clocks, and the nodes' before skew.
const EpochMs = 1735689600000

type event struct {
	at  Time
	seq uint64
	fn  func()
}

// Loop is the event queue and the virtual clock. The zero value is ready.
type Loop struct {
	now    Time
	seq    uint64
	events []event // a binary min-heap on (at, seq)
	ran    uint64
}

// Now is the current virtual time.
func (l *Loop) Now() Time { return l.now }

// Ran is how many events have run.
func (l *Loop) Ran() uint64 { return l.ran }

// At schedules fn at time t; a time in the past means now.
func (l *Loop) At(t Time, fn func()) {
	l.seq++
	l.push(event{at: max(t, l.now), seq: l.seq, fn: fn})
}

// After schedules fn d from now.
func (l *Loop) After(d Time, fn func()) { l.At(l.now+d, fn) }

// Run runs events in order until the queue is empty, the next event is
// after until, or stop returns true (checked after every event). It leaves
// the clock at the last event run, or at until if the queue ran dry first.
func (l *Loop) Run(until Time, stop func() bool) {
	for len(l.events) > 0 && l.events[0].at <= until {
		e := l.pop()
		l.now = e.at
		l.ran++
		e.fn()
		if stop != nil && stop() {
			return
		}
	}
	l.now = max(l.now, until)
}

func less(a, b *event) bool {
	return a.at < b.at || a.at == b.at && a.seq < b.seq
}

func (l *Loop) push(e event) {
	l.events = append(l.events, e)
	h := l.events
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(&h[i], &h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (l *Loop) pop() event {
	h := l.events
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = event{}
	h = h[:last]
	i := 0
	for {
		c := 2*i + 1
		if c >= len(h) {
			break
		}
		if c+1 < len(h) && less(&h[c+1], &h[c]) {
			c++
		}
		if !less(&h[c], &h[i]) {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	l.events = h
	return top
}

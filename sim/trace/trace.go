package trace

import (
	"fmt"
	"io"
	"strconv"

	"github.com/weirmq/weir/sim/sched"
)

// Trace records a run's events. It is not safe for concurrent use.
type Trace struct {
	loop    *sched.Loop
	hash    uint64
	ring    []string
	next    int
	verbose io.Writer
	buf     []byte
}

// New returns a trace that keeps the last keep lines and, if verbose is not
// nil, prints every line to it.
func New(loop *sched.Loop, keep int, verbose io.Writer) *Trace {
	return &Trace{loop: loop, hash: 14695981039346656037, ring: make([]string, 0, keep), verbose: verbose}
}

// Add records one line from component.
func (t *Trace) Add(component, msg string) {
	b := t.buf[:0]
	b = appendTime(b, t.loop.Now())
	b = append(b, ' ')
	b = append(b, component...)
	b = append(b, ": "...)
	b = append(b, msg...)
	t.buf = b
	for _, c := range b {
		t.hash ^= uint64(c)
		t.hash *= 1099511628211
	}
	t.hash ^= '\n'
	t.hash *= 1099511628211
	line := string(b)
	if cap(t.ring) > 0 {
		if len(t.ring) < cap(t.ring) {
			t.ring = append(t.ring, line)
		} else {
			t.ring[t.next] = line
			t.next = (t.next + 1) % len(t.ring)
		}
	}
	if t.verbose != nil {
		fmt.Fprintln(t.verbose, line)
	}
}

// Addf records a formatted line from component.
func (t *Trace) Addf(component, format string, args ...any) {
	t.Add(component, fmt.Sprintf(format, args...))
}

// Hash is the hash of every line so far.
func (t *Trace) Hash() uint64 { return t.hash }

// Tail returns the kept lines, oldest first.
func (t *Trace) Tail() []string {
	out := make([]string, 0, len(t.ring))
	out = append(out, t.ring[t.next:]...)
	return append(out, t.ring[:t.next]...)
}

// appendTime renders virtual nanoseconds as seconds with microseconds.
func appendTime(b []byte, ns int64) []byte {
	us := ns / 1000
	s := strconv.FormatInt(us/1_000_000, 10)
	for i := len(s); i < 4; i++ {
		b = append(b, ' ')
	}
	b = append(b, s...)
	b = append(b, '.')
	frac := strconv.FormatInt(us%1_000_000, 10)
	for i := len(frac); i < 6; i++ {
		b = append(b, '0')
	}
	return append(b, frac...)
}

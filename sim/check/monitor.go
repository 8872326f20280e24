package check

import (
	"fmt"
	"sort"

	"github.com/weirmq/weir/sim/history"
)

// Monitor checks invariants as each operation completes, so a violation
// stops the run while the trace still shows what led to it:
//
//   - a fetch's log start is at most its high watermark;
//   - no record is served at or above the high watermark;
//   - a fetch's records start at the offset asked for (or the batch
//     holding it) and run on without gaps;
//   - the high watermark a client sees never goes back: it is at least
//     what any response before the request began showed, and at least the
//     end of any produce acknowledged before it began — across crashes
//     and restarts too.
//
// The last is checked for fetches by topic id, and for names no delete
// was ever attempted on; the final checkers cover the rest.
type Monitor struct {
	h    *history.History
	fail func(Failure)
	// seen holds, per partition, completion times with the highest
	// watermark (or acknowledged end) known by then.
	seen map[monitorKey]*marks
}

type monitorKey struct {
	byID      bool
	id        history.TopicID
	topic     string
	partition int32
}

type marks struct {
	at  []int64 // completion times, ascending
	max []int64 // highest watermark known by at[i]
}

// NewMonitor returns a monitor reporting to fail.
func NewMonitor(h *history.History, fail func(Failure)) *Monitor {
	return &Monitor{h: h, fail: fail, seen: map[monitorKey]*marks{}}
}

func (m *Monitor) report(claim, format string, args ...any) {
	m.fail(Failure{Checker: "monitor", Claim: claim, Msg: fmt.Sprintf(format, args...)})
}

// deleted reports whether a delete of topic was ever attempted.
func (m *Monitor) deleted(topic string) bool {
	for _, a := range m.h.Admins {
		if a.Kind == history.DeleteTopic && a.Topic == topic {
			return true
		}
	}
	return false
}

func (m *Monitor) marks(k monitorKey) *marks {
	mk := m.seen[k]
	if mk == nil {
		mk = &marks{}
		m.seen[k] = mk
	}
	return mk
}

// add records that by time t the watermark was at least v.
func (mk *marks) add(t, v int64) {
	if n := len(mk.max); n > 0 {
		v = max(v, mk.max[n-1])
	}
	mk.at = append(mk.at, t)
	mk.max = append(mk.max, v)
}

// before returns the highest watermark known strictly before t.
func (mk *marks) before(t int64) int64 {
	i := sort.Search(len(mk.at), func(i int) bool { return mk.at[i] >= t })
	if i == 0 {
		return -1
	}
	return mk.max[i-1]
}

// Produced implements history.Observer.
func (m *Monitor) Produced(p *history.Produce) {
	if p.Outcome != history.OK || m.deleted(p.Topic) {
		return
	}
	m.marks(monitorKey{topic: p.Topic, partition: p.Partition}).add(p.Return, p.Offset+int64(len(p.Values)))
}

// Fetched implements history.Observer.
func (m *Monitor) Fetched(f *history.Fetch) {
	if f.ErrCode != 0 || f.HW < 0 {
		return
	}
	where := fmt.Sprintf("%s[%d]", f.Topic, f.Partition)
	if f.LogStart > f.HW {
		m.report(Claim1, "fetch %d by %s of %s: log start %d is above the high watermark %d", f.ID, f.Consumer, where, f.LogStart, f.HW)
	}
	next := f.Offset
	for _, r := range f.Records {
		if r.Offset >= f.HW {
			m.report(Claim2, "fetch %d by %s of %s at %d: record %d (%q) is at or above the high watermark %d",
				f.ID, f.Consumer, where, f.Offset, r.Offset, r.Value, f.HW)
			break
		}
		if r.Offset != next {
			m.report(Claim2, "fetch %d by %s of %s at %d: record at %d where %d was due", f.ID, f.Consumer, where, f.Offset, r.Offset, next)
			break
		}
		next++
	}
	k := monitorKey{topic: f.Topic, partition: f.Partition}
	if f.ByID {
		k = monitorKey{byID: true, id: f.TopicID, partition: f.Partition}
	} else if m.deleted(f.Topic) {
		return
	}
	mk := m.marks(k)
	if prev := mk.before(f.Call); f.HW < prev {
		m.report(Claim1, "fetch %d by %s of %s called at %s saw high watermark %d, but %d was seen or acknowledged before it began",
			f.ID, f.Consumer, where, seconds(f.Call), f.HW, prev)
	}
	mk.add(f.Return, f.HW)
}

package check

import (
	"fmt"

	"github.com/weirmq/weir/sim/history"
)

// Durability checks claim 1 on the final read: every record acknowledged
// with acks=1 or all, and attributed to an incarnation that still exists,
// is at its acknowledged offset. A record below the final log start is
// excused only if retention was entitled to delete it: retention.ms is set
// and a broker's clock passed the record's timestamp by more than that
// (a segment expires by its newest timestamp, which is at least the
// record's), or retention.bytes is set and the records that could have
// followed it in the log add up to at least that (a segment is deleted by
// size only while the segments after it hold that much). A deleted topic's
// records are exempt: its incarnation is not in the final metadata. A topic
// never deleted must still be there: if the final read did not find a
// partition holding acknowledged records, they were lost with it (its
// metadata or directory forgotten by a crash), however the partition's
// absence came about.
func Durability(parts []*partition, in Input) []Failure {
	var out []Failure
	fail := func(pt *partition, format string, args ...any) {
		if len(out) < maxReports {
			part := pt.Part
			out = append(out, Failure{Checker: "durability", Claim: Claim1, Msg: fmt.Sprintf(format, args...), Part: &part})
		}
	}
	for _, pt := range parts {
		if !pt.inFinal {
			if in.FinalRead && pt.open {
				pt.eachAcked(func(op *history.Produce, _ int64, v string) bool {
					fail(pt, "%s is missing from the final read, yet %q was acknowledged there to %s at %s and the topic was never deleted",
						pt.Part, v, op.Producer, seconds(op.Return))
					return false
				})
			}
			continue
		}
		ret := in.Retention(pt.Topic)
		pt.eachAcked(func(op *history.Produce, o int64, v string) bool {
			switch {
			case o < pt.finalStart:
				if why := entitled(pt, ret, in.MaxBrokerWallMs, op, o); why != "" {
					fail(pt, "%s offset %d (%q, acknowledged to %s) is gone below log start %d, but %s",
						pt.Part, o, v, op.Producer, pt.finalStart, why)
				}
			case o >= pt.finalEnd:
				fail(pt, "%s offset %d (%q, acknowledged to %s at %s) is past the end %d of the log",
					pt.Part, o, v, op.Producer, seconds(op.Return), pt.finalEnd)
			case pt.final[o] != v:
				fail(pt, "%s offset %d holds %q, but %q was acknowledged there to %s at %s",
					pt.Part, o, pt.final[o], v, op.Producer, seconds(op.Return))
			}
			return true
		})
	}
	return out
}

// eachAcked calls fn for every record acknowledged (acks ≥ 1) to this
// incarnation, with its offset, until fn returns false. acks=1 records
// count everywhere: producers send acks=1 only to topics with one replica,
// where Weir acknowledges a batch only once it is fsynced (see the
// workload's producer).
func (pt *partition) eachAcked(fn func(op *history.Produce, offset int64, value string) bool) {
	for _, ref := range pt.produces {
		op := ref.op
		if !ref.attributed || op.Outcome != history.OK || op.Acks == 0 {
			continue
		}
		for i, v := range op.Values {
			if !fn(op, op.Offset+int64(i), v) {
				return
			}
		}
	}
}

// entitled returns "" if retention may have deleted the record at offset o,
// else why not.
func entitled(pt *partition, ret Retention, maxWallMs int64, op *history.Produce, o int64) string {
	if ret.Ms >= 0 && maxWallMs-op.Timestamp > ret.Ms {
		return ""
	}
	if ret.Bytes >= 0 {
		var after int64
		for _, ref := range pt.produces {
			p := ref.op
			if p.Outcome != history.OK || p.Offset+int64(len(p.Values)) > o+1 || p == op {
				after += int64(p.Bytes)
			}
		}
		if after >= ret.Bytes {
			return ""
		}
		return fmt.Sprintf("at most %d bytes could follow it and retention.bytes is %d", after, ret.Bytes)
	}
	if ret.Ms >= 0 {
		return fmt.Sprintf("the node's clock reached only %dms past its timestamp and retention.ms is %d", maxWallMs-op.Timestamp, ret.Ms)
	}
	return "retention is off"
}

// Idempotence checks claim 3: each idempotent producer's values appear at
// one position each, in the order it sent them, whatever its retries.
func Idempotence(parts []*partition) []Failure {
	var out []Failure
	fail := func(pt *partition, format string, args ...any) {
		if len(out) < maxReports {
			part := pt.Part
			out = append(out, Failure{Checker: "idempotence", Claim: Claim3, Msg: fmt.Sprintf(format, args...), Part: &part})
		}
	}
	for _, pt := range parts {
		idem := map[string]*history.Produce{}
		for _, ref := range pt.produces {
			if ref.op.Idempotent {
				for _, v := range ref.op.Values {
					idem[v] = ref.op
				}
			}
		}
		seen := map[string]int64{}
		lastByProducer := map[string]int64{}
		for _, o := range sortedOffsets(pt.observed) {
			v := pt.observed[o]
			op := idem[v]
			if op == nil {
				continue
			}
			if prev, dup := seen[v]; dup {
				fail(pt, "%s wrote %q to %s at offsets %d and %d", op.Producer, v, pt.Part, prev, o)
				continue
			}
			seen[v] = o
			seq := valueSeq(op, v)
			if last, ok := lastByProducer[op.Producer]; ok && seq < last {
				fail(pt, "%s's %q (sent after the record at seq %d) is at offset %d, before it", op.Producer, v, last, o)
			}
			lastByProducer[op.Producer] = max(lastByProducer[op.Producer], seq)
		}
	}
	return out
}

// valueSeq is a value's position in its producer's sending order: values
// are "<producer>-<n>" with n counting up.
func valueSeq(op *history.Produce, v string) int64 {
	var n int64
	for i := len(op.Producer) + 1; i < len(v); i++ {
		n = n*10 + int64(v[i]-'0')
	}
	return n
}

func seconds(ns int64) string {
	if ns == history.Infinity {
		return "never"
	}
	return fmt.Sprintf("%.6fs", float64(ns)/1e9)
}

package check

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// explain says where Porcupine got stuck on a history that is not
// linearizable: the end of the longest order it found for a prefix, and
// the operations that could not come next (those that finished first are
// the likeliest culprits). The operations' inputs must be distinct
// pointers: they tell which operations the order placed.
func explain(m porcupine.Model, ops []porcupine.Operation, timeout time.Duration) string {
	_, info := porcupine.CheckOperationsVerbose(m, ops, timeout)
	var longest []porcupine.Operation
	for _, part := range info.PartialLinearizationsOperations() {
		for _, lin := range part {
			if len(lin) > len(longest) {
				longest = lin
			}
		}
	}
	placed := map[any]bool{}
	for _, o := range longest {
		placed[o.Input] = true
	}
	var rest []porcupine.Operation
	for _, o := range ops {
		if !placed[o.Input] {
			rest = append(rest, o)
		}
	}
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].Return < rest[j].Return })
	var sb strings.Builder
	fmt.Fprintf(&sb, "at most %d of %d operations can be ordered; the last so ordered:", len(longest), len(ops))
	for _, o := range longest[max(0, len(longest)-6):] {
		writeOp(&sb, m, o)
	}
	sb.WriteString("\n  and none of these can come next:")
	for _, o := range rest[:min(len(rest), 6)] {
		writeOp(&sb, m, o)
	}
	return sb.String()
}

func writeOp(sb *strings.Builder, m porcupine.Model, o porcupine.Operation) {
	fmt.Fprintf(sb, "\n    [%s, %s] %s", seconds(o.Call), seconds(o.Return), m.DescribeOperation(o.Input, o.Output))
}

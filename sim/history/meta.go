package history

import "github.com/weirmq/weir/sim/sched"

// MetaKind is the kind of a metadata operation.
type MetaKind uint8

const (
	MetaCreate MetaKind = iota
	MetaDelete
	MetaAddPartitions
)

func (k MetaKind) String() string {
	return [...]string{"create", "delete", "create-partitions"}[k]
}

// MetaOutcome is what the client learned of a metadata operation.
type MetaOutcome uint8

const (
	// MetaPending: no answer yet.
	MetaPending MetaOutcome = iota
	// MetaOK: acknowledged; the change must never be lost.
	MetaOK
	// MetaFailed: refused with an error that means nothing changed.
	MetaFailed
	// MetaUnknown: lost, timed out, or refused with an error after which
	// the change may still commit (NOT_CONTROLLER, REQUEST_TIMED_OUT).
	MetaUnknown
)

// MetaOp is one CreateTopics, DeleteTopics or CreatePartitions call of one
// topic, as a client saw it.
type MetaOp struct {
	Kind  MetaKind
	Topic string
	// Partitions: for a create, the partition count; for
	// create-partitions, the new total.
	Partitions int32
	Node       int
	Outcome    MetaOutcome
	Err        string
	Start, End sched.Time
}

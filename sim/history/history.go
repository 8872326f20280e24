package history

import (
	"encoding/base64"
	"math"
)

// Infinity is the return time of an operation whose outcome is unknown.
const Infinity = math.MaxInt64

// TopicID is a topic's id as Kafka assigns it; a recreated topic gets a new
// one, so records are tracked by id, not name.
type TopicID [16]byte

func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// Outcome is what a client learned about an operation.
type Outcome uint8

const (
	// Unknown: no answer (timeout, reset), or an error after which the
	// operation may still take effect.
	Unknown Outcome = iota
	// OK: acknowledged.
	OK
	// Failed: refused before it could take effect.
	Failed
)

func (o Outcome) String() string {
	return [...]string{"unknown", "ok", "failed"}[o]
}

// Produce is one batch sent by a producer, with all its retries: an
// idempotent producer resends the same batch until it learns the outcome.
type Produce struct {
	ID         int
	Client     int    // the client's index, for visualization
	Producer   string // who sent it, for per-producer order checks
	Idempotent bool
	Acks       int16
	Topic      string
	Partition  int32
	Values     []string
	Bytes      int   // the batch's size as stored
	Timestamp  int64 // the records' CreateTime, ms
	Call       int64
	Return     int64 // Infinity while the outcome is unknown
	Outcome    Outcome
	Offset     int64 // the base offset, when OK
	Err        string
}

// Rec is one record a fetch returned.
type Rec struct {
	Offset int64
	Value  string
}

// Fetch is what one partition of a fetch response (or a ListOffsets
// answer for the latest offset) told a consumer.
type Fetch struct {
	ID       int
	Client   int
	Consumer string
	Topic    string
	// TopicID is set when the request named the topic by id (Fetch v13+),
	// which pins the incarnation read.
	TopicID   TopicID
	ByID      bool
	Partition int32
	// Offset is the fetch offset asked for; -1 for a latest-offset lookup,
	// which reports only the high watermark.
	Offset int64
	Call   int64
	Return int64
	// ErrCode is the partition's Kafka error code.
	ErrCode  int16
	HW       int64
	LogStart int64
	Records  []Rec // records at or after Offset, in response order
	// LastEpoch is the leader epoch of the last batch returned (-1: none).
	LastEpoch int32
	// Behind: a whole batch before Offset came back, which a log read
	// starting at Offset never returns.
	Behind bool
	// Limited: the byte budget left for this partition may have been too
	// small for one batch, so an empty answer proves nothing.
	Limited bool
	// Final: part of the final read.
	Final bool
}

// AdminKind is an admin operation's kind.
type AdminKind uint8

const (
	CreateTopic AdminKind = iota + 1
	DeleteTopic
	CreatePartitions
)

func (k AdminKind) String() string {
	return [...]string{"", "create-topic", "delete-topic", "create-partitions"}[k]
}

// Admin is one admin operation on one topic.
type Admin struct {
	ID         int
	Kind       AdminKind
	Topic      string
	TopicID    TopicID // of a created topic, when OK
	Partitions int32
	Call       int64
	Return     int64
	Outcome    Outcome
	Err        string
}

// Observer is told of each operation as it completes.
type Observer interface {
	Produced(p *Produce)
	Fetched(f *Fetch)
}

// History collects a run's operations.
type History struct {
	Produces []*Produce
	Fetches  []*Fetch
	Admins   []*Admin
	Groups   []*GroupOp
	// Deliveries are what group members read, for the at-least-once
	// check of claim 5.
	Deliveries []Delivery
	// Clients names each client index.
	Clients   []string
	observers []Observer
	nextID    int
}

// Observe registers an observer.
func (h *History) Observe(o Observer) { h.observers = append(h.observers, o) }

// Client registers a client name and returns its index.
func (h *History) Client(name string) int {
	h.Clients = append(h.Clients, name)
	return len(h.Clients) - 1
}

func (h *History) id() int {
	h.nextID++
	return h.nextID
}

// StartProduce records a produce at its call; the caller fills in the
// outcome and calls EndProduce.
func (h *History) StartProduce(p *Produce) {
	p.ID = h.id()
	p.Return = Infinity
	h.Produces = append(h.Produces, p)
}

// EndProduce reports a produce whose outcome is now known.
func (h *History) EndProduce(p *Produce) {
	for _, o := range h.observers {
		o.Produced(p)
	}
}

// AddFetch records a completed fetch.
func (h *History) AddFetch(f *Fetch) {
	f.ID = h.id()
	h.Fetches = append(h.Fetches, f)
	for _, o := range h.observers {
		o.Fetched(f)
	}
}

// StartAdmin records an admin operation at its call.
func (h *History) StartAdmin(a *Admin) {
	a.ID = h.id()
	a.Return = Infinity
	h.Admins = append(h.Admins, a)
}

// GroupKind is a consumer group operation's kind.
type GroupKind uint8

const (
	Join GroupKind = iota + 1
	Sync
	Commit
	FetchOffsets
	Leave
	// Heartbeat is a KIP-848 ConsumerGroupHeartbeat: its member epoch -1
	// is a leave.
	Heartbeat
	// DeleteGroup is an admin's DeleteGroups of the group: all its
	// committed offsets go with it, whatever the topic.
	DeleteGroup
	// DeleteOffsets is an admin's OffsetDelete of some of the group's
	// partitions of Topic.
	DeleteOffsets
)

func (k GroupKind) String() string {
	return [...]string{"", "join", "sync", "commit", "fetch-offsets", "leave", "heartbeat", "delete-group", "delete-offsets"}[k]
}

// GroupOp is one consumer group request a member (or the group admin) got
// an answer to, or a commit or delete whose answer was lost after it was
// sent (Return is Infinity, and the ErrCode of the operation or of each of
// its partitions -1): it may or may not have taken effect.
type GroupOp struct {
	ID       int
	Client   int
	Member   string // the client's name
	Kind     GroupKind
	Group    string
	Topic    string
	MemberID string
	// Generation: the one a Join or Sync response gave, or the one a
	// Commit carried.
	Generation int32
	Leader     bool // Join: this member leads the generation
	Call       int64
	Return     int64
	ErrCode    int16
	// Parts: a Sync's assigned partitions (Offset unused); a Commit's
	// partitions with the offsets sent and each answer; a FetchOffsets'
	// partitions with the offsets returned; a Heartbeat's assignment, if
	// its response carried one (Assigned); a DeleteOffsets' partitions
	// with each answer (the request's error if it failed as a whole).
	Parts []GroupPart
	// Heartbeat only: the member epoch the request carried (Generation is
	// the response's), the partitions it reported owning, and whether
	// the response carried an assignment.
	SentEpoch int32
	Owned     []int32
	Assigned  bool
}

// GroupPart is one partition of a group operation.
type GroupPart struct {
	Partition int32
	Offset    int64
	ErrCode   int16
}

// Delivery is a range of offsets a group's member got past: records it
// read (From up to To, exclusive), or, with Skipped, a range it jumped over
// because the log no longer started below it (retention).
type Delivery struct {
	Group, Topic string
	Partition    int32
	From, To     int64
	Skipped      bool
}

// AddDelivery records what a group member read or skipped.
func (h *History) AddDelivery(d Delivery) { h.Deliveries = append(h.Deliveries, d) }

// AddGroup records a group operation.
func (h *History) AddGroup(g *GroupOp) {
	g.ID = h.id()
	h.Groups = append(h.Groups, g)
}

// FinalTopic is a topic as the metadata lists it once faults have stopped:
// the incarnations whose records the final check holds to account.
type FinalTopic struct {
	Name       string
	ID         TopicID
	Partitions int32
}

// Rebalances measures each complete rebalance of a consumer group in the
// history: from the first JoinGroup call among the members a generation
// admitted to the last SyncGroup answer that handed one of them its
// assignment, for generations whose every admitted member got one. It is
// the time users wait between consumers coming or going and the group
// consuming again (a new group's includes group.initial.rebalance.delay.ms).
func (h *History) Rebalances() []int64 {
	type genKey struct {
		group string
		gen   int32
	}
	type span struct {
		start, end     int64
		joined, synced map[string]bool
	}
	spans := map[genKey]*span{}
	var order []genKey
	get := func(k genKey) *span {
		s := spans[k]
		if s == nil {
			s = &span{start: -1, joined: map[string]bool{}, synced: map[string]bool{}}
			spans[k] = s
			order = append(order, k)
		}
		return s
	}
	for _, op := range h.Groups {
		if op.ErrCode != 0 {
			continue
		}
		k := genKey{op.Group, op.Generation}
		switch op.Kind {
		case Join:
			s := get(k)
			s.joined[op.MemberID] = true
			if s.start < 0 || op.Call < s.start {
				s.start = op.Call
			}
		case Sync:
			s := get(k)
			s.synced[op.MemberID] = true
			s.end = max(s.end, op.Return)
		}
	}
	var out []int64
	for _, k := range order {
		s := spans[k]
		if s.start < 0 || len(s.joined) == 0 || len(s.synced) != len(s.joined) {
			continue
		}
		complete := true
		for id := range s.joined {
			complete = complete && s.synced[id]
		}
		if complete {
			out = append(out, s.end-s.start)
		}
	}
	return out
}

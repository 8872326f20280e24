package raft

import (
	"errors"
	"fmt"

	"github.com/weirmq/weir/core/port"
)

// None is the NodeID of no node: no vote cast, no leader known.
const None port.NodeID = -1

// Entry is one log entry. An entry with nil Data is the empty entry a new
// leader appends to commit the entries of earlier terms.
type Entry struct {
	Index uint64
	Term  uint64
	Data  []byte
}

// HardState is what must survive a crash besides the log: the current term
// and the vote cast in it. The commit index is not persisted; a restarted
// node learns it again from the leader.
type HardState struct {
	Term uint64
	Vote port.NodeID
}

// Snapshot stands for every entry up to Index (whose term was Term); Data is
// the host's state machine at that point.
type Snapshot struct {
	Index uint64
	Term  uint64
	Data  []byte
}

// MsgType is the kind of a Message.
type MsgType uint8

const (
	MsgPreVote MsgType = iota + 1
	MsgPreVoteResp
	MsgVote
	MsgVoteResp
	// MsgApp carries entries after (Index, LogTerm) and the leader's commit.
	MsgApp
	// MsgAppResp acknowledges the log up to Index, or rejects an append at
	// Index with RejectHint, the follower's best guess of where logs match.
	// A learner also sends one, rejecting, to announce itself.
	MsgAppResp
	MsgHeartbeat
	MsgHeartbeatResp
	MsgSnap
)

var msgNames = [...]string{"", "PreVote", "PreVoteResp", "Vote", "VoteResp", "App", "AppResp",
	"Heartbeat", "HeartbeatResp", "Snap"}

func (t MsgType) String() string {
	if int(t) < len(msgNames) && t != 0 {
		return msgNames[t]
	}
	return fmt.Sprintf("MsgType(%d)", t)
}

// Message is one Raft message between nodes.
type Message struct {
	Type MsgType
	From port.NodeID
	To   port.NodeID
	Term uint64
	// LogTerm and Index: for MsgApp the entry the new entries follow; for
	// votes the candidate's last entry; for MsgAppResp the acknowledged or
	// rejected index.
	LogTerm    uint64
	Index      uint64
	Entries    []Entry
	Commit     uint64
	Reject     bool
	RejectHint uint64
	// RejectTerm is the term of the follower's entry at RejectHint, so the
	// leader can skip a whole term of mismatches at once.
	RejectTerm uint64
	Snapshot   *Snapshot
}

// ErrNotLeader is returned by Propose on a node that is not the leader.
var ErrNotLeader = errors.New("raft: not the leader")

// Ready is what the host must do next: persist Snapshot (it replaces the
// whole log), Entries (the first may overwrite the tail of the stored log
// from its index on) and HardState, in any order a crash cannot mix up
// (metalog writes the hard state first), and make all of it durable; only
// then send Messages and apply Committed (after restoring the state
// machine from Snapshot, when there is one); finally call Advance.
type Ready struct {
	HardState *HardState
	Snapshot  *Snapshot
	Entries   []Entry
	Messages  []Message
	Committed []Entry
}

// Empty reports whether the Ready asks for nothing.
func (rd Ready) Empty() bool {
	return rd.HardState == nil && rd.Snapshot == nil && len(rd.Entries) == 0 &&
		len(rd.Messages) == 0 && len(rd.Committed) == 0
}

// Role is a node's role in the current term.
type Role uint8

const (
	Follower Role = iota
	PreCandidate
	Candidate
	Leader
)

func (r Role) String() string {
	return [...]string{"follower", "pre-candidate", "candidate", "leader"}[r]
}

// Status is a read-only view of a node's Raft state.
type Status struct {
	ID        port.NodeID
	Role      Role
	Term      uint64
	Vote      port.NodeID
	Leader    port.NodeID
	Commit    uint64
	Applied   uint64
	LastIndex uint64
	// Stable is the last index known durable on this node.
	Stable uint64
}

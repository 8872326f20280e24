package raft

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/weirmq/weir/core/port"
)

// Messages travel between nodes in a compact binary form: a version byte,
// then the fields as varints in declaration order. Entry data of nil (the
// leader's empty entry) and of zero length are told apart, because they
// mean different things to the host.
const codecVersion = 1

// AppendMessage appends the encoding of m to b.
func AppendMessage(b []byte, m Message) []byte {
	b = append(b, codecVersion, byte(m.Type))
	b = binary.AppendVarint(b, int64(m.From))
	b = binary.AppendVarint(b, int64(m.To))
	for _, v := range []uint64{m.Term, m.LogTerm, m.Index, m.Commit, m.RejectHint, m.RejectTerm} {
		b = binary.AppendUvarint(b, v)
	}
	b = appendBool(b, m.Reject)
	b = binary.AppendUvarint(b, uint64(len(m.Entries)))
	for _, e := range m.Entries {
		b = binary.AppendUvarint(b, e.Index)
		b = binary.AppendUvarint(b, e.Term)
		b = appendData(b, e.Data)
	}
	b = appendBool(b, m.Snapshot != nil)
	if s := m.Snapshot; s != nil {
		b = binary.AppendUvarint(b, s.Index)
		b = binary.AppendUvarint(b, s.Term)
		b = appendData(b, s.Data)
	}
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendData writes len+1 (0 for nil) and the bytes.
func appendData(b, data []byte) []byte {
	if data == nil {
		return binary.AppendUvarint(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(data))+1)
	return append(b, data...)
}

var errTruncated = errors.New("raft: truncated message")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) nodeID() port.NodeID {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 || v < -1 || v > 1<<31-1 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return port.NodeID(v)
}

func (d *decoder) u8() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errTruncated
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bool() bool {
	switch d.u8() {
	case 0:
		return false
	case 1:
		return true
	}
	if d.err == nil {
		d.err = errors.New("raft: bad boolean")
	}
	return false
}

func (d *decoder) data() []byte {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	n--
	if n > uint64(len(d.b)) {
		d.err = errTruncated
		return nil
	}
	v := append([]byte{}, d.b[:n]...)
	d.b = d.b[n:]
	return v
}

// DecodeMessage parses an encoded message. It never panics on bad input.
func DecodeMessage(b []byte) (Message, error) {
	d := decoder{b: b}
	if v := d.u8(); d.err == nil && v != codecVersion {
		return Message{}, fmt.Errorf("raft: message version %d, want %d", v, codecVersion)
	}
	var m Message
	m.Type = MsgType(d.u8())
	if d.err == nil && (m.Type == 0 || m.Type > MsgSnap) {
		return Message{}, fmt.Errorf("raft: unknown message type %d", m.Type)
	}
	m.From, m.To = d.nodeID(), d.nodeID()
	for _, p := range []*uint64{&m.Term, &m.LogTerm, &m.Index, &m.Commit, &m.RejectHint, &m.RejectTerm} {
		*p = d.uvarint()
	}
	m.Reject = d.bool()
	n := d.uvarint()
	// Each entry takes at least three bytes: bound the count before
	// allocating so a forged count cannot exhaust memory.
	if d.err == nil && n > uint64(len(d.b))/3 {
		return Message{}, errTruncated
	}
	if n > 0 {
		m.Entries = make([]Entry, n)
	}
	for i := range m.Entries {
		m.Entries[i] = Entry{Index: d.uvarint(), Term: d.uvarint(), Data: d.data()}
	}
	if d.bool() {
		m.Snapshot = &Snapshot{Index: d.uvarint(), Term: d.uvarint(), Data: d.data()}
	}
	if d.err != nil {
		return Message{}, d.err
	}
	if len(d.b) != 0 {
		return Message{}, errors.New("raft: trailing bytes after message")
	}
	return m, validate(m)
}

// validate refuses messages no correct node sends, which Step's
// bookkeeping assumes away: an append's entries follow its index one by
// one, with terms that never go back, after its log term and not beyond
// its own term; a snapshot message carries a snapshot.
func validate(m Message) error {
	switch m.Type {
	case MsgSnap:
		if m.Snapshot == nil {
			return errors.New("raft: snapshot message without a snapshot")
		}
	case MsgApp:
		prevTerm := m.LogTerm
		for i, e := range m.Entries {
			if e.Index != m.Index+1+uint64(i) {
				return fmt.Errorf("raft: append after %d carries entry %d at position %d", m.Index, e.Index, i)
			}
			if e.Term < prevTerm || e.Term > m.Term {
				return fmt.Errorf("raft: append of term %d carries entry %d of term %d after term %d", m.Term, e.Index, e.Term, prevTerm)
			}
			prevTerm = e.Term
		}
	}
	if m.Type != MsgApp && len(m.Entries) > 0 || m.Type != MsgSnap && m.Snapshot != nil {
		return fmt.Errorf("raft: %s message carries entries or a snapshot", m.Type)
	}
	return nil
}

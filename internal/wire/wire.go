// Package wire is the one table of node messages: what one swha node sends
// another inside session messages, besides the records of the active's
// stream. Node messages travel with header TxnID 0 on the same session as
// objstore records; a message's first byte tells the two apart, because
// record kinds are small integers (1–12, objstore/record.go) and node
// message kinds start at 0x80. The announce (KindAnnounce) is the
// exception: it travels in the heartbeat's announce slot, not on the
// session, and is laid out the same way so that one table and one fuzz
// target cover it.
//
// Every message is its kind byte followed by fields: "uv" is an unsigned
// LEB128 varint (encoding/binary's Uvarint), a flags field is one byte and
// "str" is uv(length) followed by that many bytes. docs/WIRE.md lays out
// every kind on the wire, frames and records included.
//
// Parsers never panic; every error they return wraps ErrMalformed and names
// the message and the field at fault. A message with bytes after its last
// field is malformed, as is one of another kind.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Kind is a node message's first byte.
type Kind byte

// Node message kinds. 0x84–0x8f are reserved for further failover
// messages; 0x90–0xff are unassigned. A receiver drops a kind it does not
// know.
const (
	KindAck      Kind = 0x80 // standby -> active
	KindRefusal  Kind = 0x81 // standby -> active
	KindHello    Kind = 0x82 // standby -> active
	KindAnnounce Kind = 0x83 // either -> peer, in every heartbeat
)

// KindInfo describes one node message kind.
type KindInfo struct {
	Kind Kind
	Name string // as docs/WIRE.md and parse errors call it
	Dir  string // who sends it to whom
	Doc  string // what it says, in one line
}

// Kinds lists every node message kind, in kind order.
var Kinds = []KindInfo{
	{KindAck, "applied-ack", "standby → active", "the commits the standby has applied, or that it needs a snapshot"},
	{KindRefusal, "refusal", "standby → active", "the standby did not apply a committed transaction its version cannot hold"},
	{KindHello, "hello", "standby → active", "sent when a session starts: the standby's snapshot txn, applied seq and schemas"},
	{KindAnnounce, "announce", "either → peer", "in every heartbeat on every path: the sender's failover state, generation, priority and seq"},
}

// ErrMalformed wraps every error of this package's parsers.
var ErrMalformed = errors.New("wire: malformed node message")

// Peek reports whether b is a node message, that is whether its first byte
// is a Kind of this table, and which. It is false for an objstore record
// (first byte below 0x80), for an empty b and for a kind this build does not
// know (reserved or unassigned).
func Peek(b []byte) (Kind, bool) {
	if len(b) == 0 {
		return 0, false
	}
	switch k := Kind(b[0]); k {
	case KindAck, KindRefusal, KindHello, KindAnnounce:
		return k, true
	}
	return 0, false
}

// reader reads the fields of one message, keeping the first error. It is
// used as a value: a pointer would escape and cost an allocation per ack.
type reader struct {
	msg string // the message's name, for errors
	b   []byte
	err error
}

// newReader checks b's kind byte and reads what follows it.
func newReader(b []byte, kind Kind, msg string) reader {
	r := reader{msg: msg}
	switch {
	case len(b) == 0:
		r.err = fmt.Errorf("%s: kind: empty message: %w", msg, ErrMalformed)
	case Kind(b[0]) != kind:
		r.err = fmt.Errorf("%s: kind: %#x, want %#x: %w", msg, b[0], byte(kind), ErrMalformed)
	default:
		r.b = b[1:]
	}
	return r
}

func (r *reader) fail(field, why string) {
	r.err = fmt.Errorf("%s: %s: %s: %w", r.msg, field, why, ErrMalformed)
}

func (r *reader) uv(field string) uint64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		if k == 0 {
			r.fail(field, "truncated varint")
		} else {
			r.fail(field, "varint overflows 64 bits")
		}
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *reader) byte(field string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail(field, "missing")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// str reads uv(length) and that many bytes, at most max of them. The
// result aliases the message.
func (r *reader) str(field string, max int) []byte {
	n := r.uv(field)
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("%s: %s: %d bytes, %d left: %w", r.msg, field, n, len(r.b), ErrMalformed)
		return nil
	}
	if n > uint64(max) {
		r.err = fmt.Errorf("%s: %s: %d bytes, at most %d: %w", r.msg, field, n, max, ErrMalformed)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// end reports the first error, or trailing bytes.
func (r *reader) end() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%s: %d trailing bytes: %w", r.msg, len(r.b), ErrMalformed)
	}
	return r.err
}

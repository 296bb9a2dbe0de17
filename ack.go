package swha

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The applied-ack is the standby's only message to the active on the
// session (txn ID 0 in the session header):
//
//	0x80 kind | uv(snapshot txn) | uv(applied seq) | flags (1 byte)
//
// uv is an unsigned LEB128 varint. "applied seq" is the seq of the last
// commit the standby has applied (objstore.Store.AppliedSeq): every commit up
// to it is in the mirror. "snapshot txn" is the transaction ID of the
// snapshot the standby's state derives from, which lets the active ignore an
// acknowledgement that describes a state from before its latest snapshot
// (the seq of an older stream can be anything). Flag 0x01 (need snapshot)
// says the standby lost track of the stream (it refused or missed a
// transaction) and drops everything until a new snapshot; the other fields
// are then zero. Kind 0x80 cannot start an objstore record (kinds are small
// integers), so one session carries both directions without confusion.
const (
	ackKind         = 0x80
	ackNeedSnapshot = 0x01
)

type ack struct {
	snap, seq uint64
	flags     byte
}

func (a ack) append(b []byte) []byte {
	b = append(b, ackKind)
	b = binary.AppendUvarint(b, a.snap)
	b = binary.AppendUvarint(b, a.seq)
	return append(b, a.flags)
}

func parseAck(b []byte) (ack, error) {
	var a ack
	r, err := newMsgReader(b, ackKind)
	if err != nil {
		return a, err
	}
	a.snap, a.seq, a.flags = r.uv("snapshot txn"), r.uv("applied seq"), r.byte("flags")
	return a, r.end()
}

// errBadMessage wraps every parse error of the standby's messages (the
// applied-ack here, the refusal and hello of skew.go).
var errBadMessage = errors.New("malformed standby message")

// msgReader reads the fields of a standby message, keeping the first error.
type msgReader struct {
	b   []byte
	err error
}

// newMsgReader checks the message's kind byte and reads what follows it. It
// returns a value: a pointer would escape and cost an allocation per ack.
func newMsgReader(b []byte, kind byte) (msgReader, error) {
	if len(b) == 0 || b[0] != kind {
		return msgReader{}, fmt.Errorf("not a message of kind %#x: %w", kind, errBadMessage)
	}
	return msgReader{b: b[1:]}, nil
}

func (r *msgReader) uv(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.err = fmt.Errorf("%s: %w", what, errBadMessage)
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *msgReader) byte(what string) byte {
	if r.err == nil && len(r.b) == 0 {
		r.err = fmt.Errorf("%s: %w", what, errBadMessage)
	}
	if r.err != nil {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *msgReader) bytes(what string) []byte {
	n := r.uv(what)
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = fmt.Errorf("%s: %d bytes, %d left: %w", what, n, len(r.b), errBadMessage)
	}
	if r.err != nil {
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// end reports the first error, or trailing bytes.
func (r *msgReader) end() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes: %w", len(r.b), errBadMessage)
	}
	return r.err
}

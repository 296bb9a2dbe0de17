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

func isAck(b []byte) bool { return len(b) > 0 && b[0] == ackKind }

var errBadAck = errors.New("malformed applied-ack")

func parseAck(b []byte) (ack, error) {
	var a ack
	if !isAck(b) {
		return a, errBadAck
	}
	b = b[1:]
	var k int
	if a.snap, k = binary.Uvarint(b); k <= 0 {
		return a, fmt.Errorf("snapshot txn: %w", errBadAck)
	}
	b = b[k:]
	if a.seq, k = binary.Uvarint(b); k <= 0 {
		return a, fmt.Errorf("applied seq: %w", errBadAck)
	}
	b = b[k:]
	if len(b) != 1 {
		return a, fmt.Errorf("%d bytes after the seqs: %w", len(b), errBadAck)
	}
	a.flags = b[0]
	return a, nil
}

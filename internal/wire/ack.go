package wire

import "encoding/binary"

// The applied-ack is the standby's acknowledgement of what it has applied:
//
//	0x80 | uv(snapshot txn) | uv(applied seq) | flags(1)
//
// "applied seq" is the seq of the last commit the standby has applied
// (objstore.Store.AppliedSeq): every commit up to it is in the mirror.
// "snapshot txn" is the transaction ID of the snapshot the standby's state
// derives from, which lets the active ignore an acknowledgement that
// describes a state from before its latest snapshot (the seq of an older
// stream can be anything). Flag AckNeedSnapshot says the standby lost track
// of the stream (it refused or missed a transaction) and drops everything
// until a new snapshot; the other fields are then zero. Other flag bits are
// sent as zero; a parser keeps them as they came.

// AckNeedSnapshot is the applied-ack flag of a standby that needs a
// snapshot.
const AckNeedSnapshot = 0x01

// Ack is an applied-ack (KindAck).
type Ack struct {
	Snap, Seq uint64 // snapshot txn, applied seq
	Flags     byte
}

// Append appends the encoded ack to b.
func (a Ack) Append(b []byte) []byte {
	b = append(b, byte(KindAck))
	b = binary.AppendUvarint(b, a.Snap)
	b = binary.AppendUvarint(b, a.Seq)
	return append(b, a.Flags)
}

// ParseAck decodes an applied-ack. It does not allocate unless it fails.
func ParseAck(b []byte) (Ack, error) {
	r := newReader(b, KindAck, "applied-ack")
	var a Ack
	a.Snap = r.uv("snapshot txn")
	a.Seq = r.uv("applied seq")
	a.Flags = r.byte("flags")
	if err := r.end(); err != nil {
		return Ack{}, err
	}
	return a, nil
}

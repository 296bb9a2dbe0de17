package wire

import (
	"encoding/binary"
	"unicode/utf8"
)

// A refusal says the standby did not apply a committed transaction:
//
//	0x81 | uv(snapshot txn) | uv(seq) | uv(txn) | flags(1) | uv(object) | str(error)
//
// The standby did not apply transaction txn (commit seq seq, on the stream
// of snapshot "snapshot txn") because a value does not fit its version of a
// type. Flag 0x01 marks a refused snapshot (Refusal.Snapshot); other flag
// bits are sent as zero and ignored. object names the object at fault (0 if
// none); error is the standby's error text, at most MaxRefusalText bytes.
// Refusals are sent before the applied-ack that covers their seq, so a
// synchronous commit waiting for that seq sees the refusal first.

// MaxRefusalText bounds a refusal's error text, in bytes.
const MaxRefusalText = 1024

const refusalSnapshot = 0x01

// Refusal is a refusal (KindRefusal).
type Refusal struct {
	Snap, Seq, Txn, Object uint64 // snapshot txn, commit seq, objstore txn ID, object ID
	Snapshot               bool   // the refused transaction was a snapshot
	Text                   string // the standby's error
}

// Append appends the encoded refusal to b. A Text longer than
// MaxRefusalText is cut to at most that many bytes, before the rune that
// would cross the limit.
func (r Refusal) Append(b []byte) []byte {
	b = append(b, byte(KindRefusal))
	b = binary.AppendUvarint(b, r.Snap)
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendUvarint(b, r.Txn)
	var flags byte
	if r.Snapshot {
		flags |= refusalSnapshot
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, r.Object)
	text := truncate(r.Text, MaxRefusalText)
	b = binary.AppendUvarint(b, uint64(len(text)))
	return append(b, text...)
}

// truncate cuts s to at most n bytes without splitting a rune (if s is
// valid UTF-8 so is the result; invalid bytes are cut anywhere).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for i := n; i > n-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:n]
}

// ParseRefusal decodes a refusal. An error text longer than MaxRefusalText
// is malformed: no sender writes one.
func ParseRefusal(b []byte) (Refusal, error) {
	r := newReader(b, KindRefusal, "refusal")
	var f Refusal
	f.Snap = r.uv("snapshot txn")
	f.Seq = r.uv("seq")
	f.Txn = r.uv("txn")
	f.Snapshot = r.byte("flags")&refusalSnapshot != 0
	f.Object = r.uv("object")
	text := r.str("error text", MaxRefusalText)
	if err := r.end(); err != nil {
		return Refusal{}, err
	}
	f.Text = string(text)
	return f, nil
}

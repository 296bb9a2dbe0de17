package wire

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/swha/swha/objstore"
)

// The hello is what a standby sends whenever a session starts:
//
//	0x82 | uv(snapshot txn) | uv(applied seq) | uv(n) | n × str(schema)
//
// It carries where the standby's state stands, the snapshot it derives from
// and its applied seq (both 0 for an empty store), so that the active can
// replay the commits after it instead of sending a snapshot; and the
// standby's registered schemas, each objstore.Schema.AppendBinary, so that
// the active can say before the first record what of its version the
// standby will not carry.

// Hello is a hello (KindHello).
type Hello struct {
	Snap, Applied uint64 // snapshot txn, applied seq
	Schemas       []*objstore.Schema
}

// Append appends the encoded hello to b. Every schema must be non-nil.
func (h Hello) Append(b []byte) []byte {
	b = append(b, byte(KindHello))
	b = binary.AppendUvarint(b, h.Snap)
	b = binary.AppendUvarint(b, h.Applied)
	b = binary.AppendUvarint(b, uint64(len(h.Schemas)))
	for _, s := range h.Schemas {
		enc := s.AppendBinary(nil)
		b = binary.AppendUvarint(b, uint64(len(enc)))
		b = append(b, enc...)
	}
	return b
}

// ParseHello decodes a hello, each schema with objstore.ParseSchema. A
// schema that does not parse is malformed: the error wraps ErrMalformed and
// ParseSchema's error. A schema's Fingerprint is of its bytes as they came
// (objstore.ParseSchema), so a schema sent with non-minimal varints parses
// with another fingerprint than the same schema re-encoded.
func ParseHello(b []byte) (Hello, error) {
	r := newReader(b, KindHello, "hello")
	var h Hello
	h.Snap = r.uv("snapshot txn")
	h.Applied = r.uv("applied seq")
	n := r.uv("schema count")
	if r.err == nil && n > uint64(len(r.b)) {
		// Each schema takes at least its length byte.
		r.err = fmt.Errorf("hello: schema count: %d schemas in %d bytes: %w", n, len(r.b), ErrMalformed)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		enc := r.str(fmt.Sprintf("schema %d", i), math.MaxInt)
		if r.err != nil {
			break
		}
		sc, err := objstore.ParseSchema(enc)
		if err != nil {
			return Hello{}, fmt.Errorf("hello: schema %d: %w: %w", i, ErrMalformed, err)
		}
		h.Schemas = append(h.Schemas, sc)
	}
	if err := r.end(); err != nil {
		return Hello{}, err
	}
	return h, nil
}

package objstore

import (
	"reflect"
	"testing"
)

// FuzzParseSchema: the schema decoder never panics, and what it accepts
// re-encodes to a schema that decodes to the same thing.
func FuzzParseSchema(f *testing.F) {
	r := testRegistry(f)
	if err := r.Seal(); err != nil {
		f.Fatal(err)
	}
	for _, name := range r.Names() {
		f.Add(r.Schema(name).AppendBinary(nil))
	}
	f.Add([]byte{schemaVersion, 1, 'x', byte(KindStruct), 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSchema(b)
		if err != nil {
			return
		}
		again, err := ParseSchema(s.AppendBinary(nil))
		if err != nil {
			t.Fatalf("re-encoded schema rejected: %v", err)
		}
		s.Fingerprint, again.Fingerprint = 0, 0
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("schema changed in a round trip")
		}
	})
}

// FuzzApply: a standby fed arbitrary records never panics, and whatever it
// accepts leaves it consistent: every object it holds can be read and every
// pointer it holds points at an object of the store.
func FuzzApply(f *testing.F) {
	p := newPair(f, 0)
	hop := &NextHop{Iface: "e"}
	h := &Holder{}
	tx, _ := p.act.Begin()
	_, _ = tx.Create(hop)
	_, _ = tx.Create(h)
	_, _ = tx.Create(&Route{NextHop: hop, Communities: []uint32{1}})
	_, _ = tx.Create(fullAllKinds([]*NextHop{hop, hop}, h))
	_ = tx.Intent([]byte("i"))
	_ = tx.Commit()
	tx, _ = p.act.Begin()
	_ = tx.Delete(hop)
	_ = tx.Abort()
	var stream []byte
	for _, rec := range p.recs {
		f.Add(rec, []byte(nil))
		stream = append(stream, byte(len(rec)))
		stream = append(stream, rec...)
	}
	f.Add([]byte{recCommit, 1, 1, 0}, stream)
	f.Fuzz(func(t *testing.T, rec, prefix []byte) {
		s, err := NewStore(testRegistry(t), Config{Standby: true, MaxTxnBytes: 1 << 16})
		if err != nil {
			t.Fatal(err)
		}
		// prefix holds length-prefixed records applied first, so the fuzzer
		// can reach states with announced types and staged transactions.
		for len(prefix) > 0 {
			n := int(prefix[0])
			prefix = prefix[1:]
			if n > len(prefix) {
				n = len(prefix)
			}
			_ = s.Apply(prefix[:n])
			prefix = prefix[n:]
		}
		_ = s.Apply(rec)
		_ = dump(s)
		s.DiscardPartial()
	})
}

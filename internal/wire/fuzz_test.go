package wire

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/swha/swha/objstore"
)

// FuzzParse: any input parses by its Peek kind or fails with ErrMalformed,
// never panics; what parses re-encodes to bytes that parse to the same
// message, and that encoding is a fixed point. Every parser refuses a
// message of another kind.
func FuzzParse(f *testing.F) {
	// More seeds in testdata/fuzz/FuzzParse.
	f.Add(Ack{Snap: 1, Seq: 2}.Append(nil))
	f.Add(Refusal{Snap: 1, Seq: 2, Txn: 3, Object: 4, Snapshot: true, Text: "x"}.Append(nil))
	f.Add(Hello{Snap: 1, Applied: 2, Schemas: testSchemas(f)}.Append(nil))
	f.Add(Announce{NodeID: 1, Incarnation: 2, Generation: 3, State: 3, Priority: 4, Flags: AnnounceAccepting, Seq: 5}.Append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, ok := Peek(b)
		if len(b) > 0 && b[0] < 0x80 && ok {
			t.Fatalf("Peek(%#x…) = %#x: a record kind read as a node message", b[0], byte(kind))
		}
		ack, errAck := ParseAck(b)
		ref, errRef := ParseRefusal(b)
		hel, errHel := ParseHello(b)
		ann, errAnn := ParseAnnounce(b)
		for _, err := range []error{errAck, errRef, errHel, errAnn} {
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
		}
		var errs = map[Kind]error{KindAck: errAck, KindRefusal: errRef, KindHello: errHel, KindAnnounce: errAnn}
		for k, err := range errs {
			if err == nil && (!ok || k != kind) {
				t.Fatalf("parser of %#x accepted a message Peek says is %#x, %v", byte(k), byte(kind), ok)
			}
		}
		if !ok || errs[kind] != nil {
			return
		}
		switch kind {
		case KindAck:
			enc := ack.Append(nil)
			again, err := ParseAck(enc)
			if err != nil || again != ack {
				t.Fatalf("ack %+v re-encoded as % x parses as %+v, %v", ack, enc, again, err)
			}
			if enc2 := again.Append(nil); !bytes.Equal(enc, enc2) {
				t.Fatalf("ack encoding not stable: % x then % x", enc, enc2)
			}
		case KindRefusal:
			enc := ref.Append(nil)
			again, err := ParseRefusal(enc)
			if err != nil || again != ref {
				t.Fatalf("refusal %+v re-encoded as % x parses as %+v, %v", ref, enc, again, err)
			}
			if enc2 := again.Append(nil); !bytes.Equal(enc, enc2) {
				t.Fatalf("refusal encoding not stable: % x then % x", enc, enc2)
			}
		case KindHello:
			enc := hel.Append(nil)
			again, err := ParseHello(enc)
			if err != nil || !sameHello(hel, again) {
				t.Fatalf("hello %+v re-encoded as % x parses as %+v, %v", hel, enc, again, err)
			}
			if enc2 := again.Append(nil); !bytes.Equal(enc, enc2) {
				t.Fatalf("hello encoding not stable: % x then % x", enc, enc2)
			}
			// Re-encoded, each fingerprint is the one of the canonical
			// encoding, the one a registry computes.
			for i, s := range again.Schemas {
				if c, err := objstore.ParseSchema(s.AppendBinary(nil)); err != nil || c.Fingerprint != s.Fingerprint {
					t.Fatalf("hello schema %d: fingerprint %#x, canonical %v, %v", i, s.Fingerprint, c, err)
				}
			}
		case KindAnnounce:
			if len(b) > MaxAnnounce {
				t.Fatalf("announce of %d bytes parsed, more than MaxAnnounce", len(b))
			}
			enc := ann.Append(nil)
			again, err := ParseAnnounce(enc)
			if err != nil || again != ann {
				t.Fatalf("announce %+v re-encoded as % x parses as %+v, %v", ann, enc, again, err)
			}
			if enc2 := again.Append(nil); !bytes.Equal(enc, enc2) {
				t.Fatalf("announce encoding not stable: % x then % x", enc, enc2)
			}
		default:
			t.Fatalf("Peek returned %#x, which no parser takes", byte(kind))
		}
	})
}

// sameHello compares two hellos field by field. A schema's Fingerprint is
// left out: it is of the bytes as received, which may have been
// non-minimal varints that re-encode shorter.
func sameHello(a, b Hello) bool {
	if a.Snap != b.Snap || a.Applied != b.Applied || len(a.Schemas) != len(b.Schemas) {
		return false
	}
	for i := range a.Schemas {
		x, y := a.Schemas[i], b.Schemas[i]
		if x.Name != y.Name || !reflect.DeepEqual(x.Root, y.Root) {
			return false
		}
	}
	return true
}

// TestSeedCorpus: the checked-in seeds hold a valid encoding of each kind
// (so the fuzzer starts from the real layouts) and malformed ones.
func TestSeedCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/fuzz/FuzzParse/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed corpus: %v", err)
	}
	valid := map[Kind]int{}
	bad := 0
	for _, name := range files {
		b := readSeed(t, name)
		k, ok := Peek(b)
		var err error
		switch {
		case !ok:
			err = ErrMalformed
		case k == KindAck:
			_, err = ParseAck(b)
		case k == KindRefusal:
			_, err = ParseRefusal(b)
		case k == KindHello:
			_, err = ParseHello(b)
		case k == KindAnnounce:
			_, err = ParseAnnounce(b)
		}
		if err == nil {
			valid[k]++
		} else {
			bad++
		}
	}
	for _, k := range Kinds {
		if valid[k.Kind] == 0 {
			t.Errorf("no valid %s (%#x) in the seed corpus", k.Name, byte(k.Kind))
		}
	}
	if bad == 0 {
		t.Error("no malformed input in the seed corpus")
	}
}

// readSeed reads a corpus file of one []byte in "go test fuzz v1" format.
func readSeed(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a go test fuzz v1 file of one value", name)
	}
	q, ok1 := strings.CutPrefix(lines[1], "[]byte(")
	q, ok2 := strings.CutSuffix(q, ")")
	if !ok1 || !ok2 {
		t.Fatalf("%s: not a []byte value", name)
	}
	s, err := strconv.Unquote(q)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return []byte(s)
}

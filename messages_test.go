package swha

import (
	"errors"
	"testing"

	"github.com/swha/swha/objstore"
)

// TestStandbyMessages: the standby's messages round-trip, and every
// truncation, trailing byte or wrong kind is a malformed-message error.
func TestStandbyMessages(t *testing.T) {
	reg := testRegistry(t)
	must(t, reg.Seal())
	a := ack{snap: 1 << 40, seq: 99, flags: ackNeedSnapshot}
	r := refusal{snap: 7, seq: 8, txn: 9, object: 10, snapshot: true, text: "Route.Pref: value -1"}
	h := appendHello(nil, 3, 4, reg)
	for _, c := range []struct {
		name  string
		enc   []byte
		parse func([]byte) error
	}{
		{"ack", a.append(nil), func(b []byte) error {
			got, err := parseAck(b)
			if err == nil && got != a {
				t.Errorf("ack %+v, want %+v", got, a)
			}
			return err
		}},
		{"refusal", r.append(nil), func(b []byte) error {
			got, err := parseRefusal(b)
			if err == nil && got != r {
				t.Errorf("refusal %+v, want %+v", got, r)
			}
			return err
		}},
		{"hello", h, func(b []byte) error {
			got, err := parseHello(b)
			if err == nil && (got.snap != 3 || got.applied != 4 || len(got.schemas) != len(reg.Names())) {
				t.Errorf("hello %+v", got)
			}
			return err
		}},
	} {
		if err := c.parse(c.enc); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for n := 0; n < len(c.enc); n++ {
			if err := c.parse(c.enc[:n]); !errors.Is(err, errBadMessage) && !errors.Is(err, objstore.ErrCorruptSchema) {
				t.Fatalf("%s cut at %d: %v", c.name, n, err)
			}
		}
		if err := c.parse(append(c.enc[:len(c.enc):len(c.enc)], 0)); !errors.Is(err, errBadMessage) {
			t.Fatalf("%s with a trailing byte: %v", c.name, err)
		}
		wrong := append([]byte{0x7f}, c.enc[1:]...)
		if err := c.parse(wrong); !errors.Is(err, errBadMessage) {
			t.Fatalf("%s of the wrong kind: %v", c.name, err)
		}
	}
}

// TestParseAckAllocates: the active parses an ack per applied batch; a
// reader that escaped to the heap cost an allocation each.
func TestParseAckAllocates(t *testing.T) {
	b := ack{snap: 7, seq: 1 << 33, flags: ackNeedSnapshot}.append(nil)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := parseAck(b); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("parseAck: %v allocations, want 0", n)
	}
}

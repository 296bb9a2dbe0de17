package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/swha/swha/objstore"
)

type testHop struct {
	Addr  netip.Addr
	Iface string
}

type testRoute struct {
	Prefix      netip.Prefix
	NextHop     *testHop
	Backups     []*testHop
	Metric      uint32 `swha:"metric,was=cost"`
	Communities []uint32
	Tags        map[string][2]int16
}

// testSchemas are the schemas of a sealed registry, as a standby sends them.
func testSchemas(t testing.TB) []*objstore.Schema {
	t.Helper()
	reg := objstore.NewRegistry()
	if err := reg.Register("hop", testHop{}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register("route", testRoute{}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Seal(); err != nil {
		t.Fatal(err)
	}
	var out []*objstore.Schema
	for _, name := range reg.Names() {
		out = append(out, reg.Schema(name))
	}
	return out
}

func sameSchemas(a, b []*objstore.Schema) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Fingerprint != b[i].Fingerprint ||
			!bytes.Equal(a[i].AppendBinary(nil), b[i].AppendBinary(nil)) {
			return false
		}
	}
	return true
}

// cases are one message of each kind with the parse that checks it.
func cases(t *testing.T) []struct {
	kind  Kind
	enc   []byte
	parse func([]byte) error
} {
	a := Ack{Snap: 1 << 40, Seq: 99, Flags: AckNeedSnapshot}
	r := Refusal{Snap: 7, Seq: 8, Txn: 9, Object: 1<<63 | 10, Snapshot: true, Text: "Route.Pref: value -1 does not fit uint8"}
	h := Hello{Snap: 3, Applied: 1<<64 - 1, Schemas: testSchemas(t)}
	an := Announce{NodeID: 1<<64 - 1, Incarnation: 9, Generation: 1 << 40, State: 3, Priority: 200,
		Flags: AnnounceAccepting | AnnounceHandoff, Seq: 12345, HandoffSeq: 12345}
	return []struct {
		kind  Kind
		enc   []byte
		parse func([]byte) error
	}{
		{KindAck, a.Append(nil), func(b []byte) error {
			got, err := ParseAck(b)
			if err == nil && got != a {
				t.Errorf("ack %+v, want %+v", got, a)
			}
			return err
		}},
		{KindRefusal, r.Append(nil), func(b []byte) error {
			got, err := ParseRefusal(b)
			if err == nil && got != r {
				t.Errorf("refusal %+v, want %+v", got, r)
			}
			return err
		}},
		{KindHello, h.Append(nil), func(b []byte) error {
			got, err := ParseHello(b)
			if err == nil && (got.Snap != h.Snap || got.Applied != h.Applied || !sameSchemas(got.Schemas, h.Schemas)) {
				t.Errorf("hello %+v, want %+v", got, h)
			}
			return err
		}},
		{KindAnnounce, an.Append(nil), func(b []byte) error {
			got, err := ParseAnnounce(b)
			if err == nil && got != an {
				t.Errorf("announce %+v, want %+v", got, an)
			}
			return err
		}},
	}
}

// TestMessages: each kind round-trips, and every truncation, a trailing
// byte or another kind byte is malformed, never a panic.
func TestMessages(t *testing.T) {
	for _, c := range cases(t) {
		if k, ok := Peek(c.enc); !ok || k != c.kind {
			t.Fatalf("Peek(%#x message) = %#x, %v", byte(c.kind), byte(k), ok)
		}
		if err := c.parse(c.enc); err != nil {
			t.Fatalf("%#x: %v", byte(c.kind), err)
		}
		for n := 0; n < len(c.enc); n++ {
			if err := c.parse(c.enc[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%#x cut at %d of %d: %v", byte(c.kind), n, len(c.enc), err)
			}
		}
		if err := c.parse(append(c.enc[:len(c.enc):len(c.enc)], 0)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "trailing") {
			t.Fatalf("%#x with a trailing byte: %v", byte(c.kind), err)
		}
		for _, k := range []byte{0, 1, 12, 0x7f, 0x80, 0x81, 0x82, 0x83, 0xff} {
			if Kind(k) == c.kind {
				continue
			}
			wrong := append([]byte{k}, c.enc[1:]...)
			if err := c.parse(wrong); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "kind") {
				t.Fatalf("%#x message with kind byte %#x: %v", byte(c.kind), k, err)
			}
		}
	}
}

// TestLayout pins the bytes: old and new builds must read each other.
func TestLayout(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want []byte
	}{
		{"ack", Ack{Snap: 300, Seq: 1, Flags: AckNeedSnapshot}.Append(nil), []byte{0x80, 0xac, 0x02, 0x01, 0x01}},
		{"refusal", Refusal{Snap: 1, Seq: 2, Txn: 3, Object: 4, Snapshot: true, Text: "no"}.Append(nil),
			[]byte{0x81, 1, 2, 3, 0x01, 4, 2, 'n', 'o'}},
		{"refusal, no snapshot", Refusal{Seq: 128}.Append(nil), []byte{0x81, 0, 0x80, 0x01, 0, 0, 0, 0}},
		{"hello, empty", Hello{Snap: 5, Applied: 6}.Append(nil), []byte{0x82, 5, 6, 0}},
		{"announce", Announce{NodeID: 1, Incarnation: 2, Generation: 300, State: 3, Priority: 100, Flags: AnnounceAccepting, Seq: 7, HandoffSeq: 0}.Append(nil),
			[]byte{0x83, 1, 2, 0xac, 0x02, 3, 100, 0x01, 7, 0}},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: % x, want % x", c.name, c.got, c.want)
		}
	}
	sc := testSchemas(t)[0]
	enc := sc.AppendBinary(nil)
	want := append([]byte{0x82, 0, 0, 1, byte(len(enc))}, enc...)
	if got := (Hello{Schemas: []*objstore.Schema{sc}}).Append(nil); !bytes.Equal(got, want) {
		t.Errorf("hello with one schema: % x, want % x", got, want)
	}
}

// TestRefusalText: a long error text is cut to MaxRefusalText bytes without
// splitting a rune, and a parser refuses a longer one.
func TestRefusalText(t *testing.T) {
	for _, unit := range []string{"a", "é", "€", "𝄞", "a€"} {
		text := strings.Repeat(unit, 2*MaxRefusalText/len(unit))
		got, err := ParseRefusal(Refusal{Text: text}.Append(nil))
		if err != nil {
			t.Fatalf("%q: %v", unit, err)
		}
		if len(got.Text) > MaxRefusalText || len(got.Text) <= MaxRefusalText-utf8.UTFMax ||
			!utf8.ValidString(got.Text) || !strings.HasPrefix(text, got.Text) {
			t.Fatalf("%q: cut to %d bytes, valid %v", unit, len(got.Text), utf8.ValidString(got.Text))
		}
	}
	exact := strings.Repeat("x", MaxRefusalText)
	if got, err := ParseRefusal(Refusal{Text: exact}.Append(nil)); err != nil || got.Text != exact {
		t.Fatalf("text of exactly MaxRefusalText: %d bytes, %v", len(got.Text), err)
	}
	// Invalid UTF-8 is cut at the limit.
	bad := strings.Repeat("\x80", 2*MaxRefusalText)
	if got, err := ParseRefusal(Refusal{Text: bad}.Append(nil)); err != nil || len(got.Text) != MaxRefusalText {
		t.Fatalf("invalid UTF-8: %d bytes, %v", len(got.Text), err)
	}
	long := []byte{0x81, 0, 0, 0, 0, 0, 0x81, 0x08} // 1025 bytes of text
	long = append(long, strings.Repeat("x", MaxRefusalText+1)...)
	if _, err := ParseRefusal(long); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "error text") {
		t.Fatalf("text over MaxRefusalText: %v", err)
	}
}

// TestRefusalFlags: flag bits other than the snapshot's are ignored.
func TestRefusalFlags(t *testing.T) {
	for flags, want := range map[byte]bool{0x00: false, 0x01: true, 0xfe: false, 0xff: true} {
		r, err := ParseRefusal([]byte{0x81, 0, 0, 0, flags, 0, 0})
		if err != nil || r.Snapshot != want {
			t.Errorf("flags %#x: %+v, %v", flags, r, err)
		}
	}
}

// TestHelloErrors: a bad schema or count is malformed and says which.
func TestHelloErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		enc   []byte
		field string
		is    error
	}{
		{"count beyond input", []byte{0x82, 0, 0, 3, 0, 0}, "schema count", ErrMalformed},
		// objstore.ParseSchema wraps ErrCorrupt, not ErrCorruptSchema, when
		// the input ends before the version byte.
		{"empty schema", []byte{0x82, 0, 0, 1, 0}, "schema 0", ErrMalformed},
		{"schema version", []byte{0x82, 0, 0, 1, 1, 9}, "schema 0", objstore.ErrCorruptSchema},
		{"schema length", []byte{0x82, 0, 0, 1, 5, 1}, "schema 0", ErrMalformed},
		{"overlong varint", []byte{0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0}, "snapshot txn", ErrMalformed},
	} {
		_, err := ParseHello(c.enc)
		if !errors.Is(err, ErrMalformed) || !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestPeek: objstore records (kinds below 0x80), reserved and unassigned
// kinds are not node messages; exactly the kinds of the table are.
func TestPeek(t *testing.T) {
	if _, ok := Peek(nil); ok {
		t.Error("Peek(nil) is a node message")
	}
	known := map[Kind]bool{}
	for _, k := range Kinds {
		known[k.Kind] = true
	}
	for i := range 256 {
		k, ok := Peek([]byte{byte(i), 1, 2})
		if ok != known[Kind(i)] || ok && k != Kind(i) {
			t.Errorf("Peek(%#x) = %#x, %v", i, byte(k), ok)
		}
	}
	for _, v := range recordKinds(t) {
		if _, ok := Peek([]byte{byte(v.value)}); ok {
			t.Errorf("objstore record kind %s (%d) reads as a node message", v.name, v.value)
		}
	}
}

// TestKinds: the table is in order, each kind above every record kind,
// named and described once.
func TestKinds(t *testing.T) {
	names := map[string]bool{}
	for i, k := range Kinds {
		if k.Kind < 0x80 || i > 0 && k.Kind <= Kinds[i-1].Kind {
			t.Errorf("Kinds[%d] = %#x: not in order above 0x7f", i, byte(k.Kind))
		}
		if k.Kind >= 0x84 && k.Kind <= 0x8f {
			t.Errorf("%#x is reserved for failover messages; document it here when it is assigned", byte(k.Kind))
		}
		if k.Name == "" || k.Dir == "" || k.Doc == "" || names[k.Name] {
			t.Errorf("Kinds[%d] = %+v: empty or duplicate", i, k)
		}
		names[k.Name] = true
	}
	if len(Kinds) != 4 || Kinds[0].Kind != KindAck || Kinds[1].Kind != KindRefusal || Kinds[2].Kind != KindHello || Kinds[3].Kind != KindAnnounce {
		t.Errorf("Kinds does not list KindAck, KindRefusal, KindHello, KindAnnounce: %+v", Kinds)
	}
}

// TestAllocs: the active parses an ack per applied batch and the standby
// encodes one per wake-up: neither allocates.
func TestAllocs(t *testing.T) {
	a := Ack{Snap: 7, Seq: 1 << 33, Flags: AckNeedSnapshot}
	b := a.Append(nil)
	if n := testing.AllocsPerRun(100, func() {
		if got, err := ParseAck(b); err != nil || got != a {
			t.Fatal(got, err)
		}
	}); n != 0 {
		t.Errorf("ParseAck: %v allocations, want 0", n)
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() {
		buf = a.Append(buf[:0])
	}); n != 0 {
		t.Errorf("Ack.Append: %v allocations, want 0", n)
	}
	if !bytes.Equal(buf, b) {
		t.Errorf("Ack.Append into a buffer: % x, want % x", buf, b)
	}
}

// TestAnnounce: the longest announce fits MaxAnnounce (the heartbeat's
// slot); a state outside 1..AnnounceMaxState is malformed and says so; the
// heartbeat parses one per heartbeat per path, without allocating.
func TestAnnounce(t *testing.T) {
	if MaxAnnounce > 64 {
		t.Fatalf("MaxAnnounce = %d, more than the heartbeat's 64-byte slot", MaxAnnounce)
	}
	longest := Announce{NodeID: 1<<64 - 1, Incarnation: 1<<64 - 1, Generation: 1<<64 - 1, State: AnnounceMaxState,
		Priority: 255, Flags: 0xff, Seq: 1<<64 - 1, HandoffSeq: 1<<64 - 1}
	enc := longest.Append(nil)
	if len(enc) != MaxAnnounce {
		t.Fatalf("longest announce: %d bytes, MaxAnnounce %d", len(enc), MaxAnnounce)
	}
	if got, err := ParseAnnounce(enc); err != nil || got != longest {
		t.Fatalf("longest announce: %+v, %v", got, err)
	}
	for _, st := range []byte{0, AnnounceMaxState + 1, 0xff} {
		b := Announce{State: 1}.Append(nil)
		b[4] = st // kind, node ID, incarnation, generation: one byte each
		if _, err := ParseAnnounce(b); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "state") {
			t.Errorf("state %d: %v", st, err)
		}
	}
	a := Announce{NodeID: 7, Incarnation: 3, Generation: 1 << 33, State: 4, Priority: 9, Flags: AnnounceDefer, Seq: 1 << 50}
	b := a.Append(nil)
	buf := make([]byte, 0, MaxAnnounce)
	if n := testing.AllocsPerRun(100, func() {
		buf = a.Append(buf[:0])
		if got, err := ParseAnnounce(buf); err != nil || got != a {
			t.Fatal(got, err)
		}
	}); n != 0 {
		t.Errorf("Announce.Append and ParseAnnounce: %v allocations, want 0", n)
	}
	if !bytes.Equal(buf, b) {
		t.Errorf("Announce.Append into a buffer: % x, want % x", buf, b)
	}
}

// TestHelloRoundTripEmpty: no schemas parse as none.
func TestHelloRoundTripEmpty(t *testing.T) {
	h, err := ParseHello(Hello{Snap: 1, Applied: 2}.Append(nil))
	if err != nil || !reflect.DeepEqual(h, Hello{Snap: 1, Applied: 2}) {
		t.Fatalf("%+v, %v", h, err)
	}
}

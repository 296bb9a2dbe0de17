package frame_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net"
	"testing"

	"github.com/swha/swha/frame"
)

var (
	keyA = []byte("0123456789abcdef-key-A")
	keyB = []byte("fedcba9876543210-key-B")
)

func mustKeyring(t testing.TB, send uint32, keys map[uint32][]byte) *frame.Keyring {
	t.Helper()
	kr, err := frame.NewKeyring(send, keys)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return kr
}

func allTypes() []frame.Type {
	var ts []frame.Type
	for t := frame.Type(0); t < 255; t++ {
		if t.Known() {
			ts = append(ts, t)
		}
	}
	return ts
}

var allFlags = []frame.Flags{
	0, frame.FlagLastFragment, frame.FlagAckValid, frame.FlagAckRequest,
	frame.FlagRetransmit, frame.FlagBatch,
	frame.FlagLastFragment | frame.FlagAckValid | frame.FlagAckRequest | frame.FlagRetransmit | frame.FlagBatch,
}

func sampleHeader(typ frame.Type, flags frame.Flags, nsack int) frame.Header {
	h := frame.Header{
		Type:       typ,
		Flags:      flags,
		NodeID:     0x0200_5e00_0001_abcd,
		Epoch:      0xdead_beef,
		FragOffset: 0x0102_0304,
		Seq:        1<<40 + 7,
		Ack:        1<<40 - 100,
		TxnID:      0xfeed_0000_0000_0001,
		NumSACK:    nsack,
	}
	for i := range nsack {
		h.SACK[i] = frame.SACKBlock{Start: h.Ack + uint64(10*i+2), End: h.Ack + uint64(10*i+5)}
	}
	return h
}

func TestRoundTripEveryTypeAndFlag(t *testing.T) {
	ring := mustKeyring(t, 7, map[uint32][]byte{7: keyA, 9: keyB})
	codecs := map[string]*frame.Codec{"plain": frame.NewCodec(nil), "auth": frame.NewCodec(ring)}
	payloads := [][]byte{nil, {0x42}, bytes.Repeat([]byte{0xa5}, 1400), make([]byte, frame.MaxPayload)}
	for name, c := range codecs {
		for _, typ := range allTypes() {
			for _, flags := range allFlags {
				for nsack := 0; nsack <= frame.MaxSACK; nsack++ {
					for _, payload := range payloads {
						in := sampleHeader(typ, flags, nsack)
						pdu, err := c.Append(nil, &in, payload)
						if err != nil {
							t.Fatalf("%s %v %v sack=%d: Append: %v", name, typ, flags, nsack, err)
						}
						auth := name == "auth"
						if want := frame.Len(nsack, len(payload), auth); len(pdu) != want {
							t.Fatalf("%s: len %d, want %d", name, len(pdu), want)
						}
						var out frame.Header
						got, err := c.Decode(pdu, &out)
						if err != nil {
							t.Fatalf("%s %v %v sack=%d: Decode: %v", name, typ, flags, nsack, err)
						}
						want := in
						want.Version = frame.Version
						if auth {
							want.Flags |= frame.FlagAuth
							want.KeyID = 7
						}
						if out != want {
							t.Fatalf("%s: header mismatch\n got %+v\nwant %+v", name, out, want)
						}
						if !bytes.Equal(got, payload) {
							t.Fatalf("%s %v: payload mismatch", name, typ)
						}
					}
				}
			}
		}
	}
}

func TestEthernetPaddingIgnored(t *testing.T) {
	var c frame.Codec
	h := sampleHeader(frame.TypeAck, frame.FlagAckValid, 0)
	pdu, err := c.Append(nil, &h, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	padded := append(pdu, make([]byte, 30)...)
	var out frame.Header
	payload, err := c.Decode(padded, &out)
	if err != nil || string(payload) != "x" {
		t.Fatalf("Decode padded: %q, %v", payload, err)
	}
}

func TestDecodeAliasesInput(t *testing.T) {
	var c frame.Codec
	h := sampleHeader(frame.TypeData, 0, 0)
	pdu, _ := c.Append(nil, &h, []byte("abc"))
	var out frame.Header
	payload, err := c.Decode(pdu, &out)
	if err != nil {
		t.Fatal(err)
	}
	if cap(payload) != len(payload) {
		t.Fatalf("payload capacity %d exceeds its length %d: appending would clobber the trailer", cap(payload), len(payload))
	}
}

// reseal recomputes the CRC of a PDU whose header a test changed on purpose, so the
// decoder gets past the CRC check to the field under test.
func reseal(pdu []byte) []byte {
	n := len(pdu) - frame.CRCLen
	binary.BigEndian.PutUint32(pdu[n:], crc32.Checksum(pdu[:n], crc32.MakeTable(crc32.Castagnoli)))
	return pdu
}

func TestDecodeMalformed(t *testing.T) {
	ringA := mustKeyring(t, 1, map[uint32][]byte{1: keyA})
	ringOther := mustKeyring(t, 1, map[uint32][]byte{1: keyB})
	ringWrongID := mustKeyring(t, 2, map[uint32][]byte{2: keyA})
	plain := frame.NewCodec(nil)
	signer := frame.NewCodec(ringA)

	build := func(c *frame.Codec, payload string) []byte {
		h := sampleHeader(frame.TypeData, frame.FlagLastFragment, 2)
		pdu, err := c.Append(nil, &h, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		return pdu
	}
	tests := []struct {
		name    string
		pdu     []byte
		decoder *frame.Codec
		want    frame.Error
	}{
		{"empty", nil, plain, frame.ErrShort},
		{"short", build(plain, "")[:frame.MinLen-1], plain, frame.ErrShort},
		{"bad version", func() []byte { p := build(plain, "v"); p[0] = 2; return reseal(p) }(), plain, frame.ErrVersion},
		{"version zero", func() []byte { p := build(plain, "v"); p[0] = 0; return reseal(p) }(), plain, frame.ErrVersion},
		{"unknown type", func() []byte { p := build(plain, "t"); p[1] = 200; return reseal(p) }(), plain, frame.ErrUnknownType},
		{"type zero", func() []byte { p := build(plain, "t"); p[1] = 0; return reseal(p) }(), plain, frame.ErrUnknownType},
		{"length beyond frame", func() []byte { p := build(plain, "hello"); return p[:len(p)-1] }(), plain, frame.ErrLength},
		{"payload length too big", func() []byte {
			p := build(plain, "hello")
			binary.BigEndian.PutUint16(p[6:], 1000)
			return p
		}(), plain, frame.ErrLength},
		{"sack count beyond max", func() []byte { p := build(plain, "s"); p[4] = 5; return reseal(p) }(), plain, frame.ErrBadSACK},
		{"sack empty block", func() []byte {
			p := build(plain, "s")
			binary.BigEndian.PutUint32(p[frame.HeaderLen+4:], binary.BigEndian.Uint32(p[frame.HeaderLen:]))
			return reseal(p)
		}(), plain, frame.ErrBadSACK},
		{"sack zero start", func() []byte {
			p := build(plain, "s")
			binary.BigEndian.PutUint32(p[frame.HeaderLen:], 0)
			return reseal(p)
		}(), plain, frame.ErrBadSACK},
		{"bad crc payload", func() []byte { p := build(plain, "payload"); p[frame.HeaderLen+16+1] ^= 0x01; return p }(), plain, frame.ErrBadCRC},
		{"bad crc header", func() []byte { p := build(plain, "payload"); p[30] ^= 0x80; return p }(), plain, frame.ErrBadCRC},
		{"bad crc trailer", func() []byte { p := build(plain, "payload"); p[len(p)-1] ^= 0xff; return p }(), plain, frame.ErrBadCRC},
		{"corrupted hmac reads as corruption", func() []byte { p := build(signer, "x"); p[len(p)-6] ^= 1; return p }(), signer, frame.ErrBadCRC},
		{"missing hmac", build(plain, "unsigned"), signer, frame.ErrAuthMissing},
		{"wrong key", build(frame.NewCodec(ringOther), "forged"), signer, frame.ErrAuthBad},
		{"forged hmac resealed", func() []byte { p := build(signer, "x"); p[len(p)-6] ^= 1; return reseal(p) }(), signer, frame.ErrAuthBad},
		{"payload changed and resealed", func() []byte { p := build(signer, "xyz"); p[frame.HeaderLen+16] = 'X'; return reseal(p) }(), signer, frame.ErrAuthBad},
		{"wrong key id", build(frame.NewCodec(ringWrongID), "x"), signer, frame.ErrUnknownKey},
	}
	seen := map[frame.Error]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h frame.Header
			payload, err := tt.decoder.Decode(tt.pdu, &h)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode: err %v, want %v", err, tt.want)
			}
			var fe frame.Error
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a frame.Error", err)
			}
			if payload != nil {
				t.Fatalf("payload %q returned with error", payload)
			}
		})
		seen[tt.want] = true
	}
	for _, e := range []frame.Error{frame.ErrShort, frame.ErrVersion, frame.ErrUnknownType, frame.ErrLength,
		frame.ErrBadCRC, frame.ErrBadSACK, frame.ErrAuthMissing, frame.ErrUnknownKey, frame.ErrAuthBad} {
		if !seen[e] {
			t.Errorf("no malformed case yields %v", e)
		}
	}
}

func TestErrorsAreDistinct(t *testing.T) {
	texts := map[string]frame.Error{}
	for e := frame.Error(1); int(e) < frame.NumErrors; e++ {
		if prev, dup := texts[e.Error()]; dup {
			t.Fatalf("%d and %d share the text %q", prev, e, e.Error())
		}
		texts[e.Error()] = e
	}
}

func TestAppendRejectsBadInput(t *testing.T) {
	var c frame.Codec
	tests := []struct {
		name    string
		h       frame.Header
		payload []byte
		want    frame.Error
	}{
		{"payload too large", frame.Header{Type: frame.TypeData}, make([]byte, frame.MaxPayload+1), frame.ErrPayloadTooLarge},
		{"unknown type", frame.Header{Type: 99}, nil, frame.ErrUnknownType},
		{"too many sacks", frame.Header{Type: frame.TypeAck, NumSACK: 5}, nil, frame.ErrBadSACK},
		{"sack below ack", frame.Header{Type: frame.TypeAck, Ack: 10, NumSACK: 1, SACK: [4]frame.SACKBlock{{5, 8}}}, nil, frame.ErrBadSACK},
		{"sack inverted", frame.Header{Type: frame.TypeAck, Ack: 10, NumSACK: 1, SACK: [4]frame.SACKBlock{{15, 12}}}, nil, frame.ErrBadSACK},
		{"sack too far", frame.Header{Type: frame.TypeAck, Ack: 10, NumSACK: 1, SACK: [4]frame.SACKBlock{{11, 10 + 1<<32}}}, nil, frame.ErrBadSACK},
	}
	for _, tt := range tests {
		dst := []byte("keep")
		out, err := c.Append(dst, &tt.h, tt.payload)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.want)
		}
		if string(out) != "keep" {
			t.Errorf("%s: dst changed to %q on error", tt.name, out)
		}
	}
}

func TestAppendKeepsPrefix(t *testing.T) {
	var c frame.Codec
	h := sampleHeader(frame.TypeData, 0, 1)
	prefix := frame.AppendEthernet(nil, net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}, frame.EtherType)
	b, err := c.Append(prefix, &h, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	dst, src, et, pdu, err := frame.ParseEthernet(b)
	if err != nil || et != frame.EtherType || dst.String() != "02:00:00:00:00:01" || src.String() != "02:00:00:00:00:02" {
		t.Fatalf("ParseEthernet: %v %v %#x %v", dst, src, et, err)
	}
	var out frame.Header
	if p, err := c.Decode(pdu, &out); err != nil || string(p) != "payload" {
		t.Fatalf("Decode: %q %v", p, err)
	}
}

func TestKeyRotation(t *testing.T) {
	for _, mode := range []frame.Mode{frame.ModeHMAC, frame.ModeAEAD} {
		t.Run(mode.String(), func(t *testing.T) { testKeyRotation(t, mode) })
	}
}

func testKeyRotation(t *testing.T, mode frame.Mode) {
	old := mustRing(t, mode, 1, map[uint32][]byte{1: keyA})
	both := mustRing(t, mode, 1, map[uint32][]byte{1: keyA, 2: keyB})
	bothNew := mustRing(t, mode, 2, map[uint32][]byte{1: keyA, 2: keyB})
	onlyNew := mustRing(t, mode, 2, map[uint32][]byte{2: keyB})

	a, b := frame.NewCodec(old), frame.NewCodec(old)
	send := func(from, to *frame.Codec) error {
		h := frame.Header{Type: frame.TypeHeartbeat}
		pdu, err := from.Append(nil, &h, nil)
		if err != nil {
			return err
		}
		_, err = to.Decode(pdu, &h)
		return err
	}
	steps := []struct {
		name   string
		ra, rb *frame.Keyring
	}{
		{"both old", old, old},
		{"b learns new key", old, both},
		{"a learns new key", both, both},
		{"a signs with new", bothNew, both},
		{"b signs with new", bothNew, bothNew},
		{"a drops old", onlyNew, bothNew},
		{"b drops old", onlyNew, onlyNew},
	}
	for _, s := range steps {
		a.SetKeyring(s.ra)
		b.SetKeyring(s.rb)
		if err := send(a, b); err != nil {
			t.Fatalf("%s: a→b: %v", s.name, err)
		}
		if err := send(b, a); err != nil {
			t.Fatalf("%s: b→a: %v", s.name, err)
		}
	}
}

func TestNewKeyringValidates(t *testing.T) {
	if _, err := frame.NewKeyring(1, nil); err == nil {
		t.Error("empty ring accepted")
	}
	if _, err := frame.NewKeyring(1, map[uint32][]byte{1: []byte("short")}); err == nil {
		t.Error("short key accepted")
	}
	if _, err := frame.NewKeyring(3, map[uint32][]byte{1: keyA}); err == nil {
		t.Error("send key outside the ring accepted")
	}
}

func TestParseEthernet(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	tagged := append(frame.AppendEthernet(nil, mac, mac, 0x8100), 0x00, 0x0a, 0x88, 0xb5, 0xee)
	if _, _, et, p, err := frame.ParseEthernet(tagged); err != nil || et != frame.EtherType || !bytes.Equal(p, []byte{0xee}) {
		t.Errorf("tagged: %#x %v %v", et, p, err)
	}
	if _, _, _, _, err := frame.ParseEthernet(make([]byte, 13)); !errors.Is(err, frame.ErrShort) {
		t.Errorf("short: %v", err)
	}
	if _, _, _, _, err := frame.ParseEthernet(frame.AppendEthernet(nil, mac, mac, 0x0100)); !errors.Is(err, frame.ErrNotEthernet) {
		t.Errorf("802.3 length: %v", err)
	}
	if _, _, _, _, err := frame.ParseEthernet(frame.AppendEthernet(nil, mac, mac, 0x8100)[:15]); !errors.Is(err, frame.ErrShort) {
		t.Errorf("truncated tag: %v", err)
	}
}

func TestEthernetInterop(t *testing.T) {
	c := frame.NewCodec(nil)
	h := sampleHeader(frame.TypeHello, 0, 0)
	pdu, _ := c.Append(nil, &h, []byte("hi"))
	f := frame.ToEthernet(net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}, frame.EtherType, pdu)
	wire, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	_, _, et, got, err := frame.ParseEthernet(wire)
	if err != nil || et != frame.EtherType || !bytes.Equal(got[:len(pdu)], pdu) {
		t.Fatalf("ParseEthernet of mdlayher/ethernet output: %v", err)
	}
	var out frame.Header
	if p, err := c.FromEthernet(f, frame.EtherType, &out); err != nil || string(p) != "hi" {
		t.Fatalf("FromEthernet: %q %v", p, err)
	}
	if _, err := c.FromEthernet(f, 0x0800, &out); !errors.Is(err, frame.ErrNotEthernet) {
		t.Fatalf("FromEthernet with wrong EtherType: %v", err)
	}
}

func TestStrings(t *testing.T) {
	if s := frame.TypeData.String(); s != "Data" {
		t.Errorf("TypeData = %q", s)
	}
	if s := frame.Type(77).String(); s != "Type(77)" {
		t.Errorf("Type(77) = %q", s)
	}
	if s := (frame.FlagAuth | frame.FlagBatch | 0x8000).String(); s != "Auth|Batch|0x8000" {
		t.Errorf("flags = %q", s)
	}
}

func TestDecodeIntoReusedHeaderClearsSACK(t *testing.T) {
	var c frame.Codec
	with := sampleHeader(frame.TypeAck, frame.FlagAckValid, 3)
	without := sampleHeader(frame.TypeAck, frame.FlagAckValid, 0)
	p1, _ := c.Append(nil, &with, nil)
	p2, _ := c.Append(nil, &without, nil)
	var reused, fresh frame.Header
	if _, err := c.Decode(p1, &reused); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode(p2, &reused); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode(p2, &fresh); err != nil {
		t.Fatal(err)
	}
	if reused != fresh {
		t.Fatalf("reused header kept stale SACK blocks: %+v", reused.SACK)
	}
}

package frame_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/swha/swha/frame"
)

func seedPDUs(f *testing.F, c *frame.Codec) {
	for _, typ := range allTypes() {
		for nsack := 0; nsack <= frame.MaxSACK; nsack += 2 {
			h := sampleHeader(typ, frame.FlagAckValid|frame.FlagLastFragment, nsack)
			pdu, err := c.Append(nil, &h, []byte("seed payload"))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(pdu)
		}
	}
}

// FuzzDecode checks that no input panics the decoder, that a failure is always a
// frame.Error with no payload, and that whatever decodes re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	ring, err := frame.NewKeyring(1, map[uint32][]byte{1: keyA})
	if err != nil {
		f.Fatal(err)
	}
	aeadRing, err := frame.NewAEADKeyring(1, map[uint32][]byte{1: keyA})
	if err != nil {
		f.Fatal(err)
	}
	plain, signed, sealed := frame.NewCodec(nil), frame.NewCodec(ring), frame.NewCodec(aeadRing)
	seedPDUs(f, plain)
	seedPDUs(f, signed)
	seedPDUs(f, sealed)
	f.Add([]byte{})
	f.Add([]byte{1, 3, 0, 0, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		// An encrypted frame decodes in place; the other codecs see it as it came.
		var h frame.Header
		if payload, err := sealed.Decode(bytes.Clone(b), &h); err != nil {
			var fe frame.Error
			if !errors.As(err, &fe) || payload != nil {
				t.Fatalf("AEAD Decode error %v (%T) with payload %v", err, err, payload)
			}
		} else if h.Flags&(frame.FlagAuth|frame.FlagAEAD) != frame.FlagAuth|frame.FlagAEAD {
			t.Fatalf("AEAD codec accepted flags %v", h.Flags)
		}
		for _, c := range []*frame.Codec{plain, signed} {
			var h frame.Header
			payload, err := c.Decode(b, &h)
			if err != nil {
				var fe frame.Error
				if !errors.As(err, &fe) || payload != nil {
					t.Fatalf("Decode error %v (%T) with payload %v", err, err, payload)
				}
				continue
			}
			if h.Flags&frame.FlagAuth != 0 && c == plain {
				// A plain codec cannot re-sign; compare up to the auth trailer instead.
				continue
			}
			again, err := c.Append(nil, &h, payload)
			if err != nil {
				t.Fatalf("re-encode of decoded frame: %v (header %+v)", err, h)
			}
			n := frame.Len(h.NumSACK, len(payload), h.Flags&frame.FlagAuth != 0)
			// The reserved byte is ignored on receipt and zeroed on send.
			want := bytes.Clone(b[:n])
			want[5] = 0
			if !bytes.Equal(again[:len(again)-frame.CRCLen], want[:n-frame.CRCLen]) {
				t.Fatalf("re-encode differs:\n in %x\nout %x", want, again)
			}
		}
	})
}

// appendFuzzed encodes a fuzzed frame; false if the payload is too long, which
// Append must refuse.
func appendFuzzed(t *testing.T, c *frame.Codec, h *frame.Header, payload []byte) ([]byte, bool) {
	pdu, err := c.Append(nil, h, payload)
	if len(payload) > frame.MaxPayload {
		if !errors.Is(err, frame.ErrPayloadTooLarge) {
			t.Fatalf("oversize payload: %v", err)
		}
		return nil, false
	}
	if err != nil {
		t.Fatalf("Append(%+v): %v", *h, err)
	}
	return pdu, true
}

// FuzzRoundTrip builds headers from fuzzed fields and checks Append/Decode agree.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(3), uint16(6), uint64(1), uint32(2), uint32(0), uint64(100), uint64(90), uint64(5), uint8(2), []byte("payload"), false)
	f.Add(uint8(4), uint16(4), uint64(0), uint32(0), uint32(0), uint64(0), uint64(0), uint64(0), uint8(4), []byte{}, true)
	f.Add(uint8(1), uint16(0xffff), ^uint64(0), ^uint32(0), ^uint32(0), ^uint64(0), ^uint64(0)-1<<33, ^uint64(0), uint8(1), []byte{0}, true)
	ring, err := frame.NewKeyring(5, map[uint32][]byte{5: keyA})
	if err != nil {
		f.Fatal(err)
	}
	plain, signed := frame.NewCodec(nil), frame.NewCodec(ring)
	f.Fuzz(func(t *testing.T, typ uint8, flags uint16, node uint64, epoch, frag uint32, seq, ack, txn uint64, nsack uint8, payload []byte, auth bool) {
		c := plain
		if auth {
			c = signed
		}
		h := frame.Header{
			Type: frame.Type(typ%7 + 1), Flags: frame.Flags(flags), NodeID: node, Epoch: epoch,
			FragOffset: frag, Seq: seq, Ack: ack, TxnID: txn, NumSACK: int(nsack % (frame.MaxSACK + 1)),
		}
		for i := range h.NumSACK {
			// Spread blocks over seq's bits so deltas exercise the full 32-bit range.
			start := uint64(binary.BigEndian.Uint32([]byte{byte(seq >> (8 * i)), 0, 1, byte(i)}))%(1<<31) + 1
			h.SACK[i] = frame.SACKBlock{Start: ack + start, End: ack + start + uint64(i) + 1}
		}
		if ack > ^uint64(0)-1<<33 {
			h.NumSACK, h.SACK = 0, [frame.MaxSACK]frame.SACKBlock{} // blocks would overflow the sequence space
		}
		pdu, ok := appendFuzzed(t, c, &h, payload)
		if !ok {
			return
		}
		var out frame.Header
		got, err := c.Decode(pdu, &out)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		want := h
		want.Version = frame.Version
		want.Flags &^= frame.FlagAuth | frame.FlagAEAD
		if auth {
			want.Flags |= frame.FlagAuth
			want.KeyID = 5
		}
		if out != want || !bytes.Equal(got, payload) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", out, want)
		}
	})
}

// FuzzAEAD round-trips fuzzed headers and payloads through an AEAD codec, then
// flips one byte of the frame (header, payload or trailer) and fixes the CRC as
// a forger would: the tampered frame must never decode, nor a frame from a
// codec with another key or the other mode.
func FuzzAEAD(f *testing.F) {
	f.Add(uint8(3), uint16(6), uint64(1), uint64(100), uint64(90), uint8(2), []byte("route 10.0.0.0/8"), uint16(0), uint8(0))
	f.Add(uint8(4), uint16(4), uint64(2), uint64(5), uint64(5), uint8(0), []byte{}, uint16(3), uint8(0x80))
	f.Add(uint8(5), uint16(0xffff), ^uint64(0), ^uint64(0), uint64(7), uint8(4), bytes.Repeat([]byte{0xa5}, 1400), uint16(60), uint8(1))
	f.Add(uint8(3), uint16(0x22), uint64(0xa), uint64(1<<40), uint64(1<<40-9), uint8(1), []byte("x"), uint16(1000), uint8(0xff))
	ring, err := frame.NewAEADKeyring(5, map[uint32][]byte{5: keyA, 6: keyA})
	if err != nil {
		f.Fatal(err)
	}
	other, err := frame.NewAEADKeyring(5, map[uint32][]byte{5: keyB})
	if err != nil {
		f.Fatal(err)
	}
	hmacRing, err := frame.NewKeyring(5, map[uint32][]byte{5: keyA})
	if err != nil {
		f.Fatal(err)
	}
	tx, rx := frame.NewCodec(ring), frame.NewCodec(ring)
	wrongKey, wrongMode := frame.NewCodec(other), frame.NewCodec(hmacRing)
	f.Fuzz(func(t *testing.T, typ uint8, flags uint16, node, seq, ack uint64, nsack uint8, payload []byte, at uint16, flip uint8) {
		h := frame.Header{Type: frame.Type(typ%7 + 1), Flags: frame.Flags(flags), NodeID: node, Seq: seq, Ack: ack,
			NumSACK: int(nsack % (frame.MaxSACK + 1))}
		if ack > ^uint64(0)-1<<20 {
			h.NumSACK = 0
		}
		for i := range h.NumSACK {
			h.SACK[i] = frame.SACKBlock{Start: ack + uint64(10*i+1), End: ack + uint64(10*i+5)}
		}
		pdu, ok := appendFuzzed(t, tx, &h, payload)
		if !ok {
			return
		}
		if len(pdu) != ring.Len(h.NumSACK, len(payload)) {
			t.Fatalf("length %d, want %d", len(pdu), ring.Len(h.NumSACK, len(payload)))
		}
		var out frame.Header
		for name, c := range map[string]*frame.Codec{"wrong key": wrongKey, "hmac ring": wrongMode} {
			if _, err := c.Decode(bytes.Clone(pdu), &out); err == nil {
				t.Fatalf("%s decoded an AEAD frame", name)
			}
		}
		if flip != 0 {
			bad := bytes.Clone(pdu)
			bad[int(at)%(len(bad)-frame.CRCLen)] ^= flip
			if got, err := rx.Decode(reseal(bad), &out); err == nil {
				t.Fatalf("byte %d ^%#x: tampered frame decoded (%q)", int(at)%(len(bad)-frame.CRCLen), flip, got)
			}
		}
		got, err := rx.Decode(pdu, &out)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		want := h
		want.Version = frame.Version
		want.Flags |= frame.FlagAuth | frame.FlagAEAD
		want.KeyID = 5
		if out != want || !bytes.Equal(got, payload) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", out, want)
		}
	})
}

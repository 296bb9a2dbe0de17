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
	plain, signed := frame.NewCodec(nil), frame.NewCodec(ring)
	seedPDUs(f, plain)
	seedPDUs(f, signed)
	f.Add([]byte{})
	f.Add([]byte{1, 3, 0, 0, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
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
		pdu, err := c.Append(nil, &h, payload)
		if len(payload) > frame.MaxPayload {
			if !errors.Is(err, frame.ErrPayloadTooLarge) {
				t.Fatalf("oversize payload: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Append(%+v): %v", h, err)
		}
		var out frame.Header
		got, err := c.Decode(pdu, &out)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		want := h
		want.Version = frame.Version
		want.Flags &^= frame.FlagAuth
		if auth {
			want.Flags |= frame.FlagAuth
			want.KeyID = 5
		}
		if out != want || !bytes.Equal(got, payload) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", out, want)
		}
	})
}

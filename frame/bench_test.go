package frame_test

import (
	"testing"

	"github.com/swha/swha/frame"
)

// A 1500-byte Ethernet MTU frame: 1500 bytes of PDU with two SACK blocks.
const benchPDU = 1500

func benchPayload(auth bool) []byte {
	return make([]byte, benchPDU-frame.Len(2, 0, auth))
}

func benchEncode(b *testing.B, c *frame.Codec, auth bool) {
	h := sampleHeader(frame.TypeData, frame.FlagAckValid, 2)
	payload := benchPayload(auth)
	buf := make([]byte, 0, benchPDU)
	b.SetBytes(benchPDU)
	b.ReportAllocs()
	for b.Loop() {
		out, err := c.Append(buf[:0], &h, payload)
		if err != nil || len(out) != benchPDU {
			b.Fatalf("Append: %d bytes, %v", len(out), err)
		}
	}
}

func benchDecode(b *testing.B, c *frame.Codec, auth bool) {
	h := sampleHeader(frame.TypeData, frame.FlagAckValid, 2)
	pdu, err := c.Append(nil, &h, benchPayload(auth))
	if err != nil || len(pdu) != benchPDU {
		b.Fatalf("Append: %d bytes, %v", len(pdu), err)
	}
	var out frame.Header
	b.SetBytes(benchPDU)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(pdu, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRing(b *testing.B) *frame.Keyring {
	kr, err := frame.NewKeyring(1, map[uint32][]byte{1: keyA, 2: keyB})
	if err != nil {
		b.Fatal(err)
	}
	return kr
}

func BenchmarkEncode(b *testing.B)     { benchEncode(b, frame.NewCodec(nil), false) }
func BenchmarkDecode(b *testing.B)     { benchDecode(b, frame.NewCodec(nil), false) }
func BenchmarkEncodeAuth(b *testing.B) { benchEncode(b, frame.NewCodec(benchRing(b)), true) }
func BenchmarkDecodeAuth(b *testing.B) { benchDecode(b, frame.NewCodec(benchRing(b)), true) }

package frame_test

import (
	"fmt"
	"testing"

	"github.com/swha/swha/frame"
)

// BenchmarkAuthModes: encode and decode of one Data frame of 1500 and 9000
// bytes (whole PDU, two SACK blocks) with no key, HMAC and AEAD. MB/s counts
// PDU bytes. Decode of an AEAD frame is in place, so each iteration decodes a
// fresh copy; the copy is timed in every mode alike.
//
//	go test -run '^$' -bench AuthModes ./frame/
func BenchmarkAuthModes(b *testing.B) {
	rings := []struct {
		name string
		ring *frame.Keyring
	}{
		{"plain", nil},
		{"hmac", mustBenchRing(frame.NewKeyring(1, map[uint32][]byte{1: keyA}))},
		{"aead", mustBenchRing(frame.NewAEADKeyring(1, map[uint32][]byte{1: keyA}))},
	}
	for _, size := range []int{1500, 9000} {
		for _, r := range rings {
			h := sampleHeader(frame.TypeData, frame.FlagAckValid, 2)
			payload := make([]byte, size-r.ring.Len(2, 0))
			tx, rx := frame.NewCodec(r.ring), frame.NewCodec(r.ring)
			buf := make([]byte, 0, size)
			b.Run(fmt.Sprintf("pdu=%d/%s/encode", size, r.name), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					out, err := tx.Append(buf[:0], &h, payload)
					if err != nil || len(out) != size {
						b.Fatalf("Append: %d bytes, %v", len(out), err)
					}
				}
			})
			b.Run(fmt.Sprintf("pdu=%d/%s/decode", size, r.name), func(b *testing.B) {
				pdu, err := tx.Append(nil, &h, payload)
				if err != nil {
					b.Fatal(err)
				}
				var out frame.Header
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					copy(buf[:size], pdu)
					if _, err := rx.Decode(buf[:size], &out); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func mustBenchRing(kr *frame.Keyring, err error) *frame.Keyring {
	if err != nil {
		panic(err)
	}
	return kr
}

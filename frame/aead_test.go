package frame_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/swha/swha/frame"
)

func mustAEADKeyring(t testing.TB, send uint32, keys map[uint32][]byte, opts ...frame.KeyringOption) *frame.Keyring {
	t.Helper()
	kr, err := frame.NewAEADKeyring(send, keys, opts...)
	if err != nil {
		t.Fatalf("NewAEADKeyring: %v", err)
	}
	return kr
}

func encode(t testing.TB, c *frame.Codec, h frame.Header, payload []byte) []byte {
	t.Helper()
	pdu, err := c.Append(nil, &h, payload)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return pdu
}

func TestAEADRoundTripEveryTypeAndFlag(t *testing.T) {
	ring := mustAEADKeyring(t, 7, map[uint32][]byte{7: keyA, 9: keyB})
	if ring.Mode() != frame.ModeAEAD || ring.TrailerLen() != frame.AEADTrailerLen {
		t.Fatalf("mode %v, trailer %d", ring.Mode(), ring.TrailerLen())
	}
	c := frame.NewCodec(ring)
	payloads := [][]byte{nil, {0x42}, bytes.Repeat([]byte{0xa5}, 1400), make([]byte, frame.MaxPayload)}
	for _, typ := range allTypes() {
		for _, flags := range allFlags {
			for nsack := 0; nsack <= frame.MaxSACK; nsack++ {
				for _, payload := range payloads {
					in := sampleHeader(typ, flags|frame.FlagAEAD, nsack) // Append takes FlagAEAD from the ring
					orig := slices.Clone(payload)
					pdu := encode(t, c, in, payload)
					if !bytes.Equal(payload, orig) {
						t.Fatal("Append changed the caller's payload")
					}
					if want := ring.Len(nsack, len(payload)); len(pdu) != want {
						t.Fatalf("len %d, want %d", len(pdu), want)
					}
					hdrLen := frame.HeaderLen + nsack*frame.SACKBlockLen
					if len(payload) >= 16 && bytes.Contains(pdu[hdrLen:], payload[:16]) {
						t.Fatalf("%v: plaintext visible in the frame", typ)
					}
					var out frame.Header
					got, err := c.Decode(pdu, &out)
					if err != nil {
						t.Fatalf("%v %v sack=%d: Decode: %v", typ, flags, nsack, err)
					}
					want := in
					want.Version = frame.Version
					want.Flags |= frame.FlagAuth
					want.KeyID = 7
					if out != want {
						t.Fatalf("header mismatch\n got %+v\nwant %+v", out, want)
					}
					if !bytes.Equal(got, payload) {
						t.Fatalf("%v: payload mismatch", typ)
					}
					if cap(got) != len(got) {
						t.Fatalf("payload capacity %d beyond its length %d", cap(got), len(got))
					}
				}
			}
		}
	}
}

// Flipping any bit of a frame is corruption (ErrBadCRC); flipping it and fixing
// the CRC, which a forger can do, fails authentication or parsing, never
// decodes: the header is the additional data, the payload the ciphertext, and
// the trailer's tag, key ID and nonce are each bound to the key.
func TestTamperAnyByteFails(t *testing.T) {
	rings := map[string]*frame.Keyring{
		"hmac": mustKeyring(t, 1, map[uint32][]byte{1: keyA, 2: keyA}),
		// Key 2 holds key 1's secret: rewriting the key ID must still fail.
		"aead": mustAEADKeyring(t, 1, map[uint32][]byte{1: keyA, 2: keyA}),
	}
	for name, ring := range rings {
		c := frame.NewCodec(ring)
		pdu := encode(t, c, sampleHeader(frame.TypeData, frame.FlagAckValid|frame.FlagLastFragment, 2), []byte("route 10.0.0.0/8 via 192.0.2.1"))
		for i := range len(pdu) - frame.CRCLen {
			for _, bit := range []byte{0x01, 0x80} {
				p := slices.Clone(pdu)
				p[i] ^= bit
				var h frame.Header
				// The fixed header's version and lengths are checked before the CRC.
				if _, err := c.Decode(p, &h); err == nil || i >= frame.HeaderLen && !errors.Is(err, frame.ErrBadCRC) {
					t.Fatalf("%s: byte %d ^%#x: %v, want ErrBadCRC", name, i, bit, err)
				}
				p = slices.Clone(pdu)
				p[i] ^= bit
				if payload, err := c.Decode(reseal(p), &h); err == nil {
					t.Fatalf("%s: byte %d ^%#x resealed decoded (%q)", name, i, bit, payload)
				}
			}
		}
		var h frame.Header
		if _, err := c.Decode(slices.Clone(pdu), &h); err != nil {
			t.Fatalf("%s: untampered: %v", name, err)
		}
	}
}

func TestAEADRefusals(t *testing.T) {
	aeadRing := mustAEADKeyring(t, 1, map[uint32][]byte{1: keyA})
	hmacRing := mustKeyring(t, 1, map[uint32][]byte{1: keyA}) // the same secret
	otherAEAD := mustAEADKeyring(t, 1, map[uint32][]byte{1: keyB})
	otherID := mustAEADKeyring(t, 2, map[uint32][]byte{2: keyA})
	sealer, signer, plain := frame.NewCodec(aeadRing), frame.NewCodec(hmacRing), frame.NewCodec(nil)
	h := sampleHeader(frame.TypeData, frame.FlagLastFragment, 1)
	tests := []struct {
		name    string
		pdu     []byte
		decoder *frame.Codec
		want    frame.Error
	}{
		{"hmac frame at an aead ring", encode(t, signer, h, []byte("x")), sealer, frame.ErrAuthMode},
		{"aead frame at an hmac ring", encode(t, sealer, h, []byte("x")), signer, frame.ErrAuthMode},
		{"aead frame with no ring", encode(t, sealer, h, []byte("x")), plain, frame.ErrAuthMode},
		{"aead flag without auth", func() []byte {
			p := encode(t, plain, h, []byte("x"))
			binary.BigEndian.PutUint16(p[2:], binary.BigEndian.Uint16(p[2:])|uint16(frame.FlagAEAD))
			return reseal(p)
		}(), plain, frame.ErrAuthMode},
		{"unsigned at an aead ring", encode(t, plain, h, []byte("x")), sealer, frame.ErrAuthMissing},
		{"wrong key", encode(t, frame.NewCodec(otherAEAD), h, []byte("x")), sealer, frame.ErrAuthBad},
		{"unknown key id", encode(t, frame.NewCodec(otherID), h, []byte("x")), sealer, frame.ErrUnknownKey},
		{"truncated trailer", func() []byte {
			p := encode(t, sealer, h, []byte("x"))
			return p[:len(p)-frame.NonceLen]
		}(), sealer, frame.ErrLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, verify := range []bool{false, true} {
				var out frame.Header
				var err error
				var payload []byte
				p := slices.Clone(tt.pdu)
				if verify {
					err = tt.decoder.Verify(p, &out)
				} else {
					payload, err = tt.decoder.Decode(p, &out)
				}
				var fe frame.Error
				if !errors.Is(err, tt.want) || !errors.As(err, &fe) || payload != nil {
					t.Fatalf("verify=%v: err %v payload %q, want %v", verify, err, payload, tt.want)
				}
				if !fe.Auth() && tt.want != frame.ErrLength {
					t.Fatalf("%v is not an auth error", fe)
				}
			}
		})
	}
	if frame.ErrBadCRC.Auth() || frame.ErrLength.Auth() {
		t.Error("corruption counted as an authentication failure")
	}
}

// Verify vets a frame without touching it, so the Codec that decodes it next
// still can.
func TestVerifyLeavesFrameIntact(t *testing.T) {
	ring := mustAEADKeyring(t, 1, map[uint32][]byte{1: keyA})
	tx, vet, rx := frame.NewCodec(ring), frame.NewCodec(ring), frame.NewCodec(ring)
	for _, n := range []int{0, 1, 1500, 9000} {
		pdu := encode(t, tx, sampleHeader(frame.TypeData, 0, 0), bytes.Repeat([]byte{7}, n))
		orig := slices.Clone(pdu)
		var h frame.Header
		if err := vet.Verify(pdu, &h); err != nil || h.KeyID != 1 {
			t.Fatalf("Verify: %v, key %d", err, h.KeyID)
		}
		if !bytes.Equal(pdu, orig) {
			t.Fatal("Verify changed the frame")
		}
		payload, err := rx.Decode(pdu, &h)
		if err != nil || !bytes.Equal(payload, bytes.Repeat([]byte{7}, n)) {
			t.Fatalf("Decode after Verify: %v", err)
		}
		// Decoded in place: the plaintext no longer matches the CRC, which
		// covers the ciphertext.
		if _, err := rx.Decode(pdu, &h); n > 0 && !errors.Is(err, frame.ErrBadCRC) {
			t.Fatalf("decrypted frame decoded again: %v", err)
		}
	}
}

// Inspect (capture tools) reads an encrypted frame's header without a key and
// hands back the ciphertext.
func TestInspect(t *testing.T) {
	ring := mustAEADKeyring(t, 3, map[uint32][]byte{3: keyA})
	in := sampleHeader(frame.TypeAck, frame.FlagAckValid, 1)
	pdu := encode(t, frame.NewCodec(ring), in, []byte("secret"))
	orig := slices.Clone(pdu)
	var h frame.Header
	payload, err := frame.Inspect(pdu, &h)
	if err != nil || h.KeyID != 3 || h.Seq != in.Seq || h.Flags&frame.FlagAEAD == 0 || len(payload) != 6 || string(payload) == "secret" {
		t.Fatalf("Inspect: %v %+v %q", err, h, payload)
	}
	if !bytes.Equal(pdu, orig) {
		t.Fatal("Inspect changed the frame")
	}
	if _, err := frame.Inspect(pdu[:len(pdu)-1], &h); err == nil {
		t.Fatal("truncated frame inspected")
	}
}

// nonceOf returns the nonce of an AEAD PDU.
func nonceOf(pdu []byte) [frame.NonceLen]byte {
	t := pdu[len(pdu)-frame.CRCLen-frame.NonceLen:]
	return [frame.NonceLen]byte(t)
}

// Several Codecs of one node encrypt with one key, and pure Acks repeat their
// headers: no two frames from any of them share a nonce, in a long run. A
// copy of a Codec (a struct holding one by value, copied) does not repeat its
// original's nonces either.
func TestAEADNoncesNeverRepeat(t *testing.T) {
	ring := mustAEADKeyring(t, 1, map[uint32][]byte{1: keyA})
	perCodec := 1 << 20
	if testing.Short() {
		perCodec = 1 << 14
	}
	session, heartbeat := frame.NewCodec(ring), frame.NewCodec(ring)
	var warm frame.Codec
	warm.SetKeyring(ring)
	ack := sampleHeader(frame.TypeAck, frame.FlagAckValid, 0) // the same header every time
	buf := make([]byte, 0, 256)
	warmPDU, _ := warm.Append(buf[:0], &ack, nil)
	first := nonceOf(warmPDU)
	copied := warm // after use: must draw its own prefix
	codecs := []*frame.Codec{session, heartbeat, &warm, &copied}
	nonces := make([][frame.NonceLen]byte, 0, len(codecs)*perCodec+1)
	nonces = append(nonces, first)
	var prev []byte
	for i := range perCodec {
		for _, c := range codecs {
			pdu, err := c.Append(buf[:0], &ack, []byte{0, 0, 0, 1})
			if err != nil {
				t.Fatal(err)
			}
			nonces = append(nonces, nonceOf(pdu))
			if i == 0 && c == session {
				prev = slices.Clone(pdu)
			} else if i == 1 && c == session && bytes.Equal(pdu[:len(pdu)-frame.CRCLen-frame.AEADTrailerLen], prev[:len(prev)-frame.CRCLen-frame.AEADTrailerLen]) {
				t.Fatal("two identical Acks encrypted to the same bytes")
			}
		}
	}
	slices.SortFunc(nonces, func(a, b [frame.NonceLen]byte) int { return bytes.Compare(a[:], b[:]) })
	for i := 1; i < len(nonces); i++ {
		if nonces[i] == nonces[i-1] {
			t.Fatalf("nonce %x used twice among %d frames of %d codecs", nonces[i], len(nonces), len(codecs))
		}
	}
}

func TestPerNodeKeys(t *testing.T) {
	const nodeA, nodeB = 0xa, 0xb
	keys := map[uint32][]byte{1: keyA, 2: keyB}
	for _, mode := range []frame.Mode{frame.ModeHMAC, frame.ModeAEAD} {
		t.Run(mode.String(), func(t *testing.T) {
			mk := func(send uint32) *frame.Keyring {
				newRing := frame.NewKeyring
				if mode == frame.ModeAEAD {
					newRing = frame.NewAEADKeyring
				}
				kr, err := newRing(send, keys, frame.BindNode(1, nodeA), frame.BindNode(2, nodeB))
				if err != nil {
					t.Fatal(err)
				}
				if kr.Mode() != mode {
					t.Fatalf("mode %v", kr.Mode())
				}
				return kr
			}
			ringA, ringB := mk(1), mk(2)
			if err := ringA.CheckSender(nodeA); err != nil {
				t.Fatal(err)
			}
			if err := ringA.CheckSender(nodeB); err == nil {
				t.Fatal("node B may send with node A's key")
			}
			if n, ok := ringA.NodeOf(2); !ok || n != nodeB {
				t.Fatalf("NodeOf(2) = %#x, %v", n, ok)
			}
			a, b := frame.NewCodec(ringA), frame.NewCodec(ringB)
			send := func(from, to *frame.Codec, node uint64) error {
				h := sampleHeader(frame.TypeData, frame.FlagLastFragment, 0)
				h.NodeID = node
				var out frame.Header
				_, err := to.Decode(encode(t, from, h, []byte("payload")), &out)
				return err
			}
			if err := send(a, b, nodeA); err != nil {
				t.Fatalf("A as A: %v", err)
			}
			if err := send(b, a, nodeB); err != nil {
				t.Fatalf("B as B: %v", err)
			}
			// The holder of B's key speaks as A, and as a third node.
			for _, node := range []uint64{nodeA, 0xc} {
				if err := send(b, a, node); !errors.Is(err, frame.ErrKeyNode) {
					t.Fatalf("B's key as node %#x: %v, want ErrKeyNode", node, err)
				}
			}
			// Without bindings the same frames pass: that is the shared-key case.
			shared := frame.NewCodec(mustRing(t, mode, 2, keys))
			if err := send(b, shared, nodeA); err != nil {
				t.Fatalf("unbound ring: %v", err)
			}
		})
	}
}

func mustRing(t *testing.T, mode frame.Mode, send uint32, keys map[uint32][]byte, opts ...frame.KeyringOption) *frame.Keyring {
	t.Helper()
	if mode == frame.ModeAEAD {
		return mustAEADKeyring(t, send, keys, opts...)
	}
	kr, err := frame.NewKeyring(send, keys, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestBindNodeValidates(t *testing.T) {
	keys := map[uint32][]byte{1: keyA, 2: keyB}
	for name, opts := range map[string][]frame.KeyringOption{
		"unknown key": {frame.BindNode(3, 1)},
		"node zero":   {frame.BindNode(1, 0)},
		"two nodes":   {frame.BindNode(1, 5), frame.BindNode(1, 6)},
	} {
		if _, err := frame.NewKeyring(1, keys, opts...); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := frame.NewAEADKeyring(1, keys, opts...); err == nil {
			t.Errorf("%s: accepted (AEAD)", name)
		}
	}
	if _, err := frame.NewAEADKeyring(1, map[uint32][]byte{1: []byte("short")}); err == nil {
		t.Error("short AEAD secret accepted")
	}
	kr, err := frame.NewKeyring(1, keys, frame.BindNode(1, 5), frame.BindNode(1, 5))
	if err != nil {
		t.Fatalf("binding a key twice to the same node: %v", err)
	}
	if _, ok := kr.NodeOf(2); ok {
		t.Error("unbound key reports a node")
	}
	if kr.Mode() != frame.ModeHMAC || kr.TrailerLen() != frame.AuthTrailerLen {
		t.Errorf("NewKeyring: mode %v, trailer %d", kr.Mode(), kr.TrailerLen())
	}
	var none *frame.Keyring
	if none.TrailerLen() != 0 || none.Len(0, 10) != frame.Len(0, 10, false) {
		t.Error("nil ring lengths")
	}
}

// Encoding and decoding allocate nothing per frame, in every mode.
func TestCodecDoesNotAllocate(t *testing.T) {
	rings := map[string]*frame.Keyring{
		"plain": nil,
		"hmac":  mustKeyring(t, 1, map[uint32][]byte{1: keyA}),
		"aead":  mustAEADKeyring(t, 1, map[uint32][]byte{1: keyA}, frame.BindNode(1, sampleHeader(0, 0, 0).NodeID)),
	}
	for name, ring := range rings {
		tx, rx := frame.NewCodec(ring), frame.NewCodec(ring)
		h := sampleHeader(frame.TypeData, frame.FlagAckValid, 2)
		payload := make([]byte, 8900)
		buf := make([]byte, 0, 9000)
		var out frame.Header
		var err error
		// Warm up: the first encryption draws the nonce prefix.
		if _, err := tx.Append(buf[:0], &h, payload); err != nil {
			t.Fatal(err)
		}
		pdu := buf
		enc := testing.AllocsPerRun(200, func() { pdu, err = tx.Append(buf[:0], &h, payload) })
		dec := testing.AllocsPerRun(200, func() {
			pdu, _ = tx.Append(buf[:0], &h, payload)
			_, err = rx.Decode(pdu, &out)
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if enc != 0 || dec != 0 {
			t.Errorf("%s: %v allocations per Append, %v per Append+Decode", name, enc, dec)
		}
	}
}

// A payload that lies in the buffer Append writes to is encrypted from a copy,
// as the other modes copy it, not read while the ciphertext overwrites it.
func TestAEADPayloadInsideDst(t *testing.T) {
	c := frame.NewCodec(mustAEADKeyring(t, 1, map[uint32][]byte{1: keyA}))
	buf := make([]byte, 512)
	for i := range buf {
		buf[i] = byte(i)
	}
	want := slices.Clone(buf[60:160])
	h := frame.Header{Type: frame.TypeData}
	pdu, err := c.Append(buf[:0], &h, buf[60:160]) // the ciphertext goes to buf[48:148]
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Decode(pdu, &h)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Decode: %v, payload %x, want %x", err, got, want)
	}
}

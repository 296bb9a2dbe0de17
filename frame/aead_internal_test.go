package frame

import (
	"bytes"
	"testing"
)

// The counter's wrap draws a new prefix instead of reusing nonce prefix‖0.
func TestNonceCounterWrapRedraws(t *testing.T) {
	kr, err := NewAEADKeyring(1, map[uint32][]byte{1: []byte("0123456789abcdef-key-A")})
	if err != nil {
		t.Fatal(err)
	}
	c := NewCodec(kr)
	h := Header{Type: TypeAck}
	nonce := func() []byte {
		pdu, err := c.Append(nil, &h, nil)
		if err != nil {
			t.Fatal(err)
		}
		return pdu[len(pdu)-CRCLen-NonceLen : len(pdu)-CRCLen]
	}
	first := nonce()
	if !bytes.Equal(first[8:], []byte{0, 0, 0, 0}) {
		t.Fatalf("first nonce %x: counter not 0", first)
	}
	c.aead.ctr = 1<<32 - 1
	last := nonce()
	if !bytes.Equal(last[:8], first[:8]) || !bytes.Equal(last[8:], []byte{0xff, 0xff, 0xff, 0xff}) {
		t.Fatalf("last nonce of the prefix %x (first %x)", last, first)
	}
	next := nonce()
	if bytes.Equal(next[:8], first[:8]) || !bytes.Equal(next[8:], []byte{0, 0, 0, 0}) {
		t.Fatalf("nonce after the wrap %x: prefix not redrawn (first %x)", next, first)
	}
	// SetKeyring draws a new prefix too.
	c.SetKeyring(kr)
	if again := nonce(); bytes.Equal(again[:8], next[:8]) {
		t.Fatalf("SetKeyring kept the prefix %x", again)
	}
}

//go:build linux

package tests

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/mdlayher/packet"

	"github.com/swha/swha/frame"
	"github.com/swha/swha/internal/netnstest"
	"github.com/swha/swha/l2transport"
)

// signedPDU encodes a small Data frame from node with codec c.
func signedPDU(tb testing.TB, c *frame.Codec, node, seq uint64) []byte {
	tb.Helper()
	h := frame.Header{Type: frame.TypeData, Seq: seq, NodeID: node, Flags: frame.FlagLastFragment}
	pdu, err := c.Append(nil, &h, []byte("route 10.0.0.0/8"))
	if err != nil {
		tb.Fatal(err)
	}
	return pdu
}

func testKeyring(tb testing.TB, secret string) *frame.Keyring {
	tb.Helper()
	kr, err := frame.NewKeyring(1, map[uint32][]byte{1: bytes.Repeat([]byte(secret), 32)})
	if err != nil {
		tb.Fatal(err)
	}
	return kr
}

// TestAFPacketLearnsOnlyVerifiedPeer: a restarting node used to learn its
// peer from the first frame with a valid CRC, key ring or not, and keep it
// for good (issue #12: a forger's frames arriving during a restart split
// the pair until the next restart, 5 runs in 5). Now the link learns only
// from a frame that verifies with the session's key ring and comes from
// the expected node; frames of other sources are counted as conflicts; and
// a learned peer that has gone silent is replaced by the next verified
// source (a replaced peer switch), never while it still speaks.
func TestAFPacketLearnsOnlyVerifiedPeer(t *testing.T) {
	p := netnstest.NewPair(t, netnstest.Config{})
	kr := testKeyring(t, "k")
	inj := rawSocket(t, p.B, frame.EtherType)
	forgedMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x66}
	inject := func(src net.HardwareAddr, pdu []byte) {
		t.Helper()
		if _, err := inj.WriteTo(ethFrame(broadcast, src, -1, frame.EtherType, pdu), &packet.Addr{HardwareAddr: broadcast}); err != nil {
			t.Fatalf("inject: %v", err)
		}
	}
	// keep never forgets within the test; forget does after 300 ms.
	keep := openAFPacket(t, p.A, l2transport.AFPacketConfig{Keyring: kr, PeerNodeID: 2, ForgetAfter: time.Hour})
	forget := openAFPacket(t, p.A, l2transport.AFPacketConfig{Keyring: kr, PeerNodeID: 2, ForgetAfter: 1500 * time.Millisecond}) // long enough that a scheduling pause before the conflict check does not forget the peer

	// A forger's frames during the restart: valid CRC, unsigned or signed
	// with another key, or signed but from another node ID.
	other := frame.NewCodec(testKeyring(t, "x"))
	for i := range 20 {
		inject(forgedMAC, signedPDU(t, &frame.Codec{}, 2, uint64(i)))
		inject(forgedMAC, signedPDU(t, other, 2, uint64(i)))
	}
	b := openAFPacket(t, p.B, l2transport.AFPacketConfig{Keyring: kr})
	real := signedPDU(t, frame.NewCodec(kr), 2, 100)
	if _, err := b.WriteBatch([][]byte{real}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*l2transport.AFPacketLink{keep, forget} {
		if got := readN(t, l, 1, 10*time.Second); !bytes.Equal(got[0], real) {
			t.Fatalf("first PDU delivered is not the real peer's: % x", got[0][:16])
		}
		if !bytes.Equal(l.PeerMAC(), p.B.MAC) {
			t.Fatalf("learned peer %v, want the real peer %v (the forger is %v)", l.PeerMAC(), p.B.MAC, forgedMAC)
		}
	}

	// Once learned, a verified frame from another source while the peer
	// speaks is a conflict, not a new peer.
	if _, err := b.WriteBatch([][]byte{signedPDU(t, frame.NewCodec(kr), 2, 101)}); err != nil {
		t.Fatal(err)
	}
	readN(t, keep, 1, 10*time.Second)
	readN(t, forget, 1, 10*time.Second) // silence is counted from the last frame read
	before := keep.Stats().PeerConflicts
	inject(forgedMAC, signedPDU(t, frame.NewCodec(kr), 2, 102))
	expectSilence(t, keep, 200*time.Millisecond)
	expectSilence(t, forget, 50*time.Millisecond) // and out of forget's queue, before its peer goes silent
	if s := keep.Stats(); s.PeerConflicts != before+1 || s.PeerRelearned != 0 || !bytes.Equal(keep.PeerMAC(), p.B.MAC) {
		t.Fatalf("a verified frame of another source replaced a live peer: %+v, peer %v", s, keep.PeerMAC())
	}

	// The peer is replaced (a new switch, another MAC) and the old one is
	// silent: after ForgetAfter, the first verified frame of the new one is
	// learned.
	time.Sleep(1600 * time.Millisecond) // longer than ForgetAfter: a pause only lengthens it
	newMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x77}
	fresh := signedPDU(t, frame.NewCodec(kr), 2, 200)
	inject(newMAC, fresh)
	var got []byte
	for got == nil || !bytes.Equal(got, fresh) {
		got = readN(t, forget, 1, 10*time.Second)[0]
	}
	if s := forget.Stats(); !bytes.Equal(forget.PeerMAC(), newMAC) || s.PeerRelearned != 1 {
		t.Fatalf("after the peer's silence: peer %v relearned %d, want %v once", forget.PeerMAC(), s.PeerRelearned, newMAC)
	}
}

//go:build linux

package tests

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/mdlayher/packet"

	"github.com/swha/swha/frame"
	"github.com/swha/swha/internal/netnstest"
	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/l2transport/linktest"
)

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// rawSocket opens a plain packet socket in ns for injecting or sniffing frames
// behind the link's back.
func rawSocket(tb testing.TB, ns *netnstest.NS, proto int) *packet.Conn {
	tb.Helper()
	var c *packet.Conn
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(ns.IfName)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, proto, nil)
		return err
	})
	if err != nil {
		tb.Fatalf("raw socket in %s: %v", ns.Label, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// rxModes runs f for both receive paths of AFPacketLink.
func rxModes(t *testing.T, f func(t *testing.T, noRing bool)) {
	for _, noRing := range []bool{false, true} {
		name := "ring"
		if noRing {
			name = "recvmmsg"
		}
		t.Run(name, func(t *testing.T) { f(t, noRing) })
	}
}

func TestAFPacketRoundTrip(t *testing.T) {
	rxModes(t, testAFPacketRoundTrip)
}

func testAFPacketRoundTrip(t *testing.T, noRing bool) {
	for _, mtu := range []int{1500, 9000, 65535} {
		t.Run(fmt.Sprintf("mtu=%d", mtu), func(t *testing.T) {
			t.Parallel()
			p := netnstest.NewPair(t, netnstest.Config{MTU: mtu})
			// Sniff what actually goes on the wire, to check addressing.
			sniff := rawSocket(t, p.B, frame.EtherType)
			a := openAFPacket(t, p.A, l2transport.AFPacketConfig{NoRxRing: noRing})
			b := openAFPacket(t, p.B, l2transport.AFPacketConfig{NoRxRing: noRing})
			if wantRing := !noRing && mtu <= l2transport.MaxRingMTU; a.RxRing() != wantRing {
				t.Fatalf("RxRing = %v, want %v", a.RxRing(), wantRing)
			}
			if a.MaxPDU() != mtu-14 {
				t.Fatalf("MaxPDU = %d, want %d", a.MaxPDU(), mtu-14)
			}

			// Discovery: A knows nobody and broadcasts; B learns A from it,
			// answers by unicast, and A learns B.
			hello := dataPDU(t, 1, frame.MinLen)
			if n, err := a.WriteBatch([][]byte{hello}); n != 1 || err != nil {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			if got := readN(t, b, 1, 5*time.Second); !bytes.Equal(got[0], hello) {
				t.Fatalf("B got % x, want % x", got[0], hello)
			}
			if !bytes.Equal(b.PeerMAC(), p.A.MAC) {
				t.Fatalf("B learned peer %v, want A's %v", b.PeerMAC(), p.A.MAC)
			}
			if a.PeerMAC() != nil {
				t.Fatalf("A knows peer %v before hearing from it", a.PeerMAC())
			}
			if _, err := b.WriteBatch([][]byte{dataPDU(t, 2, 100)}); err != nil {
				t.Fatal(err)
			}
			readN(t, a, 1, 5*time.Second)
			if !bytes.Equal(a.PeerMAC(), p.B.MAC) {
				t.Fatalf("A learned peer %v, want B's %v", a.PeerMAC(), p.B.MAC)
			}

			// Every size from the smallest PDU to MaxPDU, around the
			// interesting boundaries (Ethernet minimum, old MTU, page size).
			var sizes []int
			for _, s := range []int{frame.MinLen, 60, 64, 128, 1000, 1486, 1500, 4096, 8986, 9000, 32768, a.MaxPDU() - 1, a.MaxPDU()} {
				if s <= a.MaxPDU() && s <= frame.Len(0, frame.MaxPayload, false) {
					sizes = append(sizes, s)
				}
			}
			sizes = slices.Compact(sizes)
			var pdus [][]byte
			for i, s := range sizes {
				pdus = append(pdus, dataPDU(t, uint64(10+i), s))
			}
			for _, dir := range []struct {
				name     string
				from, to *l2transport.AFPacketLink
			}{{"A->B", a, b}, {"B->A", b, a}} {
				if n, err := dir.from.WriteBatch(pdus); n != len(pdus) || err != nil {
					t.Fatalf("%s: WriteBatch = %d, %v; want %d", dir.name, n, err, len(pdus))
				}
				got := readN(t, dir.to, len(pdus), 5*time.Second)
				var c frame.Codec
				var h frame.Header
				for i := range pdus {
					if !bytes.Equal(got[i], pdus[i]) {
						t.Fatalf("%s: PDU %d (%d bytes) came back as %d different bytes", dir.name, i, len(pdus[i]), len(got[i]))
					}
					if _, err := c.Decode(got[i], &h); err != nil || h.Seq != uint64(10+i) {
						t.Fatalf("%s: PDU %d: decode: %v, seq %d", dir.name, i, err, h.Seq)
					}
				}
			}

			// A longer burst, in order, with no loss on an idle veth.
			var burst [][]byte
			for i := range 500 {
				burst = append(burst, dataPDU(t, uint64(1000+i), frame.MinLen+i))
			}
			if n, err := a.WriteBatch(burst); n != len(burst) || err != nil {
				t.Fatalf("burst: WriteBatch = %d, %v", n, err)
			}
			got := readN(t, b, len(burst), 5*time.Second)
			for i := range burst {
				if !bytes.Equal(got[i], burst[i]) {
					t.Fatalf("burst PDU %d differs", i)
				}
			}

			if n, err := a.WriteBatch([][]byte{make([]byte, a.MaxPDU()+1)}); n != 0 || err == nil {
				t.Errorf("oversized PDU: WriteBatch = %d, %v; want an error", n, err)
			}

			// Only the very first frame may have been broadcast.
			sniff.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 1<<17)
			for i := 0; ; i++ {
				n, _, err := sniff.ReadFrom(buf)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				dst, src := net.HardwareAddr(buf[0:6]), net.HardwareAddr(buf[6:12])
				if !bytes.Equal(src, p.A.MAC) || n < 14 {
					continue
				}
				want := p.B.MAC
				if i == 0 {
					want = broadcast
				}
				if !bytes.Equal(dst, want) {
					t.Fatalf("A's frame %d went to %v, want %v", i, dst, want)
				}
			}
			sa, sb := a.Stats(), b.Stats()
			t.Logf("A: %+v", sa)
			t.Logf("B: %+v", sb)
			if sb.FramesIn != uint64(1+len(pdus)+len(burst)) || sa.FramesOut != sb.FramesIn {
				t.Errorf("B FramesIn = %d, A FramesOut = %d, want %d", sb.FramesIn, sa.FramesOut, 1+len(pdus)+len(burst))
			}
		})
	}
}

// ethFrame builds an Ethernet frame by hand, optionally 802.1Q-tagged with vid.
func ethFrame(dst, src net.HardwareAddr, vid int, etherType uint16, payload []byte) []byte {
	b := append(append([]byte(nil), dst...), src...)
	if vid >= 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, uint16(vid))
	}
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, payload...)
}

func TestAFPacketFilter(t *testing.T) { rxModes(t, testAFPacketFilter) }

func testAFPacketFilter(t *testing.T, noRing bool) {
	p := netnstest.NewPair(t, netnstest.Config{})
	b := openAFPacket(t, p.B, l2transport.AFPacketConfig{NoRxRing: noRing})
	inject := rawSocket(t, p.A, 0x88B6)
	stranger := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	send := func(what string, f []byte) {
		t.Helper()
		if _, err := inject.WriteTo(f, &packet.Addr{HardwareAddr: p.B.MAC}); err != nil {
			t.Fatalf("inject %s: %v", what, err)
		}
	}
	valid := dataPDU(t, 7, 200)
	corrupt := slices.Clone(valid)
	corrupt[len(corrupt)-1] ^= 0xff

	send("other EtherType", ethFrame(p.B.MAC, p.A.MAC, -1, 0x88B6, valid))
	send("IPv4 EtherType", ethFrame(p.B.MAC, p.A.MAC, -1, 0x0800, valid))
	send("runt", ethFrame(p.B.MAC, p.A.MAC, -1, frame.EtherType, valid[:frame.MinLen-1]))
	send("foreign VLAN", ethFrame(p.B.MAC, p.A.MAC, 100, frame.EtherType, valid))
	send("unicast to another host", ethFrame(stranger, p.A.MAC, -1, frame.EtherType, valid))
	send("B's own source MAC", ethFrame(p.B.MAC, p.B.MAC, -1, frame.EtherType, valid))
	send("bad CRC before discovery", ethFrame(p.B.MAC, stranger, -1, frame.EtherType, corrupt))
	// Real IP traffic too: an ARP and a UDP datagram (ping needs no listener).
	if err := p.A.Do(func() error {
		c, err := net.Dial("udp4", net.JoinHostPort(p.B.Addr.String(), "9"))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("not swha"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	expectSilence(t, b, 200*time.Millisecond)
	if b.PeerMAC() != nil {
		t.Fatalf("B learned peer %v from junk", b.PeerMAC())
	}

	// A priority-tagged frame (VLAN 0) is the untagged network for 802.1Q:
	// the kernel strips the tag, and the frame is ours.
	send("priority-tagged", ethFrame(p.B.MAC, p.A.MAC, 0, frame.EtherType, valid))
	if got := readN(t, b, 1, 5*time.Second); !bytes.Equal(got[0], valid) {
		t.Fatalf("priority-tagged frame delivered as % x", got[0][:16])
	}
	if !bytes.Equal(b.PeerMAC(), p.A.MAC) {
		t.Fatalf("B learned %v, want %v", b.PeerMAC(), p.A.MAC)
	}
	// Now that B has a peer, valid frames from anyone else are ignored.
	send("valid from a stranger", ethFrame(p.B.MAC, stranger, -1, frame.EtherType, valid))
	send("broadcast from a stranger", ethFrame(broadcast, stranger, -1, frame.EtherType, valid))
	marker := dataPDU(t, 8, 300)
	send("marker", ethFrame(broadcast, p.A.MAC, -1, frame.EtherType, marker))
	if got := readN(t, b, 1, 5*time.Second); !bytes.Equal(got[0], marker) {
		t.Fatalf("after the stranger's frames, got % x, want the marker", got[0][:16])
	}
	expectSilence(t, b, 100*time.Millisecond)
	s := b.Stats()
	t.Logf("B: %+v", s)
	// Own MAC, bad CRC, two from the stranger; the rest never left the kernel.
	if s.Ignored != 4 {
		t.Errorf("Ignored = %d, want 4", s.Ignored)
	}
	if s.KernelPackets != 2+4 {
		t.Errorf("KernelPackets = %d, want 6 (2 delivered, 4 ignored)", s.KernelPackets)
	}

	b.ForgetPeer()
	send("valid from a stranger", ethFrame(p.B.MAC, stranger, -1, frame.EtherType, valid))
	readN(t, b, 1, 5*time.Second)
	if !bytes.Equal(b.PeerMAC(), stranger) {
		t.Fatalf("after ForgetPeer B learned %v, want %v", b.PeerMAC(), stranger)
	}
}

func TestAFPacketConfiguredPeer(t *testing.T) {
	p := netnstest.NewPair(t, netnstest.Config{})
	sniff := rawSocket(t, p.B, frame.EtherType)
	a := openAFPacket(t, p.A, l2transport.AFPacketConfig{PeerMAC: p.B.MAC, BatchSize: 1})
	b := openAFPacket(t, p.B, l2transport.AFPacketConfig{PeerMAC: p.A.MAC, BatchSize: 1})
	pdus := [][]byte{dataPDU(t, 1, 64), dataPDU(t, 2, 65), dataPDU(t, 3, 66)}
	if n, err := a.WriteBatch(pdus); n != 3 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	got := readN(t, b, 3, 5*time.Second)
	for i := range pdus {
		if !bytes.Equal(got[i], pdus[i]) {
			t.Fatalf("PDU %d differs", i)
		}
	}
	buf := make([]byte, 2048)
	sniff.SetReadDeadline(time.Now().Add(time.Second))
	if _, _, err := sniff.ReadFrom(buf); err != nil || !bytes.Equal(buf[:6], p.B.MAC) {
		t.Fatalf("first frame to %v (%v), want unicast to %v: a configured peer is never broadcast to", net.HardwareAddr(buf[:6]), err, p.B.MAC)
	}
	if s := a.Stats(); s.WriteSyscalls != 3 {
		t.Errorf("BatchSize 1: %d sendmmsg calls for 3 frames", s.WriteSyscalls)
	}
	b.ForgetPeer() // no effect on a configured peer
	if !bytes.Equal(b.PeerMAC(), p.A.MAC) {
		t.Errorf("ForgetPeer dropped a configured peer")
	}
}

func TestAFPacketDeadlineAndClose(t *testing.T) { rxModes(t, testAFPacketDeadlineAndClose) }

func testAFPacketDeadlineAndClose(t *testing.T, noRing bool) {
	p := netnstest.NewPair(t, netnstest.Config{})
	b := openAFPacket(t, p.B, l2transport.AFPacketConfig{NoRxRing: noRing})
	linktest.DeadlineAndClose(t, b, packets(4, 2048), dataPDU(t, 1, 64), l2transport.ErrClosed)
}

func TestAFPacketLinkDown(t *testing.T) {
	// Writing into a downed interface loses frames, like a cut cable; it is
	// not an error the session would have to handle.
	p := netnstest.NewPair(t, netnstest.Config{})
	a := openAFPacket(t, p.A, l2transport.AFPacketConfig{})
	if err := p.A.Do(func() error { return setLinkUp(p.A.IfName, false) }); err != nil {
		t.Fatal(err)
	}
	if n, err := a.WriteBatch([][]byte{dataPDU(t, 1, 64), dataPDU(t, 2, 64)}); n != 2 || err != nil {
		t.Fatalf("WriteBatch on a down link = %d, %v; want 2, nil", n, err)
	}
	if s := a.Stats(); s.TxDropped != 2 {
		t.Errorf("TxDropped = %d, want 2", s.TxDropped)
	}
}

func TestNewAFPacketLinkErrors(t *testing.T) {
	p := netnstest.NewPair(t, netnstest.Config{})
	for _, cfg := range []l2transport.AFPacketConfig{
		{Interface: "nosuch0"},
		{Interface: "lo"}, // no Ethernet address
		{Interface: p.A.IfName, EtherType: 0x0800 - 0x0300},
		{Interface: p.A.IfName, PeerMAC: net.HardwareAddr{1, 2, 3}},
	} {
		err := p.A.Do(func() error {
			l, err := l2transport.NewAFPacketLink(cfg)
			if err == nil {
				l.Close()
			}
			return err
		})
		if err == nil {
			t.Errorf("%+v: no error", cfg)
		} else {
			t.Logf("%+v: %v", cfg, err)
		}
	}
}

// A flood the kernel's filter drops never reaches the link's counters; the
// interface's own counters (InterfaceStats) show it.
func TestAFPacketInterfaceStats(t *testing.T) {
	p := netnstest.NewPair(t, netnstest.Config{})
	b := openAFPacket(t, p.B, l2transport.AFPacketConfig{})
	inject := rawSocket(t, p.A, 0x88B6)
	before, err := b.InterfaceStats()
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	f := ethFrame(p.B.MAC, p.A.MAC, -1, 0x88B6, dataPDU(t, 7, 200))
	for i := range n {
		if _, err := inject.WriteTo(f, &packet.Addr{HardwareAddr: p.B.MAC}); err != nil {
			t.Fatalf("inject frame %d: %v", i, err)
		}
	}
	// veth counts a frame as received when its peer sends it.
	after, err := b.InterfaceStats()
	if err != nil {
		t.Fatal(err)
	}
	s := b.Stats()
	t.Logf("interface before %+v after %+v; link %+v", before, after, s)
	if got := after.RxPackets - before.RxPackets; got < n {
		t.Fatalf("the interface counted %d received frames, want at least %d", got, n)
	}
	if got := after.RxBytes - before.RxBytes; got < n*uint64(len(f)) {
		t.Fatalf("the interface counted %d received bytes, want at least %d", got, n*len(f))
	}
	if s.FramesIn != 0 || s.KernelPackets != 0 || s.Ignored != 0 {
		t.Fatalf("the link saw the filtered flood: %+v", s)
	}
	b.Close()
	if _, err := b.InterfaceStats(); !errors.Is(err, l2transport.ErrClosed) {
		t.Fatalf("InterfaceStats on a closed link: %v, want ErrClosed", err)
	}
}

//go:build linux

package l2transport

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/swha/swha/l2transport/linktest"
)

// udpPair returns two UDPLinks on loopback connected to each other.
func udpPair(t *testing.T, network, addr string, cfg UDPConfig) (a, b *UDPLink) {
	t.Helper()
	ca, err := net.ListenUDP(network, &net.UDPAddr{IP: net.ParseIP(addr)})
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	cb, err := net.ListenUDP(network, &net.UDPAddr{IP: net.ParseIP(addr)})
	if err != nil {
		ca.Close()
		t.Fatal(err)
	}
	pa := ca.LocalAddr().(*net.UDPAddr).AddrPort()
	pb := cb.LocalAddr().(*net.UDPAddr).AddrPort()
	cfgA, cfgB := cfg, cfg
	cfgA.Conn, cfgA.Peer = ca, pb
	cfgB.Conn, cfgB.Peer = cb, pa
	if a, err = NewUDPLink(cfgA); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = NewUDPLink(cfgB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

func TestUDPLinkRoundTrip(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"udp4", "127.0.0.1"}, {"udp6", "::1"}} {
		t.Run(tc.network, func(t *testing.T) {
			a, b := udpPair(t, tc.network, tc.addr, UDPConfig{BatchSize: 8})
			if a.MaxPDU() < 65000 {
				t.Fatalf("loopback MaxPDU = %d, want about 64 KiB", a.MaxPDU())
			}
			sizes := []int{1, 52, 1472, 9000, a.MaxPDU()}
			var pdus [][]byte
			for i := range 40 {
				p := make([]byte, sizes[i%len(sizes)])
				for j := range p {
					p[j] = byte(i + j)
				}
				pdus = append(pdus, p)
			}
			n, err := a.WriteBatch(pdus)
			if err != nil || n != len(pdus) {
				t.Fatalf("WriteBatch = %d, %v; want %d", n, err, len(pdus))
			}
			pkts := make([]Packet, 16)
			for i := range pkts {
				pkts[i].Buf = make([]byte, 1<<16)
			}
			b.SetReadDeadline(time.Now().Add(5 * time.Second))
			for got := 0; got < len(pdus); {
				k, err := b.ReadBatch(pkts)
				if err != nil {
					t.Fatalf("ReadBatch after %d: %v", got, err)
				}
				for _, p := range pkts[:k] {
					if !bytes.Equal(p.Buf[:p.N], pdus[got]) {
						t.Fatalf("datagram %d: got %d bytes, want %d", got, p.N, len(pdus[got]))
					}
					got++
				}
			}
			if s := b.Stats(); s.FramesIn != uint64(len(pdus)) {
				t.Errorf("FramesIn = %d, want %d", s.FramesIn, len(pdus))
			}
			if _, err := a.WriteBatch([][]byte{make([]byte, a.MaxPDU()+1)}); err == nil {
				t.Error("oversized PDU: no error")
			}
		})
	}
}

func TestUDPLinkIgnoresStrangers(t *testing.T) {
	a, b := udpPair(t, "udp4", "127.0.0.1", UDPConfig{})
	stranger, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(b.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	stranger.Write([]byte("not from the peer"))
	a.WriteBatch([][]byte{[]byte("from the peer")})
	pkts := []Packet{{Buf: make([]byte, 100)}}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := b.ReadBatch(pkts)
	if err != nil || n != 1 || string(pkts[0].Buf[:pkts[0].N]) != "from the peer" {
		t.Fatalf("ReadBatch = %d, %v, %q", n, err, pkts[0].Buf[:pkts[0].N])
	}
}

func TestUDPLinkTruncates(t *testing.T) {
	a, b := udpPair(t, "udp4", "127.0.0.1", UDPConfig{})
	a.WriteBatch([][]byte{bytes.Repeat([]byte{7}, 500)})
	pkts := []Packet{{Buf: make([]byte, 100)}}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := b.ReadBatch(pkts); err != nil || n != 1 || pkts[0].N != 100 {
		t.Fatalf("ReadBatch = %d, %v, N=%d; want 1, nil, 100", n, err, pkts[0].N)
	}
}

func TestUDPLinkDeadlineAndClose(t *testing.T) {
	_, b := udpPair(t, "udp4", "127.0.0.1", UDPConfig{})
	linktest.DeadlineAndClose(t, b, []Packet{{Buf: make([]byte, 100)}}, []byte{1}, ErrClosed)
}

func TestUDPLinkPeerDown(t *testing.T) {
	// The peer's port is closed: ICMP port unreachable comes back and must not
	// turn into an error, only into drops.
	a, b := udpPair(t, "udp4", "127.0.0.1", UDPConfig{})
	b.Close()
	for range 5 {
		if n, err := a.WriteBatch([][]byte{{1}, {2}}); err != nil || n != 2 {
			t.Fatalf("WriteBatch to a closed port = %d, %v", n, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := a.ReadBatch([]Packet{{Buf: make([]byte, 10)}}); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadBatch with an ICMP error pending: %v, want deadline", err)
	}
	if a.Stats().TxDropped == 0 {
		t.Error("no TxDropped after ICMP unreachable")
	}
}

func TestNewUDPLinkErrors(t *testing.T) {
	if _, err := NewUDPLink(UDPConfig{}); err == nil {
		t.Error("no peer: no error")
	}
	if _, err := NewUDPLink(UDPConfig{Local: netip.MustParseAddrPort("127.0.0.1:0"), Peer: netip.MustParseAddrPort("[::1]:9")}); err == nil {
		t.Error("IPv6 peer on an IPv4 socket: no error")
	}
}

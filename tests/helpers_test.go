//go:build linux

package tests

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/swha/swha/frame"
	"github.com/swha/swha/internal/netnstest"
	"github.com/swha/swha/l2transport"
)

// openAFPacket opens an AFPacketLink on ns's veth end, inside ns.
func openAFPacket(tb testing.TB, ns *netnstest.NS, cfg l2transport.AFPacketConfig) *l2transport.AFPacketLink {
	tb.Helper()
	cfg.Interface = ns.IfName
	var l *l2transport.AFPacketLink
	err := ns.Do(func() error {
		var err error
		l, err = l2transport.NewAFPacketLink(cfg)
		return err
	})
	if err != nil {
		tb.Fatalf("open AF_PACKET link in %s: %v", ns.Label, err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// dataPDU encodes a Data frame with sequence number seq and a pseudo-random
// payload that makes the whole PDU exactly size bytes (at least frame.MinLen).
func dataPDU(tb testing.TB, seq uint64, size int) []byte {
	tb.Helper()
	payload := make([]byte, size-frame.MinLen)
	r := rand.New(rand.NewPCG(seq, uint64(size)))
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}
	var c frame.Codec
	h := frame.Header{Type: frame.TypeData, Seq: seq, NodeID: 42, Flags: frame.FlagLastFragment}
	pdu, err := c.Append(nil, &h, payload)
	if err != nil {
		tb.Fatalf("encode %d-byte PDU: %v", size, err)
	}
	if len(pdu) != size {
		tb.Fatalf("encoded %d bytes, want %d", len(pdu), size)
	}
	return pdu
}

// packets allocates n receive buffers of size bytes.
func packets(n, size int) []l2transport.Packet {
	pkts := make([]l2transport.Packet, n)
	for i := range pkts {
		pkts[i].Buf = make([]byte, size)
	}
	return pkts
}

// readN reads until it has n PDUs or timeout passes, and returns copies.
func readN(tb testing.TB, l l2transport.Link, n int, timeout time.Duration) [][]byte {
	tb.Helper()
	pkts := packets(32, l.MaxPDU()+64)
	var out [][]byte
	l.SetReadDeadline(time.Now().Add(timeout))
	defer l.SetReadDeadline(time.Time{})
	for len(out) < n {
		k, err := l.ReadBatch(pkts)
		if err != nil {
			tb.Fatalf("read %d of %d PDUs: %v", len(out), n, err)
		}
		for _, p := range pkts[:k] {
			out = append(out, append([]byte(nil), p.Buf[:p.N]...))
		}
	}
	return out
}

// expectSilence fails if l delivers anything within d.
func expectSilence(tb testing.TB, l l2transport.Link, d time.Duration) {
	tb.Helper()
	pkts := packets(8, l.MaxPDU()+64)
	l.SetReadDeadline(time.Now().Add(d))
	defer l.SetReadDeadline(time.Time{})
	if k, err := l.ReadBatch(pkts); err == nil {
		tb.Fatalf("got %d unexpected PDUs, first %d bytes: % x", k, pkts[0].N, pkts[0].Buf[:min(pkts[0].N, 32)])
	}
}

// setLinkUp sets the named interface of the current namespace up or down.
func setLinkUp(name string, up bool) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	if up {
		return netlink.LinkSetUp(l)
	}
	return netlink.LinkSetDown(l)
}

//go:build linux

package tests

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/swha/swha/frame"
	"github.com/swha/swha/internal/netnstest"
	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/l2transport/linktest"
)

// heartbeatPDU encodes a Heartbeat frame from node whose payload is i.
func heartbeatPDU(tb testing.TB, node uint64, i uint64) []byte {
	tb.Helper()
	var c frame.Codec
	h := frame.Header{Type: frame.TypeHeartbeat, NodeID: node, Epoch: 1}
	pdu, err := c.Append(nil, &h, binary.BigEndian.AppendUint64(nil, i))
	if err != nil {
		tb.Fatal(err)
	}
	return pdu
}

// parseHeartbeat returns the number in a heartbeatPDU, failing tb for any
// other frame: only heartbeats may reach a heartbeat link.
func parseHeartbeat(tb testing.TB, pdu []byte) uint64 {
	var c frame.Codec
	var h frame.Header
	p, err := c.Decode(pdu, &h)
	if err != nil || h.Type != frame.TypeHeartbeat || len(p) != 8 {
		tb.Errorf("heartbeat link read a %v frame of %d bytes (%v)", h.Type, len(pdu), err)
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

// TestDemuxOverAFPacket runs a Conn stream between two namespaces over the
// Rest of a Demux on each raw link while the heartbeat links ping-pong: A
// sends heartbeat i until B's echo of i comes back. The stream arrives
// exactly once and in order, every heartbeat is echoed, and neither Session
// sees a heartbeat nor a heartbeat link anything else.
func TestDemuxOverAFPacket(t *testing.T) {
	p := netnstest.NewPair(t, netnstest.Config{})
	la := openAFPacket(t, p.A, l2transport.AFPacketConfig{PeerMAC: p.B.MAC})
	lb := openAFPacket(t, p.B, l2transport.AFPacketConfig{PeerMAC: p.A.MAC})
	da, db := l2transport.NewDemux(la, frame.TypeHeartbeat), l2transport.NewDemux(lb, frame.TypeHeartbeat)
	defer da.Close()
	defer db.Close()
	hbA, hbB := da.Link(frame.TypeHeartbeat), db.Link(frame.TypeHeartbeat)

	msgs := randomMessages(1, e2eMessages, e2eMaxLarge)
	stream := linktest.NewStream(msgs, nil)
	b, err := l2transport.NewConn(db.Rest(), sessionConfig(2), l2transport.WithHandler(func(m l2transport.Message) {
		stream.Deliver(m.Data, m.TxnID)
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := l2transport.NewConn(da.Rest(), sessionConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	// B echoes every heartbeat until its link closes.
	echoed := make(chan int, 1)
	go func() {
		pkts := packets(16, hbB.MaxPDU())
		n := 0
		defer func() { echoed <- n }()
		for {
			k, err := hbB.ReadBatch(pkts)
			if err != nil {
				return
			}
			for _, pk := range pkts[:k] {
				i := parseHeartbeat(t, pk.Buf[:pk.N])
				if _, err := hbB.WriteBatch([][]byte{heartbeatPDU(t, 2, i)}); err != nil {
					return
				}
				n++
			}
		}
	}()
	// A pings with heartbeat i until its echo returns, resending after a
	// quiet while (a heartbeat is a datagram: the kernel may drop one under
	// the stream's load). The resend timer only retries; nothing fails on it.
	const beats = 200
	pingDone := make(chan error, 1)
	var resends int
	go func() {
		pkts := packets(16, hbA.MaxPDU())
		for i := uint64(0); i < beats; i++ {
			if _, err := hbA.WriteBatch([][]byte{heartbeatPDU(t, 1, i)}); err != nil {
				pingDone <- err
				return
			}
			for echo := false; !echo; {
				hbA.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				k, err := hbA.ReadBatch(pkts)
				switch {
				case errors.Is(err, os.ErrDeadlineExceeded):
					resends++
					if _, err := hbA.WriteBatch([][]byte{heartbeatPDU(t, 1, i)}); err != nil {
						pingDone <- err
						return
					}
					continue
				case err != nil:
					pingDone <- err
					return
				}
				for _, pk := range pkts[:k] {
					echo = echo || parseHeartbeat(t, pk.Buf[:pk.N]) == i
				}
			}
		}
		pingDone <- nil
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, m := range msgs {
		if err := a.Send(ctx, m, uint64(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	select {
	case <-stream.Done():
	case <-ctx.Done():
		t.Fatalf("%d of %d delivered; A %+v; B %+v", stream.Got(), len(msgs), a.Stats(), b.Stats())
	}
	if err := <-pingDone; err != nil {
		t.Fatalf("heartbeat ping: %v", err)
	}
	b.Close() // closes B's Rest only: its heartbeat link still echoes
	a.Close()
	stream.Check(t)
	for _, s := range []l2transport.SessionStats{a.Stats(), b.Stats()} {
		if n := s.Drops[l2transport.DropUnhandledType]; n != 0 {
			t.Errorf("a Session got %d frames of a type it does not handle", n)
		}
	}
	if err := hbB.Close(); err != nil { // the last sub-link: closes lb
		t.Fatal(err)
	}
	if n := <-echoed; n < beats {
		t.Errorf("B echoed %d heartbeats, want at least %d", n, beats)
	}
	if _, err := lb.WriteBatch([][]byte{heartbeatPDU(t, 2, 0)}); !errors.Is(err, l2transport.ErrClosed) {
		t.Errorf("B's raw link after its last sub-link closed: %v, want ErrClosed", err)
	}
	t.Logf("%d heartbeats, %d resent; Rest A %+v, B %+v; heartbeat A %+v, B %+v", beats, resends,
		da.Rest().Stats(), db.Rest().Stats(), hbA.Stats(), hbB.Stats())
}

// TestDemuxAFPacketDeadlineAndClose checks the Link contract on the sub-links
// of a Demux over a raw link: the heartbeat link first, then Rest, the last,
// whose Close closes the raw link.
func TestDemuxAFPacketDeadlineAndClose(t *testing.T) {
	p := netnstest.NewPair(t, netnstest.Config{})
	l := openAFPacket(t, p.B, l2transport.AFPacketConfig{})
	d := l2transport.NewDemux(l, frame.TypeHeartbeat)
	linktest.DeadlineAndClose(t, d.Link(frame.TypeHeartbeat), packets(4, 2048), heartbeatPDU(t, 2, 0), l2transport.ErrClosed)
	if _, err := l.WriteBatch([][]byte{dataPDU(t, 1, 64)}); err != nil {
		t.Fatalf("raw link closed with the heartbeat sub-link: %v", err)
	}
	linktest.DeadlineAndClose(t, d.Rest(), packets(4, 2048), dataPDU(t, 1, 64), l2transport.ErrClosed)
	if _, err := l.WriteBatch([][]byte{dataPDU(t, 1, 64)}); !errors.Is(err, l2transport.ErrClosed) {
		t.Errorf("raw link after every sub-link closed: %v, want ErrClosed", err)
	}
}

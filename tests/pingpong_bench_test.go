//go:build linux

package tests

import (
	"fmt"
	"testing"
	"time"

	"github.com/swha/swha/internal/netnstest"
	"github.com/swha/swha/l2transport"
)

// linkPingPong bounces one size-byte PDU between a (on pin.Sender) and b (on
// pin.Receiver) rounds times and returns the round trips seen by a. A lost
// frame fails the run: on an idle veth there is no loss.
func linkPingPong(tb testing.TB, a, b l2transport.Link, rounds, size int, pin netnstest.Pin) netnstest.LatencyResult {
	tb.Helper()
	undo, err := pin.Apply()
	if err != nil {
		tb.Fatal(err)
	}
	defer undo()
	echoErr := make(chan error, 1)
	go func() {
		pkts := packets(1, b.MaxPDU())
		for range 100 + rounds {
			if _, err := b.ReadBatch(pkts); err != nil {
				echoErr <- err
				return
			}
			if _, err := b.WriteBatch([][]byte{pkts[0].Buf[:pkts[0].N]}); err != nil {
				echoErr <- err
				return
			}
		}
		echoErr <- nil
	}()
	ping := [][]byte{dataPDU(tb, 1, size)}
	pkts := packets(1, a.MaxPDU())
	rtts := make([]time.Duration, 0, rounds)
	a.SetReadDeadline(time.Now().Add(time.Duration(rounds)*time.Millisecond + 10*time.Second))
	defer a.SetReadDeadline(time.Time{})
	for i := range 100 + rounds {
		t0 := time.Now()
		if _, err := a.WriteBatch(ping); err != nil {
			tb.Fatalf("ping: %v", err)
		}
		if _, err := a.ReadBatch(pkts); err != nil {
			tb.Fatalf("pong %d: %v", i, err)
		}
		if i >= 100 {
			rtts = append(rtts, time.Since(t0))
		}
	}
	if err := <-echoErr; err != nil {
		tb.Fatalf("echo: %v", err)
	}
	return netnstest.Latencies(rtts)
}

// BenchmarkRawLinkPingPong measures the round-trip time of a 64-byte PDU over
// AFPacketLink, with each receive path, next to a 64-byte Go TCP ping-pong over
// the same veth. One iteration is 20000 round trips.
func BenchmarkRawLinkPingPong(b *testing.B) {
	const rounds, size = 20000, 64
	for _, rx := range []string{"ring", "recvmmsg"} {
		b.Run("rx="+rx, func(b *testing.B) {
			p := netnstest.NewPair(b, netnstest.Config{})
			cfg := func(peer *netnstest.NS) l2transport.AFPacketConfig {
				return l2transport.AFPacketConfig{PeerMAC: peer.MAC, NoRxRing: rx == "recvmmsg"}
			}
			la := openAFPacket(b, p.A, cfg(p.B))
			lb := openAFPacket(b, p.B, cfg(p.A))
			pin := benchPin(b)
			var l2 netnstest.LatencyResult
			for range b.N {
				l2 = linkPingPong(b, la, lb, rounds, size, pin)
			}
			b.StopTimer()
			tcp, err := netnstest.TCPPingPong(p, rounds, size, pin)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(l2.P50.Nanoseconds())/1e3, "l2-p50-µs")
			b.ReportMetric(float64(l2.P99.Nanoseconds())/1e3, "l2-p99-µs")
			b.ReportMetric(float64(tcp.P50.Nanoseconds())/1e3, "tcp-p50-µs")
			b.ReportMetric(float64(tcp.P99.Nanoseconds())/1e3, "tcp-p99-µs")
			b.Logf("%s: l2 %+v; tcp %+v", fmt.Sprint(pin), l2, tcp)
		})
	}
}

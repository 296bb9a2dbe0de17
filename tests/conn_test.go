//go:build linux

package tests

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/swha/swha/internal/netnstest"
	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/l2transport/linktest"
)

// connOver runs the reliable Conn over two real links: n messages of mixed
// sizes, some much larger than a frame, must arrive intact and in order.
func connOver(t *testing.T, la, lb l2transport.Link, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	msgs := make([][]byte, n)
	for i := range msgs {
		size := 1 + rng.IntN(300)
		if i%50 == 0 {
			size = 1 + rng.IntN(200_000)
		}
		msgs[i] = make([]byte, size)
		for j := range msgs[i] {
			msgs[i][j] = byte(rng.Uint32())
		}
	}
	cfg := func(node uint64) l2transport.SessionConfig {
		return l2transport.SessionConfig{LocalNodeID: node, Epoch: uint32(node)}
	}
	stream := linktest.NewStream(msgs, nil)
	b, err := l2transport.NewConn(lb, cfg(2), l2transport.WithHandler(func(m l2transport.Message) {
		stream.Deliver(m.Data, m.TxnID)
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := l2transport.NewConn(la, cfg(1))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
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
		t.Fatalf("%d of %d delivered; A %+v; B %+v", stream.Got(), n, a.Stats(), b.Stats())
	}
	b.Close()
	stream.Check(t)
	t.Logf("A: %+v", a.Stats())
}

// TestConnOverAFPacket runs a stream over plain veths and over NIC-like ones,
// where frames are received in NAPI threads and the links keep the qdisc, as
// the NIC-like benchmarks run.
func TestConnOverAFPacket(t *testing.T) {
	for _, nic := range []bool{false, true} {
		for _, mtu := range []int{1500, 9000} {
			t.Run(fmt.Sprintf("nic=%v/mtu=%d", nic, mtu), func(t *testing.T) {
				p := netnstest.NewPair(t, netnstest.Config{MTU: mtu, NICLike: nic})
				la := openAFPacket(t, p.A, l2transport.AFPacketConfig{NoQdiscBypass: nic})
				lb := openAFPacket(t, p.B, l2transport.AFPacketConfig{NoQdiscBypass: nic})
				connOver(t, la, lb, 2000)
			})
		}
	}
}

func TestConnOverUDP(t *testing.T) {
	ca, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		ca.Close()
		t.Fatal(err)
	}
	la, err := l2transport.NewUDPLink(l2transport.UDPConfig{Conn: ca, Peer: cb.LocalAddr().(*net.UDPAddr).AddrPort(), MaxPDU: 1472})
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	lb, err := l2transport.NewUDPLink(l2transport.UDPConfig{Conn: cb, Peer: ca.LocalAddr().(*net.UDPAddr).AddrPort(), MaxPDU: 1472})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	connOver(t, la, lb, 2000)
}

// TestAFPacketConcurrentClose closes a link while a reader, a writer and a
// stats poller are busy on it: all must stop with ErrClosed, and with the
// receive ring nobody may touch the ring after it is unmapped (the race
// detector and the absence of a SIGSEGV are the checks).
func TestAFPacketConcurrentClose(t *testing.T) { rxModes(t, testAFPacketConcurrentClose) }

func testAFPacketConcurrentClose(t *testing.T, noRing bool) {
	p := netnstest.NewPair(t, netnstest.Config{})
	for round := range 5 {
		a := openAFPacket(t, p.A, l2transport.AFPacketConfig{NoRxRing: noRing})
		b := openAFPacket(t, p.B, l2transport.AFPacketConfig{NoRxRing: noRing})
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		stop := make(chan struct{})
		wg.Add(3)
		go func() { // A floods B so B's reader is mid-copy when B closes
			defer wg.Done()
			batch := [][]byte{dataPDU(t, 1, 1000), dataPDU(t, 2, 1000)}
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := a.WriteBatch(batch); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			pkts := packets(16, 1500)
			for {
				if _, err := b.ReadBatch(pkts); err != nil {
					if !errors.Is(err, l2transport.ErrClosed) {
						errs <- err
					}
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					b.Stats()
				}
			}
		}()
		time.Sleep(time.Duration(5+round*7) * time.Millisecond)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		if _, err := b.ReadBatch(packets(1, 100)); !errors.Is(err, l2transport.ErrClosed) {
			t.Errorf("ReadBatch after Close: %v", err)
		}
	}
}

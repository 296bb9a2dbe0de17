//go:build linux

package tests

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/swha/swha/frame"
	"github.com/swha/swha/internal/netnstest"
	"github.com/swha/swha/l2transport"
)

// benchDuration is how long one benchmark iteration sends for. Two seconds
// makes a single iteration (-benchtime=1x) meaningful; SWHA_BENCH_DURATION
// (a Go duration) overrides it for quick runs or longer, steadier ones.
func benchDuration(tb testing.TB) time.Duration {
	if s := os.Getenv("SWHA_BENCH_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			tb.Fatalf("SWHA_BENCH_DURATION=%q: %v", s, err)
		}
		return d
	}
	return 2 * time.Second
}

// benchNICLike reports whether SWHA_BENCH_VETH=nic asks for veths that
// receive on a CPU of their own and push back on a full ring, as a NIC does
// (netnstest.Config.NICLike), instead of plain ones ("" or "plain").
func benchNICLike(tb testing.TB) bool {
	switch v := os.Getenv("SWHA_BENCH_VETH"); v {
	case "", "plain":
		return false
	case "nic":
		return true
	default:
		tb.Fatalf("SWHA_BENCH_VETH=%q: want plain or nic", v)
		return false
	}
}

// benchPin is netnstest.DefaultPin unless SWHA_BENCH_PIN says otherwise:
// "none" pins nothing, "S,R" pins the sender to CPU S and the receiver to R.
func benchPin(tb testing.TB) netnstest.Pin {
	s := os.Getenv("SWHA_BENCH_PIN")
	switch s {
	case "":
		return netnstest.DefaultPin()
	case "none":
		return netnstest.Pin{Sender: netnstest.NoCPU, Receiver: netnstest.NoCPU}
	}
	var p netnstest.Pin
	if _, err := fmt.Sscanf(s, "%d,%d", &p.Sender, &p.Receiver); err != nil {
		tb.Fatalf("SWHA_BENCH_PIN=%q: want none or S,R: %v", s, err)
	}
	return p
}

// rawRun is one one-way blast over a pair of AFPacketLinks.
type rawRun struct {
	Sent, Received   uint64 // frames
	Bytes            uint64 // PDU bytes received
	Elapsed          time.Duration
	TxCalls, RxCalls uint64
	RxWaits          uint64
	KernelDrops      uint64
}

func (r rawRun) framesPerSec() float64 { return float64(r.Received) / r.Elapsed.Seconds() }
func (r rawRun) mbPerSec() float64     { return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds() }

// sendFor hands tx batches of one size-byte PDU for d, as fast as it takes
// them, and returns how many frames it took and when it started.
func sendFor(tb testing.TB, tx *l2transport.AFPacketLink, size int, d time.Duration) (sent uint64, start time.Time, err error) {
	pdu := dataPDU(tb, 1, size)
	batch := make([][]byte, 256)
	for i := range batch {
		batch[i] = pdu // the kernel copies; one buffer serves every frame
	}
	start = time.Now()
	for time.Since(start) < d {
		n, err := tx.WriteBatch(batch)
		if err != nil {
			return sent, start, fmt.Errorf("WriteBatch: %w", err)
		}
		sent += uint64(n)
	}
	return sent, start, nil
}

// blast sends size-byte PDUs from tx to rx for d and counts what rx receives,
// the sender running on pin.Sender and the receiver on pin.Receiver. The
// elapsed time runs from the first send to the last data frame received; the
// end is signalled in-band by Close frames, repeated because a one-way blast
// overruns the receiver and any frame, the end marker included, may be dropped.
func blast(tb testing.TB, tx, rx *l2transport.AFPacketLink, size int, d time.Duration, pin netnstest.Pin) rawRun {
	tb.Helper()
	txStats0, rxStats0 := tx.Stats(), rx.Stats()

	type rxResult struct {
		frames, bytes uint64
		last          time.Time
		err           error
	}
	done := make(chan rxResult, 1)
	undo, err := pin.Apply()
	if err != nil {
		tb.Fatal(err)
	}
	go func() {
		pkts := packets(256, rx.MaxPDU())
		var r rxResult
		// Bounded by the end marker or, failing that, the read deadline.
		rx.SetReadDeadline(time.Now().Add(d + 10*time.Second))
		defer rx.SetReadDeadline(time.Time{})
		for {
			n, err := rx.ReadBatch(pkts)
			if err != nil {
				r.err = err
				done <- r
				return
			}
			for _, p := range pkts[:n] {
				if p.N > 1 && p.Buf[1] == byte(frame.TypeClose) {
					done <- r
					return
				}
				r.frames++
				r.bytes += uint64(p.N)
				r.last = time.Now()
			}
		}
	}()

	sent, start, err := sendFor(tb, tx, size, d)
	if err != nil {
		undo()
		tb.Fatal(err)
	}
	var c frame.Codec
	end, err := c.Append(nil, &frame.Header{Type: frame.TypeClose}, nil)
	if err != nil {
		undo()
		tb.Fatal(err)
	}
	var r rxResult
	func() {
		defer undo()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := tx.WriteBatch([][]byte{end}); err != nil {
				tb.Fatalf("send end marker: %v", err)
			}
			select {
			case r = <-done:
				return
			case <-tick.C:
			}
		}
	}()
	if r.err != nil {
		tb.Fatalf("receiver: %v", r.err)
	}
	txStats, rxStats := tx.Stats(), rx.Stats()
	return rawRun{
		Sent:        sent,
		Received:    r.frames,
		Bytes:       r.bytes,
		Elapsed:     r.last.Sub(start),
		TxCalls:     txStats.WriteSyscalls - txStats0.WriteSyscalls,
		RxCalls:     rxStats.ReadSyscalls - rxStats0.ReadSyscalls,
		RxWaits:     rxStats.ReadWaits - rxStats0.ReadWaits,
		KernelDrops: rxStats.KernelDrops - rxStats0.KernelDrops,
	}
}

type rawBench struct {
	noRing bool
	mtu    int
	size   int // PDU bytes; 0 means MaxPDU
	batch  int // frames per syscall; 0 means the link's default
	tcp    bool
}

func (rb rawBench) run(b *testing.B) {
	if os.Getenv("SWHA_BENCH_RX") == "recvmmsg" {
		rb.noRing = true
	}
	p := netnstest.NewPair(b, netnstest.Config{MTU: rb.mtu, NICLike: benchNICLike(b)})
	cfg := func(peer *netnstest.NS) l2transport.AFPacketConfig {
		return l2transport.AFPacketConfig{PeerMAC: peer.MAC, BatchSize: rb.batch, NoRxRing: rb.noRing, NoQdiscBypass: p.NICLike}
	}
	tx := openAFPacket(b, p.A, cfg(p.B))
	rx := openAFPacket(b, p.B, cfg(p.A))
	size := rb.size
	if size == 0 {
		size = tx.MaxPDU()
	}
	pin := benchPin(b)
	d := benchDuration(b)

	var total rawRun
	b.ResetTimer()
	for range b.N {
		r := blast(b, tx, rx, size, d, pin)
		total.Sent += r.Sent
		total.Received += r.Received
		total.Bytes += r.Bytes
		total.Elapsed += r.Elapsed
		total.TxCalls += r.TxCalls
		total.RxCalls += r.RxCalls
		total.RxWaits += r.RxWaits
		total.KernelDrops += r.KernelDrops
	}
	b.StopTimer()
	b.ReportMetric(total.framesPerSec(), "l2-frames/s")
	b.ReportMetric(total.mbPerSec(), "l2-MB/s")
	b.ReportMetric(float64(total.Sent)/float64(max(total.TxCalls, 1)), "frames/tx-call")
	b.ReportMetric(float64(total.Received)/float64(max(total.RxWaits, 1)), "frames/rx-wakeup")
	b.ReportMetric(100*float64(total.Sent-min(total.Sent, total.Received))/float64(max(total.Sent, 1)), "loss-%")
	b.Logf("%d-byte PDUs, MTU %d, batch %d, ring %v, %s: sent %d, received %d (%d dropped for lack of receive buffer) in %v; %d sendmmsg, %d recvmmsg",
		size, rb.mtu, rb.batch, rx.RxRing(), pin, total.Sent, total.Received, total.KernelDrops, total.Elapsed.Round(time.Millisecond), total.TxCalls, total.RxCalls)
	if !rb.tcp {
		return
	}
	// The baseline runs over the same veth, right after, with the same pinning.
	tr, err := netnstest.TCPBulk(p, d, pin)
	if err != nil {
		b.Fatalf("TCP baseline: %v", err)
	}
	b.ReportMetric(tr.MBps(), "tcp-MB/s")
	b.ReportMetric(total.mbPerSec()/tr.MBps(), "ratio")
	b.Logf("TCP: %d bytes in %v", tr.Bytes, tr.Elapsed.Round(time.Millisecond))
}

// BenchmarkRawLink measures one-way AFPacketLink throughput between two
// namespaces over veth, with MaxPDU-sized frames and the default batch, next to
// Go TCP over the same veth. Figures are what the receiver got.
//
//	sudo go test ./tests/ -run '^$' -bench 'RawLink$' -benchtime=1x
func BenchmarkRawLink(b *testing.B) {
	for _, mtu := range []int{1500, 9000} {
		b.Run(fmt.Sprintf("mtu=%d", mtu), rawBench{mtu: mtu, tcp: true}.run)
	}
}

// BenchmarkRawLinkBatch shows what batching and the receive ring buy: the same
// blast at several frames per syscall, received through the ring or with
// recvmmsg (whose batch is the same), for full-size and small (128-byte) PDUs.
func BenchmarkRawLinkBatch(b *testing.B) {
	for _, rx := range []string{"ring", "recvmmsg"} {
		for _, size := range []int{0, 128} {
			for _, batch := range []int{1, 8, 64, 256} {
				sz := fmt.Sprint(size)
				if size == 0 {
					sz = "max"
				}
				name := fmt.Sprintf("rx=%s/mtu=1500/size=%s/batch=%d", rx, sz, batch)
				b.Run(name, rawBench{mtu: 1500, size: size, batch: batch, noRing: rx == "recvmmsg"}.run)
			}
		}
	}
}

// BenchmarkRawLinkSendOnly is the kernel's ceiling for a raw link on this
// veth: full-size frames sent as fast as sendmmsg takes them, with no socket
// bound on the other end, so nothing is copied to a receiver. On veth the
// sending CPU still runs the receiving side's softirq up to the point where
// the frame finds no listener. A Session can never beat this, whatever it
// does, and tcp-MB/s, measured right after on the same veth with the same
// pinning, shows what the BulkVsTCP targets ask of it.
//
//	sudo go test ./tests/ -run '^$' -bench 'RawLinkSendOnly' -benchtime=1x
func BenchmarkRawLinkSendOnly(b *testing.B) {
	for _, mtu := range []int{1500, 9000} {
		b.Run(fmt.Sprintf("mtu=%d", mtu), func(b *testing.B) {
			p := netnstest.NewPair(b, netnstest.Config{MTU: mtu, NICLike: benchNICLike(b)})
			tx := openAFPacket(b, p.A, l2transport.AFPacketConfig{PeerMAC: p.B.MAC, NoQdiscBypass: p.NICLike})
			size := tx.MaxPDU()
			pin, d := benchPin(b), benchDuration(b)
			var sent uint64
			var elapsed time.Duration
			b.ResetTimer()
			for range b.N {
				undo, err := pin.Apply()
				if err != nil {
					b.Fatal(err)
				}
				n, start, err := sendFor(b, tx, size, d)
				elapsed += time.Since(start)
				undo()
				if err != nil {
					b.Fatal(err)
				}
				sent += n
			}
			b.StopTimer()
			mbps := float64(sent) * float64(size) / 1e6 / elapsed.Seconds()
			b.ReportMetric(float64(sent)/elapsed.Seconds(), "l2-frames/s")
			b.ReportMetric(mbps, "l2-MB/s")
			tr, err := netnstest.TCPBulk(p, d, pin)
			if err != nil {
				b.Fatalf("TCP baseline: %v", err)
			}
			b.ReportMetric(tr.MBps(), "tcp-MB/s")
			b.ReportMetric(mbps/tr.MBps(), "ratio")
			b.Logf("%d-byte PDUs, MTU %d, %s: %d frames in %v; TCP %d bytes in %v",
				size, mtu, pin, sent, elapsed.Round(time.Millisecond), tr.Bytes, tr.Elapsed.Round(time.Millisecond))
		})
	}
}

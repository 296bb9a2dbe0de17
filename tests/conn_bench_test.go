//go:build linux

package tests

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swha/swha/frame"
	"github.com/swha/swha/internal/netnstest"
	"github.com/swha/swha/l2transport"
)

// Conn benchmarks run a Conn at each end, in one process, over AFPacketLinks
// wrapped in FaultyLinks (zero faults unless the benchmark injects some, so
// lossless and lossy runs share the code path), between two namespaces over
// veth, and the Go TCP baseline over the same veth right after, with the same
// CPU placement.
//
// Placement: a Conn is a reader and a deliverer goroutine per end, plus the
// application's goroutines, so a bulk transfer cannot be split over two CPUs
// the way netnstest.Pin splits a raw sender from its receiver (Pin.Apply would
// confine both Conns' goroutines to one CPU and leave the other to the
// application alone). The throughput benchmarks therefore pin nothing by
// default, for the Conns and for TCP alike, and leave both to the Go scheduler
// and the kernel on the two CPUs. BenchmarkPingPong, which is serial, uses the
// raw-link benchmarks' placement, netnstest.DefaultPin: the requesting
// goroutine on CPU 0, everything else (for TCP: the echo goroutine and the
// netpoller) on CPU 1. SWHA_BENCH_PIN=none|S,R overrides either.
func connBenchPin(tb testing.TB, def netnstest.Pin) netnstest.Pin {
	if os.Getenv("SWHA_BENCH_PIN") == "" {
		return def
	}
	return benchPin(tb)
}

var noPin = netnstest.Pin{Sender: netnstest.NoCPU, Receiver: netnstest.NoCPU}

// connBench is one Conn pair over a namespace pair.
type connBench struct {
	p      *netnstest.Pair
	la, lb *l2transport.FaultyLink
	a, b   *l2transport.Conn

	delivered atomic.Int64 // messages B's handler saw
	bytes     atomic.Int64 // their bytes
	outOfSeq  atomic.Int64 // messages whose transaction ID was not the next one
	nextTxn   uint64       // B's handler only
	txn       uint64       // the sender's last transaction ID
	lastAt    atomic.Int64 // UnixNano of the latest delivery
}

func newConnBench(tb testing.TB, p *netnstest.Pair, f l2transport.Faults, seed uint64, cfg func(*l2transport.SessionConfig)) *connBench {
	tb.Helper()
	cb := &connBench{p: p}
	cb.la, cb.lb = faultyPair(tb, p, f, seed)
	ca, cbc := sessionConfig(1), sessionConfig(2)
	if v := os.Getenv("SWHA_BENCH_WINDOW"); v != "" {
		w, err := strconv.Atoi(v)
		if err != nil {
			tb.Fatalf("SWHA_BENCH_WINDOW=%q: %v", v, err)
		}
		ca.RecvWindow, cbc.RecvWindow = w, w
	}
	if cfg != nil {
		cfg(&ca)
		cfg(&cbc)
	}
	// SWHA_BENCH_DEMUX=1 runs the Conns over the Rest of a Demux, as a node
	// with a heartbeat consumer beside its Conn will.
	var linkA, linkB l2transport.Link = cb.la, cb.lb
	if os.Getenv("SWHA_BENCH_DEMUX") == "1" {
		da, db := l2transport.NewDemux(cb.la, frame.TypeHeartbeat), l2transport.NewDemux(cb.lb, frame.TypeHeartbeat)
		tb.Cleanup(func() { da.Close(); db.Close() }) // after the Conns'
		linkA, linkB = da.Rest(), db.Rest()
	}
	var err error
	cb.b, err = l2transport.NewConn(linkB, cbc, l2transport.WithHandler(func(m l2transport.Message) {
		// The sender numbers its transactions 1, 2, 3...: a gap or repeat
		// would be a Session bug, and costs nothing to check here.
		if m.TxnID != cb.nextTxn && m.TxnID != cb.nextTxn+1 {
			cb.outOfSeq.Add(1)
		}
		cb.nextTxn = m.TxnID
		cb.delivered.Add(1)
		cb.bytes.Add(int64(len(m.Data)))
		cb.lastAt.Store(time.Now().UnixNano())
	}))
	if err != nil {
		tb.Fatal(err)
	}
	cb.a, err = l2transport.NewConn(linkA, ca)
	if err != nil {
		cb.b.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cb.a.Close(); cb.b.Close() })
	return cb
}

// diag summarises the counters that explain a figure: retransmissions and
// where frames were dropped.
func (cb *connBench) diag() string {
	as, bs := cb.a.Stats(), cb.b.Stats()
	ra := cb.la.Inner().(*l2transport.AFPacketLink).Stats()
	rb := cb.lb.Inner().(*l2transport.AFPacketLink).Stats()
	return fmt.Sprintf("A: %d data frames, %d retransmits (%d fast, %d timeouts, %d of them spurious), SRTT %v, %d acks received, tx drops %d, rx kernel drops %d, "+
		"%d sendmmsg, %d read waits, %d backpressure; "+
		"B: %d acks sent, drops %v, tx drops %d, rx kernel drops %d, %d sendmmsg, %d read waits",
		as.DataFramesSent, as.Retransmits, as.FastRetransmits, as.Timeouts, as.SpuriousTimeouts, as.SRTT, ra.FramesIn, ra.TxDropped, ra.KernelDrops,
		ra.WriteSyscalls, ra.ReadWaits, as.Backpressure,
		bs.AcksSent, bs.Drops, rb.TxDropped, rb.KernelDrops, rb.WriteSyscalls, rb.ReadWaits)
}

// bulkResult is one one-way transfer over Conns.
type bulkResult struct {
	msgs, bytes int64
	elapsed     time.Duration
	cpu         time.Duration
}

// add accumulates one iteration's result, for -benchtime above 1x.
func (r *bulkResult) add(o bulkResult) {
	r.msgs += o.msgs
	r.bytes += o.bytes
	r.elapsed += o.elapsed
	r.cpu += o.cpu
}

func (r bulkResult) mbps() float64   { return float64(r.bytes) / 1e6 / r.elapsed.Seconds() }
func (r bulkResult) msgsps() float64 { return float64(r.msgs) / r.elapsed.Seconds() }

// stream sends batches (each of len(batch) messages of one transaction) from A
// for d, then waits until B has everything; elapsed runs from the first send
// to the last delivery, like the TCP baseline's.
func (cb *connBench) stream(tb testing.TB, batch [][]byte, d time.Duration, pin netnstest.Pin) bulkResult {
	tb.Helper()
	undo, err := pin.Apply()
	if err != nil {
		tb.Fatal(err)
	}
	defer undo()
	ctx, cancel := context.WithTimeout(context.Background(), d+60*time.Second)
	defer cancel()
	// Wait for the handshake so it is not timed.
	if err := cb.a.Send(ctx, []byte("warm-up"), 0); err != nil {
		tb.Fatal(err)
	}
	for cb.delivered.Load() == 0 {
		if ctx.Err() != nil {
			tb.Fatal("no handshake")
		}
		time.Sleep(time.Millisecond)
	}
	msgs0, bytes0 := cb.delivered.Load(), cb.bytes.Load()
	cpu0 := cpuTime(tb)
	start := time.Now()
	var sent int64
	txn := cb.txn
	for time.Since(start) < d {
		txn++
		if len(batch) == 1 {
			err = cb.a.Send(ctx, batch[0], txn)
		} else {
			_, err = cb.a.SendBatch(ctx, batch, txn)
		}
		if err != nil {
			tb.Fatalf("send: %v", err)
		}
		sent += int64(len(batch))
	}
	cb.txn = txn
	for cb.delivered.Load()-msgs0 < sent {
		if ctx.Err() != nil {
			tb.Fatalf("%d of %d delivered; A %+v", cb.delivered.Load()-msgs0, sent, cb.a.Stats())
		}
		time.Sleep(100 * time.Microsecond)
	}
	cpu := cpuTime(tb) - cpu0
	if n := cb.outOfSeq.Load(); n > 0 {
		tb.Fatalf("%d messages out of sequence", n)
	}
	return bulkResult{
		msgs:    sent,
		bytes:   cb.bytes.Load() - bytes0,
		elapsed: time.Unix(0, cb.lastAt.Load()).Sub(start),
		cpu:     cpu,
	}
}

// bulkMsg is the message size of the bulk benchmarks: large enough that
// per-message costs vanish and the Session fragments at every MTU.
const bulkMsg = 1 << 20

func (r bulkResult) report(b *testing.B, prefix string) {
	b.ReportMetric(r.mbps(), prefix+"MB/s")
	b.ReportMetric(cpuPerGB(r.cpu, r.bytes), prefix+"cpu-s/GB")
}

// BenchmarkBulkVsTCP: reliable one-way transfer of 1 MiB messages over Conn
// and AFPacketLink, against one Go TCP stream over the same veth. One
// iteration sends for SWHA_BENCH_DURATION (2 s) each way.
//
//	sudo go test ./tests/ -run '^$' -bench 'BulkVsTCP' -benchtime=1x
func BenchmarkBulkVsTCP(b *testing.B) {
	for _, mtu := range []int{1500, 9000} {
		b.Run(fmt.Sprintf("mtu=%d", mtu), func(b *testing.B) {
			p := netnstest.NewPair(b, netnstest.Config{MTU: mtu, NICLike: benchNICLike(b)})
			cb := newConnBench(b, p, l2transport.Faults{}, 1, nil)
			pin, d := connBenchPin(b, noPin), benchDuration(b)
			msg := [][]byte{make([]byte, bulkMsg)}
			var total bulkResult
			b.ResetTimer()
			for range b.N {
				total.add(cb.stream(b, msg, d, pin))
			}
			b.StopTimer()
			tcp, tcpCPU := tcpStream(b, p, d, 256<<10, pin)
			if p.NICLike {
				// Receive processing runs in NAPI kernel threads, whose CPU
				// time is not the process's: per-GB figures would flatter.
				b.ReportMetric(total.mbps(), "l2-MB/s")
			} else {
				total.report(b, "l2-")
				b.ReportMetric(cpuPerGB(tcpCPU, tcp.Bytes), "tcp-cpu-s/GB")
			}
			b.ReportMetric(tcp.MBps(), "tcp-MB/s")
			b.ReportMetric(total.mbps()/tcp.MBps(), "ratio")
			b.Logf("%s: l2 %d bytes in %v; tcp %d bytes in %v; %s", pin, total.bytes, total.elapsed.Round(time.Millisecond),
				tcp.Bytes, tcp.Elapsed.Round(time.Millisecond), cb.diag())
		})
	}
}

// tcpStream runs netnstest.TCPStream and the CPU it took.
func tcpStream(b *testing.B, p *netnstest.Pair, d time.Duration, writeSize int, pin netnstest.Pin) (netnstest.BulkResult, time.Duration) {
	cpu0 := cpuTime(b)
	tcp, err := netnstest.TCPStream(p, d, writeSize, pin)
	if err != nil {
		b.Fatalf("TCP baseline: %v", err)
	}
	return tcp, cpuTime(b) - cpu0
}

// BenchmarkSmallMessages: 64-byte messages, reliable and in order, over Conn
// and AFPacketLink at MTU 1500, handed to SendBatch 256 at a time; the
// baseline is TCP writing the same 256×64 bytes per Write.
//
//	sudo go test ./tests/ -run '^$' -bench 'SmallMessages' -benchtime=1x
func BenchmarkSmallMessages(b *testing.B) {
	const size, batchLen = 64, 256
	p := netnstest.NewPair(b, netnstest.Config{})
	cb := newConnBench(b, p, l2transport.Faults{}, 1, nil)
	pin, d := connBenchPin(b, noPin), benchDuration(b)
	batch := make([][]byte, batchLen)
	for i := range batch {
		batch[i] = make([]byte, size)
	}
	var total bulkResult
	b.ResetTimer()
	for range b.N {
		total.add(cb.stream(b, batch, d, pin))
	}
	b.StopTimer()
	tcp, _ := tcpStream(b, p, d, size*batchLen, pin)
	tcpMsgs := float64(tcp.Bytes/size) / tcp.Elapsed.Seconds()
	b.ReportMetric(total.msgsps(), "msgs/s")
	b.ReportMetric(tcpMsgs, "tcp-msgs/s")
	b.ReportMetric(total.msgsps()/tcpMsgs, "ratio")
	b.ReportMetric(cpuPerGB(total.cpu, total.bytes), "cpu-s/GB")
	b.Logf("%s: %d messages in %v (%.1f msgs/frame); %s", pin, total.msgs, total.elapsed.Round(time.Millisecond),
		float64(total.msgs)/float64(max(cb.a.Stats().DataFramesSent, 1)), cb.diag())
}

// BenchmarkLossy: goodput of 1 MiB messages over Conn at MTU 1500 with 5% of
// frames lost in each direction (FaultyLink), against the same transfer
// without loss in the same run.
//
//	sudo go test ./tests/ -run '^$' -bench 'Lossy' -benchtime=1x
func BenchmarkLossy(b *testing.B) {
	for _, loss := range []int{5} {
		b.Run(fmt.Sprintf("loss=%dpct", loss), func(b *testing.B) {
			pin, d := connBenchPin(b, noPin), benchDuration(b)
			msg := [][]byte{make([]byte, bulkMsg)}
			run := func(f l2transport.Faults) (bulkResult, l2transport.SessionStats) {
				p := netnstest.NewPair(b, netnstest.Config{})
				cb := newConnBench(b, p, f, 1, nil)
				var total bulkResult
				for range b.N {
					total.add(cb.stream(b, msg, d, pin))
				}
				return total, cb.a.Stats()
			}
			b.ResetTimer()
			lossy, ls := run(l2transport.Faults{Loss: float64(loss) / 100})
			clean, _ := run(l2transport.Faults{})
			b.StopTimer()
			b.ReportMetric(lossy.mbps(), "lossy-MB/s")
			b.ReportMetric(clean.mbps(), "lossless-MB/s")
			b.ReportMetric(lossy.mbps()/clean.mbps(), "ratio")
			b.ReportMetric(cpuPerGB(lossy.cpu, lossy.bytes), "lossy-cpu-s/GB")
			b.Logf("%s: lossy %d frames, %d retransmits (%d fast, %d timeouts, %d of them spurious), SRTT %v",
				pin, ls.DataFramesSent, ls.Retransmits, ls.FastRetransmits, ls.Timeouts, ls.SpuriousTimeouts, ls.SRTT)
		})
	}
}

// BenchmarkPingPong: a 64-byte request answered by a 64-byte response over
// Conn (B's handler sends the echo; A waits in Recv), against a 64-byte Go TCP
// ping-pong over the same veth. One iteration is 30000 round trips (over 2 s).
//
//	sudo go test ./tests/ -run '^$' -bench 'PingPong$' -benchtime=1x
func BenchmarkPingPong(b *testing.B) {
	const rounds, size, warmup = 30000, 64, 200
	p := netnstest.NewPair(b, netnstest.Config{})
	la, lb := faultyPair(b, p, l2transport.Faults{}, 1)
	var echoErr atomic.Value
	var bc *l2transport.Conn
	var once sync.Once
	bc, err := l2transport.NewConn(lb, sessionConfig(2), l2transport.WithHandler(func(m l2transport.Message) {
		if err := bc.TrySend(m.Data, m.TxnID); err != nil {
			once.Do(func() { echoErr.Store(err) })
		}
	}))
	if err != nil {
		b.Fatal(err)
	}
	defer bc.Close()
	ac, err := l2transport.NewConn(la, sessionConfig(1))
	if err != nil {
		b.Fatal(err)
	}
	defer ac.Close()
	pin := connBenchPin(b, netnstest.DefaultPin())
	ping := make([]byte, size)
	var l2 netnstest.LatencyResult
	b.ResetTimer()
	for range b.N {
		l2 = func() netnstest.LatencyResult {
			undo, err := pin.Apply()
			if err != nil {
				b.Fatal(err)
			}
			defer undo()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			rtts := make([]time.Duration, 0, rounds)
			for i := range warmup + rounds {
				t0 := time.Now()
				if err := ac.Send(ctx, ping, uint64(i)); err != nil {
					b.Fatalf("ping %d: %v", i, err)
				}
				m, err := ac.Recv(ctx)
				if err != nil {
					b.Fatalf("pong %d: %v (echo: %v)", i, err, echoErr.Load())
				}
				if m.TxnID != uint64(i) || len(m.Data) != size {
					b.Fatalf("pong %d: transaction %d, %d bytes", i, m.TxnID, len(m.Data))
				}
				if i >= warmup {
					rtts = append(rtts, time.Since(t0))
				}
			}
			return netnstest.Latencies(rtts)
		}()
	}
	b.StopTimer()
	tcp, err := netnstest.TCPPingPong(p, rounds, size, pin)
	if err != nil {
		b.Fatal(err)
	}
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	b.ReportMetric(us(l2.P50), "p50-us")
	b.ReportMetric(us(l2.P99), "p99-us")
	b.ReportMetric(us(tcp.P50), "tcp-p50-us")
	b.ReportMetric(us(tcp.P99), "tcp-p99-us")
	b.ReportMetric(float64(l2.P50)/float64(tcp.P50), "ratio-p50")
	as := ac.Stats()
	b.Logf("%s: l2 %+v; tcp %+v; A sent %d data frames, %d acks; B sent %d acks", pin, l2, tcp,
		as.DataFramesSent, as.AcksSent, bc.Stats().AcksSent)
}

//go:build linux

package heartbeat

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/swha/swha/l2transport"
)

var (
	detectRounds = flag.Int("heartbeat.rounds", 20, "BenchmarkDetect: peer deaths measured per configuration")
	soakTime     = flag.Duration("heartbeat.soak", 10*time.Second, "BenchmarkDetect/busy: how long the loaded soak runs")
)

type timers struct {
	name     string
	interval time.Duration
	mult     int
}

var benchTimers = []timers{{"5ms×4", DefaultInterval, DefaultMultiplier}, {"1ms×3", time.Millisecond, 3}}

// BenchmarkDetect measures, at -benchtime=1x, how long after the peer's runner
// stops (Close: silent, as a crash) the survivor declares it down, over an
// in-memory pair and over veth between network namespaces (root), at the
// default timers and at 1 ms × 3; and, with NumCPU+2 busy loops on the machine,
// false Downs, the largest gap and the detector's lateness over a soak, then
// detection under that load. Timings are wall-clock: they belong here, not in
// the tests.
func BenchmarkDetect(b *testing.B) {
	for _, tm := range benchTimers {
		b.Run("mem/"+tm.name, func(b *testing.B) {
			for range b.N {
				la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 1)
				detectRoundsOver(b, la, lb, tm, "")
				la.Close()
				lb.Close()
			}
		})
	}
	for _, tm := range benchTimers {
		b.Run("veth/"+tm.name, func(b *testing.B) {
			for range b.N {
				p := newVethPair(b)
				detectRoundsOver(b, p.afpacket(b, p.a, heartbeatOnly), p.afpacket(b, p.b, heartbeatOnly), tm, "")
			}
		})
	}
	for _, prio := range []string{"", "nice", "rt"} {
		name := "busy/veth/5ms×4"
		if prio != "" {
			name += "/" + prio
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				p := newVethPair(b)
				stop := busyLoops(b, runtime.NumCPU()+2)
				la, lb := p.afpacket(b, p.a, heartbeatOnly), p.afpacket(b, p.b, heartbeatOnly)
				soak(b, la, lb, prio)
				detectRoundsOver(b, la, lb, benchTimers[0], prio)
				stop()
			}
		})
	}
}

// detectRoundsOver runs survivor a over la and, each round, a new incarnation
// of the peer over lb: up, a random fraction of an interval, Close, and the time
// to a's Down.
func detectRoundsOver(b *testing.B, la, lb l2transport.Link, tm timers, prio string) {
	cfg := func(name string, local, peer uint64) RunnerConfig {
		return priority(RunnerConfig{Path: PathConfig{Name: name, LocalID: local, PeerID: peer, Interval: tm.interval, Multiplier: tm.mult}}, prio)
	}
	a, err := NewRunner(la, cfg("a", 1, 2))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	var detect []time.Duration
	var closeMax time.Duration // how long Close took: the peer stops within it
	late := 0
	for range *detectRounds {
		peer, err := NewRunner(lb, cfg("b", 2, 1))
		if err != nil {
			b.Fatal(err)
		}
		waitEvent(b, a, EventUp, 10*time.Second)
		time.Sleep(50*time.Millisecond + rand.N(tm.interval))
		if flapped(a) || !a.Up() {
			// A false Down under load before the kill: counted, round skipped.
			late++
			peer.Close()
			continue
		}
		t := time.Now()
		peer.Close()
		closeMax = max(closeMax, time.Since(t))
		e := waitEvent(b, a, EventDown, 10*time.Second)
		detect = append(detect, e.At.Sub(t))
	}
	slices.Sort(detect)
	if len(detect) == 0 {
		b.Fatal("no detection measured")
	}
	q := func(f float64) float64 {
		return float64(detect[min(len(detect)-1, int(f*float64(len(detect))))]) / 1e6
	}
	b.ReportMetric(q(0.5), "detect-p50-ms")
	b.ReportMetric(q(0.99), "detect-p99-ms")
	b.ReportMetric(q(1), "detect-max-ms")
	b.ReportMetric(float64(closeMax)/1e6, "close-max-ms")
	if late > 0 {
		b.ReportMetric(float64(late), "false-downs-in-rounds")
	}
	b.ReportMetric(0, "ns/op")
}

// soak runs a pair for soakTime and reports false Downs, the largest gap between
// live heartbeats and the detector's self-judgement.
func soak(b *testing.B, la, lb l2transport.Link, prio string) {
	var rs [2]*Runner
	for i, l := range []l2transport.Link{la, lb} {
		r, err := NewRunner(l, priority(RunnerConfig{Path: PathConfig{Name: fmt.Sprint(i), LocalID: uint64(i + 1), PeerID: uint64(2 - i)}}, prio))
		if err != nil {
			b.Fatal(err)
		}
		rs[i] = r
	}
	for _, r := range rs {
		waitEvent(b, r, EventUp, 10*time.Second)
	}
	time.Sleep(*soakTime)
	var downs, discounted, saved, drained, lateWakes, wakes uint64
	var gap, lateMax time.Duration
	var hist [LatenessBuckets]uint64
	for _, r := range rs {
		r.Close()
		for e := range r.Events() {
			if e.Kind == EventDown {
				b.Logf("false down: %+v", e)
			}
		}
		st := r.Stats()
		downs += st.Downs
		discounted += st.DiscountedDowns
		saved += st.SavedByGrace
		drained += st.SavedByDrain
		lateWakes += st.LateWakeups
		wakes += st.Wakeups
		gap, lateMax = max(gap, st.LargestGap), max(lateMax, st.MaxLateness)
		for i, n := range st.Lateness {
			hist[i] += n
		}
		if prio == "rt" && !st.RealTime || prio == "nice" && !st.Niced {
			b.Logf("%s refused; the variant ran at normal priority", prio)
		}
	}
	b.ReportMetric(float64(downs), "false-downs")
	b.ReportMetric(float64(gap)/1e6, "max-gap-ms")
	b.ReportMetric(float64(lateMax)/1e6, "max-late-ms")
	b.ReportMetric(latenessQuantile(hist, wakes, 0.99), "late-p99-ms")
	b.ReportMetric(float64(lateWakes), "late-wakeups")
	b.ReportMetric(float64(discounted), "discounted-downs")
	b.ReportMetric(float64(saved), "saved-by-grace")
	b.ReportMetric(float64(drained), "saved-by-drain")
}

// priority sets the scheduling of a benchmark variant: "" normal, "nice" -20,
// "rt" SCHED_FIFO.
func priority(c RunnerConfig, prio string) RunnerConfig {
	c.RealTime = prio == "rt"
	if prio == "nice" {
		c.Nice = -20
	}
	return c
}

// latenessQuantile is the upper bound of the Stats.Lateness bucket holding
// quantile q, in milliseconds.
func latenessQuantile(hist [LatenessBuckets]uint64, total uint64, q float64) float64 {
	var seen uint64
	for i, n := range hist {
		seen += n
		if float64(seen) >= q*float64(total) {
			return float64(time.Duration(64<<i)*time.Microsecond) / 1e6
		}
	}
	return float64(time.Duration(64<<(LatenessBuckets-1))*time.Microsecond) / 1e6
}

// flapped takes the events already queued on r and reports whether a Down is
// among them.
func flapped(r *Runner) bool {
	down := false
	for {
		select {
		case e := <-r.Events():
			down = down || e.Kind == EventDown
		default:
			return down
		}
	}
}

func waitEvent(b *testing.B, r *Runner, k EventKind, timeout time.Duration) Event {
	b.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e, ok := <-r.Events():
			if !ok {
				b.Fatalf("%v: events closed", k)
			}
			if e.Kind == k {
				return e
			}
		case <-deadline:
			b.Fatalf("no %v in %v", k, timeout)
		}
	}
}

// busyLoops starts n shell busy loops and returns what kills them.
func busyLoops(b *testing.B, n int) (stop func()) {
	var cmds []*exec.Cmd
	stop = func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
		cmds = nil
	}
	b.Cleanup(stop)
	for range n {
		c := exec.Command("sh", "-c", "while :; do :; done")
		if err := c.Start(); err != nil {
			b.Fatalf("start a busy loop: %v", err)
		}
		cmds = append(cmds, c)
	}
	return stop
}

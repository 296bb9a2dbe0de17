package swha

import (
	"context"
	"testing"
	"time"
)

// BenchmarkReplicateRoutes streams asynchronous transactions of 100 new
// route objects each from an active node to a standby node over a perfect
// in-memory link, and stops the clock when the standby has applied the
// last one. One iteration moves routesPerIter objects into a store that
// starts empty (growth included), so -benchtime=1x gives a meaningful
// figure. active-s/op is the time the active application took to create and
// commit them; the rest of ns/op is the standby catching up.
func BenchmarkReplicateRoutes(b *testing.B) {
	// grow: both stores start empty and grow to the million objects, as a
	// switch's do on its first full table. presized: both were told to
	// expect them (Config.SizeHint), as a switch that knows its scale is.
	b.Run("grow", func(b *testing.B) { replicateRoutes(b, 0) })
	b.Run("presized", func(b *testing.B) { replicateRoutes(b, routesPerIter+1024) })
}

const (
	routesPerIter = 1 << 20
	perTxn        = 100
)

func replicateRoutes(b *testing.B, sizeHint int) {
	p := newTestPair(b, pairOpts{mode: Async, sizeHint: sizeHint})
	hops := make([]*testHop, 256)
	tx, err := p.act.Begin(bg())
	must(b, err)
	for i := range hops {
		hops[i] = &testHop{Addr: hopAddr(i), Iface: "eth0"}
		_, err := tx.Create(hops[i])
		must(b, err)
	}
	must(b, tx.Commit(bg()))
	next := 0
	b.ResetTimer()
	var produce time.Duration
	for b.Loop() {
		// Fresh objects every iteration: the store grows by routesPerIter
		// each time (one iteration takes seconds, so -benchtime=1x or the
		// default 1s runs one).
		routes := make([]testRoute, routesPerIter)
		start := time.Now()
		for i := 0; i < routesPerIter; i += perTxn {
			tx, err := p.act.Begin(bg())
			if err != nil {
				b.Fatal(err)
			}
			for j := i; j < i+perTxn && j < routesPerIter; j++ {
				r := &routes[j]
				*r = testRoute{Prefix: pfx(next), NextHop: hops[next%len(hops)], Metric: uint32(next), Communities: []uint32{65000 << 16, uint32(next)}}
				next++
				if _, err := tx.Create(r); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(bg()); err != nil {
				b.Fatal(err)
			}
		}
		produced := time.Since(start)
		waitApplied(b, p)
		produce += produced
	}
	b.ReportMetric(float64(routesPerIter)*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
	b.ReportMetric(produce.Seconds()/float64(b.N), "active-s/op")
	st := p.act.Stats()
	b.ReportMetric(float64(st.WindowWaits)/float64(b.N), "window-waits/op")
}

func waitApplied(b *testing.B, p *testPair) {
	ctx, cancel := context.WithTimeout(bg(), time.Minute)
	defer cancel()
	for {
		st := p.act.Stats()
		if st.AckedSeq >= st.CommittedSeq {
			return
		}
		if ctx.Err() != nil {
			b.Fatalf("standby stuck: active %+v standby %+v", st, p.sby.Stats())
		}
		time.Sleep(50 * time.Microsecond)
	}
}

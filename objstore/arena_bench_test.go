package objstore

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkSyncDirty times a Sync of a million 64-byte arena objects of
// which a few changed, against the full diff of the same store finding the
// same number of changes in the same run (ratio-vs-scan), and the cost of the first write to a protected page
// (ns/first-write, the tax a tracked arena puts on the writer). Each
// iteration is one Sync, so -benchtime=1x is meaningful.
func BenchmarkSyncDirty(b *testing.B) {
	const n = 1000000
	r := NewRegistry()
	if err := r.Register("Wide", Wide{}, InArena()); err != nil {
		b.Fatal(err)
	}
	var sent int
	s, err := NewStore(r, Config{SizeHint: n, Sink: SinkFunc(func(rec []byte) error {
		if rec[0] == recUpdate {
			sent++
		}
		return nil
	})})
	if err != nil {
		b.Fatal(err)
	}
	requireTracking(b, s)
	arena, err := ArenaOf[Wide](s.View())
	if err != nil {
		b.Fatal(err)
	}
	objs := make([]*Wide, n)
	tx, _ := s.Begin()
	for k := range objs {
		if objs[k], err = arena.New(); err != nil {
			b.Fatal(err)
		}
		objs[k].Key = uint64(k)
		if _, err := tx.Create(objs[k]); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	syncOnce := func() time.Duration {
		start := time.Now()
		if err := s.Sync(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	syncOnce() // protect the pages the creates wrote
	rng := xorshift(88172645463325252)
	change := func(k int) {
		for range k {
			objs[rng.next(n)].Vals[1]++
		}
	}

	a := s.arenas[0]
	for _, changed := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("objects=%d/changed=%d", n, changed), func(b *testing.B) {
			var took, full time.Duration
			var tax float64
			for range b.N {
				tax += firstWriteTax(objs, syncOnce)
				// The same change, found by the full diff (the fallback).
				change(changed)
				track := s.track
				s.track = nil
				full += syncOnce()
				s.track = track
				syncOnce()

				sent = 0
				change(changed)
				took += syncOnce()
				if sent == 0 || sent > changed {
					b.Fatalf("%d updates sent for %d changes", sent, changed)
				}
			}
			us := float64(took.Nanoseconds()) / 1e3 / float64(b.N)
			b.ReportMetric(us, "us/op")
			b.ReportMetric(float64(full.Nanoseconds())/1e3/float64(b.N)/us, "ratio-vs-scan")
			b.ReportMetric(tax/float64(b.N), "ns/first-write")
			b.ReportMetric(float64(a.lastRun.pages), "dirty-pages")
			fullDiff := 0.0
			if a.lastRun.full {
				fullDiff = 1
			}
			b.ReportMetric(fullDiff, "full-diff")
		})
	}
}

// firstWriteTax returns how much longer a first write to a protected page
// takes than a write to the same page once it is written, per page, over
// a thousand pages (64 objects of Wide to a page), and syncs them away.
func firstWriteTax(objs []*Wide, sync func() time.Duration) float64 {
	const pages = 1000
	pass := func() time.Duration {
		start := time.Now()
		for pg := range pages {
			objs[pg*64*7].Vals[2]++ // every seventh page
		}
		return time.Since(start)
	}
	first := pass()
	second := pass()
	sync()
	return float64((first - second).Nanoseconds()) / pages
}

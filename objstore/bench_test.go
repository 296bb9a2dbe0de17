package objstore

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// benchRoutes builds an active store with n routes sharing n/100 next hops,
// committed in batches, with records discarded.
func benchRoutes(b *testing.B, n int, sink RecordSink) (*Store, []*Route) {
	b.Helper()
	s, err := NewStore(testRegistry(b), Config{Sink: sink})
	if err != nil {
		b.Fatal(err)
	}
	hops := make([]*NextHop, max(n/100, 1))
	routes := make([]*Route, n)
	const batch = 10000
	tx, _ := s.Begin()
	for i := range hops {
		hops[i] = &NextHop{Addr: netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), Iface: "eth0"}
		if _, err := tx.Create(hops[i]); err != nil {
			b.Fatal(err)
		}
	}
	for i := range routes {
		routes[i] = &Route{
			Prefix:      netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32),
			NextHop:     hops[i%len(hops)],
			Metric:      uint32(i),
			Protocol:    2,
			Communities: []uint32{65000<<16 | uint32(i&0xffff), 42},
			Updated:     time.Unix(1700000000, 0).UTC(),
		}
		if _, err := tx.Create(routes[i]); err != nil {
			b.Fatal(err)
		}
		if i%batch == batch-1 {
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			tx, _ = s.Begin()
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return s, routes
}

// xorshift picks objects in a fixed pseudo-random order: a routing daemon's
// changes hit cold objects, not the same one over and over.
type xorshift uint64

func (x *xorshift) next(n int) int {
	*x ^= *x << 13
	*x ^= *x >> 7
	*x ^= *x << 17
	return int(uint64(*x) % uint64(n))
}

func BenchmarkCommitOneChange(b *testing.B) {
	benchCommitOneChange(b, func(routes []*Route, rng *xorshift) *Route { return routes[rng.next(len(routes))] })
}

// BenchmarkCommitOneChangeHot commits changes to one object over and over:
// everything the commit touches stays in cache, so the 1M/1K ratio isolates
// the algorithmic cost from DRAM latency (which BenchmarkCommitOneChange,
// picking a random object each time, includes).
func BenchmarkCommitOneChangeHot(b *testing.B) {
	benchCommitOneChange(b, func(routes []*Route, _ *xorshift) *Route { return routes[len(routes)/2] })
}

// BenchmarkCommitCreateDelete commits, per transaction, the create of a
// route through a random next hop and the delete of a random route, at 1K
// and 1M objects: a commit that creates and deletes pointers, whose
// bookkeeping (the incoming pointer counts, refcount.go) must not grow with
// the store.
func BenchmarkCommitCreateDelete(b *testing.B) {
	for _, n := range []int{1000, 1000000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			s, routes := benchRoutes(b, n, Discard)
			rng := xorshift(88172645463325252)
			b.ReportAllocs()
			for b.Loop() {
				k := rng.next(len(routes))
				old := routes[k]
				r := &Route{Prefix: old.Prefix, NextHop: routes[rng.next(len(routes))].NextHop, Communities: old.Communities}
				tx, err := s.Begin()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tx.Create(r); err != nil {
					b.Fatal(err)
				}
				if err := tx.Delete(old); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
				routes[k] = r
			}
		})
	}
}

// benchCommitOneChange commits one changed metric per transaction, of the
// route pick chooses, at 1K and 1M objects, and reports the ratio.
//
// app-ns/op is the application's own share, measured in the same run on the
// same routes without the store: choosing the route, changing it and reading
// what a diff must read (its fields and its communities). With a random pick
// that share alone grows with the store, from cache hits at 1K to DRAM and
// TLB misses at 1M, so store-ratio-vs-1K divides out what no store can
// avoid and leaves the store's own growth.
func benchCommitOneChange(b *testing.B, pick func([]*Route, *xorshift) *Route) {
	var small, smallStore float64
	for _, n := range []int{1000, 1000000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			s, routes := benchRoutes(b, n, Discard)
			rng := xorshift(88172645463325252)
			b.ReportAllocs()
			for b.Loop() {
				r := pick(routes, &rng)
				r.Metric++
				tx, err := s.Begin()
				if err != nil {
					b.Fatal(err)
				}
				if err := tx.Update(r); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			app := appShare(routes, pick, b.N)
			b.ReportMetric(app, "app-ns/op")
			if n == 1000 {
				small, smallStore = per, per-app
			} else if small > 0 {
				b.ReportMetric(per/small, "ratio-vs-1K")
				b.ReportMetric((per-app)/smallStore, "store-ratio-vs-1K")
			}
		})
	}
}

// appShare times count rounds of the application's part of a commit loop.
func appShare(routes []*Route, pick func([]*Route, *xorshift) *Route, count int) float64 {
	rng := xorshift(2463534242)
	var sum uint32
	start := time.Now()
	for range count {
		r := pick(routes, &rng)
		r.Metric++
		sum += r.Metric + r.Tag + uint32(r.Prefix.Bits())
		for _, c := range r.Communities {
			sum += c
		}
		// The next pick waits for this one's loads, as a commit loop's does
		// (its lock's atomic instructions order them): otherwise the CPU
		// overlaps the misses of consecutive rounds and the share looks
		// smaller than it is.
		rng += xorshift(sum & 1)
	}
	el := time.Since(start)
	appSink += sum
	return float64(el.Nanoseconds()) / float64(count)
}

// appSink keeps appShare's reads from being optimised away.
var appSink uint32

func BenchmarkSyncScan(b *testing.B) {
	for _, n := range []int{1000000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			var sent int
			s, routes := benchRoutes(b, n, SinkFunc(func(rec []byte) error {
				if rec[0] == recUpdate {
					sent++
				}
				return nil
			}))
			rng := xorshift(88172645463325252)
			sent = 0
			for b.Loop() {
				for k := 0; k < 10; k++ {
					routes[rng.next(n)].Metric++
				}
				tx, _ := s.Begin()
				_ = tx.Sync()
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			if sent < 9*b.N {
				b.Fatalf("%d updates sent for %d scans of 10 changes", sent, b.N)
			}
		})
	}
}

// streamOf returns the records replicating n routes in transactions of 100.
func streamOf(b *testing.B, n int) (buf []byte, ends []int) {
	b.Helper()
	s, err := NewStore(testRegistry(b), Config{Sink: SinkFunc(func(rec []byte) error {
		buf = append(buf, rec...)
		ends = append(ends, len(buf))
		return nil
	})})
	if err != nil {
		b.Fatal(err)
	}
	hops := make([]*NextHop, max(n/100, 1))
	tx, _ := s.Begin()
	for i := range hops {
		hops[i] = &NextHop{Addr: netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), Iface: "eth0"}
		_, _ = tx.Create(hops[i])
	}
	_ = tx.Commit()
	tx, _ = s.Begin()
	for i := 0; i < n; i++ {
		r := &Route{
			Prefix:      netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32),
			NextHop:     hops[i%len(hops)],
			Metric:      uint32(i),
			Communities: []uint32{65000<<16 | uint32(i&0xffff), 42},
			Updated:     time.Unix(1700000000, 0).UTC(),
		}
		if _, err := tx.Create(r); err != nil {
			b.Fatal(err)
		}
		if i%100 == 99 {
			_ = tx.Commit()
			tx, _ = s.Begin()
		}
	}
	_ = tx.Commit()
	return buf, ends
}

func applyAll(b *testing.B, s *Store, buf []byte, ends []int) {
	start := 0
	for _, end := range ends {
		if err := s.Apply(buf[start:end]); err != nil {
			b.Fatal(err)
		}
		start = end
	}
}

func BenchmarkApply(b *testing.B) {
	const n = 100000
	buf, ends := streamOf(b, n)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		s, _ := NewStore(testRegistry(b), Config{Standby: true})
		applyAll(b, s, buf, ends)
		if s.Len() != n+n/100 {
			b.Fatalf("standby has %d objects", s.Len())
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func BenchmarkStandbyMemory(b *testing.B) {
	for _, n := range []int{1000000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			buf, ends := streamOf(b, n)
			var perObj float64
			for b.Loop() {
				before := heapInUse()
				s, _ := NewStore(testRegistry(b), Config{Standby: true})
				applyAll(b, s, buf, ends)
				after := heapInUse()
				perObj = float64(after-before) / float64(n)
				runtime.KeepAlive(s)
			}
			own := float64(unsafe.Sizeof(Route{})) + 2*4 // the route and its two communities
			b.ReportMetric(perObj, "bytes/object")
			b.ReportMetric(perObj/own, "overhead-ratio")
		})
	}
}

package objstore

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkCheckpoint saves a store of a million routes (and their ten
// thousand next hops) from an active, and loads that checkpoint into a
// fresh standby; apply-snapshot is the baseline: the same state applied as
// a live Snapshot. One iteration moves the whole store, so -benchtime=1x
// gives the figures.
func BenchmarkCheckpoint(b *testing.B) {
	for _, n := range []int{1000000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			s, _ := benchRoutes(b, n, Discard)
			objs := s.Len()
			var buf bytes.Buffer
			if _, err := s.Save(&buf); err != nil {
				b.Fatal(err)
			}
			size := buf.Len()
			data := bytes.Clone(buf.Bytes())
			// Baseline: the same state as a live Snapshot, applied record by
			// record, which is the Apply machinery Load ends in.
			var snap []byte
			var ends []int
			s.cfg.Sink = SinkFunc(func(rec []byte) error {
				snap = append(snap, rec...)
				ends = append(ends, len(snap))
				return nil
			})
			if _, err := s.Snapshot(); err != nil {
				b.Fatal(err)
			}
			s.cfg.Sink = Discard
			report := func(b *testing.B) {
				sec := b.Elapsed().Seconds()
				b.ReportMetric(float64(size)*float64(b.N)/1e6/sec, "MB/s")
				b.ReportMetric(float64(objs)*float64(b.N)/sec, "objects/s")
				b.ReportMetric(float64(size)/float64(objs), "bytes/object")
			}
			b.Run("save", func(b *testing.B) {
				buf.Grow(size)
				runtime.GC()
				b.ResetTimer()
				for range b.N {
					buf.Reset()
					if _, err := s.Save(&buf); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				report(b)
			})
			b.Run("load", func(b *testing.B) {
				fillFreshStandbys(b, objs, func(sby *Store) {
					if err := sby.Load(bytes.NewReader(data)); err != nil {
						b.Fatal(err)
					}
				})
				report(b)
			})
			b.Run("apply-snapshot", func(b *testing.B) {
				fillFreshStandbys(b, objs, func(sby *Store) { applyAll(b, sby, snap, ends) })
				report(b)
			})
		})
	}
}

// fillFreshStandbys times fill on a new, empty standby store per iteration,
// with the store's creation and a collection outside the timer, and checks
// that it then holds objs objects.
func fillFreshStandbys(b *testing.B, objs int, fill func(*Store)) {
	b.StopTimer()
	for range b.N {
		sby, err := NewStore(testRegistry(b), Config{Standby: true})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		b.StartTimer()
		fill(sby)
		b.StopTimer()
		if sby.Len() != objs {
			b.Fatalf("standby holds %d objects, want %d", sby.Len(), objs)
		}
	}
}

package objstore_test

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/swha/swha/internal/skewtest"
	"github.com/swha/swha/objstore"
)

// benchStream commits n v1 benchmark routes (sharing n/100 next hops) in
// transactions of 1000 and returns the records, as a v1 active streams them.
func benchStream(b *testing.B, n int) (buf []byte, ends []int) {
	b.Helper()
	r, err := skewtest.NewRegistry(skewtest.V1)
	if err != nil {
		b.Fatal(err)
	}
	s, err := objstore.NewStore(r, objstore.Config{SizeHint: n + n/100, Sink: objstore.SinkFunc(func(rec []byte) error {
		buf = append(buf, rec...)
		ends = append(ends, len(buf))
		return nil
	})})
	if err != nil {
		b.Fatal(err)
	}
	hops := make([]*skewtest.BenchHopV1, max(n/100, 1))
	tx, _ := s.Begin()
	for i := range hops {
		hops[i] = &skewtest.BenchHopV1{Addr: netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), Iface: "eth0"}
		if _, err := tx.Create(hops[i]); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		rt := &skewtest.BenchRouteV1{
			Prefix:      netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32),
			NextHop:     hops[i%len(hops)],
			Metric:      uint32(i),
			Distance:    20,
			Tag:         int32(i),
			Communities: []uint16{65000, uint16(i)},
			Updated:     time.Unix(1700000000, 0).UTC(),
		}
		if _, err := tx.Create(rt); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			tx, _ = s.Begin()
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return buf, ends
}

// applyStream applies the records to a fresh standby of version v and
// returns how long that took (the store's creation excluded).
func applyStream(b *testing.B, v skewtest.Version, buf []byte, ends []int, want int) time.Duration {
	b.Helper()
	r, err := skewtest.NewRegistry(v)
	if err != nil {
		b.Fatal(err)
	}
	s, err := objstore.NewStore(r, objstore.Config{Standby: true, SizeHint: want})
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	start := time.Now()
	prev := 0
	for _, end := range ends {
		if err := s.Apply(buf[prev:end]); err != nil {
			b.Fatal(err)
		}
		prev = end
	}
	d := time.Since(start)
	if s.Len() != want {
		b.Fatalf("%v standby holds %d objects, want %d", v, s.Len(), want)
	}
	return d
}

// BenchmarkTransform applies a v1 active's stream of 1M route creates to a v2
// standby (every record transformed: widened fields, a rename, an added
// field) and, in the same run, to a v1 standby (same version, no
// transformation). Each is timed twice per iteration and the faster run
// counts, since the shared VM pauses now and then; ratio = transformed /
// same-version throughput.
func BenchmarkTransform(b *testing.B) {
	const n = 1000000
	buf, ends := benchStream(b, n)
	want := n + n/100
	var same, skew time.Duration
	for i := 0; i < b.N; i++ {
		same, skew = time.Duration(1<<62), time.Duration(1<<62)
		for range 2 {
			same = min(same, applyStream(b, skewtest.V1, buf, ends, want))
			skew = min(skew, applyStream(b, skewtest.V2, buf, ends, want))
		}
	}
	b.ReportMetric(float64(want)/skew.Seconds(), "objects/s")
	b.ReportMetric(float64(want)/same.Seconds(), "same-version-objects/s")
	b.ReportMetric(same.Seconds()/skew.Seconds(), "ratio")
}

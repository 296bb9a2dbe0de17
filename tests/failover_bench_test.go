//go:build linux

package tests

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/swha/swha"
	"github.com/swha/swha/heartbeat"
)

// The failover benchmarks run real hanode processes in two namespaces (see
// failover_test.go); one iteration runs all its trials, so -benchtime=1x is
// meaningful:
//
//	go test ./tests/ -run '^$' -bench 'BenchmarkFailover|BenchmarkSwitchover' -benchtime=1x
//
// SWHA_FAILOVER_BENCH_TRIALS (default 20) sets the trials per iteration.

// BenchmarkFailover: kill -9 of the active while it commits (1000
// synchronous transactions/s); detect is kill → the standby's peer-down on
// the HA path (its own timestamp), promote is kill → its first accepted
// commit. The baseline is the configured detection time, interval ×
// multiplier.
func BenchmarkFailover(b *testing.B) {
	for _, tm := range []struct {
		name     string
		interval time.Duration
		mult     int
		beacon   bool
	}{
		{"timers=default", 0, 0, false},
		{"timers=1msx3", time.Millisecond, 3, false},
		// A death beacon reports a killed process; silence is then left
		// to catch freezes, at 40 intervals.
		{"timers=default,beacon", 0, 0, true},
	} {
		b.Run(tm.name, func(b *testing.B) {
			trials := envInt(b, "SWHA_FAILOVER_BENCH_TRIALS", 20)
			interval, mult := tm.interval, tm.mult
			if interval == 0 {
				interval, mult = heartbeat.DefaultInterval, heartbeat.DefaultMultiplier
				if tm.beacon {
					mult = swha.BeaconMultiplier
				}
			}
			seed := rand.Uint64()
			b.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 17))
			var detect, promote []float64
			lost, falseFailovers := 0, 0
			for range b.N {
				c := newHACluster(b, haOpts{Rate: 1000, Interval: tm.interval, Multiplier: tm.mult, Beacon: tm.beacon})
				c.start()
				for range trials {
					r := c.killTrial(rng, 50*time.Millisecond)
					if r.falseFailover {
						falseFailovers++
						continue
					}
					detect, promote = append(detect, ms(int64(r.detect))), append(promote, ms(int64(r.promote)))
					lost += r.lost
				}
				c.checkFinal()
			}
			conf := ms(int64(interval) * int64(mult))
			b.ReportMetric(pctl(detect, 50), "detect-ms-p50")
			b.ReportMetric(pctl(detect, 99), "detect-ms-p99")
			b.ReportMetric(pctl(promote, 50), "promote-ms-p50")
			b.ReportMetric(pctl(promote, 99), "promote-ms-p99")
			b.ReportMetric(float64(lost), "lost-acked-txns")
			b.ReportMetric(conf, "configured-detect-ms")
			b.ReportMetric(float64(falseFailovers), "false-failovers")
			b.ReportMetric(pctl(detect, 99)/conf, "detect-p99/configured")
			b.ReportMetric(0, "ns/op")
			b.Logf("%d trials: detect %s; promote %s", len(detect), dist(detect), dist(promote))
		})
	}
}

// BenchmarkSwitchover: planned switchovers under a steady load of 2000
// synchronous commits/s; unavailable is the longest window with no commit
// accepted on either node, from both nodes' commit timestamps. The baseline
// is the longest gap between commits in as long a stretch just before
// (the load's own spacing plus scheduling).
func BenchmarkSwitchover(b *testing.B) {
	trials := envInt(b, "SWHA_FAILOVER_BENCH_TRIALS", 20)
	var un, steady []float64
	lost := 0
	for range b.N {
		c := newHACluster(b, haOpts{Rate: 2000})
		c.start()
		for range trials {
			r := c.switchoverTrial()
			un, steady = append(un, ms(int64(r.unavailable))), append(steady, ms(int64(r.steadyGap)))
			lost += r.lost
		}
		c.checkFinal()
	}
	b.ReportMetric(pctl(un, 50), "unavailable-ms-p50")
	b.ReportMetric(pctl(un, 99), "unavailable-ms-p99")
	b.ReportMetric(float64(lost), "lost-acked-txns")
	b.ReportMetric(pctl(steady, 99), "steady-gap-ms-p99")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d switchovers: unavailable %s; steady gap before %s", len(un), dist(un), dist(steady))
}

// dist formats a sample's p50, p90, p99 and max.
func dist(xs []float64) string {
	return fmt.Sprintf("p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms", pctl(xs, 50), pctl(xs, 90), pctl(xs, 99), pctl(xs, 100))
}

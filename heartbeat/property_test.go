package heartbeat

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/swha/swha/l2transport/linktest"
)

// seeds are the property tests' seeds, as in the other packages
// (linktest.Seeds: -seed=N replays one, -seeds=N runs N random ones).
func seeds(t *testing.T) []uint64 { return linktest.Seeds(t, linktest.PropertySeeds...) }

// TestPropertyFaults: over a wire that loses (never Multiplier−1 heartbeats in a
// row), duplicates, delays and reorders frames (by less than a quarter
// interval), with detectors waking up to a quarter interval late and an
// attacker replaying captured frames of both sides at random, the path never
// goes down while the peer sends; once the peer stops, it goes down within
// Multiplier intervals plus one, and replays never bring it back up.
func TestPropertyFaults(t *testing.T) {
	for _, tc := range []struct {
		name       string
		interval   time.Duration
		multiplier int
	}{
		{"default", DefaultInterval, DefaultMultiplier},
		{"1ms×3", time.Millisecond, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, seed := range seeds(t) {
				t.Run(fmt.Sprint(seed), func(t *testing.T) {
					defer func() {
						if t.Failed() {
							t.Logf("replay with: go test ./heartbeat -run 'TestPropertyFaults/%s' -seed=%d", tc.name, seed)
						}
					}()
					propertyRun(t, seed, tc.interval, tc.multiplier)
				})
			}
		})
	}
}

func propertyRun(t *testing.T, seed uint64, iv time.Duration, mult int) {
	rng := rand.New(rand.NewPCG(seed, 0x4b))
	ca, cb := pathConfig("a", 1, 2, rng.Uint64()|1), pathConfig("b", 2, 1, rng.Uint64()|1)
	for _, c := range []*PathConfig{&ca, &cb} {
		c.Interval, c.Multiplier = iv, mult
		c.Rand = rand.NewPCG(rng.Uint64(), rng.Uint64())
	}
	loss := rng.Float64() * 0.3
	dup := rng.Float64() * 0.2
	maxDelay := iv / 4
	maxLate := iv / 4
	s := newSimLatency(t, ca, cb, 50*time.Microsecond)
	s.delay = func() time.Duration { return 20*time.Microsecond + time.Duration(rng.Int64N(int64(maxDelay))) }
	for _, n := range []*node{s.a, s.b} {
		run := 0 // consecutive losses in this direction
		n.drop = func(f []byte) bool {
			if run < mult-2 && rng.Float64() < loss {
				run++
				return true
			}
			run = 0
			if rng.Float64() < dup {
				s.inject(n.peer, f)
			}
			return false
		}
		n.late = func(time.Time) time.Duration { return time.Duration(rng.Int64N(int64(maxLate))) }
	}
	replay := func() {
		for range rng.IntN(4) {
			n := []*node{s.a, s.b}[rng.IntN(2)]
			if len(n.sent) > 0 {
				s.inject(n.peer, n.sent[rng.IntN(len(n.sent))])
			}
		}
	}
	step := func(d time.Duration) {
		end := s.now.Add(d)
		for s.now.Before(end) {
			replay()
			s.run(iv / 2)
		}
	}
	if !s.runUntil(200*time.Millisecond, s.bothUp) {
		t.Fatalf("not up after 200 ms: a %v, b %v (loss %.2f)", s.a.p.State(), s.b.p.State(), loss)
	}
	step(time.Duration(500+rng.IntN(1500)) * iv)
	for _, n := range []*node{s.a, s.b} {
		if st := n.p.Stats(); st.Downs != 0 || st.Ups != 1 {
			t.Fatalf("%s: %d downs, %d ups while the peer sent (loss %.2f, dup %.2f): events %+v", n.name, st.Downs, st.Ups, loss, dup, n.events)
		}
	}
	// The peer stops; replays go on.
	s.b.stopped = true
	stop := s.now
	step(time.Duration(mult+2) * iv)
	e, ok := firstEvent(s.a, EventDown)
	bound := time.Duration(mult)*iv + iv
	if !ok || e.At.Sub(stop) > bound {
		t.Fatalf("down %+v (%v) %v after the stop, want within %v", e, ok, e.At.Sub(stop), bound)
	}
	step(200 * iv)
	if st := s.a.p.Stats(); s.a.p.Up() || st.Ups != 1 {
		t.Fatalf("a %v, %d ups after the peer stopped: replays brought it up", s.a.p.State(), st.Ups)
	}
}

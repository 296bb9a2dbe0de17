package linktest

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

var (
	seedFlag  = flag.Uint64("seed", 0, "run the randomized tests with only this seed (0: the fixed seeds and random ones)")
	seedsFlag = flag.Int("seeds", 1, "how many random seeds the randomized tests run besides the fixed ones (a longer run: -seeds=100)")
)

// PropertySeeds are the fixed seeds of the property tests of the root
// package, objstore, heartbeat and failover.
var PropertySeeds = []uint64{1, 2, 0x5eed, 20261202}

// DefaultSeeds are the fixed seeds a randomized test runs with when it names
// none: every run of the suite covers them, so a regression they catch is
// caught every time, not by luck.
var DefaultSeeds = []uint64{1, 2, 3}

// Seeds returns the seeds a randomized test runs with: fixed (DefaultSeeds if
// empty) and -seeds random ones (one by default), each logged with the flag
// that replays it. With -seed=N or SWHA_SEED=N set, it returns only N.
func Seeds(tb testing.TB, fixed ...uint64) []uint64 {
	tb.Helper()
	if s := replaySeed(tb); s != 0 {
		return []uint64{s}
	}
	if len(fixed) == 0 {
		fixed = DefaultSeeds
	}
	out := append([]uint64(nil), fixed...)
	for range *seedsFlag {
		r := rand.Uint64() | 1<<63 // never 0 (which means "none") nor a small fixed one
		tb.Logf("random seed %d (replay with -seed=%d or SWHA_SEED=%d)", r, r, r)
		out = append(out, r)
	}
	return out
}

// RunSeeds runs f as one subtest per seed of Seeds(t, fixed...), named
// seed=N, so a failure names the seed and -run selects it.
func RunSeeds(t *testing.T, fixed []uint64, f func(t *testing.T, seed uint64)) {
	t.Helper()
	for _, seed := range Seeds(t, fixed...) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { f(t, seed) })
	}
}

// replaySeed is the seed asked for with -seed or SWHA_SEED, or 0.
func replaySeed(tb testing.TB) uint64 {
	tb.Helper()
	if *seedFlag != 0 {
		return *seedFlag
	}
	v := os.Getenv("SWHA_SEED")
	if v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		tb.Fatalf("SWHA_SEED=%q: want a non-zero integer", v)
	}
	return n
}

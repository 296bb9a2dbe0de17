package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pauseProcess freezes this whole process (SIGSTOP, then SIGCONT from a
// shell outside it) for a random 200–300 ms after every random gap of
// 100–600 ms, n times, as a busy CI machine or a paused VM does: every
// thread stops at once, heartbeat threads included. The returned stop ends
// it, always leaving the process running.
func pauseProcess(t *testing.T, n int, seed uint64) (stop func()) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0))
	var plan strings.Builder
	for range n {
		fmt.Fprintf(&plan, "%.3f:%.3f ", 0.1+rng.Float64()*0.5, 0.2+rng.Float64()*0.1)
	}
	// The trap runs once the sleep under way ends: a stopped process is
	// always continued.
	script := fmt.Sprintf(`P=%d
trap 'kill -CONT $P 2>/dev/null; exit 0' TERM INT
for s in %s; do
	kill -0 $P 2>/dev/null || exit 0
	sleep ${s%%:*}; kill -STOP $P; sleep ${s#*:}; kill -CONT $P
done`, os.Getpid(), plan.String())
	cmd := exec.Command("sh", "-c", script)
	if err := cmd.Start(); err != nil {
		t.Skipf("no shell to pause the process: %v", err)
	}
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		_ = syscall.Kill(os.Getpid(), syscall.SIGCONT)
	}
}

// busyLoops starts n processes that spin, as the busy loops CI runs
// beside the tests.
func busyLoops(t *testing.T, n int) {
	t.Helper()
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Skipf("no shell for a busy loop: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
}

// TestDemoRidesOutPauses runs the default demo while two busy loops spin
// and the whole process is frozen for 200–300 ms again and again, with the
// default heartbeat timers (5 ms × 4): such a pause can make the standby
// promote itself with the active alive. The demo must not fail for it: it
// reports each false failover, verifies the new active holds every
// acknowledged transaction, and goes on.
func TestDemoRidesOutPauses(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	busyLoops(t, 2)
	total := 0
	for _, seed := range []uint64{1, 2} {
		o := defaultDemoOptions()
		o.seed = seed
		stop := pauseProcess(t, 40, seed)
		start := time.Now()
		var out bytes.Buffer
		res, err := runDemo(&out, o)
		stop()
		checkDemo(t, o, res, err, out.String())
		total += res.falseFailovers
		t.Logf("seed %d (%v): %d false failovers ridden out\n%s", seed, time.Since(start).Round(time.Millisecond), res.falseFailovers, out.String())
	}
	t.Logf("%d false failovers in all", total)
}

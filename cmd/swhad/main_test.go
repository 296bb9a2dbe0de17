package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/swha/swha"
)

func TestRun(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, 0, "swhad " + version},
		{[]string{"demo", "-bogus"}, 2, "flag provided but not defined"},
		{nil, 0, "usage: swhad"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(tt.args, &stdout, &stderr)
		if code != tt.code {
			t.Errorf("run(%q) = %d, want %d", tt.args, code, tt.code)
		}
		if out := stdout.String() + stderr.String(); !strings.Contains(out, tt.out) {
			t.Errorf("run(%q) printed %q, want it to contain %q", tt.args, out, tt.out)
		}
	}
}

// checkDemo asserts what the demo establishes whatever the machine does to
// its timings (a stall may resync the standby or fail the pair over while
// both nodes live; the demo rides either out): every churn transaction is
// accounted for, the standby was promoted by its failover module after the
// active died, every promoted node held every acknowledged transaction and
// no partial one, the new active serves alone, and the old one rejoins.
func checkDemo(t *testing.T, o demoOptions, res demoResult, err error, out string) {
	t.Helper()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if res.lost != 0 {
		t.Errorf("%d acknowledged transactions lost\n%s", res.lost, out)
	}
	if !res.deadBeforePromote && !res.promotedEarly {
		t.Errorf("the standby's promotion came with the active alive, and was not reported as a false failover\n%s", out)
	}
	if got, want := res.acked+res.unacked, o.churnTxns; got < want {
		t.Errorf("%d acknowledged + %d unacknowledged churn transactions, want at least %d\n%s", res.acked, res.unacked, want, out)
	}
	if res.killAcked && res.tail != 0 || !res.killAcked && res.tail != 1 {
		t.Errorf("%d transactions owed at the kill (kill acknowledged %v)\n%s", res.tail, res.killAcked, out)
	}
	if res.held > res.tail {
		t.Errorf("the promoted node holds %d of %d owed transactions\n%s", res.held, res.tail, out)
	}
	if res.checks != 1+res.falseFailovers {
		t.Errorf("%d verifications for %d false failovers\n%s", res.checks, res.falseFailovers, out)
	}
	if res.role != swha.Active || res.soloCommits != o.soloTxns {
		t.Errorf("promoted node: role %v, %d solo commits, want active and %d\n%s", res.role, res.soloCommits, o.soloTxns, out)
	}
	if !res.rejoined || !res.mirrorOK {
		t.Errorf("the old active did not rejoin as a hot standby with the active's routes\n%s", out)
	}
	for _, want := range []string{"transactions lost                0\n", "OK: 0 acknowledged transactions lost", "heartbeats", "role active", "rejoined as standby"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func smallDemo() demoOptions {
	o := defaultDemoOptions()
	o.routes, o.txnOps, o.churnTxns = 500, 100, 60
	return o
}

// TestDemo runs the failover demo on a smaller workload with the default
// heartbeat timers (5 ms × 4).
func TestDemo(t *testing.T) {
	o := smallDemo()
	for _, seed := range []uint64{1, 2, 3} {
		o.seed = seed
		var out bytes.Buffer
		res, err := runDemo(&out, o)
		checkDemo(t, o, res, err, out.String())
		t.Logf("seed %d:\n%s", seed, out.String())
	}
}

// TestDemoFalseFailover: both wires cut mid-churn with both nodes alive,
// until the standby promotes itself: a false failover by construction. The
// demo must verify the new active, carry on there (the old active demotes
// and resyncs as its standby), and lose nothing.
func TestDemoFalseFailover(t *testing.T) {
	o := smallDemo()
	o.cutAt = 20
	var out bytes.Buffer
	res, err := runDemo(&out, o)
	s := out.String()
	checkDemo(t, o, res, err, s)
	if res.falseFailovers < 1 || res.unacked < 2 {
		t.Errorf("%d false failovers, %d unacknowledged commits; want at least 1 and 2\n%s", res.falseFailovers, res.unacked, s)
	}
	if !strings.Contains(s, "took over with A alive") {
		t.Errorf("output lacks the false failover:\n%s", s)
	}
	t.Logf("%s", s)
}

// TestDemoDefault runs the demo exactly as "swhad demo" does and checks
// that it reports what the README says it does.
func TestDemoDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"demo"}, &stdout, &stderr)
	s := stdout.String()
	if code != 0 {
		t.Fatalf("swhad demo exited %d:\n%s\n%s", code, s, stderr.String())
	}
	for _, want := range []string{"heartbeats 5ms × 4", "failover module, automatic)", "intents handed back",
		"transactions lost                0\n", "rejoined as standby", "OK: 0 acknowledged transactions lost"} {
		if !strings.Contains(s, want) {
			t.Errorf("swhad demo output lacks %q:\n%s", want, s)
		}
	}
	if !strings.Contains(s, "kill instant -> peer down") && !strings.Contains(s, "not timed:") {
		t.Errorf("swhad demo reports no detection:\n%s", s)
	}
	t.Logf("swhad demo:\n%s", s)
}

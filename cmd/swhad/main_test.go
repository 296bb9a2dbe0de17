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
// its timings (a stall longer than DeadInterval flaps both sessions, since
// both nodes live in one process): every churn transaction is accounted
// for, the standby is promoted only once the active is dead, and the
// promoted node holds every acknowledged transaction and serves alone.
func checkDemo(t *testing.T, o demoOptions, res demoResult, err error, out string) {
	t.Helper()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if res.lost != 0 {
		t.Errorf("%d acknowledged transactions lost\n%s", res.lost, out)
	}
	if !res.deadBeforePromote {
		t.Errorf("the standby was promoted while the active was alive\n%s", out)
	}
	killAcked := 0
	if res.killAcked {
		killAcked = 1
	}
	if got, want := res.acked+res.unacked, o.churnTxns-1+killAcked; got != want {
		t.Errorf("%d acknowledged + %d unacknowledged churn transactions, want %d\n%s", res.acked, res.unacked, want, out)
	}
	// After every unacknowledged commit the demo waits for the standby to
	// resync, so only the transaction in flight at the kill can be owed.
	if want := 1 - killAcked; res.tail != want {
		t.Errorf("%d transactions owed at the kill, want %d\n%s", res.tail, want, out)
	}
	if res.held > res.tail {
		t.Errorf("the promoted node holds %d of %d owed transactions\n%s", res.held, res.tail, out)
	}
	if res.role != swha.Active || res.soloCommits != o.soloTxns {
		t.Errorf("promoted node: role %v, %d solo commits, want active and %d\n%s", res.role, res.soloCommits, o.soloTxns, out)
	}
	for _, want := range []string{"transactions lost                0\n", "OK: 0 acknowledged transactions lost", "session silence", "role active"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestDemo runs the failover demo on a smaller workload with the default
// 30 ms DeadInterval: on a loaded machine its sessions flap, and the demo
// must ride that out.
func TestDemo(t *testing.T) {
	o := defaultDemoOptions()
	o.routes, o.txnOps, o.churnTxns = 500, 100, 60
	for _, seed := range []uint64{1, 2, 3} {
		o.seed = seed
		var out bytes.Buffer
		res, err := runDemo(&out, o)
		checkDemo(t, o, res, err, out.String())
		t.Logf("seed %d:\n%s", seed, out.String())
	}
}

// TestDemoSurvivesFlap: a glitch on the HA link mid-churn (until both
// sessions go silent) makes that commit fail unacknowledged; the demo
// counts the flap, waits for the standby to resync, and loses nothing.
func TestDemoSurvivesFlap(t *testing.T) {
	o := defaultDemoOptions()
	o.routes, o.txnOps, o.churnTxns = 500, 100, 60
	o.flapAt = 20
	var out bytes.Buffer
	res, err := runDemo(&out, o)
	s := out.String()
	checkDemo(t, o, res, err, s)
	if res.flaps < 1 || res.unacked < 1 {
		t.Errorf("%d flaps, %d unacknowledged commits; want at least 1 of each\n%s", res.flaps, res.unacked, s)
	}
	if !strings.Contains(s, "session flaps before the kill") {
		t.Errorf("output lacks the flap count:\n%s", s)
	}
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
	for _, want := range []string{"detection (session silence", "promotion (Promote call)", "partial transactions discarded",
		"intents handed back", "transactions lost                0\n", "OK: 0 acknowledged transactions lost"} {
		if !strings.Contains(s, want) {
			t.Errorf("swhad demo output lacks %q:\n%s", want, s)
		}
	}
	if !strings.Contains(s, "kill instant -> silence") && !strings.Contains(s, "not timed: the standby's session was already silent") {
		t.Errorf("swhad demo reports no detection:\n%s", s)
	}
	t.Logf("swhad demo:\n%s", s)
}

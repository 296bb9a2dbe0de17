package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
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

// TestDemo runs the failover demo on a smaller workload (and with a longer
// DeadInterval, so that a loaded race-detector run does not see spurious
// silence) and checks that it loses nothing.
func TestDemo(t *testing.T) {
	o := defaultDemoOptions()
	o.routes, o.txnOps, o.churnTxns = 500, 100, 60
	o.dead = 200 * time.Millisecond
	for _, seed := range []uint64{1, 2, 3} {
		o.seed = seed
		var out bytes.Buffer
		code := demo(&out, o)
		s := out.String()
		if code != 0 {
			t.Fatalf("seed %d: demo exited %d:\n%s", seed, code, s)
		}
		for _, want := range []string{"transactions lost                0\n", "OK: 0 acknowledged transactions lost", "session silence", "role active"} {
			if !strings.Contains(s, want) {
				t.Errorf("seed %d: output lacks %q:\n%s", seed, want, s)
			}
		}
		t.Logf("seed %d:\n%s", seed, s)
	}
}

// TestDemoDefault runs the demo exactly as "swhad demo" does.
// TestDemoSurvivesFlap: a session that goes silent mid-churn (a VM pause,
// a glitch on the HA link) makes that commit fail unacknowledged; the demo
// counts it as a flap, the standby resyncs, and no acknowledged commit is
// lost. Under load the default 30 ms DeadInterval flapped by itself and
// failed the demo.
func TestDemoSurvivesFlap(t *testing.T) {
	o := defaultDemoOptions()
	o.routes, o.txnOps, o.churnTxns = 500, 100, 60
	o.flapAt = 20
	var out bytes.Buffer
	code := demo(&out, o)
	s := out.String()
	if code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, s)
	}
	for _, want := range []string{"session flaps before the kill", "transactions lost                0\n", "OK: 0 acknowledged transactions lost"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

func TestDemoDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"demo"}, &stdout, &stderr); code != 0 {
		t.Fatalf("swhad demo exited %d:\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "OK: 0 acknowledged transactions lost") {
		t.Errorf("swhad demo printed:\n%s", stdout.String())
	}
}

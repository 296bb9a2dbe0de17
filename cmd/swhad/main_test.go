package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, 0, "swhad " + version},
		{[]string{"demo"}, 0, "demo"},
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

// Package dist holds what ships beside the binary: the systemd unit and the
// container image's Dockerfile. Its tests check them.
package dist

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The unit keeps what issue 14 asks of it: restarts, hardening that still
// allows raw sockets and netlink, and systemd itself accepts it.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("systemd/swhad.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{
		"Restart=always", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN", "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN",
		"RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_PACKET AF_INET AF_INET6",
		"StateDirectory=swhad", "RuntimeDirectory=swhad", "ExecReload=/bin/kill -HUP $MAINPID",
	} {
		if !strings.Contains(unit, want+"\n") && !strings.Contains(unit, want+" ") {
			t.Errorf("the unit lacks %q", want)
		}
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: the unit's syntax is not checked")
		return
	}
	// verify wants ExecStart's binary to exist: point it at a stand-in.
	dir := t.TempDir()
	bin := filepath.Join(dir, "swhad")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit = strings.ReplaceAll(unit, "/usr/local/sbin/swhad", bin)
	path := filepath.Join(dir, "swhad.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

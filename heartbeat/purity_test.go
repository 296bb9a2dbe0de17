package heartbeat

import (
	"strings"
	"testing"

	"github.com/swha/swha/internal/puretest"
)

// TestPure: everything but the runner (runner*.go) is the pure core: no
// goroutine, lock, socket, file or clock of its own.
func TestPure(t *testing.T) {
	found, err := puretest.Impurities(".", func(name string) bool { return !strings.HasPrefix(name, "runner") })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range found {
		t.Error(p)
	}
}

package l2transport

import (
	"strings"
	"testing"

	"github.com/swha/swha/internal/puretest"
)

// TestSessionPure: the Session (session*.go) is the transport's pure core,
// driven by Conn; it must not grow a goroutine, a lock, a socket or a clock.
func TestSessionPure(t *testing.T) {
	found, err := puretest.Impurities(".", func(name string) bool { return strings.HasPrefix(name, "session") })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range found {
		t.Error(p)
	}
}

package failover

import (
	"testing"

	"github.com/swha/swha/internal/puretest"
)

// TestPure: the core must not grow a goroutine, a lock, a socket, a file
// or a clock of its own. store.go (FileStore) is the driver's I/O and is
// left out.
func TestPure(t *testing.T) {
	found, err := puretest.Impurities(".", func(name string) bool { return name != "store.go" })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range found {
		t.Error(p)
	}
}

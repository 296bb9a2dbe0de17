package replica

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/swha/swha/internal/puretest"
)

// TestPure fails if the cores grow a goroutine, a lock, a socket, a file or
// a clock of their own.
func TestPure(t *testing.T) {
	found, err := puretest.Impurities(".", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range found {
		t.Error(p)
	}
}

// TestPureCatches: the check is not vacuous.
func TestPureCatches(t *testing.T) {
	dir := t.TempDir()
	bad := "package bad\n\nimport (\n\t\"sync\"\n\tclock \"time\"\n)\n\nvar mu sync.Mutex\n\nfunc f() { go f(); _ = clock.Now() }\n"
	if err := os.WriteFile(filepath.Join(dir, "bad.go"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := puretest.Impurities(dir, nil)
	if err != nil || len(got) != 3 {
		t.Fatalf("found %d impurities in a file with 3: %q, %v", len(got), got, err)
	}
}

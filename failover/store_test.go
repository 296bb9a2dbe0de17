package failover

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileStore: a missing file is a first start; what Save wrote Load
// reads; every corruption is an error naming the file, never zero.
func TestFileStore(t *testing.T) {
	dir := t.TempDir()
	s := FileStore{Path: filepath.Join(dir, "failover.state")}
	if p, err := s.Load(); err != nil || p != (Persisted{}) {
		t.Fatalf("missing file: %+v, %v", p, err)
	}
	want := Persisted{Generation: 1<<40 + 3, Incarnation: 77}
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Load(); err != nil || p != want {
		t.Fatalf("Load: %+v, %v", p, err)
	}
	if err := s.Save(Persisted{Generation: 5, Incarnation: 78}); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Load(); p != (Persisted{Generation: 5, Incarnation: 78}) {
		t.Fatalf("second Save: %+v", p)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	good := encodeState(want)
	for _, c := range []struct {
		name string
		b    []byte
		why  string
	}{
		{"empty", nil, "0 bytes"},
		{"short", good[:20], "20 bytes"},
		{"long", append(append([]byte(nil), good...), 0), "26 bytes"},
		{"magic", append([]byte("SWFO"), good[4:]...), "magic"},
		{"version", append(append(append([]byte(nil), good[:4]...), 2), good[5:]...), "version 2"},
		{"crc", flip(good, 10), "CRC"},
	} {
		if err := os.WriteFile(s.Path, c.b, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := s.Load()
		if !errors.Is(err, ErrCorruptState) || !strings.Contains(err.Error(), s.Path) || !strings.Contains(err.Error(), c.why) || p != (Persisted{}) {
			t.Errorf("%s: %+v, %v", c.name, p, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i] ^= 0x40
	return out
}

// TestFileStoreSaveFails: a Save that cannot complete leaves the old file
// whole and no temporary file, and says which file.
func TestFileStoreSaveFails(t *testing.T) {
	dir := t.TempDir()
	s := FileStore{Path: filepath.Join(dir, "failover.state")}
	if err := s.Save(Persisted{Generation: 3, Incarnation: 1}); err != nil {
		t.Fatal(err)
	}
	// A directory where the file should go: the rename fails.
	blocked := FileStore{Path: filepath.Join(dir, "blocked")}
	if err := os.MkdirAll(filepath.Join(blocked.Path, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := blocked.Save(Persisted{Generation: 9}); err == nil || !strings.Contains(err.Error(), blocked.Path) {
		t.Fatalf("Save over a directory: %v", err)
	}
	// No directory at all: the temporary file cannot be made.
	gone := FileStore{Path: filepath.Join(dir, "no", "such", "failover.state")}
	if err := gone.Save(Persisted{Generation: 9}); err == nil {
		t.Fatal("Save into a missing directory succeeded")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if p, err := s.Load(); err != nil || p != (Persisted{Generation: 3, Incarnation: 1}) {
		t.Fatalf("old file: %+v, %v", p, err)
	}
}

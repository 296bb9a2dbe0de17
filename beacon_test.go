package swha

import (
	"log/slog"
	"net"
	"testing"
	"time"
)

// TestBeaconReportsClose: a beacon hears its peer's end go (the peer's Close,
// as a dead process's kernel would close it) exactly once, and keeps
// redialing; the peer's own beacon, closing, reports nothing.
func TestBeaconReportsClose(t *testing.T) {
	addr := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	la, lb := addr(), addr()
	goneA, goneB := make(chan struct{}, 4), make(chan struct{}, 4)
	log := slog.New(slog.DiscardHandler)
	a, err := startBeacon(BeaconConfig{Listen: la, Peer: lb}, func() { goneA <- struct{}{} }, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	b, err := startBeacon(BeaconConfig{Listen: lb, Peer: la}, func() { goneB <- struct{}{} }, log)
	if err != nil {
		t.Fatal(err)
	}
	// Bounded wait for both connections (a failure bound, not a timing).
	for end := time.Now().Add(10 * time.Second); !(a.up.Load() && b.up.Load()); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("beacons not connected after 10 s")
		}
	}
	b.close()
	select {
	case <-goneA:
	case <-time.After(10 * time.Second):
		t.Fatal("a did not hear b go")
	}
	if a.lost.Load() != 1 || len(goneB) != 0 {
		t.Fatalf("a lost %d, b reported %d: want 1 and 0", a.lost.Load(), len(goneB))
	}
	if _, err := startBeacon(BeaconConfig{Listen: la}, func() {}, log); err == nil {
		t.Fatal("a beacon with no peer started")
	}
}

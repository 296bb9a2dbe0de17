package failover

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/swha/swha/internal/wire"
)

// TestPersistFailsNoPromotion: while the new generation cannot be
// written, the standby does not promote: a crash could reuse it. It
// retries after PersistRetry and promotes once a write succeeds.
func TestPersistFailsNoPromotion(t *testing.T) {
	s := settled(t)
	b := s.n[1]
	b.failSaves = 3
	mark := s.log.Len()
	s.crash(s.n[0])
	s.run(50 * time.Millisecond)
	if b.c.State() != StandbyHot || b.c.Status().Counters.PersistFailures == 0 {
		t.Fatalf("B %s after %d failed writes\n%s", b.c.State(), b.c.Status().Counters.PersistFailures, s.log.String())
	}
	s.run(100 * time.Millisecond)
	s.wantStates(t, "A=down B=active/2")
	acts := s.actionsOf(b, mark)
	if got := strings.Count(strings.Join(acts, "\n"), "persist generation=2"); got != 4 {
		t.Fatalf("%d Persists of generation 2, want 4 (3 failed): %v", got, acts)
	}
	if acts[len(acts)-2] != "stop-stream" || acts[len(acts)-1] != "promote generation=2 reason=peer-dead" {
		t.Fatalf("actions %v", acts)
	}
	s.done()
}

// TestRestartNeverReusesGeneration: whatever crashes and restarts, a node
// promotes above every generation it persisted (its own and those it
// followed), and its incarnation moves on.
func TestRestartNeverReusesGeneration(t *testing.T) {
	s := settled(t)
	a, b := s.n[0], s.n[1]
	// A promoted to 1. Both crash; A back alone goes solo at 3 (the next
	// odd one), never 1 again.
	s.crash(a)
	s.crash(b)
	s.boot(a)
	s.run(300 * time.Millisecond)
	s.wantStates(t, "A=active/3 B=down")
	if a.disk.Incarnation != 2 {
		t.Fatalf("A's incarnation %d, want 2", a.disk.Incarnation)
	}
	// B comes up next to a live active: it follows 3 (and persists it).
	s.boot(b)
	s.run(300 * time.Millisecond)
	s.wantStates(t, "A=active/3 B=standby-hot/3")
	s.crash(a)
	s.run(100 * time.Millisecond)
	s.wantStates(t, "A=down B=active/4")
	// B restarted alone: above the 4 on its disk.
	s.crash(b)
	s.boot(b)
	s.run(300 * time.Millisecond)
	s.wantStates(t, "A=down B=active/6")
	if b.disk.Incarnation != 3 {
		t.Fatalf("B's incarnation %d, want 3", b.disk.Incarnation)
	}
	s.done()
}

// TestQuickRestart: the active restarts faster than detection; its
// announce (negotiating, a new incarnation) tells the hot standby it
// left: the standby takes over on its word, and the restarted node
// becomes its standby (Guardian: the primary re-creates its backup).
func TestQuickRestart(t *testing.T) {
	s := settled(t)
	mark := s.log.Len()
	s.crash(s.n[0])
	s.boot(s.n[0])
	s.run(300 * time.Millisecond)
	s.wantStates(t, "A=standby-hot/2 B=active/2")
	evs := s.eventsOf(s.n[1], mark)
	if !hasEvent(evs, "peer-restarted") || !hasEvent(evs, "peer-hot") || hasEvent(evs, "peer-dead") {
		t.Fatalf("B's events %v", evs)
	}
	s.done()
}

// TestSwitchoverAborted: the standby never takes over (here: it loses
// the HA link): the active accepts again, counted, and the standby does
// not promote on a stale handoff.
func TestSwitchoverAborted(t *testing.T) {
	s := settled(t)
	a := s.n[0]
	if err := a.c.Switchover(s.now); err != nil {
		t.Fatal(err)
	}
	if err := a.c.Switchover(s.now); !errors.Is(err, ErrSwitchoverInProgress) {
		t.Fatalf("second Switchover: %v", err)
	}
	s.cut("ha", false)
	s.run(200 * time.Millisecond)
	s.wantStates(t, "A=active/1 B=standby-hot/1")
	if !a.accepting || a.c.Status().Counters.Aborts != 1 {
		t.Fatalf("A accepting %v, aborts %d\n%s", a.accepting, a.c.Status().Counters.Aborts, s.log.String())
	}
	if err := a.c.Switchover(s.now); !errors.Is(err, ErrNoHotStandby) {
		t.Fatalf("Switchover with the HA link down: %v", err)
	}
	s.done()
}

// TestReturningActive: the old active, crashed and replaced, comes back
// as a standby of the new one.
func TestReturningActive(t *testing.T) {
	s := settled(t)
	s.crash(s.n[0])
	s.run(100 * time.Millisecond)
	s.wantStates(t, "A=down B=active/2")
	s.boot(s.n[0])
	s.run(300 * time.Millisecond)
	s.wantStates(t, "A=standby-hot/2 B=active/2")
	s.done()
}

// TestSuperseded: an active told by its driver of a newer generation
// stops accepting at once and waits, fenced, for the new active's
// announce, then demotes discarding.
func TestSuperseded(t *testing.T) {
	now := time.Unix(1, 0)
	c, err := New(Config{NodeID: 1, Paths: []string{"ha"}, NegotiateTimeout: time.Second}, Persisted{}, now)
	if err != nil {
		t.Fatal(err)
	}
	answer(t, c, now)
	now = now.Add(time.Second)
	c.Tick(now)
	answer(t, c, now)
	if c.State() != Active || !c.Accepting() {
		t.Fatalf("state %s", c.State())
	}
	c.Superseded(7, now)
	acts := answer(t, c, now)
	if c.State() != Fenced || c.Accepting() || len(acts) < 1 || acts[0].Kind != ActStopAccepting {
		t.Fatalf("state %s, actions %v", c.State(), acts)
	}
	c.PathEvent("ha", true, now)
	c.PeerAnnounce("ha", Announce{NodeID: 2, Generation: 7, State: Active, Accepting: true, Seq: 40}, now)
	acts = answer(t, c, now)
	if len(acts) == 0 || acts[0].Kind != ActDemote || !acts[0].DiscardAsync || acts[0].PeerSeq != 40 || acts[0].Generation != 7 {
		t.Fatalf("actions %v", acts)
	}
	if c.State() != StandbySyncing {
		t.Fatalf("state %s", c.State())
	}
}

// TestInputErrors: configuration and inputs that name what is wrong.
func TestInputErrors(t *testing.T) {
	now := time.Unix(1, 0)
	for _, cfg := range []Config{
		{Paths: []string{"ha"}},
		{NodeID: 1},
		{NodeID: 1, Paths: []string{"ha", "ha"}},
		{NodeID: 1, PeerNodeID: 1, Paths: []string{"ha"}},
		{NodeID: 1, Paths: []string{"ha"}, NegotiateTimeout: -1},
	} {
		if _, err := New(cfg, Persisted{}, now); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	c, err := New(Config{NodeID: 1, PeerNodeID: 2, Paths: []string{"ha"}}, Persisted{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PathEvent("mgmt", true, now); !errors.Is(err, ErrUnknownPath) || !strings.Contains(err.Error(), "mgmt") {
		t.Errorf("unknown path: %v", err)
	}
	if err := c.PeerAnnounce("ha", Announce{NodeID: 3, State: Active}, now); !errors.Is(err, ErrWrongPeer) {
		t.Errorf("announce from node 3: %v", err)
	}
	if err := c.PeerAnnounce("ha", Announce{NodeID: 1, State: Active}, now); !errors.Is(err, ErrWrongPeer) {
		t.Errorf("announce from itself: %v", err)
	}
	if err := c.Switchover(now); !errors.Is(err, ErrNotActive) {
		t.Errorf("Switchover in init: %v", err)
	}
}

// TestAnnounceWire: the core's announce round-trips through the wire
// encoding, within the heartbeat's slot, without allocating.
func TestAnnounceWire(t *testing.T) {
	for _, a := range []Announce{
		{NodeID: 1, Incarnation: 2, Generation: 3, State: Active, Priority: 100, Accepting: true, Seq: 99},
		{NodeID: 1<<64 - 1, Incarnation: 1<<64 - 1, Generation: 1<<64 - 1, State: Demoting, Priority: 255,
			Accepting: true, Handoff: true, Defer: true, SplitBrain: true, Seq: 1<<64 - 1, HandoffSeq: 1<<64 - 1},
		{NodeID: 5, State: StandbyHot, Defer: true},
	} {
		b := a.Append(nil)
		if len(b) > wire.MaxAnnounce || len(b) > 64 {
			t.Fatalf("%+v: %d bytes", a, len(b))
		}
		got, err := ParseAnnounce(b)
		if err != nil || got != a {
			t.Fatalf("%+v: parsed %+v, %v", a, got, err)
		}
	}
	if _, err := ParseAnnounce([]byte{0x83, 1}); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
	a := Announce{NodeID: 7, Generation: 9, State: StandbySyncing, Seq: 1 << 40}
	buf := make([]byte, 0, wire.MaxAnnounce)
	if n := testing.AllocsPerRun(100, func() {
		buf = a.Append(buf[:0])
		if _, err := ParseAnnounce(buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

package heartbeat

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/swha/swha/frame"
)

// TestHandshake: Down → Init → Up on both sides, one Up event each, and the
// three-way rule: a side is Up only once the other echoes its discriminator.
func TestHandshake(t *testing.T) {
	a := newNode(t, pathConfig("a", 1, 2, 0xa1))
	b := newNode(t, pathConfig("b", 2, 1, 0xb1))
	// a's first heartbeat: Down, no YourDisc.
	fa := a.p.Ready().Send
	if len(fa) != 1 {
		t.Fatalf("a sends %d frames at start, want 1", len(fa))
	}
	b.p.Receive(fa[0], t0)
	if b.p.State() != StateInit {
		t.Fatalf("b after a's Down: %v, want Init", b.p.State())
	}
	fb := b.p.Ready().Send // Init, YourDisc = a's disc
	a.p.Receive(fb[0], t0)
	if a.p.State() != StateUp {
		t.Fatalf("a after b's Init: %v, want Up", a.p.State())
	}
	rd := a.p.Ready()
	if len(rd.Events) != 1 || rd.Events[0].Kind != EventUp || rd.Events[0].PeerID != 2 {
		t.Fatalf("a's events: %+v, want one Up from node 2", rd.Events)
	}
	b.p.Receive(rd.Send[0], t0)
	if b.p.State() != StateUp {
		t.Fatalf("b after a's Up: %v, want Up", b.p.State())
	}
	if rd := b.p.Ready(); len(rd.Events) != 1 || rd.Events[0].Kind != EventUp {
		t.Fatalf("b's events: %+v, want one Up", rd.Events)
	}
}

// TestUpStaysUp: on a clean wire nothing goes down and nothing is dropped.
func TestUpStaysUp(t *testing.T) {
	s := defaultSim(t)
	s.mustUp(t)
	s.run(2 * time.Second)
	for _, n := range []*node{s.a, s.b} {
		if k := kinds(n); !slices.Equal(k, []EventKind{EventUp}) {
			t.Errorf("%s events %v, want [Up]", n.name, k)
		}
		st := n.p.Stats()
		if st.Drops != ([NumDropReasons]uint64{}) {
			t.Errorf("%s dropped %v", n.name, st.Drops)
		}
		if st.LargestGap > DefaultInterval {
			t.Errorf("%s largest gap %v, above one interval", n.name, st.LargestGap)
		}
	}
}

// TestDownByTimeout: the peer stops; Down with detect-time-expired once the
// detection time has passed since its last heartbeat, not before.
func TestDownByTimeout(t *testing.T) {
	s := defaultSim(t)
	s.mustUp(t)
	s.run(50 * time.Millisecond)
	s.b.stopped = true
	stop := s.now
	if !s.runUntil(time.Second, func() bool { return !s.a.p.Up() }) {
		t.Fatal("a still up 1 s after b stopped")
	}
	e, _ := firstEvent(s.a, EventDown)
	detect := DefaultMultiplier * DefaultInterval
	if e.Diag != DiagDetectExpired || e.Gap < detect || e.Gap > detect+time.Millisecond {
		t.Fatalf("down %+v, want detect-time-expired after a gap of %v", e, detect)
	}
	if d := e.At.Sub(stop); d > detect {
		t.Fatalf("down %v after the stop, want at most %v", d, detect)
	}
	if s.a.p.Stats().LocalDisc == 0xa1 {
		t.Fatal("a kept its discriminator across Down")
	}
}

// TestPeerSignalledDown: a→b is cut, so b times out and its farewell takes a
// down at once, before a's own detection time.
func TestPeerSignalledDown(t *testing.T) {
	s := defaultSim(t)
	s.mustUp(t)
	s.a.drop = func([]byte) bool { return true }
	cut := s.now
	if !s.runUntil(time.Second, func() bool { return !s.a.p.Up() }) {
		t.Fatal("a still up")
	}
	e, _ := firstEvent(s.a, EventDown)
	if e.Diag != DiagPeerSignalledDown {
		t.Fatalf("a down with %v, want peer-signalled-down", e.Diag)
	}
	eb, _ := firstEvent(s.b, EventDown)
	if eb.Diag != DiagDetectExpired || e.At.Sub(eb.At) > time.Millisecond {
		t.Fatalf("b down %+v, a down %+v at %v after the cut: want a right after b", eb, e, e.At.Sub(cut))
	}
	// Healed, the pair comes back up.
	s.a.drop = nil
	s.mustUp(t)
}

// TestShutdown: AdminDown takes the peer down at once, and nothing is sent after.
func TestShutdown(t *testing.T) {
	s := defaultSim(t)
	s.mustUp(t)
	s.b.p.Shutdown(s.now)
	s.flush(s.b)
	s.run(time.Millisecond)
	e, ok := firstEvent(s.a, EventDown)
	if !ok || e.Diag != DiagAdminDown {
		t.Fatalf("a: %v, want Down admin-down", s.a.events)
	}
	if eb, _ := firstEvent(s.b, EventDown); eb.Diag != DiagAdminDown {
		t.Fatalf("b: %v, want its own Down admin-down", s.b.events)
	}
	sent := len(s.b.sent)
	s.run(100 * time.Millisecond)
	if len(s.b.sent) != sent || s.b.p.State() != StateAdminDown {
		t.Fatalf("b sent %d frames after its shutdown, state %v", len(s.b.sent)-sent, s.b.p.State())
	}
}

// TestCarrierShortens: carrier down with no heartbeat takes the path down
// after CarrierHold intervals instead of the multiplier.
func TestCarrierShortens(t *testing.T) {
	s := defaultSim(t)
	s.mustUp(t)
	s.b.stopped = true
	s.a.p.Carrier(false, s.now)
	if !s.runUntil(time.Second, func() bool { return !s.a.p.Up() }) {
		t.Fatal("a still up")
	}
	e, _ := firstEvent(s.a, EventDown)
	if e.Diag != DiagCarrierDown || e.Gap > CarrierHold*DefaultInterval+time.Millisecond {
		t.Fatalf("down %+v, want carrier-down-confirmed after %v", e, CarrierHold*DefaultInterval)
	}
}

// TestCarrierAlone: a carrier reported down while heartbeats still arrive never
// takes the path down.
func TestCarrierAlone(t *testing.T) {
	s := defaultSim(t)
	s.mustUp(t)
	s.a.p.Carrier(false, s.now)
	s.run(time.Second)
	if !s.a.p.Up() || len(s.a.events) != 1 {
		t.Fatalf("a %v, events %v: want still up", s.a.p.State(), s.a.events)
	}
	// Late carrier report: heartbeats stopped long ago, Down at the next check.
	s.a.p.Carrier(true, s.now)
	s.b.stopped = true
	s.run(3 * DefaultInterval)
	s.a.p.Carrier(false, s.now)
	s.run(time.Microsecond)
	if s.a.p.Up() {
		t.Fatal("a up after a carrier-down reported 3 intervals into a silence")
	}
}

// TestPeerGoneShortens: a death beacon's report with no heartbeat after it
// takes the path down after CarrierHold intervals, well before a long
// detection time; with heartbeats still arriving it never does, and a live
// heartbeat after the report cancels it.
func TestPeerGoneShortens(t *testing.T) {
	ca, cb := pathConfig("a", 1, 2, 0xa1), pathConfig("b", 2, 1, 0xb1)
	ca.Multiplier, cb.Multiplier = 40, 40
	s := newSim(t, ca, cb)
	s.mustUp(t)
	s.a.p.PeerGone(s.now)
	s.run(time.Second) // b still sends: the report alone does nothing
	if !s.a.p.Up() {
		t.Fatal("a down on a peer-gone report while heartbeats arrive")
	}
	s.b.stopped = true
	start := s.now
	s.run(10 * DefaultInterval) // silent, but inside the long detection time
	if !s.a.p.Up() {
		t.Fatal("a down before its detection time: the old report was not cancelled")
	}
	s.a.p.PeerGone(s.now) // reported 10 intervals into the silence: at once
	if !s.runUntil(time.Second, func() bool { return !s.a.p.Up() }) {
		t.Fatal("a still up")
	}
	e, _ := firstEvent(s.a, EventDown)
	if e.Diag != DiagPeerGone || s.now.Sub(start) > 11*DefaultInterval {
		t.Fatalf("down %+v after %v, want peer-gone-confirmed within 11 intervals", e, s.now.Sub(start))
	}
	if st := s.a.p.Stats(); st.GoneHints != 2 {
		t.Fatalf("GoneHints %d, want 2", st.GoneHints)
	}
}

// TestReplayAfterFreeze (issue #12): the peer freezes; an attacker replays every
// frame it ever captured from it, in a loop. The path goes down on time and never
// comes back up while only replays arrive, with or without authentication: a
// replayed frame is authentic, just old.
func TestReplayAfterFreeze(t *testing.T) {
	for _, auth := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "hmac"}[auth], func(t *testing.T) {
			ca, cb := pathConfig("a", 1, 2, 0xa1), pathConfig("b", 2, 1, 0xb1)
			if auth {
				ca.Keyring = mustKeyring(t, 1, "0123456789abcdef")
				cb.Keyring = ca.Keyring
			}
			s := newSim(t, ca, cb)
			s.mustUp(t)
			s.run(30 * time.Millisecond)
			// Include frames of an earlier peer generation: cut b→a once.
			s.b.drop = func([]byte) bool { return true }
			s.runUntil(time.Second, func() bool { return !s.a.p.Up() })
			s.b.drop = nil
			s.mustUp(t)
			s.run(30 * time.Millisecond)
			downs := s.a.p.Stats().Downs
			s.b.stopped = true
			frozen := s.now
			captured := slices.Clone(s.b.sent)
			for range 100 { // 1 s of replays at 2 frames per ms
				for i := 0; i < len(captured); i += len(captured)/20 + 1 {
					s.inject(s.a, captured[i])
				}
				s.inject(s.a, captured[len(captured)-1])
				s.run(10 * time.Millisecond)
				if s.a.p.Up() && s.now.Sub(frozen) > 2*DefaultMultiplier*DefaultInterval {
					t.Fatalf("a up %v after the freeze, kept alive by replays", s.now.Sub(frozen))
				}
			}
			st := s.a.p.Stats()
			if st.Downs != downs+1 || st.Ups != downs+1 {
				t.Fatalf("a: %d downs, %d ups, want %d and %d", st.Downs, st.Ups, downs+1, downs+1)
			}
			if st.Drops[DropReplay]+st.Drops[DropWrongDisc] == 0 {
				t.Fatalf("no replay counted: %v", st.Drops)
			}
			e := s.a.events[len(s.a.events)-1]
			if e.Kind != EventDown || e.At.Sub(frozen) > DefaultMultiplier*DefaultInterval+time.Millisecond {
				t.Fatalf("last event %+v at %v after the freeze", e, e.At.Sub(frozen))
			}
		})
	}
}

// TestReplayNeverDowns: replays of the peer's old frames reach a path that is up
// and live; they are dropped and do not take it down.
func TestReplayNeverDowns(t *testing.T) {
	s := defaultSim(t)
	s.mustUp(t)
	s.run(20 * time.Millisecond)
	old := slices.Clone(s.b.sent)
	for range 50 {
		for _, f := range old {
			s.inject(s.a, f)
		}
		s.run(10 * time.Millisecond)
	}
	if !slices.Equal(kinds(s.a), []EventKind{EventUp}) {
		t.Fatalf("a events %v", kinds(s.a))
	}
	if s.a.p.Stats().Drops[DropReplay] == 0 {
		t.Fatal("replays not counted")
	}
}

// TestOldIncarnation: the peer restarts (new incarnation, new discriminator). Its
// frames do not take an up path down; the detection time does, and the path then
// comes up with the new incarnation. The old incarnation's frames, replayed,
// change nothing.
func TestOldIncarnation(t *testing.T) {
	s := defaultSim(t)
	s.mustUp(t)
	s.run(20 * time.Millisecond)
	oldFrames := slices.Clone(s.b.sent)
	restart := s.now
	nb := newNode(t, pathConfig("b", 2, 1, 0xb2))
	nb.peer = s.a
	s.a.peer = nb
	s.b.stopped = true
	s.b = nb
	s.flush(nb)
	s.run(time.Millisecond)
	if !s.a.p.Up() {
		t.Fatal("the new incarnation's first frame took a down")
	}
	if !s.runUntil(time.Second, func() bool { return !s.a.p.Up() }) {
		t.Fatal("a never noticed the restart")
	}
	e, _ := firstEvent(s.a, EventDown)
	if e.Diag != DiagDetectExpired || s.a.p.Stats().Drops[DropOtherIncarnation] == 0 {
		t.Fatalf("down %+v, drops %v", e, s.a.p.Stats().Drops)
	}
	s.mustUp(t)
	if s.a.p.Stats().PeerDisc != 0xb2 {
		t.Fatalf("a bound to %#x, want the new incarnation 0xb2", s.a.p.Stats().PeerDisc)
	}
	for _, f := range oldFrames {
		s.inject(s.a, f)
	}
	s.run(100 * time.Millisecond)
	if k := kinds(s.a); !slices.Equal(k, []EventKind{EventUp, EventDown, EventUp}) {
		t.Fatalf("a events %v after the restart at %v", k, restart)
	}
}

// TestWrongPeer: frames from a third node are dropped; with PeerID 0 the peer is
// learned at the handshake and pinned until Down.
func TestWrongPeer(t *testing.T) {
	s := newSim(t, pathConfig("a", 1, 0, 0xa1), pathConfig("b", 2, 1, 0xb1))
	s.mustUp(t)
	c := newNode(t, pathConfig("c", 3, 1, 0xc1))
	for range 10 {
		c.p.Tick(s.now, time.Time{})
		for _, f := range c.p.Ready().Send {
			s.inject(s.a, slices.Clone(f))
		}
		s.run(5 * time.Millisecond)
	}
	st := s.a.p.Stats()
	if st.PeerID != 2 || st.Drops[DropWrongPeer] == 0 || !s.a.p.Up() {
		t.Fatalf("a: peer %d, drops %v, state %v", st.PeerID, st.Drops, st.State)
	}
	// Our own frames looped back.
	s.inject(s.a, s.a.sent[len(s.a.sent)-1])
	s.run(time.Millisecond)
	if s.a.p.Stats().Drops[DropSelf] != 1 {
		t.Fatalf("self drops %d", s.a.p.Stats().Drops[DropSelf])
	}
}

// TestBadMAC: a wrong key or no signature never brings a path up, and is
// counted; a forged frame does not keep an up path alive.
func TestBadMAC(t *testing.T) {
	ca, cb := pathConfig("a", 1, 2, 0xa1), pathConfig("b", 2, 1, 0xb1)
	ca.Keyring = mustKeyring(t, 1, "0123456789abcdef")
	cb.Keyring = mustKeyring(t, 1, "fedcba9876543210")
	s := newSim(t, ca, cb)
	s.run(100 * time.Millisecond)
	if s.a.p.State() != StateDown || s.b.p.State() != StateDown {
		t.Fatalf("states %v %v with different keys", s.a.p.State(), s.b.p.State())
	}
	if st := s.a.p.Stats(); st.FrameErrors[frame.ErrAuthBad] == 0 || st.BadAuth() != st.Received {
		t.Fatalf("a: %+v", st.FrameErrors)
	}
	cu := pathConfig("u", 2, 1, 0xb1)
	s2 := newSim(t, ca, cu)
	s2.run(20 * time.Millisecond)
	if st := s2.a.p.Stats(); st.FrameErrors[frame.ErrAuthMissing] == 0 || s2.a.p.State() != StateDown {
		t.Fatalf("unsigned: %v %v", st.FrameErrors, s2.a.p.State())
	}
	// Flip a byte of the MAC of live frames: CRC recomputed, so only the MAC fails.
	cb.Keyring = ca.Keyring
	s3 := newSim(t, ca, cb)
	s3.mustUp(t)
	s3.b.drop = func(f []byte) bool {
		forged := slices.Clone(f)
		forged[len(forged)-frame.CRCLen-1] ^= 1
		forged = fixCRC(forged)
		s3.inject(s3.a, forged)
		return true
	}
	if !s3.runUntil(time.Second, func() bool { return !s3.a.p.Up() }) {
		t.Fatal("forged frames kept a up")
	}
}

// TestJitterBounds: intervals between heartbeats stay in [(1-J)·I, I].
func TestJitterBounds(t *testing.T) {
	n := newNode(t, pathConfig("a", 1, 2, 0xa1))
	now := t0
	var last time.Time
	lo := DefaultInterval - time.Duration(DefaultJitter*float64(DefaultInterval))
	var minSeen, maxSeen time.Duration = time.Hour, 0
	for range 2000 {
		if len(n.p.Ready().Send) > 0 {
			if !last.IsZero() {
				d := now.Sub(last)
				minSeen, maxSeen = min(minSeen, d), max(maxSeen, d)
			}
			last = now
		}
		now = n.p.NextDeadline()
		n.p.Tick(now, now)
	}
	if minSeen < lo || maxSeen > DefaultInterval || maxSeen-minSeen < (DefaultInterval-lo)/2 {
		t.Fatalf("intervals in [%v, %v], want within [%v, %v] and spread", minSeen, maxSeen, lo, DefaultInterval)
	}
}

// TestRTT: in virtual time the echo gives the exact round trip, hold time
// excluded.
func TestRTT(t *testing.T) {
	s := newSimLatency(t, pathConfig("a", 1, 2, 0xa1), pathConfig("b", 2, 1, 0xb1), 150*time.Microsecond)
	s.mustUp(t)
	s.run(time.Second)
	st := s.a.p.Stats()
	if st.RTTSamples < 100 || st.MinRTT != 300*time.Microsecond || st.MaxRTT != 300*time.Microsecond || st.SmoothedRTT != st.MinRTT {
		t.Fatalf("RTT: %d samples, min %v max %v srtt %v, want 300µs", st.RTTSamples, st.MinRTT, st.MaxRTT, st.SmoothedRTT)
	}
}

// TestLateDetectorDrains: the detector wakes very late while the peer kept
// sending; what waited in the queue is drained first and the path stays up.
func TestLateDetectorDrains(t *testing.T) {
	// b tolerates a's pause (it would otherwise, rightly, declare a dead and
	// tell it so).
	cb := pathConfig("b", 2, 1, 0xb1)
	cb.Multiplier = 40
	s := newSim(t, pathConfig("a", 1, 2, 0xa1), cb)
	s.mustUp(t)
	pause := 3 * DefaultMultiplier * DefaultInterval
	var target time.Time // the first deadline asked for
	s.a.late = func(d time.Time) time.Duration {
		if target.IsZero() {
			target = d
		}
		if d.Equal(target) {
			return pause
		}
		return 0
	}
	s.run(time.Second)
	st := s.a.p.Stats()
	if !slices.Equal(kinds(s.a), []EventKind{EventUp}) || st.MaxLateness != pause || st.LateWakeups != 1 {
		t.Fatalf("events %v, lateness %v, late wake-ups %d", kinds(s.a), st.MaxLateness, st.LateWakeups)
	}
}

// TestLateDetectorGrace: a late wake-up that finds nothing waits one interval
// (a discounted Down); a heartbeat in that interval saves the path, none
// confirms the Down, marked discounted.
func TestLateDetectorGrace(t *testing.T) {
	s := defaultSim(t)
	s.mustUp(t)
	s.run(10 * time.Millisecond)
	// Both machines stall: b sends nothing for 1.5 detection times, and a wakes
	// late for it.
	detect := DefaultMultiplier * DefaultInterval
	s.b.stopped = true
	lastB := s.b.sentAt[len(s.b.sentAt)-1]
	s.a.late = func(d time.Time) time.Duration {
		if d.Sub(lastB) >= detect {
			return 2 * DefaultInterval
		}
		return 0
	}
	s.run(detect + 2*DefaultInterval + 100*time.Microsecond)
	if !s.a.p.Up() || s.a.p.Stats().DiscountedDowns != 1 {
		t.Fatalf("a %v, discounted %d: want up in grace", s.a.p.State(), s.a.p.Stats().DiscountedDowns)
	}
	s.b.stopped = false
	s.flush(s.b) // b's heartbeat due long ago goes out now
	s.b.p.Tick(s.now, time.Time{})
	s.flush(s.b)
	s.run(time.Millisecond)
	if st := s.a.p.Stats(); !s.a.p.Up() || st.SavedByGrace != 1 {
		t.Fatalf("a %v, saved %d", s.a.p.State(), st.SavedByGrace)
	}
	// Now b dies for real, and a is late again: Down one interval later than
	// otherwise, marked discounted.
	s.run(20 * time.Millisecond)
	s.b.stopped = true
	lastB = s.b.sentAt[len(s.b.sentAt)-1]
	if !s.runUntil(time.Second, func() bool { return !s.a.p.Up() }) {
		t.Fatal("a still up")
	}
	e := s.a.events[len(s.a.events)-1]
	// Late for the deadline and again for the grace's end: 2 + 1 + 2 intervals.
	if !e.Discounted || e.Gap > detect+5*DefaultInterval {
		t.Fatalf("down %+v", e)
	}
}

// TestPeerLateness: a peer reporting its own lateness above an interval gets the
// grace too.
func TestPeerLateness(t *testing.T) {
	s := defaultSim(t)
	s.b.late = func(time.Time) time.Duration { return 0 }
	s.mustUp(t)
	// b reports lateness: make its wakes late, then stop it.
	s.b.late = func(time.Time) time.Duration { return 2 * DefaultInterval }
	s.run(30 * time.Millisecond)
	if s.a.p.Stats().PeerLateness < 2*DefaultInterval {
		t.Fatalf("peer lateness %v", s.a.p.Stats().PeerLateness)
	}
	if !s.a.p.Up() {
		t.Fatalf("a down while b was late by 2 intervals: %v", s.a.events)
	}
	s.b.stopped = true
	s.runUntil(time.Second, func() bool { return !s.a.p.Up() })
	if e := s.a.events[len(s.a.events)-1]; e.Kind != EventDown || !e.Discounted {
		t.Fatalf("last event %+v, want a discounted Down", e)
	}
}

// TestAnnounce: the announce travels in every heartbeat; the receiver sees it in
// its Up event, as PeerAnnounce, and as an Announce event when it changes.
func TestAnnounce(t *testing.T) {
	s := defaultSim(t)
	if err := s.b.p.SetAnnounce([]byte("role=active epoch=7")); err != nil {
		t.Fatal(err)
	}
	s.mustUp(t)
	up, _ := firstEvent(s.a, EventUp)
	if string(up.Announce) != "role=active epoch=7" || string(s.a.p.PeerAnnounce()) != "role=active epoch=7" {
		t.Fatalf("up announce %q, peer announce %q", up.Announce, s.a.p.PeerAnnounce())
	}
	s.run(20 * time.Millisecond)
	if err := s.b.p.SetAnnounce([]byte("role=standby epoch=8")); err != nil {
		t.Fatal(err)
	}
	s.flush(s.b)
	s.run(time.Millisecond)
	e, ok := firstEvent(s.a, EventAnnounce)
	if !ok || string(e.Announce) != "role=standby epoch=8" || e.At.Sub(s.now) < -time.Millisecond {
		t.Fatalf("announce event %+v (%v)", e, ok)
	}
	s.run(100 * time.Millisecond)
	if n := len(s.a.events); n != 2 {
		t.Fatalf("%d events, want Up and one Announce", n)
	}
	if err := s.b.p.SetAnnounce(bytes.Repeat([]byte{1}, MaxAnnounce+1)); err == nil {
		t.Fatal("announce over MaxAnnounce accepted")
	}
	s.b.stopped = true
	s.runUntil(time.Second, func() bool { return !s.a.p.Up() })
	if s.a.p.PeerAnnounce() != nil {
		t.Fatal("peer announce still given after Down")
	}
}

// TestConfig: out-of-range settings are refused with the field named.
func TestConfig(t *testing.T) {
	for _, c := range []PathConfig{
		{Disc: 0},
		{Disc: 1, Interval: time.Microsecond},
		{Disc: 1, Multiplier: 256},
		{Disc: 1, Jitter: 0.6},
		{Disc: 1, LocalID: 3, PeerID: 3},
	} {
		if _, err := NewPath(c, t0); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	p, err := NewPath(PathConfig{Disc: 1, Interval: time.Millisecond, Multiplier: 3}, t0)
	if err != nil || p.Stats().DetectTime != 3*time.Millisecond {
		t.Fatalf("1ms×3: %v, %v", err, p.Stats().DetectTime)
	}
}

// TestSteadyStateAllocs: receiving, ticking and sending do not allocate.
func TestSteadyStateAllocs(t *testing.T) {
	ca, cb := pathConfig("a", 1, 2, 0xa1), pathConfig("b", 2, 1, 0xb1)
	ca.Keyring = mustKeyring(t, 1, "0123456789abcdef")
	cb.Keyring = ca.Keyring
	s := newSim(t, ca, cb)
	s.mustUp(t)
	s.run(50 * time.Millisecond)
	now := s.now
	a, b := s.a.p, s.b.p
	allocs := testing.AllocsPerRun(200, func() {
		now = now.Add(time.Millisecond)
		b.Tick(now, now)
		for _, f := range b.Ready().Send {
			a.Receive(f, now)
		}
		a.Tick(now, now)
		for _, f := range a.Ready().Send {
			b.Receive(f, now)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per receive, tick and send", allocs)
	}
}

// TestHealthMemory: a late wake-up keeps local health poor for HealthMemory
// detection times: a silence within them is discounted, one after them is not.
func TestHealthMemory(t *testing.T) {
	for _, tc := range []struct {
		after      time.Duration
		discounted bool
	}{{100 * time.Millisecond, true}, {2 * HealthMemory * DefaultMultiplier * DefaultInterval, false}} {
		s := defaultSim(t)
		s.mustUp(t)
		var target time.Time
		s.a.late = func(d time.Time) time.Duration {
			if target.IsZero() {
				target = d
			}
			if d.Equal(target) {
				return 2 * DefaultInterval
			}
			return 0
		}
		s.run(tc.after)
		s.b.stopped = true
		if !s.runUntil(time.Second, func() bool { return !s.a.p.Up() }) {
			t.Fatal("a still up")
		}
		if e := s.a.events[len(s.a.events)-1]; e.Discounted != tc.discounted {
			t.Errorf("silence %v after a late wake-up: down %+v, want discounted %v", tc.after, e, tc.discounted)
		}
	}
}

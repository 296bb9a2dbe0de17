package l2transport

import (
	"bytes"
	"testing"
	"time"

	"github.com/swha/swha/frame"
)

// medium steps a set of Sessions in virtual time over instant links; route
// says who hears whom (a broadcast segment where an injector's frames reach
// only the side it faces, as on a veth).
type medium struct {
	s      []*Session
	route  func(from int) []int
	on     []bool // a Session that is off neither sends nor receives
	events [][]Event
	msgs   [][]string
	now    time.Time
}

func newMedium(now time.Time, route func(int) []int, s ...*Session) *medium {
	m := &medium{s: s, route: route, now: now, on: make([]bool, len(s)),
		events: make([][]Event, len(s)), msgs: make([][]string, len(s))}
	for i := range m.on {
		m.on[i] = true
	}
	return m
}

func (m *medium) run(d time.Duration) {
	end := m.now.Add(d)
	for ; !m.now.After(end); m.now = m.now.Add(time.Millisecond) {
		for range 1000 {
			moved := false
			for i, s := range m.s {
				if !m.on[i] {
					continue
				}
				s.Tick(m.now)
				if !s.HasReady() {
					continue
				}
				moved = true
				rd := s.Ready()
				m.events[i] = append(m.events[i], rd.Events...)
				for _, msg := range rd.Messages {
					m.msgs[i] = append(m.msgs[i], string(msg.Data))
				}
				for _, f := range rd.Frames {
					for _, j := range m.route(i) {
						if m.on[j] {
							m.s[j].Step(f, m.now)
						}
					}
				}
				s.Advance()
			}
			if !moved {
				break
			}
		}
	}
}

func count(evs []Event, pred func(Event) bool) int {
	n := 0
	for _, ev := range evs {
		if pred(ev) {
			n++
		}
	}
	return n
}

func fenceKeyring(t *testing.T, secret string) *frame.Keyring {
	t.Helper()
	kr, err := frame.NewKeyring(1, map[uint32][]byte{1: bytes.Repeat([]byte(secret), 32)})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// TestRogueHijackReforms: a rogue node speaks the protocol with the node ID
// of the active (or of the standby) and a higher epoch, from the side of the
// node it impersonates, so that only the victim hears it, and the victim
// takes its stream (issue #12: the standby's mirror was replaced, or the
// active streamed its state to the rogue, and after the rogue left the pair
// did not re-form). With the shared key or with none the hijack cannot be
// refused, but now both real nodes raise an incarnation conflict while the
// rogue speaks (the impersonated one because the victim names a newer
// incarnation of it, the victim because the real node's new frames keep
// coming under its older epoch), and once the rogue stops the victim goes
// back to the real node within the dead interval and a hello, with no
// restart by hand.
func TestRogueHijackReforms(t *testing.T) {
	for _, tc := range []struct {
		name       string
		imperson   int // 0: the rogue speaks as A (active), 1: as B
		key, rogue string
		hijacked   bool
	}{
		{name: "as-active/nokey", imperson: 0, hijacked: true},
		{name: "as-standby/nokey", imperson: 1, hijacked: true},
		{name: "as-active/sharedkey", imperson: 0, key: "k", rogue: "k", hijacked: true},
		{name: "as-standby/sharedkey", imperson: 1, key: "k", rogue: "k", hijacked: true},
		{name: "as-active/otherkey", imperson: 0, key: "k", rogue: "x"},
		{name: "as-standby/unsigned", imperson: 1, key: "k"},
	} {
		t.Run(tc.name, func(t *testing.T) { testRogueHijack(t, tc.imperson, tc.key, tc.rogue, tc.hijacked) })
	}
}

func testRogueHijack(t *testing.T, imperson int, key, rogueKey string, hijacked bool) {
	mk := func(node uint64, epoch uint32, secret string) *Session {
		cfg := baseConfig(node, epoch)
		cfg.DeadInterval = time.Second
		if secret != "" {
			cfg.Keyring = fenceKeyring(t, secret)
		}
		s, err := NewSession(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := mk(1, 10, key), mk(2, 20, key)
	real := []*Session{a, b}
	victim := 1 - imperson
	r := mk(uint64(imperson+1), real[imperson].cfg.Epoch+100, rogueKey)
	// 0 A, 1 B, 2 the rogue, on the impersonated node's side of the wire:
	// its frames reach the victim only, and it hears the victim.
	route := func(from int) []int {
		switch from {
		case 2:
			return []int{victim}
		case victim:
			return []int{imperson, 2}
		}
		return []int{victim}
	}
	m := newMedium(simEpoch, route, a, b, r)
	m.on[2] = false
	m.run(100 * time.Millisecond)
	if !a.Established() || !b.Established() {
		t.Fatal("the pair did not establish")
	}
	send := func(what string) {
		t.Helper()
		if err := a.Send([]byte(what), 0); err != nil {
			t.Fatal(err)
		}
		m.run(50 * time.Millisecond)
	}
	send("before")

	// The rogue speaks for 2 s (longer than the dead interval: the real
	// node's stream has gone silent at the victim by then).
	m.on[2] = true
	m.run(2 * time.Second)
	vst, ist := real[victim].Stats(), real[imperson].Stats()
	if !hijacked {
		if vst.PeerRestarts != 0 || vst.PeerEpoch != real[imperson].cfg.Epoch {
			t.Fatalf("a rogue without the key restarted the victim's stream: %+v", vst)
		}
		if vst.DecodeErrors[frame.ErrAuthBad]+vst.DecodeErrors[frame.ErrAuthMissing] == 0 {
			t.Fatalf("the rogue's frames were not refused as unauthenticated: %v", vst.DecodeErrors)
		}
		send("during")
		if got := m.msgs[1]; len(got) != 2 || got[1] != "during" {
			t.Fatalf("B received %q, want before and during", got)
		}
		return
	}
	if vst.PeerEpoch != r.cfg.Epoch {
		t.Fatalf("the rogue did not take the victim's stream (epoch %d, rogue %d): the test does not test", vst.PeerEpoch, r.cfg.Epoch)
	}
	isConflict := func(self bool) func(Event) bool {
		return func(ev Event) bool { return ev.Kind == EventIncarnationConflict && ev.ConflictSelf == self }
	}
	if vst.IncarnationConflicts == 0 || count(m.events[victim], isConflict(false)) == 0 {
		t.Errorf("the victim raised no alarm while the real peer and the rogue interleaved: %d conflicts, events %+v",
			vst.IncarnationConflicts, m.events[victim])
	}
	if ist.IncarnationConflicts == 0 || count(m.events[imperson], isConflict(true)) == 0 {
		t.Errorf("the impersonated node raised no alarm though the victim named a newer incarnation of it: %d conflicts, events %+v",
			ist.IncarnationConflicts, m.events[imperson])
	}
	if n := count(m.events[victim], isConflict(false)); n > 3 {
		t.Errorf("the victim reported %d conflicts in 2 s: the event is not rate-limited", n)
	}

	// The rogue stops: the victim must go back to the real node.
	m.on[2] = false
	stop := m.now
	m.run(3 * time.Second)
	vst = real[victim].Stats()
	if !a.Established() || !b.Established() || vst.PeerEpoch != real[imperson].cfg.Epoch || a.Stats().PeerNodeID != 2 {
		t.Fatalf("the pair did not re-form after the rogue stopped: victim %+v", vst)
	}
	if vst.PeerReforms != 1 {
		t.Errorf("PeerReforms %d, want 1", vst.PeerReforms)
	}
	var reformedAt time.Time
	for _, ev := range m.events[victim] {
		if ev.Kind == EventPeerRestarted && ev.Reformed {
			reformedAt = ev.At
		}
	}
	if bound := real[victim].cfg.DeadInterval + 2*real[victim].cfg.HelloInterval; reformedAt.Sub(stop) > bound {
		t.Errorf("re-formed %v after the rogue stopped, beyond %v", reformedAt.Sub(stop), bound)
	}
	send("after")
	if got := m.msgs[1]; got[len(got)-1] != "after" {
		t.Fatalf("B's last messages %q, want after", got)
	}
	t.Logf("victim: %d conflicts, re-formed %v after the rogue stopped; impersonated: %d conflicts, %d resets",
		vst.IncarnationConflicts, reformedAt.Sub(stop), ist.IncarnationConflicts, real[imperson].Stats().PeerResets)
}

// TestReplayedHelloNotAnswered: with hello counters, a replayed or
// duplicated hello of the current peer incarnation is dropped unanswered
// and is no sign of life; a new one from a peer that missed our HelloAck is
// both.
func TestReplayedHelloNotAnswered(t *testing.T) {
	// B's frames of the handshake are recorded, then its hellos replayed.
	var fromB [][]byte
	now := simEpoch
	a2, b2 := pair(t, 1, 2)
	for range 10 {
		for _, p := range [][2]*Session{{a2, b2}, {b2, a2}} {
			p[0].Tick(now)
			rd := p[0].Ready()
			for _, f := range rd.Frames {
				if p[0] == b2 {
					fromB = append(fromB, append([]byte(nil), f...))
				}
				p[1].Step(f, now)
			}
			p[0].Advance()
		}
	}
	if !a2.Established() {
		t.Fatal("a2 did not establish")
	}
	before := a2.Stats()
	helloAcks := 0
	for range 50 {
		now = now.Add(10 * time.Millisecond)
		for _, f := range fromB {
			if frameType(f) == frame.TypeHello || frameType(f) == frame.TypeHelloAck {
				a2.Step(f, now)
			}
		}
		a2.Tick(now)
		for _, f := range a2.Ready().Frames {
			if frameType(f) == frame.TypeHelloAck {
				helloAcks++
			}
		}
		a2.Advance()
	}
	after := a2.Stats()
	if helloAcks != 0 {
		t.Errorf("A answered replayed hellos with %d HelloAcks", helloAcks)
	}
	if after.Drops[DropRepeatHello] == before.Drops[DropRepeatHello] {
		t.Errorf("replayed hellos not counted as %v", DropRepeatHello)
	}
	if after.PeerResets != 0 || after.PeerRestarts != before.PeerRestarts {
		t.Errorf("replayed hellos restarted the stream: %+v", after)
	}
}

package l2transport

import (
	"testing"
	"time"

	"github.com/swha/swha/frame"
)

// linkFilter decides whether a frame from one Session (A if fromA) reaches
// the other.
type linkFilter func(fromA bool, pdu []byte, now time.Time) (pass bool)

// driveFiltered runs a and b against each other over an instant link that
// passes only what pass lets through, ticking both every step for d, and
// returns the end time and the events each reported.
func driveFiltered(a, b *Session, now time.Time, d, step time.Duration, pass linkFilter) (end time.Time, evA, evB []Event) {
	end = now.Add(d)
	for ; !now.After(end); now = now.Add(step) {
		for range 1000 {
			moved := false
			for i, p := range [][2]*Session{{a, b}, {b, a}} {
				from, to := p[0], p[1]
				from.Tick(now)
				if !from.HasReady() {
					continue
				}
				moved = true
				rd := from.Ready()
				if i == 0 {
					evA = append(evA, rd.Events...)
				} else {
					evB = append(evB, rd.Events...)
				}
				for _, f := range rd.Frames {
					if pass == nil || pass(i == 0, f, now) {
						to.Step(f, now)
					}
				}
				from.Advance()
			}
			if !moved {
				break
			}
		}
	}
	return end, evA, evB
}

func frameType(pdu []byte) frame.Type {
	var h frame.Header
	if _, err := frame.NewCodec(nil).Decode(append([]byte(nil), pdu...), &h); err != nil {
		return 0
	}
	return h.Type
}

// TestAckStallDeclaresPeerLost: B stays alive (its keepalives, each with a
// new ack counter, reach A) but takes none of A's data, as a standby that
// follows another node's stream does (issue #12: the active kept hearing
// the real standby's keepalives while no acks came, and every synchronous
// commit waited to its deadline). A must declare B lost, saying why, within
// the dead interval of the first unacknowledged frame, the bound of
// silence; and report it alive again once B acknowledges.
func TestAckStallDeclaresPeerLost(t *testing.T) {
	a, b := pair(t, 1, 2)
	now := establish(t, a, b, simEpoch)
	now, _, _ = driveFiltered(a, b, now, 300*time.Millisecond, time.Millisecond, nil)
	dead := a.cfg.DeadInterval

	stuck := true
	pass := func(fromA bool, pdu []byte, _ time.Time) bool {
		return !(stuck && fromA && frameType(pdu) == frame.TypeData)
	}
	if err := a.Send([]byte("commit 1"), 1); err != nil {
		t.Fatal(err)
	}
	sentAt := now
	now, evA, evB := driveFiltered(a, b, now, 2*dead, time.Millisecond, pass)
	var stall *Event
	for i, ev := range evA {
		if ev.Kind == EventPeerSilent {
			if stall != nil {
				t.Fatalf("A reported B silent twice: %+v", evA)
			}
			stall = &evA[i]
		}
	}
	switch {
	case stall == nil:
		t.Fatalf("A never declared B lost while B, heard, acknowledged nothing for %v (dead interval %v); events %+v", 2*dead, dead, evA)
	case !stall.AckStall:
		t.Fatalf("A declared B silent, but not as an ack stall: B was heard all along: %+v", stall)
	case stall.At.Sub(sentAt) > dead:
		t.Fatalf("A declared the stall %v after the send, beyond the dead interval %v", stall.At.Sub(sentAt), dead)
	case stall.At.Sub(sentAt) < dead-a.cfg.KeepaliveInterval:
		t.Fatalf("A declared the stall only %v after the send, well before the dead interval %v", stall.At.Sub(sentAt), dead)
	}
	if st := a.Stats(); st.AckStalls != 1 {
		t.Fatalf("AckStalls %d, want 1", st.AckStalls)
	}
	for _, ev := range evB {
		if ev.Kind == EventPeerSilent {
			t.Fatalf("B declared A silent, but A's keepalives and retransmissions reached it: %+v", ev)
		}
	}

	// B takes A's frames again: A's retransmission is acknowledged, and A
	// reports B alive once, with no new stall.
	stuck = false
	_, evA, _ = driveFiltered(a, b, now, 2*dead, time.Millisecond, pass)
	alive := 0
	for _, ev := range evA {
		switch ev.Kind {
		case EventPeerAlive:
			alive++
		case EventPeerSilent:
			t.Fatalf("A declared B lost again after B acknowledged: %+v", ev)
		}
	}
	if alive != 1 {
		t.Fatalf("A reported B alive %d times after the stall ended, want 1: %+v", alive, evA)
	}
	if st := a.Stats(); st.InFlight != 0 || st.AckStalls != 1 {
		t.Fatalf("after the stall: %d in flight, %d stalls", st.InFlight, st.AckStalls)
	}
}

// TestAckStallNotOnFlowControl: a peer that acknowledges all it is sent but
// keeps its window closed (a slow application) is not stalled, and neither
// is an idle pair; only frames in flight count.
func TestAckStallNotOnFlowControl(t *testing.T) {
	cfgA, cfgB := baseConfig(1, 11), baseConfig(2, 22)
	cfgB.RecvBuffer = 64 << 10
	a, err := NewSession(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSession(cfgB)
	if err != nil {
		t.Fatal(err)
	}
	now := establish(t, a, b, simEpoch)
	for i := range 200 {
		if err := a.Send(make([]byte, 1000), uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	// B never releases what it is delivered: its window closes.
	end := now.Add(3 * a.cfg.DeadInterval)
	for ; now.Before(end); now = now.Add(time.Millisecond) {
		for range 100 {
			moved := false
			a.Tick(now)
			if a.HasReady() {
				for _, f := range a.Ready().Frames {
					b.Step(f, now)
				}
				a.Advance()
				moved = true
			}
			b.Tick(now)
			if b.HasReady() {
				rd := b.Ready()
				for _, f := range rd.Frames {
					a.Step(f, now)
				}
				b.AdvanceFrames() // messages stay held
				moved = true
			}
			if !moved {
				break
			}
		}
	}
	st := a.Stats()
	if st.AckStalls != 0 {
		t.Fatalf("a closed window counted as an ack stall: %+v", st)
	}
	if st.QueuedFrames == 0 || st.PeerWindow != 0 {
		t.Fatalf("the test did not close B's window: %d queued, window %d", st.QueuedFrames, st.PeerWindow)
	}
}

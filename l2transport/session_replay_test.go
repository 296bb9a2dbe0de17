package l2transport

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/swha/swha/frame"
)

// TestReplayDoesNotKeepPeerAlive: B exchanges data with A, then freezes (it
// stops sending, as a SIGSTOPped process does), and an attacker on the link
// replays at A every frame B ever sent, over and over. Before, every
// replayed frame of B's epoch counted as life and A never declared B
// silent; now only a new frame counts, so A declares B silent within its
// dead interval, counts every replay by reason, and answers none of them.
// The same holds with HMAC on: a verbatim replay verifies.
func TestReplayDoesNotKeepPeerAlive(t *testing.T) {
	for _, auth := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "hmac"}[auth], func(t *testing.T) {
			mk := func(node uint64, epoch uint32) *Session {
				cfg := baseConfig(node, epoch)
				if auth {
					kr, err := frame.NewKeyring(1, map[uint32][]byte{1: bytes.Repeat([]byte("k"), 32)})
					if err != nil {
						t.Fatal(err)
					}
					cfg.Keyring = kr
				}
				s, err := NewSession(cfg)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			a, b := mk(1, 11), mk(2, 22)
			now := simEpoch
			var captured [][]byte // every frame B sent
			exchange := func(d time.Duration, bAlive bool) {
				end := now.Add(d)
				for ; now.Before(end); now = now.Add(time.Millisecond) {
					a.Tick(now)
					if bAlive {
						b.Tick(now)
					}
					for range 100 {
						moved := false
						if a.HasReady() {
							rd := a.Ready()
							for _, f := range rd.Frames {
								if bAlive {
									b.Step(f, now)
								}
							}
							a.Advance()
							moved = true
						}
						if bAlive && b.HasReady() {
							rd := b.Ready()
							for _, f := range rd.Frames {
								captured = append(captured, slices.Clone(f))
								a.Step(f, now)
							}
							b.Advance()
							moved = true
						}
						if !moved {
							break
						}
					}
				}
			}
			exchange(50*time.Millisecond, true)
			if !a.Established() || !b.Established() {
				t.Fatal("the pair did not establish")
			}
			for i := range 20 {
				if err := a.Send([]byte{byte(i)}, 0); err != nil {
					t.Fatal(err)
				}
				if err := b.Send([]byte{byte(i)}, 0); err != nil {
					t.Fatal(err)
				}
				exchange(20*time.Millisecond, true)
			}
			exchange(3*a.cfg.KeepaliveInterval, true) // idle: keepalives flow both ways
			before := a.Stats()

			// B freezes. Replay its frames at A every millisecond, well past
			// the dead interval, and watch what A sends back.
			frozen := now
			dead := a.cfg.DeadInterval
			var silentAt time.Time
			var answered int
			for now.Before(frozen.Add(3 * dead)) {
				for _, f := range captured {
					a.Step(f, now)
				}
				a.Tick(now)
				if a.HasReady() {
					rd := a.Ready()
					for _, ev := range rd.Events {
						if ev.Kind == EventPeerSilent && silentAt.IsZero() {
							silentAt = ev.At
						}
					}
					for _, f := range rd.Frames {
						var h frame.Header
						if _, err := a.codec.Decode(f, &h); err == nil && h.Type == frame.TypeAck && h.Flags&frame.FlagAckRequest == 0 {
							answered++ // an ack that is not A's own keepalive
						}
					}
					a.Advance()
				}
				now = now.Add(time.Millisecond)
			}
			if silentAt.IsZero() {
				t.Fatalf("A never declared frozen B silent while B's frames were replayed for %v (dead interval %v)", 3*dead, dead)
			}
			if late := silentAt.Sub(frozen); late > dead {
				t.Errorf("A declared B silent %v after the freeze, more than the dead interval %v", late, dead)
			}
			after := a.Stats()
			replays := after.FramesReceived - before.FramesReceived
			var dropped uint64
			for r := range after.Drops {
				dropped += after.Drops[r] - before.Drops[r]
			}
			if dropped != replays {
				t.Errorf("%d frames replayed, %d counted as dropped (by reason: %v)", replays, dropped, after.Drops)
			}
			if after.Drops[DropStaleAck] == before.Drops[DropStaleAck] {
				t.Errorf("no replayed ack counted as %v", DropStaleAck)
			}
			// Replayed data draws a re-acknowledgement (a lost ack is its
			// usual cause), but a replayed pure ack asking for one does not.
			if max := int(after.Drops[DropDuplicate] - before.Drops[DropDuplicate]); answered > max {
				t.Errorf("A answered %d times, more than the %d replayed data frames", answered, max)
			}
		})
	}
}

package swha

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swha/swha/l2transport"
)

// TestSessionLiveness: the stand-in liveness reports the peer alive while
// the session is up, dead once it is silent for its dead interval, and
// alive again when it is heard.
func TestSessionLiveness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPair(t, pairOpts{mode: Sync})
		ctx, cancel := context.WithCancel(bg())
		defer cancel()
		states := p.sby.SessionLiveness().Watch(ctx)
		next := func(want bool) PeerState {
			t.Helper()
			select {
			case s := <-states:
				if s.Alive != want {
					t.Fatalf("peer state %+v, want alive=%v", s, want)
				}
				return s
			case <-time.After(time.Minute):
				t.Fatalf("no peer state alive=%v within a minute", want)
			}
			return PeerState{}
		}
		next(true)
		cut := time.Now()
		p.la.SetPartitioned(true)
		s := next(false)
		if d := s.At.Sub(cut); d < l2transport.DefaultDeadInterval || d > 2*l2transport.DefaultDeadInterval {
			t.Fatalf("declared dead %v after the cut, dead interval %v", d, l2transport.DefaultDeadInterval)
		}
		p.la.SetPartitioned(false)
		next(true)
		cancel()
		for range states { // ends once Watch closes it; a leak deadlocks the bubble
		}
	})
}

package swha

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// eventLog collects a node's events for a test.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
	ch  chan struct{}
}

func watchEvents(n *Node) *eventLog {
	l := &eventLog{ch: make(chan struct{}, 1)}
	n.OnEvent(func(ev Event) {
		l.mu.Lock()
		l.evs = append(l.evs, ev)
		l.mu.Unlock()
		select {
		case l.ch <- struct{}{}:
		default:
		}
	})
	return l
}

// kinds lists the kinds seen so far, with their paths.
func (l *eventLog) kinds() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ev := range l.evs {
		s := ev.Kind.String()
		if ev.Path != "" {
			s += "/" + ev.Path
		}
		if ev.Kind == EventRoleChanged {
			s += fmt.Sprintf("/%v>%v", ev.From, ev.To)
		}
		if ev.Kind == EventFailover {
			s += "/" + strings.Fields(ev.Detail + " ?")[0]
		}
		out = append(out, s)
	}
	return out
}

// await waits (in virtual time) until the log holds want as a subsequence.
func (l *eventLog) await(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		got := l.kinds()
		if isSubsequence(want, got) {
			return
		}
		select {
		case <-l.ch:
		case <-deadline:
			t.Fatalf("events %v, want %v in that order", got, want)
		}
	}
}

func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// TestEventsInOrder: a cut and a heal of the link, then a promotion, reach
// both applications as ordered events — the session going down and up, the
// standby turning cold and hot again on both sides, the role change — so
// that none of them has to poll Stats.
func TestEventsInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPair(t, pairOpts{mode: Sync})
		synctest.Wait()
		ea, es := watchEvents(p.act), watchEvents(p.sby)
		p.la.SetPartitioned(true)
		ea.await(t, "peer-down/session", "standby-cold")
		es.await(t, "peer-down/session", "standby-cold")
		p.la.SetPartitioned(false)
		ea.await(t, "peer-down/session", "standby-cold", "peer-up/session", "standby-hot")
		es.await(t, "peer-down/session", "standby-cold", "peer-up/session", "standby-hot")

		// A hook may call the node: Promote from an event hook does not
		// deadlock, and the role change follows.
		promoted := make(chan error, 1)
		p.sby.OnEvent(func(ev Event) {
			if ev.Kind == EventPeerDown {
				_, err := p.sby.Promote()
				promoted <- err
			}
		})
		p.la.SetPartitioned(true)
		if err := <-promoted; err != nil {
			t.Fatalf("promote from an event hook: %v", err)
		}
		es.await(t, "peer-down/session", "role-changed/standby>active")
		if got := es.kinds(); slices.Contains(got[len(got)-1:], "standby-hot") {
			t.Fatalf("a promoted node still reports a hot standby: %v", got)
		}
		if s := strings.Join(ea.kinds(), " "); strings.Contains(s, "role-changed") {
			t.Fatalf("the active changed role: %s", s)
		}
	})
}

package swha

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swha/swha/objstore"
)

// TestHandlerMayPromoteOrClose: a failover module often learns from the
// stream itself that it must act (an opaque "I am going down" message, a
// config object), and acts from the handler. Promote and Close from a
// subscriber or a message handler used to deadlock the standby: handlers ran
// under the apply lock Promote takes, on the goroutine Close waits for.
func TestHandlerMayPromoteOrClose(t *testing.T) {
	for _, tc := range []struct {
		name    string
		message bool // act from the message handler, else from a subscriber
		close   bool // Close, else Promote
	}{
		{"subscriber promotes", false, false},
		{"subscriber closes", false, true},
		{"message handler promotes", true, false},
		{"message handler closes", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newTestPair(t, pairOpts{mode: Async})
				acted := make(chan error, 1)
				act := func() {
					var err error
					if tc.close {
						err = p.sby.Close()
					} else {
						_, err = p.sby.Promote()
					}
					select {
					case acted <- err:
					default: // acted once already
					}
				}
				if tc.message {
					p.sby.OnMessage(func(string, any) { act() })
				} else {
					cancel := p.sby.Subscribe(func(objstore.Change) { act() })
					defer cancel()
				}
				tx, err := p.act.Begin(bg())
				must(t, err)
				h := &testHop{Iface: "last-before-failover"}
				id, err := tx.Create(h)
				must(t, err)
				if tc.message {
					must(t, tx.Message(&testNote{Text: "going down"}))
				}
				must(t, tx.Commit(bg()))
				select {
				case err := <-acted:
					if err != nil {
						t.Fatalf("from the handler: %v", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the handler never returned: deadlock")
				}
				if tc.close {
					// A Close from outside waits for the node's goroutines.
					must(t, p.sby.Close())
					synctest.Wait()
					return
				}
				if r := p.sby.Role(); r != Active {
					t.Fatalf("role %v after Promote from a handler", r)
				}
				if _, ok := p.sby.Get(id); !ok {
					t.Fatal("the promoted node lacks the transaction the handler saw")
				}
				// It works as an active: a commit goes through (solo).
				ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
				defer cancel()
				tx, err = p.sby.Begin(ctx)
				must(t, err)
				_, err = tx.Create(&testHop{Iface: "after-failover"})
				must(t, err)
				must(t, tx.Commit(ctx))
			})
		})
	}
}

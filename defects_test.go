package swha

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swha/swha/internal/skewtest"
	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/objstore"
)

// restartRig is an active with a standby whose incarnations come and go on
// the same link.
type restartRig struct {
	t      *testing.T
	act    *Node
	actCfg *testConfig
	lb     *l2transport.MemLink
	sby    *Node
	sbyCfg *testConfig
	log    *slog.Logger
}

func newRestartRig(t *testing.T, log *slog.Logger) *restartRig {
	la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 1)
	r := &restartRig{t: t, lb: lb, actCfg: &testConfig{Hostname: "a"}, log: log}
	if log == nil {
		r.log = testLogger(t)
	}
	act, err := NewNode(Config{Link: la, Registry: testRegistry(t), NodeID: 1, Epoch: 1, Role: Active,
		Statics: map[string]any{"config": r.actCfg}, Logger: r.log})
	must(t, err)
	r.act = act
	t.Cleanup(func() { act.Close() })
	return r
}

// start starts a standby incarnation with epoch on a fresh store.
func (r *restartRig) start(epoch uint32) {
	r.sbyCfg = &testConfig{}
	must(r.t, r.lb.SetReadDeadline(time.Time{}))
	sby, err := NewNode(Config{Link: keepOpen{r.lb, new(atomic.Bool)}, Registry: testRegistry(r.t), NodeID: 2, Epoch: epoch,
		Role: Standby, Statics: map[string]any{"config": r.sbyCfg}, Logger: r.log})
	must(r.t, err)
	r.sby = sby
	r.t.Cleanup(func() { sby.Close() })
}

func (r *restartRig) commitHops(ctx context.Context, n int) {
	for i := range n {
		tx, err := r.act.Begin(ctx)
		must(r.t, err)
		_, err = tx.Create(&testHop{Addr: hopAddr(i), Iface: "eth0"})
		must(r.t, err)
		must(r.t, tx.Commit(ctx))
	}
}

// TestSlowRestartOneSnapshot: a standby that comes back after the active
// saw it go silent gets one snapshot. The session reports the new
// incarnation as a restart and then as alive; the active used to send a
// snapshot for "alive" and decide again on the hello, so the standby saw a
// sequence gap, failed an apply and needed a second snapshot.
func TestSlowRestartOneSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRestartRig(t, nil)
		ctx, cancel := context.WithTimeout(bg(), time.Minute)
		defer cancel()
		r.start(1)
		must(t, r.act.WaitSynced(ctx))
		r.commitHops(ctx, 5)
		r.sby.Close()
		time.Sleep(3 * l2transport.DefaultDeadInterval) // slower than the dead interval
		synctest.Wait()
		if st := r.act.Stats(); st.PeerUp {
			t.Fatalf("the active still sees the standby after 3 dead intervals: %+v", st)
		}
		before := r.act.Stats().Snapshots
		r.start(2)
		must(t, r.act.WaitSynced(ctx))
		time.Sleep(time.Second) // anything a second decision would send has arrived
		synctest.Wait()
		as, ss := r.act.Stats(), r.sby.Stats()
		if as.Snapshots-before != 1 || ss.ApplyErrors != 0 || ss.ResyncRequests != 0 {
			t.Fatalf("rejoin cost %d snapshots, standby apply errors %d, resync requests %d; want 1, 0, 0",
				as.Snapshots-before, ss.ApplyErrors, ss.ResyncRequests)
		}
		if a, s := r.act.Store().Len(), r.sby.Store().Len(); a != s {
			t.Fatalf("active holds %d objects, standby %d", a, s)
		}
	})
}

// warnings records the Warn-level messages of a node's log.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, r.Message)
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) matching(s string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, m := range w.msgs {
		if strings.Contains(m, s) {
			out = append(out, m)
		}
	}
	return out
}

// TestPlainRIBNoLeakWarning: objects in no group and under no static root
// (every route of a plain RIB) are counted at each snapshot, not warned
// about: a warning per snapshot is one users learn to ignore.
func TestPlainRIBNoLeakWarning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &warnings{}
		r := newRestartRig(t, slog.New(w))
		ctx, cancel := context.WithTimeout(bg(), time.Minute)
		defer cancel()
		r.commitHops(ctx, 10) // solo: the join's snapshot carries them
		r.start(1)
		must(t, r.act.WaitSynced(ctx))
		if got := r.act.Stats().Leaks; got != 10 {
			t.Fatalf("Stats.Leaks = %d, want the 10 unreachable hops", got)
		}
		if got := r.act.Leaks(); len(got) != 10 {
			t.Fatalf("Leaks() lists %d, want 10", len(got))
		}
		if m := w.matching("unreachable"); len(m) != 0 {
			t.Fatalf("the snapshot warned: %q", m)
		}
	})
}

// TestRefusedCreateConverges: a standby that refused a create (the value
// does not fit its version) gets the object once a commit makes it fit, by
// that commit alone: it used to be sent as an update of an object the
// standby never had, which failed and cost a full resync every time.
func TestRefusedCreateConverges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		act, sby := skewPairV1V2(t)
		bad := &skewtest.RouteV1{Name: "bad", Pref: -1}
		var id uint64
		err := commitOn(t, act, func(tx *Txn) (err error) {
			id, err = tx.Create(bad)
			return err
		})
		if !errors.Is(err, ErrPeerRefused) {
			t.Fatalf("create of a value the standby cannot hold: %v", err)
		}
		synctest.Wait() // the repair, if any
		before := act.Stats().Snapshots
		bad.Pref = 3
		must(t, commitOn(t, act, func(tx *Txn) error { return tx.Update(bad) }))
		synctest.Wait()
		sby.Store().ReadWith(func(rd objstore.Reader) {
			o, ok := rd.Get(id)
			if !ok {
				t.Fatal("the standby never got the object once it fit")
			}
			if r := o.(*skewtest.RouteV2); r.Name != "bad" || r.Pref != 3 {
				t.Errorf("standby holds %+v", r)
			}
		})
		if as, ss := act.Stats(), sby.Stats(); as.Snapshots != before || ss.ResyncRequests != 0 || ss.ApplyErrors != 0 {
			t.Fatalf("converging cost %d snapshots, %d resync requests, %d apply errors; want none",
				as.Snapshots-before, ss.ResyncRequests, ss.ApplyErrors)
		}
	})
}

// TestRestartSession: either node can start a new stream with a newer epoch
// on the same link (what promotion and demotion will do); the standby,
// which keeps its mirror, is resumed from its seq rather than sent a
// snapshot, and the live stream goes on.
func TestRestartSession(t *testing.T) {
	for _, side := range []string{"active", "standby"} {
		t.Run(side, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newTestPair(t, pairOpts{mode: Sync})
				ctx, cancel := context.WithTimeout(bg(), time.Minute)
				defer cancel()
				commit := func(name string) {
					tx, err := p.act.Begin(ctx)
					must(t, err)
					_, err = tx.Create(&testHop{Iface: name})
					must(t, err)
					must(t, tx.Commit(ctx))
				}
				commit("before")
				n := p.act
				if side == "standby" {
					n = p.sby
				}
				if err := n.restartSession(1); err == nil {
					t.Fatal("a restart with the same epoch was accepted")
				}
				must(t, n.restartSession(2))
				synctest.Wait()
				must(t, p.act.WaitSynced(ctx))
				commit("after")
				checkSame(t, p, 3)
				if st := p.act.Stats(); st.Snapshots != 1 || st.Replays != 1 || st.Session.PeerEpoch != map[string]uint32{"active": 1, "standby": 2}[side] {
					t.Fatalf("after the restart: %d snapshots, %d replays, peer epoch %d; want the join's snapshot and one replay",
						st.Snapshots, st.Replays, st.Session.PeerEpoch)
				}
			})
		})
	}
}

// TestStandbyRestartSameEpoch: a standby restarted with its previous epoch
// used to wedge the pair silently (the active kept the peer up, a sync
// commit waited for its ctx, the standby held nothing). Now the stream
// restarts and the new incarnation is synced.
func TestStandbyRestartSameEpoch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &warnings{}
		r := newRestartRig(t, slog.New(w))
		ctx, cancel := context.WithTimeout(bg(), time.Minute)
		defer cancel()
		r.start(1)
		must(t, r.act.WaitSynced(ctx))
		r.commitHops(ctx, 5)
		r.sby.Close()
		r.start(1) // the same epoch again
		for i := 0; r.act.Stats().Session.PeerRestarts == 0; i++ {
			if i == 10_000 {
				t.Fatal("the active never noticed that its standby restarted")
			}
			time.Sleep(time.Millisecond)
		}
		r.commitHops(ctx, 5) // synchronous: each waits for the new incarnation
		must(t, r.act.WaitSynced(ctx))
		if got, want := r.sby.Store().Len(), r.act.Store().Len(); got != want {
			t.Fatalf("the restarted standby holds %d of %d objects", got, want)
		}
		if len(w.matching("epoch of its previous incarnation")) == 0 {
			t.Fatal("no warning that the peer reused its epoch")
		}
	})
}

// TestBeginOnClosedNode: the error names the operation once and still is
// ErrClosed (it used to read "swha: begin: swha: node closed").
func TestBeginOnClosedNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPair(t, pairOpts{mode: Sync})
		must(t, p.act.Close())
		_, err := p.act.Begin(bg())
		if !errors.Is(err, ErrClosed) || err.Error() != "swha: begin: node closed" {
			t.Fatalf("Begin on a closed node: %v", err)
		}
	})
}

package swha

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swha/swha/l2transport"
)

// waitHeld checks, once everything in the bubble has settled, that the
// standby holds n committed transactions behind an incomplete coordinated
// one: it has received them and must not apply them.
func waitHeld(t *testing.T, p *testPair, n int) {
	t.Helper()
	synctest.Wait()
	if got := p.sby.Stats().Held; got != n {
		t.Fatalf("standby holds %d transactions, want %d: %+v", got, n, p.sby.Stats())
	}
}

func hasObject(p *testPair, obj any) bool {
	id, ok := p.act.Store().IDOf(obj)
	if !ok {
		return false
	}
	_, ok = p.sby.Store().Get(id)
	return ok
}

// part commits one participant's part creating obj, asynchronously unless
// sync is set.
func part(t *testing.T, c *Coordinated, participant string, obj any, sync bool) {
	t.Helper()
	tx, err := c.Begin(bg(), participant)
	must(t, err)
	if obj != nil {
		_, err = tx.Create(obj)
		must(t, err)
	}
	if !sync {
		tx.SetMode(Async)
	}
	ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
	defer cancel()
	must(t, tx.Commit(ctx))
}

func TestCoordinatedAllOrNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPair(t, pairOpts{mode: Sync})
		c, err := p.act.NewCoordinated(3)
		must(t, err)
		a, b, d := &testHop{Iface: "a"}, &testHop{Iface: "b"}, &testHop{Iface: "d"}
		part(t, c, "bgp", a, false)
		part(t, c, "ospf", b, false)
		waitHeld(t, p, 2)
		if hasObject(p, a) || hasObject(p, b) {
			t.Fatal("standby applied parts of a coordinated transaction before every participant committed")
		}
		if _, err := c.Begin(bg(), "bgp"); !errors.Is(err, ErrParticipant) {
			t.Fatalf("second part of one participant: %v", err)
		}
		part(t, c, "static", d, true) // synchronous: returns once all three are applied
		if !hasObject(p, a) || !hasObject(p, b) || !hasObject(p, d) {
			t.Fatal("standby lacks parts after the last participant committed")
		}
		if _, err := c.Begin(bg(), "isis"); !errors.Is(err, ErrParticipant) {
			t.Fatalf("a fourth participant of three: %v", err)
		}
		checkSame(t, p, 4)
	})
}

// TestCoordinatedDependency: c2 shares participant "bgp" with c1, which
// committed earlier; c2 completes first but must not apply before c1.
func TestCoordinatedDependency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPair(t, pairOpts{mode: Sync})
		c1, err := p.act.NewCoordinated(2)
		must(t, err)
		c2, err := p.act.NewCoordinated(2)
		must(t, err)
		x1, y1 := &testHop{Iface: "c1-bgp"}, &testHop{Iface: "c1-ospf"}
		x2, y2 := &testHop{Iface: "c2-bgp"}, &testHop{Iface: "c2-rip"}
		part(t, c1, "bgp", x1, false)
		part(t, c2, "bgp", x2, false)
		part(t, c2, "rip", y2, false) // c2 is complete
		waitHeld(t, p, 3)
		if hasObject(p, x2) || hasObject(p, y2) {
			t.Fatal("complete c2 applied before c1, which it depends on through bgp")
		}
		// A plain transaction committed now waits behind them too.
		plain := &testHop{Iface: "plain"}
		tx, err := p.act.Begin(bg())
		must(t, err)
		_, err = tx.Create(plain)
		must(t, err)
		tx.SetMode(Async)
		must(t, tx.Commit(bg()))
		waitHeld(t, p, 4)
		if hasObject(p, plain) {
			t.Fatal("a transaction committed after an incomplete coordinated one applied before it")
		}
		part(t, c1, "ospf", y1, true)
		for _, o := range []any{x1, y1, x2, y2, plain} {
			if !hasObject(p, o) {
				t.Fatalf("standby lacks %+v after c1 completed", o)
			}
		}
		checkSame(t, p, 6)
	})
}

// TestCoordinatedPromote: a promoted standby discards an incomplete
// coordinated transaction, committed parts included, and what was held
// behind it, handing back their intents; what was acknowledged survives.
func TestCoordinatedPromote(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPair(t, pairOpts{mode: Sync})
		kept := &testHop{Iface: "kept"}
		tx, err := p.act.Begin(bg())
		must(t, err)
		_, err = tx.Create(kept)
		must(t, err)
		must(t, tx.Commit(bg()))
		c, err := p.act.NewCoordinated(2)
		must(t, err)
		tx, err = c.Begin(bg(), "bgp")
		must(t, err)
		must(t, tx.Intent([]byte("bgp part")))
		_, err = tx.Create(&testHop{Iface: "bgp"})
		must(t, err)
		tx.SetMode(Async)
		must(t, tx.Commit(bg()))
		tx, err = p.act.Begin(bg())
		must(t, err)
		must(t, tx.Intent([]byte("after")))
		tx.SetMode(Async)
		must(t, tx.Commit(bg()))
		waitHeld(t, p, 2)
		hookedc := make(chan RoleChange, 1)
		p.sby.OnRoleChange(func(rc RoleChange) { hookedc <- rc })
		intents, err := p.sby.Promote()
		must(t, err)
		hooked := <-hookedc
		if len(intents) != 2 || string(intents[0]) != "bgp part" || string(intents[1]) != "after" {
			t.Fatalf("intents %q", intents)
		}
		if hooked.From != Standby || hooked.To != Active || len(hooked.Intents) != 2 {
			t.Fatalf("role-change hook got %+v", hooked)
		}
		if p.sby.Store().Len() != 2 { // config and kept
			t.Fatalf("promoted store holds %d objects:\n%s", p.sby.Store().Len(), dump(p.sby.Store(), p.sbyCfg))
		}
	})
}

// TestCoordinatedAbortedPart: a participant that aborts its part still
// completes the coordinated transaction (with an empty part), since the
// others' parts already took effect on the active.
func TestCoordinatedAbortedPart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPair(t, pairOpts{mode: Sync})
		c, err := p.act.NewCoordinated(2)
		must(t, err)
		a := &testHop{Iface: "a"}
		part(t, c, "bgp", a, false)
		tx, err := c.Begin(bg(), "ospf")
		must(t, err)
		_, err = tx.Create(&testHop{Iface: "dropped"})
		must(t, err)
		must(t, tx.Abort())
		if c.Committed() != 2 {
			t.Fatalf("%d parts committed after an abort, want 2", c.Committed())
		}
		checkSame(t, p, 2)
	})
}

// TestSnapshotWaitsForCoordinated: a standby that joins while a coordinated
// transaction has some parts committed and some not gets its snapshot only
// once the last part commits; a snapshot in between would carry the early
// parts while the standby waited for ever for the rest.
func TestSnapshotWaitsForCoordinated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 1)
		actCfg := &testConfig{}
		act, err := NewNode(Config{Link: la, Registry: testRegistry(t), NodeID: 1, Epoch: 1, Role: Active,
			Statics: map[string]any{"config": actCfg}, Logger: testLogger(t)})
		must(t, err)
		defer act.Close()
		ctx := bg()
		c, err := act.NewCoordinated(2)
		must(t, err)
		tx, err := c.Begin(ctx, "bgp")
		must(t, err)
		_, err = tx.Create(&testHop{Iface: "bgp"})
		must(t, err)
		must(t, tx.Commit(ctx)) // solo
		sbyCfg := &testConfig{}
		sby, err := NewNode(Config{Link: lb, Registry: testRegistry(t), NodeID: 2, Epoch: 1, Role: Standby,
			Statics: map[string]any{"config": sbyCfg}, Logger: testLogger(t)})
		must(t, err)
		defer sby.Close()
		time.Sleep(time.Second)
		if st := act.Stats(); st.Snapshots != 0 {
			t.Fatalf("snapshot sent with a coordinated transaction half committed: %+v", st)
		}
		tx, err = c.Begin(ctx, "isis")
		must(t, err)
		_, err = tx.Create(&testHop{Iface: "isis"})
		must(t, err)
		must(t, tx.Commit(ctx))
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		must(t, act.WaitSynced(wctx))
		// And the stream goes on.
		tx, err = act.Begin(ctx)
		must(t, err)
		_, err = tx.Create(&testHop{Iface: "after"})
		must(t, err)
		must(t, tx.Commit(wctx))
		p := &testPair{act: act, sby: sby, actCfg: actCfg, sbyCfg: sbyCfg}
		checkSame(t, p, 4)
	})
}

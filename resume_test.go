package swha

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/objstore"
)

// resumeScenario: a standby mirrors an active, saves a checkpoint and stops;
// the active commits on, solo; a new standby incarnation starts from the
// checkpoint (or from a damaged one) and must end up equal to the active.
func resumeScenario(t *testing.T, replayBytes int, damage func(path string)) (act *Node, snapshots, replays uint64) {
	return resumeScenarioFrom(t, replayBytes, damage, false)
}

// resumeScenarioFrom is resumeScenario with the checkpoint taken on the
// active instead of the standby, if fromActive.
func resumeScenarioFrom(t *testing.T, replayBytes int, damage func(path string), fromActive bool) (act *Node, snapshots, replays uint64) {
	la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 1)
	actCfg := &testConfig{Hostname: "a"}
	act, err := NewNode(Config{Link: la, Registry: testRegistry(t), NodeID: 1, Epoch: 1, Role: Active,
		Statics: map[string]any{"config": actCfg}, ReplayBytes: replayBytes, Logger: testLogger(t)})
	must(t, err)
	t.Cleanup(func() { act.Close() })
	sbyCfg := &testConfig{}
	sby, err := NewNode(Config{Link: keepOpen{lb, new(atomic.Bool)}, Registry: testRegistry(t), NodeID: 2, Epoch: 1,
		Role: Standby, Statics: map[string]any{"config": sbyCfg}, Logger: testLogger(t)})
	must(t, err)
	ctx, cancel := context.WithTimeout(bg(), 30*time.Second)
	defer cancel()
	must(t, act.WaitSynced(ctx))

	rng := rand.New(rand.NewPCG(3, 4))
	m := newModel(t, rng, act, actCfg)
	step := func(mode CommitMode) {
		tx, err := act.Begin(ctx)
		must(t, err)
		m.ops(tx, 1+rng.IntN(5))
		tx.SetMode(mode)
		must(t, tx.Commit(ctx))
	}
	for range 30 {
		step(Sync)
	}
	path := filepath.Join(t.TempDir(), "standby.ckpt")
	if fromActive {
		must(t, act.SaveCheckpoint(path))
	} else {
		must(t, sby.SaveCheckpoint(path))
	}
	sby.Close()
	for range 20 {
		step(Async) // the standby is gone: solo, and the log keeps them
	}
	if damage != nil {
		damage(path)
	}
	must(t, lb.SetReadDeadline(time.Time{}))
	sbyCfg2 := &testConfig{}
	sby2, err := NewNode(Config{Link: lb, Registry: testRegistry(t), NodeID: 2, Epoch: 2, Role: Standby,
		Statics: map[string]any{"config": sbyCfg2}, Checkpoint: path, Logger: testLogger(t)})
	must(t, err)
	t.Cleanup(func() { sby2.Close() })
	time.Sleep(2 * time.Second) // the old session notices the new epoch
	must(t, act.WaitSynced(ctx))
	for range 10 {
		step(Sync) // and the live stream goes on from there
	}
	if a, s := dump(act.Store(), actCfg), dump(sby2.Store(), sbyCfg2); a != s {
		t.Fatalf("resumed standby differs\nactive:\n%s\nstandby:\n%s", a, s)
	}
	st := act.Stats()
	return act, st.Snapshots, st.Replays
}

// TestResumeFromCheckpoint: a standby seeded from its checkpoint receives
// only the commits after it, not a snapshot.
func TestResumeFromCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, snaps, replays := resumeScenario(t, 0, nil)
		if snaps != 1 || replays != 1 {
			t.Fatalf("%d snapshots and %d replays, want the first join's snapshot and one replay", snaps, replays)
		}
	})
}

// TestResumeFromActiveCheckpoint: a standby seeded from a checkpoint the
// active wrote is resumed from it too: the active knows the snapshot ID it
// put in the file.
func TestResumeFromActiveCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, snaps, replays := resumeScenarioFrom(t, 0, nil, true)
		if snaps != 1 || replays != 1 {
			t.Fatalf("%d snapshots and %d replays, want the first join's snapshot and one replay", snaps, replays)
		}
	})
}

// TestResumeFallsBackToSnapshot: when the active's log no longer reaches
// back to the checkpoint, or the checkpoint is damaged, the standby gets a
// snapshot and ends up equal all the same.
func TestResumeFallsBackToSnapshot(t *testing.T) {
	t.Run("log-too-short", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, snaps, replays := resumeScenario(t, 1, nil)
			if snaps != 2 || replays != 0 {
				t.Fatalf("%d snapshots and %d replays, want 2 snapshots", snaps, replays)
			}
		})
	})
	t.Run("damaged-checkpoint", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, snaps, replays := resumeScenario(t, 0, func(path string) {
				b, err := os.ReadFile(path)
				must(t, err)
				b[len(b)/2] ^= 0x40
				must(t, os.WriteFile(path, b, 0o600))
			})
			if snaps != 2 || replays != 0 {
				t.Fatalf("%d snapshots and %d replays, want 2 snapshots", snaps, replays)
			}
		})
	})
}

// TestActiveRestoresFromCheckpoint: an active started from its own
// checkpoint holds the state it saved and commits on from it.
func TestActiveRestoresFromCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, _ := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 1)
		cfg := &testConfig{Hostname: "a", ASN: 65001}
		act, err := NewNode(Config{Link: la, Registry: testRegistry(t), NodeID: 1, Epoch: 1, Role: Active,
			Statics: map[string]any{"config": cfg}, Logger: testLogger(t)})
		must(t, err)
		rng := rand.New(rand.NewPCG(5, 6))
		m := newModel(t, rng, act, cfg)
		for range 20 {
			tx, err := act.Begin(bg())
			must(t, err)
			m.ops(tx, 1+rng.IntN(5))
			must(t, tx.Commit(bg()))
		}
		path := filepath.Join(t.TempDir(), "active.ckpt")
		must(t, act.SaveCheckpoint(path))
		want := dump(act.Store(), cfg)
		act.Close()

		lc, _ := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 2)
		cfg2 := &testConfig{}
		act2, err := NewNode(Config{Link: lc, Registry: testRegistry(t), NodeID: 1, Epoch: 2, Role: Active,
			Statics: map[string]any{"config": cfg2}, Checkpoint: path, Logger: testLogger(t)})
		must(t, err)
		defer act2.Close()
		if got := dump(act2.Store(), cfg2); got != want {
			t.Fatalf("restored active differs\nsaved:\n%s\nrestored:\n%s", want, got)
		}
		// The restored objects are the store's: find one and change it.
		var hop *testHop
		act2.Store().Each(func(_ uint64, o any) bool {
			hop, _ = o.(*testHop)
			return hop == nil
		})
		if hop == nil {
			t.Fatal("no hop restored")
		}
		tx, err := act2.Begin(bg())
		must(t, err)
		hop.Iface = "restored"
		must(t, tx.Update(hop))
		cfg2.ASN = 65002
		must(t, tx.Update(cfg2))
		must(t, tx.Commit(bg()))
		if act2.Stats().CommittedSeq <= act.Stats().CommittedSeq {
			t.Fatalf("seq %d after restoring seq %d", act2.Stats().CommittedSeq, act.Stats().CommittedSeq)
		}
	})
}

// TestNodeLeaks: an object that no static root or group reaches is
// reported on both nodes, by type and ID, and left alone.
func TestNodeLeaks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPair(t, pairOpts{mode: Sync})
		g, err := p.act.NewGroup("vrf", "vrf")
		must(t, err)
		used, lost := &testHop{Iface: "used"}, &testHop{Iface: "lost"}
		tx, err := p.act.Begin(bg())
		must(t, err)
		_, err = tx.Create(used)
		must(t, err)
		lostID, err := tx.Create(lost)
		must(t, err)
		_, err = tx.CreateIn(g, &testRoute{Prefix: pfx(1), NextHop: used})
		must(t, err)
		must(t, tx.Commit(bg()))
		for _, n := range []*Node{p.act, p.sby} {
			leaks := n.Leaks()
			if len(leaks) != 1 || leaks[0].ID != lostID || leaks[0].Type != "hop" {
				t.Fatalf("%v: leaks %+v, want hop %d", n.Role(), leaks, lostID)
			}
		}
		if p.sby.Store().Len() != 4 {
			t.Fatalf("standby holds %d objects", p.sby.Store().Len())
		}
	})
}

// TestStatsFromSubscriber: a standby application may look at the node's
// stats from its subscriber, which runs while the node applies.
func TestStatsFromSubscriber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPair(t, pairOpts{mode: Sync})
		var seen atomic.Uint64
		cancel := p.sby.Subscribe(func(c objstore.Change) {
			seen.Store(p.sby.Stats().AppliedSeq + 1)
		})
		defer cancel()
		ctx, stop := context.WithTimeout(bg(), 10*time.Second)
		defer stop()
		tx, err := p.act.Begin(ctx)
		must(t, err)
		_, err = tx.Create(&testHop{Iface: "e1"})
		must(t, err)
		must(t, tx.Commit(ctx))
		// The ack says the mirror holds the transaction; the subscriber runs
		// on the deliverer, possibly after the ack went out.
		synctest.Wait()
		if seen.Load() == 0 {
			t.Fatal("subscriber never ran")
		}
	})
}

package swha

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swha/swha/internal/skewtest"
	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/objstore"
)

// skewNode starts a node of version v on link l.
func skewNode(t *testing.T, l l2transport.Link, id uint64, role Role, v skewtest.Version) *Node {
	t.Helper()
	reg, err := skewtest.NewRegistry(v)
	must(t, err)
	n, err := NewNode(Config{Link: l, Registry: reg, NodeID: id, Epoch: 1, Role: role, Mode: Sync, Logger: testLogger(t)})
	must(t, err)
	t.Cleanup(func() { n.Close() })
	return n
}

// skewPairV1V2 starts a synced version-1 active and version-2 standby over a
// fault-free in-memory link.
func skewPairV1V2(t *testing.T) (act, sby *Node) {
	t.Helper()
	la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 1)
	act = skewNode(t, la, 1, Active, skewtest.V1)
	sby = skewNode(t, lb, 2, Standby, skewtest.V2)
	must(t, act.WaitSynced(bg()))
	return act, sby
}

// commitOn runs f in a transaction of n and commits it.
func commitOn(t *testing.T, n *Node, f func(tx *Txn) error) error {
	t.Helper()
	tx, err := n.Begin(bg())
	must(t, err)
	must(t, f(tx))
	return tx.Commit(bg())
}

// events collects the opaque messages a standby receives.
type events struct {
	mu  sync.Mutex
	got []any
}

func (e *events) add(_ string, m any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, m)
}

// TestSkewReplication: a random stream over every field kind, committed
// synchronously on an active of one version over a lossy, reordering,
// corrupting in-memory link, is mirrored by a standby of the other version
// in its own layout after every commit, both ways.
func TestSkewReplication(t *testing.T) {
	for _, dir := range [][2]skewtest.Version{{skewtest.V1, skewtest.V2}, {skewtest.V2, skewtest.V1}} {
		for _, seed := range seeds(t) {
			t.Run(fmt.Sprintf("%v-to-%v/%d", dir[0], dir[1], seed), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					defer func() {
						if t.Failed() {
							t.Logf("replay with: go test -run 'TestSkewReplication' -seed=%d", seed)
						}
					}()
					faults := l2transport.Faults{Loss: 0.05, Duplicate: 0.03, Reorder: 0.05, Corrupt: 0.02, Delay: 50 * time.Microsecond, Jitter: 100 * time.Microsecond}
					la, lb := l2transport.NewMemPair(1500, faults, faults, seed)
					act := skewNode(t, la, 1, Active, dir[0])
					sby := skewNode(t, lb, 2, Standby, dir[1])
					var ev events
					sby.OnMessage(ev.add)
					ctx, cancel := context.WithTimeout(bg(), time.Minute)
					defer cancel()
					must(t, act.WaitSynced(ctx))
					app := skewtest.NewApp(dir[0], seed)
					rng := rand.New(rand.NewPCG(seed, 9))
					for step := range 80 {
						tx, err := act.Begin(ctx)
						must(t, err)
						if err := app.Ops(tx, 1+rng.IntN(6)); err != nil {
							t.Fatalf("step %d: %v", step, err)
						}
						if err := tx.Commit(ctx); err != nil {
							t.Fatalf("step %d: commit: %v", step, err)
						}
						app.Committed()
						if err := app.Check(sby.Store(), dir[1]); err != nil {
							t.Fatalf("step %d: %v", step, err)
						}
					}
					ev.mu.Lock()
					defer ev.mu.Unlock()
					if err := app.CheckEvents(ev.got, sby.Store(), dir[1]); err != nil {
						t.Fatal(err)
					}
					if st := sby.Stats(); st.Refused != 0 || st.ApplyErrors != 0 {
						t.Fatalf("standby refused %d, apply errors %d", st.Refused, st.ApplyErrors)
					}
					// Both sides know what the other version lacks.
					removed := map[skewtest.Version]string{skewtest.V1: "Legacy", skewtest.V2: "Color"}
					var onActive, onStandby objstore.SkewReport
					for _, r := range act.PeerSkew() {
						if r.Type == "Route" {
							onActive = r
						}
					}
					for _, r := range sby.PeerSkew() {
						if r.Type == "Route" {
							onStandby = r
						}
					}
					if onActive.Identical || len(onActive.Dropped) == 0 || onActive.Dropped[0].Field != removed[dir[0]] {
						t.Fatalf("active's view of the standby's Route: %v", onActive)
					}
					if len(onStandby.Dropped) == 0 || onStandby.Dropped[0].Field != removed[dir[0]] || onStandby.Dropped[0].Count == 0 {
						t.Fatalf("standby's view of the active's Route: %v", onStandby)
					}
				})
			})
		}
	}
}

// TestSkewRefusal: a value the standby's version cannot hold fails the
// synchronous commit on the active with ErrPeerRefused naming type, field
// and value, shows in both nodes' stats, and leaves the stream going: the
// next independent commit is mirrored. The refused object's next update is
// sent whole, so a later change to another field cannot hide the refused
// one.
func TestSkewRefusal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		act, sby := skewPairV1V2(t)
		r := &skewtest.RouteV1{Name: "r", Pref: 10}
		var id uint64
		commitFn := func(f func(tx *Txn) error) error { return commitOn(t, act, f) }
		must(t, commitFn(func(tx *Txn) (err error) { id, err = tx.Create(r); return err }))

		r.Pref, r.Name = -1, "x"
		err := commitFn(func(tx *Txn) error { return tx.Update(r) })
		if !errors.Is(err, ErrPeerRefused) || !strings.Contains(err.Error(), "Route.Pref") || !strings.Contains(err.Error(), "value -1 does not fit uint16") {
			t.Fatalf("refused commit: %v", err)
		}
		if st := act.Stats(); st.PeerRefusals != 1 || !strings.Contains(st.LastPeerRefusal, "Route.Pref") {
			t.Fatalf("active stats %+v", st)
		}
		if st := sby.Stats(); st.Refused != 1 || st.ApplyErrors != 0 || st.AwaitingSnapshot {
			t.Fatalf("standby stats %+v", st)
		}
		mirror := func() skewtest.RouteV2 {
			var out skewtest.RouteV2
			sby.Store().ReadWith(func(r objstore.Reader) {
				o, _ := r.Get(id)
				out = *o.(*skewtest.RouteV2)
			})
			return out
		}
		if m := mirror(); m.Name != "r" || m.Pref != 10 {
			t.Fatalf("refused update applied: %+v", m)
		}
		// An independent commit goes through.
		must(t, commitFn(func(tx *Txn) error { _, err := tx.Create(&skewtest.HopV1{Iface: "e1"}); return err }))
		if sby.Store().Len() != 2 {
			t.Fatalf("standby holds %d objects", sby.Store().Len())
		}
		// Changing only the name resends the whole route, so the bad
		// value is refused again rather than silently left behind.
		r.Name = "y"
		if err := commitFn(func(tx *Txn) error { return tx.Update(r) }); !errors.Is(err, ErrPeerRefused) {
			t.Fatalf("update after a refusal: %v", err)
		}
		r.Pref = 5
		must(t, commitFn(func(tx *Txn) error { return tx.Update(r) }))
		if m := mirror(); m.Name != "y" || m.Pref != 5 {
			t.Fatalf("mirror after the fix: %+v", m)
		}
	})
}

// TestSkewRefusedSnapshot: a standby that joins while the active holds a
// value its version cannot hold refuses the snapshot; the active says so
// and fails synchronous commits with ErrPeerRefused instead of waiting, and
// once a commit fixes the value the next snapshot is accepted.
func TestSkewRefusedSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 1)
		act := skewNode(t, la, 1, Active, skewtest.V2)
		ctx := bg()
		r := &skewtest.RouteV2{Name: "big", Tag: 1 << 40}
		tx, err := act.Begin(ctx)
		must(t, err)
		id, err := tx.Create(r)
		must(t, err)
		must(t, tx.Commit(ctx)) // solo
		sby := skewNode(t, lb, 2, Standby, skewtest.V1)
		for !act.Stats().StandbyRefusedSnapshot {
			time.Sleep(time.Millisecond)
		}
		if st := act.Stats(); !strings.Contains(st.LastPeerRefusal, "Route.Tag") || !strings.Contains(st.LastPeerRefusal, "1099511627776") {
			t.Fatalf("active stats %+v", st)
		}
		r.Name = "still big"
		tx, err = act.Begin(ctx)
		must(t, err)
		must(t, tx.Update(r))
		if err := tx.Commit(ctx); !errors.Is(err, ErrPeerRefused) || !strings.Contains(err.Error(), "snapshot") {
			t.Fatalf("commit while the standby refuses the snapshot: %v", err)
		}
		r.Tag = 7
		tx, err = act.Begin(ctx)
		must(t, err)
		must(t, tx.Update(r))
		_ = tx.Commit(ctx) // may still see the old refusal; the snapshot it triggers is what counts
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		must(t, act.WaitSynced(wctx))
		var got skewtest.RouteV1
		sby.Store().ReadWith(func(r objstore.Reader) {
			o, ok := r.Get(id)
			if ok {
				got = *o.(*skewtest.RouteV1)
			}
		})
		if got.Tag != 7 || got.Name != "still big" {
			t.Fatalf("standby after the fix: %+v", got)
		}
		if slices.ContainsFunc(act.PeerSkew(), func(r objstore.SkewReport) bool { return r.Missing }) {
			t.Fatalf("active skew: %v", act.PeerSkew())
		}
	})
}

// TestSkewRepair: the standby refuses a transaction whole when one value
// does not fit; the active then mends the rest of it (objects created,
// updated and deleted by it) so that they do not stay different on the
// standby, and leaves out only the object that cannot be carried.
func TestSkewRepair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		act, sby := skewPairV1V2(t)
		ctx := bg()
		good, bad, gone := &skewtest.RouteV1{Name: "good"}, &skewtest.RouteV1{Name: "bad", Pref: 1}, &skewtest.HopV1{Iface: "gone"}
		ids := map[string]uint64{}
		commit := func(f func(tx *Txn) error) error { return commitOn(t, act, f) }
		must(t, commit(func(tx *Txn) (err error) {
			for name, o := range map[string]any{"good": good, "bad": bad, "gone": gone} {
				if ids[name], err = tx.Create(o); err != nil {
					return err
				}
			}
			return nil
		}))
		hop := &skewtest.HopV1{Iface: "new"}
		err := commit(func(tx *Txn) (err error) {
			good.Name, bad.Pref, bad.Name = "changed", -1, "changed"
			if err = tx.Update(good); err != nil {
				return err
			}
			if err = tx.Update(bad); err != nil {
				return err
			}
			if ids["new"], err = tx.Create(hop); err != nil {
				return err
			}
			return tx.Delete(gone)
		})
		if !errors.Is(err, ErrPeerRefused) {
			t.Fatalf("commit: %v", err)
		}
		synctest.Wait() // the repair
		must(t, act.WaitSynced(ctx))
		mirror := map[uint64]any{}
		sby.Store().Each(func(id uint64, o any) bool { mirror[id] = o; return true })
		sby.Read(func() {
			if r := mirror[ids["good"]].(*skewtest.RouteV2); r.Name != "changed" {
				t.Errorf("good route not repaired: %+v", r)
			}
			if r := mirror[ids["bad"]].(*skewtest.RouteV2); r.Name != "bad" || r.Pref != 1 {
				t.Errorf("bad route changed: %+v", r)
			}
			if _, ok := mirror[ids["new"]]; !ok {
				t.Error("new hop not repaired")
			}
			if _, ok := mirror[ids["gone"]]; ok {
				t.Error("deleted hop still on the standby")
			}
		})
		if st := act.Stats(); st.Repairs != 1 || st.Unrepaired != 0 {
			t.Fatalf("active stats: repairs %d, unrepaired %d", st.Repairs, st.Unrepaired)
		}
		// Fixing the value brings the bad route over whole.
		bad.Pref = 3
		must(t, commit(func(tx *Txn) error { return tx.Update(bad) }))
		sby.Store().ReadWith(func(rd objstore.Reader) {
			o, _ := rd.Get(ids["bad"])
			if r := o.(*skewtest.RouteV2); r.Name != "changed" || r.Pref != 3 {
				t.Errorf("bad route after the fix: %+v", r)
			}
		})
	})
}

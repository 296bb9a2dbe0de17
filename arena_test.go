package swha

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/objstore"
)

// testCounter is an arena type: no Go pointers, its hop by ID.
type testCounter struct {
	Key  uint64
	Hits uint64
	Hop  uint64 // ID of a testHop, 0: none
	Name [12]byte
	Port uint16
}

func arenaTestRegistry(t testing.TB) *objstore.Registry {
	t.Helper()
	r := testRegistry(t)
	if err := r.Register("counter", testCounter{}, objstore.InArena()); err != nil {
		t.Fatal(err)
	}
	return r
}

// counterDump renders the arena objects of a view canonically, by ID.
func counterDump(v *objstore.View) string {
	var lines []string
	v.Each(func(id uint64, o any) bool {
		if c, ok := o.(*testCounter); ok {
			lines = append(lines, fmt.Sprintf("%d counter %+v", id, *c))
		}
		return true
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestPropertyArenaReplication is TestPropertyReplication with arena objects
// in the same transactions: created, changed behind the store's back and
// found by Sync (from the written pages where the kernel tracks them),
// deleted. After each commit the standby must equal the active.
func TestPropertyArenaReplication(t *testing.T) {
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				defer func() {
					if t.Failed() {
						t.Logf("replay with: go test -run 'TestPropertyArenaReplication' -seed=%d", seed)
					}
				}()
				faults := l2transport.Faults{Loss: 0.05, Duplicate: 0.03, Reorder: 0.05, Delay: 50 * time.Microsecond, Jitter: 100 * time.Microsecond}
				p := newTestPair(t, pairOpts{faults: faults, seed: seed, mode: Sync, registry: arenaTestRegistry})
				if ok, why := p.act.Store().DirtyTracking(); !ok {
					t.Logf("no kernel dirty tracking, Sync diffs every object: %s", why)
				}
				arena, err := objstore.ArenaOf[testCounter](p.act.Store())
				must(t, err)
				rng := rand.New(rand.NewPCG(seed, 16))
				m := newModel(t, rng, p.act, p.actCfg)
				var counters []*testCounter
				ctx, cancel := context.WithTimeout(bg(), time.Minute)
				defer cancel()
				for step := range 40 {
					tx, err := p.act.Begin(ctx)
					must(t, err)
					m.ops(tx, rng.IntN(4))
					for range 1 + rng.IntN(6) {
						switch op := rng.IntN(10); {
						case op < 3 || len(counters) < 4:
							c, err := arena.New()
							must(t, err)
							c.Key = uint64(m.next)
							m.next++
							if len(m.hops) > 0 {
								id, _ := p.act.Store().IDOf(m.hops[rng.IntN(len(m.hops))])
								c.Hop = id
							}
							_, err = tx.Create(c)
							must(t, err)
							counters = append(counters, c)
						case op < 4:
							k := rng.IntN(len(counters))
							must(t, tx.Delete(counters[k]))
							counters = slices.Delete(counters, k, k+1)
						default:
							// Behind the store's back: Sync finds it.
							c := counters[rng.IntN(len(counters))]
							c.Hits++
							c.Name[rng.IntN(len(c.Name))] = byte('a' + rng.IntN(26))
							if rng.IntN(3) == 0 {
								c.Port = uint16(rng.Uint32())
							}
						}
					}
					must(t, tx.Sync())
					must(t, tx.Commit(ctx))
					want := dump(p.act.Store(), p.actCfg) + counterDump(p.act.Store())
					got := dump(p.sby.Store(), p.sbyCfg) + counterDump(p.sby.Store())
					if want != got {
						t.Fatalf("step %d: standby differs\nactive:\n%s\nstandby:\n%s", step, want, got)
					}
				}
				if n := strings.Count(counterDump(p.sby.Store()), "counter"); n != len(counters) || n == 0 {
					t.Fatalf("standby holds %d counters, the active %d", n, len(counters))
				}
			})
		})
	}
}

// checkCountersInArena fails t unless every counter of n's store is an
// object of its arena, its handle resolving to it; it returns how many.
func checkCountersInArena(t *testing.T, n *Node, what string) int {
	t.Helper()
	arena, err := objstore.ArenaOf[testCounter](n.Store())
	must(t, err)
	var cs []*testCounter
	n.Store().Each(func(_ uint64, o any) bool {
		if c, ok := o.(*testCounter); ok {
			cs = append(cs, c)
		}
		return true
	})
	for _, c := range cs {
		if h, ok := arena.Handle(c); !ok || arena.At(h) != c {
			t.Fatalf("%s: counter %+v at %p is not an object of the arena", what, *c, c)
		}
	}
	return len(cs)
}

// TestArenaNodeSnapshotCheckpointLeaks: a standby that joins an active
// already holding arena objects gets them by snapshot, into its own arena;
// its checkpoint seeds a new node with them, in that node's arena, with the
// same content; the leak check of either side sees them (in a group: reached;
// outside: reported); Node.Close closes the store (its kernel tracking).
func TestArenaNodeSnapshotCheckpointLeaks(t *testing.T) {
	la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 16)
	mk := func(l l2transport.Link, id uint64, role Role, cfg *testConfig, ckpt string) *Node {
		n, err := NewNode(Config{
			Link: l, Registry: arenaTestRegistry(t), NodeID: id, Epoch: 1, Role: role, Mode: Async,
			Logger: testLogger(t), Statics: map[string]any{"config": cfg}, Checkpoint: ckpt,
		})
		must(t, err)
		t.Cleanup(func() { n.Close() })
		return n
	}
	actCfg := &testConfig{Hostname: "a"}
	act := mk(la, 1, Active, actCfg, "")
	arena, err := objstore.ArenaOf[testCounter](act.Store())
	must(t, err)
	g, err := act.NewGroup("vrf", "vrf")
	must(t, err)
	ctx, cancel := context.WithTimeout(bg(), time.Minute)
	defer cancel()
	tx, err := act.Begin(ctx)
	must(t, err)
	var loose []uint64
	for k := range 300 {
		c, err := arena.New()
		must(t, err)
		c.Key, c.Port = uint64(k), uint16(k)
		copy(c.Name[:], fmt.Sprintf("ctr-%d", k))
		if k%3 == 0 {
			id, err := tx.Create(c)
			must(t, err)
			loose = append(loose, id)
		} else {
			_, err = tx.CreateIn(g, c)
			must(t, err)
		}
	}
	must(t, tx.Commit(ctx))

	sbyCfg := &testConfig{}
	sby := mk(lb, 2, Standby, sbyCfg, "")
	must(t, act.WaitSynced(ctx))
	want := dump(act.Store(), actCfg) + counterDump(act.Store())
	if got := dump(sby.Store(), sbyCfg) + counterDump(sby.Store()); got != want {
		t.Fatalf("standby after the snapshot:\n%s\nwant:\n%s", got, want)
	}
	if n := checkCountersInArena(t, sby, "standby"); n != 300 {
		t.Fatalf("standby holds %d counters", n)
	}
	for _, n := range []*Node{act, sby} {
		var got []uint64
		for _, l := range n.Leaks() {
			got = append(got, l.ID)
		}
		if !slices.Equal(got, loose) {
			t.Fatalf("%v leaks %d objects, want the %d counters outside the group", n.Role(), len(got), len(loose))
		}
	}

	path := t.TempDir() + "/ckpt"
	must(t, sby.SaveCheckpoint(path))
	lc, ld := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 17)
	defer lc.Close()
	seededCfg := &testConfig{}
	seeded := mk(ld, 3, Standby, seededCfg, path)
	if got := dump(seeded.Store(), seededCfg) + counterDump(seeded.Store()); got != want {
		t.Fatalf("node seeded from the checkpoint:\n%s\nwant:\n%s", got, want)
	}
	if n := checkCountersInArena(t, seeded, "seeded"); n != 300 {
		t.Fatalf("seeded node holds %d counters", n)
	}

	tracked, _ := seeded.Store().DirtyTracking()
	must(t, seeded.Close())
	if ok, why := seeded.Store().DirtyTracking(); ok || (tracked && why != "store closed") {
		t.Fatalf("after Node.Close: tracking %v (%q), want the store closed", ok, why)
	}
	// The objects stay readable: the arenas still held them, so they stay
	// mapped.
	if got := counterDump(seeded.Store()); got != counterDump(act.Store()) {
		t.Fatal("counters changed by Node.Close")
	}
}

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
				la, lb := l2transport.NewMemPair(1500, faults, faults, seed)
				actCfg, sbyCfg := &testConfig{}, &testConfig{}
				mk := func(l *l2transport.MemLink, id uint64, role Role, cfg *testConfig) *Node {
					n, err := NewNode(Config{
						Link: l, Registry: arenaTestRegistry(t), NodeID: id, Epoch: 1, Role: role, Mode: Sync,
						Logger: testLogger(t), Statics: map[string]any{"config": cfg},
					})
					must(t, err)
					return n
				}
				p := &testPair{act: mk(la, 1, Active, actCfg), sby: mk(lb, 2, Standby, sbyCfg), la: la, lb: lb, actCfg: actCfg, sbyCfg: sbyCfg}
				defer p.close()
				p.waitStreaming(t)
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

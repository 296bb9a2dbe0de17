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
	"github.com/swha/swha/l2transport/linktest"
	"github.com/swha/swha/objstore"
)

// seeds are the property tests' seeds: the fixed ones on every run, so that
// two CI runs test the same thing, and random ones, printed to replay
// (linktest.Seeds: -seed=N replays one, -seeds=N runs N random ones).
func seeds(t *testing.T) []uint64 { return linktest.Seeds(t, linktest.PropertySeeds...) }

// dump renders a store's objects canonically: sorted by ID, pointers as the
// ID of their target (found by address among the store's objects), so that
// an active and a standby holding equal state render the same text.
func dump(s *objstore.View, static *testConfig) string {
	ids := map[any]uint64{}
	type obj struct {
		id uint64
		o  any
	}
	var objs []obj
	s.Each(func(id uint64, o any) bool {
		objs = append(objs, obj{id, o})
		ids[o] = id
		return true
	})
	sort.Slice(objs, func(a, b int) bool { return objs[a].id < objs[b].id })
	g := s.GroupByName("vrf")
	ref := func(h *testHop) string {
		if h == nil {
			return "nil"
		}
		id, ok := ids[any(h)]
		if !ok {
			return "DANGLING"
		}
		return fmt.Sprint(id)
	}
	var b strings.Builder
	s.Read(func() {
		for _, o := range objs {
			switch v := o.o.(type) {
			case *testHop:
				fmt.Fprintf(&b, "%d hop %v %q\n", o.id, v.Addr, v.Iface)
			case *testRoute:
				var backups []string
				for _, h := range v.Backups {
					backups = append(backups, ref(h))
				}
				fmt.Fprintf(&b, "%d route %v nh=%s backups=%v metric=%d comm=%v\n", o.id, v.Prefix, ref(v.NextHop), backups, v.Metric, v.Communities)
			case *testConfig:
				fmt.Fprintf(&b, "%d config %q %d\n", o.id, v.Hostname, v.ASN)
			default:
				fmt.Fprintf(&b, "%d %T\n", o.id, v)
			}
		}
		if g != nil && g.Len() > 0 {
			fmt.Fprintf(&b, "group vrf %d\n", g.Len())
		}
	})
	return b.String()
}

// model drives random transactions on an active node and keeps what the
// application holds, so that every operation it makes is valid.
type model struct {
	t      testing.TB
	rng    *rand.Rand
	n      *Node
	cfg    *testConfig
	hops   []*testHop
	routes []*testRoute
	vrf    *objstore.Group
	inVRF  map[*testRoute]bool
	next   int
	// txnRefs are the hops that routes created or updated in the open
	// transaction point to: the store encodes those routes at commit even
	// if they are deleted later in the transaction, so such a hop cannot go.
	txnRefs map[*testHop]bool
}

func newModel(t testing.TB, rng *rand.Rand, n *Node, cfg *testConfig) *model {
	g, err := n.NewGroup("vrf", "vrf")
	must(t, err)
	return &model{t: t, rng: rng, n: n, cfg: cfg, vrf: g, inVRF: map[*testRoute]bool{}}
}

func (m *model) hop() *testHop {
	if len(m.hops) == 0 || m.rng.IntN(8) == 0 {
		return nil
	}
	return m.hops[m.rng.IntN(len(m.hops))]
}

func (m *model) refs(r *testRoute) {
	m.txnRefs[r.NextHop] = true
	for _, h := range r.Backups {
		m.txnRefs[h] = true
	}
}

func (m *model) referenced(h *testHop) bool {
	if m.txnRefs[h] {
		return true
	}
	for _, r := range m.routes {
		if r.NextHop == h || slices.Contains(r.Backups, h) {
			return true
		}
	}
	return false
}

// ops adds k random operations to tx; pending tracks objects created in
// this transaction so that they are not deleted again before commit.
func (m *model) ops(tx *Txn, k int) {
	t := m.t
	m.txnRefs = map[*testHop]bool{}
	for range k {
		m.next++
		switch op := m.rng.IntN(10); {
		case op == 0 || len(m.hops) < 3:
			h := &testHop{Addr: hopAddr(m.next), Iface: fmt.Sprintf("eth%d", m.next%7)}
			_, err := tx.Create(h)
			must(t, err)
			m.hops = append(m.hops, h)
		case op <= 3:
			r := &testRoute{Prefix: pfx(m.next), NextHop: m.hop(), Metric: uint32(m.rng.IntN(100))}
			for range m.rng.IntN(3) {
				if h := m.hop(); h != nil {
					r.Backups = append(r.Backups, h)
				}
			}
			if m.rng.IntN(3) == 0 {
				r.Communities = []uint32{uint32(m.next), 42}
			}
			var err error
			if m.rng.IntN(3) == 0 {
				_, err = tx.CreateIn(m.vrf, r)
				m.inVRF[r] = true
			} else {
				_, err = tx.Create(r)
			}
			must(t, err)
			m.refs(r)
			m.routes = append(m.routes, r)
		case op <= 6 && len(m.routes) > 0:
			r := m.routes[m.rng.IntN(len(m.routes))]
			switch m.rng.IntN(3) {
			case 0:
				r.Metric++
			case 1:
				r.NextHop = m.hop() // pointer rewiring
			case 2:
				r.Backups = append(slices.Clone(r.Backups), m.hops[m.rng.IntN(len(m.hops))])
			}
			m.refs(r)
			must(t, tx.Update(r))
		case op == 7 && len(m.routes) > 0:
			i := m.rng.IntN(len(m.routes))
			must(t, tx.Delete(m.routes[i]))
			delete(m.inVRF, m.routes[i])
			m.routes = slices.Delete(m.routes, i, i+1)
		case op == 8 && len(m.hops) > 3:
			i := m.rng.IntN(len(m.hops))
			if h := m.hops[i]; !m.referenced(h) {
				must(t, tx.Delete(h))
				m.hops = slices.Delete(m.hops, i, i+1)
			}
		case op == 9:
			if m.rng.IntN(4) == 0 && len(m.inVRF) > 0 {
				must(t, tx.DeleteGroup(m.vrf))
				m.routes = slices.DeleteFunc(m.routes, func(r *testRoute) bool { return m.inVRF[r] })
				clear(m.inVRF)
			} else {
				m.cfg.ASN = uint32(m.rng.IntN(1 << 16))
				m.cfg.Hostname = fmt.Sprintf("sw%d", m.next)
				must(t, tx.Update(m.cfg))
			}
		}
	}
}

// TestPropertyReplication commits random transactions synchronously over a
// lossy, duplicating, reordering, corrupting link; after each commit the
// standby's mirror must equal the active's state. Every fifth step is a
// coordinated transaction of two or three participants.
func TestPropertyReplication(t *testing.T) {
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				defer func() {
					if t.Failed() {
						t.Logf("replay with: go test -run 'TestPropertyReplication' -seed=%d", seed)
					}
				}()
				faults := l2transport.Faults{Loss: 0.05, Duplicate: 0.03, Reorder: 0.05, Corrupt: 0.02, Delay: 50 * time.Microsecond, Jitter: 100 * time.Microsecond}
				p := newTestPair(t, pairOpts{faults: faults, seed: seed, mode: Sync})
				rng := rand.New(rand.NewPCG(seed, 7))
				m := newModel(t, rng, p.act, p.actCfg)
				ctx, cancel := context.WithTimeout(bg(), time.Minute)
				defer cancel()
				for step := range 60 {
					if step%5 == 4 {
						parts := 2 + rng.IntN(2)
						c, err := p.act.NewCoordinated(parts)
						must(t, err)
						for k := range parts {
							tx, err := c.Begin(ctx, fmt.Sprintf("app%d", k))
							must(t, err)
							m.ops(tx, rng.IntN(4))
							if k < parts-1 {
								// A synchronous commit of a part would wait
								// for the parts still to come.
								tx.SetMode(Async)
							}
							must(t, tx.Commit(ctx))
						}
					} else {
						tx, err := p.act.Begin(ctx)
						must(t, err)
						m.ops(tx, 1+rng.IntN(6))
						must(t, tx.Commit(ctx))
					}
					want, got := dump(p.act.Store(), p.actCfg), dump(p.sby.Store(), p.sbyCfg)
					if want != got {
						t.Fatalf("step %d: standby differs\nactive:\n%s\nstandby:\n%s", step, want, got)
					}
				}
				st := p.act.Stats().Session
				if st.Retransmits == 0 {
					t.Errorf("no retransmission: the faults were not exercised (%+v)", st)
				}
			})
		})
	}
}

// cutLink passes the first `after` frames written and drops the rest, as a
// cable pulled at that frame.
type cutLink struct {
	l2transport.Link
	after int
	sent  int
}

func (c *cutLink) WriteBatch(pdus [][]byte) (int, error) {
	n := 0
	for n < len(pdus) && c.sent < c.after {
		n++
		c.sent++
	}
	if n > 0 {
		if k, err := c.Link.WriteBatch(pdus[:n]); err != nil {
			return k, err
		}
	}
	return len(pdus), nil
}

// TestPropertyStreamCut streams asynchronous transactions, each with an
// intent, and cuts the active's side of the link after a random number of
// frames; the promoted standby must hold exactly the state of the last
// transaction it received whole, and hand back the intent of the one cut
// short, if any of it arrived.
func TestPropertyStreamCut(t *testing.T) {
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				defer func() {
					if t.Failed() {
						t.Logf("replay with: go test -run 'TestPropertyStreamCut' -seed=%d", seed)
					}
				}()
				rng := rand.New(rand.NewPCG(seed, 11))
				la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, seed)
				cut := &cutLink{Link: la, after: 4 + rng.IntN(250)}
				actCfg, sbyCfg := &testConfig{}, &testConfig{}
				mk := func(l l2transport.Link, id uint64, role Role, cfg *testConfig) *Node {
					n, err := NewNode(Config{Link: l, Registry: testRegistry(t), NodeID: id, Epoch: 1, Role: role, Mode: Async, Logger: testLogger(t), Statics: map[string]any{"config": cfg}})
					must(t, err)
					return n
				}
				act := mk(cut, 1, Active, actCfg)
				sby := mk(lb, 2, Standby, sbyCfg)
				defer act.Close()
				defer sby.Close()
				ctx, cancel := context.WithTimeout(bg(), time.Minute)
				defer cancel()
				synctest.Wait()
				m := newModel(t, rng, act, actCfg)
				states := map[uint64]string{act.Store().Seq(): dump(act.Store(), actCfg)}
				intentOf := map[uint64]string{} // by seq
				for i := range 40 {
					tx, err := act.Begin(ctx)
					must(t, err)
					intent := fmt.Sprintf("intent-%d", i)
					must(t, tx.Intent([]byte(intent)))
					// A message spanning several frames, so that cuts fall
					// inside transactions, after their intent.
					must(t, tx.Message(&testNote{Text: strings.Repeat("x", 1000+rng.IntN(4000))}))
					// Big enough to span several frames, so that cuts fall inside.
					m.ops(tx, 10+rng.IntN(80))
					must(t, tx.Commit(ctx))
					seq := act.Store().Seq()
					states[seq] = dump(act.Store(), actCfg)
					intentOf[seq] = intent
				}
				// Let everything that got through the cut be delivered.
				time.Sleep(time.Second)
				synctest.Wait()
				applied := sby.Store().AppliedSeq()
				t.Logf("standby before promote: %+v", sby.Stats())
				intents, err := sby.Promote()
				must(t, err)
				want, ok := states[applied]
				if !ok {
					t.Fatalf("standby applied seq %d, which the active never committed", applied)
				}
				if got := dump(sby.Store(), sbyCfg); got != want {
					t.Fatalf("cut after %d frames: standby at seq %d differs\nwant:\n%s\ngot:\n%s", cut.after, applied, want, got)
				}
				var gotIntents []string
				for _, in := range intents {
					gotIntents = append(gotIntents, string(in))
				}
				if len(gotIntents) > 1 || len(gotIntents) == 1 && gotIntents[0] != intentOf[applied+1] {
					t.Fatalf("cut after %d frames at seq %d: intents %q, want at most [%q]", cut.after, applied, gotIntents, intentOf[applied+1])
				}
				t.Logf("cut after %d frames: standby at seq %d of %d, intents %q", cut.after, applied, act.Store().Seq(), gotIntents)
				if sby.Role() != Active {
					t.Fatal("promoted node is not active")
				}
				// The promoted node takes transactions.
				tx, err := sby.Begin(ctx)
				must(t, err)
				sbyCfg.ASN = 7
				must(t, tx.Update(sbyCfg))
				must(t, tx.Commit(ctx))
			})
		})
	}
}

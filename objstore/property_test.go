package objstore

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// world is the test's view of the active application: its live objects.
type world struct {
	t       *testing.T
	rng     *rand.Rand
	p       *pair
	hops    []*NextHop
	routes  []*Route
	holders []*Holder
	alls    []*AllKinds
	groups  []*Group
	cfg     *AppConfig
	msgs    []string // sent in committed transactions
	got     []string // received by the standby
	commits []snapshot
	intents map[uint64][][]byte // txn ID → intents
	n       int
}

type snapshot struct {
	records int // records emitted up to and including this commit
	dump    string
}

func newWorld(t *testing.T, seed uint64) *world {
	w := &world{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), p: newPair(t, 0), intents: map[uint64][][]byte{}}
	w.cfg = &AppConfig{}
	if err := w.p.act.RegisterStatic("config", w.cfg); err != nil {
		t.Fatal(err)
	}
	if err := w.p.sby.RegisterStatic("config", &AppConfig{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		g, err := w.p.act.NewGroup(fmt.Sprintf("vrf%d", i), fmt.Sprintf("v%d", i))
		if err != nil {
			t.Fatal(err)
		}
		w.groups = append(w.groups, g)
	}
	w.p.sby.OnMessage(func(name string, msg any) {
		m := msg.(*Msg)
		w.got = append(w.got, fmt.Sprintf("%s:%s:%v", name, m.Text, m.Hop != nil))
	})
	return w
}

func pick[T any](r *rand.Rand, xs []T) (T, int) {
	var zero T
	if len(xs) == 0 {
		return zero, -1
	}
	i := r.IntN(len(xs))
	return xs[i], i
}

func (w *world) hop() *NextHop {
	if w.rng.IntN(5) == 0 {
		return nil
	}
	h, _ := pick(w.rng, w.hops)
	return h
}

func (w *world) newRoute() *Route {
	w.n++
	r := &Route{
		Prefix:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(w.n >> 8), byte(w.n), 0}), 24),
		NextHop: w.hop(),
		Metric:  w.rng.Uint32(),
		Updated: time.Unix(int64(w.n), 0).UTC(),
	}
	if w.rng.IntN(2) == 0 {
		r.Communities = []uint32{w.rng.Uint32(), 65000}
	}
	return r
}

// interior returns a random pointer into some holder, or nil.
func (w *world) interior() *Inner {
	h, _ := pick(w.rng, w.holders)
	if h == nil || w.rng.IntN(4) == 0 {
		return nil
	}
	return &h.Slots[w.rng.IntN(4)]
}

func (w *world) mutateRoute(r *Route) {
	switch w.rng.IntN(5) {
	case 0:
		r.Metric++
	case 1:
		r.NextHop = w.hop()
	case 2:
		if len(r.Communities) > 0 {
			r.Communities[0]++ // in place: the shadow must have its own copy
		} else {
			r.Communities = append(r.Communities, 1)
		}
	case 3:
		r.Flags ^= 1 << w.rng.IntN(16)
		r.Tag = w.rng.Uint32()
	case 4:
		r.Updated = r.Updated.Add(time.Second)
		r.Communities = nil
	}
}

func (w *world) mutateAll(a *AllKinds) {
	switch w.rng.IntN(6) {
	case 0:
		a.IntoIn = w.interior()
	case 1:
		a.IntoArr = append(a.IntoArr, w.interior())
	case 2:
		a.Refs = append(a.Refs, w.hop())
		a.RefArr[w.rng.IntN(2)] = w.hop()
	case 3:
		if a.RefMap == nil {
			a.RefMap = map[string]*NextHop{}
		}
		a.RefMap[fmt.Sprint(w.rng.IntN(4))] = w.hop()
	case 4:
		if h, _ := pick(w.rng, w.holders); h != nil {
			a.IntoU = &h.Count
		}
		a.S += "x"
	case 5:
		a.M = map[string]int32{"k": w.rng.Int32()}
		a.Strs = append(a.Strs, "s")
		a.Ref = w.hop()
	}
}

// unref clears every pointer to hop h, updating the referrers in tx.
func (w *world) unrefHop(tx Txn, h *NextHop) {
	for _, r := range w.routes {
		if r.NextHop == h {
			r.NextHop = nil
			w.must(tx.Update(r))
		}
	}
	for _, a := range w.alls {
		changed := false
		fix := func(p **NextHop) {
			if *p == h {
				*p = nil
				changed = true
			}
		}
		fix(&a.Ref)
		for i := range a.Refs {
			fix(&a.Refs[i])
		}
		for i := range a.RefArr {
			fix(&a.RefArr[i])
		}
		for k, v := range a.RefMap {
			if v == h {
				a.RefMap[k] = nil
				changed = true
			}
		}
		if changed {
			w.must(tx.Update(a))
		}
	}
}

func (w *world) unrefHolder(tx Txn, h *Holder) {
	in := func(p *Inner) bool {
		for i := range h.Slots {
			if p == &h.Slots[i] {
				return true
			}
		}
		return false
	}
	for _, a := range w.alls {
		changed := false
		if in(a.IntoIn) {
			a.IntoIn, changed = nil, true
		}
		for i, p := range a.IntoArr {
			if in(p) {
				a.IntoArr[i], changed = nil, true
			}
		}
		if a.IntoU == &h.Count {
			a.IntoU, changed = nil, true
		}
		if changed {
			w.must(tx.Update(a))
		}
	}
}

func (w *world) must(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

func remove[T comparable](xs []T, x T) []T {
	if i := slices.Index(xs, x); i >= 0 {
		return slices.Delete(xs, i, i+1)
	}
	return xs
}

// step runs one random transaction. It returns whether it committed.
func (w *world) step(needSync bool) (committed bool) {
	tx, err := w.p.act.Begin()
	w.must(err)
	abort := w.rng.IntN(10) == 0
	var msgs []string
	var created []any
	var msgHops []*NextHop
	nops := 1 + w.rng.IntN(8)
	for k := 0; k < nops; k++ {
		switch c := w.rng.IntN(15); {
		case c == 0 || len(w.hops) < 3:
			h := &NextHop{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(w.rng.IntN(256))}), Iface: fmt.Sprint("eth", w.rng.IntN(4))}
			_, err = tx.Create(h)
			w.must(err)
			w.hops = append(w.hops, h)
			created = append(created, h)
		case c <= 2:
			r := w.newRoute()
			if !abort && w.rng.IntN(3) == 0 {
				// Pointer to an object created later in the same transaction.
				h := &NextHop{Iface: "fwd"}
				r.NextHop = h
				_, err = tx.CreateIn(w.groups[w.rng.IntN(3)], r)
				w.must(err)
				_, err = tx.Create(h)
				w.must(err)
				w.hops = append(w.hops, h)
				created = append(created, h)
			} else {
				g, _ := pick(w.rng, append(w.groups, nil))
				_, err = tx.CreateIn(g, r)
				w.must(err)
			}
			w.routes = append(w.routes, r)
			created = append(created, r)
		case c == 3:
			h := &Holder{Name: fmt.Sprint("h", w.n), Count: uint32(w.n)}
			w.n++
			_, err = tx.Create(h)
			w.must(err)
			w.holders = append(w.holders, h)
			created = append(created, h)
		case c == 4 && !abort:
			a := &AllKinds{I: w.n, Ref: w.hop(), IntoIn: w.interior()}
			_, err = tx.Create(a)
			w.must(err)
			w.alls = append(w.alls, a)
			created = append(created, a)
		case c <= 7:
			if r, _ := pick(w.rng, w.routes); r != nil {
				if abort {
					r.Metric++
				} else {
					w.mutateRoute(r)
				}
				w.must(tx.Update(r))
			}
		case c == 8 && !abort:
			if a, _ := pick(w.rng, w.alls); a != nil {
				w.mutateAll(a)
				w.must(tx.Update(a))
			}
		case c == 9:
			if h, _ := pick(w.rng, w.holders); h != nil {
				h.Slots[w.rng.IntN(4)].A++ // changed in place, not reported: Sync finds it
				w.must(tx.Sync())
			}
		case c == 10 && !abort:
			if h, _ := pick(w.rng, w.hops); h != nil && len(w.hops) > 3 && !slices.Contains(created, any(h)) && !slices.Contains(msgHops, h) {
				w.unrefHop(tx, h)
				w.must(tx.Delete(h))
				w.hops = remove(w.hops, h)
			}
		case c == 11 && !abort:
			if h, _ := pick(w.rng, w.holders); h != nil && !slices.Contains(created, any(h)) {
				w.unrefHolder(tx, h)
				w.must(tx.Delete(h))
				w.holders = remove(w.holders, h)
			}
		case c == 12 && !abort:
			g := w.groups[w.rng.IntN(3)]
			w.must(tx.DeleteGroup(g))
			w.routes = slices.DeleteFunc(w.routes, func(r *Route) bool {
				id, ok := w.p.act.IDOf(r)
				if !ok {
					return false
				}
				for i := g.head; i >= 0; i = w.p.act.ents.at(i).gnext {
					if w.p.act.ents.at(i).id == id {
						return true
					}
				}
				return false
			})
		case c == 13:
			m := &Msg{Text: fmt.Sprint("m", w.n), Hop: w.hop()}
			msgHops = append(msgHops, m.Hop)
			w.n++
			w.must(tx.Message(m))
			msgs = append(msgs, fmt.Sprintf("Msg:%s:%v", m.Text, m.Hop != nil))
			m.Text = "reused" // Message encoded at once: reuse is safe
			w.must(tx.Intent([]byte(fmt.Sprint("intent", w.n))))
			w.intents[tx.ID()] = append(w.intents[tx.ID()], []byte(fmt.Sprint("intent", w.n)))
		case c == 14:
			w.cfg.ASN++
			w.cfg.Peers = append(w.cfg.Peers, netip.MustParseAddr("2001:db8::1"))
			w.must(tx.Update(w.cfg))
			if w.rng.IntN(2) == 0 {
				w.must(tx.SyncGroup(w.groups[w.rng.IntN(3)]))
			}
		}
	}
	if needSync {
		w.must(tx.Sync())
	}
	if abort {
		w.must(tx.Abort())
		for _, o := range created {
			switch o := o.(type) {
			case *NextHop:
				w.hops = remove(w.hops, o)
			case *Route:
				w.routes = remove(w.routes, o)
			case *Holder:
				w.holders = remove(w.holders, o)
			}
		}
		return false
	}
	w.must(tx.Commit())
	w.msgs = append(w.msgs, msgs...)
	return true
}

func TestPropertyRandomStreams(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			w := newWorld(t, seed)
			needSync := false
			for i := 0; i < 150; i++ {
				if !w.step(needSync) {
					needSync = true
					continue
				}
				needSync = false
				act, sby := dump(w.p.act), dump(w.p.sby)
				if act != sby {
					t.Fatalf("txn %d: standby differs from active:\nactive:\n%s\nstandby:\n%s", i, act, sby)
				}
				w.commits = append(w.commits, snapshot{records: len(w.p.recs), dump: act})
				checkRefCounts(t, w.p.act)
			}
			if !slices.Equal(w.msgs, w.got) {
				t.Fatalf("messages: sent %v, received %v", w.msgs, w.got)
			}
			if w.p.sby.Staged() != 0 {
				t.Fatalf("%d transactions left staged", w.p.sby.Staged())
			}
			w.checkCuts(t)
			w.checkPromote(t)
		})
	}
}

// checkCuts replays every prefix of the stream (or a sample, for long ones)
// into a fresh standby: it must hold exactly the last complete transaction,
// and hand back the intents of the cut one.
func (w *world) checkCuts(t *testing.T) {
	recs := w.p.recs
	step := 1
	if (testing.Short() || raceEnabled) && len(recs) > 200 {
		step = len(recs)/200 + 1
	}
	for k := 0; k <= len(recs); k += step {
		s, err := NewStore(testRegistry(t), Config{Standby: true})
		if err != nil {
			t.Fatal(err)
		}
		w.must(s.RegisterStatic("config", &AppConfig{}))
		for _, rec := range recs[:k] {
			w.must(s.Apply(rec))
		}
		want := dump(mustEmpty(t))
		for _, c := range w.commits {
			if c.records <= k {
				want = c.dump
			}
		}
		// The empty store still has the static config.
		if got := dump(s); got != want && !(want == "" && s.Len() == 1) {
			t.Fatalf("cut at record %d/%d: standby holds\n%s\nwant\n%s", k, len(recs), got, want)
		}
		var wantIntents [][]byte
		if k < len(recs) && k > 0 {
			// Staged: records of the txn after the last commit.
			for j := k - 1; j >= 0 && recs[j][0] != recCommit; j-- {
				if recs[j][0] == recIntent {
					wantIntents = append([][]byte{recs[j][2:]}, wantIntents...)
				}
			}
		}
		got := s.DiscardPartial()
		if len(got) != len(wantIntents) {
			t.Fatalf("cut at %d: %d intents back, want %d", k, len(got), len(wantIntents))
		}
		for i := range got {
			if !bytes.HasSuffix(wantIntents[i], got[i]) {
				t.Fatalf("cut at %d: intent %q, want %q", k, got[i], wantIntents[i])
			}
		}
	}
}

func mustEmpty(t *testing.T) *Store {
	s, err := NewStore(testRegistry(t), Config{Standby: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkPromote promotes the standby and continues the stream from it to a
// third store: the new active knows every object and pointer.
func (w *world) checkPromote(t *testing.T) {
	old := w.p.sby
	if _, err := old.Promote(); err != nil {
		t.Fatal(err)
	}
	third, _ := NewStore(testRegistry(t), Config{Standby: true})
	w.must(third.RegisterStatic("config", &AppConfig{}))
	third.ResetStream(old.Seq())
	old.ResetPeer()
	old.cfg.Sink = SinkFunc(func(rec []byte) error { return third.Apply(rec) })
	// A bulk copy is a later step; here the new active re-creates nothing,
	// so replay its objects as creates by marking them pending and committing.
	tx, err := old.Begin()
	w.must(err)
	for i := range int32(old.ents.len()) {
		e := old.ents.at(i)
		if e.flags&fLive != 0 && e.flags&fStatic == 0 {
			e.flags |= fPendingCreate
			old.ops = append(old.ops, op{kind: opCreate, ent: i})
		}
	}
	w.must(tx.Sync())
	w.must(tx.Commit())
	if a, b := dump(old), dump(third); a != b {
		t.Fatalf("after promotion, replica of the new active differs:\n%s\n%s", a, b)
	}
	// And it can keep committing with pointers resolved through its own index.
	tx, _ = old.Begin()
	var r *Route
	old.Each(func(id uint64, obj any) bool {
		if x, ok := obj.(*Route); ok && x.NextHop != nil {
			r = x
			return false
		}
		return true
	})
	if r != nil {
		r.Metric += 7
		w.must(tx.Update(r))
		h := &NextHop{Iface: "new"}
		_, err := tx.Create(h)
		w.must(err)
		r.NextHop = h
		w.must(tx.Update(r))
	}
	w.must(tx.Commit())
	if a, b := dump(old), dump(third); a != b {
		t.Fatalf("after promotion and commit, replica differs:\n%s\n%s", a, b)
	}
	checkRefCounts(t, old)
}

package objstore

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/swha/swha/l2transport/linktest"
)

// seeds are the property tests' seeds, as in the other packages
// (linktest.Seeds: -seed=N replays one, -seeds=N runs N random ones).
func seeds(t *testing.T) []uint64 { return linktest.Seeds(t, linktest.PropertySeeds...) }

// groupMembers renders a store's groups with their members, by ID;
// skipEmpty leaves out the groups with no object (a snapshot announces only
// the groups its objects are in).
func groupMembers(s *Store, skipEmpty bool) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(s.groups)) {
		g := s.groups[id]
		if skipEmpty && g.Len() == 0 {
			continue
		}
		var ids []uint64
		for i := g.head; i >= 0; i = s.ents.at(i).gnext {
			ids = append(ids, s.ents.at(i).id)
		}
		slices.Sort(ids)
		fmt.Fprintf(&b, "group %d %q/%q byname=%v %v\n", id, g.name, g.prefix, s.groupsByName[g.name] == g, ids)
	}
	return b.String()
}

// checkSame fails unless got holds exactly want's objects (values and
// pointers, dump), names them alike, finds each by ID and by address, and
// has want's non-empty groups with the same members. With exactGroups it
// has no other group; without, it may keep groups emptied since, but only
// as want has them.
func checkSame(t *testing.T, what string, got, want *Store, exactGroups bool) {
	t.Helper()
	if g, w := dump(got), dump(want); g != w {
		t.Fatalf("%s: objects differ:\ngot:\n%s\nwant:\n%s", what, g, w)
	}
	if g, w := groupMembers(got, !exactGroups), groupMembers(want, true); g != w {
		t.Fatalf("%s: groups differ:\ngot:\n%s\nwant:\n%s", what, g, w)
	}
	if !exactGroups {
		for _, name := range slices.Collect(maps.Keys(got.groupsByName)) {
			g, w := got.GroupByName(name), want.GroupByName(name)
			if w == nil || g.id != w.id || g.prefix != w.prefix {
				t.Fatalf("%s: group %q: got %+v, want %+v", what, name, g, w)
			}
		}
	}
	objs := map[uint64]any{}
	got.Each(func(id uint64, obj any) bool { objs[id] = obj; return true })
	for id, obj := range objs {
		if gid, ok := got.IDOf(obj); !ok || gid != id {
			t.Fatalf("%s: IDOf(object %d) = %d, %v", what, id, gid, ok)
		}
		if o, ok := got.Get(id); !ok || ptrOf(o) != ptrOf(obj) {
			t.Fatalf("%s: Get(%d) is not the object Each gives", what, id)
		}
		if g, w := got.Name(id), want.Name(id); g != w {
			t.Fatalf("%s: Name(%d) = %q, want %q", what, id, g, w)
		}
	}
	if got.Seq() != want.Seq() || got.AppliedSeq() != want.Seq() {
		t.Fatalf("%s: seq %d applied %d, want %d", what, got.Seq(), got.AppliedSeq(), want.Seq())
	}
}

// mirror is what a subscriber that keeps derived state (a FIB) builds from
// the changes it is told, an OpReset dropping everything not told again.
type mirror map[uint64]any

func newMirror(s *Store) mirror {
	m := mirror{}
	s.Each(func(id uint64, obj any) bool { m[id] = obj; return true })
	return m
}

func (m mirror) apply(c Change) {
	switch c.Op {
	case OpReset:
		clear(m)
	case OpCreate, OpUpdate:
		m[c.ID] = c.Object
	case OpDelete:
		delete(m, c.ID)
	}
}

func (m mirror) check(t *testing.T, what string, s *Store) {
	t.Helper()
	want := newMirror(s)
	if len(m) != len(want) {
		t.Fatalf("%s: the subscriber holds %d objects, the store %d", what, len(m), len(want))
	}
	for id, obj := range want {
		if o, ok := m[id]; !ok || ptrOf(o) != ptrOf(obj) {
			t.Fatalf("%s: the subscriber's object %d is not the store's", what, id)
		}
	}
}

// capture returns a sink that keeps copies of the records in *recs.
func capture(recs *[][]byte) RecordSink {
	return SinkFunc(func(rec []byte) error {
		*recs = append(*recs, append([]byte(nil), rec...))
		return nil
	})
}

func commitWith(t *testing.T, s *Store, ops func(tx Txn) error) {
	t.Helper()
	tx, err := s.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := ops(tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func creates(tx Txn, g *Group, objs ...any) error {
	for _, o := range objs {
		if _, err := tx.CreateIn(g, o); err != nil {
			return err
		}
	}
	return nil
}

func newGroup(t *testing.T, s *Store, name, prefix string) *Group {
	t.Helper()
	g, err := s.NewGroup(name, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestDemoteTakesWinnersSnapshot: after a split both sides committed; the
// loser, demoted, takes the winner's snapshot in place of what it holds,
// although the two reused each other's object IDs for other types and
// group IDs and names for other groups; it keeps its statics, follows the
// winner's stream, and can be promoted again.
func TestDemoteTakesWinnersSnapshot(t *testing.T) {
	p := newPair(t, 0)
	a, b := p.act, p.sby
	aCfg, bCfg := &AppConfig{Hostname: "a"}, &AppConfig{}
	must(t, a.RegisterStatic("config", aCfg))
	must(t, b.RegisterStatic("config", bCfg))
	vrf1, vrf2 := newGroup(t, a, "vrf1", "v1"), newGroup(t, a, "vrf2", "v2")
	h1, h2 := &NextHop{Iface: "e1"}, &NextHop{Iface: "e2"}
	hold := &Holder{Name: "hold"}
	r1, r2, r3 := &Route{Metric: 1, NextHop: h1}, &Route{Metric: 2, NextHop: h2}, &Route{Metric: 3}
	all := &AllKinds{Ref: h1, IntoIn: &hold.Slots[1], S: "common"}
	commitWith(t, a, func(tx Txn) error {
		aCfg.ASN = 1
		return errors.Join(creates(tx, nil, h1, h2, hold, all), creates(tx, vrf1, r1, r2), creates(tx, vrf2, r3), tx.Update(aCfg))
	})
	checkSame(t, "before the split", b, a, true)
	common := dump(a)

	// The split: b is promoted while a goes on, each committing what the
	// other never hears of.
	p.applyTo = false
	if _, err := b.Promote(); err != nil {
		t.Fatal(err)
	}
	var bRecs [][]byte
	b.cfg.Sink = capture(&bRecs)
	splitSeq := a.Seq()

	aOnly, aBoth, aShared := newGroup(t, a, "a-only", "ao"), newGroup(t, a, "both", "pa"), newGroup(t, a, "shared", "s")
	h3 := &NextHop{Iface: "a3"} // takes the next ID, which b gives a Route
	r4, r5 := &Route{Metric: 4, NextHop: h3}, &Route{Metric: 5}
	commitWith(t, a, func(tx Txn) error {
		r1.Metric = 100
		return errors.Join(creates(tx, nil, h3), creates(tx, vrf1, r4), creates(tx, aOnly, r5), tx.Update(r1), tx.Delete(r2))
	})
	commitWith(t, a, func(tx Txn) error {
		aCfg.ASN, all.S = 2, "a"
		return errors.Join(tx.DeleteGroup(vrf2), creates(tx, aBoth, &Route{Metric: 6}), creates(tx, aShared, &Route{Metric: 7}),
			tx.Update(aCfg), tx.Update(all))
	})
	if a.Seq() != splitSeq+2 {
		t.Fatalf("a at seq %d", a.Seq())
	}

	bv1 := b.GroupByName("vrf1")
	bOnly, bBoth, bPad, bShared := newGroup(t, b, "b-only", "bo"), newGroup(t, b, "both", "pb"), newGroup(t, b, "pad", ""), newGroup(t, b, "shared", "s")
	if bOnly.id != aOnly.id || bBoth.id != aBoth.id || bPad.id != aShared.id || bShared.id == aShared.id {
		t.Fatalf("group IDs do not collide as the test means them to: %d %d %d %d", bOnly.id, bBoth.id, bPad.id, bShared.id)
	}
	var br1 *Route
	var bAll *AllKinds
	var bHop1 *NextHop
	b.Each(func(id uint64, obj any) bool {
		switch o := obj.(type) {
		case *Route:
			if o.Metric == 1 {
				br1 = o
			}
		case *AllKinds:
			bAll = o
		case *NextHop:
			if o.Iface == "e1" {
				bHop1 = o
			}
		}
		return true
	})
	bx := &Route{Metric: 40} // the ID a gave h3
	bh := &NextHop{Iface: "b"}
	commitWith(t, b, func(tx Txn) error {
		br1.Metric, br1.NextHop = 200, bh
		bAll.Ref, bAll.S = bh, "b"
		bCfg.Hostname = "b"
		return errors.Join(creates(tx, bOnly, bx), creates(tx, nil, bh), tx.Update(br1), tx.Update(bAll), tx.Update(bCfg))
	})
	commitWith(t, b, func(tx Txn) error {
		return errors.Join(tx.Delete(bHop1), creates(tx, bBoth, &Route{Metric: 60}), creates(tx, bPad, &Route{Metric: 61}),
			creates(tx, bShared, &Route{Metric: 62}), creates(tx, bv1, &Route{Metric: 63}))
	})
	if ida, _ := a.IDOf(h3); ida != idOf(t, b, bx) {
		t.Fatalf("a's hop %d and b's route do not share an ID", ida)
	}

	// The peers meet: b won. a is demoted and takes b's snapshot.
	m := newMirror(a)
	var resets int
	a.Subscribe(func(c Change) {
		m.apply(c)
		if c.Op == OpReset {
			resets++
		}
	})
	before := a.Len()
	rep, err := a.Demote()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Seq != splitSeq+2 || rep.Objects != before || rep.Groups != 5 {
		t.Fatalf("demote report %+v, want seq %d, %d objects, 5 groups", rep, splitSeq+2, before)
	}
	if a.IsActive() || !a.AwaitingSnapshot() || a.SnapshotID() != 0 || a.AppliedSeq() != rep.Seq || a.Seq() != rep.Seq {
		t.Fatalf("demoted: active %v awaiting %v snap %d applied %d seq %d", a.IsActive(), a.AwaitingSnapshot(), a.SnapshotID(), a.AppliedSeq(), a.Seq())
	}
	if _, err := a.Begin(); !errors.Is(err, ErrNotActive) {
		t.Fatalf("Begin on a demoted store: %v", err)
	}
	// Until the snapshot, a still holds what it committed, found by address
	// through the standby's index.
	if id, ok := a.IDOf(r5); !ok || id == 0 {
		t.Fatalf("IDOf on the demoted store before its snapshot: %d, %v", id, ok)
	}
	// What b committed before the snapshot does not count on a.
	aBefore := dump(a)
	feed(t, a, bRecs)
	if dump(a) != aBefore || a.Seq() != rep.Seq || resets != 0 {
		t.Fatalf("the demoted store applied records before a snapshot")
	}

	bRecs = bRecs[:0]
	b.cfg.Sink = SinkFunc(func(rec []byte) error { return a.Apply(rec) })
	snap, err := b.Snapshot()
	if err != nil {
		t.Fatalf("snapshot of the winner into the demoted store: %v", err)
	}
	checkSame(t, "after the snapshot", a, b, true)
	if a.SnapshotID() != snap || a.AwaitingSnapshot() {
		t.Fatalf("snapshot %d, awaiting %v; want %d", a.SnapshotID(), a.AwaitingSnapshot(), snap)
	}
	if o, _ := a.Get(StaticID("config")); o != any(aCfg) || !reflect.DeepEqual(aCfg, bCfg) {
		t.Fatalf("the static lost its identity or its value: %+v, want %+v", o, bCfg)
	}
	for _, o := range []any{h1, h3, r1, r4, r5, all} {
		if id, ok := a.IDOf(o); ok {
			t.Fatalf("a's own object %T %d is still in the store", o, id)
		}
	}
	if a.GroupByName("both") != aBoth || aBoth.prefix != "pb" || a.GroupByName("vrf1") != vrf1 {
		t.Fatalf("a group a and b share lost its identity or kept a's prefix")
	}
	if a.GroupByName("a-only") != nil || a.GroupByName("shared") == aShared {
		t.Fatalf("a group only a had survived the snapshot")
	}
	if resets != 1 {
		t.Fatalf("%d resets told", resets)
	}
	m.check(t, "after the snapshot", a)
	if dump(a) == common {
		t.Fatalf("the test's split changed nothing")
	}

	// b's stream goes on, into groups a had under other IDs.
	later := newGroup(t, b, "later", "l")
	commitWith(t, b, func(tx Txn) error {
		br1.Metric = 300
		return errors.Join(creates(tx, later, &Route{Metric: 70}), creates(tx, bOnly, &Route{Metric: 71}), tx.Update(br1),
			tx.DeleteGroup(bPad))
	})
	checkSame(t, "b's stream after the snapshot", a, b, false)
	m.check(t, "b's stream after the snapshot", a)

	// b fails; a is promoted again and commits to a new standby.
	c := promoteAgain(t, a, map[string]any{"config": &AppConfig{}})
	var ar1 *Route
	a.Each(func(id uint64, obj any) bool {
		if o, ok := obj.(*Route); ok && o.Metric == 300 {
			ar1 = o
		}
		return true
	})
	commitWith(t, a, func(tx Txn) error {
		ar1.Metric = 400
		aCfg.ASN = 9
		nh := &NextHop{Iface: "again"}
		// The group a kept through the snapshot is a's to use again.
		return errors.Join(tx.DeleteGroup(aBoth), creates(tx, aBoth, &Route{Metric: 80, NextHop: nh}), creates(tx, nil, nh),
			tx.Update(ar1), tx.Update(aCfg))
	})
	checkSame(t, "a promoted again", c, a, false)
	checkRefCounts(t, a)
	if _, err := a.NewGroup("later", ""); !errors.Is(err, ErrExists) {
		t.Fatalf("a group b made is not a's after promotion: %v", err)
	}
}

// promoteAgain promotes a and syncs a new standby (with statics) from it.
func promoteAgain(t *testing.T, a *Store, statics map[string]any) *Store {
	t.Helper()
	if _, err := a.Promote(); err != nil {
		t.Fatal(err)
	}
	c := freshStandby(t, nil, statics)
	a.cfg.Sink = SinkFunc(func(rec []byte) error { return c.Apply(rec) })
	if _, err := a.Snapshot(); err != nil {
		t.Fatal(err)
	}
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDemoteRefuses: only an active with no open transaction demotes, and a
// refusal leaves it as it was.
func TestDemoteRefuses(t *testing.T) {
	p := newPair(t, 0)
	if _, err := p.sby.Demote(); !errors.Is(err, ErrNotActive) || !strings.Contains(err.Error(), "already a standby") {
		t.Fatalf("Demote on a standby: %v", err)
	}
	tx, err := p.act.Begin()
	must(t, err)
	h := &NextHop{Iface: "e1"}
	_, err = tx.Create(h)
	must(t, err)
	_, err = p.act.Demote()
	if !errors.Is(err, ErrTxnOpen) || !strings.Contains(err.Error(), fmt.Sprint("txn ", tx.ID())) {
		t.Fatalf("Demote with a transaction open: %v", err)
	}
	if !p.act.IsActive() {
		t.Fatal("a refused Demote demoted the store")
	}
	must(t, tx.Commit())
	checkSame(t, "after a refused demote", p.sby, p.act, true)
}

// TestDemoteAwaitsSnapshot: a demoted store drops every record of a stream
// until a snapshot starts, and if promoted again before one arrives, goes on
// from what it had committed.
func TestDemoteAwaitsSnapshot(t *testing.T) {
	p := newPair(t, 0)
	g := newGroup(t, p.act, "vrf", "v")
	h := &NextHop{Iface: "e1"}
	r := &Route{NextHop: h, Metric: 1}
	commitWith(t, p.act, func(tx Txn) error { return errors.Join(creates(tx, nil, h), creates(tx, g, r)) })
	p.applyTo = false
	b := p.sby
	if _, err := b.Promote(); err != nil {
		t.Fatal(err)
	}
	var bRecs [][]byte
	b.cfg.Sink = capture(&bRecs)
	bg := newGroup(t, b, "other", "o") // the ID a's next group would take
	commitWith(t, b, func(tx Txn) error { return creates(tx, bg, &Route{Metric: 2}) })

	a := p.act
	want := dump(a)
	if _, err := a.Demote(); err != nil {
		t.Fatal(err)
	}
	feed(t, a, bRecs)
	if got := dump(a); got != want || a.Seq() != 1 {
		t.Fatalf("a stream's records counted before a snapshot: seq %d\n%s", a.Seq(), got)
	}
	if a.GroupByName("other") != nil {
		t.Fatal("a group record took effect before the snapshot")
	}

	// b is gone before its snapshot: a is the active again, as it was.
	c := promoteAgain(t, a, nil)
	mine := newGroup(t, a, "mine", "m")
	commitWith(t, a, func(tx Txn) error {
		r.Metric = 5
		return errors.Join(tx.Update(r), creates(tx, mine, &Route{Metric: 6}))
	})
	if mine.id != bg.id {
		t.Fatalf("a's group %d, b's %d", mine.id, bg.id)
	}
	checkSame(t, "promoted again before a snapshot", c, a, true)
	checkRefCounts(t, a)
}

// TestDemoteRefusedSnapshot: a snapshot the demoted store refuses changes
// nothing of it, its groups included, and the next one still replaces all.
func TestDemoteRefusedSnapshot(t *testing.T) {
	p := newPair(t, 0)
	g := newGroup(t, p.act, "vrf", "v")
	commitWith(t, p.act, func(tx Txn) error { return creates(tx, g, &Route{Metric: 1}) })
	p.applyTo = false
	a, b := p.act, p.sby
	if _, err := b.Promote(); err != nil {
		t.Fatal(err)
	}
	mine := newGroup(t, a, "mine", "m")
	commitWith(t, a, func(tx Txn) error { return creates(tx, mine, &Route{Metric: 2}) })
	theirs := newGroup(t, b, "theirs", "t") // mine's ID
	commitWith(t, b, func(tx Txn) error { return creates(tx, theirs, &Route{Metric: 3}) })
	var snap [][]byte
	b.cfg.Sink = capture(&snap)
	if _, err := b.Snapshot(); err != nil {
		t.Fatal(err)
	}

	if _, err := a.Demote(); err != nil {
		t.Fatal(err)
	}
	want := groupsOf(a) + dump(a)
	// The snapshot without its last object: the commit's count says so.
	last := len(snap) - 2
	for last >= 0 && snap[last][0] != recCreate {
		last--
	}
	var err error
	for k, rec := range snap {
		if k != last {
			err = a.Apply(rec)
		}
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a snapshot short of a record: %v", err)
	}
	if got := groupsOf(a) + dump(a); got != want {
		t.Fatalf("a refused snapshot changed the store:\n%s\nwant\n%s", got, want)
	}
	if refs, _ := a.TakeRefusals(); len(refs) != 1 || !refs[0].Snapshot {
		t.Fatalf("refusals %+v", refs)
	}
	a.AwaitSnapshot() // what a Node does on a refused snapshot
	feed(t, a, snap)
	checkSame(t, "the second snapshot", a, b, true)
	if a.GroupByName("mine") != nil || a.GroupByName("theirs").id != mine.id {
		t.Fatalf("groups after the second snapshot:\n%s", groupsOf(a))
	}
}

// TestPropertyDemoteAfterSplit: random common histories, then random split
// histories on both sides (objects, pointers, deletes, group deletes and new
// groups whose IDs and names collide), then the loser is demoted and takes
// the winner's snapshot: it must hold exactly the winner's state, follow its
// stream, and work as an active again.
func TestPropertyDemoteAfterSplit(t *testing.T) {
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			w := newWorld(t, seed)
			rng := rand.New(rand.NewPCG(seed, 0xde))
			steps(w, rng.IntN(40))
			a, b := w.p.act, w.p.sby
			flush(w)
			checkSame(t, "before the split", b, a, false)

			w.p.applyTo = false
			if _, err := b.Promote(); err != nil {
				t.Fatal(err)
			}
			var bRecs [][]byte
			b.cfg.Sink = capture(&bRecs)
			wb := worldOf(t, b, seed^0xb)
			for range rng.IntN(30) {
				if rng.IntN(2) == 0 {
					splitStep(w, rng, "pa")
				} else {
					splitStep(wb, rng, "pb")
				}
			}
			flush(wb) // the snapshot carries what b committed, dump what it holds

			m := newMirror(a)
			a.Subscribe(m.apply)
			seq, n := a.Seq(), a.Len()
			rep, err := a.Demote()
			if err != nil {
				t.Fatal(err)
			}
			if rep.Seq != seq || rep.Objects != n {
				t.Fatalf("demote report %+v, want seq %d, %d objects", rep, seq, n)
			}
			feed(t, a, bRecs) // b's split stream, before any snapshot: dropped
			if a.Seq() != seq {
				t.Fatalf("records counted before the snapshot: seq %d, was %d", a.Seq(), seq)
			}
			b.cfg.Sink = SinkFunc(func(rec []byte) error { return a.Apply(rec) })
			if _, err := b.Snapshot(); err != nil {
				t.Fatal(err)
			}
			// a may keep empty groups b announced before the snapshot:
			// b has them too, and checkSame says so.
			checkSame(t, "after the snapshot", a, b, false)
			m.check(t, "after the snapshot", a)
			if o, _ := a.Get(StaticID("config")); o != any(w.cfg) {
				t.Fatal("the static lost its identity")
			}

			for range 10 {
				splitStep(wb, rng, "pb")
				flush(wb)
				checkSame(t, "b's stream", a, b, false)
				m.check(t, "b's stream", a)
			}

			c := promoteAgain(t, a, map[string]any{"config": &AppConfig{}})
			wa := worldOf(t, a, seed^0xa)
			if wa.cfg != w.cfg {
				t.Fatal("the static is not the one a registered")
			}
			for range 10 {
				splitStep(wa, rng, "pa")
				flush(wa)
				checkSame(t, "a promoted again", c, a, false)
			}
			checkRefCounts(t, a)
		})
	}
}

// steps makes n random transactions in w, as TestPropertyRandomStreams does.
func steps(w *world, n int) {
	needSync := false
	for range n {
		needSync = !w.step(needSync)
	}
}

// splitStep makes a random transaction in w, and sometimes first a group:
// names come from a small set, so that the two sides of a split make groups
// of the same name under other IDs, and other groups under the same ID.
func splitStep(w *world, rng *rand.Rand, prefix string) {
	if rng.IntN(4) == 0 {
		name := fmt.Sprint("g", rng.IntN(4))
		if w.p.act.GroupByName(name) == nil {
			g, err := w.p.act.NewGroup(name, prefix)
			w.must(err)
			w.groups = append(w.groups, g)
		}
	}
	steps(w, 1)
}

// flush commits what an aborted transaction left changed in w's objects.
func flush(w *world) {
	tx, err := w.p.act.Begin()
	w.must(err)
	w.must(tx.Sync())
	w.must(tx.Commit())
}

// worldOf is a world whose application is active store s, with the objects
// s holds: the side of a split that was a standby, or a store promoted
// again.
func worldOf(t *testing.T, s *Store, seed uint64) *world {
	w := &world{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), p: &pair{t: t, act: s}, intents: map[uint64][][]byte{}, n: 1 << 16}
	s.Each(func(id uint64, obj any) bool {
		switch o := obj.(type) {
		case *NextHop:
			w.hops = append(w.hops, o)
		case *Route:
			w.routes = append(w.routes, o)
		case *Holder:
			w.holders = append(w.holders, o)
		case *AllKinds:
			w.alls = append(w.alls, o)
		case *AppConfig:
			w.cfg = o
		}
		return true
	})
	for i := range 3 {
		// The world's three groups; the store has them only if some
		// object of the active it followed was in them.
		g := s.GroupByName(fmt.Sprintf("vrf%d", i))
		if g == nil {
			var err error
			g, err = s.NewGroup(fmt.Sprintf("vrf%d", i), "")
			w.must(err)
		}
		w.groups = append(w.groups, g)
	}
	for _, name := range slices.Sorted(maps.Keys(s.groupsByName)) {
		if !strings.HasPrefix(name, "vrf") {
			w.groups = append(w.groups, s.groupsByName[name])
		}
	}
	return w
}

func idOf(t *testing.T, s *Store, obj any) uint64 {
	t.Helper()
	id, ok := s.IDOf(obj)
	if !ok {
		t.Fatalf("%T not in the store", obj)
	}
	return id
}

// demotedStore is an active that committed objects in two groups and a
// static, then was demoted.
func demotedStore(t testing.TB) *Store {
	s, err := NewStore(testRegistry(t), Config{MaxTxnBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterStatic("config", &AppConfig{Hostname: "loser"}); err != nil {
		t.Fatal(err)
	}
	g1, _ := s.NewGroup("vrf1", "v")
	g2, _ := s.NewGroup("mine", "m")
	hop := &NextHop{Iface: "e"}
	tx, _ := s.Begin()
	_, _ = tx.Create(hop)
	_, _ = tx.CreateIn(g1, &Route{NextHop: hop})
	_, _ = tx.CreateIn(g2, &Route{Metric: 2})
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Demote(); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkGroups fails unless every object's group is in the store, each
// group's list and count agree, and groups by ID and by name are one set.
func checkGroups(t *testing.T, s *Store) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	members := map[uint32]int{}
	for i := range int32(s.ents.len()) {
		if e := s.ents.at(i); e.flags&fLive != 0 && e.group != 0 {
			if s.groups[e.group] == nil {
				t.Fatalf("object %d is in group %d, which the store lacks", e.id, e.group)
			}
			members[e.group]++
		}
	}
	for id, g := range s.groups {
		n := 0
		for i := g.head; i >= 0; i = s.ents.at(i).gnext {
			n++
		}
		if g.id != id || n != members[id] || g.Len() != n || s.groupsByName[g.name] != g {
			t.Fatalf("group %d %q: id %d, %d listed, %d counted, %d in it, by name %v", id, g.name, g.id, n, g.Len(), members[id], s.groupsByName[g.name] == g)
		}
	}
	if len(s.groupsByName) != len(s.groups) {
		t.Fatalf("%d groups by name, %d by ID", len(s.groupsByName), len(s.groups))
	}
}

// FuzzApplyDemoted: a demoted store fed arbitrary records never panics and
// keeps its groups consistent, whatever the records' groups clash with.
func FuzzApplyDemoted(f *testing.F) {
	// The seeds: a winner's snapshot whose groups clash with the loser's,
	// and a live commit after it.
	var recs [][]byte
	w, err := NewStore(testRegistry(f), Config{Sink: capture(&recs)})
	if err != nil {
		f.Fatal(err)
	}
	_ = w.RegisterStatic("config", &AppConfig{Hostname: "winner"})
	_, _ = w.NewGroup("vrf1", "v")
	other, _ := w.NewGroup("other", "o")
	mine, _ := w.NewGroup("mine", "w")
	tx, _ := w.Begin()
	_, _ = tx.Create(&Holder{})
	_, _ = tx.CreateIn(other, &Route{Metric: 3})
	_, _ = tx.CreateIn(mine, &Route{Metric: 4})
	_ = tx.Commit()
	recs = recs[:0]
	if _, err := w.Snapshot(); err != nil {
		f.Fatal(err)
	}
	tx, _ = w.Begin()
	_ = tx.DeleteGroup(other)
	_, _ = tx.CreateIn(mine, &Route{Metric: 5})
	_ = tx.Commit()
	var stream []byte
	for _, rec := range recs {
		f.Add(rec, stream)
		stream = append(stream, byte(len(rec)))
		stream = append(stream, rec...)
	}
	f.Fuzz(func(t *testing.T, rec, prefix []byte) {
		s := demotedStore(t)
		for len(prefix) > 0 {
			n := min(int(prefix[0]), len(prefix)-1)
			_ = s.Apply(prefix[1 : 1+n])
			prefix = prefix[1+n:]
		}
		_ = s.Apply(rec)
		_ = dump(s)
		checkGroups(t, s)
		s.DiscardPartial()
	})
}

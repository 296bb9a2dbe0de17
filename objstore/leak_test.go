package objstore

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// LNode can point at its own kind every way a value can hold a pointer.
type LNode struct {
	Name   string
	Count  uint32
	Next   *LNode
	Kids   []*LNode
	Pair   [2]*LNode
	ByName map[string]*LNode
	Set    map[*LNode]bool
	Into   *uint32 `swha:",into=LNode"`
}

type LRoot struct{ Head *LNode }

func leakRegistry(t testing.TB) *Registry {
	t.Helper()
	r := NewRegistry()
	if err := r.Register("LNode", LNode{}, WithIDPrefix("node")); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("LRoot", LRoot{}); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLeaks(t *testing.T) {
	var sby *Store
	sby, err := NewStore(leakRegistry(t), Config{Standby: true})
	if err != nil {
		t.Fatal(err)
	}
	act, err := NewStore(leakRegistry(t), Config{Sink: SinkFunc(func(rec []byte) error { return sby.Apply(rec) })})
	if err != nil {
		t.Fatal(err)
	}
	root := &LRoot{}
	if err := act.RegisterStatic("root", root); err != nil {
		t.Fatal(err)
	}
	if err := sby.RegisterStatic("root", &LRoot{}); err != nil {
		t.Fatal(err)
	}
	grp, _ := act.NewGroup("grp", "")
	n := map[string]*LNode{}
	for _, name := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "m", "x", "y", "p", "q", "w"} {
		n[name] = &LNode{Name: name}
	}
	// Reachable: a chain from the static root, then through a slice, an
	// array, a map value and a map key; h only through an interior pointer
	// from a grouped object.
	root.Head = n["a"]
	n["a"].Next = n["b"]
	n["b"].Next = n["c"]
	n["c"].Kids = []*LNode{nil, n["d"]}
	n["c"].Pair[1] = n["e"]
	n["c"].ByName = map[string]*LNode{"f": n["f"], "nil": nil}
	n["c"].Set = map[*LNode]bool{n["g"]: true}
	n["m"].Into = &n["h"].Count
	// Leaks: y is reached only from x, which nothing reaches; p and q form
	// a cycle; w is alone. Pointing at reachable objects saves none of them.
	n["x"].Next = n["y"]
	n["x"].Kids = []*LNode{n["a"]}
	n["p"].Next, n["q"].Next = n["q"], n["p"]
	n["q"].Into = &n["b"].Count
	ids := map[string]uint64{}
	tx, _ := act.Begin()
	for _, name := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "m", "x", "y", "p", "q", "w"} {
		var g *Group
		if name == "m" {
			g = grp
		}
		if ids[name], err = tx.CreateIn(g, n[name]); err != nil {
			t.Fatal(err)
		}
	}
	_ = tx.Update(root)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	want := func(names ...string) []Leak {
		var out []Leak
		for _, name := range names {
			out = append(out, Leak{ID: ids[name], Type: "LNode", Name: fmt.Sprint("node-", ids[name])})
		}
		slices.SortFunc(out, func(a, b Leak) int { return int(a.ID) - int(b.ID) })
		return out
	}
	check := func(what string, s *Store, w []Leak) {
		t.Helper()
		before := s.Len()
		got := s.Leaks()
		if !slices.Equal(got, w) {
			t.Fatalf("%s: leaks %v, want %v", what, got, w)
		}
		if s.Len() != before {
			t.Fatalf("%s: Leaks changed the store: %d objects, was %d", what, s.Len(), before)
		}
	}
	leaks := want("x", "y", "p", "q", "w")
	check("active", act, leaks)
	check("standby", sby, leaks)
	var buf bytes.Buffer
	if _, err := act.Save(&buf); err != nil {
		t.Fatal(err)
	}
	loaded, _ := NewStore(leakRegistry(t), Config{Standby: true})
	_ = loaded.RegisterStatic("root", &LRoot{})
	if err := loaded.Load(&buf); err != nil {
		t.Fatal(err)
	}
	check("loaded from a checkpoint", loaded, leaks)

	// The active judges what was committed: an uncommitted change to the
	// root, and an object created by the open transaction, do not count.
	root.Head = nil
	check("active, root changed and not committed", act, leaks)
	tx, _ = act.Begin()
	if _, err := tx.Create(&LNode{Name: "pending"}); err != nil {
		t.Fatal(err)
	}
	check("active, transaction open", act, leaks)
	_ = tx.Update(root)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// Now the chain from the root is gone; h stays reached from the group.
	pending := uint64(0)
	for id := range act.Len() + 100 {
		if o, ok := act.Get(uint64(id)); ok && o.(*LNode).Name == "pending" {
			pending = uint64(id)
		}
	}
	ids["pending"] = pending
	leaks = want("a", "b", "c", "d", "e", "f", "g", "x", "y", "p", "q", "w", "pending")
	check("active, root cleared", act, leaks)
	check("standby, root cleared", sby, leaks)

	// Deleting the group's member leaves h unreached.
	tx, _ = act.Begin()
	_ = tx.DeleteGroup(grp)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	leaks = want("a", "b", "c", "d", "e", "f", "g", "h", "x", "y", "p", "q", "w", "pending")
	check("active, group deleted", act, leaks)
	check("standby, group deleted", sby, leaks)
}

// TestLeaksRich: in richPair, what hangs off no group and no static leaks,
// and an object reached only from leaked ones does too.
func TestLeaksRich(t *testing.T) {
	p, x := richPair(t)
	var want []Leak
	for _, o := range []any{x.hops[1], x.all, x.r1} {
		id, _ := p.act.IDOf(o)
		want = append(want, Leak{ID: id, Type: p.act.reg.byType[reflect.TypeOf(o).Elem()].name, Name: fmt.Sprint(id)})
	}
	slices.SortFunc(want, func(a, b Leak) int { return int(a.ID) - int(b.ID) })
	for _, s := range []*Store{p.act, p.sby} {
		if got := s.Leaks(); !slices.Equal(got, want) {
			t.Fatalf("leaks %v, want %v", got, want)
		}
		if n := s.LeakCount(); n != len(want) {
			t.Fatalf("LeakCount %d, want %d", n, len(want))
		}
	}
	empty, _ := NewStore(testRegistry(t), Config{})
	if l, n := empty.Leaks(), empty.LeakCount(); len(l) != 0 || n != 0 {
		t.Fatalf("empty store leaks %v, count %d", l, n)
	}
}

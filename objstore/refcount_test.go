package objstore

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"unsafe"
)

// checkRefCounts recounts, independently of refcount.go, the pointers the
// committed state (the shadows) holds to each object, and compares.
func checkRefCounts(t testing.TB, s *Store) {
	t.Helper()
	want := map[int32]int32{}
	target := func(n *node, ptr unsafe.Pointer) (int32, bool) {
		for i := range int32(s.ents.len()) {
			e := s.ents.at(i)
			if e.flags&fLive == 0 || e.t != n.target {
				continue
			}
			base, a := uintptr(e.ptr), uintptr(ptr)
			if n.kind == KindRef && a == base || n.kind == KindInterior && a >= base && a < base+e.t.rt.Size() {
				return i, true
			}
		}
		return 0, false
	}
	var walk func(n *node, v reflect.Value)
	walk = func(n *node, v reflect.Value) {
		switch n.kind {
		case KindRef, KindInterior:
			if !v.IsNil() {
				if i, ok := target(n, v.UnsafePointer()); ok {
					want[i]++
				}
			}
		case KindStruct:
			for _, f := range n.fields {
				walk(f.n, reflect.NewAt(f.n.rt, add(v.Addr().UnsafePointer(), f.off)).Elem())
			}
		case KindArray, KindSlice:
			for i := 0; i < v.Len(); i++ {
				walk(n.elem, v.Index(i))
			}
		case KindMap:
			for it := v.MapRange(); it.Next(); {
				k, e := reflect.New(n.key.rt).Elem(), reflect.New(n.elem.rt).Elem()
				k.Set(it.Key())
				e.Set(it.Value())
				walk(n.key, k)
				walk(n.elem, e)
			}
		}
	}
	for i := range int32(s.ents.len()) {
		e := s.ents.at(i)
		if e.flags&fLive == 0 || e.flags&fPendingCreate != 0 || e.shadow == nil {
			continue
		}
		walk(e.t.root, reflect.NewAt(e.t.rt, e.shadow).Elem())
	}
	for _, sl := range s.targets.slots {
		if sl.key == 0 {
			continue
		}
		if e := s.ents.at(sl.val); sl.refs != want[sl.val] {
			t.Errorf("%s %d: %d pointers counted, the shadows hold %d", e.t.name, e.id, sl.refs, want[sl.val])
		}
		delete(want, sl.val)
	}
	for i, n := range want {
		e := s.ents.at(i)
		t.Errorf("%s %d: pointed to %d times, not counted (not in the targets index)", e.t.name, e.id, n)
	}
}

// TestDeleteOfPointedToObject: deleting an object that a committed object
// still points to is refused at commit, naming the object and field still
// pointing, unless the same transaction points them elsewhere or deletes
// them; so the state never holds a dangling pointer and checkpoints of
// either node keep working.
func TestDeleteOfPointedToObject(t *testing.T) {
	p := newPair(t, 0)
	h1, h2, h3 := &NextHop{Iface: "h1"}, &NextHop{Iface: "h2"}, &NextHop{Iface: "h3"}
	hold := &Holder{Name: "hold"}
	r := &Route{NextHop: h1}
	a := &AllKinds{Refs: []*NextHop{nil, h2}, RefMap: map[string]*NextHop{"x": h3}, IntoIn: &hold.Slots[2]}
	st := &Route{}
	if err := p.act.RegisterStatic("static-route", st); err != nil {
		t.Fatal(err)
	}
	if err := p.sby.RegisterStatic("static-route", &Route{}); err != nil {
		t.Fatal(err)
	}
	ids := map[any]uint64{}
	tx, _ := p.act.Begin()
	for _, o := range []any{h1, h2, h3, hold, r, a} {
		ids[o], _ = tx.Create(o)
	}
	st.NextHop = h2
	_ = tx.Update(st)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	checkRefCounts(t, p.act)

	// A refused commit sends nothing and leaves the counts as they were
	// (the application's memory keeps what it wrote).
	refused := func(what string, run func(tx Txn), parts ...string) {
		t.Helper()
		seq, recs := p.act.Seq(), len(p.recs)
		tx, _ := p.act.Begin()
		run(tx)
		wantText(t, commitErr(t, tx, ErrDangling), parts...)
		if p.act.Seq() != seq || len(p.recs) != recs {
			t.Fatalf("%s: a refused commit sent records", what)
		}
		checkRefCounts(t, p.act)
	}
	refused("route's hop", func(tx Txn) { _ = tx.Delete(h1) },
		fmt.Sprintf("delete NextHop %d, which Route %d still points to (field NextHop)", ids[h1], ids[r]))
	refused("slice element and static", func(tx Txn) { _ = tx.Delete(h2) },
		fmt.Sprintf("delete NextHop %d, which ", ids[h2]))
	st.NextHop = nil
	refused("slice element, the static updated away", func(tx Txn) { _ = tx.Update(st); _ = tx.Delete(h2) },
		fmt.Sprintf("which AllKinds %d still points to (field Refs[1])", ids[a]))
	a.Refs[1] = nil // not updated: the committed state still points
	refused("slice element changed but not updated", func(tx Txn) { _ = tx.Update(st); _ = tx.Delete(h2) },
		fmt.Sprintf("which AllKinds %d still points to (field Refs[1])", ids[a]))
	refused("static changed but not updated", func(tx Txn) { _ = tx.Update(a); _ = tx.Delete(h2) },
		fmt.Sprintf("which Route %d still points to (field NextHop)", StaticID("static-route")))
	refused("map value", func(tx Txn) { _ = tx.Delete(h3) },
		fmt.Sprintf(`which AllKinds %d still points to (field RefMap["x"])`, ids[a]))
	refused("interior", func(tx Txn) { _ = tx.Delete(hold) },
		fmt.Sprintf("delete Holder %d, which AllKinds %d still points to (field IntoIn)", ids[hold], ids[a]))

	commit := func(what string, run func(tx Txn)) {
		t.Helper()
		tx, _ := p.act.Begin()
		run(tx)
		if err := tx.Commit(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		checkRefCounts(t, p.act)
		if got, want := dump(p.sby), dump(p.act); got != want {
			t.Fatalf("%s: standby differs:\n got %s\nwant %s", what, got, want)
		}
	}
	commit("referrers updated away", func(tx Txn) {
		_ = tx.Update(st)
		_ = tx.Update(a)
		_ = tx.Delete(h2)
	})
	commit("repointed in the same transaction", func(tx Txn) {
		r.NextHop = h3
		_ = tx.Update(r)
		_ = tx.Delete(h1)
	})
	commit("referrers deleted with their targets", func(tx Txn) {
		_ = tx.Delete(a)
		_ = tx.Delete(hold)
		_ = tx.Delete(r)
		_ = tx.Delete(h3)
	})
	for _, s := range []*Store{p.act, p.sby} {
		if _, err := s.Save(&bytes.Buffer{}); err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
	}
}

// TestPromotedStoreCountsPointers: a promoted standby counts the pointers
// of its mirror, so it refuses the same deletes.
func TestPromotedStoreCountsPointers(t *testing.T) {
	p := newPair(t, 0)
	h := &NextHop{Iface: "h"}
	tx, _ := p.act.Begin()
	hid, _ := tx.Create(h)
	_, _ = tx.Create(&Route{NextHop: h})
	_, _ = tx.Create(&Route{NextHop: h})
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	s := p.sby
	if _, err := s.Promote(); err != nil {
		t.Fatal(err)
	}
	checkRefCounts(t, s)
	hop, _ := s.Get(hid)
	tx, _ = s.Begin()
	_ = tx.Delete(hop)
	if err := tx.Commit(); !errors.Is(err, ErrDangling) {
		t.Fatalf("promoted store deleted a pointed-to object: %v", err)
	}
}

// TestStaticPointingAhead: a static registered pointing at an object the
// application creates later holds that pointer in its shadow from the
// object's create on, so the object cannot be deleted under it, before the
// static's first commit or after.
func TestStaticPointingAhead(t *testing.T) {
	p := newPair(t, 0)
	hop, other := &NextHop{Iface: "later"}, &NextHop{Iface: "other"}
	st := &Route{NextHop: hop}
	if err := p.act.RegisterStatic("st", st); err != nil {
		t.Fatal(err)
	}
	if err := p.sby.RegisterStatic("st", &Route{}); err != nil {
		t.Fatal(err)
	}
	tx, _ := p.act.Begin()
	_, _ = tx.Create(hop)
	_, _ = tx.Create(other)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	checkRefCounts(t, p.act)
	tx, _ = p.act.Begin()
	_ = tx.Delete(hop)
	wantText(t, commitErr(t, tx, ErrDangling), fmt.Sprintf("which Route %d still points to (field NextHop)", StaticID("st")))
	tx, _ = p.act.Begin()
	st.NextHop = other
	_ = tx.Update(st)
	_ = tx.Delete(hop)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	checkRefCounts(t, p.act)
	tx, _ = p.act.Begin()
	_ = tx.Delete(other)
	wantText(t, commitErr(t, tx, ErrDangling), fmt.Sprintf("which Route %d still points to (field NextHop)", StaticID("st")))
	if _, err := p.act.Save(&bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
}

package objstore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// commitErr commits tx and returns its error, which must wrap want.
func commitErr(t *testing.T, tx Txn, want error) string {
	t.Helper()
	err := tx.Commit()
	if !errors.Is(err, want) {
		t.Fatalf("commit: %v, want %v", err, want)
	}
	return err.Error()
}

// wantText fails unless msg holds every part, and no memory address.
func wantText(t *testing.T, msg string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not say %q", msg, p)
		}
	}
	if strings.Contains(msg, "0x") {
		t.Errorf("error %q names a memory address", msg)
	}
}

// TestBadPointerNamesObjectAndField: an encoding error for a pointer names
// the object the pointer is in (type, ID) and the path of the field, down
// through arrays, slices and maps, not the address it holds.
func TestBadPointerNamesObjectAndField(t *testing.T) {
	p := newPair(t, 0)
	hop, h := &NextHop{Iface: "e1"}, &Holder{Name: "h"}
	r := &Route{NextHop: hop}
	tx, _ := p.act.Begin()
	_, _ = tx.Create(hop)
	_, _ = tx.Create(h)
	rid, _ := tx.Create(r)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	stray, strayHolder := &NextHop{Iface: "not stored"}, &Holder{}

	r.NextHop = stray
	tx, _ = p.act.Begin()
	_ = tx.Update(r)
	wantText(t, commitErr(t, tx, ErrDangling), fmt.Sprintf("update Route %d: field NextHop: pointer to a NextHop that is not in the store", rid))
	r.NextHop = hop

	for _, c := range []struct {
		set  func(a *AllKinds)
		path string
	}{
		{func(a *AllKinds) { a.Refs = []*NextHop{hop, stray} }, "field Refs[1]: pointer to a NextHop"},
		{func(a *AllKinds) { a.RefArr[1] = stray }, "field RefArr[1]: pointer to a NextHop"},
		{func(a *AllKinds) { a.RefMap = map[string]*NextHop{"x": stray} }, `field RefMap["x"]: pointer to a NextHop`},
		{func(a *AllKinds) { a.IntoArr = []*Inner{nil, nil, &strayHolder.Slots[1]} }, "field IntoArr[2]: pointer into a Holder"},
		{func(a *AllKinds) { a.IntoIn = &strayHolder.Slots[0] }, "field IntoIn: pointer into a Holder"},
	} {
		a := &AllKinds{}
		c.set(a)
		tx, _ = p.act.Begin()
		id, _ := tx.Create(a)
		wantText(t, commitErr(t, tx, ErrDangling), fmt.Sprintf("create AllKinds %d: %s", id, c.path))
	}

	// A message is encoded when made; the Delete after it fails the commit,
	// naming the message and its field.
	tx, _ = p.act.Begin()
	_ = tx.Message(&Msg{Text: "hi"})
	_ = tx.Message(&Msg{Hop: hop})
	_ = tx.Delete(hop)
	_ = tx.Delete(r)
	hid, _ := p.act.IDOf(hop)
	wantText(t, commitErr(t, tx, ErrDangling), fmt.Sprintf("message 2 (Msg): field Hop: pointer to NextHop %d, deleted in this transaction", hid))
	if got, want := dump(p.sby), dump(p.act); got != want {
		t.Fatalf("standby differs:\n got %s\nwant %s", got, want)
	}
}

// TestWithdrawWithRoutes: deleting a next hop and the routes through it in
// one transaction commits, whatever the routes were repointed to first and
// in whichever order the deletes come; an object the transaction deletes is
// sent as its Delete only, and one it also created not at all.
func TestWithdrawWithRoutes(t *testing.T) {
	type fixture struct {
		p      *pair
		p1, p2 *NextHop
		r      *Route
		g      *Group
		ids    map[any]uint64
	}
	setup := func(t *testing.T) *fixture {
		f := &fixture{p: newPair(t, 0), p1: &NextHop{Iface: "p1"}, p2: &NextHop{Iface: "p2"}, ids: map[any]uint64{}}
		f.r = &Route{NextHop: f.p1, Metric: 1}
		var err error
		if f.g, err = f.p.act.NewGroup("vrf", ""); err != nil {
			t.Fatal(err)
		}
		tx, _ := f.p.act.Begin()
		f.ids[f.p1], _ = tx.Create(f.p1)
		f.ids[f.p2], _ = tx.Create(f.p2)
		f.ids[f.r], _ = tx.CreateIn(f.g, f.r)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		return f
	}
	check := func(t *testing.T, f *fixture, tx Txn, want string) {
		t.Helper()
		start := len(f.p.recs)
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit: %v", err)
		}
		if got := strings.Join(summarize(t, f.p.act.reg, f.p.recs[start:]), "; "); got != want {
			t.Errorf("records %q, want %q", got, want)
		}
		if got, want := dump(f.p.sby), dump(f.p.act); got != want {
			t.Fatalf("standby differs:\n got %s\nwant %s", got, want)
		}
		if _, err := f.p.act.Snapshot(); err != nil {
			t.Fatalf("snapshot after the commit: %v", err)
		}
	}
	for _, c := range []struct {
		name string
		run  func(f *fixture, tx Txn)
		want string // %[1]d: p1, %[2]d: p2, %[3]d: r
	}{
		{"update, delete route, delete hop", func(f *fixture, tx Txn) {
			f.r.NextHop = f.p2
			_ = tx.Update(f.r)
			_ = tx.Delete(f.r)
			_ = tx.Delete(f.p2)
		}, "delete Route %[3]d; delete NextHop %[2]d; commit 2"},
		{"update, delete hop, delete route", func(f *fixture, tx Txn) {
			f.r.NextHop = f.p2
			_ = tx.Update(f.r)
			_ = tx.Delete(f.p2)
			_ = tx.Delete(f.r)
		}, "delete NextHop %[2]d; delete Route %[3]d; commit 2"},
		{"update, delete group, delete hop", func(f *fixture, tx Txn) {
			f.r.NextHop = f.p2
			_ = tx.Update(f.r)
			_ = tx.DeleteGroup(f.g)
			_ = tx.Delete(f.p2)
		}, "deletegroup 1; delete NextHop %[2]d; commit 2"},
		{"delete hop, delete group", func(f *fixture, tx Txn) {
			_ = tx.Delete(f.p1)
			_ = tx.DeleteGroup(f.g)
		}, "delete NextHop %[1]d; deletegroup 1; commit 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t)
			tx, _ := f.p.act.Begin()
			c.run(f, tx)
			check(t, f, tx, fmt.Sprintf(c.want, f.ids[f.p1], f.ids[f.p2], f.ids[f.r]))
			if f.p.act.Len() != 1 {
				t.Fatalf("active holds %d objects, want 1", f.p.act.Len())
			}
		})
	}
	t.Run("created and deleted", func(t *testing.T) {
		f := setup(t)
		tx, _ := f.p.act.Begin()
		p3 := &NextHop{Iface: "p3"}
		r2 := &Route{NextHop: p3}
		_, _ = tx.Create(p3)
		_, _ = tx.CreateIn(f.g, r2)
		_ = tx.Delete(r2)
		_ = tx.Delete(p3)
		check(t, f, tx, "")
		if f.p.act.Len() != 3 || f.p.act.Seq() != 1 {
			t.Fatalf("active holds %d objects at seq %d", f.p.act.Len(), f.p.act.Seq())
		}
	})
	t.Run("created, then its group deleted", func(t *testing.T) {
		f := setup(t)
		tx, _ := f.p.act.Begin()
		p3 := &NextHop{Iface: "p3"}
		_, _ = tx.Create(p3)
		_, _ = tx.CreateIn(f.g, &Route{NextHop: p3})
		_ = tx.DeleteGroup(f.g)
		_ = tx.Delete(p3)
		check(t, f, tx, "deletegroup 1; commit 2")
	})
}

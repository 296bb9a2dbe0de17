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

package objstore_test

import (
	"errors"
	"testing"

	"github.com/swha/swha/internal/skewtest"
	"github.com/swha/swha/objstore"
)

// refusingPair is an active of V1 feeding a standby of V2, which refuses
// what it cannot hold; it keeps the records of the last commit, for Repair.
type refusingPair struct {
	act, sby *objstore.Store
	recs     [][]byte
	applyErr []error
}

func newRefusingPair(t *testing.T) *refusingPair {
	t.Helper()
	p := &refusingPair{}
	rs, err := skewtest.NewRegistry(skewtest.V2)
	if err != nil {
		t.Fatal(err)
	}
	if p.sby, err = objstore.NewStore(rs, objstore.Config{Standby: true}); err != nil {
		t.Fatal(err)
	}
	ra := objstore.NewRegistry()
	if err := skewtest.Register(ra, skewtest.V1); err != nil {
		t.Fatal(err)
	}
	p.act, err = objstore.NewStore(ra, objstore.Config{Sink: objstore.SinkFunc(func(rec []byte) error {
		p.recs = append(p.recs, append([]byte(nil), rec...))
		if err := p.sby.Apply(rec); err != nil {
			p.applyErr = append(p.applyErr, err)
		}
		return nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// capture commits ops and returns the records of the commit and the
// standby's apply errors for it.
func (p *refusingPair) capture(t *testing.T, ops func(tx objstore.Txn) error) ([][]byte, []error) {
	t.Helper()
	p.recs, p.applyErr = nil, nil
	commit(t, p.act, ops)
	return p.recs, p.applyErr
}

// TestRefusedCreateConvergesByUpdate: a standby refuses the commit that
// created X (a value its version cannot hold); the repair leaves X out and
// marks it absent on the peer, so that X's next change, once its value
// fits, goes as a Create with every field, which the standby applies,
// rather than as an Update of an object it never had, which it would refuse
// again (costing a resync each time).
func TestRefusedCreateConvergesByUpdate(t *testing.T) {
	for _, abortRepair := range []bool{false, true} {
		p := newRefusingPair(t)
		x := &skewtest.RouteV1{Name: "x", Pref: -1, Metric: 9} // Pref: uint16 on V2
		y := &skewtest.RouteV1{Name: "y"}
		var xid, yid uint64
		recs, errs := p.capture(t, func(tx objstore.Txn) (err error) {
			if xid, err = tx.Create(x); err != nil {
				return err
			}
			yid, err = tx.Create(y)
			return err
		})
		var te *objstore.TransformError
		if len(errs) != 1 || !errors.As(errs[0], &te) || te.ObjectID != xid {
			t.Fatalf("standby errors %v, want a transform error for object %d", errs, xid)
		}
		// What the Node does with a refusal: mark the object that did not
		// fit stale and repair the rest.
		if err := p.act.MarkStale(xid); err != nil {
			t.Fatal(err)
		}
		tx, _ := p.act.Begin()
		skip := func(id uint64) bool { return id == xid || abortRepair && id == yid }
		p.applyErr = nil
		if _, err := tx.Repair(recs, skip); err != nil {
			t.Fatal(err)
		}
		if abortRepair {
			_ = tx.Abort()
		} else if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if len(p.applyErr) != 0 {
			t.Fatalf("repair refused: %v", p.applyErr)
		}
		if _, ok := p.sby.Get(xid); ok {
			t.Fatal("the standby holds the object it refused")
		}
		// The value fits now: the next change brings X over whole.
		x.Pref = 3
		_, errs = p.capture(t, func(tx objstore.Txn) error { return tx.Update(x) })
		if len(errs) != 0 {
			t.Fatalf("abort %v: the change after the fix was refused: %v", abortRepair, errs)
		}
		o, ok := p.sby.Get(xid)
		if !ok {
			t.Fatalf("abort %v: the standby lacks the object after its fix", abortRepair)
		}
		if r := o.(*skewtest.RouteV2); r.Name != "x" || r.Pref != 3 || r.Metric != 9 {
			t.Fatalf("standby's copy %+v", r)
		}
		// And from then on it is an object like any other.
		x.Metric = 10
		_, errs = p.capture(t, func(tx objstore.Txn) error { return tx.Update(x) })
		if o, _ := p.sby.Get(xid); len(errs) != 0 || o.(*skewtest.RouteV2).Metric != 10 {
			t.Fatalf("update after the create: %v, %+v", errs, o)
		}
	}
}

// TestMarkAbsent: an object marked absent on the peer is created by its
// next change, and its Delete sends nothing; a snapshot, which carries every
// object, clears the marks.
func TestMarkAbsent(t *testing.T) {
	p := newRefusingPair(t)
	z, w, y := &skewtest.RouteV1{Name: "z", Pref: -1}, &skewtest.RouteV1{Name: "w", Pref: -1}, &skewtest.RouteV1{Name: "y"}
	var zid, wid, yid uint64
	if _, errs := p.capture(t, func(tx objstore.Txn) (err error) {
		if zid, err = tx.Create(z); err != nil {
			return err
		}
		wid, err = tx.Create(w)
		return err
	}); len(errs) != 1 {
		t.Fatalf("standby errors %v, want one refusal", errs)
	}
	if _, errs := p.capture(t, func(tx objstore.Txn) (err error) { yid, err = tx.Create(y); return err }); len(errs) != 0 {
		t.Fatal(errs)
	}
	if err := p.act.MarkAbsent(zid, wid, objstore.StaticID("none"), 12345); err != nil {
		t.Fatal(err)
	}
	if recs, errs := p.capture(t, func(tx objstore.Txn) error { return tx.Delete(z) }); len(recs) != 0 || len(errs) != 0 {
		t.Fatalf("delete of an object the peer lacks sent %d records (errors %v)", len(recs), errs)
	}
	w.Pref = 1
	if _, errs := p.capture(t, func(tx objstore.Txn) error { return tx.Update(w) }); len(errs) != 0 {
		t.Fatalf("update of an absent object: %v", errs)
	}
	if o, ok := p.sby.Get(wid); !ok || o.(*skewtest.RouteV2).Pref != 1 {
		t.Fatalf("standby's copy %+v", o)
	}
	// Marked by mistake: the snapshot carries y, and clears the mark.
	if err := p.act.MarkAbsent(yid); err != nil {
		t.Fatal(err)
	}
	if _, err := p.act.Snapshot(); err != nil || len(p.applyErr) != 0 {
		t.Fatalf("snapshot: %v, standby %v", err, p.applyErr)
	}
	y.Name = "changed"
	if _, errs := p.capture(t, func(tx objstore.Txn) error { return tx.Update(y) }); len(errs) != 0 {
		t.Fatalf("update after the snapshot: %v", errs)
	}
	if o, ok := p.sby.Get(yid); !ok || o.(*skewtest.RouteV2).Name != "changed" {
		t.Fatalf("standby's copy %+v", o)
	}
	tx, _ := p.act.Begin()
	if err := p.act.MarkAbsent(yid); !errors.Is(err, objstore.ErrTxnOpen) {
		t.Fatalf("MarkAbsent with a transaction open: %v", err)
	}
	_ = tx.Abort()
	if err := p.sby.MarkAbsent(yid); !errors.Is(err, objstore.ErrNotActive) {
		t.Fatalf("MarkAbsent on a standby: %v", err)
	}
}

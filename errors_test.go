package swha

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/swha/swha/objstore"
)

// checkSame asserts that the standby still mirrors the active exactly and
// that the active's store holds want objects: a failed transaction changed
// neither side.
func checkSame(t *testing.T, p *testPair, want int) {
	t.Helper()
	p.waitStreaming(t)
	a, s := dump(p.act.Store(), p.actCfg), dump(p.sby.Store(), p.sbyCfg)
	if a != s {
		t.Fatalf("standby differs\nactive:\n%s\nstandby:\n%s", a, s)
	}
	if n := p.act.Store().Len(); n != want {
		t.Fatalf("active holds %d objects, want %d:\n%s", n, want, a)
	}
}

// seedPair returns a pair whose stores hold the static config, one hop and
// one route pointing at it, committed synchronously.
func seedPair(t *testing.T, o pairOpts) (*testPair, *testHop, *testRoute) {
	t.Helper()
	p := newTestPair(t, o)
	h := &testHop{Addr: hopAddr(1), Iface: "eth0"}
	r := &testRoute{Prefix: pfx(1), NextHop: h, Metric: 1}
	tx, err := p.act.Begin(bg())
	must(t, err)
	_, err = tx.Create(h)
	must(t, err)
	_, err = tx.Create(r)
	must(t, err)
	must(t, tx.Commit(bg()))
	checkSame(t, p, 3)
	return p, h, r
}

func TestBadInputs(t *testing.T) {
	t.Run("unregistered type", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p, _, r := seedPair(t, pairOpts{mode: Sync})
			tx, err := p.act.Begin(bg())
			must(t, err)
			r.Metric = 99
			must(t, tx.Update(r))
			type notRegistered struct{ X int }
			_, err = tx.Create(&notRegistered{})
			if !errors.Is(err, objstore.ErrUnregistered) || !strings.Contains(err.Error(), "notRegistered") {
				t.Fatalf("create of an unregistered type: %v", err)
			}
			err = tx.Message(&notRegistered{})
			if !errors.Is(err, objstore.ErrUnregistered) {
				t.Fatalf("message of an unregistered type: %v", err)
			}
			// The application decides: here it gives the transaction up, and
			// the metric change it made is not replicated.
			must(t, tx.Abort())
			r.Metric = 1
			checkSame(t, p, 3)
		})
	})
	t.Run("unsupported field kind", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			err := objstore.NewRegistry().Register("bad", testUnsupported{})
			if err == nil || !strings.Contains(err.Error(), "C") || !strings.Contains(err.Error(), "chan") {
				t.Fatalf("registering a chan field: %v", err)
			}
			// A registry that failed a registration still starts a node with
			// the types that did register; the bad type is simply unknown.
			r := objstore.NewRegistry()
			_ = r.Register("bad", testUnsupported{})
			must(t, r.Register("hop", testHop{}))
			if r.Schema("bad") != nil {
				t.Fatal("the refused type has a schema")
			}
		})
	})
	t.Run("pointer to unregistered object", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p, _, _ := seedPair(t, pairOpts{mode: Sync})
			stray := &testHop{Addr: hopAddr(9), Iface: "stray"} // never created
			tx, err := p.act.Begin(bg())
			must(t, err)
			ok := &testRoute{Prefix: pfx(2)}
			_, err = tx.Create(ok)
			must(t, err)
			_, err = tx.Create(&testRoute{Prefix: pfx(3), Backups: []*testHop{stray}})
			must(t, err)
			err = tx.Commit(bg())
			if !errors.Is(err, objstore.ErrDangling) {
				t.Fatalf("commit with a dangling pointer: %v", err)
			}
			if _, found := p.act.Store().IDOf(ok); found {
				t.Fatal("the failed transaction's other create stayed on the active")
			}
			checkSame(t, p, 3)
		})
	})
	t.Run("update of a deleted object", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p, h, r := seedPair(t, pairOpts{mode: Sync})
			tx, err := p.act.Begin(bg())
			must(t, err)
			must(t, tx.Delete(r))
			if err := tx.Update(r); !errors.Is(err, objstore.ErrDeleted) {
				t.Fatalf("update after delete in one transaction: %v", err)
			}
			must(t, tx.Commit(bg()))
			checkSame(t, p, 2)
			tx, err = p.act.Begin(bg())
			must(t, err)
			if err := tx.Update(r); !errors.Is(err, objstore.ErrUnknownObject) {
				t.Fatalf("update of a deleted object: %v", err)
			}
			h.Iface = "eth9"
			must(t, tx.Update(h))
			must(t, tx.Commit(bg()))
			checkSame(t, p, 2)
		})
	})
	t.Run("commit twice", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p, _, r := seedPair(t, pairOpts{mode: Sync})
			tx, err := p.act.Begin(bg())
			must(t, err)
			r.Metric = 5
			must(t, tx.Update(r))
			must(t, tx.Commit(bg()))
			seq := p.act.Store().Seq()
			if err := tx.Commit(bg()); !errors.Is(err, objstore.ErrTxnDone) {
				t.Fatalf("second commit: %v", err)
			}
			if err := tx.Abort(); !errors.Is(err, objstore.ErrTxnDone) {
				t.Fatalf("abort after commit: %v", err)
			}
			if err := tx.Update(r); !errors.Is(err, objstore.ErrTxnDone) {
				t.Fatalf("update after commit: %v", err)
			}
			if p.act.Store().Seq() != seq {
				t.Fatal("the second commit made a commit")
			}
			checkSame(t, p, 3)
			// The write path was released: another transaction opens.
			tx, err = p.act.Begin(bg())
			must(t, err)
			must(t, tx.Abort())
		})
	})
	t.Run("transaction too large", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p, h, _ := seedPair(t, pairOpts{mode: Sync, maxTxnBytes: 1024})
			tx, err := p.act.Begin(bg())
			must(t, err)
			for i := range 100 {
				_, err := tx.Create(&testRoute{Prefix: pfx(100 + i), NextHop: h, Communities: []uint32{1, 2, 3}})
				must(t, err)
			}
			if err := tx.Commit(bg()); !errors.Is(err, objstore.ErrTxnTooLarge) {
				t.Fatalf("commit of 100 routes under a 1 KiB limit: %v", err)
			}
			checkSame(t, p, 3)
			tx, err = p.act.Begin(bg())
			must(t, err)
			if err := tx.Intent(make([]byte, 4096)); !errors.Is(err, objstore.ErrTxnTooLarge) {
				t.Fatalf("intent of 4 KiB under a 1 KiB limit: %v", err)
			}
			must(t, tx.Abort())
			checkSame(t, p, 3)
		})
	})
	t.Run("standby refuses writes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := newTestPair(t, pairOpts{})
			if _, err := p.sby.Begin(bg()); !errors.Is(err, ErrNotActive) {
				t.Fatalf("begin on the standby: %v", err)
			}
			if _, err := p.act.Promote(); !errors.Is(err, ErrNotStandby) {
				t.Fatalf("promote of the active: %v", err)
			}
		})
	})
}

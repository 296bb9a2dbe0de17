package objstore

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"unsafe"
)

// TestStandbyIDOf: a standby maps its mirror's objects back to their IDs,
// through creates, deletes, a snapshot replacing everything, and promotion.
func TestStandbyIDOf(t *testing.T) {
	p := newPair(t, 0)
	cfg := &AppConfig{}
	if err := p.sby.RegisterStatic("cfg", cfg); err != nil {
		t.Fatal(err)
	}
	if err := p.act.RegisterStatic("cfg", &AppConfig{}); err != nil {
		t.Fatal(err)
	}
	hop, r := &NextHop{Iface: "e1"}, &Route{Metric: 1}
	r.NextHop = hop
	tx, _ := p.act.Begin()
	hid, _ := tx.Create(hop)
	rid, _ := tx.Create(r)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	idOf := func(id uint64) (uint64, bool) {
		o, ok := p.sby.Get(id)
		if !ok {
			t.Fatalf("standby lacks object %d", id)
		}
		return p.sby.IDOf(o)
	}
	for _, id := range []uint64{hid, rid} {
		if got, ok := idOf(id); !ok || got != id {
			t.Fatalf("standby IDOf(object %d) = %d, %v", id, got, ok)
		}
	}
	if got, ok := p.sby.IDOf(cfg); !ok || got != StaticID("cfg") {
		t.Fatalf("standby IDOf(static) = %d, %v", got, ok)
	}
	old, _ := p.sby.Get(rid)
	tx, _ = p.act.Begin()
	_ = tx.Delete(r)
	r2 := &Route{NextHop: hop}
	r2id, _ := tx.Create(r2)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.sby.IDOf(old); ok {
		t.Fatal("standby IDOf found a deleted object")
	}
	if got, ok := idOf(r2id); !ok || got != r2id {
		t.Fatalf("standby IDOf(new route) = %d, %v", got, ok)
	}
	// A snapshot replaces every dynamic object.
	before, _ := p.sby.Get(r2id)
	if _, err := p.act.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.sby.IDOf(before); ok {
		t.Fatal("standby IDOf found an object the snapshot replaced")
	}
	if got, ok := idOf(r2id); !ok || got != r2id {
		t.Fatalf("standby IDOf after the snapshot = %d, %v", got, ok)
	}
	if _, err := p.sby.Promote(); err != nil {
		t.Fatal(err)
	}
	if got, ok := idOf(hid); !ok || got != hid {
		t.Fatalf("promoted IDOf = %d, %v", got, ok)
	}
}

func TestSlabIndex(t *testing.T) {
	var ents entSlab
	x := newSlabIndex(&ents, 0)
	objs := make([]uint64, 5000) // the addresses
	live := map[int32]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	for step := 0; step < 40000; step++ {
		i := int32(rng.IntN(len(objs)))
		if int(i) >= ents.len() {
			for int(i) >= ents.len() {
				ents.add()
			}
		}
		if live[i] {
			x.del(i)
			delete(live, i)
			ents.at(i).ptr = nil
			continue
		}
		ents.at(i).ptr = unsafe.Pointer(&objs[i])
		x.set(i)
		live[i] = true
		if step%1000 == 0 {
			for k := range objs {
				got, ok := x.get(unsafe.Pointer(&objs[k]))
				if ok != live[int32(k)] || ok && got != int32(k) {
					t.Fatalf("step %d: get(%d) = %d, %v; live %v", step, k, got, ok, live[int32(k)])
				}
			}
			if x.n != len(live) {
				t.Fatalf("step %d: %d in the index, %d live", step, x.n, len(live))
			}
		}
	}
}

// TestView: the read view on either role, its lookups inside ReadWith and
// in a subscriber, and NotifyPending with deferred delivery.
func TestView(t *testing.T) {
	p := newPair(t, 0)
	sby, err := NewStore(testRegistry(t), Config{Standby: true, DeferNotify: true})
	if err != nil {
		t.Fatal(err)
	}
	p.sby = sby
	v := sby.View()
	if v != sby.View() || v.Registry() != sby.Registry() {
		t.Fatal("View is not one per store")
	}
	if sby.NotifyPending() {
		t.Fatal("pending before anything applied")
	}
	g, _ := p.act.NewGroup("vrf", "r")
	hop := &NextHop{Iface: "e1"}
	tx, _ := p.act.Begin()
	hid, _ := tx.Create(hop)
	rid, _ := tx.CreateIn(g, &Route{NextHop: hop})
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if sby.NotifyPending() {
		t.Fatal("pending with no subscriber and no handler")
	}
	type seen struct {
		id, idOf uint64
		name     string
		op       Op
	}
	var got []seen
	cancel := v.Subscribe(func(c Change) {
		id, _ := v.IDOf(c.Object)
		got = append(got, seen{c.ID, id, v.Name(c.ID), c.Op})
		v.ReadWith(func(r Reader) {
			if o, ok := r.Get(c.ID); ok {
				if id, _ := r.IDOf(o); id != c.ID {
					t.Errorf("Reader.IDOf = %d, want %d", id, c.ID)
				}
			}
		})
	})
	defer cancel()
	o, _ := v.Get(rid)
	o.(*Route).Metric = 0 // not the active's object
	tx, _ = p.act.Begin()
	r2 := &Route{Metric: 5}
	r2id, _ := tx.CreateIn(g, r2)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if !sby.NotifyPending() || len(got) != 0 {
		t.Fatalf("after Apply with DeferNotify: pending %v, %d delivered", sby.NotifyPending(), len(got))
	}
	sby.Notify()
	if sby.NotifyPending() || len(got) != 1 || got[0] != (seen{r2id, r2id, "r-" + itoa(r2id), OpCreate}) {
		t.Fatalf("after Notify: pending %v, delivered %+v", sby.NotifyPending(), got)
	}
	gv := v.GroupByName("vrf")
	if gv == nil || gv.Name() != "vrf" || gv.Len() != 2 || v.GroupByName("none") != nil {
		t.Fatalf("GroupByName: %+v", gv)
	}
	if v.Len() != 3 || v.Seq() != 2 || v.AppliedSeq() != 2 || v.Name(hid) != itoa(hid) {
		t.Fatalf("Len %d Seq %d AppliedSeq %d Name %q", v.Len(), v.Seq(), v.AppliedSeq(), v.Name(hid))
	}
	v.ReadWith(func(r Reader) {
		if r.Len() != 3 || r.GroupByName("vrf") != gv || r.Name(rid) != "r-"+itoa(rid) {
			t.Errorf("Reader: Len %d, group %v, name %q", r.Len(), r.GroupByName("vrf"), r.Name(rid))
		}
	})
	if len(v.PeerSkew()) == 0 || v.SnapshotID() != 0 {
		t.Fatalf("PeerSkew %v SnapshotID %d", v.PeerSkew(), v.SnapshotID())
	}
	// The active's view: committed objects only.
	av := p.act.View()
	tx, _ = p.act.Begin()
	pending := &NextHop{}
	_, _ = tx.Create(pending)
	if _, ok := av.IDOf(pending); ok {
		t.Fatal("View.IDOf found an object of the open transaction")
	}
	if id, ok := av.IDOf(hop); !ok || id != hid {
		t.Fatalf("active View.IDOf = %d, %v", id, ok)
	}
	_ = tx.Abort()
}

func itoa(id uint64) string { return strconv.FormatUint(id, 10) }

// TestViewConcurrent uses a standby's view from other goroutines while it
// applies, its address index built by the first of them; run with -race.
func TestViewConcurrent(t *testing.T) {
	p := newPair(t, 0)
	g, _ := p.act.NewGroup("vrf", "")
	hop := &NextHop{}
	tx, _ := p.act.Begin()
	_, _ = tx.Create(hop)
	_ = tx.Commit()
	v := p.sby.View()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if o, ok := v.Get(1); ok {
					if id, ok := v.IDOf(o); !ok || id != 1 {
						t.Errorf("IDOf = %d, %v", id, ok)
						return
					}
				}
				v.ReadWith(func(r Reader) {
					for id := uint64(1); id < 50; id++ {
						if o, ok := r.Get(id); ok {
							if got, _ := r.IDOf(o); got != id {
								t.Errorf("Reader.IDOf = %d, want %d", got, id)
							}
						}
					}
				})
				if gv := v.GroupByName("vrf"); gv != nil {
					_ = gv.Len()
				}
				_ = v.Len()
			}
		}()
	}
	var routes []*Route
	for i := 0; i < 300; i++ {
		tx, _ := p.act.Begin()
		r := &Route{Metric: uint32(i), NextHop: hop}
		_, _ = tx.CreateIn(g, r)
		routes = append(routes, r)
		if i%2 == 1 {
			_ = tx.Delete(routes[0])
			routes = routes[1:]
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

package objstore

import (
	"net/netip"
	"sync"
	"testing"
)

// TestConcurrentReaders reads a standby (Read, Each, Get, subscriptions)
// while it applies a stream, and an active (Each, IDOf) while it commits; run
// with -race.
func TestConcurrentReaders(t *testing.T) {
	p := newPair(t, 0)
	var seen []Change
	cancel := p.sby.Subscribe(func(c Change) {
		if r, ok := c.Object.(*Route); ok && c.Op != OpDelete {
			_ = r.Metric // subscribers read under the read lock
		}
		seen = append(seen, c)
	})
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range []*Store{p.sby, p.act} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.Read(func() {})
				_, _ = s.Get(1)
				s.Each(func(id uint64, obj any) bool {
					if s == p.sby {
						if r, ok := obj.(*Route); ok {
							_ = r.Metric + uint32(len(r.Communities))
						}
					}
					return true
				})
				_ = s.Len()
				_ = s.Seq()
			}
		}()
	}
	hop := &NextHop{}
	tx, _ := p.act.Begin()
	_, _ = tx.Create(hop)
	_ = tx.Commit()
	var routes []*Route
	for i := 0; i < 300; i++ {
		tx, _ := p.act.Begin()
		r := &Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32), NextHop: hop}
		if _, err := tx.Create(r); err != nil {
			t.Fatal(err)
		}
		routes = append(routes, r)
		if i%3 == 0 {
			routes[i/2].Metric++
			routes[i/2].Communities = append(routes[i/2].Communities, uint32(i))
			_ = tx.Update(routes[i/2])
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if dump(p.act) != dump(p.sby) {
		t.Fatal("standby differs")
	}
	// 1 hop, 300 routes, 99 updates: route 0's update is in its own
	// creating transaction, whose Create already carries it.
	if len(seen) != 1+300+99 {
		t.Fatalf("subscriber saw %d changes, want 400", len(seen))
	}
}

// TestConcurrentGetAcrossPages reads IDs spread over several pages of the ID
// index from two goroutines at once, which both move its last-page cache
// under the read lock alone; run with -race.
func TestConcurrentGetAcrossPages(t *testing.T) {
	p := newPair(t, 0)
	hop := &NextHop{}
	tx, _ := p.act.Begin()
	_, _ = tx.Create(hop)
	const n = 5000
	for i := range n {
		r := &Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32), NextHop: hop}
		if _, err := tx.Create(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20000 {
				id := uint64(1 + (i*1031+g*2048)%(n+1))
				if _, ok := p.sby.Get(id); !ok {
					t.Errorf("object %d missing", id)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestGroupLenConcurrent reads Group.Len from another goroutine while the
// standby applies creates and deletes into the group; run with -race.
func TestGroupLenConcurrent(t *testing.T) {
	p := newPair(t, 0)
	g, err := p.act.NewGroup("vrf", "")
	if err != nil {
		t.Fatal(err)
	}
	first := &Route{}
	tx, _ := p.act.Begin()
	_, _ = tx.CreateIn(g, first)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	sg := p.sby.GroupByName("vrf")
	stop, done := make(chan struct{}), make(chan int)
	go func() {
		most := 0
		for {
			select {
			case <-stop:
				done <- most
				return
			default:
			}
			most = max(most, sg.Len(), g.Len())
		}
	}()
	var routes []*Route
	for i := 0; i < 200; i++ {
		tx, _ := p.act.Begin()
		r := &Route{Metric: uint32(i)}
		_, _ = tx.CreateIn(g, r)
		routes = append(routes, r)
		if i%3 == 2 {
			_ = tx.Delete(routes[0])
			routes = routes[1:]
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if most := <-done; most > 1+len(routes)+1 {
		t.Fatalf("Len saw %d objects, the group never held more than %d", most, 1+len(routes)+1)
	}
	if sg.Len() != 1+len(routes) || g.Len() != 1+len(routes) {
		t.Fatalf("Len: standby %d, active %d, want %d", sg.Len(), g.Len(), 1+len(routes))
	}
}

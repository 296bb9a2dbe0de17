package main

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/swha/swha"
	"github.com/swha/swha/objstore"
)

// NextHop and Route are the demo application's types.
type NextHop struct {
	Addr  netip.Addr
	Iface string
}

type Route struct {
	Prefix      netip.Prefix
	NextHop     *NextHop
	Metric      uint32
	Communities []uint32
}

func registry() (*objstore.Registry, error) {
	r := objstore.NewRegistry()
	if err := r.Register("nexthop", NextHop{}); err != nil {
		return nil, err
	}
	if err := r.Register("route", Route{}, objstore.WithIDPrefix("route")); err != nil {
		return nil, err
	}
	return r, nil
}

// routeVal is a route's replicated content, kept by the workload as its own
// record of what every acknowledged commit made the active hold.
type routeVal struct {
	nh     NextHop
	metric uint32
	comms  []uint32
}

func (a routeVal) equal(b routeVal) bool {
	return a.nh == b.nh && a.metric == b.metric && slices.Equal(a.comms, b.comms)
}

func valOf(r *Route) routeVal {
	v := routeVal{metric: r.Metric, comms: slices.Clone(r.Communities)}
	if r.NextHop != nil {
		v.nh = *r.NextHop
	}
	return v
}

// change is one route's before and after in a transaction (nil: absent).
type change struct {
	prefix        netip.Prefix
	before, after *routeVal
}

type txnRecord struct {
	n       int // churn transaction number
	changes []change
}

// workload is the demo's routing application: the objects it changes on the
// active (its own memory, which the Node replicates) and its model of what
// the active holds.
type workload struct {
	rng      *rand.Rand
	hops     []*NextHop
	routes   map[netip.Prefix]*Route
	prefixes []netip.Prefix // live prefixes, for picking
	model    map[netip.Prefix]routeVal
	next     int         // next prefix number to create
	tail     []txnRecord // committed, not known held by the standby (newest last)
}

func newWorkload(seed uint64) *workload {
	return &workload{rng: rand.New(rand.NewPCG(seed, 0x5eed)), routes: map[netip.Prefix]*Route{}, model: map[netip.Prefix]routeVal{}}
}

func (w *workload) newPrefix() netip.Prefix {
	i := w.next
	w.next++
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
}

func (w *workload) newRoute() *Route {
	return &Route{Prefix: w.newPrefix(), NextHop: w.hops[w.rng.IntN(len(w.hops))], Metric: uint32(w.rng.IntN(1000)),
		Communities: []uint32{65000<<16 | uint32(w.rng.IntN(100))}}
}

// load creates the next hops and routes in tx, and returns its record.
func (w *workload) load(tx *swha.Txn, hops, routes int) (txnRecord, error) {
	var rec txnRecord
	w.hops = make([]*NextHop, hops)
	for i := range w.hops {
		w.hops[i] = &NextHop{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), Iface: fmt.Sprintf("eth%d", i%4+1)}
		if _, err := tx.Create(w.hops[i]); err != nil {
			return rec, err
		}
	}
	for range routes {
		r := w.newRoute()
		if _, err := tx.Create(r); err != nil {
			return rec, err
		}
		w.routes[r.Prefix] = r
		v := valOf(r)
		w.model[r.Prefix] = v
		w.prefixes = append(w.prefixes, r.Prefix)
		rec.changes = append(rec.changes, change{r.Prefix, nil, &v})
	}
	return rec, nil
}

// churn puts ops route changes (updates, deletes, creates) in tx, applies
// them to the model, and returns the transaction's record.
func (w *workload) churn(tx *swha.Txn, n, ops int) (txnRecord, error) {
	rec := txnRecord{n: n}
	touched := map[netip.Prefix]bool{}
	for range ops {
		var p netip.Prefix
		switch k := w.rng.IntN(10); {
		case k < 6 && len(w.prefixes) > 0: // update
			p = w.prefixes[w.rng.IntN(len(w.prefixes))]
			if touched[p] {
				continue
			}
			r := w.routes[p]
			before := valOf(r)
			r.Metric = uint32(w.rng.IntN(1000))
			r.Communities = append(r.Communities[:0:0], 65000<<16|uint32(w.rng.IntN(100)), uint32(n))
			r.NextHop = w.hops[w.rng.IntN(len(w.hops))]
			if err := tx.Update(r); err != nil {
				return rec, err
			}
			after := valOf(r)
			rec.changes = append(rec.changes, change{p, &before, &after})
		case k < 8 && len(w.prefixes) > 0: // delete
			i := w.rng.IntN(len(w.prefixes))
			p = w.prefixes[i]
			if touched[p] {
				continue
			}
			before := valOf(w.routes[p])
			if err := tx.Delete(w.routes[p]); err != nil {
				return rec, err
			}
			delete(w.routes, p)
			w.prefixes[i] = w.prefixes[len(w.prefixes)-1]
			w.prefixes = w.prefixes[:len(w.prefixes)-1]
			rec.changes = append(rec.changes, change{p, &before, nil})
		default: // create
			r := w.newRoute()
			p = r.Prefix
			if _, err := tx.Create(r); err != nil {
				return rec, err
			}
			w.routes[p] = r
			w.prefixes = append(w.prefixes, p)
			after := valOf(r)
			rec.changes = append(rec.changes, change{p, nil, &after})
		}
		touched[p] = true
	}
	for _, c := range rec.changes {
		if c.after == nil {
			delete(w.model, c.prefix)
		} else {
			w.model[c.prefix] = *c.after
		}
	}
	return rec, nil
}

// verdict compares a node's routes with the model.
type verdict struct {
	routes int // routes on the node
	lost   int // > 0: acknowledged state missing (routes that differ)
	dups   int // duplicate prefixes on the node
	held   int // of the tail (committed, unacknowledged), how many the node holds
}

// routesOf reads the routes a node holds, by prefix.
func routesOf(n *swha.Node) (map[netip.Prefix]routeVal, int) {
	got := map[netip.Prefix]routeVal{}
	dups := 0
	n.Store().Each(func(_ uint64, obj any) bool {
		if r, ok := obj.(*Route); ok {
			if _, dup := got[r.Prefix]; dup {
				dups++
			}
			got[r.Prefix] = valOf(r)
		}
		return true
	})
	return got, dups
}

// verify checks that n holds the model's state after its last acknowledged
// commit, or after a later committed one that arrived whole: the model with
// the newest k transactions of the tail undone, for some k, and nothing
// else (no partial transaction).
func (w *workload) verify(n *swha.Node) verdict {
	got, dups := routesOf(n)
	v := verdict{routes: len(got), dups: dups}
	cand := maps.Clone(w.model)
	for k := 0; ; k++ { // k: newest tail transactions undone
		if dups == 0 && maps.EqualFunc(cand, got, routeVal.equal) {
			v.held = len(w.tail) - k
			return v
		}
		if k == len(w.tail) {
			break
		}
		rec := w.tail[len(w.tail)-1-k]
		for i := len(rec.changes) - 1; i >= 0; i-- {
			c := rec.changes[i]
			if c.before == nil {
				delete(cand, c.prefix)
			} else {
				cand[c.prefix] = *c.before
			}
		}
	}
	// cand is the last acknowledged state: count the routes that differ.
	for p, val := range cand {
		if g, ok := got[p]; !ok || !g.equal(val) {
			v.lost++
		}
	}
	for p := range got {
		if _, ok := cand[p]; !ok {
			v.lost++
		}
	}
	v.lost = max(1, v.lost)
	return v
}

// adopt makes the objects of n (a newly active node) the workload's: after
// a failover the application works on the promoted node's memory, whose
// state verify has checked; it is the model from here on.
func (w *workload) adopt(n *swha.Node) {
	w.hops, w.prefixes = nil, nil
	w.routes, w.model = map[netip.Prefix]*Route{}, map[netip.Prefix]routeVal{}
	w.tail = nil
	n.Store().Each(func(_ uint64, obj any) bool {
		switch o := obj.(type) {
		case *NextHop:
			w.hops = append(w.hops, o)
		case *Route:
			w.routes[o.Prefix] = o
			w.model[o.Prefix] = valOf(o)
			w.prefixes = append(w.prefixes, o.Prefix)
		}
		return true
	})
	// Map iteration order must not decide what the churn picks.
	slices.SortFunc(w.prefixes, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	slices.SortFunc(w.hops, func(a, b *NextHop) int { return a.Addr.Compare(b.Addr) })
}

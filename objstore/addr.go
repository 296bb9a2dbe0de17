package objstore

import (
	"fmt"
	"slices"
	"unsafe"
)

// addrIndex maps addresses back to the objects that hold them. The active's
// own indexes (byPtr, pages) exist only on the active and are maintained on
// every create; a checkpoint and the leak check need the mapping on either
// role, once, so they build this one from the slab when they start: a sorted
// array of address ranges searched by bisection. Only objects of types that
// some pointer can target are listed, which keeps it small (a million routes
// pointing at ten thousand next hops index ten thousand ranges).
//
// It is a refMapper, so values encode with it exactly as with the store, but
// it never touches s.refsTo: that is the open transaction's bookkeeping.
type addrIndex struct {
	ents  *entSlab
	spans []addrSpan
}

type addrSpan struct {
	base, end uintptr // the object's bytes; end > base even for zero-size types
	// maxEnd is the largest end among spans[:k+1]. Objects can nest (an
	// application may create an object that is a field of another one), so
	// the range holding an address is not always the last one starting
	// below it; maxEnd tells the backward scan when nothing earlier can
	// reach the address.
	maxEnd uintptr
	i      int32
}

// newAddrIndex indexes the committed objects of the types pointers can
// target. The caller holds s.mu (read or write) for as long as it uses the
// index: it refers to the slab.
func (s *Store) newAddrIndex() *addrIndex {
	targets := refTargets(s.reg)
	x := &addrIndex{ents: &s.ents}
	for i := range int32(s.ents.len()) {
		e := s.ents.at(i)
		if e.flags&fLive == 0 || e.flags&fPendingCreate != 0 || !targets[e.t.id] {
			continue
		}
		base := uintptr(e.ptr)
		x.spans = append(x.spans, addrSpan{base: base, end: base + max(e.t.rt.Size(), 1), i: i})
	}
	slices.SortFunc(x.spans, func(a, b addrSpan) int {
		switch {
		case a.base < b.base:
			return -1
		case a.base > b.base:
			return 1
		}
		return int(a.i - b.i)
	})
	var m uintptr
	for k := range x.spans {
		m = max(m, x.spans[k].end)
		x.spans[k].maxEnd = m
	}
	return x
}

// refTargets reports, by local type ID, which types a KindRef or
// KindInterior pointer of some registered type can point at.
func refTargets(r *Registry) []bool {
	out := make([]bool, len(r.types)+1)
	seen := map[*node]bool{}
	var walk func(n *node)
	walk = func(n *node) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		switch n.kind {
		case KindRef, KindInterior:
			if n.target != nil {
				out[n.target.id] = true
			}
		case KindArray, KindSlice:
			walk(n.elem)
		case KindMap:
			walk(n.key)
			walk(n.elem)
		case KindStruct:
			for _, f := range n.fields {
				walk(f.n)
			}
		}
	}
	for _, t := range r.types {
		walk(t.root)
	}
	return out
}

// exact returns the slab index of the object of type t that starts at p.
func (x *addrIndex) exact(p uintptr, t *typeInfo) (int32, bool) {
	k, _ := slices.BinarySearchFunc(x.spans, p, func(s addrSpan, p uintptr) int {
		switch {
		case s.base < p:
			return -1
		case s.base > p:
			return 1
		}
		return 0
	})
	for ; k < len(x.spans) && x.spans[k].base == p; k++ {
		if i := x.spans[k].i; x.ents.at(i).t == t {
			return i, true
		}
	}
	return 0, false
}

// containing returns the slab index of the object of type t whose bytes
// hold address a.
func (x *addrIndex) containing(a uintptr, t *typeInfo) (int32, bool) {
	// k: the first range starting above a.
	k, _ := slices.BinarySearchFunc(x.spans, a, func(s addrSpan, a uintptr) int {
		if s.base <= a {
			return -1
		}
		return 1
	})
	for j := k - 1; j >= 0 && x.spans[j].maxEnd > a; j-- {
		s := &x.spans[j]
		if a < s.end && x.ents.at(s.i).t == t {
			return s.i, true
		}
	}
	return 0, false
}

// refID maps a pointer to a whole object to its ID (refMapper).
func (x *addrIndex) refID(n *node, p unsafe.Pointer) (uint64, error) {
	i, ok := x.exact(uintptr(p), n.target)
	if !ok {
		return 0, fmt.Errorf("pointer to a %s that is not in the store (never created, or deleted): %w", n.target.name, ErrDangling)
	}
	return x.ents.at(i).id, nil
}

// interiorRef maps a pointer into an object to (ID, path) (refMapper).
func (x *addrIndex) interiorRef(n *node, p unsafe.Pointer, path []uint32) (uint64, []uint32, error) {
	a := uintptr(p)
	i, ok := x.containing(a, n.target)
	if !ok {
		return 0, nil, fmt.Errorf("pointer into a %s that is not in the store (never created, or deleted): %w", n.target.name, ErrDangling)
	}
	e := x.ents.at(i)
	off := a - uintptr(e.ptr)
	path, ok = pathTo(e.t.root, off, n.elem.rt, path)
	if !ok {
		return 0, nil, fmt.Errorf("pointer into %s %d at offset %d is not a replicated %v: %w", e.t.name, e.id, off, n.elem.rt, ErrDangling)
	}
	return e.id, path, nil
}

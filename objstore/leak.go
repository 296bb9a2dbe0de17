package objstore

import (
	"sort"
	"unsafe"
)

// Leak is a dynamic object that no root reaches.
type Leak struct {
	ID   uint64
	Type string // wire name
	Name string // as Store.Name would give it
}

// Leaks reports the dynamic objects that cannot be reached from a root, by
// ID. Roots are the static objects and every object in a group (a group is
// a table the application owns); from them the check follows every pointer
// (to an object, or into one of its fields or array elements) through
// every field, array, slice and map key and value. An object found is only
// reported, never freed: the store cannot know that the application holds
// no pointer of its own to it.
//
// It works on either role and judges the committed state: on an active the
// shadows (an object created by an open transaction is not counted, one it
// deletes still is), on a standby the mirror. It holds the read lock for
// one pass over the store.
func (s *Store) Leaks() []Leak {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := s.reachable()
	var out []Leak
	for i := range int32(s.ents.len()) {
		e := s.ents.at(i)
		if !s.committed(e) || seen[i] {
			continue
		}
		out = append(out, Leak{ID: e.id, Type: e.t.name, Name: s.nameLocked(e)})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

// LeakCount is len(Leaks()) without building the list: at a million
// unreachable objects (a plain RIB with no groups) the list, its names and
// its sort cost seconds, and a snapshot counts them while it holds the
// write path.
func (s *Store) LeakCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := s.reachable()
	n := 0
	for i := range int32(s.ents.len()) {
		if s.committed(s.ents.at(i)) && !seen[i] {
			n++
		}
	}
	return n
}

// reachable marks, by entry index, the objects a root reaches. The caller
// holds the read lock.
func (s *Store) reachable() []bool {
	x := s.newAddrIndex()
	w := leakWalk{s: s, x: x, seen: make([]bool, s.ents.len())}
	for i := range int32(s.ents.len()) {
		e := s.ents.at(i)
		if s.committed(e) && (e.flags&fStatic != 0 || e.group != 0) {
			w.reach(i)
		}
	}
	for len(w.stack) > 0 {
		i := w.stack[len(w.stack)-1]
		w.stack = w.stack[:len(w.stack)-1]
		e := s.ents.at(i)
		p := e.ptr
		if s.active {
			p = e.shadow
		}
		if p != nil {
			w.value(e.t.root, p)
		}
	}
	return w.seen
}

func (s *Store) committed(e *entry) bool {
	return e.flags&fLive != 0 && e.flags&fPendingCreate == 0
}

type leakWalk struct {
	s     *Store
	x     *addrIndex
	seen  []bool
	stack []int32
}

func (w *leakWalk) reach(i int32) {
	if !w.seen[i] {
		w.seen[i] = true
		w.stack = append(w.stack, i)
	}
}

// value marks the objects that the value of type n at p points to.
func (w *leakWalk) value(n *node, p unsafe.Pointer) { eachPointer(n, p, w.pointer) }

// pointer marks the object that ptr, held by a node n, points to or into.
func (w *leakWalk) pointer(n *node, ptr unsafe.Pointer) {
	var i int32
	var ok bool
	if n.kind == KindRef {
		i, ok = w.x.exact(uintptr(ptr), n.target)
	} else {
		i, ok = w.x.containing(uintptr(ptr), n.target)
	}
	// A pointer to an object no longer in the store dangles; that is a
	// different fault, and reaches nothing here.
	if ok {
		w.reach(i)
	}
}

package objstore

import (
	"fmt"
	"reflect"
	"strconv"
	"unsafe"
)

// Incoming pointer counts
//
// A Delete of an object that a committed object still points to would leave
// that pointer dangling on both nodes: on the active in the shadow (so every
// later Save fails), on the standby in the mirror. Finding the referrers of
// a deleted object by looking would cost a pass over the store per commit;
// a reverse index, a list of referrers per object, would cost memory per
// pointer. The active instead counts, for each object, the pointers to it
// (or into it) that the committed state holds, that is, that the shadows
// hold. The counts sit in an address index of their own, Store.targets,
// which lists only the objects of types a pointer can target (next hops,
// not routes), so that it stays small and in cache however many routes
// point into it; they change only where the shadows change: at commit, for
// the fields the commit copies into them and the objects it deletes, and
// only for the fields that can hold a pointer at all (a metric changed
// costs nothing). Promote counts every shadow once, as it builds them.
//
// At commit, a deleted object whose count is not zero is looked at more
// closely: the pointers to it that the transaction itself removes (fields
// it rewrites, objects it deletes) are tallied, and if some remain the
// commit fails with ErrDangling. Only then, for a commit about to be refused,
// is the store scanned, to name the object and field still pointing; a scan
// that finds none (the count drifted) lets the commit go on. A static's
// registered value, pointing at an object created only later, is counted
// when that object is (countStatic).

type refOp uint8

const (
	refAdd   refOp = iota // count the pointers of a value now in a shadow
	refSub                // uncount those of a value leaving a shadow
	refTally              // tally, in s.tally, those to objects of interest
	refProbe              // set s.probeMissed at a pointer to no object of the store
	refLate               // count those to objects the committing transaction created
)

// walkRefs applies op to every pointer to an object in the value of type n
// at p. The caller holds s.mu (active role).
func (s *Store) walkRefs(n *node, p unsafe.Pointer, op refOp) {
	eachPointer(n, p, func(n *node, ptr unsafe.Pointer) { s.countRef(n, ptr, op) })
}

// eachPointer calls visit with every non-nil object pointer (KindRef or
// KindInterior) in the value of type n at p, and the node that holds it,
// descending only into the parts of the value that can hold one. The pointer
// count and the leak check walk values with it.
func eachPointer(n *node, p unsafe.Pointer, visit func(n *node, ptr unsafe.Pointer)) {
	if !n.hasRefs {
		return
	}
	switch n.kind {
	case KindRef, KindInterior:
		if ptr := *(*unsafe.Pointer)(p); ptr != nil {
			visit(n, ptr)
		}
	case KindStruct:
		for _, f := range n.refFields {
			eachPointer(f.n, add(p, f.off), visit)
		}
	case KindArray:
		for i := 0; i < n.length; i++ {
			eachPointer(n.elem, add(p, uintptr(i)*n.elem.size), visit)
		}
	case KindSlice:
		h := (*sliceHdr)(p)
		for i := 0; i < h.len; i++ {
			eachPointer(n.elem, add(h.data, uintptr(i)*n.elem.size), visit)
		}
	case KindMap:
		mv := reflect.NewAt(n.rt, p).Elem()
		if mv.Len() == 0 {
			return
		}
		k := reflect.New(n.key.rt).Elem()
		v := reflect.New(n.elem.rt).Elem()
		for it := mv.MapRange(); it.Next(); {
			k.SetIterKey(it)
			v.SetIterValue(it)
			eachPointer(n.key, k.Addr().UnsafePointer(), visit)
			eachPointer(n.elem, v.Addr().UnsafePointer(), visit)
		}
	}
}

// targetOf returns the slab index of the object a pointer of node n at ptr
// targets, if it is in the store.
func (s *Store) targetOf(n *node, ptr unsafe.Pointer) (int32, bool) {
	if n.kind == KindRef {
		return s.byPtr.get(ptr)
	}
	return s.containing(uintptr(ptr), n.target)
}

// containing returns the slab index of the object of type t whose bytes hold
// address a (the active's page index).
func (s *Store) containing(a uintptr, t *typeInfo) (int32, bool) {
	for _, i := range s.pages[a>>pageShift] {
		e := s.ents.at(i)
		base := uintptr(e.ptr)
		if e.t == t && a >= base && a < base+e.t.rt.Size() {
			return i, true
		}
	}
	return 0, false
}

func (s *Store) countRef(n *node, ptr unsafe.Pointer, op refOp) {
	var sl *ptrSlot
	if n.kind == KindRef {
		sl = s.targets.find(ptr)
	} else if i, ok := s.containing(uintptr(ptr), n.target); ok {
		sl = s.targets.find(s.ents.at(i).ptr)
	}
	if sl == nil {
		// Not in the store: a static's registered value may point anywhere.
		if op == refProbe {
			s.probeMissed = true
		}
		return
	}
	switch op {
	case refLate:
		if f := s.ents.at(sl.val).flags; f&fPendingCreate == 0 || f&fPendingDelete != 0 {
			return
		}
		sl.refs++
	case refAdd:
		sl.refs++
	case refSub:
		if sl.refs > 0 {
			sl.refs--
		}
	case refTally:
		if c, ok := s.tally[sl.val]; ok {
			s.tally[sl.val] = c + 1
		}
	}
}

// countShadow counts (op refAdd) or uncounts (refSub) every pointer in the
// shadow of entry i.
func (s *Store) countShadow(i int32, op refOp) {
	if e := s.ents.at(i); e.shadow != nil && e.t.root.hasRefs {
		s.walkRefs(e.t.root, e.shadow, op)
	}
}

// countStatic counts the pointers of static i's shadow as it registers, and
// lists it in s.lateStatics if some point at no object yet: the registered
// value of a static may point at an object the application creates later,
// which the count must then include (countLate) until the static's first
// commit makes its shadow one whose every pointer was counted.
func (s *Store) countStatic(i int32) {
	s.countShadow(i, refAdd)
	s.probeMissed = false
	s.countShadow(i, refProbe)
	if s.probeMissed {
		s.lateStatics = append(s.lateStatics, i)
	}
}

// countLate counts, at a successful commit and before its shadow writes,
// the pointers of the uncommitted statics to the objects it creates.
func (s *Store) countLate() {
	keep := s.lateStatics[:0]
	for _, i := range s.lateStatics {
		if s.ents.at(i).flags&fStale == 0 {
			continue // committed since: counted like any other
		}
		s.countShadow(i, refLate)
		keep = append(keep, i)
	}
	s.lateStatics = keep
}

// eachDeleted calls fn for every committed object the open transaction
// deletes (an object in a deleted group and deleted alone comes twice).
func (s *Store) eachDeleted(fn func(i int32)) {
	for k := range s.ops {
		o := &s.ops[k]
		switch o.kind {
		case opDelete:
			if s.ents.at(o.ent).flags&fPendingCreate == 0 {
				fn(o.ent)
			}
		case opDeleteGroup:
			for i := o.g.head; i >= 0; i = s.ents.at(i).gnext {
				if f := s.ents.at(i).flags; f&fPendingDelete != 0 && f&fPendingCreate == 0 {
					fn(i)
				}
			}
		}
	}
}

// checkDeletes fails the open transaction, once encoded, if it deletes an
// object that a committed object would still point to after it.
func (s *Store) checkDeletes() error {
	doomed := s.doomed[:0]
	s.eachDeleted(func(i int32) {
		if e := s.ents.at(i); e.t.refTarget {
			if sl := s.targets.find(e.ptr); sl != nil && sl.refs > 0 {
				doomed = append(doomed, i)
			}
		}
	})
	s.doomed = doomed
	if len(doomed) == 0 {
		return nil
	}
	// Tally the pointers to them that the transaction removes from the
	// committed state: in the fields it rewrites and in the objects it
	// deletes (each once).
	if s.tally == nil {
		s.tally = map[int32]int32{}
	}
	clear(s.tally)
	for _, i := range doomed {
		s.tally[i] = 0
	}
	for _, c := range s.shadowCopies {
		e := s.ents.at(c.ent)
		switch {
		case c.field == fieldFresh:
		case c.field < 0:
			s.walkRefs(e.t.root, e.shadow, refTally)
		default:
			f := e.t.root.fields[c.field]
			s.walkRefs(f.n, add(e.shadow, f.off), refTally)
		}
	}
	s.eachDeleted(func(i int32) {
		if e := s.ents.at(i); e.flags&fTallied == 0 {
			e.flags |= fTallied
			s.countShadow(i, refTally)
		}
	})
	s.eachDeleted(func(i int32) { s.ents.at(i).flags &^= fTallied })
	for _, i := range doomed {
		e := s.ents.at(i)
		if s.targets.find(e.ptr).refs <= s.tally[i] {
			continue
		}
		if err := s.referrerError(i); err != nil {
			return err
		}
	}
	return nil
}

// referrerError names a committed object that would still point at entry
// d after the open transaction: one the transaction keeps, through a field
// it does not rewrite. It scans the store, which only a commit about to be
// refused pays for; nil means there is none.
func (s *Store) referrerError(d int32) error {
	type entField struct {
		ent   int32
		field int
	}
	rewritten := map[entField]bool{}
	for _, c := range s.shadowCopies {
		rewritten[entField{c.ent, c.field}] = true
	}
	de := s.ents.at(d)
	for i := range int32(s.ents.len()) {
		e := s.ents.at(i)
		if e.flags&fLive == 0 || e.flags&(fPendingCreate|fPendingDelete) != 0 || e.shadow == nil || !e.t.root.hasRefs ||
			rewritten[entField{i, -1}] {
			continue
		}
		for k, f := range e.t.root.fields {
			if !f.n.hasRefs || rewritten[entField{i, k}] {
				continue
			}
			if path, ok := s.refPathTo(f.n, add(e.shadow, f.off), d); ok {
				return fmt.Errorf("delete %s %d, which %s %d still points to (field %s): %w",
					de.t.name, de.id, e.t.name, e.id, prependStep(f.name, path), ErrDangling)
			}
		}
	}
	return nil
}

// refPathTo returns the path, within the value of type n at p, of a pointer
// to (or into) the object of entry d.
func (s *Store) refPathTo(n *node, p unsafe.Pointer, d int32) (string, bool) {
	if !n.hasRefs {
		return "", false
	}
	switch n.kind {
	case KindRef, KindInterior:
		ptr := *(*unsafe.Pointer)(p)
		if ptr == nil {
			return "", false
		}
		i, ok := s.targetOf(n, ptr)
		return "", ok && i == d
	case KindStruct:
		for _, f := range n.fields {
			if path, ok := s.refPathTo(f.n, add(p, f.off), d); ok {
				return prependStep(f.name, path), true
			}
		}
	case KindArray:
		for i := 0; i < n.length; i++ {
			if path, ok := s.refPathTo(n.elem, add(p, uintptr(i)*n.elem.size), d); ok {
				return prependStep("["+strconv.Itoa(i)+"]", path), true
			}
		}
	case KindSlice:
		h := (*sliceHdr)(p)
		for i := 0; i < h.len; i++ {
			if path, ok := s.refPathTo(n.elem, add(h.data, uintptr(i)*n.elem.size), d); ok {
				return prependStep("["+strconv.Itoa(i)+"]", path), true
			}
		}
	case KindMap:
		mv := reflect.NewAt(n.rt, p).Elem()
		k := reflect.New(n.key.rt).Elem()
		v := reflect.New(n.elem.rt).Elem()
		for it := mv.MapRange(); it.Next(); {
			k.SetIterKey(it)
			v.SetIterValue(it)
			if path, ok := s.refPathTo(n.key, k.Addr().UnsafePointer(), d); ok {
				return prependStep("[key "+mapKey(k)+"]", path), true
			}
			if path, ok := s.refPathTo(n.elem, v.Addr().UnsafePointer(), d); ok {
				return prependStep("["+mapKey(k)+"]", path), true
			}
		}
	}
	return "", false
}

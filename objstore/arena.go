package objstore

import (
	"errors"
	"fmt"
	"math/bits"
	"reflect"
	"strings"
	"sync/atomic"
	"unsafe"
)

// Arena allocation and page-level dirty tracking (docs/OBJSTORE-ARENA.md).
//
// Objects of a type registered with InArena live in memory the store maps
// itself, so that the kernel can say which of its pages were written since
// the last Sync and Sync diffs only the objects on those pages, instead of
// every object of the store. Such a type holds no Go pointers: the garbage
// collector does not scan that memory.

// Errors of arenas.
var (
	ErrArenaLive    = errors.New("arena still holds live objects")
	ErrNotInArena   = errors.New("not an allocated object of this arena")
	ErrArenaInStore = errors.New("arena object still in the store")
)

// InArena makes the objects of the type live in an arena of each store
// (ArenaOf), where Sync finds the changed ones from the pages the kernel
// reports written. The type must hold no Go pointers (no strings, slices,
// maps, pointers, netip or time values): refer to other objects by ID, and
// use fixed-size arrays for names and lists.
func InArena() TypeOption { return func(t *typeInfo) { t.arena = true } }

// arenaLayout reports the first part of rt that would hide a Go pointer
// from the garbage collector in memory it does not scan.
func arenaLayout(rt reflect.Type, path string) error {
	switch rt.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return nil
	case reflect.Array:
		return arenaLayout(rt.Elem(), path+"[]")
	case reflect.Struct:
		for i := range rt.NumField() {
			f := rt.Field(i)
			if err := arenaLayout(f.Type, strings.TrimPrefix(path+"."+f.Name, ".")); err != nil {
				return err
			}
		}
		return nil
	}
	if path == "" {
		path = rt.String()
	}
	return fmt.Errorf("field %s is a %v, which holds a Go pointer (arena memory is not scanned by the garbage collector: use IDs and fixed-size arrays): %w", path, rt, ErrUnsupported)
}

// Handle names an arena object compactly, for the application's own
// indexes: 4 bytes of slot and 4 of generation, so that a handle kept past
// the object's deletion resolves to nil instead of to the object that
// reuses its memory. A handle is local to one store: the standby places
// the same object elsewhere, so replicated fields refer to objects by ID.
type Handle uint64

const (
	slotHeld  = -1 // owner: allocated, not in the store
	slotFree  = -2 // owner: not allocated
	slotLimbo = -3 // owner: deleted by Apply, free from the next step on

	arenaMinRegion = 64 << 10
	arenaMaxRegion = 1 << 30
	// arenaMaxRegions bounds the region table, which readers index without
	// a lock (At): regions double up to 1 GiB, so this is tens of GiB.
	arenaMaxRegions = 64

	// defaultScanRatio is the share of an arena's pages written above which
	// Sync diffs all its objects rather than those on the written pages:
	// measured here, past about 30 % the full diff is the cheaper one.
	defaultScanRatio = 0.3
)

// arenaRegion is one mapping of an arena. Regions never move, and are
// unmapped only when the store closes with none of their objects alive.
type arenaRegion struct {
	mem    []byte
	base   uintptr
	first  int32 // arena-wide number of its first slot
	n      int32 // slots
	used   int32 // slots ever handed out: the part Sync scans
	mapped bool  // mmap'd (tracked) rather than on the Go heap
	owner  []int32
	// gen counts allocations and frees of each slot: odd while allocated.
	// Atomic because At and Handle read it outside the write path.
	gen []atomic.Uint32
}

// arena holds the objects of one InArena type of one store. The write path
// (New, Free, commits, Apply) changes it under the store's lock, or as the
// standby's single applier; readers only find regions and generations.
type arena struct {
	t       *typeInfo
	slot    uintptr
	regs    [arenaMaxRegions]atomic.Pointer[arenaRegion]
	nregs   atomic.Int32
	free    []int32
	limbo   []int32 // freed by Apply, reusable from the next step on (removeForGood)
	live    int
	heap    bool // Config.ArenaHeap
	closed  bool
	hint    int
	ranges  []pageRange // Sync scratch
	lastRun syncRun     // what the last Sync of this arena did (tests, benchmarks)
	// fullNext: the next Sync diffs every object, because written pages were
	// scanned (and protected again) by a transaction that then failed, or
	// objects were marked stale.
	fullNext bool
	// redo lists the slots (arena-wide) whose page a Sync protected again
	// while their objects had already been encoded by an earlier operation
	// of the same transaction (a Create, an Update, another Sync): that
	// Sync consumed the page's mark without reading the object after it,
	// so a write between the encoding and the scan would otherwise never
	// be sent. The next Sync diffs them whatever their pages say.
	redo, redoSpare []int32
}

type pageRange struct {
	lo, hi uintptr
	reg    *arenaRegion
}

// syncRun says what one Sync did with an arena.
type syncRun struct {
	pages, usedPages int
	full             bool
}

func (a *arena) region(k int32) *arenaRegion {
	n := a.nregs.Load()
	for j := range n {
		r := a.regs[j].Load()
		if k >= r.first && k < r.first+r.n {
			return r
		}
	}
	return nil
}

// slotOf returns the region and slot of the object at p, if p is the start
// of a slot of a.
func (a *arena) slotOf(p unsafe.Pointer) (*arenaRegion, int32, bool) {
	x := uintptr(p)
	n := a.nregs.Load()
	for j := range n {
		r := a.regs[j].Load()
		if x >= r.base && x < r.base+uintptr(r.n)*a.slot {
			off := x - r.base
			if off%a.slot != 0 {
				return nil, 0, false
			}
			return r, int32(off / a.slot), true
		}
	}
	return nil, 0, false
}

func (a *arena) addr(r *arenaRegion, k int32) unsafe.Pointer {
	return unsafe.Add(unsafe.Pointer(unsafe.SliceData(r.mem)), uintptr(k)*a.slot)
}

// grow adds a region twice the size of the last one (the first is sized for
// Config.SizeHint objects), so that a growing arena maps a few times, and no
// object ever moves.
func (a *arena) grow(s *Store) (*arenaRegion, error) {
	n := a.nregs.Load()
	if n == arenaMaxRegions {
		return nil, fmt.Errorf("objstore: arena of %s: %d regions, all full", a.t.name, n)
	}
	size := uintptr(arenaMinRegion)
	if n > 0 {
		last := a.regs[n-1].Load()
		size = min(uintptr(len(last.mem))*2, arenaMaxRegion)
	} else if a.hint > 0 {
		size = min(max(uintptr(a.hint)*a.slot, size), arenaMaxRegion)
	}
	size = max(size, a.slot)
	size = (size + 4095) &^ 4095
	r := &arenaRegion{}
	if !a.heap {
		if mem, err := mapRegion(size); err == nil {
			r.mem, r.mapped = mem, true
		}
	}
	if r.mem == nil {
		// The Go heap does not move objects either: only the tracking is lost.
		buf := make([]uint64, size/8)
		r.mem = unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), size)
	}
	r.base = uintptr(unsafe.Pointer(&r.mem[0]))
	if r.mapped && s.track != nil {
		if err := s.track.register(r.base, size); err != nil {
			s.stopTracking(err)
		}
	}
	if n > 0 {
		last := a.regs[n-1].Load()
		r.first = last.first + last.n
	}
	r.n = int32(size / a.slot)
	r.owner = make([]int32, r.n)
	for k := range r.owner {
		r.owner[k] = slotFree
	}
	r.gen = make([]atomic.Uint32, r.n)
	a.regs[n].Store(r)
	a.nregs.Store(n + 1)
	return r, nil
}

// alloc returns a zeroed slot, marked held (allocated, not in the store).
func (a *arena) alloc(s *Store) (unsafe.Pointer, error) {
	if a.closed {
		return nil, fmt.Errorf("objstore: arena of %s: store closed", a.t.name)
	}
	var r *arenaRegion
	var k int32
	if n := len(a.free); n > 0 {
		g := a.free[n-1]
		a.free = a.free[:n-1]
		r = a.region(g)
		k = g - r.first
		// Plain stores: never MADV_FREE, whose reclaimed pages would read
		// back as zeros without being reported written.
		clear(unsafe.Slice((*byte)(a.addr(r, k)), a.slot))
	} else {
		if n := a.nregs.Load(); n > 0 {
			r = a.regs[n-1].Load()
		}
		if r == nil || r.used == r.n {
			var err error
			if r, err = a.grow(s); err != nil {
				return nil, err
			}
		}
		k = r.used
		r.used++
	}
	r.owner[k] = slotHeld
	r.gen[k].Add(1)
	a.live++
	return a.addr(r, k), nil
}

func (a *arena) freeSlot(r *arenaRegion, k int32) {
	r.owner[k] = slotFree
	r.gen[k].Add(1)
	a.free = append(a.free, r.first+k)
	a.live--
}

// flushLimbo makes the slots Apply freed reusable.
func (a *arena) flushLimbo() {
	for _, g := range a.limbo {
		r := a.region(g)
		a.freeSlot(r, g-r.first)
	}
	a.limbo = a.limbo[:0]
}

func (a *arena) usedPages() int {
	n := 0
	for j := range a.nregs.Load() {
		r := a.regs[j].Load()
		n += int((uintptr(r.used)*a.slot + 4095) >> pageShift)
	}
	return n
}

// initArenas gives each InArena type an arena and, unless told otherwise,
// opens the kernel's dirty tracking; where the kernel lacks it, Sync diffs
// every object as for heap objects, and DirtyTracking says why.
func (s *Store) initArenas() {
	for _, t := range s.reg.types {
		if !t.arena {
			continue
		}
		if s.arenas == nil {
			s.arenas = make([]*arena, len(s.reg.types))
		}
		s.arenas[t.id-1] = &arena{t: t, slot: t.rt.Size(), heap: s.cfg.ArenaHeap, hint: s.cfg.SizeHint}
	}
	if s.arenas == nil {
		return
	}
	switch {
	case s.cfg.ArenaHeap:
		s.trackWhy = "Config.ArenaHeap: arenas on the Go heap"
	case s.cfg.ArenaFullScan:
		s.trackWhy = "Config.ArenaFullScan"
	default:
		t, err := newTracker()
		if err != nil {
			s.trackWhy = "kernel: " + err.Error()
			return
		}
		s.track = t
	}
	s.scanRatio = s.cfg.ArenaScanRatio
	if s.scanRatio <= 0 {
		s.scanRatio = defaultScanRatio
	}
}

// stopTracking falls back to diffing every object for good: the kernel
// refused something it had accepted at construction.
func (s *Store) stopTracking(err error) {
	if s.track == nil {
		return
	}
	s.track.close()
	s.track = nil
	s.trackWhy = "kernel: " + err.Error()
}

// DirtyTracking reports whether Sync learns from the kernel which arena
// pages were written (true), or diffs every object; if not, why.
func (s *Store) DirtyTracking() (bool, string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.track != nil, s.trackWhy
}

// DirtyTracking is Store.DirtyTracking. Any goroutine; not inside Read,
// ReadWith or Each.
func (v *View) DirtyTracking() (bool, string) { return v.s.DirtyTracking() }

// arenaOf returns the arena that holds the object at p, and its slot.
func (s *Store) arenaOf(t *typeInfo, p unsafe.Pointer) (*arena, *arenaRegion, int32, bool) {
	if s.arenas == nil || !t.arena {
		return nil, nil, 0, false
	}
	a := s.arenas[t.id-1]
	r, k, ok := a.slotOf(p)
	return a, r, k, ok
}

// arenaCreate checks that an arena-typed object about to be created is not
// a freed slot (its memory may be another object's by now).
func (s *Store) arenaCreate(t *typeInfo, p unsafe.Pointer) error {
	if _, r, k, ok := s.arenaOf(t, p); ok && r.owner[k] < slotHeld {
		return fmt.Errorf("%s at %p: freed: %w", t.name, p, ErrNotInArena)
	}
	return nil
}

// indexArena notes, at insert, which entry an arena slot holds, and keeps
// the list of the entries Sync must diff one by one (heapBits).
func (s *Store) indexArena(i int32, g *Group) {
	if s.arenas == nil {
		return
	}
	e := s.ents.at(i)
	if a, r, k, ok := s.arenaOf(e.t, e.ptr); ok {
		r.owner[k] = i
		e.flags |= fArena
		if e.flags&fStale != 0 {
			a.fullNext = true
		}
		return
	}
	w := int(i >> 6)
	for len(s.heapBits) <= w {
		s.heapBits = append(s.heapBits, 0)
	}
	s.heapBits[w] |= 1 << (i & 63)
	if g != nil {
		g.heapN++
	}
}

func (s *Store) unindexArena(i int32) {
	if s.arenas == nil {
		return
	}
	e := s.ents.at(i)
	if e.flags&fArena != 0 {
		_, r, k, _ := s.arenaOf(e.t, e.ptr)
		r.owner[k] = slotHeld
		return
	}
	s.heapBits[i>>6] &^= 1 << (i & 63)
	if g := s.groups[e.group]; e.group != 0 && g != nil {
		g.heapN--
	}
}

// removeForGood removes entry i: a committed delete. An arena object's
// slot is freed with it; on a standby only from the next Apply on, since
// subscribers are handed the deleted object after this one.
func (s *Store) removeForGood(i int32) {
	e := s.ents.at(i)
	if e.flags&fArena == 0 {
		s.remove(i)
		return
	}
	a, r, k, _ := s.arenaOf(e.t, e.ptr)
	s.remove(i)
	if s.active {
		a.freeSlot(r, k)
	} else {
		r.owner[k] = slotLimbo
		a.limbo = append(a.limbo, r.first+k)
	}
}

// staleArena makes the next Sync diff every object of e's arena: e's shadow
// no longer says what the peer holds, and e may be on a clean page.
func (s *Store) staleArena(e *entry) {
	if e.flags&fArena != 0 {
		s.arenas[e.t.id-1].fullNext = true
	}
}

// newObject allocates an object of type t for Apply: in t's arena if it has
// one (falling back to the heap if the arena cannot grow, an object on the
// heap being merely untracked).
//
// It takes the store's lock: Apply stages a step without it, and readers
// (Len, DirtyTracking) look at what an allocation changes, a region's
// growth included.
func (s *Store) newObject(t *typeInfo) unsafe.Pointer {
	if s.arenas != nil && t.arena {
		s.mu.Lock()
		p, err := s.arenas[t.id-1].alloc(s)
		s.mu.Unlock()
		if err == nil {
			s.applying.arenaNew = append(s.applying.arenaNew, arenaObj{t, p})
			return p
		}
	}
	return reflect.New(t.rt).UnsafePointer()
}

type arenaObj struct {
	t *typeInfo
	p unsafe.Pointer
}

// releaseStray frees the arena objects Apply allocated for a step that did
// not enter the store (the step failed, or created an ID twice).
func (s *Store) releaseStray() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.applying.arenaNew {
		a, r, k, ok := s.arenaOf(o.t, o.p)
		if ok && r.owner[k] == slotHeld {
			a.freeSlot(r, k)
		}
	}
	clear(s.applying.arenaNew)
	s.applying.arenaNew = s.applying.arenaNew[:0]
}

// flushArenaLimbo makes the slots Apply freed reusable. The caller holds
// s.mu.
func (s *Store) flushArenaLimbo() {
	for _, a := range s.arenas {
		if a != nil {
			a.flushLimbo()
		}
	}
}

// Close releases the store's kernel dirty tracking and unmaps its arenas,
// unless an object still lives in one (in the store, allocated and not
// freed, or deleted by the last Apply of a standby, whose subscribers were
// handed it): then the memory stays mapped, for pointers the application
// may still hold, and Close fails with ErrArenaLive. A store without arena
// types has nothing to release. After Close the store still answers reads
// and commits, with Sync diffing every object; New fails once the arenas
// are unmapped.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.track != nil {
		s.track.close()
		s.track = nil
		s.trackWhy = "store closed"
	}
	var busy []string
	for _, a := range s.arenas {
		if a == nil || a.live == 0 {
			continue
		}
		// Slots the last Apply freed are not flushed: its subscribers are
		// handed the deleted objects and may still be reading them (a
		// Node's subscriber may run on while the Node closes).
		msg := fmt.Sprintf("%d %s", a.live, a.t.name)
		if n := len(a.limbo); n > 0 {
			msg += fmt.Sprintf(" (%d deleted by the last Apply, which its subscribers may still hold)", n)
		}
		busy = append(busy, msg)
	}
	if busy != nil {
		return fmt.Errorf("objstore: close: %s: %w", strings.Join(busy, ", "), ErrArenaLive)
	}
	var errs []error
	for _, a := range s.arenas {
		if a == nil || a.closed {
			continue
		}
		a.closed = true
		for j := range a.nregs.Load() {
			if r := a.regs[j].Load(); r.mapped {
				if err := unmapRegion(r.mem); err != nil {
					errs = append(errs, fmt.Errorf("objstore: close: unmap arena of %s: %w", a.t.name, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// syncAll is a Sync of every object: the heap objects one by one, and of
// each arena the objects on the pages written since the last Sync.
func (s *Store) syncAll(txn uint64) error {
	if s.track == nil {
		for i := range int32(s.ents.len()) {
			if err := s.syncEntry(txn, i); err != nil {
				return err
			}
		}
		return nil
	}
	for w, word := range s.heapBits {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			word &= word - 1
			if err := s.syncEntry(txn, int32(w<<6+b)); err != nil {
				return err
			}
		}
	}
	return s.syncArenas(txn, nil)
}

// syncGroupAll is a Sync of the objects of g.
func (s *Store) syncGroupAll(txn uint64, g *Group) error {
	if s.track == nil {
		for i := g.head; i >= 0; i = s.ents.at(i).gnext {
			if err := s.syncEntry(txn, i); err != nil {
				return err
			}
		}
		return nil
	}
	if g.heapN > 0 {
		for i := g.head; i >= 0; i = s.ents.at(i).gnext {
			if s.ents.at(i).flags&fArena != 0 {
				continue
			}
			if err := s.syncEntry(txn, i); err != nil {
				return err
			}
		}
	}
	return s.syncArenas(txn, g)
}

func (s *Store) syncArenas(txn uint64, g *Group) error {
	for _, a := range s.arenas {
		if a != nil {
			if err := s.syncArena(txn, a, g); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncArena diffs the objects of a (of group g only, if g is not nil) on
// the pages written since the last Sync. The order matters: the scan
// protects the pages again before their objects are read, so that a write
// racing the diff is reported by the next scan. A SyncGroup leaves the
// pages as they are, for the Sync that handles the objects of other groups
// on them.
func (s *Store) syncArena(txn uint64, a *arena, g *Group) error {
	protect := g == nil
	run := syncRun{usedPages: a.usedPages(), full: a.fullNext || s.track == nil}
	a.ranges = a.ranges[:0]
	// consumed: this scan protects written pages again, so an object on
	// them encoded earlier in this transaction goes to redo.
	consumed := protect && s.track != nil
	var redo []int32
	if consumed {
		redo, a.redo = a.redo, a.redoSpare[:0]
		defer func() { a.redoSpare = redo[:0] }()
	}
	if s.track != nil {
		// Past this many written pages the full diff is the cheaper: the
		// scan stops there, and the rest is protected in one call each.
		limit := int(s.scanRatio*float64(run.usedPages)) + 1
		over := false
		for j := range a.nregs.Load() {
			r := a.regs[j].Load()
			if r.used == 0 || !r.mapped {
				run.full = run.full || r.used > 0
				continue
			}
			hi := r.base + (uintptr(r.used)*a.slot+4095)&^4095
			var err error
			if over {
				if protect {
					err = s.track.protect(r.base, hi-r.base)
				}
			} else {
				over, err = s.track.scan(r.base, hi, protect, max(limit-run.pages, 1), func(lo, hi uintptr) {
					a.ranges = append(a.ranges, pageRange{lo, hi, r})
					run.pages += int((hi - lo) >> pageShift)
				})
				if over && protect && err == nil {
					err = s.track.protect(r.base, hi-r.base)
				}
			}
			if err != nil {
				s.stopTracking(err)
				run.full = true
				break
			}
		}
		run.full = run.full || over
		if protect {
			// A failed commit puts it back (rollback).
			s.arenaScanned = true
			a.fullNext = false
		}
	}
	if float64(run.pages) > s.scanRatio*float64(run.usedPages) {
		run.full = true
	}
	a.lastRun = run
	if run.full {
		for j := range a.nregs.Load() {
			r := a.regs[j].Load()
			if err := s.syncSlots(txn, a, r, 0, r.used-1, g, consumed); err != nil {
				return err
			}
		}
		return nil
	}
	var last *arenaRegion
	lastK := int32(-1)
	for _, pr := range a.ranges {
		r := pr.reg
		k0 := int32((pr.lo - r.base) / a.slot)
		k1 := min(int32((pr.hi-1-r.base)/a.slot), r.used-1)
		if r == last && k0 <= lastK {
			k0 = lastK + 1 // straddles the previous run
		}
		if err := s.syncSlots(txn, a, r, k0, k1, g, consumed); err != nil {
			return err
		}
		last, lastK = r, k1
	}
	// After the scan, like the objects of the written pages.
	for _, k := range redo {
		r := a.region(k)
		if err := s.syncSlots(txn, a, r, k-r.first, k-r.first, nil, true); err != nil {
			return err
		}
	}
	return nil
}

// syncSlots diffs the objects in slots k0 to k1 of r that are in the store
// (and in g, if not nil). consumed: their pages were just protected again,
// so one this transaction already encoded goes to a.redo.
func (s *Store) syncSlots(txn uint64, a *arena, r *arenaRegion, k0, k1 int32, g *Group, consumed bool) error {
	for k := k0; k <= k1; k++ {
		i := r.owner[k]
		if i < 0 {
			continue
		}
		e := s.ents.at(i)
		if g != nil && e.group != g.id {
			continue
		}
		if consumed && e.flags&fEncoded != 0 {
			a.redo = append(a.redo, r.first+k)
			continue
		}
		if err := s.syncEntry(txn, i); err != nil {
			return err
		}
	}
	return nil
}

// snapBuf holds the copies of the arena objects a commit encodes: what is
// sent and what becomes the shadow must be the same bytes, read once,
// since a writer may race a Sync (and the next Sync then sends the rest).
// Arena types hold no pointers, so untyped words do.
type snapBuf struct {
	chunks [][]uint64
	k, off int
}

func (b *snapBuf) copyOf(p unsafe.Pointer, size uintptr) unsafe.Pointer {
	w := int((size + 7) / 8)
	for b.k < len(b.chunks) && len(b.chunks[b.k])-b.off < w {
		b.k++
		b.off = 0
	}
	if b.k == len(b.chunks) {
		b.chunks = append(b.chunks, make([]uint64, max(w, 8192)))
		b.off = 0
	}
	dst := unsafe.Pointer(&b.chunks[b.k][b.off])
	b.off += w
	copy(unsafe.Slice((*byte)(dst), size), unsafe.Slice((*byte)(p), size))
	return dst
}

func (b *snapBuf) reset() {
	if len(b.chunks) > 16 {
		b.chunks = b.chunks[:16] // what one huge Sync needed
	}
	b.k, b.off = 0, 0
}

// Arena is the typed handle on a store's arena of T (a type registered with
// InArena). New, Free and the transactions belong to the store's write
// path; Handle and At may also be used by readers (inside Read on a
// standby).
type Arena[T any] struct {
	s *Store
	a *arena
}

// ArenaOf returns the store's arena for T. Every call returns an equal
// handle on the same arena.
func ArenaOf[T any](v *View) (*Arena[T], error) {
	s := v.s
	rt := reflect.TypeFor[T]()
	t := s.reg.byType[rt]
	if t == nil {
		return nil, fmt.Errorf("objstore: arena of %v: %w", rt, ErrUnregistered)
	}
	if !t.arena {
		return nil, fmt.Errorf("objstore: arena of %s: not registered with InArena: %w", t.name, ErrUnsupported)
	}
	return &Arena[T]{s: s, a: s.arenas[t.id-1]}, nil
}

// New returns a zeroed T in the arena. It is the application's until a
// transaction creates it, then the store's: the commit that deletes it
// frees its memory, after which the pointer must not be used. One that is
// never created (or whose create was aborted) goes back with Free.
func (x *Arena[T]) New() (*T, error) {
	s := x.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		return nil, fmt.Errorf("objstore: new %s: %w", x.a.t.name, ErrNotActive)
	}
	p, err := x.a.alloc(s)
	if err != nil {
		return nil, err
	}
	return (*T)(p), nil
}

// Free gives back an object New returned that is not in the store.
func (x *Arena[T]) Free(p *T) error {
	s := x.s
	s.mu.Lock()
	defer s.mu.Unlock()
	r, k, ok := x.a.slotOf(unsafe.Pointer(p))
	if !ok || r.owner[k] < slotHeld {
		return fmt.Errorf("objstore: free %s at %p: %w", x.a.t.name, p, ErrNotInArena)
	}
	if i := r.owner[k]; i >= 0 {
		return fmt.Errorf("objstore: free %s %d: delete it in a transaction: %w", x.a.t.name, s.ents.at(i).id, ErrArenaInStore)
	}
	x.a.freeSlot(r, k)
	return nil
}

// Handle returns the handle of p, an allocated object of the arena.
func (x *Arena[T]) Handle(p *T) (Handle, bool) {
	r, k, ok := x.a.slotOf(unsafe.Pointer(p))
	if !ok {
		return 0, false
	}
	g := r.gen[k].Load()
	if g&1 == 0 {
		return 0, false
	}
	return Handle(uint64(g)<<32 | uint64(r.first+k+1)), true
}

// At returns the object h names, or nil if it was freed since.
func (x *Arena[T]) At(h Handle) *T {
	g := int32(uint32(h)) - 1
	if g < 0 {
		return nil
	}
	r := x.a.region(g)
	if r == nil || r.gen[g-r.first].Load() != uint32(h>>32) {
		return nil
	}
	return (*T)(x.a.addr(r, g-r.first))
}

// Len returns the number of allocated objects (in the store or not).
func (x *Arena[T]) Len() int {
	s := x.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	return x.a.live
}

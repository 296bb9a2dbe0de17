package objstore

import (
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Errors of the store. Returned errors wrap one of these (errors.Is) and say
// which object, type or transaction was at fault.
var (
	ErrUnknownObject = errors.New("object not in the store (never created, or deleted)")
	ErrDeleted       = errors.New("object deleted in this transaction")
	ErrExists        = errors.New("object already in the store")
	ErrDangling      = errors.New("dangling pointer")
	ErrTxnDone       = errors.New("transaction already committed or aborted")
	ErrTxnOpen       = errors.New("another transaction is open")
	ErrTxnTooLarge   = errors.New("transaction too large")
	ErrNotActive     = errors.New("store is a standby")
	ErrNotStandby    = errors.New("store is active")
	ErrSeqGap        = errors.New("commit sequence gap")
	ErrStatic        = errors.New("static object")
	ErrSink          = errors.New("record sink failed")
)

// DefaultMaxTxnBytes bounds a transaction's encoded records when
// Config.MaxTxnBytes is zero.
const DefaultMaxTxnBytes = 64 << 20

// Config configures a Store.
type Config struct {
	// Sink receives the records of every commit (active role). Nil discards.
	Sink RecordSink
	// Standby makes the store a replica: it accepts Apply and refuses Begin
	// until Promote.
	Standby bool
	// MaxTxnBytes bounds one transaction's records, on both sides; a larger
	// transaction fails with ErrTxnTooLarge and changes nothing.
	MaxTxnBytes int
	// SizeHint, if positive, is how many objects the store expects to hold
	// (a switch knows its table sizes). The slab and the address index are
	// allocated for that many at once, and their memory faulted in: growing
	// the index while a million routes arrive rehashes it about twice over,
	// which is most of the cost of a create on a growing store. The store's
	// memory is then committed from the start, used or not.
	SizeHint int
	// FirstTxnID: transaction IDs start above it. A node seeds it from its
	// epoch so that the IDs of one incarnation (snapshot IDs among them,
	// which the standby's acks name) are never reused by the next, and a
	// stale ack from an earlier stream cannot match a new snapshot.
	FirstTxnID uint64
	// DeferNotify: Apply queues what it applied and the owner delivers it
	// to subscribers and the message handler with Notify, once it has
	// released its own locks, so that a handler may call back into the
	// owner (a Node's handler may promote it).
	DeferNotify bool
	// ArenaFullScan makes Sync diff every arena object, as for heap objects,
	// instead of asking the kernel which pages were written: the fallback
	// where the kernel lacks the tracking, forced (tests, comparisons).
	ArenaFullScan bool
	// ArenaHeap places arenas on the Go heap, untracked (so ArenaFullScan
	// too): memory the race detector sees, which mmap'd memory is not.
	ArenaHeap bool
	// ArenaScanRatio is the share of an arena's pages written above which
	// Sync diffs all its objects rather than those on the written pages
	// (0: 0.3, where the two were measured to cost about the same).
	ArenaScanRatio float64
}

const (
	fLive          = 1 << iota
	fStatic        // registered by name, never created or deleted by records
	fPendingCreate // created by the open transaction
	fPendingDelete // deleted by the open transaction
	fStale         // shadow unknown: the next diff sends every field
	fEncoded       // encoded by the transaction being committed
	fTallied       // checkDeletes: this deleted object's pointers are tallied
	// fAbsent: the peer does not hold the object (it refused the commit
	// that created it): its next record is a Create with every field, and
	// a Delete sends nothing.
	fAbsent
	fCreateSent // absent, and sent as a Create by the transaction being committed
	fArena      // the object lives in its type's arena (arena.go)
)

// entry is the store's bookkeeping for one object. Entries live by value in a
// slab so that the store costs one small, pointer-light record per object
// and a full scan walks memory in order.
type entry struct {
	id  uint64
	ptr unsafe.Pointer // the application's object
	// shadow is the active's typed deep copy of what the peer holds; a
	// standby keeps none. The address index keeps a copy of it too, so that
	// an update fetches entry and shadow in parallel, not one after the other.
	shadow unsafe.Pointer
	t      *typeInfo
	group  uint32
	gprev  int32
	gnext  int32
	flags  uint32
}

// Group is a set of dynamic objects that can be synced, subscribed to or
// deleted as a unit.
type Group struct {
	id     uint32
	name   string
	prefix string
	head   int32
	// n is written under the store's lock, and atomic so that Len may be
	// called with no lock (a nested read lock can deadlock).
	n    atomic.Int64
	view GroupView // what View.GroupByName hands out
	// heapN counts the members outside arenas, which a SyncGroup diffs one
	// by one (arena members are found from written pages).
	heapN int
}

// Name returns the group's name. It never changes: safe from any goroutine.
func (g *Group) Name() string { return g.name }

// Len returns the number of objects in the group. It is safe from any
// goroutine, at any time (inside Read and subscriber callbacks too). Inside
// Read, Each or a subscriber callback the count is that of the state they
// see; elsewhere, on a standby, it may count a transaction being applied in
// part. On the active it includes the objects that the open transaction
// has created in the group, and those it deletes until it commits.
func (g *Group) Len() int { return int(g.n.Load()) }

// Store holds registered objects. An active store turns transactions into
// records; a standby store (Config.Standby) applies them. The write path
// (Begin…Commit on the active, Apply on the standby) is meant for one
// goroutine; Read, Get and Each may run concurrently with it.
type Store struct {
	reg *Registry
	cfg Config

	mu    sync.RWMutex
	ents  entSlab
	free  []int32
	byID  idIndex
	byPtr *ptrIndex // active role only: what Update(obj) looks up
	// targets is the active's address index of the objects of types a
	// pointer can target, with their incoming pointer counts (refcount.go).
	targets *ptrIndex
	// sbyPtrs is a standby's address index, for IDOf: built by the first
	// lookup (under the read lock, so sbyPtrsMu orders builders), then kept
	// by insert and remove under the write lock.
	sbyPtrs   atomic.Pointer[slabIndex]
	sbyPtrsMu sync.Mutex
	pages     map[uintptr][]int32 // active role: address index of interior-pointer targets
	nobj      int
	touch     byte // sink for loads made only to start a cache miss early

	groups       map[uint32]*Group
	groupsByName map[string]*Group
	// regroup: a demoted store awaiting its first snapshot sets the Group
	// records it is sent aside here, for that snapshot to install
	// (demote.go); nil otherwise.
	regroup map[uint32]*Group

	active  bool
	nextID  uint64
	nextGrp uint32
	nextTxn uint64
	seq     uint64
	txnOpen bool // a transaction is open; its ID is nextTxn

	// Every schema is announced at once, at the first record of a stream
	// (see announceSchemas): schemasSent once emitted on this stream,
	// schemasQueued while the open transaction's head holds them.
	schemasSent   bool
	schemasQueued bool
	groupSent     map[uint32]bool

	// Commit scratch, reused so that the steady state does not allocate.
	ops      []op
	pre      []byte
	recs     []byte
	ends     []int
	head     []byte
	headEnds []int
	changed  []int
	touched  []int32
	// shadowCopies are the shadow writes of the transaction being encoded,
	// made only once all of it encoded: snapshots, checkpoints and repairs
	// are encoded from the shadows, so a failed commit must leave them as
	// they were.
	shadowCopies []shadowCopy
	// refsTo lists the targets of the open transaction's messages, which
	// are encoded when made: a later Delete of one fails the commit.
	// Records encoded at commit check their targets as they go.
	refsTo   []int32
	noteRefs bool // encoding a message: refID and interiorRef fill refsTo
	// checkDeletes scratch: deleted objects still pointed to, and the
	// pointers to them the transaction removes (refcount.go).
	doomed []int32
	tally  map[int32]int32
	// lateStatics are the uncommitted statics whose registered values
	// point at objects not in the store (countStatic); probeMissed is
	// countStatic's scratch.
	lateStatics []int32
	probeMissed bool
	newGrps     []uint32
	// recreated lists the absent objects the transaction being committed
	// sends as Creates; absentSeen says some object may be marked absent.
	recreated  []int32
	absentSeen bool

	// Standby side.
	peerTypes  map[uint64]*peerType // by the peer's type ID
	peerByName map[string]*peerType // by wire name: interior paths need the target's map
	staged     map[uint64]*stagedTxn
	stFree     []*stagedTxn
	held       []heldTxn // committed, waiting behind an incomplete coordinated transaction
	applied    uint64    // seq of the last commit applied (or failed), <= seq
	awaitSnap  bool      // drop transactional records until a Snapshot starts
	snapTxn    uint64    // the snapshot the standby's state derives from; 0: none
	applying   applyState
	// subs, in subscription order, is replaced, never changed in place, so
	// Notify can take it under the lock and call it without.
	subs    []subscription
	nextSub int
	onMsg   func(name string, msg any)

	coord coordMark // the open transaction's part in a coordinated one

	snapDangling    int       // pointers the last snapshot sent as nil (snapMapper)
	lastCkptTxn     uint64    // active: the snapshot ID of the last checkpoint saved
	refusals        []Refusal // standby: committed transactions not applied, oldest first
	refusalsDropped uint64

	// Arenas (arena.go): by type ID - 1, nil for heap types; nil if the
	// registry has no InArena type.
	arenas []*arena
	// track is the kernel's page dirty tracking; nil: Sync diffs every
	// object, for the reason in trackWhy.
	track     *tracker
	trackWhy  string
	scanRatio float64
	// heapBits marks the entries outside arenas, which a tracked Sync
	// diffs one by one.
	heapBits     []uint64
	arenaScanned bool    // the open transaction protected written pages again
	snaps        snapBuf // copies of the arena objects being encoded
	// beforeOp, if set (tests only), runs before a commit encodes its
	// k-th operation: where a racing writer may strike.
	beforeOp func(k int)

	view View // what View returns
}

// NewStore returns a store for the types of r, sealing r.
func NewStore(r *Registry, cfg Config) (*Store, error) {
	if err := r.Seal(); err != nil {
		return nil, err
	}
	if cfg.MaxTxnBytes <= 0 {
		cfg.MaxTxnBytes = DefaultMaxTxnBytes
	}
	if cfg.Sink == nil {
		cfg.Sink = Discard
	}
	s := &Store{
		reg:          r,
		cfg:          cfg,
		groups:       map[uint32]*Group{},
		groupsByName: map[string]*Group{},
		active:       !cfg.Standby,
		nextID:       1,
		nextTxn:      cfg.FirstTxnID,
		groupSent:    map[uint32]bool{},
		peerTypes:    map[uint64]*peerType{},
		peerByName:   map[string]*peerType{},
		staged:       map[uint64]*stagedTxn{},
	}
	s.view.s = s
	s.initArenas()
	if cfg.SizeHint > 0 {
		s.ents.reserve(cfg.SizeHint)
	}
	if s.active {
		s.byPtr = newPtrIndex(cfg.SizeHint)
		s.targets = newPtrIndex(0)
		s.pages = map[uintptr][]int32{}
	}
	return s, nil
}

// Registry returns the store's registry.
func (s *Store) Registry() *Registry { return s.reg }

// IsActive reports whether the store takes transactions (true) or applies
// records (false).
func (s *Store) IsActive() bool { return s.active }

// Seq returns the sequence number of the last commit made (active) or applied
// (standby).
func (s *Store) Seq() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.seq
}

// Len returns the number of objects, static ones included.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nobj
}

// objOf checks that obj is a non-nil pointer to a registered type and returns
// its address without going through reflect.Value.
func (s *Store) objOf(obj any) (*typeInfo, unsafe.Pointer, error) {
	rt := reflect.TypeOf(obj)
	if rt == nil || rt.Kind() != reflect.Pointer {
		return nil, nil, fmt.Errorf("objstore: %T is not a pointer to a registered struct: %w", obj, ErrUnregistered)
	}
	t := s.reg.byType[rt.Elem()]
	if t == nil {
		return nil, nil, fmt.Errorf("objstore: type %v: %w", rt.Elem(), ErrUnregistered)
	}
	p := (*[2]unsafe.Pointer)(unsafe.Pointer(&obj))[1]
	if p == nil {
		return nil, nil, fmt.Errorf("objstore: nil %T", obj)
	}
	return t, p, nil
}

// StaticID is the ID of the static object registered as name, the same on
// every node.
func StaticID(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64() | 1<<63
}

// RegisterStatic adds obj, a long-lived root such as a configuration or table
// header, under name. Both nodes register their own static objects under the
// same names; records then address them by StaticID(name). The first update
// after registration sends every field, since the peer's copy is unknown.
func (s *Store) RegisterStatic(name string, obj any) error {
	t, p, err := s.objOf(obj)
	if err != nil {
		return fmt.Errorf("objstore: static %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.txnOpen {
		return fmt.Errorf("objstore: static %q: %w", name, ErrTxnOpen)
	}
	id := StaticID(name)
	if _, dup := s.byID.get(id); dup {
		return fmt.Errorf("objstore: static %q: %w", name, ErrExists)
	}
	if s.byPtr != nil {
		if _, dup := s.byPtr.get(p); dup {
			return fmt.Errorf("objstore: static %q: %w", name, ErrExists)
		}
	}
	if x := s.sbyPtrs.Load(); x != nil {
		if _, dup := x.get(p); dup {
			return fmt.Errorf("objstore: static %q: %w", name, ErrExists)
		}
	}
	i := s.insert(id, t, p, nil, fLive|fStatic|fStale)
	if s.active {
		s.ents.at(i).shadow = newShadow(t, p)
		s.byPtr.setShadow(p, s.ents.at(i).shadow)
		s.countStatic(i)
	}
	return nil
}

// NewGroup creates a group. prefix, if not empty, names its objects (Name).
func (s *Store) NewGroup(name, prefix string) (*Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		return nil, fmt.Errorf("objstore: group %q: %w", name, ErrNotActive)
	}
	if _, dup := s.groupsByName[name]; dup {
		return nil, fmt.Errorf("objstore: group %q: %w", name, ErrExists)
	}
	s.nextGrp++
	return s.addGroup(s.nextGrp, name, prefix), nil
}

func (s *Store) addGroup(id uint32, name, prefix string) *Group {
	g := &Group{id: id, name: name, prefix: prefix, head: -1}
	g.view.g = g
	s.groups[id] = g
	s.groupsByName[name] = g
	return g
}

// removeGroup forgets group g, and its name unless another group took it.
func (s *Store) removeGroup(g *Group) {
	delete(s.groups, g.id)
	if s.groupsByName[g.name] == g {
		delete(s.groupsByName, g.name)
	}
}

// GroupByName returns the group called name (on a standby, as announced by
// the active), or nil.
func (s *Store) GroupByName(name string) *Group {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.groupsByName[name]
}

// insert adds an entry and indexes it; the caller holds s.mu.
func (s *Store) insert(id uint64, t *typeInfo, p unsafe.Pointer, g *Group, flags uint32) int32 {
	var i int32
	if k := len(s.free); k > 0 {
		i = s.free[k-1]
		s.free = s.free[:k-1]
	} else {
		i = s.ents.add()
	}
	*s.ents.at(i) = entry{id: id, ptr: p, t: t, flags: flags, gprev: -1, gnext: -1}
	s.byID.set(id, i)
	if s.byPtr != nil {
		s.byPtr.set(p, i)
		if t.interiorOf {
			s.indexPages(i, true)
		}
		if t.refTarget {
			s.targets.set(p, i)
		}
	} else if x := s.sbyPtrs.Load(); x != nil {
		x.set(i)
	}
	if g != nil {
		e := s.ents.at(i)
		e.group = g.id
		e.gnext = g.head
		if g.head >= 0 {
			s.ents.at(g.head).gprev = i
		}
		g.head = i
		g.n.Add(1)
	}
	s.indexArena(i, g)
	s.nobj++
	return i
}

// remove drops entry i from every index; the caller holds s.mu.
func (s *Store) remove(i int32) {
	s.unindexArena(i)
	e := s.ents.at(i)
	s.byID.del(e.id)
	if s.byPtr != nil {
		s.byPtr.del(e.ptr)
		if e.t.interiorOf {
			s.indexPages(i, false)
		}
		if e.t.refTarget {
			s.targets.del(e.ptr)
		}
	} else if x := s.sbyPtrs.Load(); x != nil {
		x.del(i)
	}
	if g := s.groups[e.group]; e.group != 0 && g != nil {
		if e.gprev >= 0 {
			s.ents.at(e.gprev).gnext = e.gnext
		} else {
			g.head = e.gnext
		}
		if e.gnext >= 0 {
			s.ents.at(e.gnext).gprev = e.gprev
		}
		g.n.Add(-1)
	}
	*e = entry{}
	s.free = append(s.free, i)
	s.nobj--
}

const pageShift = 12

// indexPages adds or removes entry i in the address index that maps an
// interior pointer back to its object: the object is listed under every 4 KiB
// page it overlaps, so a lookup is one map probe and a short scan.
func (s *Store) indexPages(i int32, add bool) {
	e := s.ents.at(i)
	lo := uintptr(e.ptr) >> pageShift
	hi := (uintptr(e.ptr) + max(e.t.rt.Size(), 1) - 1) >> pageShift
	for pg := lo; pg <= hi; pg++ {
		l := s.pages[pg]
		if add {
			s.pages[pg] = append(l, i)
			continue
		}
		for k, j := range l {
			if j == i {
				l[k] = l[len(l)-1]
				l = l[:len(l)-1]
				break
			}
		}
		if len(l) == 0 {
			delete(s.pages, pg)
		} else {
			s.pages[pg] = l
		}
	}
}

func newShadow(t *typeInfo, src unsafe.Pointer) unsafe.Pointer {
	p := reflect.New(t.rt).UnsafePointer()
	copyValue(t.root, p, src)
	return p
}

// refID maps a pointer to a whole object to its ID (refMapper).
func (s *Store) refID(n *node, p unsafe.Pointer) (uint64, error) {
	i, ok := s.byPtr.get(p)
	if !ok {
		return 0, fmt.Errorf("pointer to a %s that is not in the store (never created, or deleted): %w", n.target.name, ErrDangling)
	}
	e := s.ents.at(i)
	if e.t != n.target {
		return 0, fmt.Errorf("pointer to %s %d is typed *%s: %w", e.t.name, e.id, n.target.name, ErrDangling)
	}
	if e.flags&fPendingDelete != 0 {
		return 0, fmt.Errorf("pointer to %s %d, deleted in this transaction: %w", e.t.name, e.id, ErrDangling)
	}
	if s.noteRefs {
		s.refsTo = append(s.refsTo, i)
	}
	return e.id, nil
}

// interiorRef maps a pointer into an object to (ID, path) (refMapper).
func (s *Store) interiorRef(n *node, p unsafe.Pointer, path []uint32) (uint64, []uint32, error) {
	a := uintptr(p)
	i, ok := s.containing(a, n.target)
	if !ok {
		return 0, nil, fmt.Errorf("pointer into a %s that is not in the store (never created, or deleted): %w", n.target.name, ErrDangling)
	}
	e := s.ents.at(i)
	off := a - uintptr(e.ptr)
	path, ok = pathTo(e.t.root, off, n.elem.rt, path)
	if !ok {
		return 0, nil, fmt.Errorf("pointer into %s %d at offset %d is not a replicated %v: %w", e.t.name, e.id, off, n.elem.rt, ErrDangling)
	}
	if e.flags&fPendingDelete != 0 {
		return 0, nil, fmt.Errorf("pointer into %s %d, deleted in this transaction: %w", e.t.name, e.id, ErrDangling)
	}
	if s.noteRefs {
		s.refsTo = append(s.refsTo, i)
	}
	return e.id, path, nil
}

// Get returns the object with the given ID. On a standby, read it only inside
// Read or a subscriber callback: Apply writes objects in place. It takes the
// read lock: not inside Read or Each (see View for who may call what).
func (s *Store) Get(id uint64) (any, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.getLocked(id)
}

func (s *Store) getLocked(id uint64) (any, bool) {
	i, ok := s.byID.get(id)
	if !ok || s.ents.at(i).flags&fPendingCreate != 0 {
		return nil, false
	}
	e := s.ents.at(i)
	return reflect.NewAt(e.t.rt, e.ptr).Interface(), true
}

// IDOf returns the ID of obj, on either role; on the active, objects the
// open transaction created have theirs too. A standby builds its address
// index on the first call (8 to 16 bytes per object) and keeps it after.
// It takes the read lock: not inside Read or Each.
func (s *Store) IDOf(obj any) (uint64, bool) {
	_, p, err := s.objOf(obj)
	if err != nil {
		return 0, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.slabOf(p)
	if !ok {
		return 0, false
	}
	return s.ents.at(i).id, true
}

// idOfLocked is IDOf for committed objects only (View); the caller holds
// s.mu.
func (s *Store) idOfLocked(obj any) (uint64, bool) {
	_, p, err := s.objOf(obj)
	if err != nil {
		return 0, false
	}
	i, ok := s.slabOf(p)
	if !ok || s.ents.at(i).flags&fPendingCreate != 0 {
		return 0, false
	}
	return s.ents.at(i).id, true
}

// slabOf finds the entry of the object at p; the caller holds s.mu (read or
// write).
func (s *Store) slabOf(p unsafe.Pointer) (int32, bool) {
	if s.byPtr != nil {
		return s.byPtr.get(p)
	}
	x := s.sbyPtrs.Load()
	if x == nil {
		// No writer runs while the caller holds s.mu; other readers may
		// build too, so builders take turns.
		s.sbyPtrsMu.Lock()
		if x = s.sbyPtrs.Load(); x == nil {
			x = newSlabIndex(&s.ents, s.nobj)
			for i := range int32(s.ents.len()) {
				if s.ents.at(i).flags&fLive != 0 {
					x.set(i)
				}
			}
			s.sbyPtrs.Store(x)
		}
		s.sbyPtrsMu.Unlock()
	}
	return x.get(p)
}

// Each calls fn for every committed object until fn returns false, holding
// the read lock: fn must not call any method of the store (a nested read
// lock deadlocks against a waiting writer).
func (s *Store) Each(fn func(id uint64, obj any) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.eachLocked(fn)
}

func (s *Store) eachLocked(fn func(id uint64, obj any) bool) {
	for i := range int32(s.ents.len()) {
		e := s.ents.at(i)
		if e.flags&fLive == 0 || e.flags&fPendingCreate != 0 {
			continue
		}
		if !fn(e.id, reflect.NewAt(e.t.rt, e.ptr).Interface()) {
			return
		}
	}
}

// Read runs fn under the store's read lock, so that a standby application
// sees no transaction half-applied. Like Each, fn must not call the store;
// View.ReadWith hands fn lookups that it may use.
func (s *Store) Read(fn func()) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn()
}

// Name returns the display name of an object: its group's or type's ID
// prefix and its ID ("route-42"), or the bare ID without a prefix.
func (s *Store) Name(id uint64) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nameOfLocked(id)
}

func (s *Store) nameOfLocked(id uint64) string {
	if i, ok := s.byID.get(id); ok {
		return s.nameLocked(s.ents.at(i))
	}
	return strconv.FormatUint(id, 10)
}

// nameLocked is Store.Name for an entry; the caller holds s.mu.
func (s *Store) nameLocked(e *entry) string {
	prefix := e.t.prefix
	if g := s.groups[e.group]; e.group != 0 && g != nil && g.prefix != "" {
		prefix = g.prefix
	}
	if prefix == "" {
		return strconv.FormatUint(e.id, 10)
	}
	return prefix + "-" + strconv.FormatUint(e.id, 10)
}

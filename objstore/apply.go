package objstore

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"unsafe"
)

// Op says what happened to an object in a Change.
type Op uint8

const (
	OpCreate Op = iota + 1
	OpUpdate
	OpDelete
	// OpReset: a snapshot replaced the whole mirror; the creates of its
	// objects follow. A subscriber that keeps derived state (a warm FIB)
	// drops what it has not seen again by the end of the transaction.
	OpReset
)

func (o Op) String() string {
	switch o {
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	case OpReset:
		return "reset"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Change is one applied change, as told to subscribers of a standby store.
type Change struct {
	Txn    uint64
	Op     Op
	ID     uint64
	Type   string
	Group  string // "" when the object is in no group
	Object any    // pointer to the object; for OpDelete, the removed object
}

// stagedTxn holds a transaction's records until its Commit arrives.
type stagedTxn struct {
	id       uint64
	data     []byte
	ends     []int
	failed   error
	snapshot bool // begins with a Snapshot record
}

// applyState is the standby's per-commit scratch, reused across commits.
type applyState struct {
	overlay overlayTab // this step's creates and deletes, by ID
	refs    []noteRef
	paths   []uint32
	changes []Change
	msgs    []any
	// snapshot: the transaction being validated replaces every dynamic
	// object, so the store's own dynamic objects do not exist for it.
	snapshot bool
	// objs holds the objects the step creates, allocated before validation
	// so that validation decodes each Create straight into its object (the
	// object is not in the store yet, so no reader sees it) and pointers to
	// objects created later in the step resolve. A step that fails leaves
	// them to the collector, or, in an arena, to releaseStray, which is why
	// arenaNew lists those.
	objs     overlayTab
	arenaNew []arenaObj
	// staging: references resolved while validating are also noted, to be
	// checked against the state at the end of the step.
	staging bool
}

type overlayObj struct {
	t       *typeInfo
	ptr     unsafe.Pointer // applying.objs: the new object
	deleted bool
	static  bool
}

type noteRef struct {
	n    *node
	id   uint64
	path int // paths[path:path+plen]
	plen int
}

type subscription struct {
	id int
	fn func(Change)
}

// Subscribe calls fn for every change applied on this standby store, in
// order, after each transaction (or step of coordinated transactions) is
// applied: on the goroutine that calls Apply, or with Config.DeferNotify the
// one that calls Notify, with no lock of the store held. What fn may do is
// what Notify says: read any object, and call the View's methods (Get,
// IDOf, Read, ReadWith, Each, Subscribe…); not Apply or Notify. It returns
// a function that cancels the subscription; a subscription made or
// cancelled during a delivery takes effect from the next one.
func (s *Store) Subscribe(fn func(Change)) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextSub++
	id := s.nextSub
	s.subs = append(slices.Clip(s.subs), subscription{id, fn})
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.subs = slices.DeleteFunc(slices.Clone(s.subs), func(x subscription) bool { return x.id == id })
	}
}

// SubscribeGroup is Subscribe restricted to the objects of the group called
// name (as announced by the active), for a standby application that mirrors
// one table, such as one VRF's routes.
func (s *Store) SubscribeGroup(name string, fn func(Change)) (cancel func()) {
	return s.Subscribe(func(c Change) {
		if c.Group == name {
			fn(c)
		}
	})
}

// OnMessage sets the handler of opaque messages (Txn.Message), called in
// order when their transaction is applied, with the wire name of the type
// and a pointer to a freshly decoded value, after the subscribers and under
// the same rules (see Notify).
func (s *Store) OnMessage(fn func(name string, msg any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onMsg = fn
}

// parseGroupRec reads a Group record's fields after its kind byte; a group
// ID outside 1..2^32-1 fails d.
func parseGroupRec(d *decoder) (id uint32, name, prefix string) {
	v := d.uvarint()
	name, prefix = d.str(), d.str()
	if d.err == nil && (v == 0 || v > 1<<32-1) {
		d.fail("bad group ID")
	}
	return uint32(v), name, prefix
}

// Apply takes one record from the active's stream. Schema and Group records
// take effect at once; transaction records are staged; a Commit record
// applies its transaction atomically: on error nothing of it is applied, and
// the error names the transaction and the record at fault.
func (s *Store) Apply(rec []byte) error {
	if s.active {
		return fmt.Errorf("objstore: apply: %w", ErrNotStandby)
	}
	d := decoder{b: rec}
	kind := d.byte()
	switch kind {
	case recSchema:
		return s.applySchema(&d)
	case recGroup:
		id, name, prefix := parseGroupRec(&d)
		if d.err != nil {
			return fmt.Errorf("objstore: apply group record: %w", d.err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.regroup != nil {
			return s.setAsideGroup(id, name, prefix)
		}
		if g := s.groups[id]; g != nil {
			if g.name != name {
				return fmt.Errorf("objstore: apply group %d %q: already named %q: %w", id, name, g.name, ErrCorrupt)
			}
			return nil
		}
		if g := s.groupsByName[name]; g != nil {
			return fmt.Errorf("objstore: apply group %d %q: name used by group %d: %w", id, name, g.id, ErrCorrupt)
		}
		s.addGroup(id, name, prefix)
		return nil
	case recCreate, recUpdate, recDelete, recDeleteGroup, recMessage, recIntent, recAbort, recCommit, recCoord, recSnapshot:
	default:
		if d.err != nil {
			return fmt.Errorf("objstore: apply: %w", d.err)
		}
		return fmt.Errorf("objstore: apply: record kind %d: %w", kind, ErrCorrupt)
	}
	txn := d.uvarint()
	if d.err != nil {
		return fmt.Errorf("objstore: apply: %w", d.err)
	}
	st := s.staged[txn]
	if kind == recSnapshot {
		// A snapshot supersedes whatever was staged or held: it is the
		// sender's whole committed state. The type announcements stay: the
		// snapshot's own come just before it.
		s.mu.Lock()
		s.dropPending()
		s.awaitSnap = false
		s.mu.Unlock()
		st = s.newStaged(txn)
		st.snapshot = true
		s.staged[txn] = st
	} else if s.awaitSnap {
		return nil
	}
	switch kind {
	case recAbort:
		delete(s.staged, txn)
		s.release(st)
		return nil
	case recCommit:
		seq, n := d.uvarint(), d.uvarint()
		if d.err == nil && d.pos != len(rec) {
			d.fail("trailing bytes")
		}
		if d.err != nil {
			return fmt.Errorf("objstore: apply commit of txn %d: %w", txn, d.err)
		}
		delete(s.staged, txn)
		snap := st != nil && st.snapshot
		if !snap && seq != s.Seq()+1 {
			s.release(st)
			return fmt.Errorf("objstore: apply commit of txn %d: seq %d after %d: %w", txn, seq, s.Seq(), ErrSeqGap)
		}
		// A transaction that fails still consumes its sequence number: the
		// active committed it, and the next commit follows it.
		s.mu.Lock()
		s.seq = seq
		s.mu.Unlock()
		if st == nil {
			st = s.newStaged(txn)
		}
		var err error
		if st.failed != nil {
			err = fmt.Errorf("objstore: apply txn %d: %w", txn, st.failed)
		} else if uint64(len(st.ends)) != n {
			err = fmt.Errorf("objstore: apply txn %d: %d records staged, commit says %d: %w", txn, len(st.ends), n, ErrCorrupt)
		}
		if err != nil {
			if len(s.held) == 0 {
				s.setApplied(seq)
			}
			s.refuse(seq, txn, snap, err)
			s.release(st)
			return err
		}
		if snap {
			defer s.release(st)
			err := s.applyTxns([]*stagedTxn{st})
			s.setApplied(seq)
			if err != nil {
				s.refuse(seq, txn, true, err)
			}
			if err == nil {
				s.mu.Lock()
				s.snapTxn = txn
				s.mu.Unlock()
			}
			return err
		}
		return s.commitHeld(st, seq)
	}
	if st == nil {
		st = s.newStaged(txn)
		s.staged[txn] = st
	}
	if st.failed != nil {
		return nil
	}
	if len(st.data)+len(rec) > s.cfg.MaxTxnBytes && !st.snapshot {
		st.failed = fmt.Errorf("more than %d bytes of records: %w", s.cfg.MaxTxnBytes, ErrTxnTooLarge)
		st.data, st.ends = nil, nil
		return fmt.Errorf("objstore: apply txn %d: %w", txn, st.failed)
	}
	st.data = append(st.data, rec...)
	st.ends = append(st.ends, len(st.data))
	return nil
}

// newStaged returns an empty staging buffer, reusing a released one: a
// steady stream of transactions then stages without allocating.
func (s *Store) newStaged(txn uint64) *stagedTxn {
	if k := len(s.stFree); k > 0 {
		st := s.stFree[k-1]
		s.stFree = s.stFree[:k-1]
		st.id = txn
		return st
	}
	return &stagedTxn{id: txn}
}

func (s *Store) release(st *stagedTxn) {
	if st == nil || cap(st.data) > 1<<20 || len(s.stFree) >= 64 {
		return // let the collector take large or surplus buffers
	}
	st.data, st.ends, st.failed, st.snapshot = st.data[:0], st.ends[:0], nil, false
	s.stFree = append(s.stFree, st)
}

func (s *Store) applySchema(d *decoder) error {
	id := d.uvarint()
	if d.err != nil {
		return fmt.Errorf("objstore: apply schema record: %w", d.err)
	}
	sc, err := ParseSchema(d.b[d.pos:])
	if err != nil {
		return fmt.Errorf("objstore: apply schema record for type %d: %w", id, err)
	}
	// A type of another version is mapped by wire name (transform.go); one
	// the local version does not have fails only the transactions using it.
	pt := newPeerType(s.reg, sc)
	s.mu.Lock()
	s.peerTypes[id] = pt
	s.peerByName[sc.Name] = pt
	s.mu.Unlock()
	return nil
}

// DiscardPartial drops every staged transaction (their Commit never came) and
// returns their intents in transaction order, for the application to
// re-execute after promotion.
func (s *Store) DiscardPartial() [][]byte {
	ids := make([]uint64, 0, len(s.staged))
	for id := range s.staged {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	var intents [][]byte
	// Held transactions first: they were committed before any staged one.
	// The first held is an incomplete coordinated part, and everything after
	// it may depend on it, so all go: the standby stays at a state the active
	// had, and none of it was ever acknowledged (AppliedSeq never passed it).
	for _, h := range s.held {
		intents = appendIntents(intents, h.st)
		s.release(h.st)
	}
	s.held = nil
	for _, id := range ids {
		st := s.staged[id]
		intents = appendIntents(intents, st)
		delete(s.staged, id)
		s.release(st)
	}
	return intents
}

func appendIntents(intents [][]byte, st *stagedTxn) [][]byte {
	{
		start := 0
		for _, end := range st.ends {
			rec := st.data[start:end]
			start = end
			if rec[0] != recIntent {
				continue
			}
			d := decoder{b: rec, pos: 1}
			d.uvarint()
			if d.err == nil {
				intents = append(intents, append([]byte(nil), rec[d.pos:]...))
			}
		}
	}
	return intents
}

// ResetStream prepares a standby for a new stream whose first commit will be
// seq+1 (after a bulk sync or a checkpoint load): staged transactions and the
// peer's type announcements are forgotten.
func (s *Store) ResetStream(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.staged)
	clear(s.peerTypes)
	clear(s.peerByName)
	s.seq = seq
}

// Staged returns the number of transactions waiting for their Commit. Like
// Apply, DiscardPartial and Promote, it belongs to the goroutine that feeds
// the stream.
func (s *Store) Staged() int { return len(s.staged) }

// Promote turns a standby store into an active one: it discards partial
// transactions (returning their intents), builds the pointer index and a
// shadow per object, and marks every shadow stale so that the first update of
// each object to a new peer carries all its fields. It costs a pass over the
// store, once.
func (s *Store) Promote() ([][]byte, error) {
	if s.active {
		return nil, fmt.Errorf("objstore: promote: %w", ErrNotStandby)
	}
	intents := s.DiscardPartial()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Discarded held commits did not happen here; the new stream counts on
	// from what was applied.
	s.seq = s.applied
	s.awaitSnap = false
	s.regroup = nil // demoted and promoted again before a snapshot: its groups stand
	s.byPtr = newPtrIndex(max(s.cfg.SizeHint, s.nobj))
	s.targets = newPtrIndex(0)
	s.pages = map[uintptr][]int32{}
	s.sbyPtrs.Store(nil) // byPtr answers IDOf from now on
	s.flushArenaLimbo()  // the active frees a deleted object's slot at once
	var maxID uint64
	for i := range int32(s.ents.len()) {
		e := s.ents.at(i)
		if e.flags&fLive == 0 {
			continue
		}
		s.byPtr.set(e.ptr, i)
		if e.t.interiorOf {
			s.indexPages(i, true)
		}
		if e.t.refTarget {
			s.targets.set(e.ptr, i)
		}
		e.shadow = newShadow(e.t, e.ptr)
		s.byPtr.setShadow(e.ptr, e.shadow)
		e.flags |= fStale
		s.staleArena(e)
		if e.flags&fStatic == 0 {
			maxID = max(maxID, e.id)
		}
	}
	// Every shadow's pointers are counted once all objects are indexed.
	for i := range int32(s.ents.len()) {
		if s.ents.at(i).flags&fLive != 0 {
			s.countShadow(i, refAdd)
		}
	}
	for id := range s.groups {
		s.nextGrp = max(s.nextGrp, id)
	}
	s.nextID = maxID + 1
	s.active = true
	return intents, nil
}

// note records a reference seen while validating (refResolver).
func (s *Store) note(n *node, id uint64, path []uint32) {
	a := &s.applying
	a.refs = append(a.refs, noteRef{n: n, id: id, path: len(a.paths), plen: len(path)})
	a.paths = append(a.paths, path...)
}

// resolve turns a reference into a pointer once validation passed
// (refResolver).
func (s *Store) resolve(n *node, id uint64, path []uint32) (unsafe.Pointer, error) {
	a := &s.applying
	if a.staging {
		// checkRefs judges the reference at the end of the step; a
		// target missing now may yet be a failure only then.
		s.note(n, id, path)
	}
	var base unsafe.Pointer
	var t *typeInfo
	if o, ok := a.objs.get(id); ok {
		base, t = o.ptr, o.t
	} else if i, ok := s.byID.get(id); ok && !(a.snapshot && id < 1<<63) {
		base, t = s.ents.at(i).ptr, s.ents.at(i).t
	} else if a.staging {
		return nil, nil
	} else {
		return nil, fmt.Errorf("objstore: pointer to object %d: %w", id, ErrDangling)
	}
	if n.kind == KindRef {
		return base, nil
	}
	p, _, ok := walkPath(t.root, base, path)
	if !ok {
		if a.staging {
			return nil, nil
		}
		return nil, fmt.Errorf("objstore: pointer into object %d: bad path: %w", id, ErrDangling)
	}
	return p, nil
}

type recHead struct {
	kind  byte
	txn   uint64
	id    uint64
	t     *typeInfo // the local type
	pt    *peerType // the peer's type, mapped onto t
	group uint32
	d     decoder
}

func (s *Store) parseHead(rec []byte, h *recHead) error {
	h.d = decoder{b: rec}
	d := &h.d
	h.kind = d.byte()
	h.txn = d.uvarint()
	var tid uint64
	switch h.kind {
	case recCreate:
		h.id, tid = d.uvarint(), d.uvarint()
		g := d.uvarint()
		if g > 1<<32-1 {
			d.fail("bad group ID")
		}
		h.group = uint32(g)
	case recUpdate, recDelete:
		h.id, tid = d.uvarint(), d.uvarint()
	case recDeleteGroup:
		g := d.uvarint()
		if g == 0 || g > 1<<32-1 {
			d.fail("bad group ID")
		}
		h.group = uint32(g)
	case recMessage:
		tid = d.uvarint()
	}
	if d.err != nil {
		return d.err
	}
	if h.kind == recCreate || h.kind == recUpdate || h.kind == recDelete || h.kind == recMessage {
		h.pt = s.peerTypes[tid]
		if h.pt == nil {
			return fmt.Errorf("type %d was never announced: %w", tid, ErrCorrupt)
		}
		if h.pt.local == nil {
			return &TransformError{Type: h.pt.schema.Name, ObjectID: h.id, Target: "no type of that name is registered in this version"}
		}
		h.t = h.pt.local
	}
	return nil
}

// lookupTxn finds an object as the transaction being validated sees it.
func (s *Store) lookupTxn(id uint64) (overlayObj, bool) {
	if o, ok := s.applying.overlay.get(id); ok {
		return o, !o.deleted
	}
	if s.applying.snapshot && id < 1<<63 {
		return overlayObj{}, false
	}
	i, ok := s.byID.get(id)
	if !ok {
		return overlayObj{}, false
	}
	return overlayObj{t: s.ents.at(i).t, static: s.ents.at(i).flags&fStatic != 0}, true
}

// validate checks a staged transaction completely without changing the
// store. prior are the transactions applied in the same step before it,
// already validated: their creates and deletes are in the overlay.
func (s *Store) validate(st *stagedTxn, prior []*stagedTxn) error {
	a := &s.applying
	var h recHead
	start := 0
	for k, end := range st.ends {
		rec := st.data[start:end]
		start = end
		if err := s.parseHead(rec, &h); err != nil {
			return fmt.Errorf("record %d: %w", k, err)
		}
		d := &h.d
		switch h.kind {
		case recCreate:
			if _, exists := s.lookupTxn(h.id); exists || h.id == 0 || h.id >= 1<<63 {
				return fmt.Errorf("record %d: create %s %d: %w", k, h.t.name, h.id, ErrExists)
			}
			if _, ok := s.applying.overlay.get(h.id); ok {
				return fmt.Errorf("record %d: create %s %d again: %w", k, h.t.name, h.id, ErrExists)
			}
			if h.group != 0 && s.stepGroup(h.group) == nil {
				return fmt.Errorf("record %d: create %s %d: group %d was never announced: %w", k, h.t.name, h.id, h.group, ErrCorrupt)
			}
			a.overlay.set(h.id, overlayObj{t: h.t})
			o, _ := a.objs.get(h.id)
			s.decodeObject(h.pt, d, o.ptr)
		case recUpdate:
			o, ok := s.lookupTxn(h.id)
			if !ok {
				return fmt.Errorf("record %d: update %s %d: %w", k, h.t.name, h.id, ErrUnknownObject)
			}
			if o.t != h.t {
				return fmt.Errorf("record %d: update %s %d: object is a %s: %w", k, h.t.name, h.id, o.t.name, ErrCorrupt)
			}
			n := d.count(1)
			for j := 0; j < n && d.err == nil; j++ {
				s.decodeField(h.pt, d.uvarint(), d, nil)
			}
		case recDelete:
			o, ok := s.lookupTxn(h.id)
			switch {
			case !ok:
				return fmt.Errorf("record %d: delete %s %d: %w", k, h.t.name, h.id, ErrUnknownObject)
			case o.static:
				return fmt.Errorf("record %d: delete %s %d: %w", k, h.t.name, h.id, ErrStatic)
			case o.t != h.t:
				return fmt.Errorf("record %d: delete %s %d: object is a %s: %w", k, h.t.name, h.id, o.t.name, ErrCorrupt)
			}
			a.overlay.set(h.id, overlayObj{t: o.t, deleted: true})
		case recDeleteGroup:
			g := s.stepGroup(h.group)
			if g == nil {
				return fmt.Errorf("record %d: delete group %d: never announced: %w", k, h.group, ErrCorrupt)
			}
			for i := g.head; i >= 0; i = s.ents.at(i).gnext {
				a.overlay.set(s.ents.at(i).id, overlayObj{t: s.ents.at(i).t, deleted: true})
			}
			// Members created earlier in this transaction, or in an earlier
			// part of this step, go too.
			mark := func(id uint64, grp uint32) {
				if grp == h.group {
					o, _ := a.overlay.get(id)
					o.deleted = true
					a.overlay.set(id, o)
				}
			}
			for _, p := range prior {
				s.eachStagedCreate(p, len(p.ends), mark)
			}
			s.eachStagedCreate(st, k, mark)
		case recMessage:
			s.decodeObject(h.pt, d, nil)
		case recIntent:
			d.pos = len(d.b)
		case recCoord:
			if k != 0 {
				return fmt.Errorf("record %d: coord record not first: %w", k, ErrCorrupt)
			}
			d.pos = len(d.b) // parsed by parseCoord
		case recSnapshot:
			if k != 0 {
				return fmt.Errorf("record %d: snapshot record not first: %w", k, ErrCorrupt)
			}
		default:
			return fmt.Errorf("record %d: kind %d inside a transaction: %w", k, h.kind, ErrCorrupt)
		}
		if d.err == nil && d.pos != len(d.b) {
			d.fail("trailing bytes")
		}
		if d.err != nil {
			var te *TransformError
			if errors.As(d.err, &te) && te.ObjectID == 0 {
				te.ObjectID = h.id
			}
			return fmt.Errorf("record %d: %w", k, d.err)
		}
	}
	return nil
}

// checkRefs checks the pointers noted while validating a step against the
// state at its end.
func (s *Store) checkRefs() error {
	a := &s.applying
	for _, r := range a.refs {
		o, ok := s.lookupTxn(r.id)
		if !ok {
			return fmt.Errorf("pointer to %s %d, which is not in the store at commit: %w", r.n.target.name, r.id, ErrDangling)
		}
		if o.t != r.n.target {
			return fmt.Errorf("pointer to %s %d, which is a %s: %w", r.n.target.name, r.id, o.t.name, ErrDangling)
		}
		if r.n.kind == KindInterior {
			_, n, ok := walkPath(o.t.root, nil, a.paths[r.path:r.path+r.plen])
			if !ok || n.rt != r.n.elem.rt {
				return fmt.Errorf("pointer into %s %d: path %v does not lead to a %v: %w", o.t.name, r.id, a.paths[r.path:r.path+r.plen], r.n.elem.rt, ErrDangling)
			}
		}
	}
	return nil
}

// eachStagedCreate calls fn for the Create records before record limit.
func (s *Store) eachStagedCreate(st *stagedTxn, limit int, fn func(id uint64, group uint32)) {
	var h recHead
	start := 0
	for _, end := range st.ends[:limit] {
		rec := st.data[start:end]
		start = end
		if rec[0] == recCreate && s.parseHead(rec, &h) == nil {
			fn(h.id, h.group)
		}
	}
}

// applyTxns validates the transactions of one step (one transaction, or the
// parts of coordinated transactions with what was committed between them)
// and, if all are sound, applies them in order as one atomic change; the
// second pass cannot fail on anything the first pass accepted.
func (s *Store) applyTxns(sts []*stagedTxn) error {
	a := &s.applying
	a.overlay.reset()
	a.refs, a.paths = a.refs[:0], a.paths[:0]
	a.snapshot = len(sts) == 1 && sts[0].snapshot
	defer func() { a.snapshot = false }()
	var h recHead
	a.objs.reset()
	if s.arenas != nil {
		s.mu.Lock()
		s.flushArenaLimbo()
		s.mu.Unlock()
		defer s.releaseStray()
	}
	for _, st := range sts {
		s.allocCreates(st, &h)
	}
	a.staging = true
	for k, st := range sts {
		if err := s.validate(st, sts[:k]); err != nil {
			a.staging = false
			return fmt.Errorf("objstore: apply txn %d: %w", st.id, err)
		}
	}
	a.staging = false
	if err := s.checkRefs(); err != nil {
		return fmt.Errorf("objstore: apply txn %d: %w", sts[len(sts)-1].id, err)
	}
	a.changes, a.msgs = a.changes[:0], a.msgs[:0]

	s.mu.Lock()
	notify := len(s.subs) > 0
	if a.snapshot {
		s.dropDynamic()
		s.installGroups()
		if notify {
			a.changes = append(a.changes, Change{Txn: sts[0].id, Op: OpReset})
		}
	}
	for _, st := range sts {
		s.decodeTxn(st, &h, notify)
	}
	s.mu.Unlock()
	return s.notify()
}

// dropDynamic removes every dynamic object (a snapshot replaces them). The
// caller holds s.mu.
func (s *Store) dropDynamic() {
	for i := range int32(s.ents.len()) {
		if e := s.ents.at(i); e.flags&fLive != 0 && e.flags&fStatic == 0 {
			s.removeForGood(i)
		}
	}
}

// allocCreates allocates the objects st creates (see applyState.objs). A
// record that does not parse is left for validate to report.
func (s *Store) allocCreates(st *stagedTxn, h *recHead) {
	a := &s.applying
	start := 0
	for _, end := range st.ends {
		rec := st.data[start:end]
		start = end
		if rec[0] != recCreate || s.parseHead(rec, h) != nil {
			continue
		}
		if _, dup := a.objs.get(h.id); !dup {
			a.objs.set(h.id, overlayObj{t: h.t, ptr: s.newObject(h.t)})
		}
	}
}

// decodeTxn writes st's records into the store. The caller holds s.mu.
func (s *Store) decodeTxn(st *stagedTxn, hp *recHead, notify bool) {
	a := &s.applying
	start := 0
	for _, end := range st.ends {
		rec := st.data[start:end]
		start = end
		h := hp
		_ = s.parseHead(rec, h)
		d := &h.d
		var i int32
		switch h.kind {
		case recCreate:
			// Decoded by validate; only now does it enter the store, in
			// record order, so a DeleteGroup earlier in the step cannot
			// take it.
			o, _ := a.objs.get(h.id)
			var g *Group
			if h.group != 0 {
				g = s.groups[h.group]
			}
			i = s.insert(h.id, h.t, o.ptr, g, fLive)
			d.pos = len(d.b)
			if notify {
				a.changes = append(a.changes, s.change(st.id, OpCreate, i))
			}
		case recUpdate:
			i, _ = s.byID.get(h.id)
			p := s.ents.at(i).ptr
			n := d.count(1)
			for j := 0; j < n && d.err == nil; j++ {
				s.decodeField(h.pt, d.uvarint(), d, p)
			}
			if notify {
				a.changes = append(a.changes, s.change(st.id, OpUpdate, i))
			}
		case recDelete:
			i, _ = s.byID.get(h.id)
			if notify {
				a.changes = append(a.changes, s.change(st.id, OpDelete, i))
			}
			s.removeForGood(i)
		case recDeleteGroup:
			g := s.groups[h.group]
			for i := g.head; i >= 0; {
				next := s.ents.at(i).gnext
				if s.ents.at(i).flags&fPendingCreate != 0 {
					i = next
					continue
				}
				if notify {
					a.changes = append(a.changes, s.change(st.id, OpDelete, i))
				}
				s.removeForGood(i)
				i = next
			}
		case recMessage:
			if s.onMsg != nil {
				v := reflect.New(h.t.rt)
				s.decodeObject(h.pt, d, v.UnsafePointer())
				a.msgs = append(a.msgs, h.t.name, v.Interface())
			}
		}
		if d.err != nil {
			// Validation accepted this record: a failure here is a bug, and
			// the store is now inconsistent, so say so loudly.
			s.mu.Unlock()
			panic(fmt.Sprintf("objstore: apply txn %d after validation: %v", st.id, d.err))
		}
	}
}

// notify tells subscribers and the message handler what the step applied,
// unless the owner asked to do that itself (Config.DeferNotify).
func (s *Store) notify() error {
	if !s.cfg.DeferNotify {
		s.Notify()
	}
	return nil
}

// Notify delivers what the last Apply applied to the subscribers and the
// message handler, once. Apply does it itself unless Config.DeferNotify is
// set; then the goroutine that calls Apply calls Notify after it, before the
// next Apply (NotifyPending says whether there is anything to deliver).
//
// The callbacks run on the goroutine that calls Notify, one after another,
// with no lock of the store held, and the mirror is not written while they
// run (only that goroutine writes it). A callback may read any object and
// call the View's methods, Read and ReadWith included. It must not call
// Apply or Notify: that would write the mirror under the changes being
// delivered, or deliver them again. With DeferNotify, Notify runs after
// Apply has returned, so a callback may also use what the owner does
// between two Applys (a Node's handler may Promote); without it the
// callbacks run inside Apply, and must leave the write path alone.
func (s *Store) Notify() {
	a := &s.applying
	if len(a.changes) == 0 && len(a.msgs) == 0 {
		return
	}
	s.mu.RLock()
	subs, onMsg := s.subs, s.onMsg
	s.mu.RUnlock()
	for _, c := range a.changes {
		for _, sub := range subs {
			sub.fn(c)
		}
	}
	for k := 0; onMsg != nil && k+1 < len(a.msgs); k += 2 {
		onMsg(a.msgs[k].(string), a.msgs[k+1])
	}
	clear(a.changes)
	clear(a.msgs)
	a.changes, a.msgs = a.changes[:0], a.msgs[:0]
}

// NotifyPending reports whether the last Apply left changes or messages for
// Notify to deliver (with Config.DeferNotify; without it Apply delivers
// them itself). It belongs to the goroutine that calls Apply, like Notify.
func (s *Store) NotifyPending() bool {
	a := &s.applying
	return len(a.changes) > 0 || len(a.msgs) > 0
}

func (s *Store) change(txn uint64, op Op, i int32) Change {
	e := s.ents.at(i)
	c := Change{Txn: txn, Op: op, ID: e.id, Type: e.t.name, Object: reflect.NewAt(e.t.rt, e.ptr).Interface()}
	if g := s.groups[e.group]; e.group != 0 && g != nil {
		c.Group = g.name
	}
	return c
}

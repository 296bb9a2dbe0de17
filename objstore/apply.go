package objstore

import (
	"fmt"
	"reflect"
	"sort"
	"unsafe"
)

// Op says what happened to an object in a Change.
type Op uint8

const (
	OpCreate Op = iota + 1
	OpUpdate
	OpDelete
)

func (o Op) String() string {
	switch o {
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
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
	id     uint64
	data   []byte
	ends   []int
	failed error
}

// applyState is the standby's per-commit scratch, reused across commits.
type applyState struct {
	overlay map[uint64]overlayObj // this transaction's creates and deletes, by ID
	refs    []noteRef
	paths   []uint32
	changes []Change
	msgs    []any
	created []int32
}

type overlayObj struct {
	t       *typeInfo
	deleted bool
	static  bool
}

type noteRef struct {
	n     *node
	id    uint64
	path  int // paths[path:path+plen]
	plen  int
	owner uint64
}

// Subscribe calls fn for every change applied on this standby store, in
// order, after each transaction is applied, under the store's read lock (fn
// may read any object but must not call the store). It returns a function that
// cancels the subscription.
func (s *Store) Subscribe(fn func(Change)) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextSub++
	id := s.nextSub
	s.subs[id] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, id)
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
// and a pointer to a freshly decoded value.
func (s *Store) OnMessage(fn func(name string, msg any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onMsg = fn
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
		id := d.uvarint()
		name, prefix := d.str(), d.str()
		if d.err == nil && (id == 0 || id > 1<<32-1) {
			d.fail("bad group ID")
		}
		if d.err != nil {
			return fmt.Errorf("objstore: apply group record: %w", d.err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if g := s.groups[uint32(id)]; g != nil {
			if g.name != name {
				return fmt.Errorf("objstore: apply group %d %q: already named %q: %w", id, name, g.name, ErrCorrupt)
			}
			return nil
		}
		if g := s.groupsByName[name]; g != nil {
			return fmt.Errorf("objstore: apply group %d %q: name used by group %d: %w", id, name, g.id, ErrCorrupt)
		}
		s.addGroup(uint32(id), name, prefix)
		return nil
	case recCreate, recUpdate, recDelete, recDeleteGroup, recMessage, recIntent, recAbort, recCommit:
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
		if seq != s.Seq()+1 {
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
		defer s.release(st)
		if st.failed != nil {
			return fmt.Errorf("objstore: apply txn %d: %w", txn, st.failed)
		}
		if uint64(len(st.ends)) != n {
			return fmt.Errorf("objstore: apply txn %d: %d records staged, commit says %d: %w", txn, len(st.ends), n, ErrCorrupt)
		}
		return s.applyTxn(st)
	}
	if st == nil {
		st = s.newStaged(txn)
		s.staged[txn] = st
	}
	if st.failed != nil {
		return nil
	}
	if len(st.data)+len(rec) > s.cfg.MaxTxnBytes {
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
	st.data, st.ends, st.failed = st.data[:0], st.ends[:0], nil
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
	local := s.reg.byName[sc.Name]
	if local == nil {
		return fmt.Errorf("objstore: peer type %q: %w", sc.Name, ErrUnregistered)
	}
	if local.schema.Fingerprint != sc.Fingerprint {
		// Version skew: transformation by wire name is the ISSU step's job.
		return fmt.Errorf("objstore: peer type %q: fingerprint %016x, local %016x: %w", sc.Name, sc.Fingerprint, local.schema.Fingerprint, ErrSchemaMismatch)
	}
	s.mu.Lock()
	s.peerTypes[id] = local
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
	for _, id := range ids {
		st := s.staged[id]
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
		delete(s.staged, id)
		s.release(st)
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
	s.byPtr = newPtrIndex()
	s.pages = map[uintptr][]int32{}
	var maxID uint64
	for i := range s.ents {
		e := &s.ents[i]
		if e.flags&fLive == 0 {
			continue
		}
		s.byPtr.set(e.ptr, int32(i))
		if e.t.interiorOf {
			s.indexPages(int32(i), true)
		}
		s.ents[i].shadow = newShadow(e.t, e.ptr)
		s.byPtr.setShadow(e.ptr, s.ents[i].shadow)
		e.flags |= fStale
		if e.flags&fStatic == 0 {
			maxID = max(maxID, e.id)
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
	i, ok := s.byID.get(id)
	if !ok {
		return nil, fmt.Errorf("objstore: pointer to object %d: %w", id, ErrDangling)
	}
	e := &s.ents[i]
	if n.kind == KindRef {
		return e.ptr, nil
	}
	p, _, ok := walkPath(e.t.root, e.ptr, path)
	if !ok {
		return nil, fmt.Errorf("objstore: pointer into object %d: bad path: %w", id, ErrDangling)
	}
	return p, nil
}

type recHead struct {
	kind  byte
	txn   uint64
	id    uint64
	t     *typeInfo
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
		h.t = s.peerTypes[tid]
		if h.t == nil {
			return fmt.Errorf("type %d was never announced: %w", tid, ErrCorrupt)
		}
	}
	return nil
}

// lookupTxn finds an object as the transaction being validated sees it.
func (s *Store) lookupTxn(id uint64) (overlayObj, bool) {
	if o, ok := s.applying.overlay[id]; ok {
		return o, !o.deleted
	}
	i, ok := s.byID.get(id)
	if !ok {
		return overlayObj{}, false
	}
	return overlayObj{t: s.ents[i].t, static: s.ents[i].flags&fStatic != 0}, true
}

// validate checks a staged transaction completely without changing the store.
func (s *Store) validate(st *stagedTxn) error {
	a := &s.applying
	if a.overlay == nil {
		a.overlay = map[uint64]overlayObj{}
	}
	clear(a.overlay)
	a.refs, a.paths = a.refs[:0], a.paths[:0]
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
			if _, ok := s.applying.overlay[h.id]; ok {
				return fmt.Errorf("record %d: create %s %d again: %w", k, h.t.name, h.id, ErrExists)
			}
			if h.group != 0 && s.groups[h.group] == nil {
				return fmt.Errorf("record %d: create %s %d: group %d was never announced: %w", k, h.t.name, h.id, h.group, ErrCorrupt)
			}
			a.overlay[h.id] = overlayObj{t: h.t}
			decodeValue(h.t.root, d, nil, s)
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
				fi := d.uvarint()
				if fi >= uint64(len(h.t.root.fields)) {
					d.fail(fmt.Sprintf("field %d of %s", fi, h.t.name))
					break
				}
				decodeValue(h.t.root.fields[fi].n, d, nil, s)
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
			a.overlay[h.id] = overlayObj{t: o.t, deleted: true}
		case recDeleteGroup:
			g := s.groups[h.group]
			if g == nil {
				return fmt.Errorf("record %d: delete group %d: never announced: %w", k, h.group, ErrCorrupt)
			}
			for i := g.head; i >= 0; i = s.ents[i].gnext {
				a.overlay[s.ents[i].id] = overlayObj{t: s.ents[i].t, deleted: true}
			}
			// Members created earlier in this transaction go too.
			s.eachStagedCreate(st, k, func(id uint64, grp uint32) {
				if grp == h.group {
					o := a.overlay[id]
					o.deleted = true
					a.overlay[id] = o
				}
			})
		case recMessage:
			decodeValue(h.t.root, d, nil, s)
		case recIntent:
			d.pos = len(d.b)
		default:
			return fmt.Errorf("record %d: kind %d inside a transaction: %w", k, h.kind, ErrCorrupt)
		}
		if d.err == nil && d.pos != len(d.b) {
			d.fail("trailing bytes")
		}
		if d.err != nil {
			return fmt.Errorf("record %d: %w", k, d.err)
		}
	}
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

// applyTxn validates st and, if it is sound, applies it; the second pass
// cannot fail on anything the first pass accepted.
func (s *Store) applyTxn(st *stagedTxn) error {
	if err := s.validate(st); err != nil {
		return fmt.Errorf("objstore: apply txn %d: %w", st.id, err)
	}
	a := &s.applying
	notify := len(s.subs) > 0
	a.changes, a.msgs, a.created = a.changes[:0], a.msgs[:0], a.created[:0]

	s.mu.Lock()
	// Objects created by the transaction exist before any record is decoded,
	// so that pointers to objects created later in it resolve.
	var h recHead
	start := 0
	for _, end := range st.ends {
		rec := st.data[start:end]
		start = end
		if rec[0] == recCreate {
			_ = s.parseHead(rec, &h)
			p := reflect.New(h.t.rt).UnsafePointer()
			var g *Group
			if h.group != 0 {
				g = s.groups[h.group]
			}
			// fPendingCreate until its record is decoded: a DeleteGroup
			// earlier in the transaction must not take it.
			a.created = append(a.created, s.insert(h.id, h.t, p, g, fLive|fPendingCreate))
		}
	}
	start = 0
	for _, end := range st.ends {
		rec := st.data[start:end]
		start = end
		_ = s.parseHead(rec, &h)
		d := &h.d
		var i int32
		switch h.kind {
		case recCreate:
			i, _ = s.byID.get(h.id)
			s.ents[i].flags &^= fPendingCreate
			decodeValue(h.t.root, d, s.ents[i].ptr, s)
			if notify {
				a.changes = append(a.changes, s.change(st.id, OpCreate, i))
			}
		case recUpdate:
			i, _ = s.byID.get(h.id)
			p := s.ents[i].ptr
			n := d.count(1)
			for j := 0; j < n && d.err == nil; j++ {
				f := h.t.root.fields[d.uvarint()]
				decodeValue(f.n, d, add(p, f.off), s)
			}
			if notify {
				a.changes = append(a.changes, s.change(st.id, OpUpdate, i))
			}
		case recDelete:
			i, _ = s.byID.get(h.id)
			if notify {
				a.changes = append(a.changes, s.change(st.id, OpDelete, i))
			}
			s.remove(i)
		case recDeleteGroup:
			g := s.groups[h.group]
			for i := g.head; i >= 0; {
				next := s.ents[i].gnext
				if s.ents[i].flags&fPendingCreate != 0 {
					i = next
					continue
				}
				if notify {
					a.changes = append(a.changes, s.change(st.id, OpDelete, i))
				}
				s.remove(i)
				i = next
			}
		case recMessage:
			if s.onMsg != nil {
				v := reflect.New(h.t.rt)
				decodeValue(h.t.root, d, v.UnsafePointer(), s)
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
	s.mu.Unlock()
	if len(a.changes) == 0 && len(a.msgs) == 0 {
		return nil
	}
	s.mu.RLock()
	subs := make([]func(Change), 0, len(s.subs))
	keys := make([]int, 0, len(s.subs))
	for k := range s.subs {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		subs = append(subs, s.subs[k])
	}
	onMsg := s.onMsg
	for _, c := range a.changes {
		for _, fn := range subs {
			fn(c)
		}
	}
	s.mu.RUnlock()
	for k := 0; k+1 < len(a.msgs); k += 2 {
		onMsg(a.msgs[k].(string), a.msgs[k+1])
	}
	clear(a.changes)
	clear(a.msgs)
	return nil
}

func (s *Store) change(txn uint64, op Op, i int32) Change {
	e := &s.ents[i]
	c := Change{Txn: txn, Op: op, ID: e.id, Type: e.t.name, Object: reflect.NewAt(e.t.rt, e.ptr).Interface()}
	if g := s.groups[e.group]; e.group != 0 && g != nil {
		c.Group = g.name
	}
	return c
}

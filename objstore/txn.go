package objstore

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

const (
	opCreate = iota + 1
	opUpdate
	opDelete
	opDeleteGroup
	opMessage
	opIntent
	opSync
	opSyncGroup
	opResend // repair.go: an object sent whole from its shadow
	opRaw    // repair.go: a record of another commit, with this txn's ID
)

// op is one operation of the open transaction. Creates, updates and deletes
// are encoded at commit, in order: the object's state at commit is what the
// peer gets, several updates of one object coalesce, and pointers to objects
// created later in the same transaction resolve. Messages and intents are
// values, encoded when made, into Store.pre.
type op struct {
	kind     uint8
	create   bool // opResend: as a Create, not an Update
	ent      int32
	g        *Group
	pre, end int // Store.pre[pre:end]: encoded message or intent record
}

// Txn is a handle on a transaction of an active store. Operations check
// their arguments at once; the records are made and sent by Commit. The
// transaction's state lives in the store (there is at most one open), so a
// Txn is a small value and Begin does not allocate; a handle whose
// transaction has ended reports ErrTxnDone.
type Txn struct {
	s  *Store
	id uint64
}

// Begin opens a transaction. A store has at most one open transaction: the
// write path belongs to one goroutine, and one open transaction is what
// keeps commit order equal to transaction order.
func (s *Store) Begin() (Txn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		return Txn{}, fmt.Errorf("objstore: begin: %w", ErrNotActive)
	}
	if s.txnOpen {
		return Txn{}, fmt.Errorf("objstore: begin: txn %d: %w", s.nextTxn, ErrTxnOpen)
	}
	s.nextTxn++
	t := Txn{s: s, id: s.nextTxn}
	s.txnOpen = true
	s.clearScratch()
	return t, nil
}

// ID returns the transaction ID carried by its records.
func (t Txn) ID() uint64 { return t.id }

func (t Txn) check(what string) error {
	if t.s == nil || !t.s.txnOpen || t.s.nextTxn != t.id {
		return fmt.Errorf("objstore: txn %d: %s: %w", t.id, what, ErrTxnDone)
	}
	return nil
}

// Create adds obj, a pointer to a registered struct, as a dynamic object and
// returns its ID. The store keeps obj (not a copy): later changes to it are
// replicated by Update or Sync.
func (t Txn) Create(obj any) (uint64, error) { return t.CreateIn(nil, obj) }

// CreateIn is Create with the object placed in group g (nil: no group).
func (t Txn) CreateIn(g *Group, obj any) (uint64, error) {
	if err := t.check("create"); err != nil {
		return 0, err
	}
	s := t.s
	ti, p, err := s.objOf(obj)
	if err != nil {
		return 0, fmt.Errorf("objstore: txn %d: create: %w", t.id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, dup := s.byPtr.get(p); dup {
		e := s.ents.at(i)
		return 0, fmt.Errorf("objstore: txn %d: create %s: already %s %d: %w", t.id, ti.name, e.t.name, e.id, ErrExists)
	}
	if g != nil && s.groups[g.id] != g {
		return 0, fmt.Errorf("objstore: txn %d: create %s: group %q is not of this store", t.id, ti.name, g.name)
	}
	if err := s.arenaCreate(ti, p); err != nil {
		return 0, fmt.Errorf("objstore: txn %d: create %w", t.id, err)
	}
	id := s.nextID
	s.nextID++
	i := s.insert(id, ti, p, g, fLive|fPendingCreate)
	s.ops = append(s.ops, op{kind: opCreate, ent: i})
	return id, nil
}

func (t Txn) lookup(what string, obj any) (int32, error) {
	if err := t.check(what); err != nil {
		return 0, err
	}
	s := t.s
	ti, p, err := s.objOf(obj)
	if err != nil {
		return 0, fmt.Errorf("objstore: txn %d: %s: %w", t.id, what, err)
	}
	slot := s.byPtr.find(p)
	if slot == nil {
		return 0, fmt.Errorf("objstore: txn %d: %s %s at %p: %w", t.id, what, ti.name, p, ErrUnknownObject)
	}
	i := slot.val
	if sh, size := slot.shadow, ti.root.size; sh != nil && size > 0 {
		// Start the shadow's cache misses now, every line of it at once and
		// in parallel with the entry's: in a store far larger than the CPU
		// cache that is one DRAM round trip per commit instead of several
		// in sequence (the diff reads every field).
		t := s.touch
		for off := uintptr(0); off < size; off += 64 {
			t += *(*byte)(unsafe.Add(sh, off))
		}
		s.touch = t + *(*byte)(unsafe.Add(sh, size-1))
	}
	if e := s.ents.at(i); e.flags&fPendingDelete != 0 {
		return 0, fmt.Errorf("objstore: txn %d: %s %s %d: %w", t.id, what, ti.name, e.id, ErrDeleted)
	}
	return i, nil
}

// Update records that obj may have changed. At commit, obj is compared with
// the shadow of what the peer holds and only the changed fields are sent.
func (t Txn) Update(obj any) error {
	i, err := t.lookup("update", obj)
	if err != nil {
		return err
	}
	t.s.ops = append(t.s.ops, op{kind: opUpdate, ent: i})
	return nil
}

// Delete removes obj from the store. The peer gets only the Delete: an
// Update of obj earlier in the transaction is not sent (nor checked for
// dangling pointers), and of an object the transaction created nothing is
// sent at all.
func (t Txn) Delete(obj any) error {
	i, err := t.lookup("delete", obj)
	if err != nil {
		return err
	}
	s := t.s
	e := s.ents.at(i)
	if e.flags&fStatic != 0 {
		return fmt.Errorf("objstore: txn %d: delete %s %d: %w", t.id, e.t.name, e.id, ErrStatic)
	}
	s.mu.Lock()
	e.flags |= fPendingDelete
	s.mu.Unlock()
	s.ops = append(s.ops, op{kind: opDelete, ent: i})
	return nil
}

// DeleteGroup deletes every object of g, as one record; as with Delete, the
// members get no other record in this transaction.
func (t Txn) DeleteGroup(g *Group) error {
	if err := t.check("delete group"); err != nil {
		return err
	}
	s := t.s
	if s.groups[g.id] != g {
		return fmt.Errorf("objstore: txn %d: delete group %q: not of this store", t.id, g.name)
	}
	s.mu.Lock()
	for i := g.head; i >= 0; i = s.ents.at(i).gnext {
		s.ents.at(i).flags |= fPendingDelete
	}
	s.mu.Unlock()
	s.ops = append(s.ops, op{kind: opDeleteGroup, g: g})
	return nil
}

// Sync scans every object at commit and sends what changed (transparent
// mode, for code that cannot say what it changed). Of the objects in
// arenas it diffs only those on the pages the kernel reports written since
// the last Sync (see InArena).
func (t Txn) Sync() error {
	if err := t.check("sync"); err != nil {
		return err
	}
	t.s.ops = append(t.s.ops, op{kind: opSync})
	return nil
}

// Sync runs a transaction that only scans every object for changes: the
// transparent mode for code that changes objects without telling the store.
func (s *Store) Sync() error {
	tx, err := s.Begin()
	if err != nil {
		return err
	}
	_ = tx.Sync()
	return tx.Commit()
}

// SyncGroup is Sync restricted to the objects of g.
func (t Txn) SyncGroup(g *Group) error {
	if err := t.check("sync group"); err != nil {
		return err
	}
	t.s.ops = append(t.s.ops, op{kind: opSyncGroup, g: g})
	return nil
}

// Message sends msg, a pointer to a registered type, to the standby
// application's message handler when the transaction applies there. msg is
// encoded now; it may be reused after the call.
func (t Txn) Message(msg any) error {
	if err := t.check("message"); err != nil {
		return err
	}
	s := t.s
	ti, p, err := s.objOf(msg)
	if err != nil {
		return fmt.Errorf("objstore: txn %d: message: %w", t.id, err)
	}
	start := len(s.pre)
	b := append(s.pre, recMessage)
	b = binary.AppendUvarint(b, t.id)
	b = binary.AppendUvarint(b, uint64(ti.id))
	s.noteRefs = true
	b, err = encodeValue(ti.root, b, p, s)
	s.noteRefs = false
	if err == nil && len(b) > s.cfg.MaxTxnBytes {
		err = fmt.Errorf("%d bytes, limit %d: %w", len(b), s.cfg.MaxTxnBytes, ErrTxnTooLarge)
	}
	if err != nil {
		s.pre = b[:start]
		return fmt.Errorf("objstore: txn %d: message %s: %w", t.id, ti.name, err)
	}
	s.pre = b
	s.announceSchemas()
	s.ops = append(s.ops, op{kind: opMessage, pre: start, end: len(b)})
	return nil
}

// Intent attaches an opaque record that the standby keeps until this
// transaction commits there; if the standby is promoted before that, it hands
// the intent back to the application to re-execute.
func (t Txn) Intent(data []byte) error {
	if err := t.check("intent"); err != nil {
		return err
	}
	if err := t.queueRecord(opIntent, recIntent, data); err != nil {
		return fmt.Errorf("objstore: txn %d: intent of %d bytes: %w", t.id, len(data), err)
	}
	return nil
}

// queueRecord encodes a record of kind with this transaction's ID and body
// into Store.pre now, as op, to be sent at commit.
func (t Txn) queueRecord(opKind uint8, kind byte, body []byte) error {
	s := t.s
	start := len(s.pre)
	b := append(s.pre, kind)
	b = binary.AppendUvarint(b, t.id)
	b = append(b, body...)
	if len(b) > s.cfg.MaxTxnBytes {
		s.pre = b[:start]
		return ErrTxnTooLarge
	}
	s.pre = b
	s.ops = append(s.ops, op{kind: opKind, pre: start, end: len(b)})
	return nil
}

// Abort ends the transaction without sending anything.
func (t Txn) Abort() error {
	if err := t.check("abort"); err != nil {
		return err
	}
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollback()
	s.txnOpen = false
	return nil
}

// Commit encodes the transaction's records and hands them to the sink: first
// any Schema and Group records the peer has not seen, then the transaction's
// records, then its Commit record. If encoding fails (a dangling pointer, the
// size limit) nothing is sent and the store is as before the transaction,
// except that the objects' own memory keeps whatever the application wrote
// into it. If the sink fails, the commit stands locally and the error wraps
// ErrSink: the peer's stream is broken and needs a resync.
//
// The sink runs without the store's lock, so readers are not held up by a
// sink that waits for a send window; the transaction stays open until the
// sink has everything, which keeps records in commit order.
func (t Txn) Commit() error {
	if err := t.check("commit"); err != nil {
		return err
	}
	s := t.s
	s.mu.Lock()
	if err := s.encodeTxn(t.id); err != nil {
		s.rollback()
		s.txnOpen = false
		s.mu.Unlock()
		return fmt.Errorf("objstore: commit txn %d: %w", t.id, err)
	}
	s.finish()
	s.mu.Unlock()
	err := s.emit()
	s.mu.Lock()
	s.clearScratch()
	s.txnOpen = false
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("objstore: commit txn %d: %w: %w", t.id, ErrSink, err)
	}
	return nil
}

// emit hands the encoded announcements and records to the sink.
func (s *Store) emit() error {
	start := 0
	for _, end := range s.headEnds {
		if err := s.cfg.Sink.WriteRecord(s.head[start:end]); err != nil {
			return err
		}
		start = end
	}
	if s.schemasQueued {
		s.schemasSent = true
	}
	for _, id := range s.newGrps {
		s.groupSent[id] = true
	}
	start = 0
	for _, end := range s.ends {
		if err := s.cfg.Sink.WriteRecord(s.recs[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// announceSchemas queues a Schema record for every registered type unless
// the stream has them: the first announcement of a stream carries them all,
// so the peer knows each type an interior pointer can lead into, and can
// report what of this version it cannot carry, before the first record.
// Called before each record that names a type, it costs a test after that.
func (s *Store) announceSchemas() {
	if s.schemasSent || s.schemasQueued {
		return
	}
	for _, t := range s.reg.types {
		s.head = appendSchemaRec(s.head, t)
		s.headEnds = append(s.headEnds, len(s.head))
	}
	s.schemasQueued = true
}

// appendSchemaRec appends t's Schema record to b.
func appendSchemaRec(b []byte, t *typeInfo) []byte {
	b = append(b, recSchema)
	b = binary.AppendUvarint(b, uint64(t.id))
	return append(b, t.schemaEnc...)
}

// appendGroupRec appends the Group record of group id to b.
func appendGroupRec(b []byte, id uint32, g *Group) []byte {
	b = append(b, recGroup)
	b = binary.AppendUvarint(b, uint64(id))
	b = appendString(b, g.name)
	return appendString(b, g.prefix)
}

func (s *Store) announceGroup(g *Group) {
	if g == nil || s.groupSent[g.id] {
		return
	}
	for _, id := range s.newGrps {
		if id == g.id {
			return
		}
	}
	s.newGrps = append(s.newGrps, g.id)
	s.head = appendGroupRec(s.head, g.id, g)
	s.headEnds = append(s.headEnds, len(s.head))
}

// encodeTxn makes every record of t into s.recs. It lists the entries it
// encoded in s.touched and the shadow writes they need in s.shadowCopies;
// finish makes those once the whole transaction encoded.
func (s *Store) encodeTxn(txn uint64) error {
	s.recs, s.ends, s.touched = s.recs[:0], s.ends[:0], s.touched[:0]
	// head, the new* lists and refsTo may hold what Message queued.
	if s.coord.set {
		// First, so that the receiver knows at Commit which part this is
		// without scanning; it also makes an empty part a transaction.
		s.recs = append(s.recs, recCoord)
		s.recs = binary.AppendUvarint(s.recs, txn)
		s.recs = binary.AppendUvarint(s.recs, s.coord.id)
		s.recs = binary.AppendUvarint(s.recs, uint64(s.coord.n))
		s.recs = appendString(s.recs, s.coord.part)
		s.ends = append(s.ends, len(s.recs))
	}
	// An object this transaction deletes gets no record but its Delete: the
	// standby needs nothing else to remove it, and the pointers in a state
	// that never commits cannot dangle. One it also created gets no record
	// at all (the standby never hears of it).
	var err error
	for k := range s.ops {
		o := &s.ops[k]
		if s.beforeOp != nil {
			s.beforeOp(k)
		}
		switch o.kind {
		case opCreate:
			if s.ents.at(o.ent).flags&fPendingDelete == 0 {
				err = s.encodeCreate(txn, o.ent)
			}
		case opUpdate:
			if s.ents.at(o.ent).flags&fPendingDelete == 0 {
				err = s.encodeUpdate(txn, o.ent)
			}
		case opDelete:
			e := s.ents.at(o.ent)
			if e.flags&fPendingCreate != 0 || e.flags&(fAbsent|fCreateSent) == fAbsent {
				break // the peer never had it
			}
			s.recs = append(s.recs, recDelete)
			s.recs = binary.AppendUvarint(s.recs, txn)
			s.recs = binary.AppendUvarint(s.recs, e.id)
			s.recs = binary.AppendUvarint(s.recs, uint64(e.t.id))
			s.announceSchemas()
			s.ends = append(s.ends, len(s.recs))
		case opDeleteGroup:
			s.announceGroup(o.g)
			s.recs = append(s.recs, recDeleteGroup)
			s.recs = binary.AppendUvarint(s.recs, txn)
			s.recs = binary.AppendUvarint(s.recs, uint64(o.g.id))
			s.ends = append(s.ends, len(s.recs))
		case opMessage, opIntent, opRaw:
			s.recs = append(s.recs, s.pre[o.pre:o.end]...)
			s.ends = append(s.ends, len(s.recs))
		case opResend:
			err = s.encodeResend(txn, o)
		case opSync:
			err = s.syncAll(txn)
		case opSyncGroup:
			err = s.syncGroupAll(txn, o.g)
		}
		if err == nil && len(s.recs) > s.cfg.MaxTxnBytes {
			err = fmt.Errorf("%d bytes of records, limit %d: %w", len(s.recs), s.cfg.MaxTxnBytes, ErrTxnTooLarge)
		}
		if err != nil {
			return err
		}
	}
	if err := s.checkDeletes(); err != nil {
		return err
	}
	// A message's pointer, encoded before its target's Delete in the same
	// transaction (records encoded here saw every Delete already).
	for _, i := range s.refsTo {
		if e := s.ents.at(i); e.flags&fPendingDelete != 0 {
			return s.messageRefError(e)
		}
	}
	if len(s.ends) == 0 {
		// Nothing changed (a Sync that found nothing): no record, no seq.
		return nil
	}
	s.seq++
	s.recs = append(s.recs, recCommit)
	s.recs = binary.AppendUvarint(s.recs, txn)
	s.recs = binary.AppendUvarint(s.recs, s.seq)
	s.recs = binary.AppendUvarint(s.recs, uint64(len(s.ends)))
	s.ends = append(s.ends, len(s.recs))
	return nil
}

// messageRefError reports the message of the open transaction that points
// at e, which the transaction deletes, naming the field.
func (s *Store) messageRefError(e *entry) error {
	k := 0
	for _, o := range s.ops {
		if o.kind != opMessage {
			continue
		}
		k++
		d := decoder{b: s.pre[o.pre:o.end], pos: 1}
		d.uvarint()
		mt := s.reg.types[d.uvarint()-1]
		if path, ok := refPath(mt.root, &d, e.id); ok {
			return fmt.Errorf("message %d (%s): field %s: pointer to %s %d, deleted in this transaction: %w", k, mt.name, path, e.t.name, e.id, ErrDangling)
		}
	}
	return fmt.Errorf("a message: pointer to %s %d, deleted in this transaction: %w", e.t.name, e.id, ErrDangling)
}

func (s *Store) syncEntry(txn uint64, i int32) error {
	e := s.ents.at(i)
	if e.flags&fLive == 0 || e.flags&fPendingDelete != 0 || e.shadow == nil {
		return nil
	}
	return s.encodeUpdate(txn, i)
}

func (s *Store) encodeCreate(txn uint64, i int32) error {
	e := s.ents.at(i)
	t := e.t
	g := s.groups[e.group]
	s.announceSchemas()
	s.announceGroup(g)
	src := s.encodeSource(e)
	start := len(s.recs)
	b, err := appendCreate(s.recs, txn, e, src, s)
	if err != nil {
		s.recs = b[:start]
		return fmt.Errorf("create %w", err)
	}
	s.recs = b
	s.ends = append(s.ends, len(b))
	if e.shadow == nil {
		// A new entry: a failed commit removes it, shadow and all. Its
		// pointers are counted once it commits.
		e.shadow = newShadow(t, src)
		s.byPtr.setShadow(e.ptr, e.shadow)
		s.shadowCopies = append(s.shadowCopies, shadowCopy{ent: i, field: fieldFresh})
	} else {
		s.shadowCopies = append(s.shadowCopies, shadowCopy{ent: i, field: -1, src: src})
	}
	e.flags |= fEncoded
	s.touched = append(s.touched, i)
	return nil
}

// shadowCopy is a deferred shadow write: one top-level field of entry ent,
// or the whole object if field is -1; fieldFresh marks a shadow made by
// this transaction, whose pointers are counted at commit. src, if not nil,
// is the copy of the object that was encoded (encodeSource).
type shadowCopy struct {
	ent   int32
	field int
	src   unsafe.Pointer
}

// encodeSource returns what to encode entry e from: the object itself, or,
// for an arena object, a copy taken now. Writers may race a Sync on arena
// objects (the next Sync catches what they write after the pages were
// protected again), but only if the shadow then holds exactly what was
// sent, not a later read of memory that moved on in between.
func (s *Store) encodeSource(e *entry) unsafe.Pointer {
	if e.flags&fArena == 0 {
		return e.ptr
	}
	return s.snaps.copyOf(e.ptr, e.t.rt.Size())
}

const fieldFresh = -2

// commitShadows makes the shadows hold what the transaction just encoded,
// and the incoming pointer counts follow (refcount.go).
func (s *Store) commitShadows() {
	for _, c := range s.shadowCopies {
		e := s.ents.at(c.ent)
		n, dst, src := e.t.root, e.shadow, e.ptr
		if c.src != nil {
			src = c.src
		}
		switch {
		case c.field == fieldFresh:
			s.countShadow(c.ent, refAdd)
			continue
		case c.field >= 0:
			f := e.t.root.fields[c.field]
			n, dst, src = f.n, add(dst, f.off), add(src, f.off)
		}
		if n.hasRefs {
			s.walkRefs(n, dst, refSub)
		}
		copyValue(n, dst, src)
		if n.hasRefs {
			s.walkRefs(n, dst, refAdd)
		}
	}
	s.shadowCopies = s.shadowCopies[:0]
}

// encodeUpdate diffs entry i against its shadow and, if anything changed,
// appends an Update record with the changed fields and refreshes the shadow.
func (s *Store) encodeUpdate(txn uint64, i int32) error {
	e := s.ents.at(i)
	t := e.t
	sh := e.shadow
	if sh == nil || e.flags&fEncoded != 0 {
		// Created by this transaction after this point, or already encoded
		// by it (created, or updated twice): that record carries the state
		// at commit, since the object does not change while it encodes.
		return nil
	}
	ch := s.changed[:0]
	src := e.ptr
	if e.flags&fStale != 0 {
		for k := range t.root.fields {
			ch = append(ch, k)
		}
	} else {
		ch = t.diff(e.ptr, sh, ch)
		if len(ch) > 0 && e.flags&fArena != 0 {
			src = s.encodeSource(e)
			ch = t.diff(src, sh, ch[:0])
		}
	}
	if e.flags&fStale != 0 {
		src = s.encodeSource(e)
	}
	s.changed = ch
	if len(ch) == 0 {
		return nil
	}
	if e.flags&(fAbsent|fCreateSent) == fAbsent {
		// The peer refused its Create: this change brings it whole.
		if err := s.encodeRecreate(txn, i, src); err != nil {
			return err
		}
		s.shadowCopies = append(s.shadowCopies, shadowCopy{ent: i, field: -1, src: src})
		e.flags |= fEncoded
		s.touched = append(s.touched, i)
		return nil
	}
	s.announceSchemas()
	start := len(s.recs)
	b := append(s.recs, recUpdate)
	b = binary.AppendUvarint(b, txn)
	b = binary.AppendUvarint(b, e.id)
	b = binary.AppendUvarint(b, uint64(t.id))
	b = binary.AppendUvarint(b, uint64(len(ch)))
	var err error
	for _, k := range ch {
		f := t.root.fields[k]
		b = binary.AppendUvarint(b, uint64(k))
		if b, err = encodeValue(f.n, b, add(src, f.off), s); err != nil {
			s.recs = b[:start]
			return fmt.Errorf("update %s %d: %w", t.name, e.id, atStep(err, f.name))
		}
	}
	s.recs = b
	s.ends = append(s.ends, len(b))
	for _, k := range ch {
		s.shadowCopies = append(s.shadowCopies, shadowCopy{ent: i, field: k, src: srcOrNil(src, e.ptr)})
	}
	e.flags |= fEncoded
	s.touched = append(s.touched, i)
	return nil
}

// encodeRecreate appends the Create, with every field from src, of entry i,
// which the peer lacks (fAbsent), and notes that the transaction sends it.
func (s *Store) encodeRecreate(txn uint64, i int32, src unsafe.Pointer) error {
	e := s.ents.at(i)
	s.announceSchemas()
	s.announceGroup(s.groups[e.group])
	start := len(s.recs)
	b, err := appendCreate(s.recs, txn, e, src, s)
	if err != nil {
		s.recs = b[:start]
		return fmt.Errorf("create %w", err)
	}
	s.recs = b
	s.ends = append(s.ends, len(b))
	e.flags |= fCreateSent
	s.recreated = append(s.recreated, i)
	return nil
}

// diff appends to out the indexes of the top-level fields of the object at a
// that differ from the shadow at b. Raw fields are compared run by run, one
// memory compare per run of adjacent fields, and field by field only inside
// a run that differs.
func (t *typeInfo) diff(a, b unsafe.Pointer, out []int) []int {
	fs := t.root.fields
	for _, r := range t.runs {
		if memEq(add(a, r.off), add(b, r.off), r.end-r.off) {
			continue
		}
		for k := r.firstField; k <= r.lastField; k++ {
			if n := len(out); n > 0 && out[n-1] >= k {
				continue
			}
			f := fs[k]
			if f.n.raw && !equalValue(f.n, add(a, f.off), add(b, f.off)) {
				out = append(out, k)
			}
		}
	}
	for _, k := range t.nonRaw {
		f := fs[k]
		if !equalValue(f.n, add(a, f.off), add(b, f.off)) {
			out = append(out, k)
		}
	}
	return out
}

// rollback undoes the open transaction's effect on the store's bookkeeping.
// The shadows were not written (commitShadows), so an object's next diff is
// against what the peer really holds, and a snapshot carries nothing of the
// failed transaction.
func (s *Store) rollback() {
	if s.arenaScanned {
		// Written pages were protected again for objects whose shadows
		// stay as they were.
		for _, a := range s.arenas {
			if a != nil {
				a.fullNext = true
			}
		}
	}
	for _, i := range s.touched {
		s.ents.at(i).flags &^= fEncoded
	}
	for _, i := range s.recreated {
		s.ents.at(i).flags &^= fCreateSent
	}
	s.recreated = s.recreated[:0]
	s.touched, s.shadowCopies = s.touched[:0], s.shadowCopies[:0]
	for k := len(s.ops) - 1; k >= 0; k-- {
		o := &s.ops[k]
		switch o.kind {
		case opCreate:
			if s.ents.at(o.ent).flags&fLive != 0 {
				s.remove(o.ent)
			}
		case opDelete:
			s.ents.at(o.ent).flags &^= fPendingDelete
		case opDeleteGroup:
			for i := o.g.head; i >= 0; i = s.ents.at(i).gnext {
				s.ents.at(i).flags &^= fPendingDelete
			}
		}
	}
	// Deletes of objects created earlier in the transaction were undone with
	// the creates; re-mark nothing else. Restore any flags the loop above
	// cleared on objects deleted twice (Delete then DeleteGroup).
	s.clearScratch()
}

// finish applies a successful commit's shadow writes, deletes and creates.
func (s *Store) finish() {
	if len(s.lateStatics) > 0 {
		s.countLate()
	}
	s.commitShadows()
	for _, i := range s.touched {
		s.ents.at(i).flags &^= fStale | fEncoded
	}
	s.touched = s.touched[:0]
	for _, i := range s.recreated {
		s.ents.at(i).flags &^= fAbsent | fCreateSent
	}
	s.recreated = s.recreated[:0]
	for k := range s.ops {
		o := &s.ops[k]
		switch o.kind {
		case opCreate:
			s.ents.at(o.ent).flags &^= fPendingCreate
		case opDelete:
			if s.ents.at(o.ent).flags&fLive != 0 {
				s.countShadow(o.ent, refSub)
				s.removeForGood(o.ent)
			}
		case opDeleteGroup:
			// Members created after the DeleteGroup in this transaction stay,
			// as they do on the standby, which applies records in order.
			for i := o.g.head; i >= 0; {
				next := s.ents.at(i).gnext
				if s.ents.at(i).flags&fPendingDelete != 0 {
					s.countShadow(i, refSub)
					s.removeForGood(i)
				}
				i = next
			}
		}
	}
}

func (s *Store) clearScratch() {
	clear(s.ops)
	s.ops = s.ops[:0]
	s.pre = s.pre[:0]
	s.head, s.headEnds = s.head[:0], s.headEnds[:0]
	s.schemasQueued = false
	s.newGrps = s.newGrps[:0]
	s.refsTo = s.refsTo[:0]
	s.coord = coordMark{}
	s.arenaScanned = false
	s.snaps.reset()
}

// ResetPeer starts a new stream (a new or returning peer): schemas and groups
// are announced again. The peer still needs every object (bulk sync, a later
// step); ResetPeer only resets what the stream itself remembers.
func (s *Store) ResetPeer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.schemasSent = false
	clear(s.groupSent)
}

// srcOrNil is the shadowCopy.src of an object encoded from src: nil when
// that is the object itself.
func srcOrNil(src, obj unsafe.Pointer) unsafe.Pointer {
	if src == obj {
		return nil
	}
	return src
}

package objstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// ErrCoordinated reports a coordinated transaction that breaks its own rules:
// a participant count that differs between parts, or one participant
// committing two parts.
var ErrCoordinated = errors.New("inconsistent coordinated transaction")

// coordMark is the open transaction's part in a coordinated transaction.
type coordMark struct {
	set  bool
	id   uint64
	n    uint32
	part string
}

// Coordinate makes the open transaction the part of participant in the
// coordinated transaction id, which has participants parts in all. A standby
// applies the parts together, atomically, once every participant has
// committed its part, and never before a coordinated transaction committed
// earlier. Every participant must use the same id and count, and each must
// commit exactly one part; the caller (the Node) hands out the id.
func (t Txn) Coordinate(id uint64, participants int, participant string) error {
	if err := t.check("coordinate"); err != nil {
		return err
	}
	switch {
	case id == 0:
		return fmt.Errorf("objstore: txn %d: coordinate: id 0: %w", t.id, ErrCoordinated)
	case participants < 1 || participants > 1<<16:
		return fmt.Errorf("objstore: txn %d: coordinate %d: %d participants: %w", t.id, id, participants, ErrCoordinated)
	case t.s.coord.set:
		return fmt.Errorf("objstore: txn %d: coordinate %d: already part of %d: %w", t.id, id, t.s.coord.id, ErrCoordinated)
	}
	t.s.coord = coordMark{set: true, id: id, n: uint32(participants), part: participant}
	return nil
}

// Snapshot sends the store's whole committed state to the sink as one
// transaction (see record.go): what a new or returning peer needs before the
// live stream makes sense to it. It announces every schema and group again
// (ResetPeer), encodes objects from their shadows, which hold exactly what
// was committed even if the application has since changed its objects
// without committing, and returns the snapshot's transaction ID, by which
// the peer's acknowledgements can tell a snapshot-based state from an older
// one. MaxTxnBytes does not apply: a snapshot is as large as the store.
//
// It needs the write path, like Begin: no transaction may be open.
func (s *Store) Snapshot() (uint64, error) {
	s.mu.Lock()
	if !s.active {
		s.mu.Unlock()
		return 0, fmt.Errorf("objstore: snapshot: %w", ErrNotActive)
	}
	if s.txnOpen {
		open := s.nextTxn
		s.mu.Unlock()
		return 0, fmt.Errorf("objstore: snapshot: txn %d: %w", open, ErrTxnOpen)
	}
	s.nextTxn++
	txn := s.nextTxn
	s.txnOpen = true
	s.clearScratch()
	s.schemasSent = false
	clear(s.groupSent)
	err := s.encodeSnapshot(txn)
	s.mu.Unlock()
	if err == nil {
		err = s.emit()
	}
	s.mu.Lock()
	s.clearScratch()
	s.refsTo = s.refsTo[:0]
	s.txnOpen = false
	s.mu.Unlock()
	if err != nil {
		return txn, fmt.Errorf("objstore: snapshot txn %d: %w", txn, err)
	}
	return txn, nil
}

func (s *Store) encodeSnapshot(txn uint64) error {
	snap := &snapMapper{s: s}
	defer func() { s.snapDangling = snap.dangling }()
	b := append(s.recs[:0], recSnapshot)
	b = binary.AppendUvarint(b, txn)
	s.ends = append(s.ends[:0], len(b))
	var err error
	for i := range int32(s.ents.len()) {
		e := s.ents.at(i)
		if e.flags&fLive == 0 || e.shadow == nil {
			continue
		}
		s.announceSchemas()
		// Every static goes, stale or not: after a promotion every static
		// is stale, yet holds what the old active committed, which a new
		// standby must get; and a never-committed static's shadow is its
		// registration, which is the active's state too.
		if e.flags&fStatic == 0 {
			s.announceGroup(s.groups[e.group])
		}
		if b, err = appendWholeObject(b, txn, e, e.shadow, snap); err != nil {
			return err
		}
		s.ends = append(s.ends, len(b))
	}
	b = append(b, recCommit)
	b = binary.AppendUvarint(b, txn)
	b = binary.AppendUvarint(b, s.seq)
	b = binary.AppendUvarint(b, uint64(len(s.ends)))
	s.ends = append(s.ends, len(b))
	s.recs = b
	if s.absentSeen {
		// The snapshot carries every object: the peer lacks none now.
		for i := range int32(s.ents.len()) {
			s.ents.at(i).flags &^= fAbsent
		}
		s.absentSeen = false
	}
	return nil
}

// appendWholeObject appends the record that carries a whole object, from
// the value at src: an Update with every field for a static object, a
// Create with its group for a dynamic one. Snapshots and checkpoints are
// made of these.
func appendWholeObject(b []byte, txn uint64, e *entry, src unsafe.Pointer, m refMapper) ([]byte, error) {
	if e.flags&fStatic != 0 {
		return appendFullUpdate(b, txn, e, src, m)
	}
	return appendCreate(b, txn, e, src, m)
}

// appendFullUpdate appends an Update carrying every field of the object.
func appendFullUpdate(b []byte, txn uint64, e *entry, src unsafe.Pointer, m refMapper) ([]byte, error) {
	t := e.t
	b = append(b, recUpdate)
	b = binary.AppendUvarint(b, txn)
	b = binary.AppendUvarint(b, e.id)
	b = binary.AppendUvarint(b, uint64(t.id))
	b = binary.AppendUvarint(b, uint64(len(t.root.fields)))
	var err error
	for k, f := range t.root.fields {
		b = binary.AppendUvarint(b, uint64(k))
		if b, err = encodeValue(f.n, b, add(src, f.off), m); err != nil {
			return b, fmt.Errorf("%s %d: %w", t.name, e.id, atStep(err, f.name))
		}
	}
	return b, nil
}

// appendCreate appends the Create of a dynamic object, with its group.
func appendCreate(b []byte, txn uint64, e *entry, src unsafe.Pointer, m refMapper) ([]byte, error) {
	t := e.t
	var err error
	b = append(b, recCreate)
	b = binary.AppendUvarint(b, txn)
	b = binary.AppendUvarint(b, e.id)
	b = binary.AppendUvarint(b, uint64(t.id))
	b = binary.AppendUvarint(b, uint64(e.group))
	if b, err = encodeValue(t.root, b, src, m); err != nil {
		return b, fmt.Errorf("%s %d: %w", t.name, e.id, err)
	}
	return b, nil
}

// snapMapper maps pointers for a snapshot. A committed object may still
// point at one deleted since (a delete does not look for referrers, which
// would cost a reverse index); refusing the snapshot would leave the
// standby without any state, for ever. The pointer is sent as nil instead
// and counted (SnapshotDangling), so the fault is visible, not fatal.
type snapMapper struct {
	s        *Store
	dangling int
}

func (m *snapMapper) refID(n *node, p unsafe.Pointer) (uint64, error) {
	id, err := m.s.refID(n, p)
	if err != nil && errors.Is(err, ErrDangling) {
		m.dangling++
		return 0, nil
	}
	return id, err
}

func (m *snapMapper) interiorRef(n *node, p unsafe.Pointer, path []uint32) (uint64, []uint32, error) {
	id, path, err := m.s.interiorRef(n, p, path)
	if err != nil && errors.Is(err, ErrDangling) {
		m.dangling++
		return 0, nil, nil
	}
	return id, path, err
}

// SnapshotDangling returns how many pointers the last Snapshot sent as nil
// because their target had been deleted while they still pointed at it.
func (s *Store) SnapshotDangling() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.snapDangling
}

// heldTxn is a committed transaction that a standby holds back: a part of a
// coordinated transaction still missing parts, or anything committed after
// one.
type heldTxn struct {
	st    *stagedTxn
	seq   uint64
	coord uint64 // 0: not a coordinated part
	n     uint32
	part  string
}

// parseCoord reads the coordination of a staged transaction from its first
// record, if that is a Coord record.
func parseCoord(st *stagedTxn) (h heldTxn, err error) {
	if len(st.ends) == 0 || st.data[0] != recCoord {
		return h, nil
	}
	d := decoder{b: st.data[:st.ends[0]], pos: 1}
	d.uvarint()
	h.coord = d.uvarint()
	n := d.uvarint()
	h.part = d.str()
	if d.err == nil && (h.coord == 0 || n == 0 || n > 1<<16) {
		d.fail(fmt.Sprintf("coordinated transaction %d of %d parts", h.coord, n))
	}
	if d.err == nil && d.pos != len(d.b) {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return h, fmt.Errorf("coord record: %w", d.err)
	}
	h.n = uint32(n)
	return h, nil
}

// commitHeld takes a committed transaction: it applies it at once when
// nothing is held and it is not a coordinated part, and otherwise holds it
// and applies whatever the held queue now allows. Applying in commit order
// is what keeps a coordinated transaction from overtaking an earlier one
// that shares a participant; the price is that an unrelated transaction
// committed after an incomplete coordinated one waits for it too.
func (s *Store) commitHeld(st *stagedTxn, seq uint64) error {
	h, err := parseCoord(st)
	if err != nil {
		s.setApplied(seq)
		err = fmt.Errorf("objstore: apply txn %d: %w", st.id, err)
		s.refuse(seq, st.id, false, err)
		s.release(st)
		return err
	}
	h.st, h.seq = st, seq
	if h.coord == 0 && len(s.held) == 0 {
		defer s.release(st)
		err := s.applyTxns([]*stagedTxn{st})
		s.setApplied(seq)
		if err != nil {
			s.refuse(seq, st.id, false, err)
		}
		return err
	}
	if h.coord != 0 {
		for _, o := range s.held {
			if o.coord != h.coord {
				continue
			}
			if o.n != h.n || o.part == h.part {
				s.setApplied(seq) // consumed, like any failed transaction
				err := fmt.Errorf("objstore: apply txn %d: part %q of coordinated txn %d (%d parts) after part %q (%d parts): %w",
					st.id, h.part, h.coord, h.n, o.part, o.n, ErrCoordinated)
				s.refuse(seq, st.id, false, err)
				s.release(st)
				return err
			}
		}
	}
	s.held = append(s.held, h)
	return s.releaseHeld()
}

// releaseHeld applies held transactions from the head of the queue for as
// long as the head is complete: a plain transaction alone, a coordinated one
// together with everything committed between its parts (and, transitively,
// the parts of the coordinated transactions among those), in commit order,
// as one atomic step.
func (s *Store) releaseHeld() error {
	var errs []error
	for len(s.held) > 0 {
		end := 0 // apply held[:end+1]
		if s.held[0].coord != 0 {
			for i := 0; i <= end; i++ {
				c := s.held[i].coord
				if c == 0 {
					continue
				}
				parts, last := 0, 0
				for j, o := range s.held {
					if o.coord == c {
						parts, last = parts+1, j
					}
				}
				if parts < int(s.held[i].n) {
					return errors.Join(errs...)
				}
				end = max(end, last)
			}
		}
		sts := make([]*stagedTxn, end+1)
		for i := range sts {
			sts[i] = s.held[i].st
		}
		if err := s.applyTxns(sts); err != nil {
			errs = append(errs, err)
			// The step is one atomic change: every commit in it is refused.
			for _, h := range s.held[:end+1] {
				s.refuse(h.seq, h.st.id, false, err)
			}
		}
		s.setApplied(s.held[end].seq)
		for _, st := range sts {
			s.release(st)
		}
		clear(s.held[:end+1])
		s.held = s.held[end+1:]
	}
	s.held = nil
	return errors.Join(errs...)
}

func (s *Store) setApplied(seq uint64) {
	s.mu.Lock()
	s.applied = seq
	s.mu.Unlock()
}

// AppliedSeq returns the seq of the last commit a standby has applied (or
// found invalid and skipped): every commit up to it is settled. It trails Seq
// while transactions are held behind an incomplete coordinated transaction.
// It is what a standby acknowledges to its active.
func (s *Store) AppliedSeq() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applied
}

// Held returns the number of committed transactions a standby holds behind an
// incomplete coordinated transaction.
func (s *Store) Held() int { return len(s.held) }

// AwaitSnapshot prepares a standby for a new stream that starts with a
// snapshot (a new or restarted active, or a standby that lost track): staged
// and held transactions and the peer's type announcements are dropped, and
// so is every transactional record until a Snapshot record starts one.
// The objects stay, readable, until the snapshot replaces them.
func (s *Store) AwaitSnapshot() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.awaitSnapshotLocked()
}

// awaitSnapshotLocked is AwaitSnapshot; the caller holds s.mu.
func (s *Store) awaitSnapshotLocked() {
	s.dropPending()
	clear(s.peerTypes)
	clear(s.peerByName)
	s.awaitSnap = true
	s.snapTxn = 0
}

// SnapshotID returns the transaction ID of the snapshot a standby's state
// derives from, or 0 while it has none (a fresh store, or after
// AwaitSnapshot). An active uses it to tell acknowledgements of its current
// snapshot from leftovers of an earlier one.
func (s *Store) SnapshotID() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.snapTxn
}

// AwaitingSnapshot reports whether the standby drops the stream until a
// snapshot (see AwaitSnapshot).
func (s *Store) AwaitingSnapshot() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.awaitSnap
}

// dropPending forgets staged and held transactions. The caller holds s.mu.
func (s *Store) dropPending() {
	for _, st := range s.staged {
		s.release(st)
	}
	clear(s.staged)
	for _, h := range s.held {
		s.release(h.st)
	}
	s.held = nil
}

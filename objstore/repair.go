package objstore

import (
	"fmt"
)

// Repairing what a peer refused
//
// A standby of another version refuses a transaction whole when one value
// does not fit (transform.go). Its other changes are then missing there
// too, while the active's shadows say they were sent: left alone, those
// objects would differ on the standby until something touched them again.
// Repair builds the transaction that mends them: from the records of the
// refused commit (the Node keeps them in its replay log), every object it
// created is sent again whole as a Create, every object it updated as an
// Update with every field, both from the committed state (the shadow, so
// later commits are included), and its deletes again, leaving out the
// objects that could not be carried (which the caller marks stale, so that
// the application's next update of one sends it whole; one the refused
// commit created, Repair marks absent, so that update goes as a Create). Messages and
// intents are not repeated: they belonged to their moment.

// Repair adds to the open transaction what a peer needs after refusing the
// commit whose records are recs, leaving out the objects skip names, and
// returns how many records it will send. An object left out that the
// refused commit created is marked absent on the peer (see MarkAbsent), so
// that its next change goes as a Create; the caller need not do it.
func (t Txn) Repair(recs [][]byte, skip func(id uint64) bool) (int, error) {
	if err := t.check("repair"); err != nil {
		return 0, err
	}
	s := t.s
	n := 0
	for _, rec := range recs {
		if len(rec) == 0 {
			continue
		}
		d := decoder{b: rec, pos: 1}
		d.uvarint() // the refused commit's txn
		switch rec[0] {
		case recCreate, recUpdate:
			id := d.uvarint()
			if d.err != nil {
				return n, fmt.Errorf("objstore: txn %d: repair: %w", t.id, d.err)
			}
			if skip(id) {
				if rec[0] == recCreate {
					// The peer never got it: its next change must
					// create it. The mark stands even if this
					// transaction aborts, as the refusal does.
					s.mu.Lock()
					s.markAbsent(id)
					s.mu.Unlock()
				}
				continue
			}
			i, ok := s.byID.get(id)
			if !ok || s.ents.at(i).flags&(fPendingCreate|fPendingDelete) != 0 {
				continue // deleted since, which the peer got on its own
			}
			s.ops = append(s.ops, op{kind: opResend, ent: i, create: rec[0] == recCreate && s.ents.at(i).flags&fStatic == 0})
			n++
		case recDelete, recDeleteGroup:
			if d.err != nil {
				return n, fmt.Errorf("objstore: txn %d: repair: %w", t.id, d.err)
			}
			// The same record under this transaction's ID.
			if err := t.queueRecord(opRaw, rec[0], rec[d.pos:]); err != nil {
				return n, fmt.Errorf("objstore: txn %d: repair: %w", t.id, err)
			}
			n++
		}
	}
	return n, nil
}

// encodeResend encodes an opResend: the object whole, from its shadow.
func (s *Store) encodeResend(txn uint64, o *op) error {
	e := s.ents.at(o.ent)
	if e.flags&fLive == 0 || e.flags&fPendingDelete != 0 || e.shadow == nil {
		return nil // deleted by this transaction, which sends the Delete
	}
	s.announceSchemas()
	var err error
	if e.flags&(fAbsent|fCreateSent) == fAbsent {
		return s.encodeRecreate(txn, o.ent, e.shadow)
	}
	if o.create {
		s.announceGroup(s.groups[e.group])
		s.recs, err = appendCreate(s.recs, txn, e, e.shadow, s)
	} else {
		s.recs, err = appendFullUpdate(s.recs, txn, e, e.shadow, s)
	}
	if err != nil {
		return err
	}
	s.ends = append(s.ends, len(s.recs))
	return nil
}

// markAbsent notes that the peer lacks dynamic object id (stale too, so
// that its next Update sends it even unchanged). The caller holds s.mu.
func (s *Store) markAbsent(id uint64) {
	if i, ok := s.byID.get(id); ok {
		if e := s.ents.at(i); e.flags&(fStatic|fPendingCreate) == 0 {
			e.flags |= fAbsent | fStale
			s.staleArena(e)
			s.absentSeen = true
		}
	}
}

// MarkAbsent tells the store that the peer does not hold the objects ids:
// it refused the commit that created them. The next change of each is then
// sent as a Create with every field (an Update would be refused too, for an
// object the peer never had), and a Delete of one sends nothing. Repair
// marks the objects it leaves out of a refused commit's creates itself;
// MarkAbsent is for a caller that learns of a refused create otherwise.
// Unknown IDs and static objects are ignored. A Snapshot, which carries
// every object, clears the marks. It needs the write path, like Begin.
func (s *Store) MarkAbsent(ids ...uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		return fmt.Errorf("objstore: mark absent: %w", ErrNotActive)
	}
	if s.txnOpen {
		return fmt.Errorf("objstore: mark absent: %w", ErrTxnOpen)
	}
	for _, id := range ids {
		s.markAbsent(id)
	}
	return nil
}

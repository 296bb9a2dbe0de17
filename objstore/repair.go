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
// the application's next update of one sends it whole). Messages and
// intents are not repeated: they belonged to their moment.

// Repair adds to the open transaction what a peer needs after refusing the
// commit whose records are recs, leaving out the objects skip names, and
// returns how many records it will send.
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

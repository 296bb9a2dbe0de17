package objstore

import "fmt"

// Refusal is a transaction the active committed and a standby did not apply:
// a value its version cannot hold (a TransformError), a dangling pointer, a
// corrupt record. Its seq is consumed all the same, so later commits still
// apply; what the refused transaction would have changed is missing from the
// mirror, which is why the active must hear of it.
type Refusal struct {
	Seq      uint64
	Txn      uint64
	Snapshot bool // the refused transaction was a snapshot: the mirror has no base
	Err      error
}

// maxRefusals bounds the refusals a standby keeps for TakeRefusals; older
// ones are counted and dropped, so a store nobody drains cannot grow.
const maxRefusals = 1024

func (s *Store) refuse(seq, txn uint64, snapshot bool, err error) {
	if len(s.refusals) >= maxRefusals {
		s.refusals = s.refusals[1:]
		s.refusalsDropped++
	}
	s.refusals = append(s.refusals, Refusal{Seq: seq, Txn: txn, Snapshot: snapshot, Err: err})
}

// TakeRefusals returns the transactions refused since the last call, in
// commit order, and how many older ones were dropped unread. Like Apply, it
// belongs to the goroutine that feeds the stream.
func (s *Store) TakeRefusals() ([]Refusal, uint64) {
	r, dropped := s.refusals, s.refusalsDropped
	s.refusals, s.refusalsDropped = nil, 0
	return r, dropped
}

// MarkStale makes the next Update of object id send every field, not only
// the changed ones: the peer refused a transaction that touched it, so its
// copy may lack a change the shadow says it has. Unknown IDs are ignored
// (the object may be gone). For an object the peer never had (it refused
// the commit that created it) an Update with every field is refused too:
// MarkAbsent makes the next change a Create, and Repair marks the created
// objects it leaves out itself. It needs the write path, like Begin.
func (s *Store) MarkStale(ids ...uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		return fmt.Errorf("objstore: mark stale: %w", ErrNotActive)
	}
	if s.txnOpen {
		return fmt.Errorf("objstore: mark stale: %w", ErrTxnOpen)
	}
	for _, id := range ids {
		if i, ok := s.byID.get(id); ok {
			s.ents.at(i).flags |= fStale
			s.staleArena(s.ents.at(i))
		}
	}
	return nil
}

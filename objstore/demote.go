package objstore

import "fmt"

// Demoting an active
//
// Two actives meet after a split, or a frozen active resumes to find it was
// replaced: the loser becomes the winner's standby without restarting, and
// takes the winner's snapshot in place of everything it committed on its
// own. Demote is Promote run backwards: it drops what only an active keeps
// (address indexes, shadows, pointer counts, commit scratch, what the stream
// has been told) and leaves the store awaiting a snapshot, so that nothing
// of a stream counts until the winner's whole state arrives.
//
// The snapshot then goes through the resync path every standby has
// (applyTxns with a snapshot): the dynamic objects are dropped and the
// snapshot's created, statics updated in place. What that path cannot cover
// is groups. A standby's groups normally come from the one history its
// active made, so a Group record that clashes with a group it holds (the
// same ID under another name, or the reverse) is a corrupt stream. The
// loser's groups come partly from its own split history, and the winner may
// well have used the same IDs and names for other groups. So, until its
// first snapshot applies, a demoted store sets the Group records it is sent
// aside (Store.regroup) instead of adding them, and the snapshot, having
// dropped every dynamic object and so emptied every group, replaces the
// store's groups with them.

// DemoteReport says where a store stood when Demote turned it into a
// standby: what of it the winner's snapshot is about to replace.
type DemoteReport struct {
	// Seq is the seq of the store's last commit. The commits after the
	// last one the peer acknowledged are the ones the snapshot discards.
	Seq uint64
	// Objects counts the store's objects, static ones included (Len).
	Objects int
	// Groups counts its groups.
	Groups int
}

// Demote turns an active store into a standby in place, awaiting its new
// active's snapshot (see AwaitSnapshot): every transactional record is
// dropped until a Snapshot record starts one, and that snapshot replaces
// the whole state, groups included (dynamic objects the snapshot lacks go,
// statics keep their identity and take its values). Until then the objects
// stay readable, as they were committed or last written.
//
// The store keeps its transaction ID counter, so IDs are never reused if it
// is promoted again, and its subscribers, which see the snapshot as a
// standby's do: an OpReset, then its objects. Its Seq and AppliedSeq stay
// at the last commit until the snapshot sets them. The sink (Config.Sink)
// gets nothing while the store is a standby and gets records again after a
// Promote.
//
// It needs the write path, like Begin: it fails with an error wrapping
// ErrTxnOpen while a transaction (or a Snapshot) is open, and with one
// wrapping ErrNotActive on a standby.
func (s *Store) Demote() (DemoteReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		return DemoteReport{}, fmt.Errorf("objstore: demote: the store is already a standby: %w", ErrNotActive)
	}
	if s.txnOpen {
		return DemoteReport{}, fmt.Errorf("objstore: demote: txn %d is open: %w", s.nextTxn, ErrTxnOpen)
	}
	rep := DemoteReport{Seq: s.seq, Objects: s.nobj, Groups: len(s.groups)}

	// The active's indexes go; IDOf builds the standby's on first use.
	s.byPtr, s.targets, s.pages = nil, nil, nil
	s.sbyPtrs.Store(nil)
	for i := range int32(s.ents.len()) {
		e := s.ents.at(i)
		if e.flags&fLive == 0 {
			continue
		}
		e.shadow = nil
		// A standby knows live and static only: staleness, absence and
		// the marks of a commit belong to what an active told its peer.
		// fArena stays: where the object lives is no role's business.
		e.flags &= fLive | fStatic | fArena
	}
	// Promote derives the next IDs from what the store then holds.
	s.nextID, s.nextGrp = 1, 0
	s.schemasSent = false
	clear(s.groupSent)
	s.absentSeen = false
	s.lastCkptTxn = 0 // that checkpoint is of a state about to be replaced
	s.snapDangling = 0
	s.clearScratch()
	// Commit scratch can be snapshot-sized; a standby has no use for it.
	s.recs, s.ends, s.head, s.headEnds, s.pre = nil, nil, nil, nil, nil
	s.ops, s.changed, s.touched, s.shadowCopies = nil, nil, nil, nil
	s.refsTo, s.doomed, s.tally, s.lateStatics = nil, nil, nil, nil
	s.newGrps, s.recreated = nil, nil

	s.active = false
	// Everything this store committed counts as applied: it is the state
	// it holds. Promote before a snapshot arrives resumes from it.
	s.applied = s.seq
	s.awaitSnapshotLocked()
	s.regroup = map[uint32]*Group{}
	return rep, nil
}

// setAsideGroup takes a Group record for a demoted store awaiting its
// first snapshot (see the top of this file). It checks the record against
// the other groups set aside, as a standby checks one against its groups:
// they come from one history, the winner's. The caller holds s.mu.
func (s *Store) setAsideGroup(id uint32, name, prefix string) error {
	if g := s.regroup[id]; g != nil {
		if g.name != name {
			return fmt.Errorf("objstore: apply group %d %q: already named %q: %w", id, name, g.name, ErrCorrupt)
		}
		g.prefix = prefix
		return nil
	}
	for _, g := range s.regroup {
		if g.name == name {
			return fmt.Errorf("objstore: apply group %d %q: name used by group %d: %w", id, name, g.id, ErrCorrupt)
		}
	}
	g := &Group{id: id, name: name, prefix: prefix, head: -1}
	g.view.g = g
	s.regroup[id] = g
	return nil
}

// stepGroup returns group id as the step being validated sees it: the
// snapshot of a demoted store sees only the groups its sender announced.
func (s *Store) stepGroup(id uint32) *Group {
	if s.applying.snapshot && s.regroup != nil {
		return s.regroup[id]
	}
	return s.groups[id]
}

// installGroups makes the groups a demoted store set aside its groups, once
// its first snapshot has dropped every dynamic object (so every group is
// empty). A group that the winner has under the same ID and name keeps its
// identity, so that a *Group the application holds stays good. The caller
// holds s.mu.
func (s *Store) installGroups() {
	if s.regroup == nil {
		return
	}
	old := s.groups
	s.groups = make(map[uint32]*Group, len(s.regroup))
	clear(s.groupsByName)
	for id, g := range s.regroup {
		if o := old[id]; o != nil && o.name == g.name {
			o.prefix = g.prefix
			g = o
		}
		s.groups[id] = g
		s.groupsByName[g.name] = g
	}
	s.regroup = nil
}

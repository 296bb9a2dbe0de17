package objstore

// Resuming a stream
//
// A standby that already holds the active's state up to some seq (it was
// seeded from a checkpoint, or its session restarted) need not be sent a
// snapshot of the whole store: the active can replay the records of the
// commits after that seq, if it still has them. These are the store's parts
// of that; the Node keeps the replay log and runs the exchange.

// CommitSeq returns the seq of a Commit record, and false for any other
// record: a sink that keeps whole commits for replay knows from it where a
// commit ends and which seq it was.
func CommitSeq(rec []byte) (uint64, bool) {
	if len(rec) == 0 || rec[0] != recCommit {
		return 0, false
	}
	d := decoder{b: rec, pos: 1}
	d.uvarint()
	seq := d.uvarint()
	return seq, d.err == nil
}

// Announcements returns a Schema record for every registered type and a
// Group record for every group, and counts them as announced on the
// current stream: what a resuming peer needs before the replayed records,
// whose own announcements may lie before the seq it resumes from. It needs
// the write path, like Begin.
func (s *Store) Announcements() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, t := range s.reg.types {
		out = append(out, appendSchemaRec(nil, t))
	}
	s.schemasSent = true
	for id, g := range s.groups {
		out = append(out, appendGroupRec(nil, id, g))
		s.groupSent[id] = true
	}
	return out
}

// ResumeStream prepares a standby for a new stream that may continue from
// what it holds: staged and held transactions and the peer's type
// announcements are dropped, and the next commit expected is AppliedSeq+1.
// It returns the snapshot the state derives from and the applied seq, for
// the active to decide between replaying what follows and sending a
// snapshot (which the standby takes either way). With no snapshot (a fresh
// store) it is AwaitSnapshot and returns zeros.
func (s *Store) ResumeStream() (snapTxn, applied uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropPending()
	clear(s.peerTypes)
	clear(s.peerByName)
	if s.snapTxn == 0 {
		s.awaitSnap = true
		return 0, 0
	}
	s.seq = s.applied
	s.awaitSnap = false
	return s.snapTxn, s.applied
}

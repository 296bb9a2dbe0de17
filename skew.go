package swha

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/swha/swha/objstore"
)

// Version skew on the Node (see objstore/transform.go for the mapping).
//
// Besides the applied-ack (ack.go), a standby sends two messages to its
// active on the session, both with txn ID 0:
//
//	0x81 refusal | uv(snapshot txn) | uv(seq) | uv(txn) | flags(1) | uv(object) | str(error)
//	0x82 hello   | uv(snapshot txn) | uv(applied seq) | uv(n) | n × str(schema)
//
// A refusal says the standby did not apply the committed transaction txn
// (seq seq, on the stream of snapshot "snapshot txn") because a value does
// not fit its version: flag 0x01 marks a refused snapshot, object names the
// object at fault (0 if none), error is the standby's error text. Refusals
// are sent before the ack that covers their seq, so a synchronous Commit
// waiting for that seq sees the refusal first and fails with ErrPeerRefused.
//
// The hello, sent whenever a session starts, carries the standby's
// registered schemas (objstore.Schema.AppendBinary), so that the active can
// say before the first record what of its version the standby will not
// carry, and where the standby's state stands (the snapshot it derives from
// and its applied seq, both 0 for an empty store), so that the active can
// replay from there instead of sending a snapshot (resume.go).
//
// str is uv(length) followed by the bytes. Kinds 0x81 and 0x82, like the
// ack's 0x80, cannot begin an objstore record.
const (
	refusalKind     = 0x81
	helloKind       = 0x82
	refusalSnapshot = 0x01
	maxRefusalText  = 1024
)

// ErrPeerRefused: the standby did not apply a transaction because its
// version of a type cannot hold a value of it (a rolling upgrade in
// progress). The transaction stands on the active; the error says the type,
// field and value. Stats().PeerRefusals counts them.
var ErrPeerRefused = errors.New("swha: standby refused the transaction")

type refusal struct {
	snap, seq, txn, object uint64
	snapshot               bool
	text                   string
}

func (r refusal) append(b []byte) []byte {
	b = append(b, refusalKind)
	b = binary.AppendUvarint(b, r.snap)
	b = binary.AppendUvarint(b, r.seq)
	b = binary.AppendUvarint(b, r.txn)
	var flags byte
	if r.snapshot {
		flags |= refusalSnapshot
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, r.object)
	text := r.text
	if len(text) > maxRefusalText {
		text = text[:maxRefusalText]
	}
	b = binary.AppendUvarint(b, uint64(len(text)))
	return append(b, text...)
}

func parseRefusal(b []byte) (refusal, error) {
	var f refusal
	r, err := newMsgReader(b, refusalKind)
	if err != nil {
		return f, err
	}
	f.snap, f.seq, f.txn = r.uv("snapshot txn"), r.uv("seq"), r.uv("txn")
	f.snapshot = r.byte("flags")&refusalSnapshot != 0
	f.object = r.uv("object")
	f.text = string(r.bytes("error text"))
	return f, r.end()
}

func appendHello(b []byte, snap, applied uint64, reg *objstore.Registry) []byte {
	names := reg.Names()
	b = append(b, helloKind)
	b = binary.AppendUvarint(b, snap)
	b = binary.AppendUvarint(b, applied)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, name := range names {
		enc := reg.Schema(name).AppendBinary(nil)
		b = binary.AppendUvarint(b, uint64(len(enc)))
		b = append(b, enc...)
	}
	return b
}

func parseHello(b []byte) (hello, error) {
	var h hello
	r, err := newMsgReader(b, helloKind)
	if err != nil {
		return h, err
	}
	h.snap, h.applied = r.uv("snapshot txn"), r.uv("applied seq")
	n := r.uv("count")
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = fmt.Errorf("%d schemas in %d bytes: %w", n, len(r.b), errBadMessage)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		enc := r.bytes("schema")
		if r.err != nil {
			break
		}
		sc, err := objstore.ParseSchema(enc)
		if err != nil {
			return h, fmt.Errorf("schema %d: %w", i, err)
		}
		h.schemas = append(h.schemas, sc)
	}
	return h, r.end()
}

// takeRefusals turns the store's refusals after an Apply into refusal
// messages for the active and reports whether the standby lost track of the
// stream (a refusal for any reason other than version skew, which a snapshot
// must mend). The caller holds applyMu.
func (n *Node) takeRefusals() (lostTrack bool) {
	refs, dropped := n.store.TakeRefusals()
	if dropped > 0 {
		lostTrack = true
	}
	for _, r := range refs {
		var te *objstore.TransformError
		if !errors.As(r.Err, &te) {
			lostTrack = true
			continue
		}
		n.stats.refused.Add(1)
		n.log.Warn("refused a transaction the local version cannot hold", "txn", r.Txn, "seq", r.Seq, "snapshot", r.Snapshot, "err", r.Err)
		n.refusals = append(n.refusals, refusal{
			snap: n.store.SnapshotID(), seq: r.Seq, txn: r.Txn, object: te.ObjectID, snapshot: r.Snapshot, text: r.Err.Error(),
		})
		if r.Snapshot {
			// No base to apply the stream to. The active sends another
			// snapshot after its next commit, which may have fixed the
			// value; asking for one now would only be refused again.
			n.store.AwaitSnapshot()
		}
	}
	return lostTrack
}

// onRefusal takes a standby's refusal (active role).
func (n *Node) onRefusal(b []byte) {
	r, err := parseRefusal(b)
	if err != nil {
		n.log.Warn("dropped bad refusal from the standby", "err", err)
		return
	}
	n.stats.peerRefusals.Add(1)
	n.log.Warn("standby refused a transaction", "txn", r.txn, "seq", r.seq, "snapshot", r.snapshot, "object", r.object, "err", r.text)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lastRefusal = r.text
	switch {
	case r.snapshot && r.txn != n.snapTxn:
		// Possibly overtook sendSnapshot recording the txn as sent.
		n.snapRefusal = r
	case r.snapshot && r.txn == n.snapTxn:
		// The standby holds nothing of ours: stop streaming to it (it
		// drops the stream anyway) until a snapshot it accepts.
		n.refusedSnap = r.text
		n.streaming = false
	case !r.snapshot && r.snap == n.snapTxn:
		if n.refused == nil {
			n.refused, n.refusedTrim = map[uint64]string{}, 0
		}
		n.refused[r.seq] = r.text
		// The standby lacks every change of that commit, not only the one
		// that did not fit: mend the others (repair.go).
		n.repairs = append(n.repairs, repairReq{seq: r.seq, object: r.object})
		if r.object != 0 {
			// Before the application's next transaction, not whenever the
			// repair runs: its next update of this object must be whole.
			n.staleIDs = append(n.staleIDs, r.object)
		}
		n.kick()
	}
	n.bump()
}

// noteSkew works out, from the standby's schemas (active role), what of
// this node's version the standby will not carry.
func (n *Node) noteSkew(theirs []*objstore.Schema) {
	reg := n.store.Registry()
	var reports []objstore.SkewReport
	for _, name := range reg.Names() {
		i := slices.IndexFunc(theirs, func(s *objstore.Schema) bool { return s.Name == name })
		rep := objstore.SkewReport{Type: name, Missing: true}
		if i >= 0 {
			rep = objstore.CompareSchemas(reg.Schema(name), theirs[i])
		}
		if !rep.Identical {
			n.log.Warn("standby runs another version of a type", "type", name, "skew", rep.String())
		}
		reports = append(reports, rep)
	}
	n.mu.Lock()
	n.peerSkew = reports
	n.mu.Unlock()
}

// PeerSkew says how the two versions of each type differ. On an active it is
// what the standby will do with this node's types (from the schemas the
// standby sent when the session started): fields it lacks are dropped there,
// narrowed ones are range-checked. On a standby it is how the active's types
// map onto this node's, with the number of values dropped so far.
func (n *Node) PeerSkew() []objstore.SkewReport {
	if n.Role() == Standby {
		return n.store.PeerSkew()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.peerSkew)
}

// repairReq is a refused commit to mend, and the object the standby named.
type repairReq struct{ seq, object uint64 }

// maxRepairChain bounds repairs of repairs: each refused repair names one
// more object that cannot be carried, and leaves it out of the next.
const maxRepairChain = 16

// runRepairs mends refused commits (active role, on the loop goroutine):
// for each, a transaction that sends again whole every object the commit
// touched except those the standby cannot hold, which are marked stale so
// that their next update carries every field. It takes the write path.
func (n *Node) runRepairs() error {
	select {
	case n.wsem <- struct{}{}:
	case <-n.ctx.Done():
		return ErrClosed
	}
	defer func() { <-n.wsem }()
	n.mu.Lock()
	reqs := n.repairs
	n.repairs = nil
	n.mu.Unlock()
	for _, r := range reqs {
		bad := append(slices.Clone(n.repairBad[r.seq]), r.object)
		if err := n.store.MarkStale(bad...); err != nil {
			return err
		}
		if len(bad) > maxRepairChain {
			n.stats.unrepaired.Add(1)
			n.log.Warn("gave up repairing a refused transaction", "seq", r.seq, "objects_refused", len(bad))
			continue
		}
		var recs [][]byte
		if e, ok := n.replay.entry(r.seq); ok {
			recs = appendRecords(nil, e.data, 0, e.ends)
		}
		if recs == nil {
			n.stats.unrepaired.Add(1)
			n.log.Warn("refused transaction no longer in the replay log; its objects may differ on the standby until updated", "seq", r.seq)
			continue
		}
		tx, err := n.store.Begin()
		if err != nil {
			return err
		}
		k, err := tx.Repair(recs, func(id uint64) bool { return slices.Contains(bad, id) })
		if err != nil || k == 0 {
			_ = tx.Abort()
			if err != nil {
				return err
			}
			continue
		}
		seq, _, err := n.commitStream(n.ctx, tx)
		if err != nil {
			return fmt.Errorf("swha: repair of seq %d: %w", r.seq, err)
		}
		if n.repairBad == nil || len(n.repairBad) > 1024 {
			n.repairBad = map[uint64][]uint64{}
		}
		n.repairBad[seq] = bad
		n.stats.repairs.Add(1)
		n.log.Info("repaired a refused transaction", "refused_seq", r.seq, "repair_seq", seq, "records", k, "left_out", bad)
	}
	return nil
}

// appendRecords appends to dst the records of data that end at ends, the
// first starting at start.
func appendRecords(dst [][]byte, data []byte, start int, ends []int) [][]byte {
	for _, end := range ends {
		dst = append(dst, data[start:end])
		start = end
	}
	return dst
}

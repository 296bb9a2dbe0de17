package objstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// Checkpoint format (version 1)
//
// A checkpoint is a store's committed state as a file. Integers in the
// header and trailer are big-endian; "uv" is an unsigned LEB128 varint.
//
//	header   "SWHACKPT" (8 bytes) | version u16 (1) | flags u16 (0)
//	records  { uv(len) record }, len > 0
//	trailer  0x00 | u64 offset of this trailer | u32 CRC32C
//
// Each record is exactly a record of the stream format (record.go), so that
// a checkpoint is read by the same Apply that reads the live stream, and a
// checkpoint written by an older version of the types is transformed by the
// same code that transforms an older peer's stream. The records are, in
// this order and no other:
//
//   - a Schema record for every registered type, in registration order, used
//     or not, so that the file describes itself;
//   - a Group record for every group, by group ID;
//   - one snapshot transaction: a Snapshot record, then a Create (with its
//     group) for every dynamic object and an Update carrying every field for
//     every static object, then a Commit record whose seq is the store's
//     (an active's last commit, a standby's last applied commit) and whose
//     count covers the Snapshot record and the objects.
//
// The trailer starts with a zero length, which no record has, then gives its
// own offset: a file whose last 13 bytes are not a trailer that points at
// itself was cut short. The CRC (Castagnoli) covers every byte before it,
// header and end marker included; it is what tells a damaged file from a
// truncated one.
//
// Type IDs in the records are the saving store's local type numbers, group
// IDs are the active's (a standby keeps the IDs the active announced), and
// object IDs are the stream's own: a loaded store continues the active's
// stream.

const (
	ckptMagic   = "SWHACKPT"
	ckptVersion = 1
	ckptHeader  = 12
	ckptTrailer = 13
	// MaxCheckpointBytes bounds what Load reads: a checkpoint is read whole
	// before anything is applied, so the bound is the memory a hostile or
	// runaway file can make Load allocate. A million routes take about
	// 60 MB.
	MaxCheckpointBytes = 4 << 30
)

// Errors of checkpoint loading. Load's errors wrap exactly one of these, and
// for ErrCheckpointInvalid also the error of the record at fault.
var (
	ErrCheckpointForeign   = errors.New("not an swha checkpoint")
	ErrCheckpointVersion   = errors.New("checkpoint version not supported")
	ErrCheckpointTruncated = errors.New("checkpoint truncated")
	ErrCheckpointCorrupt   = errors.New("checkpoint corrupt (CRC mismatch)")
	ErrCheckpointTooLarge  = errors.New("checkpoint too large")
	// ErrCheckpointInvalid: the file is intact (its CRC matches) but is not
	// a checkpoint this store can take: records out of order, a record that
	// does not decode, a type or static object this store does not have.
	ErrCheckpointInvalid = errors.New("invalid checkpoint")
)

// Save writes the store's committed state to w as a checkpoint and returns
// the number of bytes written. On an active store the state is the shadows'
// (what was committed, not what the application has changed since); on a
// standby it is the mirror as of AppliedSeq. Save holds the store's read
// lock throughout, so the checkpoint is one consistent state: the write
// path (Begin, Apply) waits for it, and readers share the lock until a
// writer is waiting, when they queue behind it. It fails if a transaction
// is open.
//
// On a standby, call Save from the goroutine that feeds Apply (as with
// Staged and Promote): Apply publishes a commit's seq, its objects and its
// applied seq under separate lock holds, and a Save from another goroutine
// could fall between them.
//
// Save streams: the only memory that grows with the store is an index of
// the objects pointers can target (next hops, not routes). An active spends
// one transaction ID on the checkpoint's snapshot, so that it is never
// taken for a transaction of the live stream; a standby's checkpoint
// carries the ID of the snapshot its own state derives from (SnapshotID).
func (s *Store) Save(w io.Writer) (int64, error) {
	s.mu.Lock()
	if s.txnOpen {
		open := s.nextTxn
		s.mu.Unlock()
		return 0, fmt.Errorf("objstore: save checkpoint: txn %d: %w", open, ErrTxnOpen)
	}
	wasActive := s.active
	var txn uint64
	if wasActive {
		s.nextTxn++
		txn = s.nextTxn
		s.lastCkptTxn = txn
	}
	s.mu.Unlock()

	s.mu.RLock()
	defer s.mu.RUnlock()
	// The write lock was let go: a transaction may have begun, or the store
	// been promoted, in between.
	if s.txnOpen || s.active != wasActive {
		return 0, fmt.Errorf("objstore: save checkpoint: a transaction began or the role changed: %w", ErrTxnOpen)
	}
	seq := s.seq
	if !s.active {
		txn, seq = s.snapTxn, s.applied
	}
	cw := &countWriter{w: w}
	c := &ckptWriter{crc: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
	c.bw = bufio.NewWriterSize(io.MultiWriter(cw, c.crc), 256<<10)
	if err := s.writeCheckpoint(c, txn, seq); err != nil {
		return cw.n, fmt.Errorf("objstore: save checkpoint: %w", err)
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ckptWriter frames records into the buffered output. Each record is
// encoded into buf after lenRoom spare bytes, into which its length is
// written once known, so a record leaves in one Write.
type ckptWriter struct {
	bw  *bufio.Writer
	crc interface {
		io.Writer
		Sum32() uint32
	}
	buf []byte
	pos int64 // bytes handed to bw
}

const lenRoom = binary.MaxVarintLen64

func (c *ckptWriter) begin(kind byte) []byte { return append(c.room(), kind) }

// room returns the reused buffer with space for the record's length in
// front; the record follows, and end fills the length in.
func (c *ckptWriter) room() []byte {
	if c.buf == nil {
		c.buf = make([]byte, lenRoom, 4096)
	}
	return c.buf[:lenRoom]
}

func (c *ckptWriter) end(b []byte) error {
	var l [lenRoom]byte
	k := binary.PutUvarint(l[:], uint64(len(b)-lenRoom))
	copy(b[lenRoom-k:], l[:k])
	n, err := c.bw.Write(b[lenRoom-k:])
	c.pos += int64(n)
	c.buf = b
	return err
}

func (c *ckptWriter) write(b []byte) error {
	n, err := c.bw.Write(b)
	c.pos += int64(n)
	return err
}

// writeCheckpoint encodes the store into c. The caller holds s.mu.
func (s *Store) writeCheckpoint(c *ckptWriter, txn, seq uint64) error {
	var hdr [ckptHeader]byte
	copy(hdr[:], ckptMagic)
	binary.BigEndian.PutUint16(hdr[8:], ckptVersion)
	if err := c.write(hdr[:]); err != nil {
		return err
	}
	for _, t := range s.reg.types {
		if err := c.end(appendSchemaRec(c.room(), t)); err != nil {
			return err
		}
	}
	gids := slices.Sorted(maps.Keys(s.groups))
	for _, id := range gids {
		if err := c.end(appendGroupRec(c.room(), id, s.groups[id])); err != nil {
			return err
		}
	}
	b := c.begin(recSnapshot)
	b = binary.AppendUvarint(b, txn)
	if err := c.end(b); err != nil {
		return err
	}
	refs := s.newAddrIndex()
	count := uint64(1)
	for i := range int32(s.ents.len()) {
		e := s.ents.at(i)
		if e.flags&fLive == 0 {
			continue
		}
		t := e.t
		src := e.ptr
		if s.active {
			// The shadow is what the peer holds, which is what was
			// committed. A static never sent (stale) has the shadow taken
			// when it was registered, and goes too: a checkpoint is the
			// whole state, not what a peer lacks.
			if src = e.shadow; src == nil {
				return fmt.Errorf("%s %d has no committed state", t.name, e.id)
			}
		}
		b, err := appendWholeObject(c.room(), txn, e, src, refs)
		if err != nil {
			c.buf = b
			return err
		}
		if err := c.end(b); err != nil {
			return err
		}
		count++
	}
	b = c.begin(recCommit)
	b = binary.AppendUvarint(b, txn)
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, count)
	if err := c.end(b); err != nil {
		return err
	}
	var tr [ckptTrailer - 4]byte
	binary.BigEndian.PutUint64(tr[1:], uint64(c.pos))
	if err := c.write(tr[:]); err != nil {
		return err
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	// The CRC goes around the CRC hash, which must not see it.
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], c.crc.Sum32())
	_, err := c.bw.Write(sum[:])
	if err == nil {
		err = c.bw.Flush()
	}
	return err
}

// Load replaces the state of a standby store with a checkpoint's: its
// dynamic objects, the fields of its static objects, its groups, and its
// position in the stream. After Load, Seq and AppliedSeq are the
// checkpoint's seq and SnapshotID its snapshot's transaction ID.
//
// The file is read whole (at most MaxCheckpointBytes) and its header,
// trailer and CRC checked before anything changes. The records then go
// through Apply; the snapshot transaction applies all or nothing, like a
// live snapshot (subscribers see OpReset and a create per object). If
// anything fails the store is left exactly as it was: objects, groups,
// seq, applied seq, snapshot ID, staged and held transactions, the type
// announcements of the stream it was following, and its refusals (a failed
// load is not a refused transaction of the stream). Readers running meanwhile
// may see groups or the seq change and change back. On success, staged and
// held transactions are dropped, as a snapshot drops them.
//
// The static objects of the checkpoint must be registered (same names) in
// the store beforehand; dynamic objects and groups come from the file. A
// checkpoint group that clashes with a group of the store (same ID and
// another name, or the reverse) fails the load: load into a fresh store, or
// one that follows the same active. Groups of the store that the checkpoint
// does not have are removed (they are empty once its objects are gone).
// A type of the checkpoint that this registry lacks, or has in another
// version, is handled as on a live stream (transform.go): the load fails
// only if an object of the file cannot be carried, and names it.
//
// After a successful Load the store awaits a stream whose first commit is
// seq+1 and which announces its types anew (as after ResetStream): the
// checkpoint's type numbers are those of the store that saved it, which
// need not be the active's. docs/CHECKPOINT.md describes how an active
// seeds a standby with a checkpoint and continues the stream.
//
// An active restores from a checkpoint by loading it into a new standby
// store and calling Promote. Load on an active store fails with an error
// wrapping ErrNotStandby, without reading r.
func (s *Store) Load(r io.Reader) error { return s.load(r, MaxCheckpointBytes) }

func (s *Store) load(r io.Reader, limit int64) error {
	if s.IsActive() {
		return fmt.Errorf("objstore: load checkpoint: %w", ErrNotStandby)
	}
	data, err := readLimited(r, limit)
	if err != nil {
		return fmt.Errorf("objstore: load checkpoint: %w", err)
	}
	ck, err := checkCheckpoint(data)
	if err != nil {
		return fmt.Errorf("objstore: load checkpoint: %w", err)
	}
	return s.applyCheckpoint(data, ck)
}

// readLimited reads r to its end, refusing more than limit bytes. Readers
// that know their length (files, bytes.Reader) are read into one buffer of
// the right size.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	hint := int64(-1)
	switch v := r.(type) {
	case interface{ Len() int }:
		hint = int64(v.Len())
	case *os.File:
		if st, err := v.Stat(); err == nil && st.Mode().IsRegular() {
			if off, err := v.Seek(0, io.SeekCurrent); err == nil {
				hint = st.Size() - off
			}
		}
	}
	if hint > limit {
		return nil, fmt.Errorf("%d bytes, limit %d: %w", hint, limit, ErrCheckpointTooLarge)
	}
	buf := make([]byte, 0, max(hint+1, 512))
	lr := io.LimitReader(r, limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(max(cap(buf), 512), int(limit+1)-len(buf)))
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, fmt.Errorf("more than %d bytes: %w", limit, ErrCheckpointTooLarge)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read after %d bytes: %w", len(buf), err)
		}
	}
}

// ckptInfo is what checkCheckpoint learnt from a file's records.
type ckptInfo struct {
	txn, seq uint64
	groups   map[uint32]ckptGroup
}

type ckptGroup struct{ name, prefix string }

// checkCheckpoint checks a whole file without changing anything: header,
// trailer and CRC first, then the framing and the order of the records.
// It never panics, whatever data holds.
func checkCheckpoint(data []byte) (*ckptInfo, error) {
	n := len(data)
	switch {
	case n == 0:
		return nil, fmt.Errorf("empty file: %w", ErrCheckpointTruncated)
	case n < len(ckptMagic) && string(data) == ckptMagic[:n]:
		return nil, fmt.Errorf("%d bytes, shorter than the header: %w", n, ErrCheckpointTruncated)
	case n < len(ckptMagic) || string(data[:len(ckptMagic)]) != ckptMagic:
		return nil, fmt.Errorf("magic %q, want %q: %w", data[:min(n, len(ckptMagic))], ckptMagic, ErrCheckpointForeign)
	case n < ckptHeader:
		return nil, fmt.Errorf("%d bytes, shorter than the header: %w", n, ErrCheckpointTruncated)
	}
	if v := binary.BigEndian.Uint16(data[8:]); v != ckptVersion {
		return nil, fmt.Errorf("version %d, this build reads %d: %w", v, ckptVersion, ErrCheckpointVersion)
	}
	if n < ckptHeader+ckptTrailer {
		return nil, fmt.Errorf("%d bytes, no room for a trailer: %w", n, ErrCheckpointTruncated)
	}
	tpos := n - ckptTrailer
	if data[tpos] != 0 || binary.BigEndian.Uint64(data[tpos+1:]) != uint64(tpos) {
		return nil, fmt.Errorf("no trailer in the last %d of %d bytes: %w", ckptTrailer, n, ErrCheckpointTruncated)
	}
	if got, want := crc32.Checksum(data[:n-4], crc32.MakeTable(crc32.Castagnoli)), binary.BigEndian.Uint32(data[n-4:]); got != want {
		return nil, fmt.Errorf("CRC32C %08x, trailer says %08x: %w", got, want, ErrCheckpointCorrupt)
	}
	if f := binary.BigEndian.Uint16(data[10:]); f != 0 {
		return nil, fmt.Errorf("flags %#04x not understood: %w", f, ErrCheckpointVersion)
	}
	ck := &ckptInfo{groups: map[uint32]ckptGroup{}}
	const (
		announce = iota // Schema and Group records
		inTxn           // after the Snapshot record
		done            // after the Commit record
	)
	state := announce
	pos, k := ckptHeader, 0
	for ; ; k++ {
		rec, next, err := nextRecord(data, pos, tpos)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			break
		}
		bad := func(why string) error {
			return fmt.Errorf("record %d at byte %d: %s: %w", k, pos, why, ErrCheckpointInvalid)
		}
		d := decoder{b: rec}
		kind := d.byte()
		switch {
		case state == done:
			return nil, bad("record after the Commit")
		case kind == recSchema && state == announce:
		case kind == recGroup && state == announce:
			id, name, prefix := parseGroupRec(&d)
			if d.err != nil {
				return nil, bad("malformed Group record")
			}
			if _, dup := ck.groups[id]; dup {
				return nil, bad(fmt.Sprintf("group %d twice", id))
			}
			ck.groups[id] = ckptGroup{name, prefix}
		case kind == recSnapshot && state == announce:
			ck.txn = d.uvarint()
			state = inTxn
		case (kind == recCreate || kind == recUpdate) && state == inTxn:
			if txn := d.uvarint(); d.err == nil && txn != ck.txn {
				return nil, bad(fmt.Sprintf("txn %d inside snapshot %d", txn, ck.txn))
			}
		case kind == recCommit && state == inTxn:
			txn := d.uvarint()
			ck.seq = d.uvarint()
			if d.err == nil && txn != ck.txn {
				return nil, bad(fmt.Sprintf("commit of txn %d closes snapshot %d", txn, ck.txn))
			}
			state = done
		default:
			want := "Schema, Group or Snapshot"
			if state == inTxn {
				want = "Create, Update or Commit"
			}
			return nil, bad(fmt.Sprintf("record kind %d out of place (want %s)", kind, want))
		}
		if d.err != nil {
			return nil, bad(d.err.Error())
		}
		pos = next
	}
	if state != done {
		return nil, fmt.Errorf("%d records and no complete snapshot transaction: %w", k, ErrCheckpointInvalid)
	}
	return ck, nil
}

// nextRecord returns the record framed at pos and the position after it, or
// a nil record at the end marker, which must sit at tpos.
func nextRecord(data []byte, pos, tpos int) ([]byte, int, error) {
	l, k := binary.Uvarint(data[pos : tpos+1]) // the end marker is at tpos
	switch {
	case k <= 0:
		return nil, 0, fmt.Errorf("bad record length at byte %d: %w", pos, ErrCheckpointInvalid)
	case l == 0 && pos != tpos:
		return nil, 0, fmt.Errorf("end marker at byte %d, trailer at %d: %w", pos, tpos, ErrCheckpointInvalid)
	case l == 0:
		return nil, pos, nil
	case pos+k > tpos || l > uint64(tpos-pos-k):
		return nil, 0, fmt.Errorf("record at byte %d of %d bytes runs into the trailer at %d: %w", pos, l, tpos, ErrCheckpointInvalid)
	}
	start := pos + k
	return data[start : start+int(l)], start + int(l), nil
}

// applyCheckpoint feeds a checked file's records to Apply, undoing what
// they did if one fails.
func (s *Store) applyCheckpoint(data []byte, ck *ckptInfo) error {
	restore := s.saveStreamState()
	pos, tpos := ckptHeader, len(data)-ckptTrailer
	for k := 0; ; k++ {
		rec, next, _ := nextRecord(data, pos, tpos) // checked by checkCheckpoint
		if rec == nil {
			break
		}
		if err := s.Apply(rec); err != nil {
			restore(false)
			return fmt.Errorf("objstore: load checkpoint: record %d at byte %d: %w: %w", k, pos, ErrCheckpointInvalid, err)
		}
		pos = next
	}
	restore(true)
	s.mu.Lock()
	for id, g := range s.groups {
		if cg, ok := ck.groups[id]; ok {
			g.prefix = cg.prefix
			continue
		}
		if g.Len() != 0 {
			continue // cannot happen: groups hold dynamic objects only
		}
		s.removeGroup(g)
	}
	s.mu.Unlock()
	s.ResetStream(ck.seq)
	return nil
}

// saveStreamState sets aside what applying a checkpoint's records changes
// besides the objects (which the snapshot transaction changes all or
// nothing), and returns a function that puts it back (ok false) or drops
// it (ok true). Staged and held transactions are moved out of the way,
// since the Snapshot record would otherwise release them for good.
func (s *Store) saveStreamState() func(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	groups := maps.Clone(s.groups)
	peerTypes, peerByName := maps.Clone(s.peerTypes), maps.Clone(s.peerByName)
	refusals, refusalsDropped := slices.Clone(s.refusals), s.refusalsDropped
	staged := maps.Clone(s.staged)
	clear(s.staged)
	held := s.held
	s.held = nil
	seq, applied, snapTxn, awaitSnap := s.seq, s.applied, s.snapTxn, s.awaitSnap
	return func(ok bool) {
		if ok {
			return // the snapshot superseded them, as a live one does
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for id, g := range s.groups {
			if _, had := groups[id]; !had {
				s.removeGroup(g)
			}
		}
		clear(s.peerTypes)
		maps.Copy(s.peerTypes, peerTypes)
		clear(s.peerByName)
		maps.Copy(s.peerByName, peerByName)
		s.refusals, s.refusalsDropped = refusals, refusalsDropped
		clear(s.staged)
		maps.Copy(s.staged, staged)
		s.held = held
		s.seq, s.applied, s.snapTxn, s.awaitSnap = seq, applied, snapTxn, awaitSnap
	}
}

// SaveFile writes a checkpoint to path so that a crash at any moment leaves
// either the previous file or the new one, never a mix: it writes a
// temporary file in the same directory (path's name + ".tmp-" + random),
// syncs it, renames it over path and syncs the directory. On error the
// temporary file is removed; a crash can leave one behind, which the next
// SaveFile does not reuse (remove stale ones at start-up if it matters).
// The file is created with mode 0600: a checkpoint holds the whole state.
func (s *Store) SaveFile(path string) error { return s.saveFile(path, nil) }

// saveFile is SaveFile with the temporary file's writer wrapped (tests
// inject write failures).
func (s *Store) saveFile(path string, wrap func(io.Writer) io.Writer) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return fmt.Errorf("objstore: save checkpoint %s: %w", path, err)
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			os.Remove(tmp)
		}
	}()
	var w io.Writer = f
	if wrap != nil {
		w = wrap(f)
	}
	if _, err = s.Save(w); err != nil {
		return fmt.Errorf("objstore: save checkpoint %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("objstore: save checkpoint %s: sync: %w", path, err)
	}
	closed = true
	if err = f.Close(); err != nil {
		return fmt.Errorf("objstore: save checkpoint %s: close: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("objstore: save checkpoint %s: %w", path, err)
	}
	// Without this the rename itself may not survive a power failure. The
	// new file is in place either way; the error says so.
	d, derr := os.Open(dir)
	if derr == nil {
		derr = d.Sync()
		if cerr := d.Close(); derr == nil {
			derr = cerr
		}
	}
	if derr != nil {
		return fmt.Errorf("objstore: checkpoint %s written, but syncing directory %s failed: %w", path, dir, derr)
	}
	return nil
}

// CheckpointID returns the snapshot transaction ID the last Save of this
// active store wrote into its checkpoint, 0 before any: an active that knows
// it can resume a standby seeded from that checkpoint from the live stream.
func (s *Store) CheckpointID() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lastCkptTxn
}

// LoadFile loads the checkpoint at path (see Load).
func (s *Store) LoadFile(path string) error {
	if s.IsActive() {
		return fmt.Errorf("objstore: load checkpoint %s: %w", path, ErrNotStandby)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("objstore: load checkpoint: %w", err)
	}
	defer f.Close()
	if err := s.Load(f); err != nil {
		return fmt.Errorf("%w (file %s)", err, path)
	}
	return nil
}

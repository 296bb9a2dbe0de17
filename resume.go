package swha

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/swha/swha/objstore"
)

// Resuming a standby from a seq instead of a snapshot.
//
// A standby that holds the active's state up to some seq — seeded from a
// checkpoint (Config.Checkpoint), or still holding its mirror when its
// session restarts — tells the active so in its hello (the schemas message,
// skew.go): the snapshot its state derives from and its applied seq. If the
// active sent that snapshot itself and still has every commit after that
// seq in its replay log, it replays those commits, preceded by every schema
// and group announcement, instead of sending the whole store. Otherwise it
// sends a snapshot, which the standby takes in any case.

// DefaultReplayBytes is Config.ReplayBytes when zero.
const DefaultReplayBytes = 32 << 20

// helloWait bounds how long an active waits for a new standby's hello
// before it sends a snapshot anyway.
const helloWait = 500 * time.Millisecond

// replayLog keeps the records of the latest commits, up to a byte budget,
// oldest first. It belongs to the write path: the sink hands it each
// commit's records, sendReplay reads it, both holding wsem.
//
// The records are copied into large chunks rather than kept in a buffer per
// commit: a stream of small commits then costs one chunk allocation per
// megabyte, not a buffer grown by doubling per commit (measured: of the
// active's allocations while streaming a million routes in commits of 100,
// the per-commit buffers were a fifth of the bytes, and each was fresh memory
// to fault in and for the collector to chase), and a full log turns over by
// reusing the chunks that fell off it.
type replayLog struct {
	max    int // bytes; negative: keep nothing
	size   int
	ents   []replayEntry
	chunks []*replayChunk // oldest first; the last one is being filled
	spare  []*replayChunk // chunks that fell off the log, for reuse
}

type replayEntry struct {
	seq   uint64
	data  []byte
	ends  []int
	chunk *replayChunk
}

// replayChunk holds the records and record ends of consecutive commits.
type replayChunk struct {
	data []byte
	ends []int
	live int // entries of the log in this chunk
}

// Chunk sizes: a commit larger than a chunk gets a chunk of its own, which
// is not reused.
const (
	replayChunkBytes = 1 << 20
	replayChunkEnds  = replayChunkBytes / 32
	maxReplaySpare   = 2
)

// keep copies the records of commit seq (data, split at ends; the caller
// keeps both) into the log and drops the oldest commits beyond the budget.
func (l *replayLog) keep(seq uint64, data []byte, ends []int) {
	c := l.room(len(data), len(ends))
	start := len(c.data)
	c.data = append(c.data, data...)
	e := replayEntry{seq: seq, data: c.data[start:len(c.data):len(c.data)], chunk: c}
	start = len(c.ends)
	c.ends = append(c.ends, ends...)
	e.ends = c.ends[start:len(c.ends):len(c.ends)]
	c.live++
	l.ents = append(l.ents, e)
	l.size += len(data)
	for l.size > l.max && len(l.ents) > 1 {
		old := l.ents[0]
		l.size -= len(old.data)
		l.ents[0] = replayEntry{}
		l.ents = l.ents[1:]
		// The newest entry is in the last chunk, so a chunk emptied here is
		// an older one, and entries leave in order: it is the oldest.
		if old.chunk.live--; old.chunk.live == 0 {
			l.chunks[0] = nil
			l.chunks = l.chunks[1:]
			if len(l.spare) < maxReplaySpare && cap(old.chunk.data) == replayChunkBytes {
				old.chunk.data, old.chunk.ends = old.chunk.data[:0], old.chunk.ends[:0]
				l.spare = append(l.spare, old.chunk)
			}
		}
	}
}

// room returns the chunk to copy a commit of n bytes and k records into.
func (l *replayLog) room(n, k int) *replayChunk {
	if len(l.chunks) > 0 {
		c := l.chunks[len(l.chunks)-1]
		if len(c.data)+n <= cap(c.data) && len(c.ends)+k <= cap(c.ends) {
			return c
		}
	}
	var c *replayChunk
	if j := len(l.spare); j > 0 && n <= replayChunkBytes && k <= replayChunkEnds {
		c = l.spare[j-1]
		l.spare[j-1] = nil
		l.spare = l.spare[:j-1]
	} else {
		c = &replayChunk{
			data: make([]byte, 0, max(n, replayChunkBytes)),
			ends: make([]int, 0, max(k, replayChunkEnds)),
		}
	}
	l.chunks = append(l.chunks, c)
	return c
}

// entry returns the logged commit with sequence number seq, if the log holds
// it.
func (l *replayLog) entry(seq uint64) (replayEntry, bool) {
	for _, e := range l.ents {
		if e.seq == seq {
			return e, true
		}
	}
	return replayEntry{}, false
}

// since returns the commits after seq from through to, and false unless the
// log holds every one of them.
func (l *replayLog) since(from, to uint64) ([]replayEntry, bool) {
	if l.max < 0 {
		return nil, false // no log: always a snapshot
	}
	if from == to {
		return nil, true
	}
	for i, e := range l.ents {
		if e.seq != from+1 {
			continue
		}
		out := l.ents[i:]
		for k, e := range out {
			if e.seq != from+1+uint64(k) {
				return nil, false // a commit whose records did not all reach the log
			}
		}
		return out, out[len(out)-1].seq == to
	}
	return nil, false
}

// hello is what a standby says when a session starts: the schemas of its
// version (skew.go) and where its state stands.
type hello struct {
	snap, applied uint64
	schemas       []*objstore.Schema
}

// onHello takes a standby's hello (active role): it works out the version
// skew and decides between replaying from the standby's seq and a snapshot.
func (n *Node) onHello(b []byte) {
	h, err := parseHello(b)
	if err != nil {
		n.log.Warn("dropped bad hello from the standby", "err", err)
		return
	}
	n.noteSkew(h.schemas)
	n.mu.Lock()
	if n.role != Active || !n.peerUp || !n.awaitHello {
		// Late (the fallback snapshot went already) or repeated: this
		// stream has been decided, and a second decision would point the
		// active at a snapshot the standby no longer holds.
		n.mu.Unlock()
		n.log.Debug("ignored a hello on a stream already decided", "snapshot", h.snap, "applied_seq", h.applied)
		return
	}
	n.awaitHello = false
	at, sent := n.sentSnaps[h.snap]
	resume := h.snap != 0 && sent && h.applied >= at && h.applied <= n.committed
	if resume {
		n.resumeSnap, n.resumeFrom, n.needResume = h.snap, h.applied, true
	}
	n.mu.Unlock()
	n.log.Info("standby hello", "snapshot", h.snap, "applied_seq", h.applied, "resume", resume)
	if !resume {
		n.needSnap.Store(true)
	}
	n.kick()
}

// expectHello arms the fallback for a standby that never says hello.
func (n *Node) expectHello() {
	n.mu.Lock()
	n.awaitHello = true
	n.helloGen++
	gen := n.helloGen
	n.mu.Unlock()
	time.AfterFunc(helloWait, func() {
		n.mu.Lock()
		late := n.awaitHello && n.helloGen == gen // not a later stream's wait
		if late {
			n.awaitHello = false
		}
		n.mu.Unlock()
		if late {
			n.needSnap.Store(true)
			n.kick()
		}
	})
}

// sendReplay sends the standby the commits after the seq it holds, if the
// log still has them all, and reports whether it did.
func (n *Node) sendReplay() (bool, error) {
	select {
	case n.wsem <- struct{}{}:
	case <-n.ctx.Done():
		return false, ErrClosed
	}
	defer func() { <-n.wsem }()
	n.mu.Lock()
	snap, from, want := n.resumeSnap, n.resumeFrom, n.needResume
	n.needResume = false
	up := n.peerUp && n.role == Active
	n.mu.Unlock()
	if !want || !up {
		return true, nil
	}
	ents, ok := n.replay.since(from, n.store.Seq())
	if !ok {
		return false, nil
	}
	msgs := n.store.Announcements()
	for _, e := range ents {
		msgs = appendRecords(msgs, e.data, 0, e.ends)
	}
	n.mu.Lock()
	// From here on the standby follows this stream from its own snapshot:
	// its acks name that snapshot, and it holds everything up to from.
	n.streaming = true
	n.snapTxn = snap
	// Exactly what the standby said it holds: an ack naming the same
	// snapshot may be left from its previous incarnation, which held more.
	n.acked = from
	n.refusedSnap = ""
	n.bump()
	n.mu.Unlock()
	for len(msgs) > 0 {
		k := min(len(msgs), sinkMaxRecords)
		if _, err := n.conn.SendBatch(n.ctx, msgs[:k], 0); err != nil {
			n.needSnap.Store(true)
			return true, fmt.Errorf("swha: replay to standby: %w", err)
		}
		msgs = msgs[k:]
	}
	n.stats.replays.Add(1)
	n.log.Info("replayed commits to a resuming standby", "from_seq", from, "commits", len(ents), "snapshot", snap)
	return true, nil
}

// loadCheckpoint seeds the store from the checkpoint at path before the
// session starts. A missing file is a fresh start; a bad one is logged and
// ignored (the store is left as it was, and a snapshot will come).
func (n *Node) loadCheckpoint(path string) error {
	err := n.store.LoadFile(path)
	switch {
	case err == nil:
		n.log.Info("seeded from checkpoint", "path", path, "seq", n.store.AppliedSeq(), "objects", n.store.Len())
	case errors.Is(err, os.ErrNotExist):
		n.log.Info("no checkpoint to seed from", "path", path)
	default:
		n.log.Warn("ignored checkpoint", "path", path, "err", err)
		n.stats.badCheckpoints.Add(1)
	}
	if n.cfg.Role == Active {
		// Loaded into a standby store, as objstore requires; now take over.
		if _, err := n.store.Promote(); err != nil {
			return fmt.Errorf("swha: restore active from checkpoint %s: %w", path, err)
		}
		n.committed, n.acked = n.store.Seq(), n.store.Seq()
	}
	return nil
}

// SaveCheckpoint writes the node's committed state to path (crash-safe:
// see objstore.Store.SaveFile). A standby saves its mirror between two
// applied messages; an active saves between two commits (it takes the
// write path, so it waits for an open transaction). A standby restarted
// with Config.Checkpoint set to that path resumes from it.
func (n *Node) SaveCheckpoint(path string) error {
	release, ok := n.quiesce()
	if !ok {
		return ErrClosed
	}
	defer release()
	if err := n.store.SaveFile(path); err != nil {
		return fmt.Errorf("swha: save checkpoint: %w", err)
	}
	if n.Role() == Active {
		// A standby seeded from this file names its snapshot ID in its
		// hello; knowing it, the active resumes that standby from the
		// log rather than sending the whole store again.
		n.mu.Lock()
		n.rememberSnapshot(n.store.CheckpointID(), n.store.Seq())
		n.mu.Unlock()
	}
	return nil
}

// Leaks reports the dynamic objects that no static object or group reaches
// (see objstore.Store.Leaks): objects the application probably lost track
// of. They are reported, never freed. On an active it takes the write path
// (it reads the committed state between two commits); on a standby it runs
// between two applied messages.
func (n *Node) Leaks() []objstore.Leak {
	release, ok := n.quiesce()
	if !ok {
		return nil
	}
	defer release()
	return n.store.Leaks()
}

// quiesce holds the store still for a whole-store read: a standby between
// two applied messages, an active between two commits. It reports false
// when the node closed while waiting.
func (n *Node) quiesce() (release func(), ok bool) {
	if n.Role() == Standby {
		n.applyMu.Lock()
		return n.applyMu.Unlock, true
	}
	select {
	case n.wsem <- struct{}{}:
		return func() { <-n.wsem }, true
	case <-n.ctx.Done():
		return nil, false
	}
}

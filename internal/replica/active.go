// Package replica holds the replication protocol between an active node and
// its standby as two pure state machines, in the style of
// l2transport.Session and etcd-io/raft's RawNode: Active and Standby take
// inputs (session events, node messages from the peer, "committed seq N",
// "applied up to N with these refusals", Tick(now)) and say what to do
// (messages to send, a snapshot, replay or repair to run, whether a commit's
// wait is over). They own no goroutine, lock, socket or clock: the root
// package's driver feeds them under its lock and does the I/O. A test in this
// package fails if one creeps in (purity_test.go).
//
// Words (docs/ARCHITECTURE.md has the glossary): a "stream" is one session
// between two peer incarnations (it starts with EventEstablished or
// EventPeerRestarted); "seq" is the commit sequence number of the store, not
// the session's frame sequence; "snap" is the transaction ID of the snapshot
// a standby's state derives from.
package replica

import (
	"time"

	"github.com/swha/swha/internal/wire"
)

// Event is what the session reported, as far as replication cares.
type Event uint8

// Events.
const (
	// NewStream: the session (re-)established with a peer incarnation; what
	// the standby holds must be decided again, once.
	NewStream Event = iota + 1
	// Silent: nothing was heard from the peer for the session's dead
	// interval. The stream is down; that says nothing about whether the peer
	// is dead (only the heartbeat module decides that).
	Silent
	// Alive: the peer was heard again on the same stream after Silent.
	Alive
)

// Timing of the active's protocol.
const (
	// HelloWait bounds how long an active waits for a new standby's hello
	// before it sends a snapshot anyway.
	HelloWait = 500 * time.Millisecond
	// SnapshotGap spaces snapshots to one standby, so that one that keeps
	// refusing them does not make the active spin.
	SnapshotGap = 50 * time.Millisecond
	// keptSnapshots is how many sent snapshots an active remembers for
	// resuming a standby that holds one of them.
	keptSnapshots = 64
	// refusedTrimEvery: the refused-seq map is trimmed once per that many
	// acknowledged commits, not on every ack.
	refusedTrimEvery = 4096
)

// Range is a replay to run: the commits after From, for a standby whose
// state derives from snapshot Snap, decided on stream Stream.
type Range struct{ Snap, From, Stream uint64 }

// Repair is a refused commit to mend, and the object the standby named.
type Repair struct{ Seq, Object uint64 }

// Work is what the active's driver must do next, on the write path.
type Work struct {
	Repairs  []Repair
	Replay   *Range
	Snapshot bool // a snapshot is owed and due now
}

// Active is the active node's side of the protocol.
type Active struct {
	window uint64

	peerUp    bool   // the session to a standby is up
	silent    bool   // the stream went silent and has not come back
	streaming bool   // the standby follows this stream: records must go out
	snapTxn   uint64 // the snapshot the standby's acks must name
	committed uint64 // seq of the last local commit
	acked     uint64 // highest seq the standby applied on a snapshot of ours
	lastAck   wire.Ack
	peerEpoch uint32 // the standby incarnation this state is about
	stream    uint64 // counts streams: a decision holds only for its own

	// What the standby refused: refused maps the seq of each refused commit
	// on the current stream to the standby's reason; refusedSnap is set while
	// it refuses our latest snapshot; snapRefusal is a refusal of a snapshot
	// whose sending has not been recorded yet (it overtook us).
	refused     map[uint64]string
	refusedTrim uint64
	refusedSnap string
	lastRefusal string
	snapRefusal wire.Refusal
	stale       []uint64
	repairs     []Repair

	awaitHello bool
	helloAt    time.Time
	resume     *Range
	needSnap   bool
	lastSnapAt time.Time
	sentSnaps  map[uint64]uint64 // snapshot txn → seq it carried
	sentOrder  []uint64

	// coordPartial counts coordinated transactions with some parts committed
	// and some not. A snapshot waits until it is zero: one taken in between
	// would carry the committed parts while the standby, which drops its held
	// queue for a snapshot, waits for ever for the rest.
	coordPartial int
}

// NewActive returns the active side with the given asynchronous window,
// starting at commit seq (a store restored from a checkpoint).
func NewActive(window int, seq uint64) *Active {
	// silent: no standby follows this node yet. A peer heard on a stream
	// that predates this core (a promoted standby's old active, after a
	// partition heals) gets a snapshot, as one back from silence does.
	return &Active{window: uint64(max(window, 1)), committed: seq, acked: seq, silent: true}
}

// Event takes a session event. peerEpoch is the standby incarnation the
// session now talks to.
func (a *Active) Event(ev Event, peerEpoch uint32, now time.Time) {
	switch ev {
	case NewStream:
		a.peerUp, a.silent, a.streaming = true, false, false
		a.peerEpoch = peerEpoch
		a.stream++
		a.lastAck = wire.Ack{}
		// One decision per stream: the standby's hello says what it holds
		// (resume or snapshot). Whatever an earlier event asked for is moot.
		a.needSnap, a.resume = false, nil
		a.awaitHello, a.helloAt = true, now.Add(HelloWait)
	case Silent:
		a.peerUp, a.silent, a.streaming = false, true, false
	case Alive:
		a.peerUp = true
		if !a.silent {
			// Heard again as part of a new stream (the session reports the
			// restart first): the hello decides.
			return
		}
		a.silent, a.streaming = false, false
		a.peerEpoch = peerEpoch
		a.lastAck = wire.Ack{}
		// Same stream, after silence: the standby awaits a snapshot (it
		// stopped following when the active went solo).
		if !a.awaitHello {
			a.needSnap = true
		}
	}
}

// Hello takes a standby's hello and reports whether the standby will be
// resumed from its seq (false: a snapshot, or the hello was ignored).
func (a *Active) Hello(h wire.Hello) (resume, decided bool) {
	if !a.peerUp || !a.awaitHello {
		// Late (the fallback snapshot went already) or repeated: this stream
		// has been decided, and a second decision would point the active at
		// a snapshot the standby no longer holds.
		return false, false
	}
	a.awaitHello = false
	at, sent := a.sentSnaps[h.Snap]
	if h.Snap != 0 && sent && h.Applied >= at && h.Applied <= a.committed {
		a.resume = &Range{Snap: h.Snap, From: h.Applied, Stream: a.stream}
		return true, true
	}
	a.needSnap = true
	return false, true
}

// Tick advances time: a standby that never said hello gets a snapshot.
func (a *Active) Tick(now time.Time) {
	if a.awaitHello && !now.Before(a.helloAt) {
		a.awaitHello = false
		a.needSnap = true
	}
}

// NextDeadline is when the driver should look again (zero: when woken): a
// standby's hello is overdue, or an owed snapshot may go (SnapshotDue).
func (a *Active) NextDeadline() time.Time {
	next, due := time.Time{}, a.SnapshotDue()
	if a.awaitHello {
		next = a.helloAt
	}
	if next.IsZero() || (!due.IsZero() && due.Before(next)) {
		next = due
	}
	return next
}

// Ack takes a standby's applied-ack.
func (a *Active) Ack(m wire.Ack) {
	if m.Flags&wire.AckNeedSnapshot != 0 {
		// Stop streaming until the snapshot: the standby drops records
		// anyway, and a commit waiting for room in the window (holding the
		// write path the snapshot needs) must not wait for acks that will
		// not come.
		a.streaming = false
		a.needSnap = true
		return
	}
	a.lastAck = m
	// An ack counts only against a base of ours the standby holds: a
	// snapshot or resume of this stream. With none yet (snapTxn 0) an
	// ack's seq is the standby's own count — a demoted active's, say — and
	// counting it would acknowledge commits it never received.
	if a.snapTxn == 0 || m.Snap != a.snapTxn || m.Seq <= a.acked {
		return
	}
	a.acked = m.Seq
	// Waiters check refusals once acked passes their seq; keep a generous
	// tail for the slow ones and bound the rest. Trimming scans the map, so
	// it runs once per refusedTrimEvery acknowledged commits.
	if len(a.refused) > refusedTrimEvery && a.acked >= a.refusedTrim {
		for seq := range a.refused {
			if seq+a.window+refusedTrimEvery < a.acked {
				delete(a.refused, seq)
			}
		}
		a.refusedTrim = a.acked + refusedTrimEvery
	}
}

// Refusal takes a standby's refusal of a transaction its version cannot
// hold.
func (a *Active) Refusal(r wire.Refusal) {
	a.lastRefusal = r.Text
	switch {
	case r.Snapshot && r.Txn != a.snapTxn:
		a.snapRefusal = r // possibly overtook SnapshotSent
	case r.Snapshot:
		// The standby holds nothing of ours: stop streaming to it until a
		// snapshot it accepts.
		a.refusedSnap = r.Text
		a.streaming = false
	case r.Snap == a.snapTxn:
		if a.refused == nil {
			a.refused, a.refusedTrim = map[uint64]string{}, 0
		}
		a.refused[r.Seq] = r.Text
		// The standby lacks every change of that commit, not only the one
		// that did not fit: mend the others.
		a.repairs = append(a.repairs, Repair{Seq: r.Seq, Object: r.Object})
		if r.Object != 0 {
			// Before the application's next transaction, not whenever the
			// repair runs: its next update of this object must be whole.
			a.stale = append(a.stale, r.Object)
		}
	}
}

// Committed records a local commit with seq. hole says its records did not
// all reach the session: the standby's stream has a gap, so streaming stops
// and a snapshot (whose acknowledgement covers this commit too) is owed.
// It reports whether a snapshot is now owed because the standby refused the
// last one (this commit may have fixed what it could not hold).
func (a *Active) Committed(seq uint64, hole bool) (resnap bool) {
	a.committed = max(a.committed, seq)
	if hole {
		a.streaming = false
		a.needSnap = true
		return false
	}
	if a.refusedSnap != "" {
		a.needSnap = true
		return true
	}
	return false
}

// Coordinated records that a coordinated transaction became partial (some
// parts committed, +1) or complete (-1). The count never goes below zero: a
// coordinated transaction begun under an earlier term (before a demotion
// and a new promotion, with another core) completes under this one, and a
// negative count would hold back every snapshot for good.
func (a *Active) Coordinated(delta int) { a.coordPartial = max(0, a.coordPartial+delta) }

// TakeStale returns the objects whose next update must carry every field,
// for the application's next transaction.
func (a *Active) TakeStale() []uint64 {
	s := a.stale
	a.stale = nil
	return s
}

// HasStale says whether TakeStale has objects to hand out.
func (a *Active) HasStale() bool { return len(a.stale) > 0 }

// Work says what the driver should run now on the write path: repairs and a
// replay are taken (they are the driver's from now on); a snapshot stays owed
// until StartSnapshot. A snapshot is held back while a coordinated
// transaction is partial or until SnapshotGap after the previous one; see
// SnapshotDue.
func (a *Active) Work(now time.Time) Work {
	var w Work
	if len(a.repairs) > 0 {
		w.Repairs, a.repairs = a.repairs, nil
	}
	if a.resume != nil {
		w.Replay, a.resume = a.resume, nil
	}
	w.Snapshot = a.needSnap && a.coordPartial == 0 && !now.Before(a.lastSnapAt.Add(SnapshotGap))
	return w
}

// SnapshotDue is when an owed snapshot may go (zero: none owed, or held back
// by a partial coordinated transaction, which kicks the driver when it
// completes).
func (a *Active) SnapshotDue() time.Time {
	if !a.needSnap || a.coordPartial > 0 {
		return time.Time{}
	}
	return a.lastSnapAt.Add(SnapshotGap)
}

// CoordinatedPartial is how many coordinated transactions hold back a
// snapshot.
func (a *Active) CoordinatedPartial() int { return a.coordPartial }

// StartSnapshot says whether to send a snapshot now; the driver holds the
// write path. From true on, records are streamed: they follow the snapshot.
func (a *Active) StartSnapshot(now time.Time) bool {
	if !a.needSnap || a.coordPartial > 0 {
		return false
	}
	a.needSnap = false
	if !a.peerUp {
		return false
	}
	a.lastSnapAt = now
	a.streaming = true
	// A new base: what the standby refused of the old one is moot (refused
	// seqs stay: seqs are never reused, and a slow waiter may still look its
	// own up).
	a.refusedSnap = ""
	a.awaitHello, a.resume = false, nil
	return true
}

// SnapshotSent records the outcome of the snapshot StartSnapshot allowed:
// its transaction txn, carrying the state at seq.
func (a *Active) SnapshotSent(txn, seq uint64, err error) {
	a.snapTxn = txn
	if err != nil {
		a.needSnap = true
		return
	}
	a.RememberSnapshot(txn, seq)
	if a.snapRefusal.Txn == txn && a.snapRefusal.Snapshot {
		a.refusedSnap = a.snapRefusal.Text
		a.streaming = false
	}
	if a.lastAck.Snap == txn && a.lastAck.Seq > a.acked {
		a.acked = a.lastAck.Seq // the ack overtook us
	}
}

// RememberSnapshot records a snapshot this active sent, or wrote into a
// checkpoint, and the seq it carried, for resuming a standby that holds it.
func (a *Active) RememberSnapshot(txn, seq uint64) {
	if a.sentSnaps == nil {
		a.sentSnaps = map[uint64]uint64{}
	}
	a.sentSnaps[txn] = seq
	a.sentOrder = append(a.sentOrder, txn)
	if len(a.sentOrder) > keptSnapshots {
		delete(a.sentSnaps, a.sentOrder[0])
		a.sentOrder = a.sentOrder[1:]
	}
}

// StartReplay says whether the replay r (from Work) still stands; the driver
// holds the write path and has checked that its log holds every commit
// after r.From. From true on the standby follows this stream from its own
// snapshot, and holds exactly what it said: an ack naming the same snapshot
// may be left from its previous incarnation, which held more.
func (a *Active) StartReplay(r Range) bool {
	if !a.peerUp || r.Stream != a.stream {
		return false // the stream it was decided for is gone
	}
	a.streaming = true
	a.snapTxn = r.Snap
	a.acked = r.From
	a.refusedSnap = ""
	return true
}

// Resync asks for a fresh snapshot to the standby (an operator's "resync":
// the mirror is suspected wrong, or a checkpoint was loaded beside it). It
// reports false when no standby is up to take one. From the snapshot's
// start until the standby acknowledges it the standby is not hot: the
// mirror is being rebuilt, and a failover in between would promote a copy
// this active no longer vouches for.
func (a *Active) Resync() bool {
	if !a.peerUp {
		return false
	}
	a.needSnap = true
	a.awaitHello, a.resume = false, nil
	return true
}

// ReplayFailed: the replay could not be sent (the log no longer reaches back
// that far, or the session refused it): a snapshot is owed instead.
func (a *Active) ReplayFailed() { a.needSnap = true }

// Streaming reports whether commits' records must go to the session.
func (a *Active) Streaming() bool { return a.streaming && a.peerUp }

// Hot reports whether the standby mirrors this node: it acknowledged a
// snapshot (or a resume) of the current stream, and every commit since
// streams to it. Only a hot standby may take over with nothing lost.
func (a *Active) Hot() bool {
	return a.peerUp && a.streaming && a.snapTxn != 0 && a.lastAck.Snap == a.snapTxn
}

// PeerUp reports whether a session to a standby is up.
func (a *Active) PeerUp() bool { return a.peerUp }

// WindowFull reports whether an asynchronous commit must wait: the standby
// is hot and Window transactions are unacknowledged. Solo, or while a
// joining standby is still being sent its snapshot and applies it (it
// acknowledges nothing until it has, which takes seconds for a large
// store), nothing is owed and nothing waits: the active keeps committing
// at its own rate through a bulk sync, and the commits queue behind the
// snapshot.
func (a *Active) WindowFull() bool {
	return a.Hot() && a.committed >= a.acked+a.window
}

// Outcome is how a synchronous commit's wait ends.
type Outcome struct {
	Done bool
	// Lost: the session to the standby went down before it acknowledged.
	Lost bool
	// Refused is the standby's reason for not applying the transaction.
	Refused string
}

// Outcome says whether the synchronous wait for seq is over, and how. owed
// says a standby was connected when the transaction committed; without one
// the node is solo and nothing is owed.
func (a *Active) Outcome(seq uint64, owed bool) Outcome {
	reason, refused := a.refused[seq]
	switch {
	case a.acked >= seq && refused:
		return Outcome{Done: true, Refused: reason}
	case a.acked >= seq:
		return Outcome{Done: true}
	case a.refusedSnap != "" && owed:
		return Outcome{Done: true, Refused: "it refused the snapshot it needs to mirror this node: " + a.refusedSnap}
	case !a.peerUp && !owed:
		return Outcome{Done: true} // solo
	case !a.peerUp:
		return Outcome{Done: true, Lost: true}
	}
	return Outcome{}
}

// Synced reports whether the standby incarnation peerEpoch holds every
// commit up to seq: the session is up, the standby applied a snapshot (or a
// resume) on this stream and acknowledged seq.
func (a *Active) Synced(seq uint64, peerEpoch uint32) bool {
	return a.peerUp && a.streaming && a.peerEpoch == peerEpoch && a.snapTxn != 0 &&
		a.lastAck.Snap == a.snapTxn && a.acked >= seq
}

// Status is the active side's state for Stats.
type Status struct {
	PeerUp, Streaming       bool
	Committed, Acked        uint64
	InFlight                int
	LastRefusal             string
	SnapshotRefused         string
	PeerEpoch               uint32
	SnapshotTxn             uint64
	AwaitingHello, NeedSnap bool
}

// Status returns the active side's state.
func (a *Active) Status() Status {
	s := Status{PeerUp: a.peerUp, Streaming: a.streaming, Committed: a.committed, Acked: a.acked,
		LastRefusal: a.lastRefusal, SnapshotRefused: a.refusedSnap, PeerEpoch: a.peerEpoch,
		AwaitingHello: a.awaitHello, NeedSnap: a.needSnap, SnapshotTxn: a.snapTxn}
	if a.peerUp && a.committed > a.acked {
		s.InFlight = int(a.committed - a.acked)
	}
	return s
}

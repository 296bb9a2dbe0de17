package replica

import "github.com/swha/swha/internal/wire"

// Standby is the standby node's side of the protocol: what it owes the
// active (acks, refusals, its hello) and when it must start over from a
// snapshot.
type Standby struct {
	peerUp bool
	silent bool
	// needSnap: the mirror lost track of the stream; ask for a snapshot in
	// the next ack.
	needSnap  bool
	helloOwed bool
	hello     wire.Hello // Snap and Applied: where our state stood at the stream's start
	refusals  []wire.Refusal
	sent      wire.Ack // the last ack that went out
}

// NewStandby returns the standby side.
func NewStandby() *Standby { return &Standby{} }

// StoreAction is what an event asks of the standby's store.
type StoreAction uint8

// Store actions.
const (
	StoreNone StoreAction = iota
	// StoreAwaitSnapshot: drop everything until the active's next snapshot.
	StoreAwaitSnapshot
	// StoreResume: a new stream; read where the state stands
	// (objstore.Store.ResumeStream) and pass it to Resume.
	StoreResume
)

// Event takes a session event and says what the store must do.
func (s *Standby) Event(ev Event) StoreAction {
	switch ev {
	case NewStream:
		s.peerUp, s.silent = true, false
		s.sent = wire.Ack{}
		return StoreResume
	case Silent:
		s.peerUp, s.silent = false, true
	case Alive:
		s.peerUp = true
		if s.silent {
			// Same stream after silence: the active went solo and stopped
			// streaming to us; it sends a snapshot.
			s.silent = false
			return StoreAwaitSnapshot
		}
		// Heard again as part of a new stream: the hello decides.
	}
	return StoreNone
}

// Resume records where the state stands on a new stream (the snapshot it
// derives from and the applied seq, from objstore.Store.ResumeStream); a hello
// saying so is owed to the active, so that it can replay from there rather
// than send everything.
func (s *Standby) Resume(snap, applied uint64) {
	s.hello.Snap, s.hello.Applied = snap, applied
	s.helloOwed = true
}

// Refused is one transaction the standby's store did not apply
// (objstore.Refusal, classified by the driver).
type Refused struct {
	Seq, Txn, Object uint64
	Snapshot         bool
	Text             string
	// Skew: refused because a value does not fit this version (an
	// objstore.TransformError). The stream goes on; the active is told.
	// Anything else means the mirror lost track.
	Skew bool
}

// Applied is what one Apply of the active's stream did.
type Applied struct {
	// Err is Apply's error; NotRepresentable says it is only a version-skew
	// refusal (objstore.ErrNotRepresentable).
	Err              error
	NotRepresentable bool
	// Refusals are the transactions the store refused (TakeRefusals);
	// Dropped counts refusals it could not keep.
	Refusals []Refused
	Dropped  uint64
	// Snap is the snapshot the store's state derives from; Awaiting says the
	// store already waits for a snapshot.
	Snap     uint64
	Awaiting bool
}

// Verdict is what the driver must do after an Apply.
type Verdict struct {
	// AwaitSnapshot: put the store into awaiting a snapshot.
	AwaitSnapshot bool
	// Resync: the mirror lost track; a snapshot is asked for (count it,
	// log it).
	Resync bool
}

// Applied takes the outcome of one Apply.
func (s *Standby) Applied(r Applied) Verdict {
	var v Verdict
	lostTrack := r.Dropped > 0
	for _, f := range r.Refusals {
		if !f.Skew {
			lostTrack = true
			continue
		}
		s.refusals = append(s.refusals, wire.Refusal{Snap: r.Snap, Seq: f.Seq, Txn: f.Txn, Object: f.Object, Snapshot: f.Snapshot, Text: f.Text})
		if f.Snapshot {
			// No base to apply the stream to. The active sends another
			// snapshot after its next commit, which may have fixed the value;
			// asking for one now would only be refused again.
			v.AwaitSnapshot = true
		}
	}
	if r.Err != nil && (lostTrack || !r.NotRepresentable) && !r.Awaiting && !v.AwaitSnapshot {
		// The mirror missed or refused a transaction the active committed:
		// it can no longer follow the stream, so start over from a snapshot.
		v.AwaitSnapshot, v.Resync = true, true
		s.needSnap = true
	}
	return v
}

// Output is what the standby must send now, in this order: refusals go
// before the ack that covers their seqs, so that a synchronous commit waiting
// for that seq sees the refusal first.
type Output struct {
	Refusals []wire.Refusal
	Hello    *wire.Hello // Schemas are the driver's to fill in
	Ack      *wire.Ack
}

// Ready returns what to send, given the store's applied state (read with
// no Apply in progress: an Apply moves the applied seq past a transaction it
// refused before Applied marks the mirror as lost, and an ack read in between
// would acknowledge a transaction the standby does not hold).
func (s *Standby) Ready(snap, applied uint64) Output {
	var o Output
	o.Refusals, s.refusals = s.refusals, nil
	if s.helloOwed {
		h := s.hello
		o.Hello = &h
		s.helloOwed = false
	}
	a := wire.Ack{Snap: snap, Seq: applied}
	if s.needSnap {
		a = wire.Ack{Flags: wire.AckNeedSnapshot}
	}
	// With no snapshot of the active's (snap 0) the applied seq counts
	// nothing of the active's stream: a demoted active awaiting the
	// winner's snapshot still holds its own commits. Nothing to ack.
	if a != s.sent && (snap != 0 || s.needSnap) {
		o.Ack = &a
	}
	return o
}

// HelloFailed: the hello Ready returned could not be sent; it is owed again.
func (s *Standby) HelloFailed() { s.helloOwed = true }

// AckSent records that a went out.
func (s *Standby) AckSent(a wire.Ack) {
	if a.Flags&wire.AckNeedSnapshot != 0 {
		s.needSnap = false
	}
	s.sent = a
}

// PeerUp reports whether the session to the active is up.
func (s *Standby) PeerUp() bool { return s.peerUp }

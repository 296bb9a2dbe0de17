package l2transport

import (
	"errors"
	"strconv"
	"time"

	"github.com/swha/swha/frame"
)

// Errors returned by Session.Send.
var (
	// ErrBackpressure means the send buffer is full; retry after acknowledgments
	// free space (Session.Writable tells when).
	ErrBackpressure = errors.New("l2transport: send buffer full")
	// ErrMessageTooLarge means the message exceeds SessionConfig.MaxMessage.
	ErrMessageTooLarge = errors.New("l2transport: message larger than MaxMessage")
)

// Message is one delivered message. Data aliases a Session buffer: it is valid
// until the Advance (or ReleaseMessages) that follows the Ready that returned it.
type Message struct {
	Data  []byte
	TxnID uint64
}

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventEstablished: the handshake with PeerEpoch completed; data flows.
	EventEstablished EventKind = iota + 1
	// EventPeerRestarted: a new peer incarnation appeared, with a newer epoch
	// or, if EpochReused, with the epoch of the one before. The old stream is
	// gone: everything not yet acknowledged by the old incarnation was
	// discarded (Discarded*), as were partial and undelivered received
	// messages (RecvDiscarded); later messages belong to the new stream only.
	EventPeerRestarted
	// EventPeerSilent: nothing valid was heard from the peer for DeadInterval,
	// or (AckStall) the peer is heard but acknowledged nothing new for
	// DeadInterval while frames were outstanding. Emitted once per silence.
	EventPeerSilent
	// EventPeerAlive: the peer was heard again after EventPeerSilent; after
	// an ack stall, once it acknowledges something new.
	EventPeerAlive
	// EventIncarnationConflict: frames of two incarnations of one node ID
	// arrive interleaved, each new (not a replay): someone speaks with the
	// peer's node ID (or, ConflictSelf, with ours) besides the real node, or
	// the node is split in two. PeerNodeID is that node ID and
	// ConflictEpoch the other incarnation's epoch. Reported at most once per
	// DeadInterval of conflicts; SessionStats.IncarnationConflicts counts
	// every such frame. The stream follows the newer epoch while both speak
	// and goes back to the older one once the newer is silent
	// (EventPeerRestarted with Reformed).
	EventIncarnationConflict
)

func (k EventKind) String() string {
	switch k {
	case EventEstablished:
		return "Established"
	case EventPeerRestarted:
		return "PeerRestarted"
	case EventPeerSilent:
		return "PeerSilent"
	case EventPeerAlive:
		return "PeerAlive"
	case EventIncarnationConflict:
		return "IncarnationConflict"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is a change of the stream's state that the owner must know about.
type Event struct {
	Kind         EventKind
	At           time.Time
	PeerNodeID   uint64
	PeerEpoch    uint32
	OldPeerEpoch uint32 // EventPeerRestarted: the epoch that went away
	// EpochReused (EventPeerRestarted only) says that the new incarnation has
	// the old one's epoch: the peer restarted without a newer Epoch, which
	// SessionConfig.Epoch forbids. The stream was restarted all the same (the
	// incarnations differ in SessionConfig.Incarnation), but the peer's
	// configuration is wrong, and a peer older than the incarnation field
	// would have wedged the pair instead: fix its epoch source.
	EpochReused bool
	// AckStall (EventPeerSilent only) says the peer is still heard, but
	// acknowledged nothing for DeadInterval while frames were queued or in
	// flight: a peer that will not acknowledge counts as lost in the same
	// bound as a silent one (SessionStats.AckStalls).
	AckStall bool
	// PeerReset (EventPeerRestarted only): the peer's incarnation did not
	// change, but it dropped our stream (it sent a new hello that does not
	// know it), having followed another node with our node ID.
	PeerReset bool
	// Reformed (EventPeerRestarted only): PeerEpoch is older than
	// OldPeerEpoch: the newer incarnation went silent while the one it had
	// replaced kept speaking, and the stream went back to the latter (see
	// EventIncarnationConflict).
	Reformed bool
	// EventIncarnationConflict only: the epoch of the incarnation that
	// conflicts with the known one, and whether the node ID is ours.
	ConflictEpoch uint32
	ConflictSelf  bool

	// EventPeerRestarted only: sent messages that the old incarnation had not
	// acknowledged, their payload bytes and their distinct non-zero transaction
	// IDs in send order. The upper layer decides whether to resend them.
	DiscardedMessages int
	DiscardedBytes    int64
	DiscardedTxns     []uint64
	// SentBefore is how many messages Send had accepted, since the Session was
	// created (for a Conn: since its last Restart), when the old stream ended. Messages sent after it (possibly before
	// the application saw this event) belong to the new stream and are delivered.
	SentBefore uint64
	// RecvDiscarded counts received messages from the old stream that were
	// complete but not yet returned by Ready, plus a partial one being reassembled.
	RecvDiscarded int
}

// DropReason is why a well-formed frame was not used. Frames that fail to decode
// are counted by frame.Error instead.
type DropReason uint8

// Drop reasons.
const (
	DropWrongNode      DropReason = iota // from a node other than the peer
	DropSelf                             // our own node ID: a loop in the network
	DropStaleEpoch                       // from an older peer epoch
	DropUnknownEpoch                     // data from a newer peer epoch before its Hello
	DropStaleStream                      // the peer's epoch, but a stream it has since reset, or an incarnation since replaced
	DropNotEstablished                   // data before the handshake completed
	DropOutOfWindow                      // sequence number beyond the receive window
	DropDuplicate                        // data already received (re-acknowledged)
	DropMalformed                        // a payload that breaks the session rules
	DropBadAck                           // acknowledges a sequence number never sent
	DropUnhandledType                    // a type this Session does not consume
	DropStaleAck                         // a pure ack with nothing new: a duplicate, a late one, or a replay
	DropRepeatHello                      // a hello of the current peer incarnation on an established stream (answered at most once per MinRTO)
	NumDropReasons
)

var dropNames = [...]string{
	DropWrongNode:      "wrong-node",
	DropSelf:           "self",
	DropStaleEpoch:     "stale-epoch",
	DropUnknownEpoch:   "unknown-epoch",
	DropStaleStream:    "stale-stream",
	DropNotEstablished: "not-established",
	DropOutOfWindow:    "out-of-window",
	DropDuplicate:      "duplicate",
	DropMalformed:      "malformed",
	DropBadAck:         "bad-ack",
	DropUnhandledType:  "unhandled-type",
	DropStaleAck:       "stale-ack",
	DropRepeatHello:    "repeat-hello",
}

func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropNames[r]
	}
	return "DropReason(" + strconv.Itoa(int(r)) + ")"
}

// SessionStats is a snapshot of a Session's counters and gauges. From
// Conn.Stats, the counters add up every Session the Conn ran (see Restart).
type SessionStats struct {
	FramesSent, BytesSent         uint64
	FramesReceived, BytesReceived uint64
	DataFramesSent, AcksSent      uint64
	HellosSent                    uint64
	MessagesSent                  uint64 // accepted by Send
	MessagesDelivered             uint64
	BytesDelivered                uint64

	Retransmits     uint64 // every data frame sent again, for whatever reason
	FastRetransmits uint64 // of which triggered by SACK or duplicate acks
	Timeouts        uint64 // RTO expiries
	// SpuriousTimeouts counts RTO expiries found spurious: the ack that
	// followed covered frames that had not been resent (see F-RTO).
	SpuriousTimeouts uint64
	Backpressure     uint64 // Send calls refused with ErrBackpressure
	PeerRestarts     uint64
	// PeerEpochReuses counts peer restarts whose new incarnation reused the
	// old one's epoch (Event.EpochReused); each also counts in PeerRestarts.
	PeerEpochReuses uint64
	// AckStalls counts EventPeerSilent events with AckStall set.
	AckStalls uint64
	// IncarnationConflicts counts new frames showing two incarnations of
	// one node ID at once (EventIncarnationConflict); PeerResets and
	// PeerReforms count restarts with Event.PeerReset and Event.Reformed.
	IncarnationConflicts uint64
	PeerResets           uint64
	PeerReforms          uint64
	// Restarts counts Conn.Restart calls; always 0 from Session.Stats.
	Restarts uint64

	// DecodeErrors counts frames refused by the codec, indexed by frame.Error.
	DecodeErrors [frame.NumErrors]uint64
	// Drops counts well-formed frames not used, indexed by DropReason.
	Drops [NumDropReasons]uint64

	SRTT, RTTVar, RTO time.Duration
	InFlight          int // frames sent and not yet cumulatively acknowledged
	QueuedFrames      int // frames queued or in flight
	QueuedBytes       int // payload bytes queued or in flight
	PeerWindow        int // frames the peer last said it would accept beyond its ack
	Established       bool
	PeerEpoch         uint32
	PeerNodeID        uint64
}

// addCounters adds o's counters to st's; the gauges stay st's.
func (st *SessionStats) addCounters(o *SessionStats) {
	st.FramesSent += o.FramesSent
	st.BytesSent += o.BytesSent
	st.FramesReceived += o.FramesReceived
	st.BytesReceived += o.BytesReceived
	st.DataFramesSent += o.DataFramesSent
	st.AcksSent += o.AcksSent
	st.HellosSent += o.HellosSent
	st.MessagesSent += o.MessagesSent
	st.MessagesDelivered += o.MessagesDelivered
	st.BytesDelivered += o.BytesDelivered
	st.Retransmits += o.Retransmits
	st.FastRetransmits += o.FastRetransmits
	st.Timeouts += o.Timeouts
	st.SpuriousTimeouts += o.SpuriousTimeouts
	st.Backpressure += o.Backpressure
	st.PeerRestarts += o.PeerRestarts
	st.PeerEpochReuses += o.PeerEpochReuses
	st.AckStalls += o.AckStalls
	st.IncarnationConflicts += o.IncarnationConflicts
	st.PeerResets += o.PeerResets
	st.PeerReforms += o.PeerReforms
	st.Restarts += o.Restarts
	for i := range st.DecodeErrors {
		st.DecodeErrors[i] += o.DecodeErrors[i]
	}
	for i := range st.Drops {
		st.Drops[i] += o.Drops[i]
	}
}

package heartbeat

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/swha/swha/frame"
)

// Defaults for PathConfig; docs/HEARTBEAT.md explains the choice.
const (
	// DefaultInterval is the transmit interval. With DefaultMultiplier it gives a
	// 20 ms detection time: p99 detection stays under 25 ms with room for the
	// detector's own lateness, while a peer whose sender thread is held up by the
	// worst scheduling pause measured on a saturated machine (10.6 ms) still gets a
	// heartbeat through well inside the detection time.
	DefaultInterval = 5 * time.Millisecond
	// DefaultMultiplier is how many intervals without a live heartbeat make the
	// peer dead.
	DefaultMultiplier = 4
	// DefaultJitter is the fraction by which each interval is shortened at random
	// (BFD's 0–25%), so that the two sides' timers do not lock into step.
	DefaultJitter = 0.25
	// MinInterval is the shortest interval accepted.
	MinInterval = time.Millisecond
	// DefaultMaxPeerInterval bounds the peer's advertised interval that detection
	// honours, so that a peer (or a key holder) cannot stretch detection for ever.
	DefaultMaxPeerInterval = time.Second
	// HealthMemory is how many detection times a late wake-up (ours, or one the
	// peer reported) keeps the path's local health poor, granting the grace
	// interval before a Down: 200 ms at the default timers.
	HealthMemory = 10
	// CarrierHold is the intervals without a live heartbeat after which a carrier
	// reported down confirms the peer's loss.
	CarrierHold = 2
)

// PathConfig configures a Path.
type PathConfig struct {
	// Name names the path in events, stats and logs ("ha", "mgmt").
	Name string
	// LocalID is this node's ID, sent in the frame header; frames carrying it are
	// our own, looped back, and dropped.
	LocalID uint64
	// PeerID is the peer's node ID; frames from any other node are dropped. Zero
	// learns it from the heartbeat that starts a handshake, and forgets it when
	// the path goes down, so that a replaced peer switch is heard.
	PeerID uint64
	// Epoch is sent in the frame header (the failover epoch); SetEpoch changes it.
	Epoch uint32
	// Interval between heartbeats; zero means DefaultInterval, at least MinInterval.
	Interval time.Duration
	// Multiplier: the peer is dead after Multiplier intervals with no live
	// heartbeat; zero means DefaultMultiplier, at most 255.
	Multiplier int
	// Jitter shortens each interval by a uniform random fraction in [0, Jitter);
	// zero means DefaultJitter, negative means none, at most 0.5.
	Jitter float64
	// MaxPeerInterval bounds the peer interval detection adapts to; zero means
	// DefaultMaxPeerInterval.
	MaxPeerInterval time.Duration
	// Keyring, if set, signs every heartbeat and refuses unsigned or badly signed
	// ones (frame.Codec); use the link's ring.
	Keyring *frame.Keyring
	// Disc is this incarnation's discriminator: random and non-zero, drawn once per
	// process start (NewDisc does it). Each time the path goes down it moves to a
	// new discriminator derived from it, which is what makes captured frames
	// worthless (docs/HEARTBEAT.md).
	Disc uint64
	// Rand draws the jitter; nil means a PCG seeded from Disc, so that a path is a
	// pure function of its config and inputs.
	Rand rand.Source
}

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventUp: the handshake completed; the peer is alive on this path.
	EventUp EventKind = iota + 1
	// EventDown: a path that was up is down; Diag says why, Gap how long it had
	// been since the last live heartbeat.
	EventDown
	// EventAnnounce: the peer's announce changed while the path is up.
	EventAnnounce
)

func (k EventKind) String() string {
	switch k {
	case EventUp:
		return "Up"
	case EventDown:
		return "Down"
	case EventAnnounce:
		return "Announce"
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is a change the path's owner must know about.
type Event struct {
	Kind EventKind
	Path string // PathConfig.Name
	At   time.Time
	Diag Diag // EventDown: why
	// Gap (EventDown) is the time from the last live heartbeat to the decision.
	Gap time.Duration
	// Discounted (EventDown) says the detector was late, or the peer said it was,
	// and the path waited one grace interval before deciding.
	Discounted bool
	PeerID     uint64
	PeerEpoch  uint32 // frame header Epoch of the peer's last live heartbeat
	// Announce (EventUp, EventAnnounce) is the peer's announce: a copy the
	// receiver owns.
	Announce []byte
}

// DropReason is why a frame that decoded was not taken as a heartbeat of the peer.
// Frames that fail to decode are counted by frame.Error in Stats.FrameErrors.
type DropReason uint8

// Drop reasons.
const (
	DropNotHeartbeat     DropReason = iota // another frame type
	DropMalformed                          // a body that breaks the layout
	DropSelf                               // our own node ID: a loop
	DropWrongPeer                          // another node than the peer
	DropWrongDisc                          // YourDisc is not our current discriminator: an old generation of ours, or a replay
	DropOtherIncarnation                   // MyDisc is not the peer incarnation this generation is bound to
	DropReplay                             // counter not above the last accepted one: duplicate, late reorder or replay
	DropUnexpectedState                    // a state the handshake does not allow here (Up to a Down path, no YourDisc while Up)
	NumDropReasons
)

var dropNames = [...]string{
	DropNotHeartbeat:     "not-heartbeat",
	DropMalformed:        "malformed",
	DropSelf:             "self",
	DropWrongPeer:        "wrong-peer",
	DropWrongDisc:        "wrong-disc",
	DropOtherIncarnation: "other-incarnation",
	DropReplay:           "replay",
	DropUnexpectedState:  "unexpected-state",
}

func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropNames[r]
	}
	return "DropReason(" + strconv.Itoa(int(r)) + ")"
}

// LatenessBuckets is the size of Stats.Lateness: bucket i counts wake-ups late by
// less than 2^i × 64 µs (the last one: more).
const LatenessBuckets = 12

// Stats are a path's counters since NewPath.
type Stats struct {
	Name      string
	State     State
	LocalDisc uint64
	PeerDisc  uint64 // 0 when unbound
	PeerID    uint64

	Sent        uint64 // heartbeats produced
	Received    uint64 // frames given to Receive
	Live        uint64 // heartbeats that counted as life
	Drops       [NumDropReasons]uint64
	FrameErrors [frame.NumErrors]uint64 // frames that did not decode, by reason (bad auth: ErrAuthMissing, ErrUnknownKey, ErrAuthBad)

	Ups, Downs   uint64
	InitTimeouts uint64 // handshakes that began and did not complete
	Generation   uint64 // discriminator changes (one per Down or Init timeout)

	// Local health: the detector's own lateness at each scheduled wake-up.
	Wakeups         uint64
	LateWakeups     uint64        // late by more than one interval
	MaxLateness     time.Duration // worst lateness seen
	Lateness        [LatenessBuckets]uint64
	DiscountedDowns uint64        // detection expiries deferred by one grace interval (late detector or late peer)
	SavedByGrace    uint64        // of those, the ones a live heartbeat ended: false Downs avoided
	LargestGap      time.Duration // longest time between live heartbeats while up
	PeerLateness    time.Duration // lateness the peer reported in its last live heartbeat
	PeerMaxLateness time.Duration
	CarrierDowns    uint64
	GoneHints       uint64        // PeerGone calls: a death beacon said the peer's process went
	DetectTime      time.Duration // current detection time

	// RTT from echoes.
	RTTSamples          uint64
	RTT, MinRTT, MaxRTT time.Duration
	SmoothedRTT         time.Duration // EWMA, gain 1/8
}

// BadAuth is the frames refused for authentication: unsigned, unknown key,
// bad MAC or tag, another mode than the ring's, or a key signing for
// another node (frame.Error.Auth).
func (s *Stats) BadAuth() uint64 {
	var n uint64
	for e, c := range s.FrameErrors {
		if frame.Error(e).Auth() {
			n += c
		}
	}
	return n
}

// Ready is what the path asks its driver to do.
type Ready struct {
	// Send holds encoded PDUs to write in order. They alias the path's buffers and
	// are valid until the next Ready.
	Send [][]byte
	// Events are valid until the next Ready (their Announce slices are copies and
	// stay valid).
	Events []Event
}

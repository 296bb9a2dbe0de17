package heartbeat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// BodyVersion is the heartbeat body layout this package writes and the only one it
// parses. A change of layout is a new version: parsers refuse trailing bytes, so a
// field cannot be appended within one.
const BodyVersion = 1

// Body layout sizes.
const (
	BodyFixedLen = 68 // bytes before the announce
	MaxAnnounce  = 64 // longest announce a heartbeat carries
	MaxBodyLen   = BodyFixedLen + MaxAnnounce
)

// Offsets of the body fields; docs/WIRE.md has the table.
const (
	offVersion     = 0
	offState       = 1
	offDiag        = 2
	offFlags       = 3
	offMultiplier  = 4
	offAnnounceLen = 5
	// 6 and 7 are reserved: sent as zero, ignored.
	offMyDisc      = 8
	offYourDisc    = 16
	offCounter     = 24
	offTxTime      = 32
	offEchoCounter = 40
	offEchoTime    = 48
	offEchoDelay   = 56
	offInterval    = 60
	offLateness    = 64
)

// State is a path's state, as BFD's: the sender's view, carried in every heartbeat.
type State uint8

// States. The values are those on the wire.
const (
	// StateAdminDown: the sender is shutting down on purpose (Runner.Shutdown).
	StateAdminDown State = 0
	// StateDown: the sender hears no live peer.
	StateDown State = 1
	// StateInit: the sender heard the peer's incarnation but not yet proof that the
	// peer hears it (the peer echoing its discriminator).
	StateInit State = 2
	// StateUp: both directions are proven: the peer is alive.
	StateUp State = 3
)

func (s State) String() string {
	switch s {
	case StateAdminDown:
		return "AdminDown"
	case StateDown:
		return "Down"
	case StateInit:
		return "Init"
	case StateUp:
		return "Up"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Diag says why a path went down; the sender carries its last one in every heartbeat.
type Diag uint8

// Diagnostics. The values are those on the wire.
const (
	DiagNone              Diag = 0
	DiagDetectExpired     Diag = 1 // no live heartbeat for the detection time
	DiagPeerSignalledDown Diag = 2 // the peer said it went down (it stopped hearing us)
	DiagCarrierDown       Diag = 3 // the carrier went down and heartbeats stopped for two intervals
	DiagAdminDown         Diag = 4 // shut down on purpose, by this side or the peer
	DiagPeerGone          Diag = 5 // told the peer's process is gone, and heartbeats stopped for two intervals
)

func (d Diag) String() string {
	switch d {
	case DiagNone:
		return "none"
	case DiagDetectExpired:
		return "detect-time-expired"
	case DiagPeerSignalledDown:
		return "peer-signalled-down"
	case DiagCarrierDown:
		return "carrier-down-confirmed"
	case DiagAdminDown:
		return "admin-down"
	case DiagPeerGone:
		return "peer-gone-confirmed"
	}
	return "Diag(" + strconv.Itoa(int(d)) + ")"
}

// Heartbeat is a decoded heartbeat body: the payload of a frame.TypeHeartbeat frame.
// Durations travel as unsigned microseconds (Interval, Lateness) or nanoseconds
// (EchoDelay); times are opaque nanosecond counters of the sender's clock.
type Heartbeat struct {
	State      State
	Diag       Diag
	Flags      uint8 // none defined; sent as zero, kept as received
	Multiplier uint8 // the sender's detection multiplier, at least 1
	// MyDisc is the sender's discriminator: random per incarnation, and a new one
	// each time its path goes down, never 0.
	MyDisc uint64
	// YourDisc is the last MyDisc the sender accepted from us, 0 for none.
	YourDisc uint64
	// Counter increases by one per heartbeat for the life of the sender's Path,
	// never 0.
	Counter uint64
	// TxTime is when the heartbeat was sent, in nanoseconds of the sender's clock.
	TxTime uint64
	// EchoCounter and EchoTime are Counter and TxTime of the last heartbeat the sender
	// accepted from us (0, 0 for none); EchoDelay is the nanoseconds it held it before
	// sending this one, so that we measure RTT = now − EchoTime − EchoDelay.
	EchoCounter uint64
	EchoTime    uint64
	EchoDelay   uint32
	// Interval is the sender's transmit interval in microseconds, at least 1.
	Interval uint32
	// Lateness is the sender's own scheduling lateness, in microseconds: the worst of
	// its detector's recent wake-ups.
	Lateness uint32
	// Announce is the sender's application payload, at most MaxAnnounce bytes. A
	// parsed Announce aliases the parsed buffer.
	Announce []byte
}

// ErrMalformed is returned by ParseHeartbeat for a body that breaks the layout;
// the wrapping error names the field.
var ErrMalformed = errors.New("heartbeat: malformed heartbeat body")

// AppendHeartbeat appends the body of hb to dst. It does not allocate when dst has
// room for BodyFixedLen+len(hb.Announce) more bytes. It refuses what ParseHeartbeat
// would refuse, so that nothing this side sends is dropped as malformed.
func AppendHeartbeat(dst []byte, hb *Heartbeat) ([]byte, error) {
	if err := hb.check(); err != nil {
		return dst, err
	}
	var b [BodyFixedLen]byte
	b[offVersion] = BodyVersion
	b[offState] = byte(hb.State)
	b[offDiag] = byte(hb.Diag)
	b[offFlags] = hb.Flags
	b[offMultiplier] = hb.Multiplier
	b[offAnnounceLen] = byte(len(hb.Announce))
	be := binary.BigEndian
	be.PutUint64(b[offMyDisc:], hb.MyDisc)
	be.PutUint64(b[offYourDisc:], hb.YourDisc)
	be.PutUint64(b[offCounter:], hb.Counter)
	be.PutUint64(b[offTxTime:], hb.TxTime)
	be.PutUint64(b[offEchoCounter:], hb.EchoCounter)
	be.PutUint64(b[offEchoTime:], hb.EchoTime)
	be.PutUint32(b[offEchoDelay:], hb.EchoDelay)
	be.PutUint32(b[offInterval:], hb.Interval)
	be.PutUint32(b[offLateness:], hb.Lateness)
	dst = append(dst, b[:]...)
	return append(dst, hb.Announce...), nil
}

// ParseHeartbeat parses body into hb, which then aliases body (Announce). A body
// with another version, a field out of range or bytes after the announce is
// refused with an error wrapping ErrMalformed.
func ParseHeartbeat(body []byte, hb *Heartbeat) error {
	if len(body) < BodyFixedLen {
		return fmt.Errorf("%w: %d bytes, want at least %d", ErrMalformed, len(body), BodyFixedLen)
	}
	if body[offVersion] != BodyVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrMalformed, body[offVersion], BodyVersion)
	}
	n := int(body[offAnnounceLen])
	if len(body) != BodyFixedLen+n {
		return fmt.Errorf("%w: announce length %d, but %d bytes follow the fixed part", ErrMalformed, n, len(body)-BodyFixedLen)
	}
	be := binary.BigEndian
	*hb = Heartbeat{
		State:       State(body[offState]),
		Diag:        Diag(body[offDiag]),
		Flags:       body[offFlags],
		Multiplier:  body[offMultiplier],
		MyDisc:      be.Uint64(body[offMyDisc:]),
		YourDisc:    be.Uint64(body[offYourDisc:]),
		Counter:     be.Uint64(body[offCounter:]),
		TxTime:      be.Uint64(body[offTxTime:]),
		EchoCounter: be.Uint64(body[offEchoCounter:]),
		EchoTime:    be.Uint64(body[offEchoTime:]),
		EchoDelay:   be.Uint32(body[offEchoDelay:]),
		Interval:    be.Uint32(body[offInterval:]),
		Lateness:    be.Uint32(body[offLateness:]),
		Announce:    body[BodyFixedLen:len(body):len(body)],
	}
	return hb.check()
}

// check enforces the field rules shared by Append and Parse. The reserved bytes
// are not checked: they are sent as zero and ignored.
func (hb *Heartbeat) check() error {
	switch {
	case hb.State > StateUp:
		return fmt.Errorf("%w: state %d", ErrMalformed, hb.State)
	case hb.Multiplier == 0:
		return fmt.Errorf("%w: multiplier 0", ErrMalformed)
	case hb.MyDisc == 0:
		return fmt.Errorf("%w: my discriminator 0", ErrMalformed)
	case hb.YourDisc == 0 && (hb.State == StateInit || hb.State == StateUp):
		// Init and Up say "I heard you": they must name whom.
		return fmt.Errorf("%w: state %v with your discriminator 0", ErrMalformed, hb.State)
	case hb.Counter == 0:
		return fmt.Errorf("%w: counter 0", ErrMalformed)
	case hb.Interval == 0:
		return fmt.Errorf("%w: interval 0", ErrMalformed)
	case len(hb.Announce) > MaxAnnounce:
		return fmt.Errorf("%w: announce of %d bytes, at most %d", ErrMalformed, len(hb.Announce), MaxAnnounce)
	}
	return nil
}

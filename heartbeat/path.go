package heartbeat

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"time"

	"github.com/swha/swha/frame"
)

// Path is the liveness state machine of one path to the peer. It is pure: time
// comes in as arguments, frames go out through Ready, and it owns no goroutine,
// lock, socket or clock, so the same inputs always give the same outputs. It is
// not safe for concurrent use; Runner is its driver.
//
// The handshake is BFD's (RFC 5880): each side sends its discriminator (MyDisc)
// and echoes the peer's (YourDisc); Down → Init when the peer's incarnation is
// heard, Init → Up when the peer proves it hears us by echoing our discriminator.
// A heartbeat counts as life only if it echoes our current discriminator and its
// counter is above the last one accepted from the peer incarnation this
// generation is bound to. Every Down moves us to a fresh discriminator, so no
// frame captured before it can ever count again.
type Path struct {
	cfg    PathConfig // normalised
	codec  *frame.Codec
	rng    *rand.Rand
	start  time.Time // zero point of TxTime
	now    time.Time // latest time given
	hdr    frame.Header
	rx     Heartbeat
	epoch  uint32
	state  State
	diag   Diag
	disc   uint64 // current local discriminator
	gen    uint64 // how many discriminators came before disc
	count  uint64 // counter of the last heartbeat produced
	detect time.Duration

	// The peer incarnation the current generation is bound to (Init, Up).
	peerID      uint64
	remoteDisc  uint64
	lastCounter uint64
	peerEpoch   uint32
	peerIntvl   time.Duration
	lastRx      time.Time // last live heartbeat; in Init, when the handshake began
	retired     [4]retiredPeer
	retiredNext int

	// Echo: the last heartbeat accepted from the peer, echoed in ours.
	echoCounter, echoTime uint64
	echoAt                time.Time
	rttSeen               uint64 // highest echo counter sampled

	nextSend   time.Time
	sendNow    bool
	farewell   bool      // a Down heartbeat of the old generation is due
	fwHB       Heartbeat // that heartbeat (Counter, TxTime and echoes set at Ready)
	graceUntil time.Time
	carrierUp  bool
	goneAt     time.Time // PeerGone: the peer's process was reported gone then
	// shutdownSent: the AdminDown heartbeat is out; the path sends nothing more.
	shutdownSent bool

	// Lateness reported to the peer: the worst of this and the last window,
	// each one detection time long.
	lateCur, latePrev time.Duration
	lateWindow        time.Time
	lastUnhealthy     time.Time // last wake-up of ours, or report of the peer's, late by more than an interval

	announce     [MaxAnnounce]byte
	announceLen  int
	peerAnn      [MaxAnnounce]byte
	peerAnnLen   int
	peerAnnValid bool

	bufs   [2][]byte
	body   []byte
	send   [][]byte
	events []Event
	spare  []Event
	stats  Stats
}

type retiredPeer struct {
	disc, counter uint64
}

// NewPath returns a path in state Down, sending its first heartbeat at once.
func NewPath(cfg PathConfig, now time.Time) (*Path, error) {
	if err := normalise(&cfg); err != nil {
		return nil, err
	}
	src := cfg.Rand
	if src == nil {
		src = rand.NewPCG(cfg.Disc, cfg.Disc^0x9e3779b97f4a7c15)
	}
	p := &Path{
		cfg:       cfg,
		codec:     frame.NewCodec(cfg.Keyring),
		rng:       rand.New(src),
		start:     now,
		now:       now,
		epoch:     cfg.Epoch,
		state:     StateDown,
		disc:      cfg.Disc,
		peerID:    cfg.PeerID,
		nextSend:  now,
		sendNow:   true,
		carrierUp: true,
		body:      make([]byte, 0, MaxBodyLen),
		send:      make([][]byte, 0, 2),
	}
	for i := range p.bufs {
		p.bufs[i] = make([]byte, 0, frame.Len(0, MaxBodyLen, true))
	}
	p.detect = p.detectTime()
	return p, nil
}

func normalise(cfg *PathConfig) error {
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Multiplier == 0 {
		cfg.Multiplier = DefaultMultiplier
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = DefaultJitter
	}
	if cfg.Jitter < 0 {
		cfg.Jitter = 0
	}
	if cfg.MaxPeerInterval == 0 {
		cfg.MaxPeerInterval = DefaultMaxPeerInterval
	}
	switch {
	case cfg.Interval < MinInterval:
		return fmt.Errorf("heartbeat: path %q: interval %v is below the minimum %v", cfg.Name, cfg.Interval, MinInterval)
	case cfg.Interval > time.Hour:
		return fmt.Errorf("heartbeat: path %q: interval %v does not fit the wire's microseconds", cfg.Name, cfg.Interval)
	case cfg.Multiplier < 1 || cfg.Multiplier > 255:
		return fmt.Errorf("heartbeat: path %q: multiplier %d, want 1 to 255", cfg.Name, cfg.Multiplier)
	case cfg.Jitter > 0.5:
		return fmt.Errorf("heartbeat: path %q: jitter %v, want at most 0.5", cfg.Name, cfg.Jitter)
	case cfg.MaxPeerInterval < cfg.Interval:
		return fmt.Errorf("heartbeat: path %q: max peer interval %v is below the interval %v", cfg.Name, cfg.MaxPeerInterval, cfg.Interval)
	case cfg.Disc == 0:
		return fmt.Errorf("heartbeat: path %q: discriminator 0: draw a random one per incarnation (NewDisc)", cfg.Name)
	case cfg.LocalID != 0 && cfg.LocalID == cfg.PeerID:
		return fmt.Errorf("heartbeat: path %q: local and peer node ID are both %d", cfg.Name, cfg.LocalID)
	}
	return nil
}

// Name is PathConfig.Name.
func (p *Path) Name() string { return p.cfg.Name }

// State is the path's state.
func (p *Path) State() State { return p.state }

// Up reports whether the peer is alive on this path.
func (p *Path) Up() bool { return p.state == StateUp }

// Config is the path's configuration with defaults filled in.
func (p *Path) Config() PathConfig { return p.cfg }

// PeerAnnounce is the announce of the peer's last live heartbeat while the path is
// up, nil otherwise: only a peer that proved it is alive is believed. It aliases
// the path's buffer until the next Receive.
func (p *Path) PeerAnnounce() []byte {
	if !p.peerAnnValid || p.state != StateUp {
		return nil
	}
	return p.peerAnn[:p.peerAnnLen]
}

// SetAnnounce sets the payload carried in every heartbeat from now on (copied). A
// change is sent at once rather than at the next interval.
func (p *Path) SetAnnounce(b []byte) error {
	if len(b) > MaxAnnounce {
		return fmt.Errorf("heartbeat: path %q: announce of %d bytes, at most %d", p.cfg.Name, len(b), MaxAnnounce)
	}
	if bytes.Equal(b, p.announce[:p.announceLen]) {
		return nil
	}
	p.announceLen = copy(p.announce[:], b)
	p.sendNow = true
	return nil
}

// SetEpoch sets the frame header Epoch of later heartbeats.
func (p *Path) SetEpoch(e uint32) { p.epoch = e }

// Carrier tells the path the kernel's carrier state of its interface. While the
// carrier is down, the peer is declared dead once no live heartbeat has arrived
// for CarrierHold intervals, sooner than the detection time; a carrier report
// alone never takes the path down while heartbeats arrive.
func (p *Path) Carrier(up bool, now time.Time) {
	p.now = now
	if p.carrierUp && !up {
		p.stats.CarrierDowns++
	}
	p.carrierUp = up
}

// PeerGone tells the path that something outside it (a death beacon: the
// peer's kernel closing a TCP connection of the peer's process) says the
// peer's process is gone. Like a carrier loss it only shortens detection:
// the peer is declared dead once no live heartbeat has arrived for
// CarrierHold intervals, and a live heartbeat received after the report
// cancels it, so a forged or mistaken report alone never takes the path
// down.
func (p *Path) PeerGone(now time.Time) {
	p.now = now
	p.goneAt = now
	p.stats.GoneHints++
}

// Shutdown moves the path to AdminDown for good: its next Ready sends one AdminDown
// heartbeat, which takes the peer's path down at once, and nothing after it.
func (p *Path) Shutdown(now time.Time) {
	p.now = now
	if p.state == StateAdminDown {
		return
	}
	if p.state == StateUp {
		p.emitDown(now, DiagAdminDown, false)
	}
	p.state, p.diag = StateAdminDown, DiagAdminDown
	p.sendNow = true
}

// Receive takes one PDU from the path's link.
func (p *Path) Receive(pdu []byte, now time.Time) {
	p.now = now
	p.stats.Received++
	payload, err := p.codec.Decode(pdu, &p.hdr)
	if err != nil {
		var fe frame.Error
		if errors.As(err, &fe) && int(fe) < frame.NumErrors {
			p.stats.FrameErrors[fe]++
		}
		return
	}
	switch {
	case p.hdr.Type != frame.TypeHeartbeat:
		p.drop(DropNotHeartbeat)
		return
	case p.hdr.NodeID == p.cfg.LocalID:
		p.drop(DropSelf)
		return
	case p.peerID != 0 && p.hdr.NodeID != p.peerID:
		p.drop(DropWrongPeer)
		return
	}
	hb := &p.rx
	if ParseHeartbeat(payload, hb) != nil {
		p.drop(DropMalformed)
		return
	}
	if hb.YourDisc != 0 && hb.YourDisc != p.disc {
		p.drop(DropWrongDisc)
		return
	}
	switch p.state {
	case StateAdminDown:
		p.drop(DropUnexpectedState)
	case StateDown:
		p.receiveDown(hb, now)
	default:
		p.receiveBound(hb, now)
	}
}

// receiveDown binds the current generation to the peer incarnation hb is from.
func (p *Path) receiveDown(hb *Heartbeat, now time.Time) {
	if hb.State == StateUp || hb.State == StateAdminDown {
		// Up to our fresh discriminator is impossible for a live peer (it would
		// have to have been up with this generation), and AdminDown asks nothing.
		p.drop(DropUnexpectedState)
		return
	}
	if p.replayOfRetired(hb) {
		p.drop(DropReplay)
		return
	}
	p.peerID = p.hdr.NodeID
	p.remoteDisc = hb.MyDisc
	p.lastCounter = hb.Counter
	p.lastRx = now
	p.adopt(hb)
	if hb.State == StateInit {
		// It heard our Down (it echoes our discriminator, fresh since our last
		// Down): the three-way handshake completes here.
		p.live(hb, now)
		p.goUp(now)
		return
	}
	p.state = StateInit
	p.sendNow = true
}

// receiveBound handles a heartbeat while the generation is bound (Init, Up).
func (p *Path) receiveBound(hb *Heartbeat, now time.Time) {
	if hb.MyDisc != p.remoteDisc {
		// Another incarnation: a restarted peer, or a replay of an older one. It
		// does not take the path down; the detection time does, then it binds.
		p.drop(DropOtherIncarnation)
		return
	}
	if hb.Counter <= p.lastCounter {
		p.drop(DropReplay)
		return
	}
	p.lastCounter = hb.Counter
	if hb.YourDisc == 0 {
		// The peer has not heard us yet: not proof of a working path.
		if p.state == StateUp {
			p.drop(DropUnexpectedState)
			return
		}
		p.adopt(hb)
		return
	}
	p.adopt(hb)
	p.live(hb, now)
	switch hb.State {
	case StateDown:
		p.goDown(now, DiagPeerSignalledDown, false)
	case StateAdminDown:
		p.goDown(now, DiagAdminDown, false)
	default:
		if p.state == StateInit {
			p.goUp(now)
		}
	}
}

// adopt takes the parameters and echo data of an accepted heartbeat of the bound
// peer.
func (p *Path) adopt(hb *Heartbeat) {
	p.peerEpoch = p.hdr.Epoch
	p.peerIntvl = time.Duration(hb.Interval) * time.Microsecond
	p.detect = p.detectTime()
	p.echoCounter, p.echoTime, p.echoAt = hb.Counter, hb.TxTime, p.now
	lat := time.Duration(hb.Lateness) * time.Microsecond
	p.stats.PeerLateness = lat
	p.stats.PeerMaxLateness = max(p.stats.PeerMaxLateness, lat)
	if lat > p.cfg.Interval {
		p.lastUnhealthy = p.now
	}
}

// live records a heartbeat that counts as life.
func (p *Path) live(hb *Heartbeat, now time.Time) {
	p.stats.Live++
	if p.state == StateUp {
		p.stats.LargestGap = max(p.stats.LargestGap, now.Sub(p.lastRx))
	}
	p.lastRx = now
	if !p.graceUntil.IsZero() {
		p.graceUntil = time.Time{}
		p.stats.SavedByGrace++
	}
	if hb.EchoCounter > p.rttSeen && hb.EchoCounter <= p.count {
		// An echo is sampled once; one claiming a time after now, or a hold longer
		// than the round trip, is the peer's error and not sampled.
		p.rttSeen = hb.EchoCounter
		if t := p.clock(now); hb.EchoTime <= t && t-hb.EchoTime >= uint64(hb.EchoDelay) {
			p.sampleRTT(time.Duration(t - hb.EchoTime - uint64(hb.EchoDelay)))
		}
	}
	if !bytes.Equal(hb.Announce, p.peerAnn[:p.peerAnnLen]) || !p.peerAnnValid {
		changed := p.peerAnnValid
		p.peerAnnLen = copy(p.peerAnn[:], hb.Announce)
		p.peerAnnValid = true
		if changed && p.state == StateUp {
			p.emit(Event{Kind: EventAnnounce, At: now, Announce: bytes.Clone(hb.Announce)})
		}
	}
}

func (p *Path) sampleRTT(rtt time.Duration) {
	s := &p.stats
	s.RTT = rtt
	if s.RTTSamples == 0 {
		s.MinRTT, s.MaxRTT, s.SmoothedRTT = rtt, rtt, rtt
	} else {
		s.MinRTT, s.MaxRTT = min(s.MinRTT, rtt), max(s.MaxRTT, rtt)
		s.SmoothedRTT += (rtt - s.SmoothedRTT) / 8
	}
	s.RTTSamples++
}

// replayOfRetired reports whether hb is from a peer incarnation a past generation
// was bound to, with a counter that incarnation had already used: a replay, which
// must not even start a handshake.
func (p *Path) replayOfRetired(hb *Heartbeat) bool {
	for _, r := range p.retired {
		if r.disc == hb.MyDisc && hb.Counter <= r.counter {
			return true
		}
	}
	return false
}

func (p *Path) goUp(now time.Time) {
	p.state, p.diag = StateUp, DiagNone
	p.stats.Ups++
	p.sendNow = true
	p.emit(Event{Kind: EventUp, At: now, Announce: bytes.Clone(p.peerAnn[:p.peerAnnLen])})
}

// goDown ends the current generation: the peer incarnation is retired, a farewell
// heartbeat of the old generation tells the peer (if it still hears us), and the
// path moves to a fresh discriminator.
func (p *Path) goDown(now time.Time, diag Diag, discounted bool) {
	if p.state == StateUp {
		p.emitDown(now, diag, discounted)
	} else {
		p.stats.InitTimeouts++
	}
	p.goneAt = time.Time{}
	if diag == DiagDetectExpired || diag == DiagCarrierDown || diag == DiagPeerGone {
		p.farewell = true
		p.fwHB = Heartbeat{State: StateDown, Diag: diag, MyDisc: p.disc, YourDisc: p.remoteDisc}
	}
	p.retired[p.retiredNext] = retiredPeer{disc: p.remoteDisc, counter: p.lastCounter}
	p.retiredNext = (p.retiredNext + 1) % len(p.retired)
	p.state, p.diag = StateDown, diag
	p.gen++
	p.stats.Generation = p.gen
	p.disc = genDisc(p.cfg.Disc, p.gen)
	p.peerID = p.cfg.PeerID
	p.remoteDisc, p.lastCounter = 0, 0
	p.echoCounter, p.echoTime = 0, 0
	p.peerAnnValid, p.peerAnnLen = false, 0
	p.graceUntil = time.Time{}
	p.peerIntvl = 0
	p.detect = p.detectTime()
	p.sendNow = true
}

func (p *Path) emitDown(now time.Time, diag Diag, discounted bool) {
	p.stats.Downs++
	p.emit(Event{Kind: EventDown, At: now, Diag: diag, Gap: now.Sub(p.lastRx), Discounted: discounted})
}

func (p *Path) emit(e Event) {
	e.Path, e.PeerID, e.PeerEpoch = p.cfg.Name, p.peerID, p.peerEpoch
	p.events = append(p.events, e)
}

// genDisc is the discriminator of generation gen of the incarnation whose first
// one is base: splitmix64 is a bijection, so generations never repeat a value.
func genDisc(base, gen uint64) uint64 {
	for {
		z := base + gen*0x9e3779b97f4a7c15
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		z ^= z >> 31
		if z != 0 {
			return z
		}
		gen += 1 << 32 // 0 is "none" on the wire; skip to an unused generation
	}
}

// detectTime is Multiplier intervals of the slower of the two sides: a peer that
// sends slower than we do must not look dead for it, up to MaxPeerInterval.
func (p *Path) detectTime() time.Duration {
	iv := max(p.cfg.Interval, min(p.peerIntvl, p.cfg.MaxPeerInterval))
	return time.Duration(p.cfg.Multiplier) * iv
}

// deadline is when the bound peer is dead if nothing live arrives, and why.
func (p *Path) deadline() (time.Time, Diag) {
	dl, diag := p.lastRx.Add(p.detect), DiagDetectExpired
	if !p.carrierUp {
		iv := max(p.cfg.Interval, min(p.peerIntvl, p.cfg.MaxPeerInterval))
		if c := p.lastRx.Add(CarrierHold * iv); c.Before(dl) {
			dl, diag = c, DiagCarrierDown
		}
	}
	if !p.goneAt.IsZero() && !p.lastRx.After(p.goneAt) {
		iv := max(p.cfg.Interval, min(p.peerIntvl, p.cfg.MaxPeerInterval))
		if c := p.lastRx.Add(CarrierHold * iv); c.Before(dl) {
			dl, diag = c, DiagPeerGone
		}
	}
	return dl, diag
}

// DetectDue reports whether a Tick at now would judge the peer: its driver then
// drains the link and hands everything queued to Receive first, so that frames
// that waited while it was not running count.
func (p *Path) DetectDue(now time.Time) bool {
	if p.state != StateInit && p.state != StateUp {
		return false
	}
	dl, _ := p.deadline()
	return !now.Before(dl)
}

// Tick advances the path to now. asked is the deadline the driver meant to wake
// at (the NextDeadline it slept for), or the zero time when the call is not a
// timer wake-up; now past asked is the driver's scheduling lateness.
//
// The detector judges itself before it judges the peer. When the detection time
// has run out but this wake-up, or another within HealthMemory detection times,
// was late by more than an interval, or the peer said its own were, the missing
// heartbeats may be the schedulers' doing (both machines saturated): the path
// waits one more interval, once, and counts a discounted Down. A live heartbeat
// in that grace saves the path.
func (p *Path) Tick(now, asked time.Time) {
	p.now = now
	var late time.Duration
	if !asked.IsZero() && now.After(asked) {
		late = now.Sub(asked)
	}
	if !asked.IsZero() {
		p.noteLateness(now, late)
	}
	switch p.state {
	case StateInit, StateUp:
		dl, diag := p.deadline()
		if now.Before(dl) {
			break
		}
		if p.graceUntil.IsZero() {
			if p.state == StateUp && p.unhealthy(late) {
				p.graceUntil = now.Add(p.cfg.Interval)
				p.stats.DiscountedDowns++
				break
			}
			p.goDown(now, diag, false)
		} else if !now.Before(p.graceUntil) {
			p.goDown(now, diag, true)
		}
	}
	if p.state != StateAdminDown && !now.Before(p.nextSend) {
		p.sendNow = true
	}
}

// unhealthy reports whether this wake-up (late by late), this detector's recent
// wake-ups or the peer's (as it reported them) were late by more than an
// interval, now or within the last HealthMemory detection times: then missing
// heartbeats may be the schedulers' doing rather than the peer's death
// (Lifeguard's local health), and the path grants its grace.
func (p *Path) unhealthy(late time.Duration) bool {
	iv := p.cfg.Interval
	if late > iv || p.lateCur > iv || p.latePrev > iv || p.stats.PeerLateness > iv {
		return true
	}
	// A saturated machine is late only now and then, and a stalled peer cannot
	// say so until it runs again: health is remembered for a while, as
	// Lifeguard's local health score decays slowly.
	return !p.lastUnhealthy.IsZero() && p.now.Sub(p.lastUnhealthy) < HealthMemory*p.detect
}

func (p *Path) noteLateness(now time.Time, late time.Duration) {
	s := &p.stats
	s.Wakeups++
	if late > p.cfg.Interval {
		s.LateWakeups++
		p.lastUnhealthy = now
	}
	s.MaxLateness = max(s.MaxLateness, late)
	b := 0
	if us := late / (64 * time.Microsecond); us > 0 {
		b = min(bits.Len64(uint64(us)), LatenessBuckets-1)
	}
	s.Lateness[b]++
	if now.Sub(p.lateWindow) >= p.detect {
		p.latePrev, p.lateCur, p.lateWindow = p.lateCur, 0, now
	}
	p.lateCur = max(p.lateCur, late)
}

// NextDeadline is when the path next needs a Tick: its next heartbeat, or the
// moment the peer is dead without one.
func (p *Path) NextDeadline() time.Time {
	if p.state == StateAdminDown {
		return time.Time{}
	}
	if p.sendNow || p.farewell {
		return p.now
	}
	next := p.nextSend
	if p.state == StateInit || p.state == StateUp {
		dl, _ := p.deadline()
		if !p.graceUntil.IsZero() {
			dl = p.graceUntil
		}
		if dl.Before(next) {
			next = dl
		}
	}
	return next
}

// Ready returns the heartbeats to send and the events to report since the last
// Ready.
func (p *Path) Ready() Ready {
	p.send = p.send[:0]
	if p.farewell {
		p.farewell = false
		hb := p.fwHB
		p.send = p.appendFrame(p.send, 0, &hb)
	}
	if p.sendNow && !p.shutdownSent {
		p.sendNow = false
		hb := Heartbeat{State: p.state, Diag: p.diag, MyDisc: p.disc, YourDisc: p.remoteDisc}
		p.send = p.appendFrame(p.send, 1, &hb)
		p.shutdownSent = p.state == StateAdminDown
		p.nextSend = p.now.Add(p.jittered())
	}
	ev := p.events
	p.events, p.spare = p.spare[:0], ev
	return Ready{Send: p.send, Events: ev}
}

// appendFrame encodes hb, completing its per-frame fields, into buffer i.
func (p *Path) appendFrame(send [][]byte, i int, hb *Heartbeat) [][]byte {
	p.count++
	hb.Counter = p.count
	hb.TxTime = p.clock(p.now)
	hb.Multiplier = uint8(p.cfg.Multiplier)
	hb.Interval = uint32(p.cfg.Interval / time.Microsecond)
	hb.Lateness = uint32(min(max(p.lateCur, p.latePrev)/time.Microsecond, 1<<32-1))
	hb.Announce = p.announce[:p.announceLen]
	if hb.YourDisc != 0 && p.echoCounter != 0 {
		hb.EchoCounter, hb.EchoTime = p.echoCounter, p.echoTime
		hb.EchoDelay = uint32(min(max(p.now.Sub(p.echoAt), 0), 1<<32-1))
	}
	body, err := AppendHeartbeat(p.body[:0], hb)
	if err != nil {
		panic("heartbeat: encoding our own heartbeat: " + err.Error()) // every field is ours and checked in NewPath
	}
	p.hdr = frame.Header{Type: frame.TypeHeartbeat, NodeID: p.cfg.LocalID, Epoch: p.epoch}
	out, err := p.codec.Append(p.bufs[i][:0], &p.hdr, body)
	if err != nil {
		panic("heartbeat: framing our own heartbeat: " + err.Error()) // a fixed type and a short payload
	}
	p.bufs[i] = out
	p.stats.Sent++
	return append(send, out)
}

// jittered is the next interval: Interval shortened by up to Jitter, so that
// detection, which counts whole intervals, is never stretched by it.
func (p *Path) jittered() time.Duration {
	if p.cfg.Jitter == 0 {
		return p.cfg.Interval
	}
	return p.cfg.Interval - time.Duration(p.rng.Float64()*p.cfg.Jitter*float64(p.cfg.Interval))
}

// clock is now as the nanosecond counter carried in TxTime.
func (p *Path) clock(now time.Time) uint64 { return uint64(now.Sub(p.start)) }

// Stats returns the path's counters.
func (p *Path) Stats() Stats {
	s := p.stats
	s.Name, s.State = p.cfg.Name, p.state
	s.LocalDisc, s.PeerDisc, s.PeerID = p.disc, p.remoteDisc, p.peerID
	s.DetectTime = p.detect
	return s
}

func (p *Path) drop(r DropReason) { p.stats.Drops[r]++ }

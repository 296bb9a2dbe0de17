package l2transport

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/swha/swha/frame"
)

// Session is the reliable stream core: a pure state machine with no goroutines,
// clocks or sockets, in the style of etcd-io/raft's RawNode. Inputs are Send,
// Step (a received PDU) and Tick (time passing); outputs are collected with Ready
// and released with Advance. A Session is not safe for concurrent use; a driver
// (Conn) serialises calls.
//
// Protocol summary (the byte layouts are in docs/ARCHITECTURE.md):
//
//   - Handshake. Hello and HelloAck carry the sender's epoch (header Epoch), its
//     initial sequence number ISN (header Seq) and a 32-byte payload: the peer
//     epoch and peer ISN the sender last saw (4+8 bytes), its receive window in
//     frames (4 bytes), its incarnation (8 bytes, SessionConfig.Incarnation)
//     and the peer incarnation it last saw (8 bytes, 0 for none). A side
//     becomes established when it receives a Hello or HelloAck that echoes its
//     own epoch, ISN and incarnation; every Hello is answered with a HelloAck,
//     and a side that just became established sends one HelloAck unprompted so
//     that the peer completes without waiting for its Hello timer. The last 16
//     bytes were added within frame version 1: a receiver needs only the first
//     16 and ignores the rest, and from a sender of 16 bytes the incarnations
//     are taken as unknown (and not checked).
//   - Incarnations. A Session draws a random incarnation, and its ISN from it,
//     unless configured. Epochs order incarnations; the incarnation tells
//     apart two that (wrongly) share an epoch. A Hello or HelloAck of the
//     peer's current epoch with an incarnation other than the one known is a
//     peer that restarted and reused its epoch: the stream restarts as for a
//     newer epoch (EventPeerRestarted with EpochReused, counted in
//     PeerEpochReuses), and the replaced incarnation's Hellos are dropped from
//     then on (DropStaleStream). Before incarnations, such a peer was taken
//     for the old one: each side established against the other's stale
//     sequence numbers, and the pair wedged with only drop counters moving.
//   - Restart. A Hello from a newer peer epoch (RFC 1982 comparison) discards the
//     old stream on this side: unacknowledged sends and undelivered receives are
//     dropped and reported in EventPeerRestarted, and the new stream starts at an
//     ISN above every sequence number used so far. Frames of the peer's epoch with
//     a sequence number below its current ISN belong to an older stream and are
//     dropped (DropStaleStream); this is why an Ack frame carries the sender's
//     next sequence number in Seq.
//   - Data. Small messages are batched (FlagBatch: 16-bit length + bytes per
//     record, one transaction per frame); larger ones are fragmented with
//     FragOffset and FlagLastFragment. Every Data frame piggybacks the cumulative
//     ack and up to four SACK blocks.
//   - Flow control. The receiver advertises a window W in frames in the payload of
//     Ack (4 bytes, big-endian) and of Hello/HelloAck: the sender may send sequence
//     numbers below Ack+W. Data frames carry no window, so the receiver sends a
//     standalone Ack whenever the edge the sender knows leaves less than half a
//     window of room and a larger one is available.
type Session struct {
	cfg        SessionConfig
	codec      *frame.Codec
	payloadMax int // largest Data payload, leaving room for four SACK blocks
	now        time.Time

	// Handshake state.
	inc          uint64 // our incarnation
	peerNode     uint64
	peerEpoch    uint32    // 0 until the first Hello
	peerInc      uint64    // the peer's incarnation, 0 while unknown
	retiredInc   [4]uint64 // peer incarnations replaced under peerEpoch, a ring
	retiredNext  int
	peerISN      uint64 // the peer's ISN: tentative until established
	established  bool
	isn          uint64
	needHello    bool
	needHelloAck bool
	helloAt      time.Time // next Hello while not established
	lastHello    time.Time
	lastHelloAck time.Time

	// Send side. sq is a ring of frames for sequence numbers sndUna,
	// sndUna+1, ...: the first sndNxt-sndUna were sent, the rest are queued.
	sq           []sendFrame
	sqHead       int
	sqLen        int
	sndUna       uint64
	sndNxt       uint64
	sndLimit     uint64 // the peer accepts sequence numbers below this
	peerWnd      uint64
	ackRequested bool // an AckRequest is outstanding for this window
	queuedBytes  int
	bufFree      [][]byte
	maxFree      int
	wholeFree    [][]byte // buffers of acknowledged fragmented messages, for reuse
	retxQ        []uint64
	retxHead     int
	highSacked   uint64    // one past the highest SACKed sequence number
	rackSent     time.Time // send time of the newest frame known delivered
	rtoAt        time.Time
	frto         bool // a timeout resent frtoSeq; the next advancing ack tells if it was spurious
	frtoSeq      uint64
	frtoAt       time.Time // when that timeout fired
	retxAt       time.Time // when the oldest outstanding retransmission counts as lost
	probeAt      time.Time
	needProbe    bool
	backoffs     int
	rto          time.Duration
	srtt         time.Duration
	rttvar       time.Duration
	hasRTT       bool
	lastSent     time.Time

	// Receive side. ooo is a ring of out-of-order frames indexed by seq&oooMask.
	rcvNext     uint64
	ooo         []recvSlot
	oooMask     uint64
	oooCount    int
	oooBytes    int
	rcvFree     [][]byte
	sacks       []sackRange // received ranges above rcvNext, ascending
	sackClock   uint64
	sackOrder   []int // scratch: sacks indices, most recently changed first
	sackDirty   bool  // blocks changed since the last standalone ack
	lossDirty   bool  // new SACK information: run loss detection
	reasm       []byte
	reasmTxn    uint64
	reasmActive bool
	reasmSkip   bool // a fragment went missing from the message: skip to the next one
	reasmFree   [][]byte
	unackedRecv int
	ackAt       time.Time
	needAck     bool
	advEdge     uint64 // rcvNext+window as last advertised

	// Liveness. Only a frame that is new counts (see onStream): ackCtr
	// numbers our acks, peerAckCtr is the highest of the peer's seen on
	// this stream.
	ackCtr        uint64
	peerAckCtr    uint64
	helloCtr      uint64 // numbers our hellos
	peerHelloCtr  uint64 // the highest of the peer incarnation's seen
	heardAny      bool
	lastHeard     time.Time
	silent        bool
	needKeepalive bool
	// Ack stall: stallFrom is when frames last went in flight or the peer
	// last acknowledged new ones, zero while none are in flight; stalled says the silence reported is one of acks, of
	// a peer still heard.
	stallFrom time.Time
	stalled   bool

	// Fencing. prev is the peer incarnation the stream left for a newer
	// epoch, with the highest counters it was heard with: a frame of it
	// with a higher one is new, so two incarnations of the peer's node ID
	// speak at once (an impersonator or a split), and if the newer one has
	// gone silent the stream goes back to the older one (reform).
	prevValid    bool
	prevEpoch    uint32
	prevInc      uint64
	prevAckCtr   uint64
	prevHelloCtr uint64
	conflictAt   time.Time // the last incarnation conflict; zero: none yet

	// Output, valid until Advance.
	outBuf         []byte
	outFrames      [][]byte
	outReturned    int
	events         []Event
	eventsReturned int
	pend           msgSet // messages collected since the last Ready
	held           msgSet // messages returned by Ready, not yet released
	msgsOut        bool

	h      frame.Header // decode scratch
	oh     frame.Header // encode scratch
	hello  [helloCtrLen]byte
	ackPay [ackLen]byte
	stats  SessionStats
}

type sendFrame struct {
	payload []byte
	sentAt  time.Time
	txn     uint64
	fragOff uint32
	flags   frame.Flags // FlagBatch and FlagLastFragment only
	msgs    int32       // messages that end in this frame
	pooled  bool        // payload came from bufFree
	// whole is set on the last fragment of a fragmented message: the buffer
	// all its fragments alias, free for reuse once this frame is popped
	// (fragments are consecutive and popped in order).
	whole  []byte
	sacked bool
	retx   bool // sent more than once: no RTT sample (Karn's rule)
	queued bool // in retxQ
	fast   bool // queued by loss detection rather than by the RTO
	lost   bool // already marked lost since the last timeout
}

// sackRange is a received range with the time (a counter) it last changed, so
// that acks report the freshest ranges first, as TCP receivers do: a range the
// sender has not heard of is then one whose every report was lost.
type sackRange struct {
	frame.SACKBlock
	changed uint64
}

type recvSlot struct {
	present bool
	seq     uint64
	txn     uint64
	fragOff uint32
	flags   frame.Flags
	buf     []byte
}

type msgSet struct {
	arena []byte
	msgs  []Message
	owned int      // bytes of reassembled messages that live outside arena
	bufs  [][]byte // those reassembly buffers
}

func (m *msgSet) bytes() int { return len(m.arena) + m.owned }

func (m *msgSet) reset() {
	if m.owned > 0 {
		clear(m.msgs) // let the collector have the big reassembly buffers
		clear(m.bufs)
	}
	m.arena = m.arena[:0]
	m.msgs = m.msgs[:0]
	m.bufs = m.bufs[:0]
	m.owned = 0
}

// maxReasmFree is how many reassembly buffers are kept for reuse. Reusing them
// saves a large allocation, its zeroing and the copies of growing it by append
// for every fragmented message (a fifth of the receiver's CPU for 1 MiB
// messages); a message's Data is the Session's only until ReleaseMessages, so
// its buffer is free after that.
const maxReasmFree = 2

// recycle keeps the reassembly buffers of released messages m for reuse, up to
// maxReasmFree of them and none larger than a quarter of RecvBuffer, so that a
// rare huge message does not stay allocated.
func (s *Session) recycle(m *msgSet) {
	for _, b := range m.bufs {
		if len(s.reasmFree) < maxReasmFree && cap(b) <= s.cfg.RecvBuffer/4 {
			s.reasmFree = append(s.reasmFree, b[:0])
		}
	}
}

// Ready is the output of a Session: frames to transmit in order, messages
// delivered in order, and events. The slices are valid until Advance.
type Ready struct {
	Frames   [][]byte
	Messages []Message
	Events   []Event
}

// NewSession returns a Session for cfg.
func NewSession(cfg SessionConfig) (*Session, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Session{cfg: c, codec: frame.NewCodec(c.Keyring)}
	s.payloadMax = c.MaxPDU - c.Keyring.Len(frame.MaxSACK, 0)
	if s.payloadMax > frame.MaxPayload {
		s.payloadMax = frame.MaxPayload
	}
	s.peerNode = c.PeerNodeID
	s.inc = c.Incarnation
	for s.inc == 0 {
		s.inc = rand.Uint64()
	}
	// The ISN is drawn from 2^62 values, leaving 2^62 sequence numbers of
	// headroom so that they never wrap. Data frames carry the epoch but not
	// the incarnation, so this is what keeps a dead incarnation's late data
	// out of the stream of a successor that reused its epoch: they are below
	// the new ISN (DropStaleStream) or beyond its window, except with odds
	// of one in 2^62 per frame the old incarnation had sent.
	s.isn = 1 + s.inc%(1<<62)
	s.sndUna, s.sndNxt, s.sndLimit = s.isn, s.isn, s.isn
	s.sq = make([]sendFrame, 256)
	ring := 1
	for ring < c.RecvWindow {
		ring <<= 1
	}
	s.ooo = make([]recvSlot, ring)
	s.oooMask = uint64(ring - 1)
	s.maxFree = c.SendBuffer/s.payloadMax + 16
	s.rto = c.InitialRTO
	s.needHello = true
	return s, nil
}

// MaxPayload is the largest Data payload per frame; messages up to MaxPayload-2
// bytes are batched, larger ones fragmented.
func (s *Session) MaxPayload() int { return s.payloadMax }

// Established reports whether the handshake has completed with the current peer.
func (s *Session) Established() bool { return s.established }

// QueuedBytes is the payload bytes queued or in flight; Send refuses more than
// SendBuffer.
func (s *Session) QueuedBytes() int { return s.queuedBytes }

// QueuedFrames is the frames queued or in flight.
func (s *Session) QueuedFrames() int { return s.sqLen }

// Writable reports whether Send would accept a message of n bytes now.
func (s *Session) Writable(n int) bool {
	return s.queuedBytes == 0 || s.queuedBytes+n+2 <= s.cfg.SendBuffer
}

// Send queues msg, copying it, as one message of transaction txnID. It returns
// ErrBackpressure when the send buffer is full and ErrMessageTooLarge for a
// message over MaxMessage. Messages sent before the handshake completes wait for
// it.
func (s *Session) Send(msg []byte, txnID uint64) error { return s.send(msg, txnID, false) }

// backlogged reports whether frames are queued that have not been sent yet.
// Between flushes that only happens when the peer's window is closed (a flush
// sends all the window allows), so a driver need not flush after queueing
// behind them: the ack that opens the window will.
func (s *Session) backlogged() bool { return s.sqLen > int(s.sndNxt-s.sndUna) }

// fragmented reports whether a message of n bytes is fragmented rather than
// batched; Send copies such a message whole.
func (s *Session) fragmented(n int) bool { return n+2 > s.payloadMax }

// sendOwned is Send for a message that will be fragmented (fragmented(len(msg))),
// taking ownership of msg instead of copying it. A driver copies a large
// message before taking the lock that serialises the Session, so that the
// copy, a sizeable part of a bulk sender's CPU, does not hold up the reader.
func (s *Session) sendOwned(msg []byte, txnID uint64) error { return s.send(msg, txnID, true) }

func (s *Session) send(msg []byte, txnID uint64, owned bool) error {
	n := len(msg)
	if n > s.cfg.MaxMessage {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, n, s.cfg.MaxMessage)
	}
	batch := !s.fragmented(n)
	if owned && batch {
		panic("l2transport: sendOwned with a message that would be batched")
	}
	cost := n
	if batch {
		cost += 2
	}
	if s.queuedBytes > 0 && s.queuedBytes+cost > s.cfg.SendBuffer {
		s.stats.Backpressure++
		return ErrBackpressure
	}
	s.queuedBytes += cost
	s.stats.MessagesSent++
	if batch {
		if s.sqLen > int(s.sndNxt-s.sndUna) {
			// The newest frame has not been sent yet: coalesce into it if it is a
			// batch of the same transaction with room left.
			f := s.sqAt(s.sqLen - 1)
			if f.flags&frame.FlagBatch != 0 && f.txn == txnID && len(f.payload)+cost <= s.payloadMax {
				f.payload = binary.BigEndian.AppendUint16(f.payload, uint16(n))
				f.payload = append(f.payload, msg...)
				f.msgs++
				return nil
			}
		}
		f := s.sqPush()
		f.payload = binary.BigEndian.AppendUint16(s.getBuf(), uint16(n))
		f.payload = append(f.payload, msg...)
		f.pooled = true
		f.txn = txnID
		f.flags = frame.FlagBatch | frame.FlagLastFragment
		f.msgs = 1
		return nil
	}
	// One copy of the whole message; the fragments alias it, so a large message
	// costs one allocation rather than one per frame.
	buf := msg
	if !owned {
		buf = append(s.wholeBuf(n), msg...) // not zeroed before the copy
	}
	for off := 0; off < n; off += s.payloadMax {
		end := min(off+s.payloadMax, n)
		f := s.sqPush()
		f.payload = buf[off:end:end]
		f.fragOff = uint32(off)
		f.txn = txnID
		if end == n {
			f.flags = frame.FlagLastFragment
			f.msgs = 1
			f.whole = buf
		}
	}
	return nil
}

// maxWholeFree is how many buffers of acknowledged fragmented messages are
// kept for the next ones. A bulk sender of 1 MiB messages otherwise allocated
// a fresh megabyte per message: measured at MTU 9000, the garbage collector
// and the page faults on fresh memory took about 15% of the CPU.
const maxWholeFree = 4

// wholeBuf returns an empty buffer with room for n bytes from the reuse list,
// or nil (append then allocates).
func (s *Session) wholeBuf(n int) []byte {
	for i := len(s.wholeFree) - 1; i >= 0; i-- {
		if b := s.wholeFree[i]; cap(b) >= n {
			last := len(s.wholeFree) - 1
			s.wholeFree[i] = s.wholeFree[last]
			s.wholeFree[last] = nil
			s.wholeFree = s.wholeFree[:last]
			return b
		}
	}
	return nil
}

// recycleWhole keeps the buffer of a fully acknowledged fragmented message,
// up to maxWholeFree of them and none larger than a quarter of SendBuffer, so
// that a rare huge message does not stay allocated.
func (s *Session) recycleWhole(b []byte) {
	if cap(b) > s.cfg.SendBuffer/4 {
		return
	}
	if len(s.wholeFree) == maxWholeFree {
		// Keep the larger buffers: they fit more messages.
		i := slices.IndexFunc(s.wholeFree, func(f []byte) bool { return cap(f) < cap(b) })
		if i < 0 {
			return
		}
		s.wholeFree[i] = b[:0]
		return
	}
	s.wholeFree = append(s.wholeFree, b[:0])
}

func (s *Session) getBuf() []byte {
	if n := len(s.bufFree); n > 0 {
		b := s.bufFree[n-1]
		s.bufFree = s.bufFree[:n-1]
		return b
	}
	return make([]byte, 0, s.payloadMax)
}

func (s *Session) sqAt(i int) *sendFrame { return &s.sq[(s.sqHead+i)&(len(s.sq)-1)] }

func (s *Session) frameBySeq(seq uint64) *sendFrame { return s.sqAt(int(seq - s.sndUna)) }

func (s *Session) sqPush() *sendFrame {
	if s.sqLen == len(s.sq) {
		grown := make([]sendFrame, 2*len(s.sq))
		for i := range s.sqLen {
			grown[i] = *s.sqAt(i)
		}
		s.sq, s.sqHead = grown, 0
	}
	f := s.sqAt(s.sqLen)
	s.sqLen++
	*f = sendFrame{}
	return f
}

// sqPop releases the frame at sndUna; the caller advances sndUna.
func (s *Session) sqPop() {
	f := &s.sq[s.sqHead]
	s.queuedBytes -= len(f.payload)
	if f.pooled && len(s.bufFree) < s.maxFree {
		s.bufFree = append(s.bufFree, f.payload[:0])
	}
	if f.whole != nil {
		s.recycleWhole(f.whole)
	}
	*f = sendFrame{}
	s.sqHead = (s.sqHead + 1) & (len(s.sq) - 1)
	s.sqLen--
}

// Step consumes one received PDU at time now. It returns the codec's error for a
// frame that does not decode (already counted in Stats); every other refusal is
// counted by DropReason and returns nil. Step copies what it keeps, so pdu may
// be reused as soon as it returns.
func (s *Session) Step(pdu []byte, now time.Time) error {
	s.now = now
	s.stats.FramesReceived++
	s.stats.BytesReceived += uint64(len(pdu))
	payload, err := s.codec.Decode(pdu, &s.h)
	if err != nil {
		if fe, ok := err.(frame.Error); ok && int(fe) < len(s.stats.DecodeErrors) {
			s.stats.DecodeErrors[fe]++
		}
		return err
	}
	h := &s.h
	switch {
	case h.NodeID == s.cfg.LocalNodeID:
		s.drop(DropSelf)
		if epochNewer(h.Epoch, s.cfg.Epoch) {
			// Not a loop (that reflects our own epoch): a node speaks
			// with our node ID and a newer epoch, which wins at the peer.
			s.conflict(h.NodeID, h.Epoch, true)
		}
		return nil
	case s.peerNode != 0 && h.NodeID != s.peerNode:
		s.drop(DropWrongNode)
		return nil
	}
	switch h.Type {
	case frame.TypeHello, frame.TypeHelloAck:
		s.onHello(h, payload)
	case frame.TypeData, frame.TypeAck:
		s.onStream(h, payload)
	default:
		s.drop(DropUnhandledType)
	}
	return nil
}

func (s *Session) drop(r DropReason) { s.stats.Drops[r]++ }

// epochNewer compares epochs in RFC 1982 serial arithmetic, so that a boot
// counter may wrap.
func epochNewer(a, b uint32) bool { return int32(a-b) > 0 }

func (s *Session) onHello(h *frame.Header, payload []byte) {
	if len(payload) < helloLen {
		s.drop(DropMalformed)
		return
	}
	seenEpoch := binary.BigEndian.Uint32(payload[0:])
	seenISN := binary.BigEndian.Uint64(payload[4:])
	wnd := binary.BigEndian.Uint32(payload[12:])
	var inc, seenInc uint64 // 0: a sender before incarnations
	ext := len(payload) >= helloExtLen
	if ext {
		inc = binary.BigEndian.Uint64(payload[16:])
		seenInc = binary.BigEndian.Uint64(payload[24:])
	}
	// ctr 0: a sender before hello counters, whose replays cannot be told.
	var ctr uint64
	if len(payload) >= helloCtrLen {
		ctr = binary.BigEndian.Uint64(payload[32:])
	}
	if s.peerEpoch != 0 && h.Epoch != s.peerEpoch {
		if !epochNewer(h.Epoch, s.peerEpoch) {
			if !s.fromPrev(h, inc, ctr, 0) {
				s.drop(DropStaleEpoch)
				return
			}
			// Reformed with this incarnation: a hello of the current one.
		} else {
			s.restart(h.Epoch, restartNewer)
		}
	} else if s.peerEpoch != 0 && inc != 0 && s.peerInc != 0 && inc != s.peerInc {
		// The peer's epoch, another incarnation: it restarted and reused
		// its epoch, unless this is a late frame of one it replaced.
		if s.retired(inc) {
			s.drop(DropStaleStream)
			return
		}
		s.retiredInc[s.retiredNext] = s.peerInc
		s.retiredNext = (s.retiredNext + 1) % len(s.retiredInc)
		s.stats.PeerEpochReuses++
		s.restart(h.Epoch, restartReused)
	}
	if ctr != 0 {
		if ctr <= s.peerHelloCtr {
			// Sent before one already seen: a duplicate or a replay. It says
			// nothing of the peer now and draws no answer.
			s.drop(DropRepeatHello)
			return
		}
		s.peerHelloCtr = ctr
		if seenEpoch != 0 && (epochNewer(seenEpoch, s.cfg.Epoch) ||
			(seenEpoch == s.cfg.Epoch && ext && seenInc != 0 && seenInc != s.inc)) {
			// The peer names as us an incarnation newer than ours, or
			// another with our epoch: someone speaks with our node ID.
			s.conflict(s.cfg.LocalNodeID, seenEpoch, true)
		}
	}
	if s.peerEpoch == 0 {
		s.peerEpoch = h.Epoch
		if s.peerNode == 0 {
			s.peerNode = h.NodeID
		}
	}
	if s.peerInc == 0 {
		s.peerInc = inc
	}
	echoes := seenEpoch == s.cfg.Epoch && seenISN == s.isn && (!ext || seenInc == s.inc)
	if s.established {
		if ctr == 0 || echoes {
			// The peer's current incarnation, on a stream already up: it
			// missed our HelloAck, or (without a counter to tell) someone
			// replays its hello. Answering every one of the latter would
			// let a replayer make us send at its rate.
			s.drop(DropRepeatHello)
			if ctr != 0 {
				s.heard()
			}
			if h.Type == frame.TypeHello && s.now.Sub(s.lastHelloAck) >= s.cfg.MinRTO {
				s.needHelloAck = true
			}
			return
		}
		// A new hello of the same incarnation that does not know our
		// stream: the peer dropped it, having followed another node that
		// spoke with our node ID (or a newer stream of its own it then
		// left). Our stream is dead on its side; start a new one, or both
		// would stay established on streams the other no longer has.
		s.stats.PeerResets++
		saved := s.peerHelloCtr
		s.restart(h.Epoch, restartReset)
		s.peerInc, s.peerHelloCtr = inc, saved
	}
	s.heard()
	if h.Type == frame.TypeHello {
		s.needHelloAck = true
	}
	s.peerISN = h.Seq
	if echoes {
		s.establish(uint64(wnd))
		// Tell the peer at once that we have its ISN, rather than leave it to
		// its Hello timer.
		s.needHelloAck = true
	}
}

// fromPrev takes a frame of an older epoch than the peer's (dropped unless
// this returns true) and reports whether it made the stream go back to that
// incarnation. A frame of the incarnation the stream left with a counter
// above the highest seen from it (a hello's ctr, or an ack's ackCtr) was sent
// since: two incarnations of the peer's node ID speak, an impersonator and
// the real node, or the two sides of a split. That is an alarm; and if the
// newer one has been silent for DeadInterval (the intruder stopped) while the
// older one speaks, the older one is the peer, and the stream goes back to
// it, without a restart by hand.
func (s *Session) fromPrev(h *frame.Header, inc, helloCtr, ackCtr uint64) (reformed bool) {
	if !s.prevValid || h.Epoch != s.prevEpoch {
		return false
	}
	switch {
	case helloCtr != 0 && helloCtr > s.prevHelloCtr && (inc == 0 || s.prevInc == 0 || inc == s.prevInc):
	case ackCtr != 0 && ackCtr > s.prevAckCtr:
	default:
		return false // a replay, a late frame or one that cannot tell
	}
	s.conflict(h.NodeID, h.Epoch, false)
	if s.now.Sub(s.lastHeard) < s.cfg.DeadInterval {
		if helloCtr > s.prevHelloCtr {
			s.prevHelloCtr = helloCtr
		}
		s.prevAckCtr = max(s.prevAckCtr, ackCtr)
		return false
	}
	prevInc, prevHello, prevAck := s.prevInc, s.prevHelloCtr, s.prevAckCtr
	s.stats.PeerReforms++
	s.restart(s.prevEpoch, restartReformed)
	s.peerInc, s.peerHelloCtr, s.peerAckCtr = prevInc, prevHello, max(prevAck, ackCtr)
	return true
}

// conflict counts a frame that shows two incarnations of node at once
// (epoch the other's), and reports it in an EventIncarnationConflict at most
// once per DeadInterval of conflicts, so that an intruder cannot flood the
// log. self says the node is this one.
func (s *Session) conflict(node uint64, epoch uint32, self bool) {
	s.stats.IncarnationConflicts++
	first := s.conflictAt.IsZero() || s.now.Sub(s.conflictAt) >= s.cfg.DeadInterval
	s.conflictAt = s.now
	if first {
		s.events = append(s.events, Event{Kind: EventIncarnationConflict, At: s.now, PeerNodeID: node,
			PeerEpoch: s.peerEpoch, ConflictEpoch: epoch, ConflictSelf: self})
	}
}

// retired reports whether inc is a peer incarnation replaced under the
// current peer epoch.
func (s *Session) retired(inc uint64) bool {
	for _, r := range s.retiredInc {
		if r == inc {
			return true
		}
	}
	return false
}

func (s *Session) establish(wnd uint64) {
	s.established = true
	s.rcvNext = s.peerISN
	s.advEdge = s.rcvNext + uint64(s.rcvWnd())
	s.peerWnd = wnd
	s.sndLimit = s.sndUna + wnd
	s.events = append(s.events, Event{Kind: EventEstablished, At: s.now, PeerNodeID: s.peerNode, PeerEpoch: s.peerEpoch})
}

// restartWhy says why the stream restarts.
type restartWhy uint8

const (
	restartNewer    restartWhy = iota // a newer peer epoch
	restartReused                     // a new incarnation with the old one's epoch
	restartReset                      // the same incarnation dropped our stream
	restartReformed                   // back to the incarnation a newer one replaced
)

// restart throws away the stream with the old peer incarnation and begins
// one with the incarnation of newEpoch.
func (s *Session) restart(newEpoch uint32, why restartWhy) {
	ev := Event{Kind: EventPeerRestarted, At: s.now, PeerNodeID: s.peerNode, PeerEpoch: newEpoch, OldPeerEpoch: s.peerEpoch,
		EpochReused: why == restartReused, PeerReset: why == restartReset, Reformed: why == restartReformed,
		SentBefore: s.stats.MessagesSent}
	switch why {
	case restartNewer:
		s.prevValid, s.prevEpoch, s.prevInc = true, s.peerEpoch, s.peerInc
		s.prevAckCtr, s.prevHelloCtr = s.peerAckCtr, s.peerHelloCtr
	case restartReformed:
		// The intruder's epoch is newer: should it speak again, it takes
		// the stream again (and is reported again), as any newer epoch.
		s.prevValid = false
	}
	var lastTxn uint64
	for i := range s.sqLen {
		f := s.sqAt(i)
		ev.DiscardedMessages += int(f.msgs)
		ev.DiscardedBytes += int64(len(f.payload))
		if f.txn != 0 && f.txn != lastTxn {
			ev.DiscardedTxns = append(ev.DiscardedTxns, f.txn)
			lastTxn = f.txn
		}
	}
	for s.sqLen > 0 {
		s.sqPop()
	}
	// The new ISN is above every sequence number already used (Ack frames carry
	// sndNxt), which is what lets the new peer tell our old frames apart.
	s.isn = s.sndNxt + 1
	s.sndUna, s.sndNxt, s.sndLimit = s.isn, s.isn, s.isn
	s.sqHead = 0
	s.retxQ, s.retxHead = s.retxQ[:0], 0
	s.highSacked = 0
	s.ackRequested = false
	s.rtoAt, s.retxAt, s.probeAt = time.Time{}, time.Time{}, time.Time{}
	s.needProbe = false
	s.backoffs = 0
	s.frto = false
	s.rttRTO()
	s.stallFrom, s.stalled = time.Time{}, false

	ev.RecvDiscarded = len(s.pend.msgs)
	if s.reasmActive {
		ev.RecvDiscarded++
	}
	s.pend.reset()
	s.reasm, s.reasmActive, s.reasmSkip = nil, false, false
	for i := range s.ooo {
		s.freeSlot(&s.ooo[i])
	}
	s.sacks = s.sacks[:0]
	s.unackedRecv, s.ackAt, s.needAck = 0, time.Time{}, false

	s.established = false
	if newEpoch != s.peerEpoch {
		s.retiredInc = [len(s.retiredInc)]uint64{}
	}
	s.peerEpoch = newEpoch
	s.peerInc = 0 // the new incarnation's Hello tells
	s.peerISN = 0
	s.peerAckCtr = 0   // the new stream's acks count from its own start
	s.peerHelloCtr = 0 // and so do the new incarnation's hellos
	s.needHello = true
	s.stats.PeerRestarts++
	s.events = append(s.events, ev)
}

func (s *Session) freeSlot(sl *recvSlot) {
	if !sl.present {
		return
	}
	s.oooCount--
	s.oooBytes -= len(sl.buf)
	if len(s.rcvFree) < len(s.ooo) {
		s.rcvFree = append(s.rcvFree, sl.buf[:0])
	}
	*sl = recvSlot{}
}

func (s *Session) heard() {
	s.lastHeard = s.now
	s.heardAny = true
	if s.silent && !s.stalled {
		s.silent = false
		if s.sndNxt > s.sndUna {
			// Back from silence (a healed partition): the peer gets a
			// whole bound to acknowledge what waited.
			s.stallFrom = s.now
		}
		s.events = append(s.events, Event{Kind: EventPeerAlive, At: s.now, PeerNodeID: s.peerNode, PeerEpoch: s.peerEpoch})
	}
}

// helloSoon asks for an early Hello when the peer behaves as if established but
// we are not, rate-limited to one per MinRTO.
func (s *Session) helloSoon() {
	if s.now.Sub(s.lastHello) >= s.cfg.MinRTO {
		s.needHello = true
	}
}

func (s *Session) onStream(h *frame.Header, payload []byte) {
	if s.peerEpoch == 0 {
		s.drop(DropNotEstablished)
		return
	}
	if h.Epoch != s.peerEpoch {
		if epochNewer(h.Epoch, s.peerEpoch) {
			s.drop(DropUnknownEpoch)
			s.helloSoon()
			return
		}
		var ctr uint64
		if h.Type == frame.TypeAck && len(payload) >= ackLen {
			ctr = binary.BigEndian.Uint64(payload[ackWndLen:])
		}
		if s.fromPrev(h, 0, 0, ctr) {
			// Back to this incarnation, whose stream is gone: hello.
			s.drop(DropNotEstablished)
			s.helloSoon()
			return
		}
		s.drop(DropStaleEpoch)
		return
	}
	if !s.established {
		s.drop(DropNotEstablished)
		s.helloSoon()
		return
	}
	if h.Seq < s.peerISN {
		s.drop(DropStaleStream)
		return
	}
	// Only a frame that is new counts as a sign of life: one that advances
	// the peer's stream or its acknowledgement of ours, or an ack with a
	// higher ack counter. A replayed or duplicated frame passes CRC and HMAC
	// alike, and counting it would keep a dead peer alive for as long as
	// someone replays its frames.
	news := false
	if h.Flags&frame.FlagAckValid != 0 {
		ok, n := s.onAck(h, payload)
		if !ok {
			return
		}
		news = n
	}
	if h.Type != frame.TypeData {
		if len(payload) >= ackLen {
			if c := binary.BigEndian.Uint64(payload[ackWndLen:]); c > s.peerAckCtr {
				s.peerAckCtr, news = c, true
			}
		} else {
			// A peer of the version before the counter (a rolling
			// upgrade): its acks count as they used to, replays included,
			// rather than have an idle mixed pair go silent.
			news = true
		}
		if !news {
			s.drop(DropStaleAck)
			return
		}
		if len(payload) >= ackWndLen && h.Ack >= s.sndUna {
			// Not from an ack overtaken by a newer one: its window is
			// older too, and would pull sndLimit below sndUna.
			s.peerWnd = uint64(binary.BigEndian.Uint32(payload))
			s.sndLimit = h.Ack + s.peerWnd
		}
		s.heard()
		if h.Flags&frame.FlagAckRequest != 0 {
			s.needAck = true
		}
		return
	}
	if news || s.dataNew(h.Seq) {
		s.heard()
	}
	s.onData(h, payload)
}

// dataNew reports whether a Data frame of seq would add to what the stream
// holds: not below the receive point, within the window, not already held.
func (s *Session) dataNew(seq uint64) bool {
	if seq < s.rcvNext || seq-s.rcvNext >= uint64(s.cfg.RecvWindow) {
		return false
	}
	sl := &s.ooo[seq&s.oooMask]
	return seq == s.rcvNext || !sl.present || sl.seq != seq
}

// onAck processes the acknowledgment fields. ok false means the frame is
// bogus; news says it acknowledged something not acknowledged before.
func (s *Session) onAck(h *frame.Header, payload []byte) (ok, news bool) {
	ack := h.Ack
	if ack > s.sndNxt {
		s.drop(DropBadAck)
		return false, false
	}
	if ack < s.sndUna {
		return true, false // an old ack overtaken by a newer one
	}
	// newest is the send time of the most recently sent frame this ack reports
	// delivered for the first time, excluding retransmitted ones (Karn's rule).
	// It gives the RTT sample, and lost retransmissions are detected against it.
	var newest time.Time
	news = ack > s.sndUna
	if ack > s.sndUna {
		if s.frto {
			s.resolveFRTO(ack)
		}
		if f := s.frameBySeq(ack - 1); !f.retx && !f.sacked {
			newest = f.sentAt
		}
		for s.sndUna < ack {
			s.sqPop()
			s.sndUna++
		}
		s.ackRequested = false
		s.backoffs = 0
		if s.sndNxt > s.sndUna {
			s.rtoAt = s.now.Add(s.rto)
		} else {
			s.rtoAt, s.retxAt = time.Time{}, time.Time{}
		}
	}
	if news {
		s.ackProgress()
	}
	newSack := false
	for _, b := range h.SACK[:h.NumSACK] {
		lo, hi := max(b.Start, s.sndUna), min(b.End, s.sndNxt)
		for seq := lo; seq < hi; seq++ {
			if f := s.frameBySeq(seq); !f.sacked {
				f.sacked = true
				newSack = true
				if !f.retx && f.sentAt.After(newest) {
					newest = f.sentAt
				}
			}
		}
		if hi > s.highSacked {
			s.highSacked = hi
		}
	}
	// Only a frame sent after everything already known delivered gives a sample:
	// an older one was reported late (its SACK block did not fit earlier, or its
	// ack was lost) and would inflate the RTT.
	if newest.After(s.rackSent) {
		s.rttSample(s.now.Sub(newest))
		s.rackSent = newest
	}
	if newSack && !news {
		s.ackProgress()
	}
	if newSack {
		// Detect losses in build, once all the acks that arrived together are
		// in: each reports only four ranges, and judging on the first alone
		// would call the others' frames lost.
		s.lossDirty = true
	}
	return true, news || newSack
}

// detectLoss marks as lost, RFC 6675 style, every unacknowledged frame with at
// least DupThresh SACKed frames above it, and queues it for retransmission.
func (s *Session) detectLoss() {
	if s.highSacked <= s.sndUna {
		return
	}
	above := 0
	reo := max(s.srtt/4, s.cfg.MinRTO/8) // reordering tolerance
	for i := int(s.highSacked-s.sndUna) - 1; i >= 0; i-- {
		f := s.sqAt(i)
		if f.sacked {
			above++
			continue
		}
		switch {
		case above >= s.cfg.DupThresh && !f.lost:
			f.lost, f.fast = true, true
			s.queueRetx(s.sndUna+uint64(i), f)
		case f.lost && f.retx && !f.queued && f.sentAt.Add(reo).Before(s.rackSent):
			// RACK (RFC 8985) for retransmissions: a frame sent well after this
			// retransmission has arrived, so the retransmission was lost too.
			f.fast = true
			s.queueRetx(s.sndUna+uint64(i), f)
		}
	}
}

func (s *Session) queueRetx(seq uint64, f *sendFrame) {
	if f.queued {
		return
	}
	f.queued = true
	s.retxQ = append(s.retxQ, seq)
}

func (s *Session) rttSample(r time.Duration) {
	if r <= 0 {
		r = time.Microsecond
	}
	if !s.hasRTT {
		s.srtt, s.rttvar, s.hasRTT = r, r/2, true
	} else {
		d := s.srtt - r
		if d < 0 {
			d = -d
		}
		s.rttvar = (3*s.rttvar + d) / 4
		s.srtt = (7*s.srtt + r) / 8
	}
	s.rttRTO()
}

// rttRTO recomputes the RTO from the estimates (RFC 6298), dropping any backoff.
// The granularity term is AckDelay because a delayed ack can add that much.
func (s *Session) rttRTO() {
	if !s.hasRTT {
		s.rto = s.cfg.InitialRTO
		return
	}
	s.rto = min(max(s.srtt+max(s.cfg.AckDelay, 4*s.rttvar), s.cfg.MinRTO), s.cfg.MaxRTO)
}

func (s *Session) onData(h *frame.Header, payload []byte) {
	if h.Flags&frame.FlagAckRequest != 0 {
		s.needAck = true
	}
	seq := h.Seq
	if seq < s.rcvNext {
		s.drop(DropDuplicate)
		s.needAck = true // our ack was probably lost
		return
	}
	off := seq - s.rcvNext
	// The hard memory bound holds even against a sender that ignores the window.
	if off >= uint64(s.cfg.RecvWindow) || s.heldBytes() >= s.cfg.RecvBuffer+s.cfg.RecvWindow*s.payloadMax {
		s.drop(DropOutOfWindow)
		s.needAck = true
		return
	}
	if off > 0 {
		sl := &s.ooo[seq&s.oooMask]
		if sl.present {
			s.drop(DropDuplicate)
			s.needAck = true
			return
		}
		var buf []byte
		if n := len(s.rcvFree); n > 0 {
			buf, s.rcvFree = s.rcvFree[n-1], s.rcvFree[:n-1]
		}
		*sl = recvSlot{present: true, seq: seq, txn: h.TxnID, fragOff: h.FragOffset, flags: h.Flags, buf: append(buf, payload...)}
		s.oooCount++
		s.oooBytes += len(payload)
		s.sackInsert(seq)
		s.sackDirty = true
		s.needAck = true // SACK news drives the sender's fast retransmit
		return
	}
	s.consume(h.Flags, h.TxnID, h.FragOffset, payload)
	s.rcvNext++
	if s.oooCount > 0 || len(s.sacks) > 0 {
		for s.oooCount > 0 {
			sl := &s.ooo[s.rcvNext&s.oooMask]
			if !sl.present || sl.seq != s.rcvNext {
				break
			}
			s.consume(sl.flags, sl.txn, sl.fragOff, sl.buf)
			s.freeSlot(sl)
			s.rcvNext++
		}
		s.sackTrim()
		s.sackDirty = true
		s.needAck = true // a hole was filled: tell the sender now
		return
	}
	s.unackedRecv++
	if s.unackedRecv >= s.cfg.AckEvery {
		s.needAck = true
	} else if s.ackAt.IsZero() {
		s.ackAt = s.now.Add(s.cfg.AckDelay)
	}
}

// sackInsert adds seq to the sorted, disjoint received ranges.
func (s *Session) sackInsert(seq uint64) {
	s.sackClock++
	i := 0
	for i < len(s.sacks) && s.sacks[i].End < seq {
		i++
	}
	switch {
	case i < len(s.sacks) && s.sacks[i].End == seq:
		s.sacks[i].End++
		s.sacks[i].changed = s.sackClock
		if i+1 < len(s.sacks) && s.sacks[i+1].Start == s.sacks[i].End {
			s.sacks[i].End = s.sacks[i+1].End
			s.sacks = append(s.sacks[:i+1], s.sacks[i+2:]...)
		}
	case i < len(s.sacks) && s.sacks[i].Start == seq+1:
		s.sacks[i].Start = seq
		s.sacks[i].changed = s.sackClock
	case i < len(s.sacks) && s.sacks[i].Start <= seq:
		// Already inside: cannot happen, the slot was free.
	default:
		s.sacks = append(s.sacks, sackRange{})
		copy(s.sacks[i+1:], s.sacks[i:])
		s.sacks[i] = sackRange{SACKBlock: frame.SACKBlock{Start: seq, End: seq + 1}, changed: s.sackClock}
	}
}

func (s *Session) sackTrim() {
	i := 0
	for i < len(s.sacks) && s.sacks[i].End <= s.rcvNext {
		i++
	}
	if i > 0 {
		s.sacks = append(s.sacks[:0], s.sacks[i:]...)
	}
}

// consume processes the payload of the in-order frame.
func (s *Session) consume(flags frame.Flags, txn uint64, fragOff uint32, payload []byte) {
	if flags&frame.FlagBatch != 0 {
		if s.reasmActive {
			s.abortReasm()
		}
		s.reasmSkip = false
		p := payload
		for len(p) > 0 {
			if len(p) < 2 {
				s.drop(DropMalformed)
				return
			}
			n := int(binary.BigEndian.Uint16(p))
			p = p[2:]
			if n > len(p) {
				s.drop(DropMalformed)
				return
			}
			s.deliver(p[:n], txn)
			p = p[n:]
		}
		return
	}
	last := flags&frame.FlagLastFragment != 0
	if fragOff == 0 {
		if s.reasmActive {
			s.abortReasm()
		}
		s.reasmSkip = false
		if last {
			s.deliver(payload, txn)
			return
		}
		if s.reasm == nil {
			if n := len(s.reasmFree); n > 0 {
				s.reasm, s.reasmFree = s.reasmFree[n-1], s.reasmFree[:n-1]
			}
		}
		s.reasm = append(s.reasm[:0], payload...)
		s.reasmActive, s.reasmTxn = true, txn
		return
	}
	if s.reasmSkip {
		return
	}
	if !s.reasmActive || int(fragOff) != len(s.reasm) || txn != s.reasmTxn || len(s.reasm)+len(payload) > s.cfg.MaxMessage {
		s.abortReasm()
		s.reasmSkip = true
		return
	}
	s.reasm = append(s.reasm, payload...)
	if last {
		s.pend.msgs = append(s.pend.msgs, Message{Data: s.reasm, TxnID: txn})
		s.pend.owned += len(s.reasm)
		s.pend.bufs = append(s.pend.bufs, s.reasm)
		s.stats.MessagesDelivered++
		s.stats.BytesDelivered += uint64(len(s.reasm))
		s.reasm, s.reasmActive = nil, false // the application owns it now
	}
}

func (s *Session) abortReasm() {
	s.drop(DropMalformed)
	s.reasm = s.reasm[:0]
	s.reasmActive = false
}

func (s *Session) deliver(p []byte, txn uint64) {
	a := s.pend.arena
	start := len(a)
	a = append(a, p...)
	s.pend.arena = a
	s.pend.msgs = append(s.pend.msgs, Message{Data: a[start:len(a):len(a)], TxnID: txn})
	s.stats.MessagesDelivered++
	s.stats.BytesDelivered += uint64(len(p))
}

func (s *Session) heldBytes() int {
	n := s.pend.bytes() + s.oooBytes
	if s.msgsOut {
		n += s.held.bytes()
	}
	return n
}

// rcvWnd is the window to advertise, in frames.
func (s *Session) rcvWnd() uint32 {
	free := s.cfg.RecvBuffer - s.heldBytes()
	if free <= 0 {
		return 0
	}
	return uint32(min(free/s.payloadMax, s.cfg.RecvWindow))
}

func (s *Session) windowUpdateDue() bool {
	wnd := uint64(s.rcvWnd())
	if s.rcvNext+wnd <= s.advEdge {
		return false
	}
	var room uint64
	if s.advEdge > s.rcvNext {
		room = s.advEdge - s.rcvNext
	}
	return room < (wnd+1)/2
}

// Tick tells the Session the time is now and fires whatever timers expired. Call
// it at NextDeadline (and before Ready, so Ready stamps frames with a fresh time).
func (s *Session) Tick(now time.Time) {
	s.now = now
	if !s.established && !now.Before(s.helloAt) {
		s.needHello = true
	}
	if !s.ackAt.IsZero() && !now.Before(s.ackAt) {
		s.needAck = true
		s.ackAt = time.Time{}
	}
	if !s.rtoAt.IsZero() && !now.Before(s.rtoAt) {
		s.onRTO()
	}
	if !s.retxAt.IsZero() && !now.Before(s.retxAt) {
		s.onRetxTimer()
	}
	if !s.probeAt.IsZero() && !now.Before(s.probeAt) {
		s.needProbe = true
		s.probeAt = time.Time{}
	}
	if s.established && now.Sub(s.lastSent) >= s.cfg.KeepaliveInterval {
		s.needKeepalive = true
	}
	if s.heardAny && !s.silent && now.Sub(s.lastHeard) >= s.cfg.DeadInterval {
		s.silent = true
		s.events = append(s.events, Event{Kind: EventPeerSilent, At: now, PeerNodeID: s.peerNode, PeerEpoch: s.peerEpoch})
	}
	s.checkStall(now)
}

// checkStall declares a peer that is heard but acknowledges nothing lost,
// within the bound of silence: DeadInterval after frames went in flight or
// were last acknowledged. A peer's keepalives (or those of a standby that
// took another node's stream for ours) would otherwise keep a synchronous
// commit waiting without end for an ack that never comes. Frames held back
// by a closed window do not count: a peer that acknowledges all it was sent
// but has no room (a slow application) is flow control, not a stall.
func (s *Session) checkStall(now time.Time) {
	if !s.established || s.sndNxt == s.sndUna {
		return
	}
	if s.stallFrom.IsZero() {
		s.stallFrom = now
		return
	}
	if s.silent || now.Sub(s.stallFrom) < s.cfg.DeadInterval {
		return
	}
	s.silent, s.stalled = true, true
	s.stats.AckStalls++
	s.events = append(s.events, Event{Kind: EventPeerSilent, At: now, PeerNodeID: s.peerNode, PeerEpoch: s.peerEpoch, AckStall: true})
}

// ackProgress restarts the stall bound: the peer acknowledged something new.
func (s *Session) ackProgress() {
	s.stallFrom = time.Time{}
	if s.sndNxt > s.sndUna {
		s.stallFrom = s.now
	}
	s.stalled = false // the heard() that follows reports the peer alive
}

func (s *Session) onRTO() {
	if !s.established || s.sndNxt == s.sndUna {
		s.rtoAt = time.Time{}
		return
	}
	s.stats.Timeouts++
	s.rto = min(2*s.rto, s.cfg.MaxRTO)
	s.backoffs++
	// A timeout resends only the oldest frame the peer has not SACKed, and the
	// ack it draws tells a real loss from a spurious timeout (F-RTO, RFC 5682):
	// a peer or a driver that was merely slow for an RTO (a descheduled
	// goroutine) acks frames that were never resent, and then nothing more is
	// resent; otherwise resolveFRTO resends the rest of the flight. Resending the
	// whole flight at once, as this did first, sent up to a window of
	// duplicates per spurious timeout. Repeated timeouts keep probing with the
	// oldest frame only: the peer is unreachable.
	for i := range int(s.sndNxt - s.sndUna) {
		f := s.sqAt(i)
		if f.sacked {
			continue
		}
		f.lost = true
		s.queueRetx(s.sndUna+uint64(i), f)
		s.frto, s.frtoSeq, s.frtoAt = true, s.sndUna+uint64(i), s.now
		break
	}
	s.rtoAt = s.now.Add(s.rto)
}

// resolveFRTO runs on the first ack that advances past sndUna after a timeout,
// before the acknowledged frames are released. If the newest frame it
// acknowledges was never resent and not already SACKed, originals are arriving
// and the timeout was spurious; otherwise every unacknowledged, unSACKed frame
// sent before the timeout is presumed lost, as several usually are together,
// and queued.
func (s *Session) resolveFRTO(ack uint64) {
	s.frto = false
	if ack > s.frtoSeq+1 {
		if f := s.frameBySeq(ack - 1); !f.retx && !f.sacked {
			s.stats.SpuriousTimeouts++
			return
		}
	}
	for seq := ack; seq < s.sndNxt; seq++ {
		f := s.frameBySeq(seq)
		if f.sacked || f.queued || f.sentAt.After(s.frtoAt) {
			continue // delivered, already queued, or sent after the timeout
		}
		f.lost = true
		s.queueRetx(seq, f)
	}
}

// retxTimeout is how long a retransmission may go unacknowledged before it
// counts as lost: 1.5 SRTT, without the RTO's variance term, floor and backoff.
// When the window is full, no later frame can reveal that a retransmission
// was lost (RACK needs one), and under loss the RTT variance grows so much
// that SRTT+4·RTTVAR reached the RTO: measured over a 1 GB/s MemLink with 5%
// loss each way, every RTO was such a lost retransmission, and goodput went
// from 0.67-0.77 of lossless to 0.84-0.89 with this bound. A retransmission
// carries AckRequest, so its ack is not delayed, and it queues behind the
// frames in flight like those SRTT was measured on; one that is merely late
// costs one duplicate frame.
func (s *Session) retxTimeout() time.Duration {
	if !s.hasRTT {
		return s.rto
	}
	return max(s.srtt+s.srtt/2, s.cfg.MinRTO/4)
}

// onRetxTimer requeues the retransmissions that timed out and rearms for the
// oldest remaining one. It scans the flight, but it only fires under loss.
func (s *Session) onRetxTimer() {
	s.retxAt = time.Time{}
	// After an RTO the peer is not answering (a partition, a dead peer): leave
	// recovery to the RTO and its backoff rather than resend every RTT.
	if !s.established || s.backoffs > 0 {
		return
	}
	to := s.retxTimeout()
	var oldest time.Time
	for i := range int(s.sndNxt - s.sndUna) {
		f := s.sqAt(i)
		if !f.retx || f.sacked || f.queued {
			continue
		}
		if !f.sentAt.Add(to).After(s.now) {
			f.fast = true
			s.queueRetx(s.sndUna+uint64(i), f)
		} else if oldest.IsZero() || f.sentAt.Before(oldest) {
			oldest = f.sentAt
		}
	}
	if !oldest.IsZero() {
		s.retxAt = oldest.Add(to)
	}
}

// NextDeadline is when Tick must next be called; the zero time means no timer
// is armed (only input can change anything).
func (s *Session) NextDeadline() time.Time {
	var d time.Time
	at := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if !s.established {
		at(s.helloAt)
	}
	at(s.ackAt)
	at(s.rtoAt)
	at(s.retxAt)
	at(s.probeAt)
	if s.established {
		at(s.lastSent.Add(s.cfg.KeepaliveInterval))
	}
	if s.heardAny && !s.silent {
		at(s.lastHeard.Add(s.cfg.DeadInterval))
	}
	if s.established && !s.silent && !s.stallFrom.IsZero() {
		at(s.stallFrom.Add(s.cfg.DeadInterval))
	}
	return d
}

// HasReady reports whether Ready would return anything.
func (s *Session) HasReady() bool {
	if s.needHello || s.needHelloAck || len(s.events) > s.eventsReturned || (!s.msgsOut && len(s.pend.msgs) > 0) {
		return true
	}
	if !s.established {
		return false
	}
	return s.needAck || s.needKeepalive || s.needProbe || s.lossDirty || s.retxHead < len(s.retxQ) ||
		(s.sndNxt < s.sndLimit && s.sqLen > int(s.sndNxt-s.sndUna)) || s.windowUpdateDue()
}

// Ready builds the frames due now and returns them with the messages and events
// collected since the last Ready. While messages returned by an earlier Ready are
// still held (see AdvanceFrames), Messages is empty and new ones wait.
func (s *Session) Ready() Ready {
	s.build()
	rd := Ready{Frames: s.outFrames[s.outReturned:], Events: s.events[s.eventsReturned:]}
	s.outReturned, s.eventsReturned = len(s.outFrames), len(s.events)
	if !s.msgsOut && len(s.pend.msgs) > 0 {
		s.pend, s.held = s.held, s.pend
		s.msgsOut = true
		rd.Messages = s.held.msgs
	}
	return rd
}

// Advance releases everything returned by Ready.
func (s *Session) Advance() {
	s.AdvanceFrames()
	s.ReleaseMessages()
}

// AdvanceFrames releases the frames and events returned by Ready but keeps the
// messages valid, for a driver that delivers them on another goroutine. The
// held bytes count against the receive window until ReleaseMessages, which is
// how a slow application slows the sender down without stalling acks.
func (s *Session) AdvanceFrames() {
	s.outBuf = s.outBuf[:0]
	s.outFrames = s.outFrames[:0]
	s.outReturned = 0
	n := copy(s.events, s.events[s.eventsReturned:])
	clear(s.events[n:])
	s.events = s.events[:n]
	s.eventsReturned = 0
}

// ReleaseMessages releases the messages returned by Ready.
func (s *Session) ReleaseMessages() {
	if s.msgsOut {
		s.recycle(&s.held)
		s.held.reset()
		s.msgsOut = false
	}
}

func (s *Session) build() {
	now := s.now
	if s.needHello {
		s.emitHello(frame.TypeHello)
		s.needHello = false
		s.lastHello = now
		s.helloAt = now.Add(s.cfg.HelloInterval)
	}
	if s.needHelloAck {
		s.emitHello(frame.TypeHelloAck)
		s.needHelloAck = false
		s.lastHelloAck = now
	}
	if !s.established {
		return
	}
	if s.lossDirty {
		s.detectLoss()
		s.lossDirty = false
	}
	sent := 0
	// Retransmissions first: they hold back the peer's cumulative ack.
	for s.retxHead < len(s.retxQ) && sent < s.cfg.MaxBurst && len(s.outBuf) < maxBurstBytes {
		seq := s.retxQ[s.retxHead]
		s.retxHead++
		if seq < s.sndUna || seq >= s.sndNxt {
			continue
		}
		f := s.frameBySeq(seq)
		f.queued = false
		if f.sacked {
			continue
		}
		f.retx = true
		// AckRequest: the ack of a retransmission decides whether it too was
		// lost (retxTimeout), so it must not wait for the delayed-ack timer.
		s.emitData(seq, f, frame.FlagRetransmit|frame.FlagAckRequest)
		s.stats.Retransmits++
		if f.fast {
			s.stats.FastRetransmits++
			f.fast = false
		}
		if s.retxAt.IsZero() && s.backoffs == 0 {
			s.retxAt = now.Add(s.retxTimeout())
		}
		sent++
	}
	if s.retxHead == len(s.retxQ) {
		s.retxQ, s.retxHead = s.retxQ[:0], 0
	}
	for sent < s.cfg.MaxBurst && len(s.outBuf) < maxBurstBytes && s.sndNxt < s.sndLimit && s.sqLen > int(s.sndNxt-s.sndUna) {
		seq := s.sndNxt
		s.sndNxt++
		var extra frame.Flags
		// Ask for an immediate ack once the window is three quarters used, so the
		// sender does not idle waiting for a delayed ack.
		if !s.ackRequested && s.sndLimit-s.sndNxt <= s.peerWnd/4 {
			extra = frame.FlagAckRequest
			s.ackRequested = true
		}
		s.emitData(seq, s.frameBySeq(seq), extra)
		sent++
	}
	if sent > 0 && s.rtoAt.IsZero() {
		s.rtoAt = now.Add(s.rto)
	}
	if s.sndNxt > s.sndUna && s.stallFrom.IsZero() {
		s.stallFrom = now
	}
	// Persist timer: data waits on a closed window with nothing in flight, so no
	// ack is coming to reopen it unless we ask.
	if s.sqLen > int(s.sndNxt-s.sndUna) && s.sndNxt >= s.sndLimit && s.sndNxt == s.sndUna {
		if s.probeAt.IsZero() && !s.needProbe {
			s.probeAt = now.Add(s.rto)
		}
	} else {
		s.probeAt = time.Time{}
	}
	if s.needAck || s.needKeepalive || s.needProbe || s.windowUpdateDue() {
		var flags frame.Flags
		if s.needKeepalive || s.needProbe {
			flags = frame.FlagAckRequest
		}
		s.needProbe = false
		// One ack carries four SACK blocks. When there are more, send enough
		// acks to cover them all (up to a bound): a block the sender never
		// hears of looks lost, and its frames would be resent needlessly.
		n := 1
		if s.sackDirty && len(s.sacks) > frame.MaxSACK {
			n = min((len(s.sacks)+frame.MaxSACK-1)/frame.MaxSACK, maxAckBurst)
		}
		for rank := range n {
			s.emitAck(flags, rank)
		}
		s.sackDirty = false
	}
}

// maxBurstBytes bounds the data one Ready encodes, besides MaxBurst frames. A
// driver holds its lock around Ready, and encoding copies and checksums every
// byte: 256 jumbo frames are over 2 MB, half a millisecond during which the
// reader could not step acks.
const maxBurstBytes = 256 << 10

// maxAckBurst bounds the acks one Ready sends to report SACK blocks.
const maxAckBurst = 8

func (s *Session) header(t frame.Type, flags frame.Flags, seq uint64) *frame.Header {
	h := &s.oh
	*h = frame.Header{Type: t, Flags: flags, NodeID: s.cfg.LocalNodeID, Epoch: s.cfg.Epoch, Seq: seq}
	return h
}

func (s *Session) emitHello(t frame.Type) {
	h := s.header(t, 0, s.isn)
	p := s.hello[:]
	var seenEpoch uint32
	if s.peerISN != 0 {
		seenEpoch = s.peerEpoch
	}
	var seenInc uint64
	if s.peerISN != 0 {
		seenInc = s.peerInc
	}
	binary.BigEndian.PutUint32(p[0:], seenEpoch)
	binary.BigEndian.PutUint64(p[4:], s.peerISN)
	wnd := s.rcvWnd()
	binary.BigEndian.PutUint32(p[12:], wnd)
	binary.BigEndian.PutUint64(p[16:], s.inc)
	binary.BigEndian.PutUint64(p[24:], seenInc)
	s.helloCtr++
	binary.BigEndian.PutUint64(p[32:], s.helloCtr)
	if s.established {
		s.advEdge = s.rcvNext + uint64(wnd)
	}
	s.stats.HellosSent++
	s.appendFrame(h, p)
}

func (s *Session) emitData(seq uint64, f *sendFrame, extra frame.Flags) {
	h := s.header(frame.TypeData, f.flags|frame.FlagAckValid|extra, seq)
	h.FragOffset = f.fragOff
	h.TxnID = f.txn
	h.Ack = s.rcvNext
	s.fillSACK(h, 0)
	s.appendFrame(h, f.payload)
	f.sentAt = s.now
	s.stats.DataFramesSent++
	s.ackSent()
}

func (s *Session) emitAck(flags frame.Flags, rank int) {
	h := s.header(frame.TypeAck, flags|frame.FlagAckValid, s.sndNxt)
	h.Ack = s.rcvNext
	s.fillSACK(h, rank)
	wnd := s.rcvWnd()
	binary.BigEndian.PutUint32(s.ackPay[:], wnd)
	s.ackCtr++
	binary.BigEndian.PutUint64(s.ackPay[ackWndLen:], s.ackCtr)
	s.advEdge = s.rcvNext + uint64(wnd)
	s.appendFrame(h, s.ackPay[:])
	s.stats.AcksSent++
	s.ackSent()
}

func (s *Session) ackSent() {
	s.needAck = false
	s.unackedRecv = 0
	s.ackAt = time.Time{}
}

// fillSACK reports the received ranges ranked [4*rank, 4*rank+4) by how
// recently they changed. rank > 0 is for the extra acks that report more than
// four ranges.
func (s *Session) fillSACK(h *frame.Header, rank int) {
	nb := len(s.sacks)
	if nb == 0 {
		return
	}
	if nb <= frame.MaxSACK && rank == 0 {
		// The common case: few holes, no sorting.
		for i := range nb {
			h.SACK[i] = s.sacks[i].SACKBlock
		}
		h.NumSACK = nb
		return
	}
	order := s.sackOrder[:0]
	for i := range nb {
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(s.sacks[b].changed, s.sacks[a].changed) })
	s.sackOrder = order
	n := 0
	for _, i := range order[min(rank*frame.MaxSACK, nb):min((rank+1)*frame.MaxSACK, nb)] {
		h.SACK[n] = s.sacks[i].SACKBlock
		n++
	}
	h.NumSACK = n
}

func (s *Session) appendFrame(h *frame.Header, payload []byte) {
	start := len(s.outBuf)
	out, err := s.codec.Append(s.outBuf, h, payload)
	if err != nil {
		// Every header and payload here is built by this file within the limits
		// checked at construction; an error is a bug, not bad input.
		panic(fmt.Sprintf("l2transport: session built an unencodable %v frame: %v", h.Type, err))
	}
	s.outBuf = out
	s.outFrames = append(s.outFrames, out[start:len(out):len(out)])
	s.stats.FramesSent++
	s.stats.BytesSent += uint64(len(out) - start)
	s.lastSent = s.now
	s.needKeepalive = false
}

// Stats returns a snapshot of the counters.
func (s *Session) Stats() SessionStats {
	st := s.stats
	st.SRTT, st.RTTVar, st.RTO = s.srtt, s.rttvar, s.rto
	st.InFlight = int(s.sndNxt - s.sndUna)
	st.QueuedFrames = s.sqLen
	st.QueuedBytes = s.queuedBytes
	st.PeerWindow = int(s.peerWnd)
	st.Established = s.established
	st.PeerEpoch = s.peerEpoch
	st.PeerNodeID = s.peerNode
	return st
}

package l2transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of Conn methods.
var (
	// ErrConnClosed is returned by Conn methods after Close.
	ErrConnClosed = errors.New("l2transport: connection closed")
	// ErrConnRestarted is wrapped by the error of a Send or SendBatch that
	// was waiting for send-buffer space when Restart replaced the stream.
	ErrConnRestarted = errors.New("l2transport: connection restarted")
	// ErrEpochNotNewer is wrapped by the error of a Restart whose epoch is
	// not newer, in RFC 1982 serial arithmetic, than the current one.
	ErrEpochNotNewer = errors.New("l2transport: epoch not newer than the current one")
)

// Conn runs a Session over a Link.
//
// Whoever has something for the Session drives it: a Send caller after queueing
// (unless frames already wait for the peer's window: then the ack that opens
// it sends them, and a bulk sender's goroutine is left free to copy the next
// message while the reader's flush encodes and writes on the other CPU),
// the reader after stepping a batch of received frames, the deliverer after the
// application released messages, and a timer callback when a Session deadline
// passes. Each then flushes: Tick, Ready, write the frames, hand messages on.
// Flushing inline, rather than waking a dedicated writer goroutine, takes a
// goroutine hand-off (a futex wake, often a cross-CPU one) out of every send and
// of every ack: measured, the hand-offs made a request/response four times
// slower than TCP, and a writer woken by a busy reader waited for the reader's
// whole time slice, long enough for the peer's RTO to fire. One flusher runs at
// a time (wmu, taken with TryLock, so a reader never waits behind a writer
// stuck on a full socket buffer); a caller that finds it taken leaves a request
// that the holder serves before it lets go.
//
// Messages go to the application on a separate delivery goroutine so that a
// slow application closes the receive window (the Session counts undelivered
// bytes against it) instead of stalling acks and keepalives. Without a
// handler, messages are copied to the Recv queue directly by the flusher when
// the queue has room and nothing is waiting ahead of them, which saves one
// more hand-off on the receive path.
type Conn struct {
	link Link
	log  atomic.Pointer[slog.Logger] // tagged with the current epoch
	opts connOptions

	// Fixed at construction, for every Session the Conn runs.
	payloadMax int // Session.MaxPayload
	maxMessage int // SessionConfig.MaxMessage

	mu           sync.Mutex // guards s, cfg, past, space, spaceWaiting, armed, resetting timer, and gen's writes
	s            *Session
	cfg          SessionConfig // s's
	past         SessionStats  // the counters of the Sessions before s (Restart)
	space        chan struct{} // closed when send-buffer space may have freed
	spaceWaiting bool
	armed        time.Time // when timer fires; zero: not armed
	// gen counts Restarts: what was handed out for delivery, and a Send
	// waiting for space, belong to the generation they were stamped with.
	// It changes with both c.mu and wmu held.
	gen atomic.Uint64

	wmu      sync.Mutex  // held by the one goroutine flushing
	flushReq atomic.Bool // a flush was asked for while wmu was held

	// timer calls the Session at its next deadline (delayed acks,
	// retransmission, keepalive, Hello). A flusher re-arms it directly, so a
	// deadline that moves earlier costs a timer reset, not a goroutine wake.
	timer *time.Timer

	dmu      sync.Mutex // guards dq and dBusy
	dq       []delivery // for the delivery goroutine, in order
	dBusy    bool       // the delivery goroutine holds a delivery
	dNotify  chan struct{}
	recv     chan received // copies, when no handler is set
	closing  chan struct{}
	closeErr error
	once     sync.Once
	wg       sync.WaitGroup

	readDrops  rateLimit
	writeDrops rateLimit
}

type delivery struct {
	msgs   []Message
	events []Event
	gen    uint64 // of the Session they came from
}

// noGen is no generation yet: a Send that has not tried to queue.
const noGen = ^uint64(0)

// received is a message in the Recv queue, with its generation: Recv skips
// those of a stream Restart replaced.
type received struct {
	m   Message
	gen uint64
}

type connOptions struct {
	handler   func(Message)
	onEvent   func(Event)
	log       *slog.Logger
	readBatch int
	recvQueue int
}

// ConnOption configures NewConn.
type ConnOption func(*connOptions)

// WithHandler delivers each message to fn, in order, on the Conn's delivery
// goroutine. m.Data is valid only during the call. While fn runs, received data
// accumulates up to SessionConfig.RecvBuffer and then the sender is throttled;
// acks and keepalives go on. Without a handler, use Recv.
func WithHandler(fn func(m Message)) ConnOption { return func(o *connOptions) { o.handler = fn } }

// WithEventHandler calls fn for each Session event, on the delivery goroutine,
// ordered with the messages around it.
func WithEventHandler(fn func(Event)) ConnOption { return func(o *connOptions) { o.onEvent = fn } }

// WithLogger logs through l (default: discard). Per-frame problems are
// rate-limited to one line per second per kind.
func WithLogger(l *slog.Logger) ConnOption { return func(o *connOptions) { o.log = l } }

// WithReadBatch sets how many frames one ReadBatch may return (default 64).
func WithReadBatch(n int) ConnOption { return func(o *connOptions) { o.readBatch = n } }

// WithRecvQueue sets how many messages Recv buffers before back-pressure
// reaches the Session (default 1024). Ignored with WithHandler.
func WithRecvQueue(n int) ConnOption { return func(o *connOptions) { o.recvQueue = n } }

// NewConn starts a Conn over link. cfg.MaxPDU defaults to link.MaxPDU(). The Conn
// owns link from now on: Close closes it.
func NewConn(link Link, cfg SessionConfig, opts ...ConnOption) (*Conn, error) {
	o := connOptions{readBatch: 64, recvQueue: 1024}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxPDU == 0 {
		cfg.MaxPDU = link.MaxPDU()
	}
	s, err := NewSession(cfg)
	if err != nil {
		return nil, fmt.Errorf("l2transport: new conn: %w", err)
	}
	c := &Conn{
		link:       link,
		opts:       o,
		payloadMax: s.MaxPayload(),
		maxMessage: s.cfg.MaxMessage,
		s:          s,
		cfg:        cfg,
		space:      make(chan struct{}),
		dNotify:    make(chan struct{}, 1),
		closing:    make(chan struct{}),
	}
	c.log.Store(o.log.With("node", cfg.LocalNodeID, "epoch", cfg.Epoch))
	if o.handler == nil {
		c.recv = make(chan received, max(o.recvQueue, 1))
	}
	c.timer = time.AfterFunc(time.Hour, c.onTimer)
	c.timer.Stop()
	c.wg.Add(2)
	go c.readLoop()
	go c.deliverLoop()
	c.flush() // the first Hello, and arms the timer
	return c, nil
}

// soon makes the timer fire at once, for work a flusher left undone.
func (c *Conn) soon() {
	c.mu.Lock()
	c.armed = time.Now()
	c.timer.Reset(0)
	c.mu.Unlock()
}

// spaceFreed wakes Send callers blocked on back-pressure. Called with c.mu held.
func (c *Conn) spaceFreed() {
	if c.spaceWaiting {
		close(c.space)
		c.space = make(chan struct{})
		c.spaceWaiting = false
	}
}

// Send queues msg (copied) for transaction txnID, blocking while the send buffer
// is full until space frees, ctx is done, the Conn closes or Restart replaces
// the stream (an error wrapping ErrConnRestarted: msg was not sent).
func (c *Conn) Send(ctx context.Context, msg []byte, txnID uint64) error {
	owned := c.ownedCopy(msg)
	gen := noGen // the stream it waits for space on
	for {
		select {
		case <-c.closing:
			return ErrConnClosed
		default:
		}
		c.mu.Lock()
		if g := c.gen.Load(); gen == noGen {
			gen = g
		} else if g != gen {
			c.mu.Unlock()
			return fmt.Errorf("l2transport: send: %w", ErrConnRestarted)
		}
		backlog := c.s.backlogged()
		err := c.sendLocked(msg, owned, txnID)
		var wait chan struct{}
		if err == ErrBackpressure {
			wait = c.space
			c.spaceWaiting = true
		}
		c.mu.Unlock()
		switch {
		case err == nil:
			if !backlog {
				c.flush()
			}
			return nil
		case wait == nil:
			return err
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("l2transport: send: %w", ctx.Err())
		case <-c.closing:
			return ErrConnClosed
		}
	}
}

// ownedCopy returns a copy of msg if the Session would copy it whole
// (fragmented messages), made here, outside c.mu, so that copying megabytes
// does not keep the reader from stepping acks; nil otherwise. The buffer is
// one the Session freed when an earlier message was acknowledged, when it has
// one: only taking it needs the lock.
func (c *Conn) ownedCopy(msg []byte) []byte {
	if !c.fragmented(len(msg)) || len(msg) > c.maxMessage {
		return nil
	}
	c.mu.Lock()
	buf := c.s.wholeBuf(len(msg))
	c.mu.Unlock()
	return append(buf, msg...)
}

// fragmented is Session.fragmented, from the Conn's copy of the Session's
// parameters (the same for every Session it runs), so that it needs no lock.
func (c *Conn) fragmented(n int) bool { return n+2 > c.payloadMax }

// sendLocked queues msg, or owned, its copy, if not nil. Called with c.mu held.
func (c *Conn) sendLocked(msg, owned []byte, txnID uint64) error {
	if owned != nil {
		return c.s.sendOwned(owned, txnID)
	}
	return c.s.Send(msg, txnID)
}

// SendBatch queues msgs (copied), in order, all for transaction txnID. It takes
// the lock and flushes once per run of messages that fit rather than once per
// message, which is what a stream of small messages costs most with Send. It
// blocks on back-pressure like Send and returns how many messages were queued:
// len(msgs) with a nil error, fewer only with an error (ctx done, Conn closed,
// ErrMessageTooLarge for msgs[n], or ErrConnRestarted: Restart discarded the
// stream the first n were queued on).
func (c *Conn) SendBatch(ctx context.Context, msgs [][]byte, txnID uint64) (int, error) {
	sent := 0
	// The copy of msgs[sent] when it is fragmented, kept across waits for
	// space so a large message is copied once, not once per wake-up.
	var owned []byte
	gen := noGen // the stream it queued on
	// Bounded: every pass queues at least one message, waits for space or
	// returns.
	for sent < len(msgs) {
		select {
		case <-c.closing:
			return sent, ErrConnClosed
		default:
		}
		var err error
		var wait chan struct{}
		if owned == nil {
			owned = c.ownedCopy(msgs[sent])
		}
		c.mu.Lock()
		if g := c.gen.Load(); gen == noGen {
			gen = g
		} else if g != gen {
			c.mu.Unlock()
			return sent, fmt.Errorf("l2transport: send batch: %w", ErrConnRestarted)
		}
		backlog := c.s.backlogged()
		before := sent
		for sent < len(msgs) {
			if err = c.sendLocked(msgs[sent], owned, txnID); err != nil {
				break
			}
			sent++
			owned = nil
			if sent < len(msgs) && c.fragmented(len(msgs[sent])) {
				break // copy it outside the lock, on the next pass
			}
		}
		if err == ErrBackpressure {
			wait = c.space
			c.spaceWaiting = true
		}
		c.mu.Unlock()
		if sent > before && !backlog {
			c.flush()
		}
		switch {
		case err == nil:
			continue // all sent, or stopped to copy a large message unlocked
		case wait == nil:
			return sent, err
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return sent, fmt.Errorf("l2transport: send batch: %w", ctx.Err())
		case <-c.closing:
			return sent, ErrConnClosed
		}
	}
	return sent, nil
}

// TrySend is Send without blocking: it returns ErrBackpressure when full.
func (c *Conn) TrySend(msg []byte, txnID uint64) error {
	owned := c.ownedCopy(msg)
	c.mu.Lock()
	backlog := c.s.backlogged()
	err := c.sendLocked(msg, owned, txnID)
	c.mu.Unlock()
	if err == nil && !backlog {
		c.flush()
	}
	return err
}

// Recv returns the next message when the Conn has no handler. The returned Data
// is the caller's.
func (c *Conn) Recv(ctx context.Context) (Message, error) {
	if c.recv == nil {
		return Message{}, errors.New("l2transport: Recv on a Conn with a handler")
	}
	for {
		select {
		case r := <-c.recv:
			if r.gen != c.gen.Load() {
				continue // from a stream Restart replaced
			}
			return r.m, nil
		case <-ctx.Done():
			return Message{}, fmt.Errorf("l2transport: recv: %w", ctx.Err())
		case <-c.closing:
			return Message{}, ErrConnClosed
		}
	}
}

func (c *Conn) enqueueRecv(m Message, gen uint64) {
	cp := received{Message{Data: append([]byte(nil), m.Data...), TxnID: m.TxnID}, gen}
	select {
	case c.recv <- cp:
	case <-c.closing:
	}
}

// Stats returns the Session's counters and gauges. The counters include
// those of the Sessions Restart replaced, so that they never go back; the
// gauges are the current Session's.
func (c *Conn) Stats() SessionStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.s.Stats()
	st.addCounters(&c.past)
	return st
}

// Restart replaces the Session with a new one of the given epoch, which must
// be newer (RFC 1982) than the current one, on the same link: what promotion
// or demotion does when the node's failover generation moves on. The old
// stream is discarded: messages queued or unacknowledged are dropped, and
// Send and SendBatch calls waiting for space return an error wrapping
// ErrConnRestarted; messages received and not yet delivered are dropped, and
// once Restart has returned no message or event of the old stream is handed
// to the handlers or returned by Recv, except by a handler call already under
// way (Restart does not wait for it, so that a handler may call Restart).
// The new Session has a new incarnation and the same configuration
// otherwise. It starts the handshake at once; the peer sees a newer epoch and
// reports EventPeerRestarted, and both ends go on with a fresh stream, whose
// EventEstablished follows here as after NewConn. Stats keeps counting across
// the restart (SessionStats.Restarts counts them).
func (c *Conn) Restart(epoch uint32) error {
	// Holding wmu, no flush is between Ready and Advance on the old Session,
	// and none stamps a delivery with the old generation after this.
	c.wmu.Lock()
	c.mu.Lock()
	if c.closed() {
		c.mu.Unlock()
		c.wmu.Unlock()
		return ErrConnClosed
	}
	old := c.cfg.Epoch
	if !epochNewer(epoch, old) {
		c.mu.Unlock()
		c.wmu.Unlock()
		return fmt.Errorf("l2transport: restart with epoch %d after %d: %w", epoch, old, ErrEpochNotNewer)
	}
	cfg := c.cfg
	cfg.Epoch = epoch
	cfg.Incarnation = 0 // a new one: the old incarnation's is in the peer's hands
	s, err := NewSession(cfg)
	if err != nil {
		c.mu.Unlock()
		c.wmu.Unlock()
		return fmt.Errorf("l2transport: restart: %w", err)
	}
	st := c.s.Stats()
	st.Restarts++
	c.past.addCounters(&st)
	c.s, c.cfg = s, cfg
	c.gen.Add(1)
	c.spaceFreed() // waiting senders wake and see the new generation
	c.mu.Unlock()

	c.dmu.Lock()
	clear(c.dq) // the deliverer checks the generation of what it already took
	c.dq = c.dq[:0]
	c.dmu.Unlock()
	for drained := false; !drained && c.recv != nil; {
		select {
		case <-c.recv: // Recv would skip them; free them now
		default:
			drained = true
		}
	}
	log := c.opts.log.With("node", cfg.LocalNodeID, "epoch", epoch)
	c.log.Store(log)
	c.wmu.Unlock()
	log.Info("session restarted with a new epoch; old stream discarded", "old_epoch", old,
		"discarded_frames", st.QueuedFrames, "discarded_bytes", st.QueuedBytes)
	c.flush() // the new Session's Hello, and what others asked for meanwhile
	return nil
}

// Close stops the goroutines and closes the link. Messages not yet acknowledged
// are abandoned.
func (c *Conn) Close() error {
	c.once.Do(func() {
		close(c.closing)
		c.mu.Lock()
		c.timer.Stop()
		c.mu.Unlock()
		if err := c.link.Close(); err != nil && !errors.Is(err, ErrClosed) {
			c.closeErr = fmt.Errorf("l2transport: close link: %w", err)
		}
		c.wg.Wait()
	})
	return c.closeErr
}

func (c *Conn) closed() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

func (c *Conn) readLoop() {
	defer c.wg.Done()
	pkts := make([]Packet, max(c.opts.readBatch, 1))
	for i := range pkts {
		pkts[i].Buf = make([]byte, c.link.MaxPDU())
	}
	for {
		n, err := c.link.ReadBatch(pkts)
		if err != nil {
			if c.closed() || errors.Is(err, ErrClosed) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			c.readDrops.log(c.log.Load(), "link read failed", err)
			// Do not spin on a persistent error; the Session's timers cover the gap.
			select {
			case <-time.After(10 * time.Millisecond):
			case <-c.closing:
				return
			}
			continue
		}
		now := time.Now()
		c.mu.Lock()
		before := c.s.QueuedBytes()
		var stepErr error
		for i := range n {
			if err := c.s.Step(pkts[i].Buf[:pkts[i].N], now); err != nil {
				stepErr = err
			}
		}
		if c.s.QueuedBytes() < before {
			c.spaceFreed()
		}
		ready := c.s.HasReady()
		c.mu.Unlock()
		if stepErr != nil {
			c.readDrops.log(c.log.Load(), "dropped undecodable frame", stepErr)
		}
		if ready && c.flush() {
			// Let the delivery goroutine run now. Readied by us, it waits in
			// this P's run queue until we block, and under load the ring never
			// empties: it would wait for sysmon's 10 ms preemption while
			// undelivered messages close the window.
			runtime.Gosched()
		}
	}
}

// maxFlushPasses bounds the work one flush call takes on for other callers
// before it hands the rest to the timer.
const maxFlushPasses = 64

// flush runs the Session's output now if no other goroutine is doing so, and
// otherwise leaves a request that the goroutine doing so serves before it
// returns. It never waits for another flusher.
//
// It reports whether it handed anything to the delivery goroutine.
func (c *Conn) flush() (delivered bool) {
	c.flushReq.Store(true)
	for range maxFlushPasses {
		if !c.flushReq.Load() || !c.wmu.TryLock() {
			// Nothing asked, or the holder will see the request once it
			// has unlocked (it checks after unlocking).
			return delivered
		}
		c.flushReq.Store(false)
		if c.flushLocked() {
			delivered = true
		}
		c.wmu.Unlock()
	}
	c.soon()
	return delivered
}

// flushLocked ticks the Session and moves everything it has ready: frames to
// the link, messages and events to the application. Called with wmu held. It
// reports whether it queued anything for the delivery goroutine.
func (c *Conn) flushLocked() (delivered bool) {
	// Bounded: each pass either drains some output or returns, and the
	// Session's output per pass is bounded by MaxBurst and the window.
	for range maxFlushPasses {
		if c.closed() {
			return delivered
		}
		c.mu.Lock()
		c.s.Tick(time.Now())
		if !c.s.HasReady() {
			c.rearm()
			c.mu.Unlock()
			return delivered
		}
		rd := c.s.Ready()
		gen := c.gen.Load() // changes only under wmu, which we hold
		c.mu.Unlock()

		c.write(rd.Frames)
		d := delivery{gen: gen}
		if len(rd.Events) > 0 {
			d.events = append([]Event(nil), rd.Events...) // AdvanceFrames reuses them
			for _, ev := range rd.Events {
				c.logEvent(ev)
			}
		}
		d.msgs = rd.Messages
		released := false
		if len(d.events) == 0 && len(d.msgs) > 0 && c.recv != nil {
			d.msgs, released = c.recvDirect(d.msgs, gen)
		}
		c.mu.Lock()
		c.s.AdvanceFrames()
		if released {
			c.s.ReleaseMessages()
		}
		c.mu.Unlock()
		if len(d.msgs) > 0 || len(d.events) > 0 {
			c.dmu.Lock()
			c.dq = append(c.dq, d)
			c.dmu.Unlock()
			delivered = true
			select {
			case c.dNotify <- struct{}{}:
			default:
			}
		}
	}
	c.soon()
	return delivered
}

// rearm moves the timer earlier if the Session's next deadline is earlier
// than it. A deadline that moved later (an ack went out before its delay
// passed) leaves the timer early; it then fires for nothing and re-arms,
// which is rarer and cheaper than re-arming on every change. Called with c.mu
// held.
func (c *Conn) rearm() {
	if dl := c.s.NextDeadline(); !dl.IsZero() && (c.armed.IsZero() || dl.Before(c.armed)) {
		c.armed = dl
		c.timer.Reset(time.Until(dl))
	}
}

// recvDirect copies messages into the Recv queue while it has room and no
// earlier delivery is pending, and returns those left for the delivery
// goroutine; released reports that all went and the Session may release them.
func (c *Conn) recvDirect(msgs []Message, gen uint64) (rest []Message, released bool) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.dBusy || len(c.dq) > 0 {
		return msgs, false
	}
	for i, m := range msgs {
		cp := received{Message{Data: append([]byte(nil), m.Data...), TxnID: m.TxnID}, gen}
		select {
		case c.recv <- cp:
		default:
			return msgs[i:], false
		}
	}
	return nil, true
}

// onTimer runs on the timer's own goroutine when a deadline passes.
func (c *Conn) onTimer() {
	if c.closed() {
		return
	}
	c.mu.Lock()
	c.armed = time.Time{} // the flush re-arms for the next deadline
	c.mu.Unlock()
	// Nothing to re-arm here: every flush ends in one that ticks the Session
	// and re-arms for its next deadline (or hands leftover work to the timer),
	// whether it runs now or is left to the goroutine already flushing, which
	// sees the request after it unlocks. Re-arming here as well fired the
	// timer again at once for a deadline still due, and again, as long as
	// that flusher was busy writing: in bulk transfer, a thousand or more
	// firings per retransmission timeout.
	c.flush()
}

// write hands frames to the link. A frame the link refuses is as good as lost:
// the Session retransmits it.
func (c *Conn) write(frames [][]byte) {
	for len(frames) > 0 {
		n, err := c.link.WriteBatch(frames)
		if err != nil {
			if !c.closed() {
				c.writeDrops.log(c.log.Load(), "link write failed", err)
			}
			n++ // skip the frame that failed
		}
		frames = frames[min(n, len(frames)):]
	}
}

func (c *Conn) deliverLoop() {
	defer c.wg.Done()
	var batch []delivery
	for {
		select {
		case <-c.dNotify:
		case <-c.closing:
			return
		}
		// Bounded: the Session holds back new messages until the previous
		// ones are released, so the queue holds at most one batch of messages
		// plus events.
		for range maxFlushPasses {
			c.dmu.Lock()
			batch, c.dq = c.dq, batch[:0]
			c.dBusy = len(batch) > 0
			c.dmu.Unlock()
			if len(batch) == 0 {
				break
			}
			for i := range batch {
				c.deliverOne(batch[i])
				batch[i] = delivery{}
			}
			c.dmu.Lock()
			c.dBusy = false
			more := len(c.dq) > 0
			c.dmu.Unlock()
			if !more {
				break
			}
		}
		c.dmu.Lock()
		if len(c.dq) > 0 {
			// The pass bound was hit: come back for the rest.
			select {
			case c.dNotify <- struct{}{}:
			default:
			}
		}
		c.dmu.Unlock()
	}
}

func (c *Conn) deliverOne(d delivery) {
	for _, ev := range d.events {
		if c.opts.onEvent != nil && c.gen.Load() == d.gen {
			c.opts.onEvent(ev)
		}
	}
	if len(d.msgs) == 0 {
		return
	}
	for _, m := range d.msgs {
		if c.closed() || c.gen.Load() != d.gen {
			break // closed, or the stream was restarted: deliver no more of it
		}
		if c.recv != nil {
			c.enqueueRecv(m, d.gen)
		} else {
			c.opts.handler(m)
		}
	}
	c.mu.Lock()
	current := c.gen.Load() == d.gen
	if current {
		c.s.ReleaseMessages() // not the new Session's, whose messages may be out
	}
	c.mu.Unlock()
	if current {
		c.flush() // the window reopened, and held-back messages may be ready
	}
}

func (c *Conn) logEvent(ev Event) {
	log := c.log.Load()
	switch ev.Kind {
	case EventPeerRestarted:
		if ev.EpochReused {
			// Once per incarnation that reused its epoch: the peer's
			// configuration is wrong, and a peer without incarnations
			// would have wedged the pair.
			log.Error("peer restarted with the epoch of its previous incarnation; stream reset: its epoch must grow on every restart",
				"peer", ev.PeerNodeID, "epoch", ev.PeerEpoch, "discarded_msgs", ev.DiscardedMessages,
				"discarded_bytes", ev.DiscardedBytes, "recv_discarded", ev.RecvDiscarded)
			return
		}
		if ev.Reformed || ev.PeerReset {
			log.Warn("stream re-formed with the real peer after an incarnation conflict", "peer", ev.PeerNodeID,
				"old_epoch", ev.OldPeerEpoch, "new_epoch", ev.PeerEpoch, "reformed", ev.Reformed, "peer_reset", ev.PeerReset)
			return
		}
		log.Warn("peer restarted; stream reset", "peer", ev.PeerNodeID, "old_epoch", ev.OldPeerEpoch,
			"new_epoch", ev.PeerEpoch, "discarded_msgs", ev.DiscardedMessages, "discarded_bytes", ev.DiscardedBytes,
			"recv_discarded", ev.RecvDiscarded)
	case EventIncarnationConflict:
		if ev.ConflictSelf {
			log.Warn("another node speaks with this node's ID: an impersonator on the HA link, or this node is split in two",
				"node", ev.PeerNodeID, "other_epoch", ev.ConflictEpoch)
			return
		}
		log.Warn("two incarnations of the peer speak at once: an impersonator on the HA link, or a split peer; the stream follows the newer until it falls silent",
			"peer", ev.PeerNodeID, "peer_epoch", ev.PeerEpoch, "other_epoch", ev.ConflictEpoch)
	case EventPeerSilent:
		if ev.AckStall {
			log.Warn("peer heard but not acknowledging; counted as silent", "peer", ev.PeerNodeID, "peer_epoch", ev.PeerEpoch)
			return
		}
		log.Warn("peer silent", "peer", ev.PeerNodeID, "peer_epoch", ev.PeerEpoch)
	default:
		log.Info("session event", "event", ev.Kind.String(), "peer", ev.PeerNodeID, "peer_epoch", ev.PeerEpoch)
	}
}

// rateLimit lets one log line through per second and counts the rest, so that a
// flood of bad frames cannot flood the log.
type rateLimit struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (r *rateLimit) log(l *slog.Logger, msg string, err error) {
	r.mu.Lock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < time.Second {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	l.Warn(msg, "err", err, "suppressed", n)
}

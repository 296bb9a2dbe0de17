package l2transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// ErrConnClosed is returned by Conn methods after Close.
var ErrConnClosed = errors.New("l2transport: connection closed")

// Conn runs a Session over a Link. Three goroutines own it: a reader that
// receives batches of frames and steps the Session, a loop that ticks timers and
// writes what the Session produces, and a deliverer that hands messages to the
// application. The deliverer is separate so that a slow application closes the
// receive window (the Session counts undelivered bytes against it) instead of
// stalling acks and keepalives.
type Conn struct {
	link Link
	log  *slog.Logger
	opts connOptions

	mu           sync.Mutex // guards s, space, spaceWaiting
	s            *Session
	space        chan struct{} // closed when send-buffer space may have freed
	spaceWaiting bool

	kick     chan struct{} // wakes the loop, capacity 1
	deliver  chan delivery
	recv     chan Message // copies, when no handler is set
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
		link:    link,
		log:     o.log.With("node", cfg.LocalNodeID, "epoch", cfg.Epoch),
		opts:    o,
		s:       s,
		space:   make(chan struct{}),
		kick:    make(chan struct{}, 1),
		deliver: make(chan delivery, 16),
		closing: make(chan struct{}),
	}
	if o.handler == nil {
		c.recv = make(chan Message, max(o.recvQueue, 1))
		o.handler = c.enqueueRecv
		c.opts.handler = o.handler
	}
	c.wg.Add(3)
	go c.readLoop()
	go c.runLoop()
	go c.deliverLoop()
	return c, nil
}

func (c *Conn) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
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
// is full until space frees, ctx is done or the Conn closes.
func (c *Conn) Send(ctx context.Context, msg []byte, txnID uint64) error {
	for {
		select {
		case <-c.closing:
			return ErrConnClosed
		default:
		}
		c.mu.Lock()
		err := c.s.Send(msg, txnID)
		var wait chan struct{}
		if err == ErrBackpressure {
			wait = c.space
			c.spaceWaiting = true
		}
		c.mu.Unlock()
		switch {
		case err == nil:
			c.wake()
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

// TrySend is Send without blocking: it returns ErrBackpressure when full.
func (c *Conn) TrySend(msg []byte, txnID uint64) error {
	c.mu.Lock()
	err := c.s.Send(msg, txnID)
	c.mu.Unlock()
	if err == nil {
		c.wake()
	}
	return err
}

// Recv returns the next message when the Conn has no handler. The returned Data
// is the caller's.
func (c *Conn) Recv(ctx context.Context) (Message, error) {
	if c.recv == nil {
		return Message{}, errors.New("l2transport: Recv on a Conn with a handler")
	}
	select {
	case m := <-c.recv:
		return m, nil
	case <-ctx.Done():
		return Message{}, fmt.Errorf("l2transport: recv: %w", ctx.Err())
	case <-c.closing:
		return Message{}, ErrConnClosed
	}
}

func (c *Conn) enqueueRecv(m Message) {
	cp := Message{Data: append([]byte(nil), m.Data...), TxnID: m.TxnID}
	select {
	case c.recv <- cp:
	case <-c.closing:
	}
}

// Stats returns the Session's counters.
func (c *Conn) Stats() SessionStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s.Stats()
}

// Close stops the goroutines and closes the link. Messages not yet acknowledged
// are abandoned.
func (c *Conn) Close() error {
	c.once.Do(func() {
		close(c.closing)
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
			c.readDrops.log(c.log, "link read failed", err)
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
			c.readDrops.log(c.log, "dropped undecodable frame", stepErr)
		}
		if ready {
			c.wake()
		}
	}
}

func (c *Conn) runLoop() {
	defer c.wg.Done()
	defer close(c.deliver)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		c.mu.Lock()
		c.s.Tick(time.Now())
		var rd Ready
		has := c.s.HasReady()
		if has {
			rd = c.s.Ready()
		}
		deadline := c.s.NextDeadline()
		c.mu.Unlock()

		if has {
			c.write(rd.Frames)
			var d delivery
			if len(rd.Events) > 0 {
				d.events = append([]Event(nil), rd.Events...) // AdvanceFrames reuses them
				for _, ev := range rd.Events {
					c.logEvent(ev)
				}
			}
			d.msgs = rd.Messages
			c.mu.Lock()
			c.s.AdvanceFrames()
			c.mu.Unlock()
			if len(d.msgs) > 0 || len(d.events) > 0 {
				select {
				case c.deliver <- d:
				case <-c.closing:
					return
				}
			}
			continue
		}

		var tc <-chan time.Time
		if !deadline.IsZero() {
			timer.Reset(time.Until(deadline))
			tc = timer.C
		}
		select {
		case <-c.kick:
		case <-tc:
		case <-c.closing:
			timer.Stop()
			return
		}
		timer.Stop()
	}
}

// write hands frames to the link. A frame the link refuses is as good as lost:
// the Session retransmits it.
func (c *Conn) write(frames [][]byte) {
	for len(frames) > 0 {
		n, err := c.link.WriteBatch(frames)
		if err != nil {
			if !c.closed() {
				c.writeDrops.log(c.log, "link write failed", err)
			}
			n++ // skip the frame that failed
		}
		frames = frames[min(n, len(frames)):]
	}
}

func (c *Conn) deliverLoop() {
	defer c.wg.Done()
	for d := range c.deliver {
		for _, ev := range d.events {
			if c.opts.onEvent != nil {
				c.opts.onEvent(ev)
			}
		}
		if len(d.msgs) == 0 {
			continue
		}
		for _, m := range d.msgs {
			if c.closed() {
				break
			}
			c.opts.handler(m)
		}
		c.mu.Lock()
		c.s.ReleaseMessages()
		c.mu.Unlock()
		c.wake() // the window reopened, and held-back messages may be ready
	}
}

func (c *Conn) logEvent(ev Event) {
	switch ev.Kind {
	case EventPeerRestarted:
		c.log.Warn("peer restarted; stream reset", "peer", ev.PeerNodeID, "old_epoch", ev.OldPeerEpoch,
			"new_epoch", ev.PeerEpoch, "discarded_msgs", ev.DiscardedMessages, "discarded_bytes", ev.DiscardedBytes,
			"recv_discarded", ev.RecvDiscarded)
	case EventPeerSilent:
		c.log.Warn("peer silent", "peer", ev.PeerNodeID, "peer_epoch", ev.PeerEpoch)
	default:
		c.log.Info("session event", "event", ev.Kind.String(), "peer", ev.PeerNodeID, "peer_epoch", ev.PeerEpoch)
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

package heartbeat

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swha/swha/l2transport"
)

// Defaults for RunnerConfig.
const (
	DefaultEventBuffer = 64
	DefaultRTPriority  = 10
	// DefaultDrainWait bounds each read of a drain: the socket has that long to
	// show a queued frame before the drain takes it as empty. A read with a
	// deadline already past does not look at the socket at all (Go's poller
	// refuses it first), hence a short wait instead of none.
	DefaultDrainWait = 200 * time.Microsecond
	// rxBatch frames per read; rxBufLen bytes per frame: a heartbeat is under
	// 250 bytes, and anything longer is not one (truncated, it fails its CRC).
	rxBatch  = 16
	rxBufLen = 2048
	// drainBatches bounds one drain, so that a flood cannot hold the detector.
	drainBatches = 64
)

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// Path configures the core. A zero Disc is drawn with NewDisc.
	Path PathConfig
	// EventBuffer is the capacity of the Events channel; zero means
	// DefaultEventBuffer.
	EventBuffer int
	// RealTime runs the runner's thread SCHED_FIFO at RTPriority (zero means
	// DefaultRTPriority). It needs CAP_SYS_NICE; without it the runner logs a
	// warning and runs at normal priority. The kernel's RT throttling
	// (/proc/sys/kernel/sched_rt_runtime_us, 950000 of every 1000000 µs by
	// default) still leaves other threads 5% of each CPU.
	RealTime   bool
	RTPriority int
	// Nice, if not zero, is the nice value of the runner's thread when it does
	// not run real-time (-20 to 19; below 0 needs CAP_SYS_NICE). -20 weighs the
	// thread some 87 times a nice-0 busy loop, which shortens its wake-up delay
	// on a saturated CPU without the risks of SCHED_FIFO.
	Nice int
	// DrainWait: see DefaultDrainWait.
	DrainWait time.Duration
	// Logger receives warnings (RT refused, link errors); nil means slog.Default().
	Logger *slog.Logger
}

// RunnerStats are a Path's counters plus the runner's own.
type RunnerStats struct {
	Stats
	RealTime         bool   // the thread runs SCHED_FIFO
	Niced            bool   // the thread runs at RunnerConfig.Nice
	Drains           uint64 // drains before a detection decision
	Drained          uint64 // frames those drains found: each one would have been a late read
	SavedByDrain     uint64 // drains that found a live heartbeat: Downs the drain avoided
	AnnouncesDropped uint64 // Announce events replaced by a newer one while the consumer was slow
	ReadErrors       uint64
	WriteErrors      uint64
}

// Runner drives one Path over one Link on a goroutine of its own, locked to an OS
// thread, that does nothing else: it reads with a deadline at the core's next
// deadline, feeds the core what arrives, ticks it, and sends what it asks.
// Before the core may judge the peer, the runner drains the link, so that frames
// that waited while the thread was not running count, and it tells the core how
// late it woke, so that the core can discount its own lateness.
//
// The Runner does not own the Link: closing it is the caller's, after Close.
type Runner struct {
	link   l2transport.Link
	cfg    RunnerConfig
	log    *slog.Logger
	path   *Path   // owned by the goroutine
	poll   *poller // nil: wait in ReadBatch, through the netpoller
	events chan Event
	done   chan struct{}

	// Inputs from other goroutines, applied by the runner at its next turn.
	inMu       sync.Mutex
	inAnnounce []byte
	annDirty   bool
	inCarrier  bool
	carDirty   bool
	goneDirty  bool
	inEpoch    uint32
	epochDirty bool
	shutdown   bool
	dirty      atomic.Bool
	closing    atomic.Bool

	// Published by the runner after each turn.
	state   atomic.Uint32
	outMu   sync.Mutex
	stats   RunnerStats
	peerAnn [MaxAnnounce]byte
	peerLen int
	peerOK  bool
	err     error

	pending []Event // events the consumer has not taken yet; runner-owned
	rs      RunnerStats
}

// NewDisc draws a random non-zero discriminator for a new incarnation.
func NewDisc() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("heartbeat: draw a discriminator: %w", err)
		}
		if d := binary.LittleEndian.Uint64(b[:]); d != 0 {
			return d, nil
		}
	}
}

// NewRunner starts a runner for cfg.Path over link.
func NewRunner(link l2transport.Link, cfg RunnerConfig) (*Runner, error) {
	if cfg.Path.Disc == 0 {
		d, err := NewDisc()
		if err != nil {
			return nil, err
		}
		cfg.Path.Disc = d
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = DefaultEventBuffer
	}
	if cfg.RTPriority <= 0 {
		cfg.RTPriority = DefaultRTPriority
	}
	if cfg.DrainWait <= 0 {
		cfg.DrainWait = DefaultDrainWait
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	p, err := NewPath(cfg.Path, time.Now())
	if err != nil {
		return nil, err
	}
	poll, err := newPoller(link)
	if err != nil {
		return nil, err
	}
	r := &Runner{
		poll:   poll,
		link:   link,
		cfg:    cfg,
		log:    log.With("path", cfg.Path.Name),
		path:   p,
		events: make(chan Event, cfg.EventBuffer),
		done:   make(chan struct{}),
	}
	r.state.Store(uint32(p.State()))
	r.stats.Stats = p.Stats()
	go r.run()
	return r, nil
}

// Events delivers the path's events. The runner never blocks on it: when the
// consumer is slow, events wait in the runner, where a newer Announce replaces
// an older one not yet taken (counted in AnnouncesDropped) and Up and Down are
// all kept, in order. It is closed when the runner stops; events not yet taken
// then are lost (State tells the last word).
func (r *Runner) Events() <-chan Event { return r.events }

// State is the path's state as of the runner's last turn.
func (r *Runner) State() State { return State(r.state.Load()) }

// Up reports whether the peer is alive on this path.
func (r *Runner) Up() bool { return r.State() == StateUp }

// PeerAnnounce is a copy of the peer's announce while the path is up, nil
// otherwise.
func (r *Runner) PeerAnnounce() []byte {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	if !r.peerOK {
		return nil
	}
	return append([]byte(nil), r.peerAnn[:r.peerLen]...)
}

// Stats returns the counters as of the runner's last turn.
func (r *Runner) Stats() RunnerStats {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	return r.stats
}

// SetAnnounce sets the payload every later heartbeat carries (copied); the
// change goes out at once.
func (r *Runner) SetAnnounce(b []byte) error {
	if len(b) > MaxAnnounce {
		return fmt.Errorf("heartbeat: path %q: announce of %d bytes, at most %d", r.cfg.Path.Name, len(b), MaxAnnounce)
	}
	r.input(func() { r.inAnnounce, r.annDirty = append(r.inAnnounce[:0], b...), true })
	return nil
}

// SetEpoch sets the frame header Epoch of later heartbeats.
func (r *Runner) SetEpoch(e uint32) { r.input(func() { r.inEpoch, r.epochDirty = e, true }) }

// Carrier reports the interface's carrier (see Path.Carrier).
func (r *Runner) Carrier(up bool) { r.input(func() { r.inCarrier, r.carDirty = up, true }) }

// PeerGone hands the core a death beacon's report (Path.PeerGone).
func (r *Runner) PeerGone() { r.input(func() { r.goneDirty = true }) }

// input records a change under inMu and wakes the runner for it.
func (r *Runner) input(set func()) {
	r.inMu.Lock()
	set()
	r.inMu.Unlock()
	r.wake()
}

// wake cuts the runner's read short. The flag is set before the deadline is
// moved and read after the runner sets its own, so a wake is never lost.
func (r *Runner) wake() {
	r.dirty.Store(true)
	if r.poll != nil {
		r.poll.wake()
		return
	}
	_ = r.link.SetReadDeadline(time.Now())
}

// Close stops the runner without a word to the peer, as a crash would: the peer
// finds out by detection. It waits for the goroutine to end.
func (r *Runner) Close() error {
	r.closing.Store(true)
	r.wake()
	<-r.done
	return nil
}

// Shutdown sends the peer an AdminDown heartbeat, which takes its path down at
// once, and stops the runner.
func (r *Runner) Shutdown() error {
	r.input(func() { r.shutdown = true })
	<-r.done
	return r.Err()
}

// Done is closed when the runner has stopped.
func (r *Runner) Done() <-chan struct{} { return r.done }

// Err is why the runner stopped by itself (its link closed), nil otherwise.
func (r *Runner) Err() error {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	return r.err
}

func (r *Runner) run() {
	defer close(r.done)
	defer close(r.events)
	if r.poll != nil {
		defer r.poll.close()
	}
	runtime.LockOSThread()
	rt := false
	if r.cfg.RealTime {
		if err := setRealTime(r.cfg.RTPriority); err != nil {
			r.log.Warn("heartbeat: real-time scheduling refused; running at normal priority", "priority", r.cfg.RTPriority, "err", err)
		} else {
			rt = true
		}
	}
	if !rt && r.cfg.Nice != 0 {
		if err := setNice(r.cfg.Nice); err != nil {
			r.log.Warn("heartbeat: nice value refused", "nice", r.cfg.Nice, "err", err)
		} else {
			rt = true // the thread is changed: do not hand it back (see below)
			r.rs.Niced = true
		}
	}
	if !rt {
		defer runtime.UnlockOSThread()
	}
	// A real-time or re-niced thread stays locked: when the goroutine ends the
	// runtime ends the thread, rather than hand its priority to others.
	r.rs.RealTime = rt && !r.rs.Niced

	pkts := make([]l2transport.Packet, rxBatch)
	for i := range pkts {
		pkts[i].Buf = make([]byte, min(rxBufLen, r.link.MaxPDU()))
	}
	p := r.path
	for {
		now := time.Now()
		stop := r.applyInputs(now)
		r.flush()
		r.publish()
		if stop || r.closing.Load() {
			return
		}
		dl := p.NextDeadline()
		n, err := r.read(pkts, dl)
		if err == errWoken {
			continue
		}
		now = time.Now()
		for i := range n {
			p.Receive(pkts[i].Buf[:pkts[i].N], now)
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			if r.linkGone(err) {
				return
			}
			r.rs.ReadErrors++
			r.logRate("read", err)
			// Do not spin on a persistent error: wait out the deadline.
			time.Sleep(time.Until(dl))
			now = time.Now()
		}
		if dl.IsZero() || now.Before(dl) {
			continue // frames, or a wake for an input
		}
		if p.DetectDue(now) {
			r.drain(pkts, now)
			if !p.DetectDue(now) {
				r.rs.SavedByDrain++
			}
		}
		p.Tick(now, dl)
	}
}

// errWoken: an input arrived before anything else; not a link error.
var errWoken = errors.New("heartbeat: woken for an input")

// read waits until frames arrive (and reads them), the deadline dl passes (an
// error satisfying os.ErrDeadlineExceeded) or an input wakes the runner
// (errWoken).
func (r *Runner) read(pkts []l2transport.Packet, dl time.Time) (int, error) {
	if r.poll == nil {
		if err := r.link.SetReadDeadline(dl); err != nil {
			return 0, err
		}
		if r.dirty.Load() {
			return 0, errWoken
		}
		return r.link.ReadBatch(pkts)
	}
	if r.dirty.Load() {
		return 0, errWoken
	}
	readable, err := r.poll.wait(dl)
	switch {
	case err != nil:
		return 0, err
	case readable:
		// Queued now: the read does not wait (DrainWait bounds a frame the link
		// itself ignores, e.g. our own).
		if err := r.link.SetReadDeadline(time.Now().Add(r.cfg.DrainWait)); err != nil {
			return 0, err
		}
		return r.link.ReadBatch(pkts)
	case r.dirty.Load():
		return 0, errWoken
	}
	return 0, os.ErrDeadlineExceeded
}

// drain hands the core every frame already queued on the link, read without
// waiting more than DrainWait for each batch.
func (r *Runner) drain(pkts []l2transport.Packet, now time.Time) {
	r.rs.Drains++
	if err := r.link.SetReadDeadline(time.Now().Add(r.cfg.DrainWait)); err != nil {
		return
	}
	for range drainBatches {
		n, err := r.link.ReadBatch(pkts)
		for i := range n {
			r.path.Receive(pkts[i].Buf[:pkts[i].N], now)
		}
		r.rs.Drained += uint64(n)
		if err != nil || n == 0 {
			return
		}
	}
}

// applyInputs gives the core what other goroutines asked for; it reports
// whether the runner is to stop (after the shutdown heartbeat is flushed).
func (r *Runner) applyInputs(now time.Time) (stop bool) {
	if !r.dirty.Swap(false) {
		return false
	}
	p := r.path
	r.inMu.Lock()
	defer r.inMu.Unlock()
	if r.annDirty {
		r.annDirty = false
		_ = p.SetAnnounce(r.inAnnounce) // length checked by SetAnnounce
	}
	if r.carDirty {
		r.carDirty = false
		p.Carrier(r.inCarrier, now)
	}
	if r.goneDirty {
		r.goneDirty = false
		p.PeerGone(now)
	}
	if r.epochDirty {
		r.epochDirty = false
		p.SetEpoch(r.inEpoch)
	}
	if r.shutdown {
		p.Shutdown(now)
		return true
	}
	return false
}

// flush sends what the core asks and queues its events.
func (r *Runner) flush() {
	rd := r.path.Ready()
	if len(rd.Send) > 0 {
		if _, err := r.link.WriteBatch(rd.Send); err != nil && !errors.Is(err, l2transport.ErrClosed) {
			r.rs.WriteErrors++
			r.logRate("write", err)
		}
	}
	for _, e := range rd.Events {
		r.queue(e)
	}
	for len(r.pending) > 0 {
		select {
		case r.events <- r.pending[0]:
			r.pending[0] = Event{}
			r.pending = r.pending[1:]
		default:
			return
		}
	}
}

// queue adds e behind the events the consumer has not taken; a waiting
// Announce after the last Up or Down is replaced by a newer one.
func (r *Runner) queue(e Event) {
	if e.Kind == EventAnnounce && len(r.pending) > 0 {
		if last := &r.pending[len(r.pending)-1]; last.Kind == EventAnnounce {
			*last = e
			r.rs.AnnouncesDropped++
			return
		}
	}
	r.pending = append(r.pending, e)
}

// publish makes the runner's view readable by other goroutines.
func (r *Runner) publish() {
	p := r.path
	r.state.Store(uint32(p.State()))
	r.outMu.Lock()
	r.rs.Stats = p.Stats()
	r.stats = r.rs
	ann := p.PeerAnnounce()
	r.peerOK = ann != nil
	r.peerLen = copy(r.peerAnn[:], ann)
	r.outMu.Unlock()
}

// linkGone reports (and records) whether err means the link is closed.
func (r *Runner) linkGone(err error) bool {
	if !errors.Is(err, l2transport.ErrClosed) {
		return false
	}
	if !r.closing.Load() {
		r.outMu.Lock()
		r.err = fmt.Errorf("heartbeat: path %q: %w", r.cfg.Path.Name, err)
		r.outMu.Unlock()
	}
	return true
}

// logRate logs link errors, at most the first and then every 1000th, so that
// a broken link does not flood the log at the heartbeat rate.
func (r *Runner) logRate(op string, err error) {
	n := r.rs.ReadErrors + r.rs.WriteErrors
	if n == 1 || n%1000 == 0 {
		r.log.Warn("heartbeat: link error", "op", op, "count", n, "err", err)
	}
}

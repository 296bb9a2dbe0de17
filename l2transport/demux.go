package l2transport

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swha/swha/frame"
)

// demuxTypeOffset is where the frame type sits in a PDU: the header starts
// with its version byte, then the type (frame.Header, docs/ARCHITECTURE.md).
// A Demux reads that one byte and nothing else.
const demuxTypeOffset = 1

// Demux splits the frames arriving on one Link by frame type, so that frames
// the Session does not consume (heartbeats) reach another consumer: each
// type split off gets its own Link (Demux.Link), and everything else goes to
// Rest, which is what a Conn runs over.
//
// One goroutine reads the underlying link and routes each PDU by its type
// byte, without decoding or checking it (the consumer's codec does that;
// a PDU too short to have a type goes to Rest, whose Session counts it).
// Each sub-link has a bounded queue; a frame for a sub-link whose queue is
// full is dropped and counted (DemuxLinkStats.QueueDrops), as a full NIC
// ring would drop it, so a consumer that stops reading never holds up the
// others. Routing moves buffers rather than copying them, and buffers are
// reused, so the Demux allocates nothing once each queue has been as deep
// as it will get (and holds only that many buffers); the one copy is
// ReadBatch's, into the caller's buffers, as with any Link.
//
// Writes from all sub-links go to the underlying link one batch at a time
// (Link allows one writer): a small heartbeat write may wait for a Session
// burst in progress, as it would queue behind it on the wire anyway.
//
// Read deadlines are per sub-link; the underlying link's is never set.
// Closing a sub-link closes only it; once every sub-link is closed, or on
// Demux.Close, the underlying link is closed and the reader stops. If the
// underlying link is closed from outside, each sub-link returns what it has
// queued and then ErrClosed.
type Demux struct {
	link   Link
	maxPDU int
	batch  int
	byType [256]*DemuxLink // nil: Rest
	rest   *DemuxLink
	subs   []*DemuxLink // every sub-link, Rest last

	wmu sync.Mutex // serialises writes to link

	mu     sync.Mutex    // guards open and closed
	open   int           // sub-links not yet closed
	closed bool          // the Demux has closed the underlying link
	stop   chan struct{} // closed with the underlying link: the reader's backoff ends
	done   chan struct{} // closed when the reader has returned
}

// DemuxLink is one consumer's side of a Demux: a Link that reads the frames
// routed to it and writes to the underlying link.
type DemuxLink struct {
	d    *Demux
	name string // the type it carries, or "rest"

	mu       sync.Mutex
	q        [][]byte // ring of queued frames
	qn       []int    // bytes of the PDU in each slot
	free     [][]byte // buffers of frames read, for the next ones routed here
	head, n  int
	eof      bool  // the underlying link is gone: ErrClosed once the queue is empty
	err      error // a read error of the underlying link, returned once
	deadline readDeadline
	stats    DemuxLinkStats

	closed atomic.Bool
	notify chan struct{} // capacity 1: wakes a blocked ReadBatch
	done   chan struct{} // closed by Close
}

// DemuxLinkStats counts one sub-link's frames.
type DemuxLinkStats struct {
	Frames      uint64 // routed to this link and queued
	QueueDrops  uint64 // routed here while its queue was full
	ClosedDrops uint64 // routed here after it was closed
	ReadErrors  uint64 // errors of the underlying link passed on to the reader
}

// DemuxConfig configures NewDemuxConfig. Zero fields take the defaults.
type DemuxConfig struct {
	// Types are the frame types split off, each to its own Link.
	Types []frame.Type
	// QueueLen bounds the frames a split-off Link queues for its consumer
	// (default 64: a heartbeat consumer is either keeping up or gone).
	QueueLen int
	// RestQueueLen bounds the frames Rest queues (default 2048, fewer for
	// PDUs over 16 KiB so that a full queue holds at most 32 MiB, and at least
	// 256): more than a Session's default window of data frames plus their
	// acks, so that a Conn keeping up on average never loses frames here.
	RestQueueLen int
	// ReadBatch is how many frames one read of the underlying link takes
	// (default 64).
	ReadBatch int
}

// NewDemux starts a Demux over link that splits off the given frame types;
// see NewDemuxConfig. The Demux owns link from now on.
func NewDemux(link Link, types ...frame.Type) *Demux {
	return NewDemuxConfig(link, DemuxConfig{Types: types})
}

// NewDemuxConfig starts a Demux over link, configured by cfg, and its reader
// goroutine. The Demux owns link from now on: it closes it once every
// sub-link is closed, or on Close. A type listed twice gets one Link.
func NewDemuxConfig(link Link, cfg DemuxConfig) *Demux {
	maxPDU := link.MaxPDU()
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 64
	}
	if cfg.RestQueueLen <= 0 {
		cfg.RestQueueLen = max(256, min(2048, (32<<20)/max(maxPDU, 1)))
	}
	if cfg.ReadBatch <= 0 {
		cfg.ReadBatch = 64
	}
	d := &Demux{
		link:   link,
		maxPDU: maxPDU,
		batch:  cfg.ReadBatch,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	for _, t := range cfg.Types {
		if d.byType[t] != nil {
			continue
		}
		l := d.newLink(t.String(), cfg.QueueLen)
		d.byType[t] = l
		d.subs = append(d.subs, l)
	}
	d.rest = d.newLink("rest", cfg.RestQueueLen)
	d.subs = append(d.subs, d.rest)
	d.open = len(d.subs)
	go d.readLoop()
	return d
}

func (d *Demux) newLink(name string, queueLen int) *DemuxLink {
	return &DemuxLink{
		d:      d,
		name:   name,
		q:      make([][]byte, queueLen),
		qn:     make([]int, queueLen),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
}

// Link returns the Link that carries frames of type t. It panics if t was not
// split off: that is a wiring mistake, not a runtime condition.
func (d *Demux) Link(t frame.Type) *DemuxLink {
	l := d.byType[t]
	if l == nil {
		panic(fmt.Sprintf("l2transport: Demux.Link(%v): type not split off", t))
	}
	return l
}

// Rest returns the Link that carries every frame of a type not split off.
func (d *Demux) Rest() *DemuxLink { return d.rest }

// Close closes every sub-link and the underlying link, and waits for the
// reader to stop. A second Close returns ErrClosed.
func (d *Demux) Close() error {
	for _, l := range d.subs {
		l.closeLocal()
	}
	d.mu.Lock()
	d.open = 0
	d.mu.Unlock()
	return d.closeLink()
}

// subClosed is called once per sub-link closed; the last one closes the
// underlying link.
func (d *Demux) subClosed() error {
	d.mu.Lock()
	d.open--
	last := d.open == 0
	d.mu.Unlock()
	if !last {
		return nil
	}
	return d.closeLink()
}

func (d *Demux) closeLink() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	d.closed = true
	close(d.stop)
	d.mu.Unlock()
	var cerr error
	if err := d.link.Close(); err != nil && !errors.Is(err, ErrClosed) {
		cerr = fmt.Errorf("l2transport: demux: close link: %w", err)
	}
	<-d.done
	return cerr
}

func (d *Demux) readLoop() {
	defer close(d.done)
	pkts := make([]Packet, d.batch)
	for i := range pkts {
		pkts[i].Buf = make([]byte, d.maxPDU)
	}
	for {
		n, err := d.link.ReadBatch(pkts)
		switch {
		case err == nil:
			d.route(pkts[:n])
			continue
		case errors.Is(err, ErrClosed):
			for _, l := range d.subs {
				l.setEOF()
			}
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue // not ours: the Demux sets no deadline on the link
		}
		for _, l := range d.subs {
			l.setErr(err)
		}
		// Do not spin on a persistent error; the consumers see it.
		select {
		case <-time.After(10 * time.Millisecond):
		case <-d.stop:
		}
	}
}

// route queues each PDU on its sub-link, locking each sub-link once per run
// of consecutive PDUs for it.
func (d *Demux) route(pkts []Packet) {
	var cur *DemuxLink
	for i := range pkts {
		p := &pkts[i]
		l := d.rest
		if p.N > demuxTypeOffset {
			if s := d.byType[p.Buf[demuxTypeOffset]]; s != nil {
				l = s
			}
		}
		if l != cur {
			if cur != nil {
				cur.unlockWake()
			}
			cur = l
			cur.mu.Lock()
		}
		cur.putLocked(p, d.maxPDU)
	}
	if cur != nil {
		cur.unlockWake()
	}
}

// putLocked queues p by taking its buffer and giving it a free one in
// exchange. Called with l.mu held.
func (l *DemuxLink) putLocked(p *Packet, maxPDU int) {
	switch {
	case l.closed.Load():
		l.stats.ClosedDrops++
		return
	case l.n == len(l.q):
		l.stats.QueueDrops++
		return
	}
	i := l.head + l.n
	if i >= len(l.q) {
		i -= len(l.q)
	}
	l.q[i] = p.Buf
	if k := len(l.free); k > 0 {
		p.Buf, l.free[k-1] = l.free[k-1], nil
		l.free = l.free[:k-1]
	} else {
		p.Buf = make([]byte, maxPDU) // the queue is deeper than ever before
	}
	l.qn[i] = p.N
	l.n++
	l.stats.Frames++
}

func (l *DemuxLink) unlockWake() {
	ready := l.n > 0
	l.mu.Unlock()
	if ready {
		l.wake()
	}
}

func (l *DemuxLink) wake() {
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

func (l *DemuxLink) setEOF() {
	l.mu.Lock()
	l.eof = true
	l.mu.Unlock()
	l.wake()
}

func (l *DemuxLink) setErr(err error) {
	l.mu.Lock()
	l.err = err
	l.stats.ReadErrors++
	l.mu.Unlock()
	l.wake()
}

var errDemuxDeadline = fmt.Errorf("l2transport: demux read: %w", os.ErrDeadlineExceeded)

// ReadBatch implements Link: it returns the frames routed to this link, in
// the order they arrived.
func (l *DemuxLink) ReadBatch(pkts []Packet) (int, error) {
	for {
		if l.closed.Load() {
			return 0, ErrClosed
		}
		l.mu.Lock()
		if l.n > 0 {
			k := 0
			for k < len(pkts) && l.n > 0 {
				b := l.q[l.head]
				pkts[k].N = copy(pkts[k].Buf[:cap(pkts[k].Buf)], b[:l.qn[l.head]])
				l.free = append(l.free, b)
				l.q[l.head] = nil
				l.head++
				if l.head == len(l.q) {
					l.head = 0
				}
				l.n--
				k++
			}
			l.mu.Unlock()
			return k, nil
		}
		if err := l.err; err != nil {
			l.err = nil
			l.mu.Unlock()
			return 0, err
		}
		if l.eof {
			l.mu.Unlock()
			return 0, ErrClosed
		}
		tc, passed := l.deadline.arm()
		l.mu.Unlock()
		if passed {
			return 0, errDemuxDeadline
		}
		select {
		case <-l.notify:
		case <-tc:
		case <-l.done:
		}
	}
}

// WriteBatch implements Link: pdus go to the underlying link, after any
// other sub-link's batch in progress.
func (l *DemuxLink) WriteBatch(pdus [][]byte) (int, error) {
	if l.closed.Load() {
		return 0, ErrClosed
	}
	l.d.wmu.Lock()
	defer l.d.wmu.Unlock()
	return l.d.link.WriteBatch(pdus)
}

// SetReadDeadline implements Link; it bounds this sub-link's reads only.
func (l *DemuxLink) SetReadDeadline(t time.Time) error {
	if l.closed.Load() {
		return ErrClosed
	}
	l.mu.Lock()
	l.deadline.at = t
	l.mu.Unlock()
	l.wake() // a blocked reader re-reads the deadline
	return nil
}

// MaxPDU implements Link.
func (l *DemuxLink) MaxPDU() int { return l.d.maxPDU }

// Close implements Link. It closes this sub-link only, unless it is the last
// one open: then it closes the underlying link too and returns its error.
func (l *DemuxLink) Close() error {
	if !l.closeLocal() {
		return ErrClosed
	}
	return l.d.subClosed()
}

// closeLocal closes the sub-link and frees its queue; false means it was
// already closed.
func (l *DemuxLink) closeLocal() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Swap(true) {
		return false
	}
	close(l.done)
	l.deadline.stop()
	clear(l.q)
	l.free = nil
	l.n = 0
	return true
}

// Stats returns the sub-link's counters.
func (l *DemuxLink) Stats() DemuxLinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// String names the frames the sub-link carries.
func (l *DemuxLink) String() string { return "demux " + l.name }

var _ Link = (*DemuxLink)(nil)

package l2transport

import (
	"container/heap"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMemQueueLen is a MemLink's receive queue, in frames: about a NIC ring
// plus a socket buffer.
const DefaultMemQueueLen = 4096

// ErrPDUTooLarge is returned by a Link for a PDU longer than its MaxPDU.
var ErrPDUTooLarge = errors.New("l2transport: PDU larger than the link MTU")

var errMemDeadline = fmt.Errorf("l2transport: memlink read: %w", os.ErrDeadlineExceeded)

// MemLink is one end of an in-memory Link pair with seeded fault injection. It
// copies every frame, so senders may reuse their buffers, delays frames with
// timers (so it runs inside testing/synctest bubbles; create the pair inside the
// bubble), and queues at most a bounded number of frames per receiver, dropping
// and counting the rest as a full NIC ring would.
type MemLink struct {
	maxPDU int
	tx     *memDir // frames this end sends
	rx     *memDir // frames this end receives
	pair   *memPair
	done   chan struct{}
	once   sync.Once
	closed atomic.Bool

	deadlineMu sync.Mutex
	deadline   readDeadline
}

type memPair struct {
	partitioned atomic.Bool
}

// MemLinkStats counts what happened to one end's frames.
type MemLinkStats struct {
	// Transmit direction (frames this end wrote).
	Sent           uint64 // handed to WriteBatch
	Lost           uint64 // dropped by the Loss fault
	PartitionDrops uint64 // dropped by a partition
	Duplicated     uint64
	Reordered      uint64
	Corrupted      uint64
	PeerClosed     uint64 // dropped because the other end was closed
	// Receive direction (frames for this end).
	Received  uint64 // returned by ReadBatch
	RingDrops uint64 // dropped because the receive queue was full
}

// memDir is one direction: the fault model of its sender and the queue of its
// receiver. Frames not yet due wait in a heap ordered by due time and a
// sequence number, so that frames due together keep their order.
type memDir struct {
	mu       sync.Mutex
	fm       *FaultModel
	queue    [][]byte // ring of frames ready to read
	qHead    int
	qLen     int
	inflight delayHeap
	order    uint64
	timer    *time.Timer
	timerAt  time.Time
	free     [][]byte
	maxPDU   int
	notify   chan struct{} // wakes the reader, capacity 1
	rxClosed bool
	txStats  MemLinkStats // transmit counters of the sending end
	rxStats  MemLinkStats // receive counters of the receiving end
}

type delayed struct {
	at    time.Time
	order uint64
	buf   []byte
}

type delayHeap []delayed

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].order < h[j].order
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(delayed)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = delayed{}
	*h = old[:len(old)-1]
	return x
}

// NewMemPair returns the two ends of an in-memory link carrying PDUs of up to
// maxPDU bytes. fa applies to frames a sends, fb to frames b sends; seed drives
// both fault models.
func NewMemPair(maxPDU int, fa, fb Faults, seed uint64) (*MemLink, *MemLink) {
	pair := &memPair{}
	ab := newMemDir(maxPDU, NewFaultModel(fa, seed))
	ba := newMemDir(maxPDU, NewFaultModel(fb, seed^0x5851f42d4c957f2d))
	a := &MemLink{maxPDU: maxPDU, tx: ab, rx: ba, pair: pair, done: make(chan struct{})}
	b := &MemLink{maxPDU: maxPDU, tx: ba, rx: ab, pair: pair, done: make(chan struct{})}
	return a, b
}

func newMemDir(maxPDU int, fm *FaultModel) *memDir {
	return &memDir{fm: fm, maxPDU: maxPDU, queue: make([][]byte, DefaultMemQueueLen), notify: make(chan struct{}, 1)}
}

// SetQueueLen sets how many frames this end's receive queue holds; frames
// arriving when it is full are dropped and counted. Call it before traffic flows.
func (l *MemLink) SetQueueLen(n int) {
	d := l.rx
	d.mu.Lock()
	defer d.mu.Unlock()
	q := make([][]byte, max(n, 1))
	for i := range min(d.qLen, len(q)) {
		q[i] = d.queue[(d.qHead+i)%len(d.queue)]
	}
	d.qHead, d.qLen = 0, min(d.qLen, len(q))
	d.queue = q
}

// SetFaults replaces the faults applied to frames this end sends.
func (l *MemLink) SetFaults(f Faults) {
	l.tx.mu.Lock()
	l.tx.fm.SetFaults(f)
	l.tx.mu.Unlock()
}

// SetPartitioned cuts (true) or heals (false) both directions of the pair.
func (l *MemLink) SetPartitioned(p bool) { l.pair.partitioned.Store(p) }

// MaxPDU implements Link.
func (l *MemLink) MaxPDU() int { return l.maxPDU }

// Stats returns this end's counters.
func (l *MemLink) Stats() MemLinkStats {
	l.tx.mu.Lock()
	st := l.tx.txStats
	l.tx.mu.Unlock()
	l.rx.mu.Lock()
	st.Received, st.RingDrops = l.rx.rxStats.Received, l.rx.rxStats.RingDrops
	l.rx.mu.Unlock()
	return st
}

// WriteBatch implements Link. Faults are decided per frame as it is written.
func (l *MemLink) WriteBatch(pdus [][]byte) (int, error) {
	if l.closed.Load() {
		return 0, ErrClosed
	}
	d := l.tx
	d.mu.Lock()
	now := time.Now()
	woke := false
	for i, p := range pdus {
		if len(p) > l.maxPDU {
			d.mu.Unlock()
			if woke {
				d.wake()
			}
			return i, fmt.Errorf("%w: %d bytes, MTU %d", ErrPDUTooLarge, len(p), l.maxPDU)
		}
		d.txStats.Sent++
		if l.pair.partitioned.Load() {
			d.txStats.PartitionDrops++
			continue
		}
		dec := d.fm.Decide(now, len(p))
		switch {
		case dec.Partition:
			d.txStats.PartitionDrops++
			continue
		case dec.Drop:
			d.txStats.Lost++
			continue
		}
		if dec.Reordered {
			d.txStats.Reordered++
		}
		if dec.CorruptAt >= 0 {
			d.txStats.Corrupted++
		}
		woke = d.put(p, now, dec.Delay, dec.CorruptAt, dec.CorruptMask) || woke
		if dec.Duplicate {
			d.txStats.Duplicated++
			woke = d.put(p, now, dec.DupDelay, -1, 0) || woke
		}
	}
	d.mu.Unlock()
	if woke {
		d.wake()
	}
	return len(pdus), nil
}

// put copies p into the direction, due after delay; it reports whether the
// frame is readable at once. Called with d.mu held.
func (d *memDir) put(p []byte, now time.Time, delay time.Duration, corruptAt int, mask byte) bool {
	if d.rxClosed {
		d.txStats.PeerClosed++
		return false
	}
	var buf []byte
	if n := len(d.free); n > 0 {
		buf, d.free = d.free[n-1], d.free[:n-1]
	} else {
		buf = make([]byte, 0, d.maxPDU)
	}
	buf = append(buf[:0], p...)
	if corruptAt >= 0 {
		buf[corruptAt] ^= mask
	}
	if delay <= 0 {
		return d.enqueue(buf)
	}
	d.order++
	at := now.Add(delay)
	heap.Push(&d.inflight, delayed{at: at, order: d.order, buf: buf})
	d.armTimer(now)
	return false
}

// enqueue appends a due frame to the receive queue, or drops it if full.
func (d *memDir) enqueue(buf []byte) bool {
	if d.qLen == len(d.queue) {
		d.rxStats.RingDrops++
		d.free = append(d.free, buf[:0])
		return false
	}
	d.queue[(d.qHead+d.qLen)%len(d.queue)] = buf
	d.qLen++
	return true
}

// armTimer makes the delivery timer fire at the earliest due time.
func (d *memDir) armTimer(now time.Time) {
	if len(d.inflight) == 0 {
		return
	}
	at := d.inflight[0].at
	if d.timer != nil && !d.timerAt.IsZero() && !at.Before(d.timerAt) {
		return
	}
	d.timerAt = at
	if d.timer == nil {
		d.timer = time.AfterFunc(at.Sub(now), d.fire)
	} else {
		d.timer.Reset(at.Sub(now))
	}
}

// fire moves the frames now due into the receive queue.
func (d *memDir) fire() {
	d.mu.Lock()
	now := time.Now()
	d.timerAt = time.Time{}
	woke := false
	for len(d.inflight) > 0 && !d.inflight[0].at.After(now) {
		f := heap.Pop(&d.inflight).(delayed)
		if d.rxClosed {
			d.txStats.PeerClosed++
			continue
		}
		woke = d.enqueue(f.buf) || woke
	}
	if !d.rxClosed {
		d.armTimer(now)
	}
	d.mu.Unlock()
	if woke {
		d.wake()
	}
}

func (d *memDir) wake() {
	select {
	case d.notify <- struct{}{}:
	default:
	}
}

// ReadBatch implements Link.
func (l *MemLink) ReadBatch(pkts []Packet) (int, error) {
	d := l.rx
	for {
		if l.closed.Load() {
			return 0, ErrClosed
		}
		d.mu.Lock()
		if d.qLen > 0 {
			n := 0
			for n < len(pkts) && d.qLen > 0 {
				buf := d.queue[d.qHead]
				d.queue[d.qHead] = nil
				d.qHead = (d.qHead + 1) % len(d.queue)
				d.qLen--
				pkts[n].N = copy(pkts[n].Buf[:cap(pkts[n].Buf)], buf)
				d.free = append(d.free, buf[:0])
				n++
			}
			d.rxStats.Received += uint64(n)
			more := d.qLen > 0
			d.mu.Unlock()
			if more {
				d.wake() // keep the token for the next call
			}
			return n, nil
		}
		d.mu.Unlock()

		l.deadlineMu.Lock()
		tc, passed := l.deadline.arm()
		l.deadlineMu.Unlock()
		if passed {
			return 0, errMemDeadline
		}
		select {
		case <-d.notify:
		case <-tc:
		case <-l.done:
		}
	}
}

// SetReadDeadline implements Link.
func (l *MemLink) SetReadDeadline(t time.Time) error {
	if l.closed.Load() {
		return ErrClosed
	}
	l.deadlineMu.Lock()
	l.deadline.at = t
	l.deadlineMu.Unlock()
	l.rx.wake() // a blocked reader re-reads the deadline
	return nil
}

// Close implements Link. Frames in flight to this end are discarded, and the
// other end's later frames are dropped (counted as PeerClosed), as on a cable
// whose far end is unplugged.
func (l *MemLink) Close() error {
	first := false
	l.once.Do(func() {
		first = true
		l.closed.Store(true)
		close(l.done)
		d := l.rx
		d.mu.Lock()
		d.rxClosed = true
		if d.timer != nil {
			d.timer.Stop()
		}
		clear(d.inflight)
		d.inflight = d.inflight[:0]
		d.mu.Unlock()
		l.deadlineMu.Lock()
		l.deadline.stop()
		l.deadlineMu.Unlock()
	})
	if !first {
		return ErrClosed
	}
	return nil
}

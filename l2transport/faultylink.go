package l2transport

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// DefaultFaultyHeld bounds the frames a FaultyLink holds back for delay or
// reordering: about a NIC ring. Beyond it, frames are dropped and counted, so a
// long configured delay at a high rate cannot grow memory without limit.
const DefaultFaultyHeld = 4096

// FaultyLink wraps a Link and mistreats the frames it sends according to a
// seeded FaultModel: loss, duplication, corruption, reordering, delay, jitter,
// bandwidth cap and partition. It is how tests inject loss on real sockets
// where tc netem is not available. Receiving is passed through untouched; wrap
// both ends to fault both directions.
//
// Frames that are neither delayed nor corrupted are passed to the inner link
// without a copy, so a loss-only FaultyLink allocates nothing per frame. A
// corrupted frame is copied before its byte is flipped (the caller's buffer is
// never written). A delayed or reordered frame is copied into a bounded hold
// queue and sent, in due order, by the next WriteBatch that finds it due or by
// a timer, whichever comes first; the timer writes from its own goroutine, so
// every inner write happens under one mutex, keeping the one-writer rule of
// Link.
type FaultyLink struct {
	inner Link

	mu      sync.Mutex // guards everything below and serialises inner writes
	fm      *FaultModel
	out     [][]byte // scratch: the frames of one inner write
	corrupt [][]byte // copies in out that go back to free after the write
	held    []heldFrame
	order   uint64
	maxHeld int
	free    [][]byte
	timer   *time.Timer
	timerAt time.Time
	closed  bool
	stats   FaultyLinkStats
}

// FaultyLinkStats counts what a FaultyLink did to the frames written to it.
type FaultyLinkStats struct {
	Written        uint64 // frames passed to WriteBatch
	Lost           uint64 // dropped by the Loss fault
	PartitionDrops uint64 // dropped by a partition
	Duplicated     uint64
	Reordered      uint64
	Corrupted      uint64
	Delayed        uint64 // held back for Delay, Jitter, Reorder or BandwidthBps
	HeldDrops      uint64 // dropped because the hold queue was full
	InnerErrors    uint64 // frames a failing inner WriteBatch did not take
}

type heldFrame struct {
	at    time.Time
	order uint64 // frames due together leave in the order they were held
	buf   []byte
}

var _ Link = (*FaultyLink)(nil)

// NewFaultyLink returns inner wrapped with faults f, seeded with seed (a test
// prints the seed so that a failure replays; with real sockets the timing is not
// reproducible, but the sequence of per-frame decisions is). The FaultyLink owns
// inner: Close closes it.
func NewFaultyLink(inner Link, f Faults, seed uint64) *FaultyLink {
	return &FaultyLink{inner: inner, fm: NewFaultModel(f, seed), maxHeld: DefaultFaultyHeld}
}

// Inner returns the wrapped link, for its own statistics.
func (l *FaultyLink) Inner() Link { return l.inner }

// SetFaults replaces the faults; frames already held keep their due times.
func (l *FaultyLink) SetFaults(f Faults) {
	l.mu.Lock()
	l.fm.SetFaults(f)
	l.mu.Unlock()
}

// SetPartitioned cuts (true) or heals (false) the send direction.
func (l *FaultyLink) SetPartitioned(p bool) {
	l.mu.Lock()
	l.fm.SetPartitioned(p)
	l.mu.Unlock()
}

// SetMaxHeld sets how many frames may be held back at once (at least 1).
func (l *FaultyLink) SetMaxHeld(n int) {
	l.mu.Lock()
	l.maxHeld = max(n, 1)
	l.mu.Unlock()
}

// Stats returns the counters.
func (l *FaultyLink) Stats() FaultyLinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// MaxPDU implements Link.
func (l *FaultyLink) MaxPDU() int { return l.inner.MaxPDU() }

// ReadBatch implements Link: receiving is not faulted.
func (l *FaultyLink) ReadBatch(pkts []Packet) (int, error) { return l.inner.ReadBatch(pkts) }

// SetReadDeadline implements Link.
func (l *FaultyLink) SetReadDeadline(t time.Time) error { return l.inner.SetReadDeadline(t) }

// WriteBatch implements Link. Every frame gets its fault decision here; frames
// that leave at once are handed to the inner link in one batch, after any held
// frames that have come due. A PDU longer than MaxPDU stops the batch with an
// error, as on the inner link.
func (l *FaultyLink) WriteBatch(pdus [][]byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	now := time.Now()
	l.out = l.out[:0]
	l.takeDue(now)
	maxPDU := l.inner.MaxPDU()
	accepted := len(pdus)
	var tooLarge error
	for i, p := range pdus {
		if len(p) > maxPDU {
			accepted = i
			tooLarge = fmt.Errorf("l2transport: faulty link: %w: %d bytes, MTU %d", ErrPDUTooLarge, len(p), maxPDU)
			break
		}
		l.stats.Written++
		d := l.fm.Decide(now, len(p))
		switch {
		case d.Partition:
			l.stats.PartitionDrops++
			continue
		case d.Drop:
			l.stats.Lost++
			continue
		}
		if d.Reordered {
			l.stats.Reordered++
		}
		if d.CorruptAt >= 0 {
			l.stats.Corrupted++
		}
		l.put(p, now, d.Delay, d.CorruptAt, d.CorruptMask)
		if d.Duplicate {
			l.stats.Duplicated++
			l.put(p, now, d.DupDelay, -1, 0)
		}
	}
	err := l.flush()
	l.armTimer(now)
	if err != nil {
		return 0, err
	}
	return accepted, tooLarge
}

// put sends p now (into l.out) or holds a copy until delay has passed,
// flipping a byte of the copy if corruptAt >= 0.
func (l *FaultyLink) put(p []byte, now time.Time, delay time.Duration, corruptAt int, mask byte) {
	if delay <= 0 && corruptAt < 0 {
		l.out = append(l.out, p)
		return
	}
	if delay > 0 && len(l.held) >= l.maxHeld {
		l.stats.HeldDrops++
		return
	}
	buf := append(l.getBuf(), p...)
	if corruptAt >= 0 {
		buf[corruptAt] ^= mask
	}
	if delay <= 0 {
		l.out = append(l.out, buf)
		l.corrupt = append(l.corrupt, buf)
		return
	}
	l.stats.Delayed++
	l.order++
	h := heldFrame{at: now.Add(delay), order: l.order, buf: buf}
	// The queue is small and mostly appended to in due order, so a sorted slice
	// with a binary search beats a heap and needs no interface boxing.
	i, _ := slices.BinarySearchFunc(l.held, h, func(a, b heldFrame) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return int(a.order - b.order) // never equal: orders are unique
	})
	l.held = slices.Insert(l.held, i, h)
}

func (l *FaultyLink) getBuf() []byte {
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free = l.free[:n-1]
		return b[:0]
	}
	return make([]byte, 0, l.inner.MaxPDU())
}

// takeDue moves the held frames due by now to l.out, in due order. Their
// buffers go back to the pool after the write, like corrupted copies.
func (l *FaultyLink) takeDue(now time.Time) {
	k := 0
	for k < len(l.held) && !l.held[k].at.After(now) {
		l.out = append(l.out, l.held[k].buf)
		l.corrupt = append(l.corrupt, l.held[k].buf)
		k++
	}
	if k > 0 {
		n := copy(l.held, l.held[k:])
		clear(l.held[n:])
		l.held = l.held[:n]
	}
}

// flush writes l.out to the inner link. A frame the inner link refuses is
// dropped, as the medium would drop it, except that ErrClosed and other hard
// errors are returned so the caller sees them.
func (l *FaultyLink) flush() error {
	defer func() {
		for _, b := range l.corrupt {
			if len(l.free) < l.maxHeld {
				l.free = append(l.free, b[:0])
			}
		}
		clear(l.corrupt)
		l.corrupt = l.corrupt[:0]
		clear(l.out)
		l.out = l.out[:0]
	}()
	out := l.out
	// Bounded: each pass either moves at least one frame or returns.
	for len(out) > 0 {
		n, err := l.inner.WriteBatch(out)
		if err != nil {
			l.stats.InnerErrors += uint64(len(out) - n)
			return fmt.Errorf("l2transport: faulty link: %w", err)
		}
		if n == 0 {
			l.stats.InnerErrors += uint64(len(out))
			return fmt.Errorf("l2transport: faulty link: inner link took none of %d frames", len(out))
		}
		out = out[n:]
	}
	return nil
}

// armTimer makes sure held frames go out when due even if nothing else is
// written. Called with l.mu held.
func (l *FaultyLink) armTimer(now time.Time) {
	if len(l.held) == 0 || l.closed {
		return
	}
	at := l.held[0].at
	if !l.timerAt.IsZero() && !at.Before(l.timerAt) {
		return // already armed for this frame or an earlier one
	}
	l.timerAt = at
	if l.timer == nil {
		l.timer = time.AfterFunc(at.Sub(now), l.fire)
	} else {
		l.timer.Reset(at.Sub(now))
	}
}

func (l *FaultyLink) fire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timerAt = time.Time{}
	if l.closed {
		return
	}
	now := time.Now()
	l.out = l.out[:0]
	l.takeDue(now)
	// No caller to report to: a failed inner write is counted in InnerErrors,
	// and the Session above retransmits.
	_ = l.flush()
	l.armTimer(now)
}

// Flush writes every held frame to the inner link now, in due order, without
// waiting for its due time, and later frames no longer queue behind them.
// With the faults cleared first (SetFaults), a test uses it to know that
// nothing written so far can arrive after what it writes next: the inner
// link then decides the order alone.
func (l *FaultyLink) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.out = l.out[:0]
	l.takeAll()
	l.fm.drained()
	return l.flush()
}

// takeAll moves every held frame to l.out, in due order.
func (l *FaultyLink) takeAll() {
	for _, h := range l.held {
		l.out = append(l.out, h.buf)
		l.corrupt = append(l.corrupt, h.buf)
	}
	clear(l.held)
	l.held = l.held[:0]
}

// Close implements Link: held frames are discarded and the inner link closed.
func (l *FaultyLink) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
	}
	clear(l.held)
	l.held = l.held[:0]
	l.mu.Unlock()
	if err := l.inner.Close(); err != nil {
		return fmt.Errorf("l2transport: faulty link: close: %w", err)
	}
	return nil
}

package l2transport

import (
	"math/rand/v2"
	"time"
)

// Faults describes how an unreliable medium mistreats frames in one direction. The
// zero value is a perfect link. Probabilities are per frame, in [0, 1].
type Faults struct {
	Loss      float64 // frame silently dropped
	Duplicate float64 // frame delivered twice
	Reorder   float64 // frame held back so that later frames overtake it
	Corrupt   float64 // one byte of the frame flipped (the CRC must catch it)

	Delay  time.Duration // fixed one-way latency added to every frame
	Jitter time.Duration // uniform extra latency in [0, Jitter) per frame
	// ReorderDelay is how far a reordered frame is held back: uniform in
	// (0, ReorderDelay]. Zero means 2×(Delay+Jitter), and at least 1 ms, so that a
	// reordered frame is overtaken even on a zero-latency link.
	ReorderDelay time.Duration

	// BandwidthBps, when positive, serialises frames at this many bits per second:
	// a burst queues behind the frames before it, as on a real wire.
	BandwidthBps int64

	Partitioned bool // every frame is dropped
}

// Decision is what the fault model does to one frame.
type Decision struct {
	Drop      bool
	Partition bool // dropped because the direction is partitioned (Drop is also set)
	Duplicate bool // deliver a second copy, DupDelay after now
	Reordered bool // Delay includes a reordering hold-back

	// CorruptAt is the index of the byte to XOR with CorruptMask, or -1.
	CorruptAt   int
	CorruptMask byte

	Delay    time.Duration // when to deliver the frame, relative to now
	DupDelay time.Duration // when to deliver the duplicate, relative to now
}

// FaultModel turns a Faults configuration into per-frame decisions. It is a pure
// function of its seed and of the sequence of calls (including the now and size
// arguments), so a failing simulation replays exactly from its seed. It is not
// safe for concurrent use.
type FaultModel struct {
	f   Faults
	rng *rand.Rand
	// busyUntil is when the modelled wire finishes serialising the last frame; it
	// only matters when BandwidthBps is set.
	busyUntil time.Time
	// lastDue is the delivery time of the last in-order frame: jitter varies the
	// latency but, as on a real wire, does not let frames overtake each other.
	// Only Reorder does that.
	lastDue time.Time
}

// NewFaultModel returns a fault model for f, seeded with seed.
func NewFaultModel(f Faults, seed uint64) *FaultModel {
	// The second PCG word is a fixed odd constant so that one seed is all a test
	// has to print to be replayed.
	return &FaultModel{f: f, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
}

// Faults returns the current configuration.
func (m *FaultModel) Faults() Faults { return m.f }

// SetFaults replaces the configuration; the random stream continues.
func (m *FaultModel) SetFaults(f Faults) { m.f = f }

// SetPartitioned cuts (true) or heals (false) this direction.
func (m *FaultModel) SetPartitioned(p bool) { m.f.Partitioned = p }

// drained tells the model that every frame it delayed has been delivered
// early (FaultyLink.Flush): later frames need not queue behind them.
func (m *FaultModel) drained() { m.busyUntil, m.lastDue = time.Time{}, time.Time{} }

// Decide returns what happens to a frame of size bytes sent at now.
func (m *FaultModel) Decide(now time.Time, size int) Decision {
	d := Decision{CorruptAt: -1}
	f := &m.f
	if f.Partitioned {
		d.Drop, d.Partition = true, true
		return d
	}
	// Draw only for the faults that are configured, so that a perfect link costs
	// no random numbers; determinism holds because the configuration is part of
	// the replay input.
	if f.Loss > 0 && m.rng.Float64() < f.Loss {
		d.Drop = true
		return d
	}
	base := f.Delay
	if f.BandwidthBps > 0 {
		start := now
		if m.busyUntil.After(start) {
			start = m.busyUntil
		}
		ser := time.Duration(int64(size) * 8 * int64(time.Second) / f.BandwidthBps)
		m.busyUntil = start.Add(ser)
		base += m.busyUntil.Sub(now)
	}
	d.Delay = m.fifo(now, base+m.jitter())
	if f.Reorder > 0 && m.rng.Float64() < f.Reorder {
		d.Reordered = true
		d.Delay += m.reorderDelay()
	}
	if f.Duplicate > 0 && m.rng.Float64() < f.Duplicate {
		d.Duplicate = true
		d.DupDelay = m.fifo(now, base+m.jitter())
	}
	if f.Corrupt > 0 && size > 0 && m.rng.Float64() < f.Corrupt {
		d.CorruptAt = m.rng.IntN(size)
		d.CorruptMask = byte(1 + m.rng.IntN(255)) // never 0: a no-op flip would hide nothing
	}
	return d
}

// fifo returns delay, lengthened if needed so that the frame arrives no earlier
// than the previous in-order one.
func (m *FaultModel) fifo(now time.Time, delay time.Duration) time.Duration {
	due := now.Add(delay)
	if due.Before(m.lastDue) {
		due = m.lastDue
	}
	m.lastDue = due
	return due.Sub(now)
}

func (m *FaultModel) jitter() time.Duration {
	if m.f.Jitter <= 0 {
		return 0
	}
	return time.Duration(m.rng.Int64N(int64(m.f.Jitter)))
}

func (m *FaultModel) reorderDelay() time.Duration {
	span := m.f.ReorderDelay
	if span <= 0 {
		span = 2 * (m.f.Delay + m.f.Jitter)
		if span < time.Millisecond {
			span = time.Millisecond
		}
	}
	return 1 + time.Duration(m.rng.Int64N(int64(span)))
}

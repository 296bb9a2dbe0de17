package objstore

// overlayTab maps object IDs to what the step being validated did to them.
// It is reset before every step, and a step is usually a hundred objects or
// fewer: a Go map cost a clear per step proportional to its largest size
// ever (a snapshot leaves it with a million slots) and a hash of its own per
// access, which together were a fifth of the standby's apply time. This table
// resets by bumping a generation and hashes with one multiply.
type overlayTab struct {
	slots []overlaySlot
	gen   uint32
	n     int
	shift uint8
}

type overlaySlot struct {
	id  uint64
	gen uint32
	o   overlayObj
}

const overlayMinSlots = 256

func (t *overlayTab) reset() {
	if len(t.slots) > 1<<16 && t.n < len(t.slots)/64 {
		t.slots = nil // give back what a huge step (a snapshot) grew
	}
	if t.slots == nil {
		t.init(overlayMinSlots)
		return
	}
	t.gen++
	t.n = 0
	if t.gen == 0 {
		clear(t.slots) // after 2^32 resets, old stamps could match again
		t.gen = 1
	}
}

func (t *overlayTab) init(size int) {
	t.slots = make([]overlaySlot, size)
	t.gen, t.n = 1, 0
	t.shift = uint8(64 - bitsLen(size-1))
}

func bitsLen(x int) int {
	n := 0
	for ; x > 0; x >>= 1 {
		n++
	}
	return n
}

func (t *overlayTab) home(id uint64) int {
	return int((id * 0x9e3779b97f4a7c15) >> t.shift)
}

func (t *overlayTab) get(id uint64) (overlayObj, bool) {
	if t.slots == nil {
		return overlayObj{}, false
	}
	mask := len(t.slots) - 1
	for i := t.home(id); ; i = (i + 1) & mask {
		sl := &t.slots[i]
		if sl.gen != t.gen {
			return overlayObj{}, false
		}
		if sl.id == id {
			return sl.o, true
		}
	}
}

func (t *overlayTab) set(id uint64, o overlayObj) {
	if t.slots == nil {
		t.init(overlayMinSlots)
	}
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	mask := len(t.slots) - 1
	for i := t.home(id); ; i = (i + 1) & mask {
		sl := &t.slots[i]
		if sl.gen != t.gen {
			*sl = overlaySlot{id: id, gen: t.gen, o: o}
			t.n++
			return
		}
		if sl.id == id {
			sl.o = o
			return
		}
	}
}

func (t *overlayTab) grow() {
	old, gen := t.slots, t.gen
	t.init(2 * len(old))
	for i := range old {
		if old[i].gen == gen {
			t.set(old[i].id, old[i].o)
		}
	}
}

package objstore

import (
	"sync/atomic"
	"unsafe"
)

// idIndex maps object IDs to slab indexes. Dynamic IDs are handed out densely
// from 1, so they index pages of a flat table: 4 bytes per object and two
// loads per lookup, where a Go map costs 20-30 bytes and a cache miss or
// two. Static IDs (top bit set) are sparse hashes and go to a small map.
type idIndex struct {
	pages   map[uint64]*idPage
	statics map[uint64]int32
	// last is the page looked up last, so that a run of nearby IDs skips
	// the map. Readers holding only the store's read lock (Get, Name) move
	// it too, concurrently, so it is one atomic pointer to a page that
	// carries its own key: a key and a page kept apart could be seen torn,
	// one reader's key with another's page.
	last atomic.Pointer[idPage]
}

const idPageBits = 10

type idPage struct {
	key  uint64 // id >> idPageBits of the IDs it holds
	n    int32
	slot [1 << idPageBits]int32 // slab index + 1; 0 = absent
}

// newIDPage returns an empty page with its memory faulted in. A page is
// read (is the slot free?) before it is written, and a read of fresh memory
// maps the zero page, which the write then has to replace: a copy-on-write
// fault that flushes the other CPUs' TLBs (see prefault). That was 2% of
// the CPU time of replicating a million routes into empty stores.
func newIDPage(key uint64) *idPage {
	p := new(idPage)
	prefault(unsafe.Pointer(p), unsafe.Sizeof(*p))
	p.key = key
	return p
}

// maxDynamicID bounds the IDs accepted from a stream, so that a corrupt ID
// cannot make the index allocate beyond reason.
const maxDynamicID = 1 << 48

func (x *idIndex) page(id uint64, create bool) *idPage {
	key := id >> idPageBits
	if p := x.last.Load(); p != nil && p.key == key {
		return p
	}
	p := x.pages[key]
	if p == nil {
		if !create {
			return nil
		}
		if x.pages == nil {
			x.pages = map[uint64]*idPage{}
		}
		p = newIDPage(key)
		x.pages[key] = p
	}
	x.last.Store(p)
	return p
}

func (x *idIndex) get(id uint64) (int32, bool) {
	if id >= maxDynamicID {
		i, ok := x.statics[id]
		return i, ok
	}
	p := x.page(id, false)
	if p == nil {
		return 0, false
	}
	v := p.slot[id&(1<<idPageBits-1)]
	return v - 1, v != 0
}

func (x *idIndex) set(id uint64, i int32) {
	if id >= maxDynamicID {
		if x.statics == nil {
			x.statics = map[uint64]int32{}
		}
		x.statics[id] = i
		return
	}
	p := x.page(id, true)
	s := &p.slot[id&(1<<idPageBits-1)]
	if *s == 0 {
		p.n++
	}
	*s = i + 1
}

func (x *idIndex) del(id uint64) {
	if id >= maxDynamicID {
		delete(x.statics, id)
		return
	}
	p := x.page(id, false)
	if p == nil {
		return
	}
	s := &p.slot[id&(1<<idPageBits-1)]
	if *s != 0 {
		*s = 0
		p.n--
	}
	if p.n == 0 {
		key := id >> idPageBits
		delete(x.pages, key)
		x.last.CompareAndSwap(p, nil)
	}
}

// ptrIndex maps object addresses to slab indexes: open addressing with
// linear probing in one array of (address, index) slots, so a lookup is
// usually one cache line where a Go map touches two or three. Addresses are
// kept as uintptr: the slab's entries keep the objects alive, and Go's heap
// does not move objects.
type ptrIndex struct {
	slots []ptrSlot
	n     int
	shift uint
}

// A slot also carries the object's shadow, so that an update can start
// fetching the shadow while it fetches the entry: on a store much larger
// than the CPU cache that is one DRAM round trip fewer per commit. refs, in
// what would otherwise be the slot's padding, is used by Store.targets only:
// the committed pointers to the object (refcount.go).
type ptrSlot struct {
	key    uintptr
	shadow unsafe.Pointer
	val    int32
	refs   int32
}

func newPtrIndex(hint int) *ptrIndex {
	x := &ptrIndex{}
	size := 1 << 10
	for size < 2*hint {
		size <<= 1
	}
	x.resize(size)
	return x
}

func (x *ptrIndex) resize(size int) {
	old := x.slots
	x.slots = make([]ptrSlot, size)
	prefault(unsafe.Pointer(unsafe.SliceData(x.slots)), uintptr(size)*unsafe.Sizeof(ptrSlot{}))
	x.shift = 64
	for s := size; s > 1; s >>= 1 {
		x.shift--
	}
	x.n = 0
	mask := len(x.slots) - 1
	for _, s := range old {
		if s.key == 0 {
			continue
		}
		i := x.home(s.key)
		for x.slots[i].key != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = s
		x.n++
	}
}

func (x *ptrIndex) home(k uintptr) int {
	return int((uint64(k) * 0x9E3779B97F4A7C15) >> x.shift)
}

func (x *ptrIndex) get(p unsafe.Pointer) (int32, bool) {
	s := x.find(p)
	if s == nil {
		return 0, false
	}
	return s.val, true
}

func (x *ptrIndex) find(p unsafe.Pointer) *ptrSlot {
	k := uintptr(p)
	mask := len(x.slots) - 1
	for i := x.home(k); ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.key == k {
			return s
		}
		if s.key == 0 {
			return nil
		}
	}
}

// setShadow records the shadow of the object at p, which must be indexed.
func (x *ptrIndex) setShadow(p, sh unsafe.Pointer) {
	if s := x.find(p); s != nil {
		s.shadow = sh
	}
}

func (x *ptrIndex) set(p unsafe.Pointer, v int32) {
	if (x.n+1)*2 > len(x.slots) {
		x.resize(len(x.slots) * 2)
	}
	k := uintptr(p)
	mask := len(x.slots) - 1
	for i := x.home(k); ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.key == k {
			s.val = v
			return
		}
		if s.key == 0 {
			*s = ptrSlot{key: k, val: v}
			x.n++
			return
		}
	}
}

// del removes p with backward-shift deletion, which keeps probe sequences
// short without tombstones.
func (x *ptrIndex) del(p unsafe.Pointer) {
	k := uintptr(p)
	mask := len(x.slots) - 1
	i := x.home(k)
	for {
		if x.slots[i].key == 0 {
			return
		}
		if x.slots[i].key == k {
			break
		}
		i = (i + 1) & mask
	}
	x.n--
	for {
		x.slots[i] = ptrSlot{}
		j := i
		for {
			j = (j + 1) & mask
			if x.slots[j].key == 0 {
				return
			}
			h := x.home(x.slots[j].key)
			// Move slot j back to i unless its home lies cyclically in (i, j].
			if (j > i && (h <= i || h > j)) || (j < i && h <= i && h > j) {
				x.slots[i] = x.slots[j]
				i = j
				break
			}
		}
	}
}

// slabIndex maps object addresses to slab indexes on a standby, for IDOf.
// A standby keeps no address index of its own (Apply finds objects by ID),
// so this one is built on the first lookup and kept from then on: open
// addressing over 4-byte slots (slab index + 1, 0 empty), kept at most half
// full, whose key is the entry's own address, so it costs 8 to 16 bytes per
// object and a lookup compares against the entry a slot names.
type slabIndex struct {
	ents  *entSlab
	slots []int32
	n     int
	shift uint
}

func newSlabIndex(ents *entSlab, hint int) *slabIndex {
	x := &slabIndex{ents: ents}
	size := 1 << 10
	for size < 2*hint {
		size <<= 1
	}
	x.resize(size)
	return x
}

func (x *slabIndex) resize(size int) {
	old := x.slots
	x.slots = make([]int32, size)
	x.shift = 64
	for s := size; s > 1; s >>= 1 {
		x.shift--
	}
	x.n = 0
	for _, v := range old {
		if v != 0 {
			x.place(v)
		}
	}
}

func (x *slabIndex) home(k unsafe.Pointer) int {
	return int((uint64(uintptr(k)) * 0x9E3779B97F4A7C15) >> x.shift)
}

func (x *slabIndex) place(v int32) {
	mask := len(x.slots) - 1
	i := x.home(x.ents.at(v - 1).ptr)
	for x.slots[i] != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = v
	x.n++
}

// set adds entry i, which must not be in the index.
func (x *slabIndex) set(i int32) {
	if (x.n+1)*2 > len(x.slots) {
		x.resize(len(x.slots) * 2)
	}
	x.place(i + 1)
}

func (x *slabIndex) get(p unsafe.Pointer) (int32, bool) {
	mask := len(x.slots) - 1
	for i := x.home(p); ; i = (i + 1) & mask {
		v := x.slots[i]
		if v == 0 {
			return 0, false
		}
		if x.ents.at(v-1).ptr == p {
			return v - 1, true
		}
	}
}

// del removes entry i, whose address must still be in the entry, with
// backward-shift deletion like ptrIndex.del.
func (x *slabIndex) del(i int32) {
	mask := len(x.slots) - 1
	k := x.home(x.ents.at(i).ptr)
	for x.slots[k] != i+1 {
		if x.slots[k] == 0 {
			return
		}
		k = (k + 1) & mask
	}
	x.n--
	for {
		x.slots[k] = 0
		j := k
		for {
			j = (j + 1) & mask
			v := x.slots[j]
			if v == 0 {
				return
			}
			h := x.home(x.ents.at(v - 1).ptr)
			if (j > k && (h <= k || h > j)) || (j < k && h <= k && h > j) {
				x.slots[k] = v
				k = j
				break
			}
		}
	}
}

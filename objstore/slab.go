package objstore

import "unsafe"

// entSlab holds the store's entries by value, in fixed-size pages that
// never move: an entry's address is stable, and growing the store adds a
// page rather than copying every entry into a slab twice the size. Copying
// was the largest cost of building a store from empty: a million entries of
// pointers copied about twice over, each copy faulting in fresh memory and,
// while the collector runs, taking a write barrier per pointer, and each old
// slab left as garbage that brought the next collection forward.
type entSlab struct {
	pages []*entPage
	n     int
}

const (
	entPageBits = 12
	entPageLen  = 1 << entPageBits
)

type entPage [entPageLen]entry

func (x *entSlab) len() int { return x.n }

// at returns entry i, which must be below len.
func (x *entSlab) at(i int32) *entry {
	return &x.pages[i>>entPageBits][i&(entPageLen-1)]
}

// add appends a zero entry and returns its index.
func (x *entSlab) add() int32 {
	if x.n == len(x.pages)*entPageLen {
		x.pages = append(x.pages, newEntPage())
	}
	x.n++
	return int32(x.n - 1)
}

// reserve allocates the pages for n entries now (Config.SizeHint).
func (x *entSlab) reserve(n int) {
	for len(x.pages)*entPageLen < n {
		x.pages = append(x.pages, newEntPage())
	}
}

// newEntPage returns a page with its memory already faulted in (see
// prefault): the collector scans a page's unused tail as it fills, and its
// reads would otherwise map that tail to the zero page, making every
// entry's first write there a copy-on-write fault.
func newEntPage() *entPage {
	p := new(entPage)
	prefault(unsafe.Pointer(p), unsafe.Sizeof(*p))
	return p
}

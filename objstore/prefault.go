package objstore

import "unsafe"

// prefault writes to every page of the n bytes at p, which must be zero and
// not yet in use (a page of the entry slab or an index table, just
// allocated), so that the kernel maps each to a fresh page now.
//
// A large allocation of pointerful memory comes straight from the OS
// untouched, and the garbage collector scans all of it, used or not: its
// reads map every page to the shared zero page, and the store's first write
// to each then takes a copy-on-write fault, which also has to flush the
// other CPUs' TLBs (an inter-processor interrupt, which in a VM exits to
// the hypervisor). Measured on a 2-vCPU VM filling a presized store of a
// million routes, those faults were a fifth of the CPU time. A write fault
// on an untouched page is a plain anonymous fault, several times cheaper,
// and the memory is about to be used anyway: the slab gets a page only when
// the last one is full, an index table is filled as it grows, and a
// presized store was told how much it will hold.
func prefault(p unsafe.Pointer, n uintptr) {
	const page = 4096 // the smallest page size Go supports; touching more often is harmless
	for off := uintptr(0); off < n; off += page {
		*(*byte)(unsafe.Add(p, off)) = 0
	}
}

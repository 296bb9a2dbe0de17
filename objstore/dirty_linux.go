//go:build linux

package objstore

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel interface of the arena's dirty tracking: userfaultfd
// write-protection in asynchronous mode, and the PAGEMAP_SCAN ioctl of
// /proc/self/pagemap, which reports the pages written since they were last
// protected and protects them again in the same call (Linux 6.7 and later).
// None of it is in golang.org/x/sys/unix, so the numbers and layouts below
// are transcribed from the kernel's uapi headers.

// From include/uapi/linux/userfaultfd.h.
const (
	uffdAPI                  = 0xAA    // UFFD_API
	uffdUserModeOnly         = 1       // UFFD_USER_MODE_ONLY, a userfaultfd(2) flag
	uffdFeatureWPUnpopulated = 1 << 13 // UFFD_FEATURE_WP_UNPOPULATED
	uffdFeatureWPAsync       = 1 << 15 // UFFD_FEATURE_WP_ASYNC
	uffdRegisterModeWP       = 1 << 1  // UFFDIO_REGISTER_MODE_WP
	uffdWriteprotectModeWP   = 1 << 0  // UFFDIO_WRITEPROTECT_MODE_WP
)

// struct uffdio_api, uffdio_range, uffdio_register, uffdio_writeprotect.
type uffdioAPI struct{ api, features, ioctls uint64 }
type uffdioRange struct{ start, len uint64 }
type uffdioRegister struct {
	rng          uffdioRange
	mode, ioctls uint64
}
type uffdioWriteprotect struct {
	rng  uffdioRange
	mode uint64
}

// From include/uapi/linux/fs.h.
const (
	pmScanWPMatching   = 1 << 0 // PM_SCAN_WP_MATCHING
	pmScanCheckWPAsync = 1 << 1 // PM_SCAN_CHECK_WPASYNC
	pageIsWritten      = 1 << 1 // PAGE_IS_WRITTEN
)

// struct page_region and struct pm_scan_arg.
type pageRegion struct{ start, end, categories uint64 }
type pmScanArg struct {
	size, flags, start, end, walkEnd, vec, vecLen, maxPages uint64
	categoryInverted, categoryMask, categoryAnyofMask       uint64
	returnMask                                              uint64
}

// iowr is _IOWR of include/uapi/asm-generic/ioctl.h (read and write, the
// argument's size in bits 16 to 29).
func iowr(typ, nr, size uintptr) uintptr { return 3<<30 | size<<16 | typ<<8 | nr }

// The ioctl requests: UFFDIO_API, UFFDIO_REGISTER and UFFDIO_WRITEPROTECT
// (userfaultfd.h, _UFFDIO_* numbers 0x3F, 0x00, 0x06 of type 0xAA), and
// PAGEMAP_SCAN, _IOWR('f', 16, struct pm_scan_arg) in fs.h.
var (
	reqUffdioAPI          = iowr(0xAA, 0x3F, unsafe.Sizeof(uffdioAPI{}))
	reqUffdioRegister     = iowr(0xAA, 0x00, unsafe.Sizeof(uffdioRegister{}))
	reqUffdioWriteprotect = iowr(0xAA, 0x06, unsafe.Sizeof(uffdioWriteprotect{}))
	reqPagemapScan        = iowr('f', 16, unsafe.Sizeof(pmScanArg{}))
)

func ioctl(fd int, req uintptr, arg unsafe.Pointer) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return r, nil
	}
}

// tracker is one store's handle on the kernel's dirty tracking: a
// userfaultfd that every arena region is registered with, and the pagemap
// file the scans go through.
type tracker struct {
	uffd    int
	pagemap int
	vec     []pageRegion // scan output, reused
}

// newTracker opens the tracking and checks, on a scratch mapping, that it
// reports exactly the pages written: a kernel that accepts the calls but
// answers otherwise must not be trusted with replication.
func newTracker() (*tracker, error) {
	fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK|uffdUserModeOnly, 0, 0)
	if errno != 0 {
		return nil, fmt.Errorf("userfaultfd(UFFD_USER_MODE_ONLY): %w", errno)
	}
	t := &tracker{uffd: int(fd), pagemap: -1, vec: make([]pageRegion, 256)}
	const want = uffdFeatureWPAsync | uffdFeatureWPUnpopulated
	api := uffdioAPI{api: uffdAPI, features: want}
	if _, err := ioctl(t.uffd, reqUffdioAPI, unsafe.Pointer(&api)); err != nil {
		t.close()
		return nil, fmt.Errorf("UFFDIO_API with WP_ASYNC and WP_UNPOPULATED: %w", err)
	}
	if api.features&want != want {
		t.close()
		return nil, fmt.Errorf("UFFDIO_API: features %#x lack WP_ASYNC|WP_UNPOPULATED", api.features)
	}
	pm, err := unix.Open("/proc/self/pagemap", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.close()
		return nil, fmt.Errorf("open /proc/self/pagemap: %w", err)
	}
	t.pagemap = pm
	if err := t.selfTest(); err != nil {
		t.close()
		return nil, fmt.Errorf("self-test: %w", err)
	}
	return t, nil
}

func (t *tracker) selfTest() error {
	const pg = 4096
	mem, err := mapRegion(4 * pg)
	if err != nil {
		return err
	}
	defer func() { _ = unmapRegion(mem) }()
	base := uintptr(unsafe.Pointer(&mem[0]))
	if err := t.register(base, uintptr(len(mem))); err != nil {
		return err
	}
	mem[pg+100] = 1 // written
	_ = mem[2*pg]   // only read
	for round, want := range [][]uintptr{{base + pg}, nil} {
		var got []uintptr
		_, err := t.scan(base, base+uintptr(len(mem)), true, 0, func(lo, hi uintptr) {
			for p := lo; p < hi; p += pg {
				got = append(got, p)
			}
		})
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("scan %d reported pages %#x, want %#x", round+1, got, want)
		}
	}
	return nil
}

// register write-protects [base, base+size): from now on the first write to
// each page marks it written, and the writer carries on (asynchronous mode).
// Protecting the range explicitly is what makes unpopulated pages count too
// (WP_UNPOPULATED installs markers in their place).
func (t *tracker) register(base, size uintptr) error {
	reg := uffdioRegister{rng: uffdioRange{uint64(base), uint64(size)}, mode: uffdRegisterModeWP}
	if _, err := ioctl(t.uffd, reqUffdioRegister, unsafe.Pointer(&reg)); err != nil {
		return fmt.Errorf("UFFDIO_REGISTER of %d bytes: %w", size, err)
	}
	return t.protect(base, size)
}

// protect write-protects [base, base+size) in one call: cheaper than
// protecting written pages one run at a time when most of them are.
func (t *tracker) protect(base, size uintptr) error {
	wp := uffdioWriteprotect{rng: uffdioRange{uint64(base), uint64(size)}, mode: uffdWriteprotectModeWP}
	if _, err := ioctl(t.uffd, reqUffdioWriteprotect, unsafe.Pointer(&wp)); err != nil {
		return fmt.Errorf("UFFDIO_WRITEPROTECT of %d bytes: %w", size, err)
	}
	return nil
}

// scan calls fn with each run of pages of [start, end) written since they
// were last protected and, if protect, protects them again: a write made
// after the call returns for a page is reported by the next scan. Past
// budget pages (0: no limit) it stops and reports over, leaving the rest
// of the range unscanned and unprotected.
func (t *tracker) scan(start, end uintptr, protect bool, budget int, fn func(lo, hi uintptr)) (over bool, err error) {
	flags := uint64(pmScanCheckWPAsync)
	if protect {
		flags |= pmScanWPMatching
	}
	for start < end {
		arg := pmScanArg{
			size: uint64(unsafe.Sizeof(pmScanArg{})), flags: flags,
			start: uint64(start), end: uint64(end),
			vec: uint64(uintptr(unsafe.Pointer(&t.vec[0]))), vecLen: uint64(len(t.vec)),
			maxPages:     uint64(budget),
			categoryMask: pageIsWritten, returnMask: pageIsWritten,
		}
		n, err := ioctl(t.pagemap, reqPagemapScan, unsafe.Pointer(&arg))
		runtime.KeepAlive(t.vec)
		if err != nil {
			return false, fmt.Errorf("PAGEMAP_SCAN of [%#x, %#x): %w", start, end, err)
		}
		pages := 0
		for _, r := range t.vec[:n] {
			fn(uintptr(r.start), uintptr(r.end))
			pages += int((r.end - r.start) >> pageShift)
		}
		next := uintptr(arg.walkEnd)
		if budget > 0 {
			if pages >= budget && next < end {
				return true, nil
			}
			budget -= pages
		}
		if next <= start {
			return false, errors.New("PAGEMAP_SCAN made no progress")
		}
		start = next
	}
	return false, nil
}

func (t *tracker) close() {
	if t.pagemap >= 0 {
		_ = unix.Close(t.pagemap)
	}
	_ = unix.Close(t.uffd)
}

// mapRegion maps size bytes of fresh anonymous memory for an arena.
// MAP_NORESERVE: a region is reserved ahead of use, and only the pages
// objects are placed on should count against the machine's memory.
func mapRegion(size uintptr) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("mmap of %d bytes: %w", size, err)
	}
	// No transparent huge pages: khugepaged may collapse 512 pages that
	// are all written (so no longer write-protected) into one, whose next
	// first write then marks 2 MiB at once, and Sync diffs 512 pages of
	// objects for one changed. Best effort: a kernel without THP refuses.
	_ = unix.Madvise(b, unix.MADV_NOHUGEPAGE)
	return b, nil
}

func unmapRegion(b []byte) error { return unix.Munmap(b) }

package objstore

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestArenaKernelWrite: the kernel writing into an arena object (read(2)
// from a pipe) marks its page written like a store of the application.
func TestArenaKernelWrite(t *testing.T) {
	p := newArenaPair(t, Config{})
	requireTracking(t, p.act)
	cells := p.newCells(300)
	p.sync()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if _, err := unix.Write(fds[1], []byte("router-1")); err != nil {
		t.Fatal(err)
	}
	c := cells[150]
	n, err := unix.Read(fds[0], unsafe.Slice((*byte)(unsafe.Pointer(&c.Name)), len(c.Name)))
	if err != nil || n != len(c.Name) {
		t.Fatalf("read: %d, %v", n, err)
	}
	got := p.sync()
	if want := []string{fmt.Sprintf("update Cell %d Name", c.Key+1)}; !slices.Equal(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	a := arenaOfType(p.act, "Cell")
	if pg := a.dirtyPages(); !slices.Equal(pg, []uintptr{pageOf(unsafe.Pointer(&c.Name), 0)}) {
		t.Fatalf("dirty pages %x", pg)
	}
	p.checkEqual()
}

// TestArenaNoHugePages: arena regions are excluded from transparent huge
// pages (VmFlags "nh" in /proc/self/smaps): a huge page collapsed from
// written pages would make its next first write mark 2 MiB at once.
func TestArenaNoHugePages(t *testing.T) {
	p := newArenaPair(t, Config{})
	requireTracking(t, p.act)
	cells := p.newCells(10)
	addr := uintptr(unsafe.Pointer(cells[0]))
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var in bool
	for _, line := range strings.Split(string(smaps), "\n") {
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 && strings.Contains(line, " ") {
			in = addr >= lo && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			if !slices.Contains(strings.Fields(line)[1:], "nh") {
				t.Fatalf("arena region's %s: no nh (MADV_NOHUGEPAGE)", line)
			}
			return
		}
	}
	t.Fatalf("no mapping of %#x in /proc/self/smaps", addr)
}

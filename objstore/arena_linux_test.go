package objstore

import (
	"fmt"
	"slices"
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

//go:build linux

package netnstest

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// NoCPU leaves a goroutine unpinned.
const NoCPU = -1

// Pin says which CPU the sending and the receiving side of a measurement run on.
//
// On the 2-core build VMs placement decides the result. Pin.Apply locks the
// sending goroutine's thread to Sender and confines every other thread of the
// process to Receiver: the receiving goroutine, and also the runtime's idle
// threads, one of which sits in the netpoller and must run to wake the
// receiver. Merely locking the receiver to its own pinned thread is worse than
// no pinning at all: the thread that wakes it from the netpoller may be queued
// behind the busy sender on the sender's core for a whole scheduler slice,
// while the socket queue overflows (measured: 175K frames/s received of 600K
// sent, against 350K of 350K unpinned).
//
// veth delivers a frame on the sending CPU (its xmit runs the receive softirq
// inline), so the sender's core also carries the kernel receive path up to the
// socket queue; the receiver's core copies out.
type Pin struct {
	Sender, Receiver int
}

// DefaultPin pins the sender to CPU 0 and the receiver to CPU 1 on machines with
// at least two CPUs, and pins nothing on a single-CPU machine.
func DefaultPin() Pin {
	if runtime.NumCPU() < 2 {
		return Pin{NoCPU, NoCPU}
	}
	return Pin{Sender: 0, Receiver: 1}
}

// String formats p for benchmark logs.
func (p Pin) String() string {
	f := func(c int) string {
		if c == NoCPU {
			return "any"
		}
		return fmt.Sprint(c)
	}
	return "sender=cpu" + f(p.Sender) + " receiver=cpu" + f(p.Receiver)
}

// Apply confines every thread of the process to p.Receiver, then locks the
// calling goroutine to its thread and pins that thread to p.Sender. Call it
// from the sending goroutine; start the receiving goroutine without locking it.
// The returned function, to be called from the same goroutine, undoes both.
func (p Pin) Apply() (undo func(), err error) {
	restore := func() {}
	if p.Receiver != NoCPU {
		if restore, err = Confine(p.Receiver); err != nil {
			return nil, err
		}
	}
	release, err := PinThread(p.Sender)
	if err != nil {
		restore()
		return nil, err
	}
	return func() { release(); restore() }, nil
}

// Confine restricts every thread of the process to cpu. New threads inherit
// the mask of the thread that creates them (the runtime creates them from an
// unlocked thread, or its template thread), so they stay confined too. The
// returned function gives every thread, including those created since, the CPU
// set the calling thread had before.
func Confine(cpu int) (restore func(), err error) {
	var orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		return nil, fmt.Errorf("netnstest: sched_getaffinity: %w", err)
	}
	var set unix.CPUSet
	set.Set(cpu)
	// Twice, to catch threads started while the first pass ran.
	for range 2 {
		if err := setAllThreads(&set); err != nil {
			setAllThreads(&orig)
			return nil, fmt.Errorf("netnstest: confine to CPU %d: %w", cpu, err)
		}
	}
	return func() { setAllThreads(&orig) }, nil
}

func setAllThreads(set *unix.CPUSet) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread may have exited since the listing: not an error.
		if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("thread %d: %w", tid, err)
		}
	}
	return nil
}

// PinThread locks the calling goroutine to its OS thread and binds the thread to
// cpu (NoCPU: lock only). The returned function restores the thread's previous
// CPU set and unlocks it; call it from the same goroutine, typically deferred.
func PinThread(cpu int) (release func(), err error) {
	runtime.LockOSThread()
	if cpu == NoCPU {
		return runtime.UnlockOSThread, nil
	}
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("netnstest: sched_getaffinity: %w", err)
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("netnstest: pin to CPU %d: %w", cpu, err)
	}
	return func() {
		// A thread whose mask cannot be restored stays locked, so the runtime
		// retires it with the goroutine instead of reusing it pinned.
		if unix.SchedSetaffinity(0, &old) == nil {
			runtime.UnlockOSThread()
		}
	}, nil
}

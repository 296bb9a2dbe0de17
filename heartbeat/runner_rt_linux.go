//go:build linux

package heartbeat

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// setRealTime makes the calling thread SCHED_FIFO at prio. The caller has locked
// its goroutine to the thread.
func setRealTime(prio int) error {
	attr := unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: uint32(prio)}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("sched_setattr SCHED_FIFO priority %d: %w", prio, err)
	}
	return nil
}

// setNice sets the calling thread's nice value (per thread on Linux: a tid is a
// PRIO_PROCESS target).
func setNice(nice int) error {
	if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice); err != nil {
		return fmt.Errorf("setpriority nice %d: %w", nice, err)
	}
	return nil
}

//go:build linux

package heartbeat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swha/swha/l2transport"
)

// poller waits for a link's socket on the runner's own locked thread, with
// ppoll, instead of in the Go netpoller. Through the netpoller a timer or a
// frame first wakes whichever thread sits in epoll_wait, which then hands the
// goroutine to its locked thread: two kernel wake-ups, each a scheduling delay
// on a saturated CPU, and the first one never real-time. With ppoll the kernel
// wakes the runner's thread directly, at its own (SCHED_FIFO) priority.
type poller struct {
	rc  syscall.RawConn
	ev  *os.File // eventfd that wakes the wait for inputs; *os.File so that a late wake cannot write to a recycled fd number
	efd int
	buf [8]byte
}

// newPoller returns a poller for link, or nil if the link has no socket to
// poll (in-memory links, or links that do not expose it).
func newPoller(link l2transport.Link) (*poller, error) {
	sc, ok := link.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return nil, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("heartbeat: the link's socket: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: eventfd: %w", err)
	}
	return &poller{rc: rc, ev: os.NewFile(uintptr(efd), "heartbeat-wake"), efd: efd}, nil
}

// wait blocks until the socket is readable, a wake, or dl (zero: none); it
// reports whether the socket is readable.
func (p *poller) wait(dl time.Time) (readable bool, err error) {
	fds := [2]unix.PollFd{{Events: unix.POLLIN}, {Fd: int32(p.efd), Events: unix.POLLIN}}
	var perr error
	cerr := p.rc.Control(func(fd uintptr) {
		fds[0].Fd = int32(fd)
		for {
			var ts *unix.Timespec
			if !dl.IsZero() {
				t := unix.NsecToTimespec(max(time.Until(dl).Nanoseconds(), 0))
				ts = &t
			}
			_, perr = unix.Ppoll(fds[:], ts, nil)
			if perr != unix.EINTR { // the runtime's preemption signals
				return
			}
		}
	})
	if err := errors.Join(cerr, perr); err != nil {
		if errors.Is(cerr, os.ErrClosed) || errors.Is(cerr, net.ErrClosed) || errors.Is(cerr, syscall.EBADF) {
			return false, l2transport.ErrClosed
		}
		return false, fmt.Errorf("heartbeat: ppoll: %w", err)
	}
	if fds[1].Revents&unix.POLLIN != 0 {
		_, _ = p.ev.Read(p.buf[:]) // reset the counter; readable, so it does not block
	}
	return fds[0].Revents&(unix.POLLIN|unix.POLLERR|unix.POLLHUP) != 0, nil
}

// wake cuts a wait short; safe from any goroutine, also after close.
func (p *poller) wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = p.ev.Write(one[:])
}

func (p *poller) close() { p.ev.Close() }

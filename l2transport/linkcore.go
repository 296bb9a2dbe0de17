package l2transport

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// linkCore is what the socket links (AF_PACKET, UDP) share: the closed
// flag, the traffic counters, errors that name the link, and the batched
// sendmmsg loop. Each link says what an errno from the kernel means for it.
type linkCore struct {
	name   string // "afpacket eth1", "udp 10.0.0.1:7000->10.0.0.2:7000"
	maxPDU int
	batch  int
	closed atomic.Bool

	framesIn, bytesIn, framesOut, bytesOut atomic.Uint64
	txDropped                              atomic.Uint64
}

func (c *linkCore) errorf(format string, args ...any) error {
	return fmt.Errorf("l2transport: %s: "+format, append([]any{c.name}, args...)...)
}

// ioError maps a socket error: after Close it is ErrClosed; a deadline error
// keeps os.ErrDeadlineExceeded in its chain.
func (c *linkCore) ioError(op string, err error) error {
	if c.closed.Load() || errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return c.errorf("%s: %w", op, err)
}

// setReadDeadline bounds ReadBatch on the link's receiving socket.
func (c *linkCore) setReadDeadline(conn interface{ SetReadDeadline(time.Time) error }, t time.Time) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := conn.SetReadDeadline(t); err != nil {
		return c.errorf("set read deadline: %w", err)
	}
	return nil
}

// errnoAction is what a link does with an errno sendmmsg reported for the
// message after the ones it sent.
type errnoAction uint8

const (
	errnoFail     errnoAction = iota // return the error
	errnoSkipOne                     // count that message as sent and lost, go on
	errnoDropRest                    // count everything left as sent and lost
)

// writeBatches sends pdus, up to batch per sendmmsg, each after lead
// header iovecs that tx already holds. Messages the kernel refuses count as
// handed to the medium and lost, as on any lossy wire, when onErrno says
// so; Session retransmits.
func (c *linkCore) writeBatches(tx *mmsgOp, pdus [][]byte, lead int, onErrno func(unix.Errno) errnoAction) (int, error) {
	if c.closed.Load() {
		return 0, ErrClosed
	}
	done := 0
	for done < len(pdus) {
		n := tx.setPDUs(pdus[done:min(len(pdus), done+c.batch)], lead, c.maxPDU)
		if n == 0 {
			return done, c.errorf("write: PDU of %d bytes, want 1 to %d", len(pdus[done]), c.maxPDU)
		}
		sent, errno, err := tx.do(n)
		if err != nil {
			return done, c.ioError("write", err)
		}
		if errno == unix.EAGAIN || c.closed.Load() && sent == 0 {
			// Gave up waiting for buffer space because of Close.
			return done, ErrClosed
		}
		if sent == 0 && errno == 0 {
			// Not documented to happen; refuse to spin on it.
			return done, c.errorf("sendmmsg sent nothing")
		}
		c.framesOut.Add(uint64(sent))
		c.bytesOut.Add(totalLen(pdus[done : done+sent]))
		done += sent
		if errno == 0 {
			continue
		}
		switch onErrno(errno) {
		case errnoSkipOne:
			c.txDropped.Add(1)
			done++
		case errnoDropRest:
			c.txDropped.Add(uint64(len(pdus) - done))
			return len(pdus), nil
		default:
			return done, c.errorf("sendmmsg: %w", errno)
		}
	}
	return done, nil
}

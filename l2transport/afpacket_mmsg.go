//go:build linux

package l2transport

import (
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgOp is one direction of batched socket I/O: a sendmmsg or recvmmsg whose
// msghdr and iovec arrays are allocated once and reused, so a batch costs no
// allocation. Each message has stride iovecs; callers fill in the iovecs and
// call do. It is used by one goroutine at a time.
//
// It runs the syscall from a syscall.RawConn Read/Write callback with
// MSG_DONTWAIT: when the socket has nothing to give (or no room), the callback
// returns false and the runtime parks the goroutine in the netpoller until the
// socket is ready or the deadline passes, so nothing spins and no thread blocks.
type mmsgOp struct {
	trap uintptr // SYS_SENDMMSG or SYS_RECVMMSG
	wait func(func(fd uintptr) bool) error
	// block marks an fd outside the netpoller: the syscall blocks in the
	// kernel (bounded by SO_SNDTIMEO/SO_RCVTIMEO) and is retried until it
	// succeeds or stop is set.
	block  bool
	stop   *atomic.Bool
	msgs   []unix.Mmsghdr
	iov    []unix.Iovec
	stride int
	calls  atomic.Uint64 // syscalls made, including ones that found nothing to do
	waits  atomic.Uint64 // times the goroutine parked for lack of data or room

	// The callback's arguments and results live here so that the callback is
	// a method value made once, not a closure allocated per call.
	n     int
	done  int
	errno unix.Errno
	fn    func(fd uintptr) bool
}

// newSendOp and newRecvOp make an mmsgOp for batches of up to batch messages of
// stride iovecs each, waiting through rc.
func newSendOp(rc syscall.RawConn, batch, stride int) *mmsgOp {
	return newMmsgOp(unix.SYS_SENDMMSG, rc.Write, batch, stride)
}

// newBlockingSendOp is newSendOp for a blocking socket that is not in the
// netpoller; it gives up waiting for buffer space once stop is set.
func newBlockingSendOp(rc syscall.RawConn, batch, stride int, stop *atomic.Bool) *mmsgOp {
	o := newMmsgOp(unix.SYS_SENDMMSG, rc.Write, batch, stride)
	o.block, o.stop = true, stop
	return o
}

func newRecvOp(rc syscall.RawConn, batch, stride int) *mmsgOp {
	return newMmsgOp(unix.SYS_RECVMMSG, rc.Read, batch, stride)
}

func newMmsgOp(trap uintptr, wait func(func(uintptr) bool) error, batch, stride int) *mmsgOp {
	o := &mmsgOp{
		trap:   trap,
		wait:   wait,
		msgs:   make([]unix.Mmsghdr, batch),
		iov:    make([]unix.Iovec, batch*stride),
		stride: stride,
	}
	for i := range o.msgs {
		o.msgs[i].Hdr.Iov = &o.iov[i*stride]
		o.msgs[i].Hdr.SetIovlen(stride)
	}
	o.fn = o.call
	return o
}

// setIov points iovec j of message i at b.
func (o *mmsgOp) setIov(i, j int, b []byte) {
	v := &o.iov[i*o.stride+j]
	v.Base = unsafe.SliceData(b)
	v.SetLen(len(b))
}

// setPDUs points iovec slot of successive messages at pdus, stopping at the
// first PDU that is empty or longer than maxPDU, and returns how many it set.
func (o *mmsgOp) setPDUs(pdus [][]byte, slot, maxPDU int) int {
	for i, p := range pdus {
		if len(p) > maxPDU || len(p) == 0 {
			return i
		}
		o.setIov(i, slot, p)
	}
	return len(pdus)
}

func totalLen(bufs [][]byte) uint64 {
	var n uint64
	for _, b := range bufs {
		n += uint64(len(b))
	}
	return n
}

// msgLen is the byte count the kernel reported for message i of the last call.
func (o *mmsgOp) msgLen(i int) int { return int(o.msgs[i].Len) }

// do transfers up to n messages, waiting until at least one can move. It
// returns how many moved and, separately, the errno of a failed syscall (the
// kernel reports an error only when the first message fails); err is a wait
// error: deadline or close.
func (o *mmsgOp) do(n int) (moved int, errno unix.Errno, err error) {
	o.n, o.done, o.errno = n, 0, 0
	if err := o.wait(o.fn); err != nil {
		return 0, 0, err
	}
	return o.done, o.errno, nil
}

// call makes the syscall for do. A blocking socket is tried first without
// blocking and without telling the scheduler (a raw syscall): a sendmmsg of
// a burst runs for hundreds of microseconds on veth (the receiver's softirq
// runs in it), long enough for the runtime to hand the goroutine's P to
// another thread every time the other P is busy; the goroutine then had to
// find a P again on the way out, and the hand-offs woke and parked threads
// (on a 2-CPU VM, about a thousand futex wake-ups a second in bulk transfer,
// and sysmon polling every 20 µs to retake the P). That syscall cannot
// block, so keeping the P through it costs other goroutines no more than a
// burst of Go code would. Only when the socket has no room does the call
// wait in the kernel, through the ordinary path.
func (o *mmsgOp) call(fd uintptr) bool {
	raw := o.block
	// EINTR is retried here rather than by waiting: the netpoller is edge
	// triggered and would not wake us for data that is already queued.
	for eintr := 0; ; {
		var r uintptr
		var e unix.Errno
		if raw {
			r, _, e = unix.RawSyscall6(o.trap, fd, uintptr(unsafe.Pointer(&o.msgs[0])), uintptr(o.n), unix.MSG_DONTWAIT, 0, 0)
		} else {
			flags := uintptr(unix.MSG_DONTWAIT)
			if o.block {
				flags = 0
			}
			r, _, e = unix.Syscall6(o.trap, fd, uintptr(unsafe.Pointer(&o.msgs[0])), uintptr(o.n), flags, 0, 0)
		}
		o.calls.Add(1)
		switch {
		case e == 0:
			o.done = int(r)
			return true
		case e == unix.EINTR && eintr < 16:
			eintr++
		case e == unix.EAGAIN && raw:
			raw = false // no room: wait for it in the kernel
		case e == unix.EAGAIN && !o.block:
			o.waits.Add(1)
			return false
		case e == unix.EAGAIN && !o.stop.Load():
			// The socket timeout passed with the buffer still full; every
			// pass waited that long in the kernel, so this is no spin.
		default:
			o.errno = e
			return true
		}
	}
}

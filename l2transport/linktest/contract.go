package linktest

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Link is the part of l2transport.Link the contract exercises, generic in the
// packet type so that this package need not import l2transport:
// l2transport.Link is a Link[l2transport.Packet].
type Link[P any] interface {
	WriteBatch(pdus [][]byte) (int, error)
	ReadBatch(pkts []P) (int, error)
	SetReadDeadline(t time.Time) error
	Close() error
}

// DeadlineAndClose checks the read-deadline and close rules of the Link
// contract on l, which must receive nothing meanwhile, and closes it:
//
//   - ReadBatch past its deadline fails with os.ErrDeadlineExceeded;
//   - a deadline set while ReadBatch is blocked applies to it;
//   - Close unblocks a ReadBatch with no deadline, which returns closed;
//   - after Close, ReadBatch, WriteBatch(pdu), SetReadDeadline and Close
//     itself return closed.
//
// It waits for the blocked reads with WaitBlocked, not for a time, and sets
// no time limit: the test binary's timeout reports a read that never returns.
func DeadlineAndClose[P any](tb testing.TB, l Link[P], pkts []P, pdu []byte, closed error) {
	tb.Helper()
	if err := l.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		tb.Fatalf("SetReadDeadline: %v", err)
	}
	if _, err := l.ReadBatch(pkts); !errors.Is(err, os.ErrDeadlineExceeded) {
		tb.Fatalf("ReadBatch past its deadline: %v, want os.ErrDeadlineExceeded", err)
	}

	if err := l.SetReadDeadline(time.Time{}); err != nil {
		tb.Fatalf("clear the deadline: %v", err)
	}
	errc := make(chan error, 1)
	go blockedRead(l, pkts, errc)
	WaitBlocked("linktest.blockedRead")
	if err := l.SetReadDeadline(time.Now()); err != nil {
		tb.Fatalf("SetReadDeadline while blocked: %v", err)
	}
	if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
		tb.Fatalf("blocked ReadBatch after its deadline moved to now: %v, want os.ErrDeadlineExceeded", err)
	}

	if err := l.SetReadDeadline(time.Time{}); err != nil {
		tb.Fatalf("clear the deadline: %v", err)
	}
	go blockedRead(l, pkts, errc)
	WaitBlocked("linktest.blockedRead")
	if err := l.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
	if err := <-errc; !errors.Is(err, closed) {
		tb.Fatalf("ReadBatch blocked across Close: %v, want %v", err, closed)
	}

	if _, err := l.ReadBatch(pkts); !errors.Is(err, closed) {
		tb.Errorf("ReadBatch after Close: %v, want %v", err, closed)
	}
	if _, err := l.WriteBatch([][]byte{pdu}); !errors.Is(err, closed) {
		tb.Errorf("WriteBatch after Close: %v, want %v", err, closed)
	}
	if err := l.SetReadDeadline(time.Time{}); !errors.Is(err, closed) {
		tb.Errorf("SetReadDeadline after Close: %v, want %v", err, closed)
	}
	if err := l.Close(); !errors.Is(err, closed) {
		tb.Errorf("second Close: %v, want %v", err, closed)
	}
}

// blockedRead is the reader DeadlineAndClose waits on; WaitBlocked finds it by
// this name.
func blockedRead[P any](l Link[P], pkts []P, errc chan<- error) {
	_, err := l.ReadBatch(pkts)
	errc <- err
}

// WaitBlocked returns once a goroutine with fn on its stack (a function name
// as runtime.Stack prints it, such as "linktest.blockedRead") is blocked: in
// any state but running or runnable, which is a channel, select, lock,
// netpoller or system call wait. It polls the goroutine dump, yielding the
// processor between looks, and has no time limit.
//
// It is how a test knows that a goroutine is waiting without sleeping for a
// while and hoping; inside a testing/synctest bubble, synctest.Wait does
// this for every goroutine of the bubble.
func WaitBlocked(fn string) {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n == len(buf) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		for g := range bytes.SplitSeq(buf[:n], []byte("\n\n")) {
			head, _, _ := bytes.Cut(g, []byte("\n"))
			if !bytes.Contains(g, []byte(fn)) || !blockedState(string(head)) {
				continue
			}
			return
		}
		runtime.Gosched()
	}
}

// blockedState reports whether a goroutine header, "goroutine 7 [select]:",
// names a waiting state.
func blockedState(head string) bool {
	_, st, ok := strings.Cut(head, "[")
	if !ok {
		return false
	}
	st, _, _ = strings.Cut(st, "]")
	st, _, _ = strings.Cut(st, ",") // "select, 2 minutes"
	return st != "running" && st != "runnable" && !strings.HasPrefix(st, "runnable")
}

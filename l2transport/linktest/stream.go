package linktest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

// Stream checks a delivered message stream against the messages sent: each
// exactly once, in order, byte for byte, with its transaction ID. Deliver it
// from a Conn's handler; the test waits on Done and then calls Check. It is
// safe for one delivering goroutine and any number of readers.
type Stream struct {
	want [][]byte
	txn  func(i int) uint64

	mu      sync.Mutex
	got     int
	err     error
	done    chan struct{}
	waiters []waiter // Delivered channels not yet closed
}

type waiter struct {
	n  int
	ch chan struct{}
}

// NewStream expects want, message i with transaction ID txn(i); nil txn
// means ID i.
func NewStream(want [][]byte, txn func(i int) uint64) *Stream {
	if txn == nil {
		txn = func(i int) uint64 { return uint64(i) }
	}
	s := &Stream{want: want, txn: txn, done: make(chan struct{})}
	if len(want) == 0 {
		close(s.done)
	}
	return s
}

// Deliver records one delivered message. data is not retained.
func (s *Stream) Deliver(data []byte, txnID uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.got
	s.got++
	switch {
	case s.err != nil:
	case i >= len(s.want):
		s.err = fmt.Errorf("message %d delivered beyond the %d sent (a duplicate)", i, len(s.want))
	case txnID != s.txn(i):
		s.err = fmt.Errorf("message %d has transaction %d, want %d: lost, duplicated or reordered", i, txnID, s.txn(i))
	case !bytes.Equal(data, s.want[i]):
		s.err = fmt.Errorf("message %d (%d bytes) differs from the %d bytes sent", i, len(data), len(s.want[i]))
	}
	if s.got == len(s.want) {
		close(s.done)
	}
	k := 0
	for _, w := range s.waiters {
		if s.got >= w.n {
			close(w.ch)
			continue
		}
		s.waiters[k] = w
		k++
	}
	clear(s.waiters[k:])
	s.waiters = s.waiters[:k]
}

// Delivered returns a channel closed once n messages have been delivered.
func (s *Stream) Delivered(n int) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	if s.got >= n {
		close(ch)
		return ch
	}
	s.waiters = append(s.waiters, waiter{n, ch})
	return ch
}

// Done is closed once as many messages as were sent have been delivered
// (right or wrong: Check tells).
func (s *Stream) Done() <-chan struct{} { return s.done }

// Got is how many messages have been delivered.
func (s *Stream) Got() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

// Err is the first discrepancy seen, or nil.
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Check fails tb unless exactly the messages sent were delivered, in order.
// Call it once delivery has stopped (the receiving Conn closed), so that a
// late duplicate cannot slip in after it.
func (s *Stream) Check(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		tb.Fatal(s.err)
	}
	if s.got != len(s.want) {
		tb.Fatalf("%d messages delivered, want %d", s.got, len(s.want))
	}
}

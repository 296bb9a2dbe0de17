package l2transport

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// endpoint is one Conn's use of a MemLink end that outlives it, as a
// restarted process opens the same interface again: Close stops this user
// (its blocked read returns ErrClosed) and leaves the MemLink open.
type endpoint struct {
	*MemLink
	closed atomic.Bool
}

func openEndpoint(l *MemLink) *endpoint {
	l.SetReadDeadline(time.Time{})
	return &endpoint{MemLink: l}
}

func (e *endpoint) ReadBatch(p []Packet) (int, error) {
	if e.closed.Load() {
		return 0, ErrClosed
	}
	n, err := e.MemLink.ReadBatch(p)
	if e.closed.Load() {
		return 0, ErrClosed // frames read across Close are lost, as on a socket
	}
	return n, err
}

func (e *endpoint) WriteBatch(p [][]byte) (int, error) {
	if e.closed.Load() {
		return 0, ErrClosed
	}
	return e.MemLink.WriteBatch(p)
}

func (e *endpoint) Close() error {
	if e.closed.Swap(true) {
		return ErrClosed
	}
	return e.MemLink.SetReadDeadline(time.Now()) // wakes a blocked reader
}

// recorder collects what a Conn delivers.
type recorder struct {
	mu     sync.Mutex
	msgs   []string
	events []Event
	got    chan struct{} // a token per message
}

func newRecorder() *recorder { return &recorder{got: make(chan struct{}, 1024)} }

func (r *recorder) handler(m Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, string(m.Data))
	r.mu.Unlock()
	r.got <- struct{}{}
}

func (r *recorder) onEvent(ev Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *recorder) opts() []ConnOption {
	return []ConnOption{WithHandler(r.handler), WithEventHandler(r.onEvent)}
}

// wait waits for n more messages, for at most a minute of fake time.
func (r *recorder) wait(t *testing.T, n int, what string) {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(time.Minute):
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("%s: nothing more after %v (events %v)", what, r.msgs, r.events)
		}
	}
}

func (r *recorder) snapshot() ([]string, []Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...), append([]Event(nil), r.events...)
}

// syncBuffer is a bytes.Buffer for a logger written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConnPeerReusedEpoch: B's process restarts, on the same interface, with
// the epoch it had before. A must notice (an event, a counter, one error
// line in its log) and the pair must talk again.
func TestConnPeerReusedEpoch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := NewMemPair(1500, Faults{Delay: 100 * time.Microsecond}, Faults{Delay: 100 * time.Microsecond}, 1)
		var logA syncBuffer
		ra := newRecorder()
		a, err := NewConn(la, connConfig(1), append(ra.opts(), WithLogger(slog.New(slog.NewTextHandler(&logA, nil))))...)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		rb1 := newRecorder()
		b1, err := NewConn(openEndpoint(lb), connConfig(2), rb1.opts()...)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for i := range 10 {
			if err := a.Send(ctx, []byte{'a', byte(i)}, 1); err != nil {
				t.Fatal(err)
			}
			if err := b1.Send(ctx, []byte{'b', byte(i)}, 1); err != nil {
				t.Fatal(err)
			}
		}
		ra.wait(t, 10, "A from the first B")
		rb1.wait(t, 10, "the first B from A")
		b1.Close()

		rb2 := newRecorder()
		b2, err := NewConn(openEndpoint(lb), connConfig(2), rb2.opts()...) // the same epoch
		if err != nil {
			t.Fatal(err)
		}
		defer b2.Close()
		if err := b2.Send(ctx, []byte("from the second B"), 2); err != nil {
			t.Fatal(err)
		}
		ra.wait(t, 1, "A from the second B, which reused the first one's epoch")
		msgs, events := ra.snapshot()
		if msgs[len(msgs)-1] != "from the second B" {
			t.Fatalf("A got %q last", msgs[len(msgs)-1])
		}
		var reused int
		for _, ev := range events {
			if ev.Kind == EventPeerRestarted && ev.EpochReused && ev.PeerEpoch == connConfig(2).Epoch {
				reused++
			}
		}
		if reused != 1 {
			t.Errorf("A reported %d restarts with a reused epoch, want 1: %v", reused, events)
		}
		if st := a.Stats(); st.PeerEpochReuses != 1 {
			t.Errorf("A counted %d epoch reuses, want 1", st.PeerEpochReuses)
		}
		if err := a.Send(ctx, []byte("to the second B"), 3); err != nil {
			t.Fatal(err)
		}
		rb2.wait(t, 1, "the second B from A")
		if got, _ := rb2.snapshot(); len(got) != 1 || got[0] != "to the second B" {
			t.Errorf("the second B got %q", got)
		}
		synctest.Wait()
		if n := strings.Count(logA.String(), "level=ERROR"); n != 1 || !strings.Contains(logA.String(), "epoch of its previous incarnation") {
			t.Errorf("A logged %d errors, want the one about the reused epoch:\n%s", n, logA.String())
		}
		if err := b1.Send(ctx, []byte("x"), 0); !errors.Is(err, ErrConnClosed) {
			t.Errorf("the first B after Close: %v", err)
		}
	})
}

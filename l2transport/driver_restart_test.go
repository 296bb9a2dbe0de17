package l2transport

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swha/swha/l2transport/linktest"
)

// labelled returns n messages "prefix-i" and their transaction IDs, from first.
func labelled(prefix string, n int, first uint64) ([][]byte, []uint64) {
	m := make([][]byte, n)
	txn := make([]uint64, n)
	for i := range m {
		m[i] = fmt.Appendf(nil, "%s-%d", prefix, i)
		txn[i] = first + uint64(i)
	}
	return m, txn
}

// waitFor polls cond every millisecond of fake time, inside a synctest
// bubble, and fails after a minute of it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after a minute (fake time)", what)
		}
	}
}

// eventLog collects events from a Conn's delivery goroutine.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *eventLog) kinds(k EventKind) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, ev := range l.evs {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

// TestConnRestart: the sender restarts with a newer epoch on the same link.
// What the old stream delivered stays delivered; what it had queued, behind
// a partition, never arrives, and the senders waiting for space are told;
// messages sent after Restart arrive exactly once, in order, on a new
// stream; the peer reports the restart and A a new Established.
func TestConnRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := restartLinks()
		before, txnB := labelled("before", 50, 0)
		after, txnA := labelled("after", 50, 1000)
		want := append(before[:len(before):len(before)], after...)
		txns := append(txnB[:len(txnB):len(txnB)], txnA...)
		stream := linktest.NewStream(want, func(i int) uint64 { return txns[i] })
		var evA, evB eventLog
		b := startConn(t, lb, 2, WithHandler(func(m Message) { stream.Deliver(m.Data, m.TxnID) }), WithEventHandler(evB.add))
		cfg := connConfig(1)
		cfg.SendBuffer = 64 << 10
		a, err := NewConn(la, cfg, WithEventHandler(evA.add))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		ctx := context.Background()
		for i, m := range before {
			if err := a.Send(ctx, m, txnB[i]); err != nil {
				t.Fatal(err)
			}
		}
		<-stream.Delivered(len(before))

		// Cut the link and fill A's send buffer: these never arrive.
		la.SetPartitioned(true)
		doomed := make([]byte, 16<<10)
		for a.TrySend(doomed, 666) == nil {
		}
		errc := make(chan error, 2)
		go func() { errc <- a.Send(ctx, doomed, 667) }()
		go func() {
			_, err := a.SendBatch(ctx, [][]byte{doomed, doomed}, 668)
			errc <- err
		}()
		synctest.Wait() // both wait for space

		if err := a.Restart(cfg.Epoch); !errors.Is(err, ErrEpochNotNewer) {
			t.Errorf("Restart with the current epoch: %v, want ErrEpochNotNewer", err)
		}
		if err := a.Restart(cfg.Epoch - 1); !errors.Is(err, ErrEpochNotNewer) {
			t.Errorf("Restart with an older epoch: %v, want ErrEpochNotNewer", err)
		}
		if err := a.Restart(cfg.Epoch + 1); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-errc; !errors.Is(err, ErrConnRestarted) {
				t.Errorf("a sender waiting across Restart: %v, want ErrConnRestarted", err)
			}
		}
		if st := a.Stats(); st.QueuedBytes != 0 || st.Restarts != 1 || st.MessagesSent < uint64(len(before)) {
			t.Errorf("after Restart: %d bytes queued, %d restarts, %d messages sent in all; want 0, 1, at least %d",
				st.QueuedBytes, st.Restarts, st.MessagesSent, len(before))
		}
		la.SetPartitioned(false)
		for i, m := range after {
			if err := a.Send(ctx, m, txnA[i]); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-stream.Done():
		case <-time.After(time.Minute): // fake time
			t.Fatalf("%d of %d delivered; A %+v; B %+v", stream.Got(), len(want), a.Stats(), b.Stats())
		}
		synctest.Wait()
		b.Close()
		stream.Check(t)

		restarts := evB.kinds(EventPeerRestarted)
		if len(restarts) != 1 || restarts[0].OldPeerEpoch != cfg.Epoch || restarts[0].PeerEpoch != cfg.Epoch+1 || restarts[0].EpochReused {
			t.Errorf("B's restart events %+v, want one from epoch %d to %d", restarts, cfg.Epoch, cfg.Epoch+1)
		}
		if est := evA.kinds(EventEstablished); len(est) != 2 {
			t.Errorf("A reported %d Established events, want 2 (one per stream)", len(est))
		}
		if st := a.Stats(); st.PeerEpoch != connConfig(2).Epoch || !st.Established {
			t.Errorf("A after: %+v", st)
		}
	})
}

// TestConnRestartReceiver: the receiver restarts while its handler is busy
// with the old stream. The handler call under way finishes; no other old
// message is delivered, though many were received; the sender sees the
// restart, and what it sends next arrives.
func TestConnRestartReceiver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := restartLinks()
		old, oldTxn := labelled("old", 200, 0)
		after, afterTxn := labelled("after", 20, 1000)
		const stall = 5
		gate := make(chan struct{})
		var mu sync.Mutex
		var got []string
		b, err := NewConn(lb, connConfig(2), WithHandler(func(m Message) {
			mu.Lock()
			got = append(got, string(m.Data))
			n := len(got)
			mu.Unlock()
			if n == stall+1 {
				<-gate
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		var evA eventLog
		a := startConn(t, la, 1, WithEventHandler(evA.add))
		ctx := context.Background()
		if _, err := a.SendBatch(ctx, old, oldTxn[0]); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "B received the old stream", func() bool { return b.Stats().MessagesDelivered == uint64(len(old)) })
		synctest.Wait() // B's handler holds old-5
		if err := b.Restart(connConfig(2).Epoch + 1); err != nil {
			t.Fatal(err)
		}
		close(gate)
		synctest.Wait()
		mu.Lock()
		if len(got) != stall+1 {
			t.Errorf("B's handler got %d old messages, want the %d before the restart", len(got), stall+1)
		}
		mu.Unlock()
		waitFor(t, "A saw B restart", func() bool { return len(evA.kinds(EventPeerRestarted)) > 0 })
		for i, m := range after {
			if err := a.Send(ctx, m, afterTxn[i]); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "B got the new stream", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) >= stall+1+len(after)
		})
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		for i, m := range after {
			if g := got[stall+1+i]; g != string(m) {
				t.Fatalf("B's message %d after the restart is %q, want %q", i, g, m)
			}
		}
		if len(got) != stall+1+len(after) {
			t.Fatalf("B got %d messages, want %d", len(got), stall+1+len(after))
		}
	})
}

// TestConnRestartRecv: Recv returns nothing of the old stream after Restart,
// though its queue held plenty.
func TestConnRestartRecv(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := restartLinks()
		b := startConn(t, lb, 2, WithRecvQueue(16))
		var evA eventLog
		a := startConn(t, la, 1, WithEventHandler(evA.add))
		ctx := context.Background()
		old, oldTxn := labelled("old", 100, 0)
		if _, err := a.SendBatch(ctx, old, oldTxn[0]); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "B received the old stream", func() bool { return b.Stats().MessagesDelivered == uint64(len(old)) })
		synctest.Wait() // the Recv queue is full, the deliverer waits on it
		if err := b.Restart(connConfig(2).Epoch + 1); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "A saw B restart", func() bool { return len(evA.kinds(EventPeerRestarted)) > 0 })
		after, afterTxn := labelled("after", 40, 1000)
		for i, m := range after {
			if err := a.Send(ctx, m, afterTxn[i]); err != nil {
				t.Fatal(err)
			}
		}
		for i := range after {
			m, err := b.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if string(m.Data) != string(after[i]) || m.TxnID != afterTxn[i] {
				t.Fatalf("Recv %d after the restart: %q (txn %d), want %q", i, m.Data, m.TxnID, after[i])
			}
		}
	})
}

// TestConnRestartFromHandler: a handler may call Restart (a promotion decided
// on a message); the rest of the old stream's batch is not delivered.
func TestConnRestartFromHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := restartLinks()
		var mu sync.Mutex
		var got []string
		var a *Conn
		restartErr := make(chan error, 1)
		a, err := NewConn(la, connConfig(1), WithHandler(func(m Message) {
			mu.Lock()
			got = append(got, string(m.Data))
			mu.Unlock()
			if string(m.Data) == "promote" {
				restartErr <- a.Restart(connConfig(1).Epoch + 1)
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		var evB eventLog
		b := startConn(t, lb, 2, WithEventHandler(evB.add))
		ctx := context.Background()
		if _, err := b.SendBatch(ctx, [][]byte{[]byte("m0"), []byte("promote"), []byte("m2"), []byte("m3")}, 1); err != nil {
			t.Fatal(err)
		}
		if err := <-restartErr; err != nil {
			t.Fatal(err)
		}
		waitFor(t, "B saw A restart", func() bool { return len(evB.kinds(EventPeerRestarted)) > 0 })
		if err := b.Send(ctx, []byte("after"), 2); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "A got the new stream's message", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) >= 3
		})
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(got) != "[m0 promote after]" {
			t.Errorf("A got %v, want m0, promote, then only the new stream's message", got)
		}
	})
}

func TestConnRestartClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := NewMemPair(1500, Faults{}, Faults{}, 1)
		defer lb.Close()
		a, err := NewConn(la, connConfig(1))
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		if err := a.Restart(connConfig(1).Epoch + 1); !errors.Is(err, ErrConnClosed) {
			t.Errorf("Restart after Close: %v", err)
		}
	})
}

// TestAddCountersCoversEveryCounter: SessionStats.addCounters, which keeps a
// Conn's counters across Restart, adds every counter field; a counter added
// later and forgotten there fails this.
func TestAddCountersCoversEveryCounter(t *testing.T) {
	var one, sum SessionStats
	fillCounters(&one)
	sum.addCounters(&one)
	sum.addCounters(&one)
	checkCounters(t, &sum, 2)
}

// gauges are the uint64 fields of SessionStats that are not counters.
var gauges = map[string]bool{"PeerNodeID": true}

func fillCounters(st *SessionStats) {
	v := reflect.ValueOf(st).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case gauges[v.Type().Field(i).Name]:
		case f.Kind() == reflect.Uint64:
			f.SetUint(1)
		case f.Kind() == reflect.Array && f.Type().Elem().Kind() == reflect.Uint64:
			for j := range f.Len() {
				f.Index(j).SetUint(1)
			}
		}
	}
}

func checkCounters(t *testing.T, st *SessionStats, want uint64) {
	t.Helper()
	v := reflect.ValueOf(st).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch {
		case gauges[name]:
		case f.Kind() == reflect.Uint64:
			if f.Uint() != want {
				t.Errorf("%s = %d, want %d: addCounters misses it", name, f.Uint(), want)
			}
		case f.Kind() == reflect.Array && f.Type().Elem().Kind() == reflect.Uint64:
			for j := range f.Len() {
				if f.Index(j).Uint() != want {
					t.Errorf("%s[%d] = %d, want %d: addCounters misses it", name, j, f.Index(j).Uint(), want)
				}
			}
		}
	}
}

// restartLinks is the in-memory pair these tests run over: no faults, and a
// little delay, so that frames are in flight when a side restarts.
func restartLinks() (*MemLink, *MemLink) {
	d := Faults{Delay: 100 * time.Microsecond}
	return NewMemPair(1500, d, d, 1)
}

// startConn starts node id's Conn over l, closed when the test ends.
func startConn(t *testing.T, l Link, id uint64, opts ...ConnOption) *Conn {
	t.Helper()
	c, err := NewConn(l, connConfig(id), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

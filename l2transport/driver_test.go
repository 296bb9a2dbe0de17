package l2transport

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swha/swha/l2transport/linktest"
)

func connConfig(node uint64) SessionConfig {
	cfg := baseConfig(node, uint32(node*10))
	cfg.MaxPDU = 0 // from the link
	return cfg
}

// TestConnOverFaultyMemLink runs two Conns over a lossy, reordering MemLink in
// a synctest bubble: real goroutines and timers, fake time.
func TestConnOverFaultyMemLink(t *testing.T) {
	linktest.RunSeeds(t, nil, func(t *testing.T, seed uint64) {
		n := 3000
		if raceEnabled {
			n = 600
		}
		synctest.Test(t, func(t *testing.T) {
			f := Faults{Loss: 0.05, Duplicate: 0.02, Reorder: 0.02, Corrupt: 0.01, Delay: 200 * time.Microsecond, Jitter: 100 * time.Microsecond}
			la, lb := NewMemPair(1500, f, f, seed)
			rng := rand.New(rand.NewPCG(seed, 7))
			msgs := make([][]byte, n)
			for i := range msgs {
				size := 1 + rng.IntN(200)
				if rng.IntN(20) == 0 {
					size = 1 + rng.IntN(100_000)
				}
				msgs[i] = make([]byte, size)
				for j := range msgs[i] {
					msgs[i][j] = byte(rng.Uint32())
				}
			}
			stream := linktest.NewStream(msgs, nil)
			var events sync.Map
			b, err := NewConn(lb, connConfig(2), WithHandler(func(m Message) { stream.Deliver(m.Data, m.TxnID) }),
				WithEventHandler(func(ev Event) { events.Store(ev.Kind, true) }))
			if err != nil {
				t.Fatal(err)
			}
			a, err := NewConn(la, connConfig(1))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for i, m := range msgs {
				if err := a.Send(ctx, m, uint64(i)); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			select {
			case <-stream.Done():
			case <-time.After(5 * time.Minute): // fake time: a stall fails fast, with figures
				t.Fatalf("seed %d: %d of %d delivered; A %+v; B %+v", seed, stream.Got(), n, a.Stats(), b.Stats())
			}
			b.Close()
			stream.Check(t)
			if _, ok := events.Load(EventEstablished); !ok {
				t.Error("no Established event")
			}
			st := a.Stats()
			ls := la.Stats()
			t.Logf("A: %d frames, %d retransmits, SRTT %v; link: lost %d dup %d corrupt %d reordered %d", st.FramesSent, st.Retransmits, st.SRTT, ls.Lost, ls.Duplicated, ls.Corrupted, ls.Reordered)
			if ls.Lost == 0 || st.Retransmits == 0 {
				t.Error("faults were configured but nothing was lost or retransmitted")
			}
			a.Close()
			if err := a.Send(ctx, []byte("x"), 0); !errors.Is(err, ErrConnClosed) {
				t.Errorf("Send after Close: %v", err)
			}
		})
	})
}

// TestConnBackpressure: a receiver that does not read makes Send block, and
// honour its context, instead of queueing without bound.
func TestConnBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := NewMemPair(1500, Faults{Delay: 100 * time.Microsecond}, Faults{Delay: 100 * time.Microsecond}, 1)
		b, err := NewConn(lb, connConfig(2), WithRecvQueue(16))
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewConn(la, connConfig(1))
		if err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, 1000)
		var sent int
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := a.Send(ctx, msg, 0)
			cancel()
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("send: %v", err)
				}
				break
			}
			sent++
			if sent > 100_000 {
				t.Fatal("Send never blocked on a receiver that does not read")
			}
		}
		st := a.Stats()
		if st.QueuedBytes > baseConfig(1, 1).SendBuffer {
			t.Fatalf("queued %d bytes", st.QueuedBytes)
		}
		// Reading drains everything that was accepted.
		for i := range sent {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := b.Recv(ctx); err != nil {
				t.Fatalf("recv %d of %d: %v", i, sent, err)
			}
			cancel()
		}
		t.Logf("%d messages accepted before Send blocked; %d queued bytes", sent, st.QueuedBytes)
		a.Close()
		b.Close()
	})
}

func TestMemLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewMemPair(100, Faults{Delay: time.Millisecond}, Faults{}, 1)
		b.SetQueueLen(4)
		buf := []byte("hello")
		if n, err := a.WriteBatch([][]byte{buf, buf, buf, buf, buf, buf}); n != 6 || err != nil {
			t.Fatalf("write: %d %v", n, err)
		}
		buf[0] = 'j' // the link copied
		pkts := make([]Packet, 8)
		for i := range pkts {
			pkts[i].Buf = make([]byte, 100)
		}
		start := time.Now()
		n, err := b.ReadBatch(pkts)
		if err != nil || n != 4 || string(pkts[0].Buf[:pkts[0].N]) != "hello" {
			t.Fatalf("read: %d %v %q", n, err, pkts[0].Buf[:pkts[0].N])
		}
		if d := time.Since(start); d != time.Millisecond {
			t.Errorf("delivered after %v, want the 1ms delay", d)
		}
		if st := b.Stats(); st.RingDrops != 2 || st.Received != 4 {
			t.Errorf("stats %+v, want 2 ring drops and 4 received", st)
		}
		// Oversize.
		if _, err := a.WriteBatch([][]byte{make([]byte, 101)}); !errors.Is(err, ErrPDUTooLarge) {
			t.Errorf("oversize write: %v", err)
		}
		// Partition.
		a.SetPartitioned(true)
		a.WriteBatch([][]byte{buf})
		if st := a.Stats(); st.PartitionDrops != 1 {
			t.Errorf("partition drops %d", st.PartitionDrops)
		}
		a.SetPartitioned(false)
		linktest.DeadlineAndClose(t, b, pkts, buf, ErrClosed)
		a.Close()
	})
}

// TestConnSendBatch: SendBatch delivers every message once, in order, also
// when it has to wait for send-buffer space half-way through a batch, and
// reports how far it got when it gives up.
func TestConnSendBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := NewMemPair(1500, Faults{Delay: 100 * time.Microsecond}, Faults{Delay: 100 * time.Microsecond}, 1)
		cfg := connConfig(1)
		cfg.SendBuffer = 64 << 10 // a batch of 256 KiB must block and resume
		var got [][]byte
		done := make(chan struct{})
		const n = 4096
		b, err := NewConn(lb, connConfig(2), WithHandler(func(m Message) {
			got = append(got, append([]byte(nil), m.Data...))
			if len(got) == n {
				close(done)
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewConn(la, cfg)
		if err != nil {
			t.Fatal(err)
		}
		msgs := numbered(n)
		for i := 0; i < n; i += 1024 {
			k, err := a.SendBatch(context.Background(), msgs[i:i+1024], 7)
			if k != 1024 || err != nil {
				t.Fatalf("SendBatch = %d, %v", k, err)
			}
		}
		<-done
		for i := range got {
			if !bytes.Equal(got[i], msgs[i]) {
				t.Fatalf("message %d differs", i)
			}
		}
		// Too large a message stops the batch there.
		big := make([]byte, cfg.SendBuffer+DefaultMaxMessage)
		if k, err := a.SendBatch(context.Background(), [][]byte{msgs[0], big, msgs[1]}, 0); k != 1 || !errors.Is(err, ErrMessageTooLarge) {
			t.Errorf("SendBatch with an oversize message = %d, %v; want 1, ErrMessageTooLarge", k, err)
		}
		a.Close()
		if k, err := a.SendBatch(context.Background(), msgs[:2], 0); k != 0 || !errors.Is(err, ErrConnClosed) {
			t.Errorf("SendBatch after Close = %d, %v", k, err)
		}
		b.Close()
	})
}

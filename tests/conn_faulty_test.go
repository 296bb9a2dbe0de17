//go:build linux

package tests

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/swha/swha/internal/netnstest"
	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/l2transport/linktest"
)

// randomMessages returns n messages of 1 B to maxLarge bytes, mostly small:
// 90% up to 300 B, 9% up to 64 KiB (a few frames), 1% up to maxLarge (hundreds
// of frames at MTU 1500).
func randomMessages(seed uint64, n, maxLarge int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 11))
	msgs := make([][]byte, n)
	for i := range msgs {
		var size int
		switch r := rng.IntN(100); {
		case r == 0:
			size = 1 + rng.IntN(maxLarge)
		case r < 10:
			size = 1 + rng.IntN(64<<10)
		default:
			size = 1 + rng.IntN(300)
		}
		if i == n/2 {
			size = maxLarge // at least one message of the largest size
		}
		msgs[i] = make([]byte, size)
		for j := 0; j < size; j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < size; k++ {
				msgs[i][j+k] = byte(v >> (8 * k))
			}
		}
	}
	return msgs
}

// TestConnAFPacketFaults sends thousands of random messages between two
// namespaces over raw AF_PACKET, at MTU 1500 and 9000, over a perfect veth and
// with loss, duplication and reordering injected in both directions by
// FaultyLink: every message must arrive exactly once, in order, byte-identical.
func TestConnAFPacketFaults(t *testing.T) {
	netnstest.Require(t)
	linktest.RunSeeds(t, []uint64{1}, testConnAFPacketFaults)
}

func testConnAFPacketFaults(t *testing.T, seed uint64) {
	msgs := randomMessages(seed, e2eMessages, e2eMaxLarge)
	var total int
	for _, m := range msgs {
		total += len(m)
	}
	t.Logf("%d messages, %d bytes", len(msgs), total)
	scenarios := []struct {
		name string
		f    l2transport.Faults
	}{
		{"lossless", l2transport.Faults{}},
		{"loss=5pct", l2transport.Faults{Loss: 0.05, Duplicate: 0.01, Reorder: 0.01}},
		{"loss=20pct", l2transport.Faults{Loss: 0.20, Duplicate: 0.02, Reorder: 0.02}},
	}
	for _, mtu := range []int{1500, 9000} {
		t.Run(fmt.Sprintf("mtu=%d", mtu), func(t *testing.T) {
			p := netnstest.NewPair(t, netnstest.Config{MTU: mtu})
			for i, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					s := seed + uint64(mtu) + uint64(i)
					la, lb := faultyPair(t, p, sc.f, s)
					exchange(t, la, lb, msgs, s)
				})
			}
		})
	}
}

// exchange sends msgs from a Conn on la to a Conn on lb in random runs through
// Send and SendBatch, and checks the delivered stream.
func exchange(t *testing.T, la, lb *l2transport.FaultyLink, msgs [][]byte, seed uint64) {
	t.Helper()
	// Plan the sends first: runs of 1 to 32 messages, each run one Send or one
	// SendBatch, and one transaction ID per run (its first index), as the
	// receiver must see them.
	type run struct {
		start, n int
		batch    bool
	}
	rng := rand.New(rand.NewPCG(seed, 5))
	var plan []run
	txn := make([]uint64, len(msgs))
	for i := 0; i < len(msgs); {
		r := run{start: i, n: 1, batch: rng.IntN(2) == 0}
		if r.batch {
			r.n = min(1+rng.IntN(32), len(msgs)-i)
		}
		for j := i; j < i+r.n; j++ {
			txn[j] = uint64(i)
		}
		plan = append(plan, r)
		i += r.n
	}
	// A fence message follows, sent once all the messages are in, with A's
	// faults off and its held-back frames (delayed duplicates, reordered
	// frames) flushed: every frame A wrote before is then ahead of the fence
	// on the wire, so a late duplicate would be delivered before the fence,
	// rather than within a sleep that may or may not be long enough. B is
	// closed once the fence is in, and nothing is delivered after that.
	fence := []byte("fence")
	want := append(msgs[:len(msgs):len(msgs)], fence)
	fenceTxn := uint64(len(msgs))
	stream := linktest.NewStream(want, func(i int) uint64 {
		if i == len(msgs) {
			return fenceTxn
		}
		return txn[i]
	})
	b, err := l2transport.NewConn(lb, sessionConfig(2), l2transport.WithHandler(func(m l2transport.Message) {
		stream.Deliver(m.Data, m.TxnID)
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := l2transport.NewConn(la, sessionConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	for _, r := range plan {
		if !r.batch {
			if err := a.Send(ctx, msgs[r.start], uint64(r.start)); err != nil {
				t.Fatalf("seed %d: send %d: %v", seed, r.start, err)
			}
			continue
		}
		k, err := a.SendBatch(ctx, msgs[r.start:r.start+r.n], uint64(r.start))
		if k != r.n || err != nil {
			t.Fatalf("seed %d: send batch of %d at %d: %d, %v", seed, r.n, r.start, k, err)
		}
	}
	wait := func(ch <-chan struct{}, what string) {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("seed %d: %s: %d of %d delivered; A %+v; B %+v", seed, what, stream.Got(), len(msgs), a.Stats(), b.Stats())
		}
	}
	wait(stream.Delivered(len(msgs)), "messages")
	elapsed := time.Since(start)
	la.SetFaults(l2transport.Faults{})
	if err := la.Flush(); err != nil {
		t.Fatalf("flush held frames: %v", err)
	}
	if err := a.Send(ctx, fence, fenceTxn); err != nil {
		t.Fatalf("send the fence: %v", err)
	}
	wait(stream.Done(), "fence")
	b.Close() // no delivery after it returns
	stream.Check(t)
	if n := b.Stats().MessagesDelivered; n != uint64(len(want)) {
		t.Fatalf("seed %d: B's session delivered %d messages, want %d", seed, n, len(want))
	}
	as, fs := a.Stats(), la.Stats()
	t.Logf("%v: A sent %d frames, %d retransmits (%d fast, %d timeouts), SRTT %v; link lost %d dup %d reordered %d",
		elapsed.Round(time.Millisecond), as.DataFramesSent, as.Retransmits, as.FastRetransmits, as.Timeouts, as.SRTT,
		fs.Lost, fs.Duplicated, fs.Reordered)
}

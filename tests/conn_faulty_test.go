//go:build linux

package tests

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/tests/internal/netnstest"
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
	seed := testSeed(t)
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
	var (
		mu   sync.Mutex
		got  int
		bad  error
		done = make(chan struct{})
	)
	b, err := l2transport.NewConn(lb, sessionConfig(2), l2transport.WithHandler(func(m l2transport.Message) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case bad != nil:
		case got >= len(msgs):
			bad = fmt.Errorf("message %d delivered beyond the %d sent (a duplicate)", got, len(msgs))
		case m.TxnID != txn[got]:
			bad = fmt.Errorf("message %d has transaction %d, want %d: lost, duplicated or reordered", got, m.TxnID, txn[got])
		case !bytes.Equal(m.Data, msgs[got]):
			bad = fmt.Errorf("message %d (%d bytes) differs from the %d bytes sent", got, len(m.Data), len(msgs[got]))
		}
		got++
		if got == len(msgs) {
			close(done)
		}
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
	select {
	case <-done:
	case <-ctx.Done():
		mu.Lock()
		n := got
		mu.Unlock()
		t.Fatalf("seed %d: %d of %d delivered; A %+v; B %+v", seed, n, len(msgs), a.Stats(), b.Stats())
	}
	elapsed := time.Since(start)
	// Give a late duplicate the chance to show up before judging.
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if bad != nil {
		t.Fatalf("seed %d: %v", seed, bad)
	}
	if got != len(msgs) {
		t.Fatalf("seed %d: %d messages delivered, want %d", seed, got, len(msgs))
	}
	as, fs := a.Stats(), la.Stats()
	t.Logf("%v: A sent %d frames, %d retransmits (%d fast, %d timeouts), SRTT %v; link lost %d dup %d reordered %d",
		elapsed.Round(time.Millisecond), as.DataFramesSent, as.Retransmits, as.FastRetransmits, as.Timeouts, as.SRTT,
		fs.Lost, fs.Duplicated, fs.Reordered)
}

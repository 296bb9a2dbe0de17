//go:build linux

package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swha/swha/frame"
	"github.com/swha/swha/internal/netnstest"
	"github.com/swha/swha/l2transport"
)

// authMode is one way of protecting the HA link, as a Session key ring per
// node (nil: no key).
type authMode struct {
	name string
	ring func(node uint64) *frame.Keyring
}

// authModes are the modes BenchmarkAuthModes compares: no key, HMAC and AEAD,
// the last two with per-node keys (node 1 signs with key 1, node 2 with key 2,
// each bound to its node), as a deployment that uses them runs.
func authModes(tb testing.TB) []authMode {
	secrets := map[uint32][]byte{1: []byte("authmodes-bench-node-1-secret"), 2: []byte("authmodes-bench-node-2-secret")}
	ring := func(newRing func(uint32, map[uint32][]byte, ...frame.KeyringOption) (*frame.Keyring, error)) func(uint64) *frame.Keyring {
		return func(node uint64) *frame.Keyring {
			kr, err := newRing(uint32(node), secrets, frame.BindNode(1, 1), frame.BindNode(2, 2))
			if err != nil {
				tb.Fatal(err)
			}
			return kr
		}
	}
	return []authMode{
		{"plain", func(uint64) *frame.Keyring { return nil }},
		{"hmac", ring(frame.NewKeyring)},
		{"aead", ring(frame.NewAEADKeyring)},
	}
}

// BenchmarkAuthModes: Session bulk throughput (1 MiB messages, one way) at MTU
// 9000 over AF_PACKET on one veth between two namespaces, with no key, HMAC and
// AEAD. Each iteration runs SWHA_BENCH_ROUNDS rounds (default 3) of the three
// modes, alternating (plain, hmac, aead, then the reverse order, and so on),
// each a fresh Conn pair streaming for SWHA_BENCH_DURATION (2 s), so that a
// change in the machine's speed lands on every mode alike. Plain is the
// baseline: hmac-ratio-vs-plain and aead-ratio-vs-plain are each mode's
// throughput over plain's, summed over the rounds (targets: HMAC ≥ 0.7,
// AEAD ≥ 0.5).
//
//	sudo go test ./tests/ -run '^$' -bench AuthModes -benchtime=1x
func BenchmarkAuthModes(b *testing.B) {
	const mtu = 9000
	rounds := 3
	if v := os.Getenv("SWHA_BENCH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("SWHA_BENCH_ROUNDS=%q: want a positive integer", v)
		}
		rounds = n
	}
	p := netnstest.NewPair(b, netnstest.Config{MTU: mtu, NICLike: benchNICLike(b)})
	modes := authModes(b)
	pin, d := connBenchPin(b, noPin), benchDuration(b)
	msg := [][]byte{make([]byte, bulkMsg)}
	totals := make([]bulkResult, len(modes))
	perRound := make([][]string, len(modes))
	run := func(i int) {
		m := modes[i]
		cb := newConnBench(b, p, l2transport.Faults{}, 1, func(c *l2transport.SessionConfig) {
			c.Keyring = m.ring(c.LocalNodeID)
		})
		r := cb.stream(b, msg, d, pin)
		as, bs := cb.a.Stats(), cb.b.Stats()
		// Every frame must have verified: a refusal here is a codec or
		// configuration bug, not noise.
		for e, n := range bs.DecodeErrors {
			if n > 0 {
				b.Fatalf("%s: B refused %d frames: %v (%s)", m.name, n, frame.Error(e), cb.diag())
			}
		}
		for e, n := range as.DecodeErrors {
			if n > 0 {
				b.Fatalf("%s: A refused %d frames: %v", m.name, n, frame.Error(e))
			}
		}
		cb.a.Close()
		cb.b.Close()
		totals[i].add(r)
		perRound[i] = append(perRound[i], fmt.Sprintf("%.0f", r.mbps()))
		b.Logf("%s: %.0f MB/s, %.2f cpu-s/GB, %d retransmits", m.name, r.mbps(), cpuPerGB(r.cpu, r.bytes), as.Retransmits)
	}
	b.ResetTimer()
	for range b.N {
		for round := range rounds {
			for k := range modes {
				i := k
				if round%2 == 1 {
					i = len(modes) - 1 - k
				}
				run(i)
			}
		}
	}
	b.StopTimer()
	plain := totals[0].mbps()
	for i, m := range modes {
		b.ReportMetric(totals[i].mbps(), m.name+"-MB/s")
		if !p.NICLike {
			b.ReportMetric(cpuPerGB(totals[i].cpu, totals[i].bytes), m.name+"-cpu-s/GB")
		}
		if i > 0 {
			b.ReportMetric(totals[i].mbps()/plain, m.name+"-ratio-vs-plain")
		}
	}
	var parts []string
	for i, m := range modes {
		parts = append(parts, m.name+" "+strings.Join(perRound[i], "/"))
	}
	b.Logf("%s, mtu %d, %d×%v per mode: MB/s by round: %s", pin, mtu, rounds*b.N, d.Round(time.Millisecond), strings.Join(parts, "; "))
}

// TestAuthModesOverAFPacket: in each mode, a Conn pair over AF_PACKET links
// that learn their peer (no PeerMAC: the learner verifies frames with the
// session's ring and must leave them intact for it) carries messages with no
// frame refused; with the keyed modes, a frame signed with B's key that claims
// A's node ID is refused at A with ErrKeyNode and counted.
func TestAuthModesOverAFPacket(t *testing.T) {
	p := netnstest.NewPair(t, netnstest.Config{MTU: 9000})
	for _, m := range authModes(t) {
		t.Run(m.name, func(t *testing.T) {
			ra, rb := m.ring(1), m.ring(2)
			la := openAFPacket(t, p.A, l2transport.AFPacketConfig{Keyring: ra, PeerNodeID: 2})
			lb := openAFPacket(t, p.B, l2transport.AFPacketConfig{Keyring: rb, PeerNodeID: 1})
			got := make(chan []byte, 16)
			ca, cb := sessionConfig(1), sessionConfig(2)
			ca.Keyring, cb.Keyring = ra, rb
			b, err := l2transport.NewConn(lb, cb, l2transport.WithHandler(func(msg l2transport.Message) {
				got <- append([]byte(nil), msg.Data...)
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			a, err := l2transport.NewConn(la, ca)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			big := make([]byte, 100_000) // fragmented at MTU 9000, trailer included
			for i := range big {
				big[i] = byte(i * 7)
			}
			for i, msg := range [][]byte{[]byte("route 10.0.0.0/8 via 192.0.2.1"), big} {
				if err := a.Send(ctx, msg, uint64(i+1)); err != nil {
					t.Fatal(err)
				}
				select {
				case g := <-got:
					if !bytes.Equal(g, msg) {
						t.Fatalf("message %d: %d bytes differ", i, len(g))
					}
				case <-ctx.Done():
					t.Fatalf("message %d not delivered: A %+v", i, a.Stats())
				}
			}
			for name, st := range map[string]l2transport.SessionStats{"A": a.Stats(), "B": b.Stats()} {
				for e, n := range st.DecodeErrors {
					if n > 0 {
						t.Fatalf("%s refused %d frames: %v", name, n, frame.Error(e))
					}
				}
			}
			if rb == nil {
				return
			}
			// B's key holder speaks as A (node 1) to A.
			h := frame.Header{Type: frame.TypeData, NodeID: 1, Epoch: 1, Flags: frame.FlagLastFragment}
			forged, err := frame.NewCodec(rb).Append(nil, &h, []byte("forged"))
			if err != nil {
				t.Fatal(err)
			}
			// From a link of its own on B's interface: lb is the Conn's, and a
			// Link has one writer.
			inj := openAFPacket(t, p.B, l2transport.AFPacketConfig{PeerMAC: p.A.MAC})
			if _, err := inj.WriteBatch([][]byte{forged}); err != nil {
				t.Fatal(err)
			}
			for a.Stats().DecodeErrors[frame.ErrKeyNode] == 0 {
				if ctx.Err() != nil {
					t.Fatalf("forged frame not refused with ErrKeyNode: %v", a.Stats().DecodeErrors)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

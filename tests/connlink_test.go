//go:build linux

package tests

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swha/swha/internal/netnstest"
	"github.com/swha/swha/l2transport"
)

// faultyPair opens AFPacketLinks in A and B (each told the other's MAC, so no
// discovery broadcast) and wraps both in FaultyLinks with faults f, so that
// data and acks are both mistreated. Zero faults still wrap, so that lossless
// and lossy runs take the same code path.
func faultyPair(tb testing.TB, p *netnstest.Pair, f l2transport.Faults, seed uint64) (a, b *l2transport.FaultyLink) {
	tb.Helper()
	la := openAFPacket(tb, p.A, l2transport.AFPacketConfig{PeerMAC: p.B.MAC, NoQdiscBypass: p.NICLike})
	lb := openAFPacket(tb, p.B, l2transport.AFPacketConfig{PeerMAC: p.A.MAC, NoQdiscBypass: p.NICLike})
	return l2transport.NewFaultyLink(la, f, seed), l2transport.NewFaultyLink(lb, f, seed^0x9e3779b97f4a7c15)
}

func sessionConfig(node uint64) l2transport.SessionConfig {
	return l2transport.SessionConfig{LocalNodeID: node, Epoch: uint32(node)}
}

// cpuTime is the process's user+system CPU time so far. On veth the receive
// path runs in the sender's syscall, so both directions' kernel work lands here.
func cpuTime(tb testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPerGB is CPU seconds per 10^9 bytes moved.
func cpuPerGB(cpu time.Duration, bytes int64) float64 {
	if bytes <= 0 {
		return 0
	}
	return cpu.Seconds() / (float64(bytes) / 1e9)
}

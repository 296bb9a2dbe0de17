package swha

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/objstore"
)

type testHop struct {
	Addr  netip.Addr
	Iface string
}

type testRoute struct {
	Prefix      netip.Prefix
	NextHop     *testHop
	Backups     []*testHop
	Metric      uint32
	Communities []uint32
}

type testConfig struct {
	Hostname string
	ASN      uint32
}

type testNote struct{ Text string }

// Unsupported has a field kind the store cannot replicate.
type testUnsupported struct {
	Name string
	C    chan int
}

func testRegistry(t testing.TB) *objstore.Registry {
	t.Helper()
	r := objstore.NewRegistry()
	for name, proto := range map[string]any{"hop": testHop{}, "route": testRoute{}, "config": testConfig{}, "note": testNote{}} {
		if err := r.Register(name, proto); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SWHA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

type testPair struct {
	act, sby *Node
	la, lb   *l2transport.MemLink
	actCfg   *testConfig
	sbyCfg   *testConfig
}

type pairOpts struct {
	faults      l2transport.Faults
	seed        uint64
	mode        CommitMode
	window      int
	maxTxnBytes int
	sizeHint    int
	session     l2transport.SessionConfig
	// registry builds each node's registry (default testRegistry), e.g.
	// arenaTestRegistry.
	registry func(testing.TB) *objstore.Registry
}

// newTestPair starts an active and a standby node over an in-memory link,
// each with a static "config" object, and waits for the standby to be
// streaming.
func newTestPair(t testing.TB, o pairOpts) *testPair {
	t.Helper()
	la, lb := l2transport.NewMemPair(1500, o.faults, o.faults, o.seed)
	p := &testPair{la: la, lb: lb, actCfg: &testConfig{}, sbyCfg: &testConfig{}}
	reg := o.registry
	if reg == nil {
		reg = testRegistry
	}
	mk := func(l *l2transport.MemLink, id uint64, role Role, cfg *testConfig) *Node {
		n, err := NewNode(Config{
			Link: l, Registry: reg(t), NodeID: id, Epoch: 1, Role: role,
			Mode: o.mode, Window: o.window, MaxTxnBytes: o.maxTxnBytes, SizeHint: o.sizeHint, Session: o.session,
			Logger: testLogger(t), Statics: map[string]any{"config": cfg},
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	p.act = mk(la, 1, Active, p.actCfg)
	p.sby = mk(lb, 2, Standby, p.sbyCfg)
	t.Cleanup(func() { p.close() })
	p.waitStreaming(t)
	return p
}

func (p *testPair) close() {
	p.act.Close()
	p.sby.Close()
}

// waitStreaming waits until the standby has applied a snapshot of the
// active's current state and acknowledged it.
func (p *testPair) waitStreaming(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg(), 30*time.Second)
	defer cancel()
	if err := p.act.WaitSynced(ctx); err != nil {
		t.Fatalf("standby never caught up: %v\nactive %+v\nstandby %+v", err, p.act.Stats(), p.sby.Stats())
	}
}

func bg() context.Context { return context.Background() }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func pfx(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
}

func hopAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }

//go:build linux

// Package netnstest builds throwaway network topologies for end-to-end tests and
// benchmarks: two network namespaces joined by a veth pair, helpers to run code
// inside a namespace and to pin goroutines to CPUs, and TCP baselines measured
// over the same veth so swha's figures have something to be compared with.
//
// The namespaces are anonymous: nothing is bind-mounted under /var/run/netns and
// no host interface is touched, so names never collide between parallel tests,
// and if the test process dies the kernel destroys the namespaces, and the veth
// pair with them, as soon as the last file descriptor to them is gone.
package netnstest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// RequireEnv names the environment variable that turns a missing privilege from
// a skip into a failure, for CI jobs that are meant to run the namespace tests.
const RequireEnv = "SWHA_REQUIRE_NETNS"

// Config describes a Pair. The zero value is usable.
type Config struct {
	MTU    int          // veth MTU; 0 means 1500
	IfName string       // interface name, the same in both namespaces; "" means "swha0"
	AddrA  netip.Prefix // address of A's end; invalid means 10.99.0.1/24
	AddrB  netip.Prefix // address of B's end; invalid means 10.99.0.2/24

	// NICLike makes each veth end receive on a CPU of its own and push back
	// on a full transmit ring, as a NIC does (see makeNICLike). AF_PACKET
	// senders must then not bypass the qdisc, or a full ring drops frames.
	NICLike bool
}

// NS is one end of a Pair: a network namespace and its veth interface.
type NS struct {
	Label  string           // "A" or "B", for messages
	IfName string           // the veth end inside this namespace
	Addr   netip.Addr       // its IPv4 address
	MAC    net.HardwareAddr // its MAC address
	MTU    int

	handle netns.NsHandle
}

// Pair is two namespaces joined by a veth pair.
type Pair struct {
	A, B    *NS
	NICLike bool // as configured: AF_PACKET senders must keep the qdisc
}

// Require skips tb, or fails it when SWHA_REQUIRE_NETNS=1, unless the process
// can create network namespaces (in practice: runs as root).
func Require(tb testing.TB) {
	tb.Helper()
	if err := canCreateNetns(); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			tb.Fatalf("cannot create network namespaces (%v) and %s=1 requires them: run as root", err, RequireEnv)
		}
		tb.Skipf("needs root to create network namespaces (%v); run as root, or set %s=1 to make this a failure", err, RequireEnv)
	}
}

func canCreateNetns() error {
	if os.Geteuid() != 0 {
		return errors.New("not root")
	}
	var h netns.NsHandle
	err := onLockedThread(func() (bool, error) {
		orig, err := netns.Get()
		if err != nil {
			return true, err
		}
		defer orig.Close()
		h, err = netns.New()
		if err != nil {
			// unshare failed, so the thread never left orig.
			return true, err
		}
		err = netns.Set(orig)
		return err == nil, err
	})
	if h.IsOpen() {
		h.Close()
	}
	return err
}

// NewPair creates two namespaces joined by a veth pair configured per cfg, with
// the interfaces and loopback up and addressed. Everything is released in
// tb.Cleanup, also when setup fails half-way.
func NewPair(tb testing.TB, cfg Config) *Pair {
	tb.Helper()
	Require(tb)
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.IfName == "" {
		cfg.IfName = "swha0"
	}
	if !cfg.AddrA.IsValid() {
		cfg.AddrA = netip.MustParsePrefix("10.99.0.1/24")
	}
	if !cfg.AddrB.IsValid() {
		cfg.AddrB = netip.MustParsePrefix("10.99.0.2/24")
	}
	p := &Pair{
		A:       &NS{Label: "A", IfName: cfg.IfName, Addr: cfg.AddrA.Addr(), MTU: cfg.MTU},
		B:       &NS{Label: "B", IfName: cfg.IfName, Addr: cfg.AddrB.Addr(), MTU: cfg.MTU},
		NICLike: cfg.NICLike,
	}
	err := onLockedThread(func() (bool, error) {
		orig, err := netns.Get()
		if err != nil {
			return true, err
		}
		defer orig.Close()
		// netns.New moves this thread into the namespace it creates, so the
		// thread must be moved back before it can be reused.
		var nerr error
		for _, n := range []*NS{p.A, p.B} {
			if n.handle, nerr = netns.New(); nerr != nil {
				nerr = fmt.Errorf("new netns: %w", nerr)
				break
			}
		}
		if err := netns.Set(orig); err != nil {
			return false, errors.Join(nerr, fmt.Errorf("back to the original netns: %w", err))
		}
		return true, nerr
	})
	// Closing the handles destroys the namespaces, and the veth pair with them.
	tb.Cleanup(func() {
		for _, n := range []*NS{p.A, p.B} {
			if n.handle.IsOpen() {
				n.handle.Close()
			}
		}
	})
	if err != nil {
		tb.Fatalf("netnstest: %v", err)
	}
	if err := p.setup(cfg); err != nil {
		tb.Fatalf("netnstest: %v", err)
	}
	return p
}

func (p *Pair) setup(cfg Config) error {
	ha, err := netlink.NewHandleAt(p.A.handle)
	if err != nil {
		return fmt.Errorf("netlink handle in A: %w", err)
	}
	defer ha.Close()
	hb, err := netlink.NewHandleAt(p.B.handle)
	if err != nil {
		return fmt.Errorf("netlink handle in B: %w", err)
	}
	defer hb.Close()

	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: cfg.IfName, MTU: cfg.MTU},
		PeerName:      cfg.IfName,
		PeerNamespace: netlink.NsFd(p.B.handle),
	}
	if err := ha.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s (MTU %d): %w", cfg.IfName, cfg.MTU, err)
	}
	for _, x := range []struct {
		n    *NS
		h    *netlink.Handle
		addr netip.Prefix
	}{{p.A, ha, cfg.AddrA}, {p.B, hb, cfg.AddrB}} {
		lo, err := x.h.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("%s: lo: %w", x.n.Label, err)
		}
		if err := x.h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("%s: lo up: %w", x.n.Label, err)
		}
		l, err := x.h.LinkByName(cfg.IfName)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", x.n.Label, cfg.IfName, err)
		}
		if l.Attrs().MTU != cfg.MTU {
			return fmt.Errorf("%s: %s: MTU is %d, want %d", x.n.Label, cfg.IfName, l.Attrs().MTU, cfg.MTU)
		}
		x.n.MAC = l.Attrs().HardwareAddr
		ipn := &net.IPNet{IP: x.addr.Addr().AsSlice(), Mask: net.CIDRMask(x.addr.Bits(), x.addr.Addr().BitLen())}
		if err := x.h.AddrAdd(l, &netlink.Addr{IPNet: ipn}); err != nil {
			return fmt.Errorf("%s: add %s to %s: %w", x.n.Label, x.addr, cfg.IfName, err)
		}
		if err := x.h.LinkSetUp(l); err != nil {
			return fmt.Errorf("%s: %s up: %w", x.n.Label, cfg.IfName, err)
		}
	}
	if cfg.NICLike {
		for _, n := range []*NS{p.A, p.B} {
			err := onLockedThread(func() (bool, error) {
				// makeNICLike leaves the thread in its own mount namespace:
				// never clean, so the runtime discards it.
				if err := netns.Set(n.handle); err != nil {
					return false, fmt.Errorf("enter: %w", err)
				}
				h, err := netlink.NewHandle()
				if err != nil {
					return false, err
				}
				defer h.Close()
				return false, makeNICLike(h, cfg.IfName)
			})
			if err != nil {
				return fmt.Errorf("%s: NIC-like veth: %w", n.Label, err)
			}
		}
	}
	// The carrier of a veth comes up when both ends are up, but operstate
	// follows through linkwatch, which may lag by up to a second; wait for it
	// so the first test packet is not racing it.
	for _, x := range []struct {
		n *NS
		h *netlink.Handle
	}{{p.A, ha}, {p.B, hb}} {
		if err := waitOperUp(x.h, cfg.IfName, 3*time.Second); err != nil {
			return fmt.Errorf("%s: %w", x.n.Label, err)
		}
	}
	return nil
}

func waitOperUp(h *netlink.Handle, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		l, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if s := l.Attrs().OperState; s == netlink.OperUp || s == netlink.OperUnknown {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: operstate still %v after %v", name, l.Attrs().OperState, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Do runs fn on an OS thread switched into n's namespace and waits for it.
// Sockets fn creates stay in n's namespace and may be used from any goroutine
// afterwards; goroutines fn starts do not inherit the namespace.
func (n *NS) Do(fn func() error) error {
	return onLockedThread(func() (bool, error) {
		orig, err := netns.Get()
		if err != nil {
			return true, fmt.Errorf("netns %s: get current: %w", n.Label, err)
		}
		defer orig.Close()
		if err := netns.Set(n.handle); err != nil {
			return true, fmt.Errorf("netns %s: enter: %w", n.Label, err)
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			return false, errors.Join(ferr, fmt.Errorf("netns %s: leave: %w", n.Label, err))
		}
		return true, ferr
	})
}

// onLockedThread runs fn in a new goroutine locked to its OS thread and waits for
// it. fn reports whether it left the thread as it found it (in its original
// namespace); if not, the goroutine exits still locked and the runtime discards
// the thread rather than let another goroutine run in the wrong namespace.
func onLockedThread(fn func() (clean bool, err error)) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		clean, err := fn()
		if clean {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Handle is n's namespace, for code under test that takes one
// (netlink.NewHandleAt, a package's namespace option). It stays n's: do not
// close it.
func (n *NS) Handle() netns.NsHandle { return n.handle }

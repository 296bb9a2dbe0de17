//go:build linux

package vip

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/swha/swha/internal/netnstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A host behind the pair holds a stale MAC for the gateway address (the
// dead active's). Acquire on the new active must make it switch at once,
// for IPv4 and IPv6, and Release must take the addresses away again.
func TestAcquireMovesHostsNeighbour(t *testing.T) {
	p := netnstest.NewPair(t, netnstest.Config{})
	ifname := p.A.IfName
	v4 := netip.MustParsePrefix("10.99.0.100/24")
	v6 := netip.MustParsePrefix("fd00:99::100/64")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	ha, err := netlink.NewHandleAt(p.A.Handle())
	must(t, err)
	defer ha.Close()
	hb, err := netlink.NewHandleAt(p.B.Handle())
	must(t, err)
	defer hb.Close()
	la, err := ha.LinkByName(ifname)
	must(t, err)
	lb, err := hb.LinkByName(ifname)
	must(t, err)
	mac := la.Attrs().HardwareAddr
	must(t, hb.AddrAdd(lb, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("fd00:99::2/64")), Flags: unix.IFA_F_NODAD}))
	// The host's kernel ignores an ARP update within locktime (1 s) of the
	// entry's last change; the entry below is that change.
	must(t, p.B.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/neigh/"+ifname+"/locktime", []byte("0"), 0o644)
	}))
	old := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	for _, a := range []netip.Addr{v4.Addr(), v6.Addr()} {
		must(t, hb.NeighSet(&netlink.Neigh{LinkIndex: lb.Attrs().Index, Family: family(a), State: netlink.NUD_STALE,
			IP: a.AsSlice(), HardwareAddr: old}))
	}

	m, err := New(Config{Addresses: []Address{{ifname, v4}, {ifname, v6}}, Namespace: p.A.Handle(), Spacing: 10 * time.Millisecond})
	must(t, err)
	defer m.Close()
	must(t, m.Acquire(ctx))
	if st := m.Stats(); !st.Held || st.Announcements != 2*DefaultCount || st.Errors != 0 {
		t.Fatalf("stats after Acquire: %+v", st)
	}
	for _, pf := range []netip.Prefix{v4, v6} {
		if !hasAddr(t, ha, la, pf) {
			t.Fatalf("%s not on %s after Acquire", pf, ifname)
		}
		// The kernel applies the frame when it receives it: poll, bounded.
		for {
			got := neighMAC(t, hb, lb, pf.Addr())
			if bytes.Equal(got, mac) {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("the host's neighbour entry for %s is still %s, want %s", pf.Addr(), got, mac)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	// Acquire again (a restart while active): nothing changes, no error.
	must(t, m.Acquire(ctx))
	must(t, m.Release())
	for _, pf := range []netip.Prefix{v4, v6} {
		if hasAddr(t, ha, la, pf) {
			t.Fatalf("%s still on %s after Release", pf, ifname)
		}
	}
	must(t, m.Release()) // already gone: not an error
	if st := m.Stats(); st.Held || st.Errors != 0 {
		t.Fatalf("stats after Release: %+v", st)
	}
}

// An address on a missing interface fails Acquire with an error naming it,
// and the others are still added and announced.
func TestAcquireNamesMissingInterface(t *testing.T) {
	p := netnstest.NewPair(t, netnstest.Config{})
	good := netip.MustParsePrefix("10.99.0.101/24")
	m, err := New(Config{Addresses: []Address{{"nosuch0", netip.MustParsePrefix("10.98.0.1/24")}, {p.A.IfName, good}},
		Namespace: p.A.Handle(), Count: 1})
	must(t, err)
	defer m.Close()
	err = m.Acquire(context.Background())
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("10.98.0.1/24 on nosuch0")) {
		t.Fatalf("Acquire: %v, want an error naming the address and interface", err)
	}
	ha, err := netlink.NewHandleAt(p.A.Handle())
	must(t, err)
	defer ha.Close()
	la, err := ha.LinkByName(p.A.IfName)
	must(t, err)
	if !hasAddr(t, ha, la, good) {
		t.Fatal("the good address was not added")
	}
	if st := m.Stats(); st.Announcements != 1 {
		t.Fatalf("announcements %d, want 1 (the good address)", st.Announcements)
	}
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func hasAddr(t *testing.T, h *netlink.Handle, l netlink.Link, p netip.Prefix) bool {
	t.Helper()
	as, err := h.AddrList(l, family(p.Addr()))
	must(t, err)
	for _, a := range as {
		ones, _ := a.Mask.Size()
		if a.IP.Equal(p.Addr().AsSlice()) && ones == p.Bits() {
			return true
		}
	}
	return false
}

func neighMAC(t *testing.T, h *netlink.Handle, l netlink.Link, a netip.Addr) net.HardwareAddr {
	t.Helper()
	ns, err := h.NeighList(l.Attrs().Index, family(a))
	must(t, err)
	for _, n := range ns {
		if n.IP.Equal(a.AsSlice()) {
			return n.HardwareAddr
		}
	}
	return nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
func TestNewRejects(t *testing.T) {
	p := netip.MustParsePrefix("192.0.2.1/24")
	for _, c := range []struct {
		name string
		as   []Address
		want string
	}{
		{"no-interface", []Address{{Prefix: p}}, "no interface"},
		{"no-address", []Address{{Interface: "eth2"}}, "no address"},
		{"multicast", []Address{{Interface: "eth2", Prefix: netip.MustParsePrefix("ff02::1/64")}}, "not a unicast"},
		{"twice", []Address{{Interface: "eth2", Prefix: p}, {Interface: "eth3", Prefix: p}}, "listed twice"},
	} {
		_, err := New(Config{Addresses: c.as})
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

//go:build linux

package netnstest

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// Veth is a further veth pair between the namespaces of a Pair (AddVeth), for
// a second path such as a management network.
type Veth struct {
	IfName       string     // the interface name, the same in both namespaces
	AddrA, AddrB netip.Addr // A's and B's addresses on it
}

// AddVeth adds a veth pair named ifname between p's namespaces, addressed
// addrA in A and addrB in B, brings it up and waits for its carrier. It goes
// with the namespaces.
func (p *Pair) AddVeth(tb testing.TB, ifname string, addrA, addrB netip.Prefix) *Veth {
	tb.Helper()
	ha, err := netlink.NewHandleAt(p.A.handle)
	if err != nil {
		tb.Fatalf("netnstest: netlink handle in A: %v", err)
	}
	defer ha.Close()
	hb, err := netlink.NewHandleAt(p.B.handle)
	if err != nil {
		tb.Fatalf("netnstest: netlink handle in B: %v", err)
	}
	defer hb.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: ifname, MTU: 1500},
		PeerName:      ifname,
		PeerNamespace: netlink.NsFd(p.B.handle),
	}
	if err := ha.LinkAdd(veth); err != nil {
		tb.Fatalf("netnstest: add veth %s: %v", ifname, err)
	}
	for _, x := range []struct {
		label string
		h     *netlink.Handle
		addr  netip.Prefix
	}{{"A", ha, addrA}, {"B", hb, addrB}} {
		l, err := x.h.LinkByName(ifname)
		if err != nil {
			tb.Fatalf("netnstest: %s: %s: %v", x.label, ifname, err)
		}
		ipn := &net.IPNet{IP: x.addr.Addr().AsSlice(), Mask: net.CIDRMask(x.addr.Bits(), x.addr.Addr().BitLen())}
		if err := x.h.AddrAdd(l, &netlink.Addr{IPNet: ipn}); err != nil {
			tb.Fatalf("netnstest: %s: add %s to %s: %v", x.label, x.addr, ifname, err)
		}
		if err := x.h.LinkSetUp(l); err != nil {
			tb.Fatalf("netnstest: %s: %s up: %v", x.label, ifname, err)
		}
	}
	for _, x := range []struct {
		label string
		h     *netlink.Handle
	}{{"A", ha}, {"B", hb}} {
		if err := waitOperUp(x.h, ifname, 3*time.Second); err != nil {
			tb.Fatalf("netnstest: %s: %v", x.label, err)
		}
	}
	return &Veth{IfName: ifname, AddrA: addrA.Addr(), AddrB: addrB.Addr()}
}

// SetLinkUp sets the interface ifname of n's namespace administratively up
// or down (ip link set dev ifname up|down). Setting one end of a veth down
// takes the carrier of both ends down.
func (n *NS) SetLinkUp(ifname string, up bool) error {
	h, err := netlink.NewHandleAt(n.handle)
	if err != nil {
		return fmt.Errorf("netns %s: netlink handle: %w", n.Label, err)
	}
	defer h.Close()
	l, err := h.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("netns %s: %s: %w", n.Label, ifname, err)
	}
	if up {
		err = h.LinkSetUp(l)
	} else {
		err = h.LinkSetDown(l)
	}
	if err != nil {
		return fmt.Errorf("netns %s: set %s up=%v: %w", n.Label, ifname, up, err)
	}
	return nil
}

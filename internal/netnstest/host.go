//go:build linux

package netnstest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Host is a namespace behind both switches of a Pair, as a host on a LAN
// that both switches attach to: a bridge br0 in the host's namespace joins
// a veth to A (named LANIf in A) and one to B (LANIf in B). Its address is
// on br0 and its default route goes via Gateway (the pair's virtual
// address, typically).
type Host struct {
	*NS
	LANIf string // the interface name of this LAN in A and in B
}

// AddHost creates the namespace of a host named label, joined to A and B
// by its LAN (interface lanIf in each switch, addressed addrA and addrB),
// with addr on the host's bridge and a default route via gw. The switches
// get IPv4 forwarding on. It goes in tb.Cleanup.
func (p *Pair) AddHost(tb testing.TB, label, lanIf string, addrA, addrB, addr netip.Prefix, gw netip.Addr) *Host {
	tb.Helper()
	h := &Host{NS: &NS{Label: label, IfName: "br0", Addr: addr.Addr(), MTU: 1500}, LANIf: lanIf}
	err := onLockedThread(func() (bool, error) {
		orig, err := netns.Get()
		if err != nil {
			return true, err
		}
		defer orig.Close()
		var nerr error
		if h.handle, nerr = netns.New(); nerr != nil {
			nerr = fmt.Errorf("new netns: %w", nerr)
		}
		if err := netns.Set(orig); err != nil {
			return false, errors.Join(nerr, fmt.Errorf("back to the original netns: %w", err))
		}
		return true, nerr
	})
	tb.Cleanup(func() {
		if h.handle.IsOpen() {
			h.handle.Close()
		}
	})
	if err == nil {
		err = p.setupHost(h, addrA, addrB, addr, gw)
	}
	if err != nil {
		tb.Fatalf("netnstest: host %s: %v", label, err)
	}
	return h
}

func (p *Pair) setupHost(h *Host, addrA, addrB, addr netip.Prefix, gw netip.Addr) error {
	hh, err := netlink.NewHandleAt(h.handle)
	if err != nil {
		return err
	}
	defer hh.Close()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	if err := hh.LinkAdd(br); err != nil {
		return fmt.Errorf("add bridge: %w", err)
	}
	for _, sw := range []struct {
		n    *NS
		end  string
		addr netip.Prefix
	}{{p.A, "to" + p.A.Label, addrA}, {p.B, "to" + p.B.Label, addrB}} {
		hs, err := netlink.NewHandleAt(sw.n.handle)
		if err != nil {
			return err
		}
		defer hs.Close()
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: sw.end, MTU: 1500},
			PeerName: h.LANIf, PeerNamespace: netlink.NsFd(sw.n.handle)}
		if err := hh.LinkAdd(veth); err != nil {
			return fmt.Errorf("veth to %s: %w", sw.n.Label, err)
		}
		l, err := hh.LinkByName(sw.end)
		if err != nil {
			return err
		}
		if err := hh.LinkSetMaster(l, br); err != nil {
			return fmt.Errorf("%s into br0: %w", sw.end, err)
		}
		if err := hh.LinkSetUp(l); err != nil {
			return err
		}
		sl, err := hs.LinkByName(h.LANIf)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", sw.n.Label, h.LANIf, err)
		}
		if err := hs.AddrAdd(sl, &netlink.Addr{IPNet: prefixNet(sw.addr)}); err != nil {
			return fmt.Errorf("%s: address %s: %w", sw.n.Label, sw.addr, err)
		}
		if err := hs.LinkSetUp(sl); err != nil {
			return err
		}
		if err := sw.n.Do(func() error {
			return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
		}); err != nil {
			return fmt.Errorf("%s: ip_forward: %w", sw.n.Label, err)
		}
	}
	for _, name := range []string{"lo", "br0"} {
		l, err := hh.LinkByName(name)
		if err != nil {
			return err
		}
		if err := hh.LinkSetUp(l); err != nil {
			return fmt.Errorf("%s up: %w", name, err)
		}
	}
	l, err := hh.LinkByName("br0")
	if err != nil {
		return err
	}
	h.MAC = l.Attrs().HardwareAddr
	if err := hh.AddrAdd(l, &netlink.Addr{IPNet: prefixNet(addr)}); err != nil {
		return fmt.Errorf("address %s: %w", addr, err)
	}
	if err := waitOperUp(hh, "br0", 5*time.Second); err != nil {
		return err
	}
	if gw.IsValid() {
		if err := hh.RouteAdd(&netlink.Route{Gw: gw.AsSlice(), LinkIndex: l.Attrs().Index}); err != nil {
			return fmt.Errorf("default route via %s: %w", gw, err)
		}
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

//go:build linux

// Package vip moves virtual addresses to the active switch: at promotion
// swhad adds them to their interfaces and announces them (gratuitous ARP,
// unsolicited neighbour advertisements), at demotion it removes them, and
// after a split brain heals the active announces them again — hosts behind
// the pair keep their gateway with no keepalived beside swhad.
package vip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Address is one virtual address: Prefix's address with Prefix's length on
// the interface named Interface.
type Address struct {
	Interface string
	Prefix    netip.Prefix
}

func (a Address) String() string { return a.Prefix.String() + " on " + a.Interface }

// Defaults.
const (
	// DefaultCount is Config.Count when zero: as keepalived's
	// garp_master_repeat, a few frames so that one lost does not matter.
	DefaultCount = 3
	// DefaultSpacing is Config.Spacing when zero.
	DefaultSpacing = 100 * time.Millisecond
)

// Config configures a Manager.
type Config struct {
	Addresses []Address
	// Count announcements per address each time (default DefaultCount),
	// Spacing apart (default DefaultSpacing).
	Count   int
	Spacing time.Duration
	// NotRouter clears the router flag of the IPv6 advertisements: set it
	// when the addresses are not the hosts' gateway.
	NotRouter bool
	// Namespace, if set (netns.NsHandle > 0), is the network namespace the
	// interfaces are in (a container, a test); default: the caller's.
	Namespace netns.NsHandle
	Logger    *slog.Logger
}

// Stats counts what a Manager did.
type Stats struct {
	Held          bool   // the addresses are on their interfaces (Acquire until Release)
	Announcements uint64 // frames sent
	Errors        uint64 // failed adds, removals and sends
}

// Manager adds, announces and removes the virtual addresses. Its methods
// are for one goroutine at a time (the daemon's role handler); Stats may be
// read from any.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	nl   *netlink.Handle
	held atomic.Bool
	sent atomic.Uint64
	errs atomic.Uint64
}

// New checks cfg and opens a netlink handle in its namespace.
func New(cfg Config) (*Manager, error) {
	seen := map[netip.Addr]bool{}
	for i, a := range cfg.Addresses {
		switch {
		case a.Interface == "":
			return nil, fmt.Errorf("vip: address %d (%s): no interface", i, a.Prefix)
		case !a.Prefix.IsValid():
			return nil, fmt.Errorf("vip: address %d on %s: no address", i, a.Interface)
		case a.Prefix.Addr().Is4In6() || a.Prefix.Addr().IsUnspecified() || a.Prefix.Addr().IsMulticast():
			return nil, fmt.Errorf("vip: address %s: not a unicast address", a)
		case seen[a.Prefix.Addr()]:
			return nil, fmt.Errorf("vip: address %s: listed twice", a)
		}
		seen[a.Prefix.Addr()] = true
	}
	if cfg.Count <= 0 {
		cfg.Count = DefaultCount
	}
	if cfg.Spacing <= 0 {
		cfg.Spacing = DefaultSpacing
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var nl *netlink.Handle
	var err error
	if cfg.Namespace > 0 {
		nl, err = netlink.NewHandleAt(cfg.Namespace)
	} else {
		nl, err = netlink.NewHandle()
	}
	if err != nil {
		return nil, fmt.Errorf("vip: netlink: %w", err)
	}
	return &Manager{cfg: cfg, log: log, nl: nl}, nil
}

// Close closes the netlink handle; it leaves the addresses as they are.
func (m *Manager) Close() { m.nl.Close() }

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	return Stats{Held: m.held.Load(), Announcements: m.sent.Load(), Errors: m.errs.Load()}
}

// Acquire adds every address to its interface (a replace: idempotent, and
// an address already there, say from before a restart, is fine), then
// announces them. IPv6 addresses skip duplicate address detection: the
// peer that held them is gone or about to drop them, and DAD would keep
// the address unusable for a second or more. It goes on past a failed
// address and returns every failure.
func (m *Manager) Acquire(ctx context.Context) error {
	var errs []error
	for _, a := range m.cfg.Addresses {
		if err := m.add(a); err != nil {
			m.errs.Add(1)
			errs = append(errs, err)
		}
	}
	m.held.Store(true)
	errs = append(errs, m.Announce(ctx))
	return errors.Join(errs...)
}

func (m *Manager) add(a Address) error {
	l, err := m.nl.LinkByName(a.Interface)
	if err != nil {
		return fmt.Errorf("vip: add %s: %w", a, err)
	}
	addr := &netlink.Addr{IPNet: ipNet(a.Prefix)}
	if a.Prefix.Addr().Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := m.nl.AddrReplace(l, addr); err != nil {
		return fmt.Errorf("vip: add %s: %w", a, err)
	}
	m.log.Info("virtual address added", "address", a.Prefix, "interface", a.Interface)
	return nil
}

// Release removes every address from its interface; one already gone is
// not an error.
func (m *Manager) Release() error {
	var errs []error
	for _, a := range m.cfg.Addresses {
		l, err := m.nl.LinkByName(a.Interface)
		if err == nil {
			err = m.nl.AddrDel(l, &netlink.Addr{IPNet: ipNet(a.Prefix)})
		}
		if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENODEV) {
			err = nil
		}
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			err = nil
		}
		if err != nil {
			m.errs.Add(1)
			errs = append(errs, fmt.Errorf("vip: remove %s: %w", a, err))
			continue
		}
		m.log.Info("virtual address removed", "address", a.Prefix, "interface", a.Interface)
	}
	m.held.Store(false)
	return errors.Join(errs...)
}

// Announce sends Count announcements of every address, Spacing apart: after
// Acquire, and again when a split brain heals (the hosts may have learnt the
// other side's MAC meanwhile). It returns early, with ctx's error, when ctx
// ends.
func (m *Manager) Announce(ctx context.Context) error {
	type out struct {
		conn  *packet.Conn
		frame []byte
		dst   net.HardwareAddr
	}
	var outs []out
	var errs []error
	conns := map[string]*packet.Conn{}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, a := range m.cfg.Addresses {
		c, mac, err := m.conn(conns, a.Interface)
		var f []byte
		var dst net.HardwareAddr
		if err == nil {
			f, dst, err = Announcement(mac, a.Prefix.Addr(), !m.cfg.NotRouter)
		}
		if err != nil {
			m.errs.Add(1)
			errs = append(errs, fmt.Errorf("vip: announce %s: %w", a, err))
			continue
		}
		outs = append(outs, out{c, f, dst})
	}
	for i := range m.cfg.Count {
		if i > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(append(errs, ctx.Err())...)
			case <-time.After(m.cfg.Spacing):
			}
		}
		for _, o := range outs {
			if _, err := o.conn.WriteTo(o.frame, &packet.Addr{HardwareAddr: o.dst}); err != nil {
				m.errs.Add(1)
				errs = append(errs, fmt.Errorf("vip: announce: send: %w", err))
				continue
			}
			m.sent.Add(1)
		}
	}
	return errors.Join(errs...)
}

// conn returns a raw packet socket bound to the interface named name, made
// in the manager's namespace, and the interface's MAC.
func (m *Manager) conn(conns map[string]*packet.Conn, name string) (*packet.Conn, net.HardwareAddr, error) {
	l, err := m.nl.LinkByName(name)
	if err != nil {
		return nil, nil, err
	}
	at := l.Attrs()
	if c := conns[name]; c != nil {
		return c, at.HardwareAddr, nil
	}
	ifi := &net.Interface{Index: at.Index, Name: at.Name, HardwareAddr: at.HardwareAddr, MTU: at.MTU}
	var c *packet.Conn
	err = m.inNamespace(func() error {
		// Protocol 0: a socket that sends and receives nothing.
		var err error
		c, err = packet.Listen(ifi, packet.Raw, 0, nil)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("packet socket on %s: %w", name, err)
	}
	conns[name] = c
	return c, at.HardwareAddr, nil
}

// inNamespace runs fn on an OS thread in the manager's namespace: a socket
// belongs to the namespace of the thread that made it.
func (m *Manager) inNamespace(fn func() error) error {
	if m.cfg.Namespace <= 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(m.cfg.Namespace); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Left locked: the runtime retires the thread rather than let
			// another goroutine run in the wrong namespace.
			errc <- errors.Join(ferr, fmt.Errorf("leave netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

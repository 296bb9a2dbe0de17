//go:build linux

package heartbeat

import (
	"context"
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

	"github.com/swha/swha/frame"
	"github.com/swha/swha/l2transport"
)

// requireEnv turns a missing privilege from a skip into a failure (CI sets it).
const requireEnv = "SWHA_REQUIRE_NETNS"

// vethPair is two anonymous network namespaces joined by a veth pair named
// vethName in both, a small twin of internal/netnstest written when that
// lived under tests/ (heartbeat could not import it then); the namespaces die
// with their handles.
type vethPair struct {
	a, b netns.NsHandle
}

const vethName = "hb0"

func requireNetns(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv(requireEnv) == "1" {
			tb.Fatalf("not root and %s=1 requires the network namespace tests: run as root", requireEnv)
		}
		tb.Skipf("needs root to create network namespaces and raw sockets; run as root, or set %s=1 to make this a failure", requireEnv)
	}
}

func newVethPair(tb testing.TB) *vethPair {
	tb.Helper()
	requireNetns(tb)
	p := &vethPair{}
	err := onThread(func() (bool, error) {
		orig, err := netns.Get()
		if err != nil {
			return true, err
		}
		defer orig.Close()
		var nerr error
		if p.a, nerr = netns.New(); nerr == nil {
			p.b, nerr = netns.New()
		}
		if err := netns.Set(orig); err != nil {
			return false, errors.Join(nerr, err)
		}
		return true, nerr
	})
	tb.Cleanup(func() {
		for _, h := range []netns.NsHandle{p.a, p.b} {
			if h.IsOpen() {
				h.Close()
			}
		}
	})
	if err != nil {
		tb.Fatalf("new netns: %v", err)
	}
	if err := p.setup(); err != nil {
		if os.Getenv(requireEnv) != "1" && errors.Is(err, os.ErrPermission) {
			tb.Skipf("cannot build a veth pair: %v", err)
		}
		tb.Fatalf("veth: %v", err)
	}
	return p
}

func (p *vethPair) setup() error {
	ha, err := netlink.NewHandleAt(p.a)
	if err != nil {
		return err
	}
	defer ha.Close()
	hb, err := netlink.NewHandleAt(p.b)
	if err != nil {
		return err
	}
	defer hb.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: vethName, MTU: 1500}, PeerName: vethName, PeerNamespace: netlink.NsFd(p.b)}
	if err := ha.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth: %w", err)
	}
	for i, h := range []*netlink.Handle{ha, hb} {
		for _, name := range []string{"lo", vethName} {
			l, err := h.LinkByName(name)
			if err != nil {
				return err
			}
			if name == vethName {
				addr := netip.MustParsePrefix([]string{"10.98.0.1/24", "10.98.0.2/24"}[i])
				ipn := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(24, 32)}
				if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipn}); err != nil {
					return err
				}
			}
			if err := h.LinkSetUp(l); err != nil {
				return err
			}
		}
	}
	// Wait for the carrier: frames sent before it would be lost.
	for _, h := range []*netlink.Handle{ha, hb} {
		for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
			l, err := h.LinkByName(vethName)
			if err != nil {
				return err
			}
			if l.Attrs().RawFlags&(1<<16) != 0 { // IFF_LOWER_UP
				break
			}
			if time.Since(start) > 3*time.Second {
				return errors.New("veth carrier still down after 3 s")
			}
		}
	}
	return nil
}

// do runs fn on a thread in namespace h; sockets it opens stay in h.
func (p *vethPair) do(h netns.NsHandle, fn func() error) error {
	return onThread(func() (bool, error) {
		orig, err := netns.Get()
		if err != nil {
			return true, err
		}
		defer orig.Close()
		if err := netns.Set(h); err != nil {
			return true, err
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			return false, errors.Join(ferr, err)
		}
		return true, ferr
	})
}

// setLink sets the veth end in h up or down.
func (p *vethPair) setLink(h netns.NsHandle, up bool) error {
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return err
	}
	defer nh.Close()
	l, err := nh.LinkByName(vethName)
	if err != nil {
		return err
	}
	if up {
		return nh.LinkSetUp(l)
	}
	return nh.LinkSetDown(l)
}

// onThread runs fn on a locked thread; a thread fn leaves dirty is discarded.
func onThread(fn func() (clean bool, err error)) error {
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

// afpacket opens a link on the veth end in h.
func (p *vethPair) afpacket(tb testing.TB, h netns.NsHandle, cfg l2transport.AFPacketConfig) *l2transport.AFPacketLink {
	tb.Helper()
	cfg.Interface = vethName
	var l *l2transport.AFPacketLink
	err := p.do(h, func() (err error) {
		l, err = l2transport.NewAFPacketLink(cfg)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

var heartbeatOnly = l2transport.AFPacketConfig{FrameTypes: []frame.Type{frame.TypeHeartbeat}}

// TestAFPacketRunner: two runners on kernel-filtered AF_PACKET sockets over veth
// come up, and the death of one takes the other down by detection.
func TestAFPacketRunner(t *testing.T) {
	p := newVethPair(t)
	la, lb := p.afpacket(t, p.a, heartbeatOnly), p.afpacket(t, p.b, heartbeatOnly)
	a, b := runnerPair(t, la, lb, nil)
	awaitKind(t, a, EventUp, time.Time{}, 10*time.Second)
	awaitKind(t, b, EventUp, time.Time{}, 10*time.Second)
	closed := time.Now()
	b.Close()
	if e := awaitKind(t, a, EventDown, closed, 10*time.Second); e.Kind != 0 && e.Diag != DiagDetectExpired && e.Diag != DiagPeerSignalledDown {
		t.Fatalf("down %+v, want detect-time-expired", e)
	}
	if st := a.Stats(); st.RTTSamples == 0 || st.MinRTT <= 0 {
		t.Fatalf("no RTT over veth: %+v", st)
	}
}

// TestAFPacketKernelFilter: with two links on one interface, the heartbeat link
// sees only heartbeats and the one excluding them sees everything else.
func TestAFPacketKernelFilter(t *testing.T) {
	p := newVethPair(t)
	hbA := p.afpacket(t, p.a, heartbeatOnly)
	restA := p.afpacket(t, p.a, l2transport.AFPacketConfig{ExcludeFrameTypes: []frame.Type{frame.TypeHeartbeat}})
	tx := p.afpacket(t, p.b, l2transport.AFPacketConfig{})
	var c frame.Codec
	var pdus [][]byte
	for i, typ := range []frame.Type{frame.TypeData, frame.TypeHeartbeat, frame.TypeAck, frame.TypeHeartbeat, frame.TypeData} {
		pdu, err := c.Append(nil, &frame.Header{Type: typ, NodeID: 2, Seq: uint64(i)}, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		pdus = append(pdus, pdu)
	}
	if _, err := tx.WriteBatch(pdus); err != nil {
		t.Fatal(err)
	}
	read := func(l *l2transport.AFPacketLink) []frame.Type {
		var got []frame.Type
		pkts := make([]l2transport.Packet, 8)
		for i := range pkts {
			pkts[i].Buf = make([]byte, 1500)
		}
		for {
			l.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := l.ReadBatch(pkts)
			for i := range n {
				got = append(got, frame.Type(pkts[i].Buf[1]))
			}
			if err != nil {
				return got
			}
		}
	}
	if got := read(hbA); fmt.Sprint(got) != "[Heartbeat Heartbeat]" {
		t.Errorf("heartbeat link got %v", got)
	}
	if got := read(restA); fmt.Sprint(got) != "[Data Ack Data]" {
		t.Errorf("excluding link got %v", got)
	}
}

// TestCarrierVeth: the peer's end of the veth goes down; the carrier watch
// reports it, and the path goes down (carrier-confirmed when the report beats
// the detection time).
func TestCarrierVeth(t *testing.T) {
	p := newVethPair(t)
	la, lb := p.afpacket(t, p.a, heartbeatOnly), p.afpacket(t, p.b, heartbeatOnly)
	a, b := runnerPair(t, la, lb, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := p.do(p.a, func() error { return a.WatchCarrier(ctx, vethName) }); err != nil {
		t.Fatal(err)
	}
	awaitKind(t, a, EventUp, time.Time{}, 10*time.Second)
	awaitKind(t, b, EventUp, time.Time{}, 10*time.Second)
	cut := time.Now()
	if err := p.setLink(p.b, false); err != nil {
		t.Fatal(err)
	}
	e := awaitKind(t, a, EventDown, cut, 10*time.Second)
	t.Logf("down %v after a gap of %v", e.Diag, e.Gap)
	if e.Kind != 0 && e.Diag != DiagCarrierDown && e.Diag != DiagDetectExpired && e.Diag != DiagPeerSignalledDown {
		t.Fatalf("down %+v", e)
	}
	for start := time.Now(); a.Stats().CarrierDowns == 0; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("carrier down never reported")
		}
	}
	healed := time.Now()
	if err := p.setLink(p.b, true); err != nil {
		t.Fatal(err)
	}
	awaitKind(t, a, EventUp, healed, 10*time.Second)
}

// TestUDPRunner: the same runner over a UDP link on loopback (the secondary
// path).
func TestUDPRunner(t *testing.T) {
	ca, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		ca.Close()
		t.Fatal(err)
	}
	la, err := l2transport.NewUDPLink(l2transport.UDPConfig{Conn: ca, Peer: cb.LocalAddr().(*net.UDPAddr).AddrPort()})
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	lb, err := l2transport.NewUDPLink(l2transport.UDPConfig{Conn: cb, Peer: ca.LocalAddr().(*net.UDPAddr).AddrPort()})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	a, b := runnerPair(t, la, lb, nil)
	awaitKind(t, a, EventUp, time.Time{}, 10*time.Second)
	awaitKind(t, b, EventUp, time.Time{}, 10*time.Second)
	closed := time.Now()
	b.Close()
	awaitKind(t, a, EventDown, closed, 10*time.Second)
}

//go:build linux

package l2transport

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// UDP payload limits: a 1500-byte MTU less the IP and UDP headers, and the
// largest datagram IP can carry (used on loopback, whose MTU is 64 KiB).
const (
	udp4MaxPDU         = 1500 - 20 - 8
	udp6MaxPDU         = 1500 - 40 - 8
	udp4LoopbackMaxPDU = 65535 - 20 - 8
	udp6LoopbackMaxPDU = 65535 - 8
)

// UDPConfig configures a UDPLink.
type UDPConfig struct {
	// Local is the address to bind; ignored when Conn is set. A zero port
	// picks an ephemeral one (see UDPLink.LocalAddr).
	Local netip.AddrPort
	// Conn, if set, is an already bound socket to use instead of binding Local,
	// e.g. one opened in a VRF or a network namespace. The link takes it over
	// and closes it on Close.
	Conn *net.UDPConn
	// Peer is the peer's address. The socket is connected to it, so the kernel
	// drops datagrams from anyone else.
	Peer netip.AddrPort
	// MaxPDU is the largest PDU sent in one datagram; zero means 1472 (1452
	// over IPv6), or 65507 (65527) when the peer is a loopback address. Set it
	// to the path MTU less 28 (48) so datagrams are never IP-fragmented.
	MaxPDU int
	// SocketBuffer is the size of each of SO_SNDBUF and SO_RCVBUF; zero means
	// DefaultSocketBuffer. As root the FORCE variants lift the sysctl caps;
	// otherwise the kernel silently caps it at net.core.[rw]mem_max.
	SocketBuffer int
	// BatchSize is the most datagrams per sendmmsg/recvmmsg; zero means
	// DefaultBatchSize.
	BatchSize int
}

// UDPStats counts a UDPLink's traffic since it was opened.
type UDPStats struct {
	FramesIn, BytesIn   uint64
	FramesOut, BytesOut uint64
	ReadSyscalls        uint64
	WriteSyscalls       uint64
	TxDropped           uint64 // refused locally, or reported unreachable by ICMP
}

// UDPLink is a Link carrying one PDU per UDP datagram between two addresses: for
// routed HA links, the secondary heartbeat path, and tests without root.
//
// It batches with sendmmsg/recvmmsg like AFPacketLink, through the same
// allocation-free mmsgOp, rather than with golang.org/x/net/ipv4's
// ReadBatch/WriteBatch: those parse a net.Addr per received datagram (an
// allocation each) and take sync.Pool buffers per call, and a connected socket
// needs no addresses at all.
type UDPLink struct {
	linkCore
	conn  *net.UDPConn
	rc    syscall.RawConn
	local netip.AddrPort
	peer  netip.AddrPort

	tx, rx *mmsgOp // one iovec per message
}

var _ Link = (*UDPLink)(nil)

// NewUDPLink opens a UDP link to cfg.Peer.
func NewUDPLink(cfg UDPConfig) (*UDPLink, error) {
	if !cfg.Peer.IsValid() || cfg.Peer.Port() == 0 {
		return nil, fmt.Errorf("l2transport: udp: peer address %v is not a host:port", cfg.Peer)
	}
	peer := netip.AddrPortFrom(cfg.Peer.Addr().Unmap(), cfg.Peer.Port())
	conn := cfg.Conn
	if conn == nil {
		local := cfg.Local
		if !local.IsValid() {
			local = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
			if peer.Addr().Is6() {
				local = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
			}
		}
		network := "udp4"
		if peer.Addr().Is6() {
			network = "udp6"
		}
		var err error
		conn, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(local))
		if err != nil {
			return nil, fmt.Errorf("l2transport: udp %v: %w", local, err)
		}
	}
	l, err := newUDPLink(conn, peer, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return l, nil
}

func newUDPLink(conn *net.UDPConn, peer netip.AddrPort, cfg UDPConfig) (*UDPLink, error) {
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	maxPDU := cfg.MaxPDU
	if maxPDU <= 0 {
		switch {
		case peer.Addr().IsLoopback() && peer.Addr().Is4():
			maxPDU = udp4LoopbackMaxPDU
		case peer.Addr().IsLoopback():
			maxPDU = udp6LoopbackMaxPDU
		case peer.Addr().Is4():
			maxPDU = udp4MaxPDU
		default:
			maxPDU = udp6MaxPDU
		}
	}
	bufSize := cfg.SocketBuffer
	if bufSize <= 0 {
		bufSize = DefaultSocketBuffer
	}
	batch := cfg.BatchSize
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	batch = min(batch, 1024)
	l := &UDPLink{linkCore: linkCore{name: fmt.Sprintf("udp %v->%v", local, peer), maxPDU: maxPDU, batch: batch},
		conn: conn, local: local, peer: peer}

	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, l.errorf("raw conn: %w", err)
	}
	l.rc = rc
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		for _, o := range [...]struct{ force, plain int }{
			{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF},
			{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF},
		} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o.force, bufSize) != nil {
				if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o.plain, bufSize); err != nil {
					serr = fmt.Errorf("socket buffer %d bytes: %w", bufSize, err)
					return
				}
			}
		}
		// Connecting lets the kernel filter out datagrams from anyone but the
		// peer and skips a route lookup per datagram sent. Go's UDPConn does
		// not know, which is fine: we never use its address-taking methods.
		sa, err := sockaddr(int(fd), peer)
		if err == nil {
			err = unix.Connect(int(fd), sa)
		}
		if err != nil {
			serr = fmt.Errorf("connect to %v: %w", peer, err)
		}
	})
	if cerr != nil {
		return nil, l.errorf("setsockopt: %w", cerr)
	}
	if serr != nil {
		return nil, l.errorf("%w", serr)
	}
	l.tx = newSendOp(rc, batch, 1)
	l.rx = newRecvOp(rc, batch, 1)
	return l, nil
}

// sockaddr converts peer to a sockaddr of the socket's own family: an IPv6
// socket (e.g. one bound to ::) reaches IPv4 peers through v4-mapped addresses.
func sockaddr(fd int, peer netip.AddrPort) (unix.Sockaddr, error) {
	self, err := unix.Getsockname(fd)
	if err != nil {
		return nil, err
	}
	port := int(peer.Port())
	if _, v6 := self.(*unix.SockaddrInet6); !v6 {
		if !peer.Addr().Is4() {
			return nil, fmt.Errorf("IPv6 peer %v for an IPv4 socket", peer)
		}
		return &unix.SockaddrInet4{Port: port, Addr: peer.Addr().As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: port, Addr: peer.Addr().As16()}
	if z := peer.Addr().Zone(); z != "" {
		ifi, err := net.InterfaceByName(z)
		if err != nil {
			return nil, err
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return sa, nil
}

// LocalAddr is the address the link's socket is bound to.
func (l *UDPLink) LocalAddr() netip.AddrPort { return l.local }

// PeerAddr is the address the link sends to and accepts datagrams from.
func (l *UDPLink) PeerAddr() netip.AddrPort { return l.peer }

// MaxPDU is the largest PDU one datagram carries.
func (l *UDPLink) MaxPDU() int { return l.maxPDU }

// SetReadDeadline bounds ReadBatch; the zero time means no deadline.
func (l *UDPLink) SetReadDeadline(t time.Time) error { return l.setReadDeadline(l.conn, t) }

// Close closes the socket; a blocked ReadBatch or WriteBatch returns ErrClosed.
func (l *UDPLink) Close() error {
	if l.closed.Swap(true) {
		return ErrClosed
	}
	if err := l.conn.Close(); err != nil {
		return l.errorf("close: %w", err)
	}
	return nil
}

// Stats returns the link's counters; safe to call concurrently with I/O.
func (l *UDPLink) Stats() UDPStats {
	return UDPStats{
		FramesIn:      l.framesIn.Load(),
		BytesIn:       l.bytesIn.Load(),
		FramesOut:     l.framesOut.Load(),
		BytesOut:      l.bytesOut.Load(),
		ReadSyscalls:  l.rx.calls.Load(),
		WriteSyscalls: l.tx.calls.Load(),
		TxDropped:     l.txDropped.Load(),
	}
}

// WriteBatch sends each PDU as one datagram, up to BatchSize per sendmmsg.
// Datagrams refused locally (ENOBUFS) or reported unreachable by an earlier
// ICMP error (ECONNREFUSED: the peer is not listening yet) count as sent and
// lost, as on any lossy wire; Session retransmits.
func (l *UDPLink) WriteBatch(pdus [][]byte) (int, error) {
	return l.writeBatches(l.tx, pdus, 0, func(errno unix.Errno) errnoAction {
		switch errno {
		case unix.ENOBUFS, unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.ENETDOWN:
			// ICMP errors are reported once, on the next call, so skipping
			// the one datagram that carried the error is enough; routing
			// errors repeat, and each retry costs one syscall per
			// datagram, bounded by len(pdus).
			return errnoSkipOne
		}
		return errnoFail
	})
}

// ReadBatch receives up to len(pkts) PDUs (at most BatchSize per call); see
// Link.ReadBatch.
func (l *UDPLink) ReadBatch(pkts []Packet) (int, error) {
	if l.closed.Load() {
		return 0, ErrClosed
	}
	n := min(len(pkts), l.batch)
	if n == 0 {
		return 0, nil
	}
	for i := range n {
		l.rx.setIov(i, 0, pkts[i].Buf[:cap(pkts[i].Buf)])
	}
	// A pending ICMP error fails one recvmmsg and is then cleared, so this
	// loop runs at most a few times per ICMP message before it blocks.
	for {
		got, errno, err := l.rx.do(n)
		if err != nil {
			return 0, l.ioError("read", err)
		}
		switch errno {
		case 0:
		case unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH:
			continue
		default:
			return 0, l.errorf("recvmmsg: %w", errno)
		}
		var bytes uint64
		for i := range got {
			pkts[i].N = min(l.rx.msgLen(i), cap(pkts[i].Buf))
			bytes += uint64(pkts[i].N)
		}
		l.framesIn.Add(uint64(got))
		l.bytesIn.Add(bytes)
		return got, nil
	}
}

//go:build linux

package l2transport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/swha/swha/frame"
)

// Defaults for AFPacketConfig.
const (
	// DefaultSocketBuffer is the SO_SNDBUF/SO_RCVBUF size asked for. The kernel
	// charges a frame's truesize (about 2.3 KiB for a 1500-byte frame, more for
	// jumbo frames) against the buffer, so 16 MiB holds some 7000 full-size frames:
	// a few milliseconds at line rate, which absorbs a receiver that is briefly
	// descheduled on a busy control-plane CPU.
	DefaultSocketBuffer = 16 << 20
	// MaxRingMTU is the largest MTU for which the link receives through a ring
	// (9216, the usual jumbo maximum): at 64 KiB a 16 MiB ring holds only 128
	// frames, fewer than a socket queue of the same size holds small ones.
	MaxRingMTU = 9216
	// DefaultBatchSize is the most frames moved per sendmmsg/recvmmsg. Past 32-64
	// frames the per-syscall cost is already amortised to noise and larger
	// batches only add latency to the first frame of the next batch.
	DefaultBatchSize = 64
	// DefaultForgetAfter is AFPacketConfig.ForgetAfter when zero: longer than
	// the session's dead interval, so a peer that is only slow is kept.
	DefaultForgetAfter = 3 * time.Second
)

// AFPacketConfig configures an AFPacketLink.
type AFPacketConfig struct {
	// Interface is the name of the network interface of the HA link. For a
	// tagged HA link name the VLAN device (eth1.100), not its parent: the
	// kernel delivers frames of a VLAN that has a device only on that device.
	Interface string
	// EtherType of swha frames; zero means frame.EtherType.
	EtherType uint16
	// PeerMAC, if set, is the peer's MAC address. If nil the link sends to the
	// broadcast address until it has received a valid swha frame, then sends
	// only to that frame's source MAC.
	PeerMAC net.HardwareAddr
	// Keyring, if set, is the key ring the session uses (SessionConfig.
	// Keyring): the link then learns its peer only from a frame that
	// verifies with it, so a forged frame cannot capture the link. Without
	// it any frame with a valid CRC can.
	Keyring *frame.Keyring
	// PeerNodeID, if not zero, is the only node ID (frame header) the link
	// learns its peer from.
	PeerNodeID uint64
	// ForgetAfter is how long a learned peer may stay silent before a valid
	// frame from another source replaces it (a restarted or replaced peer
	// switch, or a link that learned a forger's frame before the real
	// peer's); zero means DefaultForgetAfter, negative never. Frames from
	// other sources meanwhile are counted (AFPacketStats.PeerConflicts).
	ForgetAfter time.Duration
	// SocketBuffer is the size in bytes of each of the socket's send and receive
	// buffers; zero means DefaultSocketBuffer. As root the FORCE variants are
	// used, so net.core.{r,w}mem_max do not cap it.
	SocketBuffer int
	// BatchSize is the most frames per sendmmsg/recvmmsg; zero means
	// DefaultBatchSize and 1 gives one frame per syscall (for comparison).
	BatchSize int
	// NoRxRing receives with recvmmsg instead of through a PACKET_RX_RING
	// (TPACKET_V2) shared with the kernel. The ring is cheaper per frame; its
	// memory, SocketBuffer bytes, is pinned in the kernel for the link's life.
	// Above an MTU of MaxRingMTU the link always uses recvmmsg: ring slots
	// are all MTU-sized, so a ring would hold too few frames.
	NoRxRing bool
	// NoQdiscBypass keeps frames going through the interface's qdisc. By default
	// the link sets PACKET_QDISC_BYPASS, which hands frames straight to the
	// driver: about 30% more frames per second, at the price of no tc shaping
	// and of our own frames not showing in a tcpdump on this host.
	NoQdiscBypass bool
	// FrameTypes, if not empty, makes the kernel's filter accept only swha frames
	// of these types (the type byte at PDU offset 1): a dedicated heartbeat link
	// ([]frame.Type{frame.TypeHeartbeat}) whose frames wait in the kernel's queue
	// for its own reader, not behind another goroutine.
	FrameTypes []frame.Type
	// ExcludeFrameTypes makes the filter drop frames of these types: the
	// session's link on an interface whose heartbeats a dedicated link takes
	// (every packet socket gets its own copy of each frame). At most one of
	// FrameTypes and ExcludeFrameTypes may be set.
	ExcludeFrameTypes []frame.Type
}

// AFPacketStats counts an AFPacketLink's traffic since it was opened. Bytes count
// PDU bytes, without the Ethernet header.
type AFPacketStats struct {
	FramesIn, BytesIn   uint64 // delivered by ReadBatch
	FramesOut, BytesOut uint64 // handed to the kernel by WriteBatch
	ReadSyscalls        uint64 // recvmmsg calls, including those that found nothing; 0 with a receive ring
	ReadWaits           uint64 // times ReadBatch found nothing and parked until the socket signalled
	WriteSyscalls       uint64 // sendmmsg calls
	Ignored             uint64 // received but not delivered: our own source MAC, another source than the peer, invalid before discovery
	PeerConflicts       uint64 // of those, frames from another source than the learned or configured peer
	PeerRelearned       uint64 // times a silent learned peer was replaced by another verified source
	TxDropped           uint64 // refused by the device queue or sent while the link was down
	KernelPackets       uint64 // passed the filter, per PACKET_STATISTICS
	KernelDrops         uint64 // passed the filter but dropped for lack of receive buffer, per PACKET_STATISTICS
}

// AFPacketLink is a Link over a raw AF_PACKET socket on one interface, carrying
// each PDU in one Ethernet II frame of the swha EtherType.
//
// It uses SOCK_RAW rather than SOCK_DGRAM. With a raw socket the Ethernet header
// is ours: sending needs no per-message sockaddr_ll (the bound interface and
// protocol are used) and the header is one 14-byte buffer shared by every iovec
// of a batch, and receiving gives us the source MAC (for discovery and for
// ignoring our own frames) and any inline VLAN tag without asking for ancillary
// data. The PDU itself is never copied in user space: each message is a two-element
// iovec, header then the caller's PDU buffer, in both directions.
//
// Frames are sent in batches with sendmmsg (see mmsgOp). They are received
// through a PACKET_RX_RING (see rxRing) or, with NoRxRing or above MaxRingMTU,
// in batches with recvmmsg; either way on a non-blocking socket in the Go
// netpoller, so an empty queue parks the goroutine and nothing spins.
//
// Sending uses a second socket, bound to the interface with protocol 0 so it
// never receives, kept out of the netpoller and used with blocking sendmmsg.
// The reason is measured: the netpoller registers every socket for EPOLLOUT,
// and the kernel runs the epoll callback for write space each time one of our
// sent frames is freed, i.e. once per frame; on veth that was about 20% of the
// sending CPU. The blocking sendmmsg waits only when the send buffer is full,
// in the kernel, with a timeout (txTimeout), so it neither spins nor outlives
// Close by more than that timeout.
type AFPacketLink struct {
	conn   *packet.Conn    // receives; in the netpoller
	rc     syscall.RawConn // of conn
	txFile *os.File        // sends; a blocking socket outside the netpoller
	linkCore
	ifindex   int
	ifname    string
	local     [6]byte
	etherType uint16
	fixedPeer bool

	// peer is the peer MAC in the low 48 bits with bit 48 set once it is known;
	// zero means unknown. The reader learns it, the writer reads it.
	peer atomic.Uint64

	// The writer goroutine owns tx and txHdr, the reader rx and the rest.
	txRC    syscall.RawConn
	tx      *mmsgOp                       // two iovecs per message: Ethernet header, PDU
	txHdr   [frame.EthernetHeaderLen]byte // shared by every message of a batch
	txPeer  uint64                        // peer value txHdr was built for
	rxMu    sync.Mutex                    // held by ReadBatch; Close takes it before unmapping the ring
	ring    *rxRing                       // nil: recvmmsg
	rx      *mmsgOp                       // two iovecs per message: header scratch, caller's buffer
	rxHdrs  []byte                        // EthernetHeaderLen bytes of scratch per message
	codec   frame.Codec                   // validates frames before the peer is known
	scratch frame.Header

	ignored, rxWaits atomic.Uint64
	// Peer learning (reader only, but for the counters): learnID is the
	// node ID to learn from (0: any), forgetAfter the silence after which
	// another source may replace the peer, lastPeer when the peer was last
	// delivered (per ReadBatch, not per frame: a time.Now per batch).
	learnID              uint64
	forgetAfter          time.Duration
	lastPeer             time.Time
	conflicts, relearned atomic.Uint64

	kmu                    sync.Mutex // PACKET_STATISTICS resets on read, so readings are summed
	kernPackets, kernDrops uint64
	// nl asks for the interface's own counters (InterfaceStats); opened with
	// the socket, so in the same network namespace. Under kmu.
	nl *netlink.Handle
}

// InterfaceStats are the interface's own counters, from the kernel's link
// statistics (what `ip -s link` shows). Beside AFPacketStats they show what
// never reached the link: a flood of frames the kernel's filter dropped
// (another EtherType, another frame type) counts in RxPackets and nowhere
// in the link's counters; drops before any socket (a full device backlog,
// a NIC out of buffers) count in RxDropped and RxMissed.
type InterfaceStats struct {
	RxPackets, RxBytes, RxDropped, RxErrors, RxMissed uint64
	TxPackets, TxBytes, TxDropped, TxErrors           uint64
}

var _ Link = (*AFPacketLink)(nil)

// NewAFPacketLink opens an AF_PACKET link on cfg.Interface. It needs
// CAP_NET_RAW. The interface MTU is read once, here: MaxPDU does not follow
// later MTU changes.
func NewAFPacketLink(cfg AFPacketConfig) (*AFPacketLink, error) {
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("l2transport: afpacket %s: %w", cfg.Interface, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("l2transport: afpacket %s: not an Ethernet interface (hardware address %q)", cfg.Interface, ifi.HardwareAddr)
	}
	maxPDU := ifi.MTU - frame.EthernetHeaderLen
	if maxPDU < frame.MinLen {
		return nil, fmt.Errorf("l2transport: afpacket %s: MTU %d is too small for a %d-byte PDU", cfg.Interface, ifi.MTU, frame.MinLen)
	}
	if cfg.PeerMAC != nil && len(cfg.PeerMAC) != 6 {
		return nil, fmt.Errorf("l2transport: afpacket %s: peer MAC %q is not a 6-byte Ethernet address", cfg.Interface, cfg.PeerMAC)
	}
	et := cfg.EtherType
	if et == 0 {
		et = frame.EtherType
	}
	if et < 0x0600 || et == ethTypeVLAN {
		return nil, fmt.Errorf("l2transport: afpacket %s: EtherType %#04x is a length or a VLAN tag", cfg.Interface, et)
	}
	bufSize := cfg.SocketBuffer
	if bufSize <= 0 {
		bufSize = DefaultSocketBuffer
	}
	batch := cfg.BatchSize
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	// UIO_MAXIOV (1024) bounds vlen for sendmmsg/recvmmsg.
	batch = min(batch, 1024)

	filter, err := etherTypeFilter(et, cfg.FrameTypes, cfg.ExcludeFrameTypes)
	if err != nil {
		return nil, fmt.Errorf("l2transport: afpacket %s: %w", cfg.Interface, err)
	}
	// A filter is attached before bind, so not one foreign frame is queued.
	// With a ring, that first filter drops everything, so that nothing is
	// queued on the socket before the ring exists to take it.
	useRing := !cfg.NoRxRing && ifi.MTU <= MaxRingMTU
	first := filter
	if useRing {
		first = dropAll
	}
	conn, err := packet.Listen(ifi, packet.Raw, int(et), &packet.Config{Filter: first})
	if err != nil {
		return nil, fmt.Errorf("l2transport: afpacket %s: %w", cfg.Interface, err)
	}
	l := &AFPacketLink{
		linkCore:  linkCore{name: "afpacket " + cfg.Interface, maxPDU: maxPDU, batch: batch},
		conn:      conn,
		ifindex:   ifi.Index,
		ifname:    cfg.Interface,
		etherType: et,
	}
	copy(l.local[:], ifi.HardwareAddr)
	l.codec.SetKeyring(cfg.Keyring)
	l.learnID = cfg.PeerNodeID
	l.forgetAfter = cfg.ForgetAfter
	if l.forgetAfter == 0 {
		l.forgetAfter = DefaultForgetAfter
	}
	if cfg.PeerMAC != nil {
		l.peer.Store(macKey(cfg.PeerMAC))
		l.fixedPeer = true
	}
	err = l.setup(bufSize, !cfg.NoQdiscBypass)
	if err == nil {
		if l.nl, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
			err = fmt.Errorf("netlink: %w", err)
		}
	}
	if err == nil && useRing {
		err = l.setupRing(ifi.MTU, bufSize, filter)
	}
	if err != nil {
		conn.Close()
		if l.txFile != nil {
			l.txFile.Close()
		}
		if l.ring != nil {
			l.ring.close()
		}
		if l.nl != nil {
			l.nl.Close()
		}
		return nil, err
	}
	l.initBatches()
	return l, nil
}

// txTimeout bounds each wait for send buffer space, and so how long a writer
// blocked on a full buffer takes to notice Close.
const txTimeout = 100 * time.Millisecond

func (l *AFPacketLink) setup(bufSize int, bypass bool) error {
	rc, err := l.conn.SyscallConn()
	if err != nil {
		return l.errorf("raw conn: %w", err)
	}
	l.rc = rc
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		serr = setBuffer(int(fd), unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, bufSize)
	})
	if err := errors.Join(cerr, serr); err != nil {
		return l.errorf("receive socket: %w", err)
	}

	// The send socket: blocking, bound to the interface with protocol 0 so
	// that it has no receive hook; the kernel takes each frame's protocol
	// from its Ethernet header.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return l.errorf("send socket: %w", err)
	}
	// os.NewFile does not put a blocking fd in the netpoller; the *os.File
	// still reference-counts it, so Close cannot recycle the fd number under
	// a sendmmsg in flight.
	l.txFile = os.NewFile(uintptr(fd), "packet-tx:"+l.ifname)
	tv := unix.NsecToTimeval(txTimeout.Nanoseconds())
	err = errors.Join(
		setBuffer(fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, bufSize),
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv),
		unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: l.ifindex}),
	)
	if err == nil && bypass {
		if err = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			err = fmt.Errorf("PACKET_QDISC_BYPASS: %w", err)
		}
	}
	if err != nil {
		return l.errorf("send socket: %w", err)
	}
	if l.txRC, err = l.txFile.SyscallConn(); err != nil {
		return l.errorf("send socket: %w", err)
	}
	return nil
}

func (l *AFPacketLink) setupRing(mtu, size int, filter []bpf.RawInstruction) error {
	var rerr error
	cerr := l.rc.Control(func(fd uintptr) {
		l.ring, rerr = newRxRing(int(fd), mtu, size)
	})
	if err := errors.Join(cerr, rerr); err != nil {
		return l.errorf("receive ring: %w", err)
	}
	if err := l.conn.SetBPF(filter); err != nil {
		return l.errorf("attach filter: %w", err)
	}
	return nil
}

// dropAll is a BPF program that accepts nothing.
var dropAll = func() []bpf.RawInstruction {
	raw, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		panic("l2transport: assemble the drop-all BPF program: " + err.Error()) // a constant program
	}
	return raw
}()

// setBuffer sets a socket buffer size with the FORCE option, which needs
// CAP_NET_ADMIN, falling back to the plain one, capped by net.core.[rw]mem_max.
func setBuffer(fd, force, plain, size int) error {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size) == nil {
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, size); err != nil {
		return fmt.Errorf("socket buffer of %d bytes: %w", size, err)
	}
	return nil
}

func (l *AFPacketLink) initBatches() {
	l.tx = newBlockingSendOp(l.txRC, l.batch, 2, &l.closed)
	l.rx = newRecvOp(l.rc, l.batch, 2)
	l.rxHdrs = make([]byte, l.batch*frame.EthernetHeaderLen)
	for i := range l.batch {
		l.tx.setIov(i, 0, l.txHdr[:])
		l.rx.setIov(i, 0, l.rxHdrs[i*frame.EthernetHeaderLen:(i+1)*frame.EthernetHeaderLen])
	}
	l.buildHeader(l.peer.Load())
}

// buildHeader rewrites the shared transmit header for peer (zero: broadcast).
func (l *AFPacketLink) buildHeader(peer uint64) {
	var dst [6]byte
	if peer == 0 {
		dst = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	} else {
		dst = macBytes(peer)
	}
	frame.AppendEthernet(l.txHdr[:0], dst[:], l.local[:], l.etherType)
	l.txPeer = peer
}

// SyscallConn is the receiving socket, for a reader that waits for it outside
// the Go netpoller, e.g. with ppoll on a real-time thread: a netpoller wake-up is
// two kernel wake-ups (the thread in epoll_wait, then the reader's locked
// thread), each a scheduling delay on a saturated CPU. Read frames with
// ReadBatch, not from the socket: the link's checks and ring are in ReadBatch.
func (l *AFPacketLink) SyscallConn() (syscall.RawConn, error) { return l.rc, nil }

// RxRing reports whether the link receives through a PACKET_RX_RING.
func (l *AFPacketLink) RxRing() bool { return l.ring != nil }

// MaxPDU is the interface MTU less the Ethernet header.
func (l *AFPacketLink) MaxPDU() int { return l.maxPDU }

// Interface is the name of the link's network interface.
func (l *AFPacketLink) Interface() string { return l.ifname }

// LocalMAC is the interface's MAC address, the source of every frame sent.
func (l *AFPacketLink) LocalMAC() net.HardwareAddr {
	return append(net.HardwareAddr(nil), l.local[:]...)
}

// PeerMAC is the configured or learned peer MAC, nil while it is unknown.
func (l *AFPacketLink) PeerMAC() net.HardwareAddr {
	p := l.peer.Load()
	if p == 0 {
		return nil
	}
	m := macBytes(p)
	return m[:]
}

// ForgetPeer makes a learned peer MAC unknown again: the link goes back to
// broadcasting and learns the source of the next valid frame. Without it a
// learned peer is replaced only once it has been silent for ForgetAfter and
// another source sends a frame that verifies; frames from other sources are
// counted and ignored meanwhile. It does nothing when the peer MAC was
// configured.
func (l *AFPacketLink) ForgetPeer() {
	if !l.fixedPeer {
		l.peer.Store(0)
	}
}

// SetReadDeadline bounds ReadBatch; the zero time means no deadline.
func (l *AFPacketLink) SetReadDeadline(t time.Time) error { return l.setReadDeadline(l.conn, t) }

// Close closes the socket; a blocked ReadBatch or WriteBatch returns ErrClosed.
func (l *AFPacketLink) Close() error {
	if l.closed.Swap(true) {
		return ErrClosed
	}
	err := errors.Join(l.conn.Close(), l.txFile.Close())
	l.kmu.Lock()
	l.nl.Close()
	l.kmu.Unlock()
	// Closing the socket has woken a blocked reader; wait for it to leave
	// before the ring memory goes away under it.
	l.rxMu.Lock()
	if l.ring != nil {
		err = errors.Join(err, l.ring.close())
	}
	l.rxMu.Unlock()
	if err != nil {
		return l.errorf("close: %w", err)
	}
	return nil
}

// InterfaceStats reads the interface's own counters (one netlink request).
// It is safe to call concurrently with I/O.
func (l *AFPacketLink) InterfaceStats() (InterfaceStats, error) {
	l.kmu.Lock()
	defer l.kmu.Unlock()
	if l.closed.Load() {
		return InterfaceStats{}, l.errorf("interface stats: %w", ErrClosed)
	}
	link, err := l.nl.LinkByIndex(l.ifindex)
	if err != nil {
		return InterfaceStats{}, l.errorf("interface stats: %w", err)
	}
	st := link.Attrs().Statistics
	if st == nil {
		return InterfaceStats{}, l.errorf("interface stats: the kernel sent none")
	}
	return InterfaceStats{
		RxPackets: st.RxPackets, RxBytes: st.RxBytes, RxDropped: st.RxDropped, RxErrors: st.RxErrors, RxMissed: st.RxMissedErrors,
		TxPackets: st.TxPackets, TxBytes: st.TxBytes, TxDropped: st.TxDropped, TxErrors: st.TxErrors,
	}, nil
}

// Stats returns the link's counters. It is safe to call concurrently with I/O.
func (l *AFPacketLink) Stats() AFPacketStats {
	s := AFPacketStats{
		FramesIn:      l.framesIn.Load(),
		BytesIn:       l.bytesIn.Load(),
		FramesOut:     l.framesOut.Load(),
		BytesOut:      l.bytesOut.Load(),
		ReadSyscalls:  l.rx.calls.Load(),
		ReadWaits:     l.rxWaits.Load() + l.rx.waits.Load(),
		WriteSyscalls: l.tx.calls.Load(),
		Ignored:       l.ignored.Load(),
		PeerConflicts: l.conflicts.Load(),
		PeerRelearned: l.relearned.Load(),
		TxDropped:     l.txDropped.Load(),
	}
	l.kmu.Lock()
	defer l.kmu.Unlock()
	if !l.closed.Load() {
		if ks, err := l.conn.Stats(); err == nil {
			l.kernPackets += uint64(ks.Packets)
			l.kernDrops += uint64(ks.Drops)
		}
	}
	s.KernelPackets, s.KernelDrops = l.kernPackets, l.kernDrops
	return s
}

// WriteBatch sends each PDU in its own frame, up to BatchSize frames per
// sendmmsg. Frames the device refuses (queue full, interface down) count as
// handed to the medium and dropped, as a lossy wire would drop them; Session
// retransmits and heartbeats notice a dead link. A PDU longer than MaxPDU stops
// the batch with an error.
func (l *AFPacketLink) WriteBatch(pdus [][]byte) (int, error) {
	if p := l.peer.Load(); p != l.txPeer {
		l.buildHeader(p)
	}
	return l.writeBatches(l.tx, pdus, 1, func(errno unix.Errno) errnoAction {
		switch errno {
		case unix.ENOBUFS:
			// The device queue refused this frame: drop it, try the rest.
			return errnoSkipOne
		case unix.ENETDOWN, unix.ENXIO:
			// The interface is down: everything left in this call would
			// fail the same way, like frames sent into an unplugged cable.
			return errnoDropRest
		}
		return errnoFail
	})
}

// ReadBatch receives up to len(pkts) PDUs (at most BatchSize per call with
// recvmmsg), copying each frame's payload into pkts[i].Buf up to its capacity;
// see Link.ReadBatch.
func (l *AFPacketLink) ReadBatch(pkts []Packet) (int, error) {
	l.rxMu.Lock()
	defer l.rxMu.Unlock()
	if l.closed.Load() {
		return 0, ErrClosed
	}
	if len(pkts) == 0 {
		return 0, nil
	}
	if l.ring != nil {
		k, err := l.readRing(pkts)
		if k > 0 {
			l.lastPeer = time.Now()
		}
		return k, err
	}
	n := min(len(pkts), l.batch)
	for i := range n {
		l.rx.setIov(i, 1, pkts[i].Buf[:cap(pkts[i].Buf)])
	}
	// Each pass consumes at least one queued frame, so this loop ends once a
	// frame worth delivering arrives, or on deadline or close.
	for {
		got, errno, err := l.rx.do(n)
		if err != nil {
			return 0, l.ioError("read", err)
		}
		if errno != 0 {
			return 0, l.errorf("recvmmsg: %w", errno)
		}
		if k := l.deliver(pkts, got); k > 0 {
			l.lastPeer = time.Now()
			return k, nil
		}
	}
}

// deliver turns the got frames just received into PDUs in pkts[:k], dropping
// frames not for us and closing up the gaps they leave, and returns k.
func (l *AFPacketLink) deliver(pkts []Packet, got int) int {
	const hl = frame.EthernetHeaderLen
	k := 0
	var bytes uint64
	for i := range got {
		h := l.rxHdrs[i*hl : (i+1)*hl]
		buf := pkts[i].Buf[:cap(pkts[i].Buf)]
		n := l.rx.msgLen(i) - hl
		if n < 0 {
			n = 0
		}
		n = min(n, len(buf))
		if h[12] == ethTypeVLAN>>8 && h[13] == ethTypeVLAN&0xff {
			// An inline tag landed in front of the PDU; the filter has
			// checked the EtherType behind it.
			if n < vlanTagLen {
				l.ignored.Add(1)
				continue
			}
			copy(buf, buf[vlanTagLen:n])
			n -= vlanTagLen
		}
		if !l.accept(h, buf[:n]) {
			l.ignored.Add(1)
			continue
		}
		if k != i {
			n = copy(pkts[k].Buf[:cap(pkts[k].Buf)], buf[:n])
		}
		pkts[k].N = n
		bytes += uint64(n)
		k++
	}
	if k > 0 {
		l.framesIn.Add(uint64(k))
		l.bytesIn.Add(bytes)
	}
	return k
}

// accept decides whether a frame with Ethernet header h and PDU pdu is from our
// peer, learning the peer from it if it is still unknown.
func (l *AFPacketLink) accept(h, pdu []byte) bool {
	src := [6]byte(h[6:12])
	if src == l.local {
		// Our own frame reflected by a loop in the L2 network.
		return false
	}
	key := macKey(src[:])
	peer := l.peer.Load()
	if peer == key {
		return true
	}
	if peer != 0 {
		l.conflicts.Add(1)
		// Another source: a forger, or the peer replaced (a new switch, a
		// restarted one behind another port). Only a peer that has been
		// silent for forgetAfter is replaced, and only by a verified frame.
		if l.fixedPeer || l.forgetAfter < 0 || time.Since(l.lastPeer) < l.forgetAfter || !l.learnable(pdu) {
			return false
		}
		if l.peer.CompareAndSwap(peer, key) {
			l.relearned.Add(1)
			l.lastPeer = time.Now()
		}
		return l.peer.Load() == key
	}
	// Learn only from a frame that decodes as the session would accept it
	// (version, lengths, CRC, and with a key ring its HMAC), so that neither
	// random traffic on our EtherType nor a forged frame captures the link.
	if !l.learnable(pdu) {
		return false
	}
	if l.peer.CompareAndSwap(0, key) {
		l.lastPeer = time.Now()
	}
	return l.peer.Load() == key
}

// learnable reports whether pdu may teach the link its peer: it verifies
// as the session would, from the expected node. Verify, not Decode: with an
// AEAD ring Decode would decrypt the frame in place under the session.
func (l *AFPacketLink) learnable(pdu []byte) bool {
	if err := l.codec.Verify(pdu, &l.scratch); err != nil {
		return false
	}
	return l.learnID == 0 || l.scratch.NodeID == l.learnID
}

// macKey packs a 6-byte MAC into the low 48 bits and sets bit 48 so that no
// address, not even 00:00:00:00:00:00, packs to zero (the "unknown" value).
func macKey(m []byte) uint64 {
	return 1<<48 | uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 | uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
}

func macBytes(k uint64) [6]byte {
	return [6]byte{byte(k >> 40), byte(k >> 32), byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)}
}

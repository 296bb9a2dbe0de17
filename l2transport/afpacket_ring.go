//go:build linux

package l2transport

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/swha/swha/frame"
)

// rxRing is a PACKET_RX_RING in TPACKET_V2 layout, mmapped from the receiving
// socket: the kernel copies each accepted frame into the next free slot and
// flips the slot's status word to TP_STATUS_USER; we copy the PDU out and hand
// the slot back with TP_STATUS_KERNEL.
//
// Compared with recvmmsg this takes the receive socket queue, its lock, the
// syscall, and the freeing of the skb off the receiving goroutine's CPU:
// measured on veth, the receiver spent about 13% of its CPU on the queue lock
// alone and another 10% switching context. TPACKET_V2 rather than V3: V3 hands
// over whole blocks and wakes the reader only when a block fills or its retire
// timer (whole milliseconds, a jiffy or more) fires, which would add
// milliseconds to every heartbeat at low rates; V2 wakes per frame like a
// plain socket, so latency does not change.
type rxRing struct {
	mem       []byte
	frameSize int
	perBlock  int // frames per block
	blockSize int
	frames    int
	next      int // slot to look at next
}

const (
	tpacket2HdrLen = 52 // TPACKET2_HDRLEN: aligned tpacket2_hdr + sockaddr_ll
	// ringBlockSize is the ring's block (contiguous kernel allocation) size
	// for frames up to that size; the kernel falls back to vmalloc when
	// memory is too fragmented for it.
	ringBlockSize = 128 << 10
)

// newRxRing sets up a TPACKET_V2 receive ring of about size bytes on fd for an
// interface MTU of mtu.
func newRxRing(fd, mtu, size int) (*rxRing, error) {
	// The kernel puts the MAC header at TPACKET_ALIGN(hdrlen + 16) - 14 into the
	// slot; leave room for that, the Ethernet header, an inline VLAN tag and
	// the MTU.
	frameSize := alignUp(tpacket2HdrLen+16+frame.EthernetHeaderLen+vlanTagLen+mtu, unix.TPACKET_ALIGNMENT)
	blockSize := ringBlockSize
	for blockSize < frameSize {
		blockSize <<= 1
	}
	blocks := max(2, size/blockSize)
	perBlock := blockSize / frameSize
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return nil, fmt.Errorf("PACKET_VERSION: %w", err)
	}
	req := unix.TpacketReq{
		Block_size: uint32(blockSize),
		Block_nr:   uint32(blocks),
		Frame_size: uint32(frameSize),
		Frame_nr:   uint32(blocks * perBlock),
	}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("PACKET_RX_RING %+v: %w", req, err)
	}
	mem, err := unix.Mmap(fd, 0, blocks*blockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap RX ring of %d bytes: %w", blocks*blockSize, err)
	}
	return &rxRing{
		mem:       mem,
		frameSize: frameSize,
		perBlock:  perBlock,
		blockSize: blockSize,
		frames:    blocks * perBlock,
	}, nil
}

func alignUp(n, a int) int { return (n + a - 1) &^ (a - 1) }

func (r *rxRing) slot(i int) []byte {
	off := (i/r.perBlock)*r.blockSize + (i%r.perBlock)*r.frameSize
	return r.mem[off : off+r.frameSize : off+r.frameSize]
}

// status is the slot's tp_status word, shared with the kernel.
func status(slot []byte) *uint32 { return (*uint32)(unsafe.Pointer(&slot[0])) }

// ready reports whether the next slot holds a frame for us. The atomic load
// pairs with the kernel's barrier before it publishes TP_STATUS_USER.
func (r *rxRing) ready() bool {
	return atomic.LoadUint32(status(r.slot(r.next)))&unix.TP_STATUS_USER != 0
}

// take returns the next frame (Ethernet header first) and advances; release
// must be called once the frame has been copied out.
func (r *rxRing) take() (slot, frame []byte, ok bool) {
	slot = r.slot(r.next)
	if atomic.LoadUint32(status(slot))&unix.TP_STATUS_USER == 0 {
		return nil, nil, false
	}
	h := (*unix.Tpacket2Hdr)(unsafe.Pointer(&slot[0]))
	mac, n := int(h.Mac), int(h.Snaplen)
	r.next++
	if r.next == r.frames {
		r.next = 0
	}
	if mac+n > len(slot) {
		// Cannot happen with a sane kernel; drop rather than read past the slot.
		return slot, nil, true
	}
	return slot, slot[mac : mac+n], true
}

// release hands a slot back to the kernel.
func release(slot []byte) { atomic.StoreUint32(status(slot), unix.TP_STATUS_KERNEL) }

func (r *rxRing) close() error {
	if r.mem == nil {
		return nil
	}
	err := unix.Munmap(r.mem)
	r.mem = nil
	return err
}

// readRing is ReadBatch for a link with a receive ring.
func (l *AFPacketLink) readRing(pkts []Packet) (int, error) {
	for {
		if k := l.drainRing(pkts); k > 0 {
			return k, nil
		}
		if err := l.rc.Read(l.ringWait); err != nil {
			return 0, l.ioError("read", err)
		}
	}
}

// ringWait is the RawConn.Read callback: done when a frame is waiting, else
// park until the socket signals the next one.
func (l *AFPacketLink) ringWait(uintptr) bool {
	if l.ring.ready() {
		return true
	}
	l.rxWaits.Add(1)
	return false
}

// drainRing copies up to len(pkts) waiting frames out of the ring, applying the
// same checks as deliver, and returns how many PDUs it delivered.
func (l *AFPacketLink) drainRing(pkts []Packet) int {
	const hl = frame.EthernetHeaderLen
	k := 0
	var bytes, ignored uint64
	// Bounded by the ring size: every pass consumes a slot.
	for range l.ring.frames {
		if k == len(pkts) {
			break
		}
		slot, f, ok := l.ring.take()
		if !ok {
			break
		}
		if len(f) < hl {
			release(slot)
			ignored++
			continue
		}
		h, pdu := f[:hl], f[hl:]
		if h[12] == ethTypeVLAN>>8 && h[13] == ethTypeVLAN&0xff {
			if len(pdu) < vlanTagLen {
				release(slot)
				ignored++
				continue
			}
			pdu = pdu[vlanTagLen:]
		}
		if !l.accept(h, pdu) {
			release(slot)
			ignored++
			continue
		}
		n := copy(pkts[k].Buf[:cap(pkts[k].Buf)], pdu)
		release(slot)
		pkts[k].N = n
		bytes += uint64(n)
		k++
	}
	if ignored > 0 {
		l.ignored.Add(ignored)
	}
	if k > 0 {
		l.framesIn.Add(uint64(k))
		l.bytesIn.Add(bytes)
	}
	return k
}

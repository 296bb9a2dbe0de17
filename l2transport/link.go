// Package l2transport carries swha PDUs between the two switches of a pair: Link
// implementations move frames (raw AF_PACKET, in-memory with fault injection, UDP),
// and Session turns a Link into a reliable, ordered, exactly-once message stream.
package l2transport

import (
	"errors"
	"time"
)

// Link moves swha PDUs (frame.Codec output, without any Ethernet header) to and from
// one peer. Delivery is best effort: a Link may drop, duplicate, reorder or corrupt
// frames, and Session makes up for it. A Link is safe for one reader and one writer
// goroutine at a time.
type Link interface {
	// WriteBatch sends pdus in order and returns how many it handed to the medium.
	// A frame the medium later drops is not an error.
	WriteBatch(pdus [][]byte) (int, error)
	// ReadBatch blocks until at least one PDU has arrived, the read deadline passes
	// (an error satisfying errors.Is(err, os.ErrDeadlineExceeded)) or the link is
	// closed (ErrClosed). It copies up to len(pkts) PDUs into pkts[i].Buf, sets
	// pkts[i].N and returns the count. A PDU longer than its buffer is truncated
	// to fit and then fails its CRC check in the codec.
	ReadBatch(pkts []Packet) (int, error)
	// SetReadDeadline bounds ReadBatch; the zero time means no deadline.
	SetReadDeadline(t time.Time) error
	// MaxPDU is the largest PDU the link carries: its MTU less encapsulation.
	MaxPDU() int
	// Close releases the link; blocked and later calls return ErrClosed.
	Close() error
}

// Packet is one receive buffer for Link.ReadBatch.
type Packet struct {
	Buf []byte // capacity for one PDU, filled by ReadBatch
	N   int    // bytes of Buf holding the PDU
}

// ErrClosed is returned by a Link after Close.
var ErrClosed = errors.New("l2transport: link closed")

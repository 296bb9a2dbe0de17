package frame

import (
	"encoding/binary"
	"net"

	"github.com/mdlayher/ethernet"
)

// EthernetHeaderLen is the length of an untagged Ethernet II header.
const EthernetHeaderLen = 14

const (
	etherTypeVLAN   = 0x8100 // IEEE 802.1Q tag
	minEtherTypeLen = 0x0600 // smaller values are 802.3 lengths, not EtherTypes
)

// AppendEthernet appends an untagged Ethernet II header to dst. It is the hot-path
// twin of ethernet.Frame.MarshalBinary, which allocates a new slice per frame.
func AppendEthernet(dst []byte, dstMAC, srcMAC net.HardwareAddr, etherType uint16) []byte {
	var zero [6]byte
	dst = appendMAC(dst, dstMAC, zero[:])
	dst = appendMAC(dst, srcMAC, zero[:])
	return binary.BigEndian.AppendUint16(dst, etherType)
}

func appendMAC(dst []byte, mac net.HardwareAddr, zero []byte) []byte {
	if len(mac) != 6 {
		return append(dst, zero...)
	}
	return append(dst, mac...)
}

// ParseEthernet splits an Ethernet II frame into its addresses, EtherType and
// payload, skipping one 802.1Q tag if present (HA links are often tagged). The
// returned slices alias b.
func ParseEthernet(b []byte) (dst, src net.HardwareAddr, etherType uint16, payload []byte, err error) {
	if len(b) < EthernetHeaderLen {
		return nil, nil, 0, nil, ErrShort
	}
	dst, src = b[0:6:6], b[6:12:12]
	etherType = binary.BigEndian.Uint16(b[12:])
	payload = b[14:]
	if etherType == etherTypeVLAN {
		if len(payload) < 4 {
			return nil, nil, 0, nil, ErrShort
		}
		etherType = binary.BigEndian.Uint16(payload[2:])
		payload = payload[4:]
	}
	if etherType < minEtherTypeLen {
		return nil, nil, 0, nil, ErrNotEthernet
	}
	return dst, src, etherType, payload, nil
}

// ToEthernet wraps an encoded PDU in an ethernet.Frame, for tools and tests that
// work with mdlayher/ethernet. It copies nothing; the frame aliases pdu.
func ToEthernet(dstMAC, srcMAC net.HardwareAddr, etherType uint16, pdu []byte) *ethernet.Frame {
	return &ethernet.Frame{
		Destination: dstMAC,
		Source:      srcMAC,
		EtherType:   ethernet.EtherType(etherType),
		Payload:     pdu,
	}
}

// FromEthernet decodes the swha PDU carried by f, which must have the given EtherType.
func (c *Codec) FromEthernet(f *ethernet.Frame, etherType uint16, h *Header) (payload []byte, err error) {
	if uint16(f.EtherType) != etherType {
		return nil, ErrNotEthernet
	}
	return c.Decode(f.Payload, h)
}

// Package frame is the swha wire format: the versioned header every swha message
// travels in, its CRC32C trailer and the optional HMAC authentication trailer.
//
// The codec is a pure function of its inputs. Encoding appends to a caller-owned
// buffer and decoding parses in place, so neither allocates per frame; the byte
// layout is specified in docs/ARCHITECTURE.md.
package frame

import "strconv"

// EtherType is the default EtherType of swha frames (IEEE 802 local experimental 1).
// Deployments that already use it for something else configure another one.
const EtherType = 0x88B5

// Version is the header version this package encodes and the only one it decodes.
const Version = 1

// Layout sizes in bytes.
const (
	HeaderLen      = 48                 // fixed part of the header
	SACKBlockLen   = 8                  // one selective-ack block: two 32-bit deltas
	MaxSACK        = 4                  // most SACK blocks one header carries
	CRCLen         = 4                  // CRC32C trailer
	KeyIDLen       = 4                  // key ID in the auth trailer
	MACLen         = 16                 // HMAC-SHA256 truncated to 128 bits
	AuthTrailerLen = KeyIDLen + MACLen  // whole auth trailer (HMAC)
	MinLen         = HeaderLen + CRCLen // smallest valid PDU
	MaxPayload     = 1<<16 - 1          // the payload length field is 16 bits
)

// Field offsets within the fixed header.
const (
	offVersion    = 0
	offType       = 1
	offFlags      = 2
	offSACKCount  = 4
	offReserved   = 5
	offPayloadLen = 6
	offNodeID     = 8
	offEpoch      = 16
	offFragOffset = 20
	offSeq        = 24
	offAck        = 32
	offTxnID      = 40
)

// Type is the message type carried in the header.
type Type uint8

// Message types of version 1. New types may be added within a version; receivers
// that do not know a type drop the frame with ErrUnknownType.
const (
	TypeHello     Type = 1 // discovery and epoch handshake
	TypeHelloAck  Type = 2 // answer to Hello
	TypeData      Type = 3 // one fragment of a session message
	TypeAck       Type = 4 // acknowledgment with no data
	TypeHeartbeat Type = 5 // liveness probe
	TypeReset     Type = 6 // the stream must restart (epoch mismatch, peer restart)
	TypeClose     Type = 7 // orderly shutdown of the stream
)

// maxType is the highest type this version knows; types are dense from 1.
const maxType = TypeClose

// Known reports whether t is a message type of this version.
func (t Type) Known() bool { return t >= TypeHello && t <= maxType }

var typeNames = [...]string{
	TypeHello:     "Hello",
	TypeHelloAck:  "HelloAck",
	TypeData:      "Data",
	TypeAck:       "Ack",
	TypeHeartbeat: "Heartbeat",
	TypeReset:     "Reset",
	TypeClose:     "Close",
}

func (t Type) String() string {
	if t.Known() {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Flags is the header's flag bit mask.
type Flags uint16

// Header flags. Undefined bits are sent as zero and ignored on receipt.
const (
	FlagAuth         Flags = 1 << 0 // an authentication trailer follows the payload
	FlagLastFragment Flags = 1 << 1 // this fragment ends its message
	FlagAckValid     Flags = 1 << 2 // Ack and SACK carry a valid acknowledgment
	FlagAckRequest   Flags = 1 << 3 // the receiver should acknowledge at once
	FlagRetransmit   Flags = 1 << 4 // the frame was sent before (diagnostic)
	// FlagBatch marks a payload holding several whole messages, each prefixed by its
	// 16-bit length, so that small messages do not cost a frame each.
	FlagBatch Flags = 1 << 5
	// FlagAEAD, always with FlagAuth, marks an encrypted frame: the payload is
	// AES-256-GCM ciphertext and the auth trailer is the AEAD one (tag, key ID,
	// nonce) instead of the HMAC one. See docs/WIRE.md.
	FlagAEAD Flags = 1 << 6
)

var flagNames = [...]struct {
	f    Flags
	name string
}{
	{FlagAuth, "Auth"},
	{FlagLastFragment, "LastFragment"},
	{FlagAckValid, "AckValid"},
	{FlagAckRequest, "AckRequest"},
	{FlagRetransmit, "Retransmit"},
	{FlagBatch, "Batch"},
	{FlagAEAD, "AEAD"},
}

func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	s := ""
	for _, n := range flagNames {
		if f&n.f != 0 {
			if s != "" {
				s += "|"
			}
			s += n.name
			f &^= n.f
		}
	}
	if f != 0 {
		if s != "" {
			s += "|"
		}
		s += "0x" + strconv.FormatUint(uint64(f), 16)
	}
	return s
}

// SACKBlock is a range [Start, End) of sequence numbers the receiver holds beyond
// the cumulative ack. On the wire both ends are 32-bit deltas from the ack.
type SACKBlock struct {
	Start, End uint64
}

// Header is a decoded swha header. Decode fills every field; Append reads every field
// but Version (it always writes the current one) and KeyID and FlagAuth (it takes
// them from the codec's key ring).
type Header struct {
	Version    uint8
	Type       Type
	Flags      Flags
	NodeID     uint64 // sender's node ID
	Epoch      uint32 // sender's fencing generation
	FragOffset uint32 // byte offset of the payload within its message
	Seq        uint64 // stream sequence number
	Ack        uint64 // next sequence number the sender of this frame expects
	TxnID      uint64 // transaction the payload belongs to, 0 for none
	NumSACK    int
	SACK       [MaxSACK]SACKBlock
	KeyID      uint32 // key that signed the frame, when FlagAuth is set
}

// Len is the encoded length of a PDU with this header's SACK count, a payload of
// payloadLen bytes and, if auth is set, an HMAC authentication trailer. For a
// length that follows a key ring's mode (an AEAD trailer is longer) use
// Keyring.Len.
func Len(numSACK, payloadLen int, auth bool) int {
	n := HeaderLen + numSACK*SACKBlockLen + payloadLen + CRCLen
	if auth {
		n += AuthTrailerLen
	}
	return n
}

// Error is a reason a frame was refused. Each reason is a distinct value so that a
// receiver can count drops by reason without allocating.
type Error uint8

// Reasons a frame is refused.
const (
	ErrShort           Error = iota + 1 // shorter than the smallest valid PDU
	ErrVersion                          // header version is not Version
	ErrUnknownType                      // message type unknown to this version
	ErrLength                           // header lengths run past the end of the frame
	ErrBadCRC                           // CRC32C mismatch: the frame was corrupted
	ErrBadSACK                          // too many SACK blocks, or an empty or inverted one
	ErrAuthMissing                      // a key ring is configured and the frame is unsigned
	ErrUnknownKey                       // signed with a key ID not in the key ring
	ErrAuthBad                          // the HMAC does not match: forged or wrong key
	ErrPayloadTooLarge                  // payload longer than MaxPayload (encode only)
	ErrNotEthernet                      // not an Ethernet II frame (ParseEthernet only)
	// ErrAuthMode: the frame is authenticated in the other mode than the key
	// ring's (an HMAC frame at an AEAD ring or the reverse), encrypted while the
	// codec has no key ring to read it, or FlagAEAD is set without FlagAuth.
	ErrAuthMode
	// ErrKeyNode: the frame verifies, but its key is bound to another node ID
	// than the header's (Keyring BindNode): a key holder speaking as another node.
	ErrKeyNode
	numErrors
)

// NumErrors bounds the values of Error, for arrays of counters indexed by reason.
const NumErrors = int(numErrors)

var errorText = [...]string{
	ErrShort:           "frame shorter than the swha header",
	ErrVersion:         "unsupported swha header version",
	ErrUnknownType:     "unknown swha message type",
	ErrLength:          "swha header length runs past the end of the frame",
	ErrBadCRC:          "swha CRC32C mismatch",
	ErrBadSACK:         "malformed swha SACK blocks",
	ErrAuthMissing:     "swha frame not authenticated but a key ring is configured",
	ErrUnknownKey:      "swha frame signed with a key ID not in the key ring",
	ErrAuthBad:         "swha frame HMAC or AEAD tag mismatch",
	ErrPayloadTooLarge: "swha payload longer than 65535 bytes",
	ErrNotEthernet:     "not an Ethernet II frame",
	ErrAuthMode:        "swha frame authentication mode (HMAC or AEAD) differs from the key ring's",
	ErrKeyNode:         "swha frame signed with a key bound to another node ID",
}

// Auth reports whether e is an authentication failure (a frame that is well
// formed but unsigned, signed with an unknown or another node's key, forged, or
// in the other mode), as opposed to corruption or a malformed frame.
func (e Error) Auth() bool {
	switch e {
	case ErrAuthMissing, ErrUnknownKey, ErrAuthBad, ErrAuthMode, ErrKeyNode:
		return true
	}
	return false
}

func (e Error) Error() string {
	if e > 0 && e < numErrors {
		return "frame: " + errorText[e]
	}
	return "frame: error " + strconv.Itoa(int(e))
}

package wire

import "encoding/binary"

// The announce is what a node says of itself in every heartbeat, on every
// path (the heartbeat carries it opaquely, in a slot of at most
// MaxAnnounce bytes, and hands it to the peer's failover core):
//
//	0x83 | uv(node ID) | uv(incarnation) | uv(generation) | state(1) | priority(1) | flags(1) | uv(seq) | uv(handoff seq)
//
// It travels outside the session, so it is the one node message a node
// sends whatever its role. The failover package gives the fields their
// meaning (failover.Announce); this file only lays them out. State is a
// failover.State, 1 to AnnounceMaxState: another value is malformed, since
// a new state is a new layout and so a new kind. Flag bits are kept as they
// came, so that a parse and re-encode is a fixed point.

// MaxAnnounce is the most bytes an encoded announce takes: the kind byte,
// five varints of at most 10 bytes and three bytes. It fits the heartbeat's
// 64-byte announce slot.
const MaxAnnounce = 1 + 5*binary.MaxVarintLen64 + 3

// AnnounceMaxState is the highest state value an announce may carry.
const AnnounceMaxState = 7

// Announce flags.
const (
	// AnnounceAccepting: the sender is active and accepts commits.
	AnnounceAccepting = 0x01
	// AnnounceHandoff: the sender, active, drained for a planned switchover
	// at HandoffSeq and hands over to a standby that has applied it.
	AnnounceHandoff = 0x02
	// AnnounceDefer: the sender holds no complete state (a standby that lost
	// its active before it was hot) and yields any election.
	AnnounceDefer = 0x04
	// AnnounceSplitBrain: the sender raises the split-brain alarm (the HA
	// link is down while another path is up).
	AnnounceSplitBrain = 0x08
)

// Announce is an announce (KindAnnounce).
type Announce struct {
	NodeID, Incarnation, Generation uint64
	State, Priority, Flags          byte
	Seq, HandoffSeq                 uint64 // commit seq (committed or applied), the drained seq of a handoff
}

// Append appends the encoded announce to b: at most MaxAnnounce bytes.
func (a Announce) Append(b []byte) []byte {
	b = append(b, byte(KindAnnounce))
	b = binary.AppendUvarint(b, a.NodeID)
	b = binary.AppendUvarint(b, a.Incarnation)
	b = binary.AppendUvarint(b, a.Generation)
	b = append(b, a.State, a.Priority, a.Flags)
	b = binary.AppendUvarint(b, a.Seq)
	return binary.AppendUvarint(b, a.HandoffSeq)
}

// ParseAnnounce decodes an announce. It does not allocate unless it fails.
func ParseAnnounce(b []byte) (Announce, error) {
	r := newReader(b, KindAnnounce, "announce")
	var a Announce
	a.NodeID = r.uv("node ID")
	a.Incarnation = r.uv("incarnation")
	a.Generation = r.uv("generation")
	a.State = r.byte("state")
	if r.err == nil && (a.State == 0 || a.State > AnnounceMaxState) {
		r.fail("state", "not a failover state")
	}
	a.Priority = r.byte("priority")
	a.Flags = r.byte("flags")
	a.Seq = r.uv("seq")
	a.HandoffSeq = r.uv("handoff seq")
	if err := r.end(); err != nil {
		return Announce{}, err
	}
	return a, nil
}

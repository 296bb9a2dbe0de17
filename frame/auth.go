package frame

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"hash"
	"slices"
)

// MinKeyLen is the shortest secret a Keyring accepts; shorter HMAC-SHA256 keys are
// guessable offline from a capture.
const MinKeyLen = 16

// Keyring is an immutable set of keys, indexed by key ID, with one of them
// chosen for signing, and a mode: HMAC (NewKeyring: frames signed, payload in the
// clear) or AEAD (NewAEADKeyring: payload encrypted too). Keys rotate without
// downtime by giving each Codec a new Keyring: add the new key on both peers,
// switch the send key, then drop the old one. A key may be bound to the node ID
// that alone signs with it (BindNode).
type Keyring struct {
	mode   Mode
	sendID uint32
	keys   []key // sorted by ID; rings are small, so a scan beats a map
}

type key struct {
	id     uint32
	secret []byte // the HMAC key, or in ModeAEAD the AES-256 key derived from the secret
	node   uint64 // with bound, the only node ID whose frames this key may sign
	bound  bool
}

// NewKeyring returns an HMAC key ring holding keys and signing with sendKeyID,
// which must be one of them.
func NewKeyring(sendKeyID uint32, keys map[uint32][]byte, opts ...KeyringOption) (*Keyring, error) {
	return newKeyring(ModeHMAC, sendKeyID, keys, opts)
}

func newKeyring(mode Mode, sendKeyID uint32, keys map[uint32][]byte, opts []KeyringOption) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("frame: key ring: no keys")
	}
	kr := &Keyring{mode: mode, sendID: sendKeyID}
	for id, secret := range keys {
		if len(secret) < MinKeyLen {
			return nil, fmt.Errorf("frame: key ring: key %d is %d bytes, want at least %d", id, len(secret), MinKeyLen)
		}
		kr.keys = append(kr.keys, key{id: id, secret: slices.Clone(secret)})
	}
	slices.SortFunc(kr.keys, func(a, b key) int { return int(int64(a.id) - int64(b.id)) })
	if _, ok := kr.find(sendKeyID); !ok {
		return nil, fmt.Errorf("frame: key ring: send key %d is not in the ring", sendKeyID)
	}
	for _, o := range opts {
		if err := o(kr); err != nil {
			return nil, err
		}
	}
	if mode == ModeAEAD {
		if err := kr.deriveAEADKeys(); err != nil {
			return nil, err
		}
	}
	return kr, nil
}

// SendKeyID is the ID of the key that signs outgoing frames.
func (kr *Keyring) SendKeyID() uint32 { return kr.sendID }

// KeyIDs lists the IDs of every key in the ring, in ascending order.
func (kr *Keyring) KeyIDs() []uint32 {
	ids := make([]uint32, len(kr.keys))
	for i, k := range kr.keys {
		ids[i] = k.id
	}
	return ids
}

func (kr *Keyring) find(id uint32) (int, bool) {
	for i, k := range kr.keys {
		if k.id == id {
			return i, true
		}
	}
	return 0, false
}

// macs holds one HMAC state per key of a ring. HMAC states are not safe for
// concurrent use, which is why each Codec builds its own rather than the Keyring
// holding them.
type macs struct {
	ring *Keyring
	h    []hash.Hash
	sum  [sha256.Size]byte
}

func (m *macs) reset(kr *Keyring) {
	m.ring = kr
	m.h = m.h[:0]
	if kr == nil || kr.mode != ModeHMAC {
		return
	}
	for _, k := range kr.keys {
		m.h = append(m.h, hmac.New(sha256.New, k.secret))
	}
}

// mac computes the truncated HMAC of msg with the key at index i of the ring.
func (m *macs) mac(i int, msg []byte) []byte {
	h := m.h[i]
	h.Reset()
	h.Write(msg)
	return h.Sum(m.sum[:0])[:MACLen]
}

package frame

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"unsafe"
)

// Sizes of the AEAD trailer (FlagAEAD), in bytes.
const (
	TagLen   = 16 // AES-GCM authentication tag
	NonceLen = 12 // AES-GCM nonce (96 bits)
	// AEADTrailerLen is the auth trailer of an encrypted frame: tag, key ID, nonce.
	AEADTrailerLen = TagLen + KeyIDLen + NonceLen
)

// Mode is how a key ring protects frames.
type Mode uint8

// Key ring modes.
const (
	// ModeHMAC signs every frame with a truncated HMAC-SHA256 (FlagAuth, the HMAC
	// trailer); the payload travels in the clear.
	ModeHMAC Mode = 1
	// ModeAEAD encrypts every payload with AES-256-GCM and authenticates it and
	// the header (FlagAuth|FlagAEAD, the AEAD trailer), so that a listener on the
	// link cannot read it.
	ModeAEAD Mode = 2
)

func (m Mode) String() string {
	switch m {
	case ModeHMAC:
		return "HMAC"
	case ModeAEAD:
		return "AEAD"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// NewAEADKeyring returns a key ring like NewKeyring's, in ModeAEAD: a Codec with
// it encrypts payloads with AES-256-GCM and accepts only frames so encrypted.
// Each key's AES-256 key is derived from its secret and its key ID with
// HKDF-SHA256, so the same secrets may serve an HMAC ring too without the two
// modes sharing a key, and a frame's key ID is bound to its tag even where two
// IDs hold the same secret.
func NewAEADKeyring(sendKeyID uint32, keys map[uint32][]byte, opts ...KeyringOption) (*Keyring, error) {
	return newKeyring(ModeAEAD, sendKeyID, keys, opts)
}

// KeyringOption configures a key ring at construction (NewKeyring,
// NewAEADKeyring).
type KeyringOption func(*Keyring) error

// BindNode binds key keyID to node nodeID: a frame authenticated with that key
// is accepted only if its header's node ID is nodeID, and refused otherwise with
// ErrKeyNode. With every key bound (per-node keys: each node signs with its own
// key, and its peer verifies it with that key), the holder of one node's key
// cannot speak as the other node. A key left unbound is a shared key, accepted
// from any node ID. See docs/WIRE.md for what a key holder can still do.
func BindNode(keyID uint32, nodeID uint64) KeyringOption {
	return func(kr *Keyring) error {
		if nodeID == 0 {
			return fmt.Errorf("frame: key ring: key %d bound to node ID 0", keyID)
		}
		i, ok := kr.find(keyID)
		if !ok {
			return fmt.Errorf("frame: key ring: key %d bound to node %#x is not in the ring", keyID, nodeID)
		}
		k := &kr.keys[i]
		if k.bound && k.node != nodeID {
			return fmt.Errorf("frame: key ring: key %d bound to both node %#x and node %#x", keyID, k.node, nodeID)
		}
		k.node, k.bound = nodeID, true
		return nil
	}
}

// Mode is the ring's mode.
func (kr *Keyring) Mode() Mode { return kr.mode }

// NodeOf returns the node ID key keyID is bound to, and false if the key is not
// bound (or not in the ring).
func (kr *Keyring) NodeOf(keyID uint32) (nodeID uint64, bound bool) {
	i, ok := kr.find(keyID)
	if !ok || !kr.keys[i].bound {
		return 0, false
	}
	return kr.keys[i].node, true
}

// CheckSender reports an error if the ring's send key is bound to another node
// than nodeID, so that a node configured with its peer's key fails at start
// instead of having every frame refused (Codec.Append does not check it).
func (kr *Keyring) CheckSender(nodeID uint64) error {
	if node, bound := kr.NodeOf(kr.sendID); bound && node != nodeID {
		return fmt.Errorf("frame: key ring: send key %d is bound to node %#x, not to the sender %#x", kr.sendID, node, nodeID)
	}
	return nil
}

// TrailerLen is the auth trailer a Codec with this ring appends: 0 for a nil
// ring, AuthTrailerLen in ModeHMAC, AEADTrailerLen in ModeAEAD.
func (kr *Keyring) TrailerLen() int {
	switch {
	case kr == nil:
		return 0
	case kr.mode == ModeAEAD:
		return AEADTrailerLen
	}
	return AuthTrailerLen
}

// Len is the encoded length of a PDU with numSACK SACK blocks and a payload of
// payloadLen bytes from a Codec with this ring (nil: no authentication).
func (kr *Keyring) Len(numSACK, payloadLen int) int {
	return Len(numSACK, payloadLen, false) + kr.TrailerLen()
}

// aeadKeyInfo is the HKDF info of a key's AES-256 key; the key ID follows it.
const aeadKeyInfo = "swha frame v1 AES-256-GCM key "

func (kr *Keyring) deriveAEADKeys() error {
	for i := range kr.keys {
		k := &kr.keys[i]
		aesKey, err := hkdf.Key(sha256.New, k.secret, nil, aeadKeyInfo+string(binary.BigEndian.AppendUint32(nil, k.id)), 32)
		if err != nil {
			return fmt.Errorf("frame: key ring: key %d: %v", k.id, err)
		}
		k.secret = aesKey
	}
	return nil
}

// aeadState is a Codec's AES-GCM state: one cipher per key of its ring, and
// the nonce generator.
//
// Nonces. Every Codec of every node that holds a key encrypts with it (on one
// node: the session, the heartbeat runners, the link's learner never, but any
// number of Codecs may), and header fields repeat (pure Acks reuse sequence
// numbers; a restarted node starts over), so a nonce is never derived from
// the header. It is prefix (64 bits, from crypto/rand) ‖ counter (32 bits,
// from 0), both per Codec; the counter's wrap, after 2^32 frames, draws a new
// prefix. A Codec draws its prefix on its first encryption after NewCodec or
// SetKeyring, and again whenever it finds it is a copy of another Codec (self
// is not itself), so a copied Codec never repeats its original's nonces.
//
// Bound: two encryptions under one key repeat a nonce only if two of the
// prefixes drawn for that key are equal (within one prefix the counter does
// not repeat). With N prefixes drawn over the key's life, by every Codec of
// both nodes, the probability of that is at most N²/2^65: below 2^-33 for
// N = 2^16 (sixty-five thousand Codec lives, or 2^48 frames), below 2^-25 for
// a million. That is within NIST SP 800-38D's 2^-32 for any realistic
// deployment without relying on the random-nonce limit of 2^32 frames per
// key, which a bulk stream at 9000 bytes would reach in hours.
type aeadState struct {
	aeads   []cipher.AEAD // by key index of the ring
	self    *Codec        // the Codec the prefix was drawn for; nil: draw on next use
	prefix  [8]byte
	ctr     uint32
	scratch []byte // Verify's plaintext
}

func (a *aeadState) reset(kr *Keyring) {
	a.aeads = a.aeads[:0]
	a.self = nil
	if kr == nil || kr.mode != ModeAEAD {
		return
	}
	for _, k := range kr.keys {
		block, err := aes.NewCipher(k.secret)
		if err != nil {
			panic("frame: AES-256 key of " + strconv.Itoa(len(k.secret)) + " bytes: " + err.Error()) // derived: always 32
		}
		g, err := cipher.NewGCM(block)
		if err != nil {
			panic("frame: GCM: " + err.Error()) // standard nonce and tag sizes
		}
		a.aeads = append(a.aeads, g)
	}
}

// nonce writes the next nonce of Codec c into n (NonceLen bytes).
func (a *aeadState) nonce(c *Codec, n []byte) {
	if a.self != c {
		a.draw(c)
	}
	copy(n[:8], a.prefix[:])
	binary.BigEndian.PutUint32(n[8:], a.ctr)
	a.ctr++
	if a.ctr == 0 {
		a.draw(c) // 2^32 nonces under this prefix: never reuse one
	}
}

func (a *aeadState) draw(c *Codec) {
	rand.Read(a.prefix[:]) // never fails (it crashes the program if the system cannot supply randomness)
	a.ctr = 0
	a.self = c
}

// seal appends payload, encrypted, and the AEAD trailer to the PDU being built
// in dst, whose header and SACK blocks are dst[start:]. dst has room for them.
func (c *Codec) seal(dst []byte, start int, payload []byte) []byte {
	kr := c.macs.ring
	i, _ := kr.find(kr.sendID)
	hdrEnd := len(dst)
	end := hdrEnd + len(payload)
	dst = dst[:end+AEADTrailerLen]
	t := dst[end:]
	binary.BigEndian.PutUint32(t[TagLen:], kr.sendID)
	nonce := t[TagLen+KeyIDLen:]
	c.aead.nonce(c, nonce)
	// Seal writes the ciphertext where the payload goes and the tag right
	// after it, at the start of the trailer; the header is the additional
	// data. It reads payload where it is, saving a copy, unless payload lies
	// in the space it writes (then it encrypts a copy in place).
	out := dst[hdrEnd : end+TagLen]
	if overlap(out, payload) {
		copy(dst[hdrEnd:end], payload)
		payload = dst[hdrEnd:end]
	}
	c.aead.aeads[i].Seal(out[:0], nonce, payload, dst[start:hdrEnd])
	return dst
}

// overlap reports whether a and b share memory.
func overlap(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	pa, pb := uintptr(unsafe.Pointer(unsafe.SliceData(a))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}

// open authenticates and decrypts the AEAD frame body (header through AEAD
// trailer, the CRC excluded) whose payload is body[hdrLen:hdrLen+payloadLen],
// with the key at index i: in place, or into the codec's scratch buffer.
func (c *Codec) open(i int, body []byte, hdrLen, payloadLen int, inPlace bool) error {
	ct := body[hdrLen : hdrLen+payloadLen+TagLen] // ciphertext ‖ tag
	nonce := body[len(body)-NonceLen:]
	out := ct[:0]
	if !inPlace {
		if cap(c.aead.scratch) < payloadLen {
			c.aead.scratch = make([]byte, 0, max(payloadLen, 2048))
		}
		out = c.aead.scratch[:0]
	}
	if _, err := c.aead.aeads[i].Open(out, nonce, ct, body[:hdrLen]); err != nil {
		return ErrAuthBad
	}
	return nil
}

// Verify checks pdu as Decode does, with the same errors, and fills h, but
// leaves pdu as it was: an encrypted frame is decrypted into a buffer of the
// codec's (allocated once, on first use) and not returned. It is for a
// receiver that must vet a frame before handing it, still encrypted, to the
// Codec that will Decode it (a link learning its peer).
func (c *Codec) Verify(pdu []byte, h *Header) error {
	_, err := c.decode(pdu, h, opVerify)
	return err
}

// Inspect decodes pdu as a Codec without a key ring does (the CRC checked, no
// signature verified), except that it also accepts an encrypted frame (FlagAEAD)
// and returns its payload still encrypted, where Decode refuses it with
// ErrAuthMode. It is for capture tools, which hold no keys; pdu is not modified.
func Inspect(pdu []byte, h *Header) (payload []byte, err error) {
	var c Codec
	return c.decode(pdu, h, opInspect)
}

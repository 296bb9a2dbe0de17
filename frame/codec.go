package frame

import (
	"crypto/hmac"
	"encoding/binary"
	"hash/crc32"
	"slices"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Codec encodes and decodes swha PDUs, signing and verifying them when it has a key
// ring. The zero Codec neither signs nor requires signatures. A Codec is not safe
// for concurrent use: give each goroutine its own (they may share a Keyring).
type Codec struct {
	macs macs
	aead aeadState
}

// NewCodec returns a codec that signs with kr's send key and accepts only frames
// signed by a key in kr. A nil kr gives a codec without authentication.
func NewCodec(kr *Keyring) *Codec {
	c := &Codec{}
	c.SetKeyring(kr)
	return c
}

// SetKeyring replaces the key ring, for rotation. It allocates new HMAC or AES-GCM
// states (and, in ModeAEAD, draws a new nonce prefix), so call it when keys
// change, not per frame.
func (c *Codec) SetKeyring(kr *Keyring) {
	c.macs.reset(kr)
	c.aead.reset(kr)
}

// Keyring returns the codec's key ring, nil when it does not authenticate.
func (c *Codec) Keyring() *Keyring { return c.macs.ring }

// Append appends the PDU for h and payload to dst and returns the extended buffer.
// It writes the current Version whatever h.Version holds, and sets FlagAuth,
// FlagAEAD and the key ID from the codec's key ring. In ModeAEAD the payload is
// encrypted in dst (payload itself is not written to). If dst has room for
// Keyring().Len(h.NumSACK, len(payload)) more bytes, Append does not allocate.
func (c *Codec) Append(dst []byte, h *Header, payload []byte) ([]byte, error) {
	if len(payload) > MaxPayload {
		return dst, ErrPayloadTooLarge
	}
	if !h.Type.Known() {
		return dst, ErrUnknownType
	}
	if h.NumSACK < 0 || h.NumSACK > MaxSACK {
		return dst, ErrBadSACK
	}
	for _, b := range h.SACK[:h.NumSACK] {
		if b.Start <= h.Ack || b.End <= b.Start || b.End-h.Ack > 1<<32-1 {
			return dst, ErrBadSACK
		}
	}
	kr := c.macs.ring
	flags := h.Flags &^ (FlagAuth | FlagAEAD)
	if kr != nil {
		flags |= FlagAuth
		if kr.mode == ModeAEAD {
			flags |= FlagAEAD
		}
	}

	start := len(dst)
	dst = slices.Grow(dst, kr.Len(h.NumSACK, len(payload)))
	dst = dst[:start+HeaderLen+h.NumSACK*SACKBlockLen]
	p := dst[start:]
	p[offVersion] = Version
	p[offType] = byte(h.Type)
	binary.BigEndian.PutUint16(p[offFlags:], uint16(flags))
	p[offSACKCount] = byte(h.NumSACK)
	p[offReserved] = 0
	binary.BigEndian.PutUint16(p[offPayloadLen:], uint16(len(payload)))
	binary.BigEndian.PutUint64(p[offNodeID:], h.NodeID)
	binary.BigEndian.PutUint32(p[offEpoch:], h.Epoch)
	binary.BigEndian.PutUint32(p[offFragOffset:], h.FragOffset)
	binary.BigEndian.PutUint64(p[offSeq:], h.Seq)
	binary.BigEndian.PutUint64(p[offAck:], h.Ack)
	binary.BigEndian.PutUint64(p[offTxnID:], h.TxnID)
	for i, b := range h.SACK[:h.NumSACK] {
		o := HeaderLen + i*SACKBlockLen
		binary.BigEndian.PutUint32(p[o:], uint32(b.Start-h.Ack))
		binary.BigEndian.PutUint32(p[o+4:], uint32(b.End-h.Ack))
	}
	if kr != nil && kr.mode == ModeAEAD {
		dst = c.seal(dst, start, payload)
	} else {
		dst = append(dst, payload...)
	}
	if kr != nil && kr.mode == ModeHMAC {
		dst = binary.BigEndian.AppendUint32(dst, kr.sendID)
		i, _ := kr.find(kr.sendID)
		dst = append(dst, c.macs.mac(i, dst[start:])...)
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli)), nil
}

// Decode parses the PDU at the start of pdu into h and returns the payload, a
// sub-slice of pdu. Bytes after the CRC (Ethernet padding) are ignored. On error h
// is left partly filled and the error is one of the Error values. In ModeAEAD the
// payload is decrypted in place: pdu no longer holds the frame as received (on an
// authentication failure its payload bytes are zeroed); Verify leaves it intact.
func (c *Codec) Decode(pdu []byte, h *Header) (payload []byte, err error) {
	return c.decode(pdu, h, opDecode)
}

// What decode does with an authenticated frame's payload.
const (
	opDecode  = iota // verify; decrypt in place
	opVerify         // verify; decrypt into scratch space, pdu untouched
	opInspect        // no key ring: also accept an encrypted frame, payload encrypted
)

func (c *Codec) decode(pdu []byte, h *Header, op int) (payload []byte, err error) {
	if len(pdu) < MinLen {
		return nil, ErrShort
	}
	if pdu[offVersion] != Version {
		return nil, ErrVersion
	}
	flags := Flags(binary.BigEndian.Uint16(pdu[offFlags:]))
	numSACK := int(pdu[offSACKCount])
	if numSACK > MaxSACK {
		return nil, ErrBadSACK
	}
	hdrLen := HeaderLen + numSACK*SACKBlockLen
	payloadLen := int(binary.BigEndian.Uint16(pdu[offPayloadLen:]))
	auth := flags&FlagAuth != 0
	aead := flags&FlagAEAD != 0
	total := Len(numSACK, payloadLen, false)
	switch {
	case auth && aead:
		total += AEADTrailerLen
	case auth:
		total += AuthTrailerLen
	}
	if total > len(pdu) {
		return nil, ErrLength
	}
	body := pdu[:total-CRCLen]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(pdu[total-CRCLen:]) {
		return nil, ErrBadCRC
	}

	h.Version = pdu[offVersion]
	h.Type = Type(pdu[offType])
	if !h.Type.Known() {
		return nil, ErrUnknownType
	}
	h.Flags = flags
	h.NodeID = binary.BigEndian.Uint64(pdu[offNodeID:])
	h.Epoch = binary.BigEndian.Uint32(pdu[offEpoch:])
	h.FragOffset = binary.BigEndian.Uint32(pdu[offFragOffset:])
	h.Seq = binary.BigEndian.Uint64(pdu[offSeq:])
	h.Ack = binary.BigEndian.Uint64(pdu[offAck:])
	h.TxnID = binary.BigEndian.Uint64(pdu[offTxnID:])
	h.NumSACK = numSACK
	// Clear blocks past NumSACK so a reused Header compares equal to a fresh one.
	h.SACK = [MaxSACK]SACKBlock{}
	for i := range numSACK {
		o := HeaderLen + i*SACKBlockLen
		s := binary.BigEndian.Uint32(pdu[o:])
		e := binary.BigEndian.Uint32(pdu[o+4:])
		if s == 0 || e <= s {
			return nil, ErrBadSACK
		}
		h.SACK[i] = SACKBlock{Start: h.Ack + uint64(s), End: h.Ack + uint64(e)}
	}
	payload = pdu[hdrLen : hdrLen+payloadLen : hdrLen+payloadLen]

	h.KeyID = 0
	switch {
	case aead && !auth:
		return nil, ErrAuthMode
	case aead:
		h.KeyID = binary.BigEndian.Uint32(body[len(body)-KeyIDLen-NonceLen:])
	case auth:
		h.KeyID = binary.BigEndian.Uint32(body[len(body)-AuthTrailerLen:])
	}
	kr := c.macs.ring
	if kr == nil {
		if aead && op != opInspect {
			return nil, ErrAuthMode // ciphertext is not a payload
		}
		return payload, nil
	}
	if !auth {
		return nil, ErrAuthMissing
	}
	if aead != (kr.mode == ModeAEAD) {
		return nil, ErrAuthMode
	}
	i, ok := kr.find(h.KeyID)
	if !ok {
		return nil, ErrUnknownKey
	}
	if aead {
		if err := c.open(i, body, hdrLen, payloadLen, op == opDecode); err != nil {
			return nil, err
		}
	} else {
		signed := body[:len(body)-MACLen]
		if !hmac.Equal(c.macs.mac(i, signed), body[len(body)-MACLen:]) {
			return nil, ErrAuthBad
		}
	}
	// Checked once the frame verifies: ErrKeyNode then says that a holder of
	// this key, not a forger, claimed another node's ID.
	if k := &kr.keys[i]; k.bound && k.node != h.NodeID {
		return nil, ErrKeyNode
	}
	return payload, nil
}

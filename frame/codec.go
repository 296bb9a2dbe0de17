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
}

// NewCodec returns a codec that signs with kr's send key and accepts only frames
// signed by a key in kr. A nil kr gives a codec without authentication.
func NewCodec(kr *Keyring) *Codec {
	c := &Codec{}
	c.macs.reset(kr)
	return c
}

// SetKeyring replaces the key ring, for rotation. It allocates new HMAC states, so
// call it when keys change, not per frame.
func (c *Codec) SetKeyring(kr *Keyring) { c.macs.reset(kr) }

// Keyring returns the codec's key ring, nil when it does not authenticate.
func (c *Codec) Keyring() *Keyring { return c.macs.ring }

// Append appends the PDU for h and payload to dst and returns the extended buffer.
// It writes the current Version whatever h.Version holds, and sets FlagAuth and the
// key ID from the codec's key ring. If dst has room for Len(h.NumSACK,
// len(payload), auth) more bytes, Append does not allocate.
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
	flags := h.Flags &^ FlagAuth
	if kr != nil {
		flags |= FlagAuth
	}

	start := len(dst)
	dst = slices.Grow(dst, Len(h.NumSACK, len(payload), kr != nil))
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
	dst = append(dst, payload...)
	if kr != nil {
		dst = binary.BigEndian.AppendUint32(dst, kr.sendID)
		i, _ := kr.find(kr.sendID)
		dst = append(dst, c.macs.mac(i, dst[start:])...)
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli)), nil
}

// Decode parses the PDU at the start of pdu into h and returns the payload, a
// sub-slice of pdu. Bytes after the CRC (Ethernet padding) are ignored. On error h
// is left partly filled and the error is one of the Error values.
func (c *Codec) Decode(pdu []byte, h *Header) (payload []byte, err error) {
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
	total := Len(numSACK, payloadLen, auth)
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
	if auth {
		h.KeyID = binary.BigEndian.Uint32(body[len(body)-AuthTrailerLen:])
	}
	kr := c.macs.ring
	if kr == nil {
		return payload, nil
	}
	if !auth {
		return nil, ErrAuthMissing
	}
	i, ok := kr.find(h.KeyID)
	if !ok {
		return nil, ErrUnknownKey
	}
	signed := body[:len(body)-MACLen]
	if !hmac.Equal(c.macs.mac(i, signed), body[len(body)-MACLen:]) {
		return nil, ErrAuthBad
	}
	return payload, nil
}

// Package swhalayer makes swha frames visible to gopacket-based tools: a
// gopacket layer so gopacket.NewPacket decodes them behind an Ethernet (or 802.1Q)
// header, and a pcap writer for captures that tshark and the Lua dissector in
// lab/wireshark read.
//
// Importing the package registers the layer for frame.EtherType. gopacket's
// layer and EtherType registries are process-wide by gopacket's design, so this
// is the one place swha keeps package-level state outside cmd/.
package swhalayer

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/swha/swha/frame"
)

// LayerTypeNumber is the gopacket layer number of swha frames; numbers above
// gopacket's own range are free for external layers, and this one reuses the
// EtherType so it is easy to recognise.
const LayerTypeNumber = frame.EtherType

// LayerTypeSWHA is the gopacket layer type of a decoded swha PDU.
var LayerTypeSWHA = gopacket.RegisterLayerType(LayerTypeNumber, gopacket.LayerTypeMetadata{
	Name:    "SWHA",
	Decoder: gopacket.DecodeFunc(decodeSWHA),
})

var registerMu sync.Mutex

func init() { RegisterEtherType(frame.EtherType) }

// RegisterEtherType makes gopacket decode frames of etherType as swha, for
// deployments that moved swha off the default EtherType.
func RegisterEtherType(etherType uint16) {
	registerMu.Lock()
	defer registerMu.Unlock()
	layers.EthernetTypeMetadata[etherType] = layers.EnumMetadata{
		DecodeWith: gopacket.DecodeFunc(decodeSWHA),
		Name:       "SWHA",
		LayerType:  LayerTypeSWHA,
	}
}

// SWHA is one decoded swha PDU. Contents is the PDU through the CRC (Ethernet
// padding excluded) and Payload the message bytes, still encrypted in a frame
// with FlagAEAD. The HMAC or AEAD tag is not verified: a capture tool does not
// hold the keys.
type SWHA struct {
	layers.BaseLayer
	frame.Header
	MAC   []byte // truncated HMAC when FlagAuth is set, the AES-GCM tag with FlagAEAD too
	Nonce []byte // the AES-GCM nonce, with FlagAEAD
	CRC   uint32
}

// LayerType implements gopacket.Layer.
func (s *SWHA) LayerType() gopacket.LayerType { return LayerTypeSWHA }

// CanDecode implements gopacket.DecodingLayer.
func (s *SWHA) CanDecode() gopacket.LayerClass { return LayerTypeSWHA }

// NextLayerType implements gopacket.DecodingLayer: the payload is opaque here.
func (s *SWHA) NextLayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

// DecodeFromBytes implements gopacket.DecodingLayer.
func (s *SWHA) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	payload, err := frame.Inspect(data, &s.Header) // no key ring: verify the CRC, report the key ID
	if err != nil {
		if err == frame.ErrShort || err == frame.ErrLength {
			df.SetTruncated()
		}
		return fmt.Errorf("swha: %w", err)
	}
	n := frame.Len(s.NumSACK, len(payload), s.Flags&frame.FlagAuth != 0)
	aead := s.Flags&frame.FlagAEAD != 0
	if aead {
		n += frame.AEADTrailerLen - frame.AuthTrailerLen
	}
	s.Contents = data[:n]
	s.Payload = payload
	s.CRC = binary.BigEndian.Uint32(data[n-frame.CRCLen:])
	s.MAC, s.Nonce = nil, nil
	switch {
	case aead:
		t := data[n-frame.CRCLen-frame.AEADTrailerLen : n-frame.CRCLen]
		s.MAC, s.Nonce = t[:frame.TagLen], t[frame.TagLen+frame.KeyIDLen:]
	case s.Flags&frame.FlagAuth != 0:
		s.MAC = data[n-frame.CRCLen-frame.MACLen : n-frame.CRCLen]
	}
	return nil
}

// SerializeTo implements gopacket.SerializableLayer, without authentication. The
// buffer's current bytes (the layers serialized after this one) become the payload.
func (s *SWHA) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	var c frame.Codec
	h := s.Header
	h.Flags &^= frame.FlagAuth
	pdu, err := c.Append(nil, &h, b.Bytes())
	if err != nil {
		return fmt.Errorf("swha: serialize: %w", err)
	}
	if err := b.Clear(); err != nil {
		return err
	}
	dst, err := b.AppendBytes(len(pdu))
	if err != nil {
		return err
	}
	copy(dst, pdu)
	return nil
}

func decodeSWHA(data []byte, p gopacket.PacketBuilder) error {
	s := &SWHA{}
	if err := s.DecodeFromBytes(data, p); err != nil {
		return err
	}
	p.AddLayer(s)
	return p.NextDecoder(s.NextLayerType())
}

// PcapWriter writes Ethernet frames into a classic pcap stream (LINKTYPE_ETHERNET).
type PcapWriter struct {
	w *pcapgo.Writer
}

// NewPcapWriter writes the pcap file header to w, with a snap length that keeps
// jumbo frames whole.
func NewPcapWriter(w io.Writer) (*PcapWriter, error) {
	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(1<<16, layers.LinkTypeEthernet); err != nil {
		return nil, fmt.Errorf("swha: pcap header: %w", err)
	}
	return &PcapWriter{w: pw}, nil
}

// WriteFrame records one whole Ethernet frame seen at ts.
func (p *PcapWriter) WriteFrame(ts time.Time, eth []byte) error {
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(eth), Length: len(eth)}
	if err := p.w.WritePacket(ci, eth); err != nil {
		return fmt.Errorf("swha: pcap write: %w", err)
	}
	return nil
}

// WritePDU records an swha PDU as the Ethernet frame that carries it.
func (p *PcapWriter) WritePDU(ts time.Time, dst, src net.HardwareAddr, etherType uint16, pdu []byte) error {
	eth := frame.AppendEthernet(make([]byte, 0, frame.EthernetHeaderLen+len(pdu)), dst, src, etherType)
	return p.WriteFrame(ts, append(eth, pdu...))
}

package swhalayer_test

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/swha/swha/frame"
	"github.com/swha/swha/frame/swhalayer"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
)

func header(typ frame.Type, seq uint64) frame.Header {
	h := frame.Header{Type: typ, Flags: frame.FlagAckValid, NodeID: 42, Epoch: 3, Seq: seq, Ack: 100, TxnID: seq * 10, NumSACK: 1}
	h.SACK[0] = frame.SACKBlock{Start: 102, End: 104}
	return h
}

// TestPcapRoundTrip writes every message type to a pcap and reads it back through
// gopacket, as a capture tool would.
func TestPcapRoundTrip(t *testing.T) {
	var c frame.Codec
	var buf bytes.Buffer
	pw, err := swhalayer.NewPcapWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var want []frame.Header
	ts := time.Unix(1_700_000_000, 0)
	for typ := frame.TypeHello; typ.Known(); typ++ {
		h := header(typ, uint64(typ))
		pdu, err := c.Append(nil, &h, []byte("payload of "+typ.String()))
		if err != nil {
			t.Fatal(err)
		}
		if err := pw.WritePDU(ts, macB, macA, frame.EtherType, pdu); err != nil {
			t.Fatal(err)
		}
		h.Version = frame.Version
		want = append(want, h)
	}

	r, err := pcapgo.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		data, _, err := r.ReadPacketData()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		l, ok := pkt.Layer(swhalayer.LayerTypeSWHA).(*swhalayer.SWHA)
		if !ok {
			t.Fatalf("packet %d: no SWHA layer in %v", i, pkt)
		}
		if l.Header != w {
			t.Fatalf("packet %d:\n got %+v\nwant %+v", i, l.Header, w)
		}
		if got := string(l.LayerPayload()); got != "payload of "+w.Type.String() {
			t.Fatalf("packet %d payload %q", i, got)
		}
	}
}

func TestVLANTaggedAndCustomEtherType(t *testing.T) {
	const custom = 0x88B6
	swhalayer.RegisterEtherType(custom)
	var c frame.Codec
	h := header(frame.TypeHeartbeat, 9)
	pdu, _ := c.Append(nil, &h, nil)
	eth := frame.AppendEthernet(nil, macB, macA, 0x8100)
	eth = append(eth, 0x00, 0x64, custom>>8, custom&0xff)
	pkt := gopacket.NewPacket(append(eth, pdu...), layers.LayerTypeEthernet, gopacket.Default)
	if l, ok := pkt.Layer(swhalayer.LayerTypeSWHA).(*swhalayer.SWHA); !ok || l.Seq != 9 {
		t.Fatalf("tagged custom EtherType not decoded: %v", pkt)
	}
}

func TestCorruptFrameIsDecodeFailure(t *testing.T) {
	var c frame.Codec
	h := header(frame.TypeData, 1)
	pdu, _ := c.Append(nil, &h, []byte("abc"))
	pdu[frame.HeaderLen+9] ^= 1
	pkt := gopacket.NewPacket(append(frame.AppendEthernet(nil, macB, macA, frame.EtherType), pdu...), layers.LayerTypeEthernet, gopacket.Default)
	if pkt.Layer(swhalayer.LayerTypeSWHA) != nil {
		t.Fatal("corrupt frame decoded as SWHA")
	}
	if pkt.ErrorLayer() == nil {
		t.Fatal("corrupt frame produced no error layer")
	}
}

func TestSerializeLayers(t *testing.T) {
	buf := gopacket.NewSerializeBuffer()
	s := &swhalayer.SWHA{Header: header(frame.TypeData, 5)}
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: frame.EtherType}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{}, eth, s, gopacket.Payload("hello")); err != nil {
		t.Fatal(err)
	}
	pkt := gopacket.NewPacket(buf.Bytes(), layers.LayerTypeEthernet, gopacket.Default)
	l, ok := pkt.Layer(swhalayer.LayerTypeSWHA).(*swhalayer.SWHA)
	if !ok || l.Seq != 5 || string(l.LayerPayload()) != "hello" {
		t.Fatalf("serialized frame did not decode: %v", pkt)
	}
}

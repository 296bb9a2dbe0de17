package vip

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var testMAC = net.HardwareAddr{0x02, 0x53, 0x57, 0x48, 0x41, 0x01}

func TestGratuitousARP(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.10")
	f, dst, err := Announcement(testMAC, ip, true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst, broadcast) {
		t.Fatalf("sent to %s, want broadcast", dst)
	}
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("decode: %v", el.Error())
	}
	eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	arp, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
	if !ok {
		t.Fatal("no ARP layer")
	}
	if !bytes.Equal(eth.SrcMAC, testMAC) || !bytes.Equal(eth.DstMAC, broadcast) {
		t.Fatalf("ethernet %s > %s", eth.SrcMAC, eth.DstMAC)
	}
	// An announcement: a request with sender and target protocol address
	// both the virtual address, and the sender's MAC the new owner's.
	if arp.Operation != layers.ARPRequest || !bytes.Equal(arp.SourceHwAddress, testMAC) ||
		!bytes.Equal(arp.SourceProtAddress, ip.AsSlice()) || !bytes.Equal(arp.DstProtAddress, ip.AsSlice()) {
		t.Fatalf("arp: op %d sender %x/%v target %v", arp.Operation, arp.SourceHwAddress, arp.SourceProtAddress, arp.DstProtAddress)
	}
}

func TestUnsolicitedNA(t *testing.T) {
	ip := netip.MustParseAddr("2001:db8::1")
	for _, router := range []bool{true, false} {
		f, dst, err := Announcement(testMAC, ip, router)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst, allNodesMAC) {
			t.Fatalf("sent to %s, want %s", dst, allNodesMAC)
		}
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if el := p.ErrorLayer(); el != nil {
			t.Fatalf("decode: %v", el.Error())
		}
		ip6 := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		icmp := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		na, ok := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
		if !ok {
			t.Fatal("no neighbour advertisement")
		}
		// RFC 4861 7.1.2: a receiver drops an NA whose hop limit is not 255.
		if ip6.HopLimit != 255 || !ip6.DstIP.Equal(allNodesAddr.AsSlice()) || !ip6.SrcIP.Equal(ip.AsSlice()) {
			t.Fatalf("ipv6 %s > %s hop limit %d", ip6.SrcIP, ip6.DstIP, ip6.HopLimit)
		}
		if !na.TargetAddress.Equal(ip.AsSlice()) || na.Flags&naOverride == 0 || (na.Flags&naRouter != 0) != router || na.Flags&0x40 != 0 {
			t.Fatalf("na: target %s flags %#x (router %v)", na.TargetAddress, na.Flags, router)
		}
		if len(na.Options) != 1 || na.Options[0].Type != layers.ICMPv6OptTargetAddress || !bytes.Equal(na.Options[0].Data, testMAC) {
			t.Fatalf("na options %v", na.Options)
		}
		// The checksum covers the pseudo-header: recompute it over the
		// decoded packet and compare.
		got := icmp.Checksum
		re := *icmp
		if err := re.SetNetworkLayerForChecksum(ip6); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, &re, gopacket.Payload(icmp.Payload)); err != nil {
			t.Fatal(err)
		}
		if want := uint16(buf.Bytes()[2])<<8 | uint16(buf.Bytes()[3]); got != want || got == 0 {
			t.Fatalf("checksum %#x, want %#x", got, want)
		}
	}
}

func TestAnnouncementErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		mac  net.HardwareAddr
		ip   string
		fn   func(net.HardwareAddr, netip.Addr) ([]byte, error)
	}{
		{"arp-v6", testMAC, "2001:db8::1", GratuitousARP},
		{"arp-short-mac", testMAC[:4], "192.0.2.1", GratuitousARP},
		{"na-v4", testMAC, "192.0.2.1", func(m net.HardwareAddr, a netip.Addr) ([]byte, error) { return UnsolicitedNA(m, a, true) }},
		{"na-mapped", testMAC, "::ffff:192.0.2.1", func(m net.HardwareAddr, a netip.Addr) ([]byte, error) { return UnsolicitedNA(m, a, true) }},
	} {
		if _, err := c.fn(c.mac, netip.MustParseAddr(c.ip)); err == nil {
			t.Errorf("%s: no error", c.name)
		} else if !bytes.Contains([]byte(err.Error()), []byte(netip.MustParseAddr(c.ip).String())) {
			t.Errorf("%s: %v does not name the address", c.name, err)
		}
	}
}

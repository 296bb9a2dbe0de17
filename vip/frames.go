package vip

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Announcement frames. Hosts behind the pair hold the old active's MAC for
// the virtual address in their neighbour caches; these frames make them
// replace it at once instead of after their entry goes stale (tens of
// seconds, during which they send to a dead box).

var (
	broadcast    = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	allNodesMAC  = net.HardwareAddr{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}
	allNodesAddr = netip.MustParseAddr("ff02::1")
)

// Neighbour advertisement flags (RFC 4861 4.4), in the byte gopacket keeps.
const (
	naRouter   = 0x80
	naOverride = 0x20
)

// GratuitousARP is an ARP announcement of ip at mac (RFC 5227 3: a request
// with sender and target IP both ip, broadcast): a request rather than a
// reply because some hosts update their caches from requests only.
func GratuitousARP(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if !ip.Is4() {
		return nil, fmt.Errorf("vip: gratuitous ARP for %s: not an IPv4 address", ip)
	}
	if len(mac) != 6 {
		return nil, fmt.Errorf("vip: gratuitous ARP for %s: bad MAC %q", ip, mac)
	}
	a := ip.As4()
	eth := &layers.Ethernet{SrcMAC: mac, DstMAC: broadcast, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: mac, SourceProtAddress: a[:],
		DstHwAddress: make([]byte, 6), DstProtAddress: a[:],
	}
	return serialize(eth, arp)
}

// UnsolicitedNA is an unsolicited neighbour advertisement of ip at mac to
// all nodes (RFC 4861 7.2.6), with the override flag so that hosts replace
// the MAC they hold, and the router flag when the address is a gateway (a
// host that sees a router's advertisement without it drops it from its
// default routers).
func UnsolicitedNA(mac net.HardwareAddr, ip netip.Addr, router bool) ([]byte, error) {
	if !ip.Is6() || ip.Is4In6() {
		return nil, fmt.Errorf("vip: neighbour advertisement for %s: not an IPv6 address", ip)
	}
	if len(mac) != 6 {
		return nil, fmt.Errorf("vip: neighbour advertisement for %s: bad MAC %q", ip, mac)
	}
	eth := &layers.Ethernet{SrcMAC: mac, DstMAC: allNodesMAC, EthernetType: layers.EthernetTypeIPv6}
	ip6 := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 255,
		SrcIP: ip.AsSlice(), DstIP: allNodesAddr.AsSlice()}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip6); err != nil {
		return nil, fmt.Errorf("vip: neighbour advertisement for %s: %w", ip, err)
	}
	flags := uint8(naOverride)
	if router {
		flags |= naRouter
	}
	na := &layers.ICMPv6NeighborAdvertisement{Flags: flags, TargetAddress: ip.AsSlice(),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: mac}}}
	return serialize(eth, ip6, icmp, na)
}

// Announcement is the frame that announces ip at mac, and the destination
// MAC it goes to.
func Announcement(mac net.HardwareAddr, ip netip.Addr, router bool) (frame []byte, dst net.HardwareAddr, err error) {
	if ip.Is4() {
		f, err := GratuitousARP(mac, ip)
		return f, broadcast, err
	}
	f, err := UnsolicitedNA(mac, ip, router)
	return f, allNodesMAC, err
}

func serialize(ls ...gopacket.SerializableLayer) ([]byte, error) {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		return nil, fmt.Errorf("vip: build frame: %w", err)
	}
	return buf.Bytes(), nil
}

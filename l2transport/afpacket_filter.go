package l2transport

import (
	"fmt"

	"golang.org/x/net/bpf"

	"github.com/swha/swha/frame"
)

// Values of the packet type (sll_pkttype) the kernel exposes to classic BPF via
// SKF_AD_PKTTYPE; see linux/if_packet.h.
const (
	pktTypeOtherHost = 3 // unicast to someone else: promiscuous mode, or a VLAN we have no device for
	pktTypeOutgoing  = 4 // our own transmissions looped to taps
)

const (
	ethTypeVLAN = 0x8100
	vlanTagLen  = 4
	// bpfAccept is the snap length returned for accepted frames. It only has to be
	// at least the largest frame (64 KiB MTU plus an inline tag); the kernel clamps
	// it to the frame length.
	bpfAccept = 1 << 18
)

// etherTypeFilter returns a classic BPF program, for a SOCK_RAW packet socket, that
// accepts only frames of etherType with at least a minimal swha PDU, untagged or
// behind one inline 802.1Q tag, and that are addressed to this host.
//
// The socket is also bound to etherType, so the kernel already demultiplexes by
// protocol; the filter is what makes that exact. Binding alone still lets through
// frames that are too short to hold a PDU, frames of a VLAN we have no device for
// (the kernel hands them up as PACKET_OTHERHOST after stripping the tag), unicast
// for other hosts when the port is promiscuous, and, if the interface is a tap
// target, our own frames. Dropping them in the kernel saves a copy and a wakeup
// each, and keeps junk from ever counting as "valid" for peer discovery.
//
// Tags are usually stripped into skb metadata before packet sockets see a frame,
// but not on every driver and path (e.g. QinQ inner tags, some software
// bridges), so an inline tag is handled too.
func etherTypeFilter(etherType uint16) ([]bpf.RawInstruction, error) {
	const (
		minUntagged = frame.EthernetHeaderLen + frame.MinLen
		minTagged   = minUntagged + vlanTagLen
	)
	prog := []bpf.Instruction{
		/* 0 */ bpf.LoadExtension{Num: bpf.ExtType},
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: pktTypeOutgoing, SkipTrue: 11},
		/* 2 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: pktTypeOtherHost, SkipTrue: 10},
		/* 3 */ bpf.LoadAbsolute{Off: 12, Size: 2},
		/* 4 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(etherType), SkipTrue: 5},
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: ethTypeVLAN, SkipTrue: 7},
		/* 6 */ bpf.LoadAbsolute{Off: 16, Size: 2},
		/* 7 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(etherType), SkipTrue: 5},
		/* 8 */ bpf.LoadConstant{Dst: bpf.RegX, Val: minTagged}, // tagged: skip 9
		/* 9 */ bpf.Jump{Skip: 1},
		/* 10 */ bpf.LoadConstant{Dst: bpf.RegX, Val: minUntagged},
		/* 11 */ bpf.LoadExtension{Num: bpf.ExtLen},
		/* 12 */ bpf.JumpIfX{Cond: bpf.JumpGreaterOrEqual, SkipTrue: 1},
		/* 13 */ bpf.RetConstant{Val: 0},
		/* 14 */ bpf.RetConstant{Val: bpfAccept},
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("l2transport: assemble BPF filter for EtherType %#04x: %w", etherType, err)
	}
	return raw, nil
}

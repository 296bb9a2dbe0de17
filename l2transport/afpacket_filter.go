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
// behind one inline 802.1Q tag, and that are addressed to this host; with include
// or exclude set, also only the swha frame types in include, or none of those in
// exclude (at most one of the two may be set).
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
//
// Every packet socket bound to the EtherType gets its own copy of each frame, so
// two links on one interface split the traffic only through their filters: a
// dedicated heartbeat link includes frame.TypeHeartbeat and the session's link
// excludes it.
func etherTypeFilter(etherType uint16, include, exclude []frame.Type) ([]bpf.RawInstruction, error) {
	prog, err := filterProgram(etherType, include, exclude)
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("l2transport: assemble BPF filter for EtherType %#04x: %w", etherType, err)
	}
	return raw, nil
}

// filterPrefix is the number of instructions at the start of a filterProgram that
// read the packet type, an extension golang.org/x/net/bpf's VM does not run; tests
// run the rest.
const filterPrefix = 3

// filterProgram is etherTypeFilter's program before assembly.
func filterProgram(etherType uint16, include, exclude []frame.Type) ([]bpf.Instruction, error) {
	if len(include) > 0 && len(exclude) > 0 {
		return nil, fmt.Errorf("l2transport: BPF filter: frame types both included (%v) and excluded (%v)", include, exclude)
	}
	types, keep := include, true
	if len(exclude) > 0 {
		types, keep = exclude, false
	}
	for _, t := range types {
		if !t.Known() {
			return nil, fmt.Errorf("l2transport: BPF filter: frame type %v is not a type of this version", t)
		}
	}
	const (
		minUntagged = frame.EthernetHeaderLen + frame.MinLen
		minTagged   = minUntagged + vlanTagLen
		typeOff     = frame.EthernetHeaderLen + 1 // the type byte is at PDU offset 1
	)
	var a bpfAsm
	a.op(bpf.LoadExtension{Num: bpf.ExtType})
	a.jump(bpf.JumpEqual, pktTypeOutgoing, "drop", "")
	a.jump(bpf.JumpEqual, pktTypeOtherHost, "drop", "")
	a.op(bpf.LoadAbsolute{Off: 12, Size: 2})
	a.jump(bpf.JumpEqual, uint32(etherType), "untagged", "")
	a.jump(bpf.JumpEqual, ethTypeVLAN, "", "drop")
	a.op(bpf.LoadAbsolute{Off: 16, Size: 2})
	a.jump(bpf.JumpEqual, uint32(etherType), "", "drop")
	for _, b := range []struct {
		label  string
		minLen uint32
		off    uint32
	}{{"tagged", minTagged, typeOff + vlanTagLen}, {"untagged", minUntagged, typeOff}} {
		a.label(b.label)
		a.op(bpf.LoadExtension{Num: bpf.ExtLen})
		a.jump(bpf.JumpLessThan, b.minLen, "drop", "")
		if len(types) > 0 {
			a.op(bpf.LoadAbsolute{Off: b.off, Size: 1})
			for _, t := range types {
				if keep {
					a.jump(bpf.JumpEqual, uint32(t), "accept-"+b.label, "")
				} else {
					a.jump(bpf.JumpEqual, uint32(t), "drop", "")
				}
			}
			if keep {
				a.goTo("drop")
			}
			a.label("accept-" + b.label)
		}
		a.op(bpf.RetConstant{Val: bpfAccept})
	}
	a.label("drop")
	a.op(bpf.RetConstant{Val: 0})
	return a.resolve()
}

// bpfAsm assembles a classic BPF program with forward jumps to named labels, so
// that a program whose length depends on its configuration needs no hand-counted
// skips. "" as a jump target means the next instruction.
type bpfAsm struct {
	ins    []bpf.Instruction
	jumps  map[int][2]string // instruction index → true, false targets
	labels map[string]int
}

func (a *bpfAsm) op(i bpf.Instruction) { a.ins = append(a.ins, i) }

func (a *bpfAsm) jump(cond bpf.JumpTest, val uint32, ifTrue, ifFalse string) {
	if a.jumps == nil {
		a.jumps = map[int][2]string{}
	}
	a.jumps[len(a.ins)] = [2]string{ifTrue, ifFalse}
	a.op(bpf.JumpIf{Cond: cond, Val: val})
}

func (a *bpfAsm) goTo(label string) {
	if a.jumps == nil {
		a.jumps = map[int][2]string{}
	}
	a.jumps[len(a.ins)] = [2]string{label, ""}
	a.op(bpf.Jump{})
}

func (a *bpfAsm) label(name string) {
	if a.labels == nil {
		a.labels = map[string]int{}
	}
	a.labels[name] = len(a.ins)
}

func (a *bpfAsm) resolve() ([]bpf.Instruction, error) {
	skip := func(from int, label string) (uint32, error) {
		if label == "" {
			return 0, nil
		}
		to, ok := a.labels[label]
		if !ok || to <= from {
			return 0, fmt.Errorf("l2transport: BPF filter: instruction %d jumps to %q, not a later label", from, label)
		}
		return uint32(to - from - 1), nil
	}
	for i, t := range a.jumps {
		st, err := skip(i, t[0])
		if err != nil {
			return nil, err
		}
		sf, err := skip(i, t[1])
		if err != nil {
			return nil, err
		}
		switch j := a.ins[i].(type) {
		case bpf.JumpIf:
			if st > 255 || sf > 255 {
				return nil, fmt.Errorf("l2transport: BPF filter: conditional jump of %d/%d instructions is too long", st, sf)
			}
			j.SkipTrue, j.SkipFalse = uint8(st), uint8(sf)
			a.ins[i] = j
		case bpf.Jump:
			j.Skip = st
			a.ins[i] = j
		}
	}
	return a.ins, nil
}

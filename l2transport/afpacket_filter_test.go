package l2transport

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"

	"github.com/swha/swha/frame"
)

// filterFrame builds an Ethernet frame of etherType carrying a minimal swha PDU
// of type t, behind an inline 802.1Q tag if tagged, cut to cut bytes if cut > 0.
func filterFrame(etherType uint16, t frame.Type, tagged bool, cut int) []byte {
	b := make([]byte, 12, 64+frame.MinLen)
	if tagged {
		b = binary.BigEndian.AppendUint16(b, ethTypeVLAN)
		b = binary.BigEndian.AppendUint16(b, 100)
	}
	b = binary.BigEndian.AppendUint16(b, etherType)
	pdu := make([]byte, frame.MinLen)
	pdu[0], pdu[1] = frame.Version, byte(t)
	b = append(b, pdu...)
	if cut > 0 {
		b = b[:cut]
	}
	return b
}

// TestFilterFrameTypes runs the filter, less its packet-type prefix (an extension
// the VM does not run), on untagged and tagged frames of every type.
func TestFilterFrameTypes(t *testing.T) {
	const et = frame.EtherType
	for _, tc := range []struct {
		name             string
		include, exclude []frame.Type
		accept           func(frame.Type) bool
	}{
		{"all", nil, nil, func(frame.Type) bool { return true }},
		{"heartbeat only", []frame.Type{frame.TypeHeartbeat}, nil, func(t frame.Type) bool { return t == frame.TypeHeartbeat }},
		{"two", []frame.Type{frame.TypeHello, frame.TypeClose}, nil, func(t frame.Type) bool { return t == frame.TypeHello || t == frame.TypeClose }},
		{"no heartbeat", nil, []frame.Type{frame.TypeHeartbeat}, func(t frame.Type) bool { return t != frame.TypeHeartbeat }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := filterProgram(et, tc.include, tc.exclude)
			if err != nil {
				t.Fatal(err)
			}
			vm, err := bpf.NewVM(prog[filterPrefix:])
			if err != nil {
				t.Fatal(err)
			}
			for typ := frame.Type(0); typ <= 8; typ++ {
				for _, tagged := range []bool{false, true} {
					f := filterFrame(et, typ, tagged, 0)
					n, err := vm.Run(f)
					if err != nil {
						t.Fatal(err)
					}
					if want := tc.accept(typ); (n > 0) != want {
						t.Errorf("type %v tagged %v: accepted %d bytes, want accept %v", typ, tagged, n, want)
					}
				}
			}
			// Whatever the types: another EtherType and frames too short for a PDU
			// never pass.
			for _, f := range [][]byte{
				filterFrame(0x0800, frame.TypeHeartbeat, false, 0),
				filterFrame(0x0800, frame.TypeHeartbeat, true, 0),
				filterFrame(et, frame.TypeHeartbeat, false, frame.EthernetHeaderLen+frame.MinLen-1),
				filterFrame(et, frame.TypeHeartbeat, true, frame.EthernetHeaderLen+vlanTagLen+frame.MinLen-1),
			} {
				if n, _ := vm.Run(f); n != 0 {
					t.Errorf("accepted a %d-byte frame that is not a whole swha PDU of our EtherType", len(f))
				}
			}
			if _, err := etherTypeFilter(et, tc.include, tc.exclude); err != nil {
				t.Fatalf("assemble: %v", err)
			}
		})
	}
	if _, err := filterProgram(et, []frame.Type{frame.TypeData}, []frame.Type{frame.TypeAck}); err == nil {
		t.Error("include and exclude together accepted")
	}
	if _, err := filterProgram(et, []frame.Type{9}, nil); err == nil {
		t.Error("unknown frame type accepted")
	}
}

package wireshark_test

// The test feeds frames from the Go encoder (package frame) through tshark with
// swha.lua loaded and compares every dissected field with what was encoded, so the
// dissector and the encoder are each other's check against docs/ARCHITECTURE.md.
//
// Lua as root. tshark runs -X lua_script scripts (and personal plugins) only when it
// was not started with special privileges, which on Linux includes plain root
// (running_superuser is true here), or when the global init.lua sets
// run_user_scripts_when_superuser = true. Neither the command line nor the environment
// can override that: the global init.lua comes from the data directory, and
// WIRESHARK_DATA_DIR is ignored under special privileges; a personal init.lua is itself
// a user script. So it comes down to the installed default:
//   - Debian 12, tshark 4.0.17 with Lua 5.2.4: /usr/share/wireshark/init.lua sets
//     enable_lua = true and run_user_scripts_when_superuser = true, so -X lua_script
//     works as root unchanged.
//   - Older releases shipped run_user_scripts_when_superuser = false (and disabled
//     dofile and friends for root), and some tshark builds have no Lua at all. There,
//     run the test as an unprivileged user. The test never edits system files;
//     requireDissector fails with this hint when tshark silently skips the script.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/swha/swha/frame"
)

const (
	tsharkTimeout = 2 * time.Minute
	// altEtherType stands for a deployment that moved swha off 0x88B5; one frame uses
	// it to check that the dissector's EtherType preference registers it.
	altEtherType = 0x88B6
)

var (
	dstMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
	srcMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
)

// testFrame is one frame of the capture and what tshark must make of it.
type testFrame struct {
	name      string
	hdr       frame.Header
	payload   []byte
	keyring   *frame.Keyring // signs the frame when set
	pad       int            // bytes of Ethernet padding after the PDU
	etherType uint16         // frame.EtherType when zero
	vlan      uint16         // 802.1Q VLAN ID, untagged when zero
	corrupt   func(pdu []byte)

	// Set when the frame is built.
	pdu    []byte
	wire   []byte
	decErr error // what frame.Codec.Decode says of pdu
}

// malformed frames are checked for their expert info only: their fields are, by
// construction, not what was encoded.
type malformedFrame struct {
	testFrame
	wantExpert string
}

func TestDissector(t *testing.T) {
	tshark := findTshark(t)
	script, err := filepath.Abs("swha.lua")
	if err != nil {
		t.Fatal(err)
	}
	// Only tshark opens the script; reading it here too makes go test's result cache
	// notice when it changes.
	if _, err := os.ReadFile(script); err != nil {
		t.Fatal(err)
	}

	frames := wellFormedFrames(t)
	malformed := malformedFrames(t)
	all := make([]*testFrame, 0, len(frames)+len(malformed))
	all = append(all, frames...)
	for _, m := range malformed {
		all = append(all, &m.testFrame)
	}
	for _, tf := range all {
		build(t, tf)
	}
	pcap := writePcap(t, all)

	requireDissector(t, tshark, script)
	dissect := func(args ...string) []byte {
		return runTshark(t, tshark, append([]string{
			"-n", "-r", pcap, "-X", "lua_script:" + script,
			"-o", fmt.Sprintf("swha.ethertypes:0x%04X", altEtherType),
		}, args...)...)
	}
	packets := parsePackets(t, dissect("-T", "json"))
	if len(packets) != len(all) {
		t.Fatalf("tshark dissected %d packets, want %d", len(packets), len(all))
	}
	infoOut := dissect("-o", `gui.column.format:"Info","%i"`)
	infos := strings.Split(strings.TrimRight(string(infoOut), "\n"), "\n")
	if len(infos) != len(all) {
		t.Fatalf("tshark printed %d Info lines, want %d:\n%s", len(infos), len(all), infoOut)
	}

	for i, tf := range frames {
		t.Run(tf.name, func(t *testing.T) {
			got := packets[i]
			checkFields(t, tf, got)
			if want := wantInfo(tf); strings.TrimSpace(infos[i]) != want {
				t.Errorf("Info column\n got %q\nwant %q", strings.TrimSpace(infos[i]), want)
			}
			if _, ok := got["_ws.lua.error"]; ok {
				t.Errorf("Lua error while dissecting: %v", got["_ws.expert.message"])
			}
			if mal := got.withPrefix("_ws.malformed"); len(mal) > 0 {
				t.Errorf("dissected as malformed: %v", mal)
			}
		})
	}
	for i, m := range malformed {
		t.Run(m.name, func(t *testing.T) {
			got := packets[len(frames)+i]
			if _, ok := got[m.wantExpert]; !ok {
				t.Errorf("no expert info %s; swha fields: %v", m.wantExpert, got.withPrefix("swha"))
			}
		})
	}
}

func wellFormedFrames(t *testing.T) []*testFrame {
	t.Helper()
	kr, err := frame.NewKeyring(0xA1B2C3D4, map[uint32][]byte{
		0xA1B2C3D4: []byte("0123456789abcdef0123456789abcdef"),
		7:          []byte("an older key, still accepted...."),
	})
	if err != nil {
		t.Fatal(err)
	}
	const txn = 0x1122334455667788
	bigAck := uint64(1)<<40 + 5 // past 2^32, so the SACK sums need 64-bit arithmetic

	return []*testFrame{{
		name: "hello",
		hdr: frame.Header{
			Type: frame.TypeHello, Flags: frame.FlagAckRequest,
			NodeID: 0x0000_0200_0000_0001, Epoch: 1, Seq: 1,
		},
		payload: []byte("swha/1 node-a"),
	}, {
		name: "hello-ack",
		hdr: frame.Header{
			Type: frame.TypeHelloAck, Flags: frame.FlagAckValid,
			NodeID: 0x0000_0200_0000_0002, Epoch: 1, Seq: 1, Ack: 2,
		},
		payload:   []byte("node-b"),
		etherType: altEtherType,
	}, {
		name: "data-first-fragment",
		hdr: frame.Header{
			Type: frame.TypeData, Flags: frame.FlagAckValid,
			NodeID: 0x0000_0200_0000_0001, Epoch: 7, Seq: 1000, Ack: 500, TxnID: txn,
		},
		payload: pattern(1200),
		vlan:    100, // HA links are often tagged
	}, {
		name: "data-last-fragment-retransmit",
		hdr: frame.Header{
			Type:   frame.TypeData,
			Flags:  frame.FlagLastFragment | frame.FlagRetransmit | frame.FlagAckRequest,
			NodeID: 0x0000_0200_0000_0001, Epoch: 7, FragOffset: 1200, Seq: 1001, TxnID: txn,
		},
		payload: pattern(300),
	}, {
		name: "ack-4-sack",
		hdr: frame.Header{
			Type: frame.TypeAck, Flags: frame.FlagAckValid,
			NodeID: 0x0000_0200_0000_0002, Epoch: 7, Seq: 42, Ack: bigAck,
			NumSACK: 4, SACK: [4]frame.SACKBlock{
				{Start: bigAck + 2, End: bigAck + 4},
				{Start: bigAck + 10, End: bigAck + 11},
				{Start: bigAck + 100, End: bigAck + 200},
				{Start: bigAck + 1<<31, End: bigAck + 1<<32 - 1}, // deltas with the top bit set
			},
		},
	}, {
		name: "heartbeat-auth",
		hdr: frame.Header{
			Type: frame.TypeHeartbeat, Flags: frame.FlagAckValid,
			NodeID: 0x0000_0200_0000_0001, Epoch: 8, Seq: 77, Ack: 60,
			NumSACK: 1, SACK: [4]frame.SACKBlock{{Start: 62, End: 70}},
		},
		payload: []byte{0, 0, 0, 0, 0, 0, 0x03, 0xe8},
		keyring: kr,
	}, {
		// The smallest PDU already fills a minimum Ethernet frame, but receivers must
		// accept padding anyway (some NICs and switches add it), so add some.
		name: "reset-padded",
		hdr: frame.Header{
			Type:   frame.TypeReset,
			NodeID: 0x0000_0200_0000_0002, Epoch: 9,
		},
		pad: 26,
	}, {
		// Values past 2^53 catch a dissector that handles 64-bit fields as Lua numbers.
		name: "close-max-values",
		hdr: frame.Header{
			Type: frame.TypeClose, Flags: frame.FlagAckValid | frame.FlagLastFragment,
			NodeID: 1<<64 - 1, Epoch: 1<<32 - 1, FragOffset: 1<<32 - 1,
			Seq: 1<<64 - 1, Ack: 1<<63 + 3, TxnID: 1<<64 - 2,
			NumSACK: 2, SACK: [4]frame.SACKBlock{
				{Start: 1<<63 + 4, End: 1<<63 + 5},
				{Start: 1<<63 + 9, End: 1<<63 + 1<<20},
			},
		},
		payload: []byte("bye"),
	}, {
		// Small messages share a frame: 16-bit length, bytes, repeated.
		name: "data-batch",
		hdr: frame.Header{
			Type: frame.TypeData, Flags: frame.FlagBatch | frame.FlagLastFragment | frame.FlagAckValid,
			NodeID: 0x0000_0200_0000_0001, Epoch: 7, Seq: 1003, Ack: 9, TxnID: txn + 2,
		},
		payload: batch([]byte("route 10.0.0.0/8"), nil, pattern(300)),
	}, {
		name: "data-bad-crc",
		hdr: frame.Header{
			Type: frame.TypeData, Flags: frame.FlagLastFragment,
			NodeID: 0x0000_0200_0000_0001, Epoch: 7, Seq: 1002, TxnID: txn + 1,
		},
		payload: []byte("corrupted in flight"),
		corrupt: func(pdu []byte) { pdu[len(pdu)-1] ^= 0x01 },
	}}
}

func malformedFrames(t *testing.T) []*malformedFrame {
	t.Helper()
	hdr := frame.Header{
		Type: frame.TypeAck, Flags: frame.FlagAckValid, NodeID: 3, Epoch: 1, Seq: 5, Ack: 10,
		NumSACK: 4, SACK: [4]frame.SACKBlock{
			{Start: 11, End: 12}, {Start: 13, End: 14}, {Start: 15, End: 16}, {Start: 17, End: 18},
		},
	}
	return []*malformedFrame{{
		testFrame: testFrame{
			name: "bad-version", hdr: hdr,
			corrupt: func(pdu []byte) { pdu[0] = 2; fixCRC(pdu) },
		},
		wantExpert: "swha.version.bad",
	}, {
		// Turn the first 8 payload bytes into a fifth SACK block, keeping the PDU
		// length and a valid CRC, so that only the SACK count is wrong.
		testFrame: testFrame{
			name: "sack-count-5", hdr: hdr, payload: pattern(16),
			corrupt: func(pdu []byte) {
				pdu[4] = 5
				binary.BigEndian.PutUint16(pdu[6:], 8)
				fixCRC(pdu)
			},
		},
		wantExpert: "swha.sack_count.bad",
	}, {
		testFrame: testFrame{
			name: "length-past-frame", hdr: hdr, payload: pattern(16),
			corrupt: func(pdu []byte) { binary.BigEndian.PutUint16(pdu[6:], 1000) },
		},
		wantExpert: "swha.length.bad",
	}}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

func fixCRC(pdu []byte) {
	body := pdu[:len(pdu)-4]
	binary.BigEndian.PutUint32(pdu[len(body):], crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
}

func build(t *testing.T, tf *testFrame) {
	t.Helper()
	pdu, err := frame.NewCodec(tf.keyring).Append(nil, &tf.hdr, tf.payload)
	if err != nil {
		t.Fatalf("%s: encode: %v", tf.name, err)
	}
	if tf.corrupt != nil {
		tf.corrupt(pdu)
	}
	tf.pdu = pdu
	var h frame.Header
	_, tf.decErr = frame.NewCodec(tf.keyring).Decode(pdu, &h)

	etherType := tf.etherType
	if etherType == 0 {
		etherType = frame.EtherType
	}
	var wire []byte
	if tf.vlan != 0 {
		wire = frame.AppendEthernet(nil, dstMAC, srcMAC, 0x8100)
		wire = binary.BigEndian.AppendUint16(wire, tf.vlan)
		wire = binary.BigEndian.AppendUint16(wire, etherType)
	} else {
		wire = frame.AppendEthernet(nil, dstMAC, srcMAC, etherType)
	}
	wire = append(wire, pdu...)
	tf.wire = append(wire, make([]byte, tf.pad)...)
}

func writePcap(t *testing.T, frames []*testFrame) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "swha.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, tf := range frames {
		ci := gopacket.CaptureInfo{
			Timestamp:     ts.Add(time.Duration(i) * time.Millisecond),
			CaptureLength: len(tf.wire),
			Length:        len(tf.wire),
		}
		if err := w.WritePacket(ci, tf.wire); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func findTshark(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("tshark")
	if err == nil {
		return path
	}
	msg := "tshark not in PATH (Debian/Ubuntu: apt-get install tshark)"
	if os.Getenv("SWHA_REQUIRE_NETNS") == "1" {
		t.Fatal(msg + "; SWHA_REQUIRE_NETNS=1 makes it required")
	}
	t.Skip(msg)
	return ""
}

func runTshark(t *testing.T, tshark string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), tsharkTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tshark, args...)
	// A private config directory keeps the user's preferences and personal plugins
	// (an installed copy of swha.lua would register the protocol twice) out of the test.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatalf("tshark %s: timed out after %v", strings.Join(args, " "), tsharkTimeout)
	}
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	// Wireshark reports a script that fails to load on stderr and carries on without it.
	if strings.Contains(stderr.String(), "Lua") {
		t.Fatalf("tshark reported a Lua problem:\n%s", stderr.Bytes())
	}
	return out
}

// packet is one dissected packet flattened to field name -> values in tree order.
// Flattening keeps the test independent of how the dissector nests its subtrees.
type packet map[string][]string

func (p packet) withPrefix(prefix string) map[string][]string {
	m := map[string][]string{}
	for k, v := range p {
		if k == prefix || strings.HasPrefix(k, prefix+".") {
			m[k] = v
		}
	}
	return m
}

func parsePackets(t *testing.T, out []byte) []packet {
	t.Helper()
	var raw []json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("tshark JSON: %v", err)
	}
	packets := make([]packet, len(raw))
	for i, r := range raw {
		packets[i] = packet{}
		// tshark repeats a key when a field occurs more than once in a subtree (the
		// SACK blocks); a token walk sees every occurrence where Unmarshal keeps one.
		dec := json.NewDecoder(bytes.NewReader(r))
		if err := flatten(dec, "", packets[i]); err != nil {
			t.Fatalf("tshark JSON, packet %d: %v", i+1, err)
		}
	}
	return packets
}

func flatten(dec *json.Decoder, key string, p packet) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok := tok.(type) {
	case json.Delim:
		inObject := tok == '{'
		for dec.More() {
			k := key
			if inObject {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k = kt.(string)
			}
			if err := flatten(dec, k, p); err != nil {
				return err
			}
		}
		_, err = dec.Token() // closing delimiter
		return err
	case string:
		p[key] = append(p[key], tok)
	}
	return nil
}

// requireDissector fails with the likely cause when tshark does not register the
// swha protocol, which is what it does, silently, when it declines to run Lua scripts.
func requireDissector(t *testing.T, tshark, script string) {
	t.Helper()
	// -G must come first.
	out := runTshark(t, tshark, "-G", "protocols", "-X", "lua_script:"+script)
	for line := range strings.Lines(string(out)) {
		if cols := strings.Split(strings.TrimRight(line, "\n"), "\t"); len(cols) == 3 && cols[2] == "swha" {
			return
		}
	}
	hint := ""
	if os.Geteuid() == 0 {
		hint = "; running as root: the global init.lua must set enable_lua = true and " +
			"run_user_scripts_when_superuser = true (see the comment at the top of this file)"
	}
	t.Fatalf("tshark did not load %s: no swha protocol in tshark -G protocols%s", script, hint)
}

// checkFields compares every swha field of got with what tf encoded, and that no
// other swha field is present.
func checkFields(t *testing.T, tf *testFrame, got packet) {
	t.Helper()
	h := &tf.hdr
	flags := h.Flags
	if tf.keyring != nil {
		flags |= frame.FlagAuth
	}
	u := func(v uint64) []string { return []string{strconv.FormatUint(v, 10)} }
	bit := func(f frame.Flags) []string {
		if flags&f != 0 {
			return []string{"1"}
		}
		return []string{"0"}
	}
	crcOff := len(tf.pdu) - 4
	crcStatus := uint64(1) // Good
	if errors.Is(tf.decErr, frame.ErrBadCRC) {
		crcStatus = 0
	} else if tf.decErr != nil {
		t.Fatalf("frame.Decode: %v", tf.decErr)
	}

	want := map[string][]string{
		"swha.version":             u(frame.Version),
		"swha.type":                u(uint64(h.Type)),
		"swha.flags":               u(uint64(flags)),
		"swha.flags.auth":          bit(frame.FlagAuth),
		"swha.flags.last_fragment": bit(frame.FlagLastFragment),
		"swha.flags.ack_valid":     bit(frame.FlagAckValid),
		"swha.flags.ack_request":   bit(frame.FlagAckRequest),
		"swha.flags.retransmit":    bit(frame.FlagRetransmit),
		"swha.flags.batch":         bit(frame.FlagBatch),
		"swha.sack_count":          u(uint64(h.NumSACK)),
		"swha.reserved":            u(0),
		"swha.payload_len":         u(uint64(len(tf.payload))),
		"swha.node_id":             u(h.NodeID),
		"swha.epoch":               u(uint64(h.Epoch)),
		"swha.frag_offset":         u(uint64(h.FragOffset)),
		"swha.seq":                 u(h.Seq),
		"swha.ack":                 u(h.Ack),
		"swha.txn_id":              u(h.TxnID),
		"swha.crc":                 u(uint64(binary.BigEndian.Uint32(tf.pdu[crcOff:]))),
		"swha.crc.status":          u(crcStatus),
	}
	for _, b := range h.SACK[:h.NumSACK] {
		want["swha.sack.start"] = append(want["swha.sack.start"], u(b.Start)...)
		want["swha.sack.end"] = append(want["swha.sack.end"], u(b.End)...)
	}
	if len(tf.payload) > 0 {
		want["swha.payload"] = []string{hex.EncodeToString(tf.payload)}
	}
	if flags&frame.FlagBatch != 0 {
		msgs := unbatch(t, tf.payload)
		want["swha.batch.count"] = u(uint64(len(msgs)))
		for _, m := range msgs {
			want["swha.batch.msg_len"] = append(want["swha.batch.msg_len"], u(uint64(len(m)))...)
			if len(m) > 0 {
				want["swha.batch.msg"] = append(want["swha.batch.msg"], hex.EncodeToString(m))
			}
		}
	}
	if tf.keyring != nil {
		trailer := tf.pdu[crcOff-frame.AuthTrailerLen : crcOff]
		want["swha.auth.key_id"] = u(uint64(tf.keyring.SendKeyID()))
		want["swha.auth.hmac"] = []string{hex.EncodeToString(trailer[frame.KeyIDLen:])}
	}
	if crcStatus == 0 {
		want["swha.crc.bad"] = []string{""} // expert info
	}
	if tf.pad > 0 {
		want["swha.padding"] = []string{hex.EncodeToString(make([]byte, tf.pad))}
	}

	have := got.withPrefix("swha")
	delete(have, "swha") // the protocol item itself
	for name, w := range want {
		g, ok := have[name]
		if !ok {
			t.Errorf("%s missing, want %v", name, w)
			continue
		}
		g = normalize(t, name, g)
		if !slices.Equal(g, w) {
			t.Errorf("%s = %v, want %v", name, g, w)
		}
	}
	for name, g := range have {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected field %s = %v", name, g)
		}
	}
}

// normalize maps tshark's renderings of a field (hex or decimal integers, booleans as
// 1/0 or True/False depending on the version, colon-separated bytes) to the forms
// checkFields expects.
func normalize(t *testing.T, name string, vals []string) []string {
	t.Helper()
	out := make([]string, len(vals))
	for i, v := range vals {
		switch {
		case name == "swha.payload" || name == "swha.auth.hmac" || name == "swha.padding" || name == "swha.batch.msg":
			out[i] = strings.ReplaceAll(v, ":", "")
		case strings.HasPrefix(name, "swha.flags."):
			switch strings.ToLower(v) {
			case "1", "true":
				out[i] = "1"
			case "0", "false":
				out[i] = "0"
			default:
				t.Errorf("%s: boolean %q", name, v)
			}
		case v == "":
			out[i] = v // expert info
		default:
			n, err := strconv.ParseUint(v, 0, 64)
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			out[i] = strconv.FormatUint(n, 10)
		}
	}
	return out
}

func wantInfo(tf *testFrame) string {
	h := &tf.hdr
	flags := h.Flags
	if tf.keyring != nil {
		flags |= frame.FlagAuth
	}
	s := fmt.Sprintf("%s seq=%d ack=%d txn=%d frag=%d", h.Type, h.Seq, h.Ack, h.TxnID, h.FragOffset)
	if flags != 0 {
		s += " [" + strings.ReplaceAll(flags.String(), "|", ", ") + "]"
	}
	if errors.Is(tf.decErr, frame.ErrBadCRC) {
		s += " [BAD CRC]"
	}
	return s
}

// batch packs messages the way the session's FlagBatch payloads carry them.
func batch(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
		b = append(b, m...)
	}
	return b
}

func unbatch(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var msgs [][]byte
	for len(b) > 0 {
		if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
			t.Fatalf("test batch payload is malformed")
		}
		n := int(binary.BigEndian.Uint16(b))
		msgs = append(msgs, b[2:2+n])
		b = b[2+n:]
	}
	return msgs
}

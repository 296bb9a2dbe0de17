package l2transport

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/swha/swha/frame"
)

// The fuzz target of the Session's receive path. Its seed corpus
// (testdata/fuzz/FuzzSessionStep) holds frames captured from Session pairs
// as they ran (the bytes a link carries), in the input format below; rewrite
// it with SWHA_WRITE_FUZZ_CORPUS=1 go test -run TestWriteSessionFuzzCorpus
// ./l2transport/ after a change to the wire format.
//
// Input: records of ctl(1) | len(2, big-endian) | PDU. ctl's high bit sends
// the PDU to A (the active) rather than B (the standby); its low 7 bits
// advance the clock by that many milliseconds first.

// fuzzNodes are the Sessions of a fuzz input: a0, an earlier incarnation of
// A that B followed before; a, the current one; b, the standby; and r, a
// rogue with A's node ID and a newer epoch.
type fuzzNodes struct {
	a0, a, b, r *Session
	now         time.Time
}

func fuzzSession(tb testing.TB, node uint64, epoch uint32, inc uint64) *Session {
	tb.Helper()
	cfg := baseConfig(node, epoch)
	cfg.Incarnation = inc
	cfg.DeadInterval = 500 * time.Millisecond
	s, err := NewSession(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// capture records every frame one pump moves, by sender.
type capture map[*Session][][]byte

// pump runs the Sessions of route against each other until none has output,
// recording what each sent in cap (if not nil) and checking that every frame
// a Session builds decodes.
func pump(tb testing.TB, now time.Time, cap capture, route map[*Session][]*Session) {
	tb.Helper()
	var h frame.Header
	for range 1000 {
		moved := false
		for from, tos := range route {
			from.Tick(now)
			if !from.HasReady() {
				continue
			}
			moved = true
			rd := from.Ready()
			for _, f := range rd.Frames {
				if _, err := from.codec.Decode(append([]byte(nil), f...), &h); err != nil {
					tb.Fatalf("a Session built a frame that does not decode (%v): %x", err, f)
				}
				if cap != nil {
					cap[from] = append(cap[from], append([]byte(nil), f...))
				}
				for _, to := range tos {
					to.Step(f, now)
				}
			}
			from.Advance()
		}
		if !moved {
			return
		}
	}
}

// newFuzzNodes builds the fuzz's starting point, the same every time: B
// followed a0, then a replaced it; a and B are established with a message
// each way. cap, if not nil, records every frame sent.
func newFuzzNodes(tb testing.TB, cap capture) *fuzzNodes {
	tb.Helper()
	n := &fuzzNodes{
		a0: fuzzSession(tb, 1, 10, 0xa0), a: fuzzSession(tb, 1, 11, 0xa1),
		b: fuzzSession(tb, 2, 22, 0xb2), r: fuzzSession(tb, 1, 99, 0xee), now: simEpoch,
	}
	step := func(d time.Duration, route map[*Session][]*Session) {
		for end := n.now.Add(d); n.now.Before(end); n.now = n.now.Add(10 * time.Millisecond) {
			pump(tb, n.now, cap, route)
		}
	}
	old := map[*Session][]*Session{n.a0: {n.b}, n.b: {n.a0}}
	step(50*time.Millisecond, old)
	if err := n.a0.Send([]byte("a0 route"), 1); err != nil {
		tb.Fatal(err)
	}
	step(50*time.Millisecond, old)
	cur := map[*Session][]*Session{n.a: {n.b}, n.b: {n.a}}
	step(50*time.Millisecond, cur)
	if err := n.a.Send([]byte("a route"), 2); err != nil {
		tb.Fatal(err)
	}
	if err := n.b.Send([]byte("b ack"), 0); err != nil {
		tb.Fatal(err)
	}
	step(50*time.Millisecond, cur)
	if !n.a.Established() || !n.b.Established() || n.b.Stats().PeerEpoch != 11 {
		tb.Fatalf("fuzz setup: not established with a: %+v", n.b.Stats())
	}
	return n
}

func decodeErrs(st SessionStats) uint64 {
	var n uint64
	for _, e := range st.DecodeErrors {
		n += e
	}
	return n
}

func checkSessionInvariants(tb testing.TB, s *Session) {
	tb.Helper()
	st := s.Stats()
	if st.InFlight < 0 || st.InFlight > st.QueuedFrames || st.QueuedBytes < 0 {
		tb.Fatalf("send side broken: %d in flight, %d queued frames, %d bytes", st.InFlight, st.QueuedFrames, st.QueuedBytes)
	}
	if limit := s.cfg.RecvBuffer + s.cfg.RecvWindow*s.payloadMax + s.cfg.MaxMessage; s.heldBytes() > limit {
		tb.Fatalf("receiver holds %d bytes, bound %d", s.heldBytes(), limit)
	}
	if s.oooCount < 0 || s.oooCount > s.cfg.RecvWindow {
		tb.Fatalf("%d frames out of order, window %d", s.oooCount, s.cfg.RecvWindow)
	}
	if s.established && s.sndLimit < s.sndUna && s.peerWnd > 0 {
		tb.Fatalf("send limit %d below sndUna %d", s.sndLimit, s.sndUna)
	}
}

func FuzzSessionStep(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		n := newFuzzNodes(t, nil)
		route := map[*Session][]*Session{n.a: {n.b}, n.b: {n.a}}
		for i := 0; len(data) >= 3 && i < 512; i++ {
			ctl, size := data[0], int(binary.BigEndian.Uint16(data[1:]))
			data = data[3:]
			size = min(size, len(data))
			pdu := append([]byte(nil), data[:size]...)
			data = data[size:]
			n.now = n.now.Add(time.Duration(ctl&0x7f) * time.Millisecond)
			to := n.b
			if ctl&0x80 != 0 {
				to = n.a
			}
			before := to.Stats()
			err := to.Step(pdu, n.now)
			after := to.Stats()
			if after.FramesReceived != before.FramesReceived+1 {
				t.Fatalf("FramesReceived %d → %d for one frame", before.FramesReceived, after.FramesReceived)
			}
			if (err != nil) != (decodeErrs(after) == decodeErrs(before)+1) {
				t.Fatalf("Step returned %v but decode errors went %d → %d", err, decodeErrs(before), decodeErrs(after))
			}
			if err != nil {
				if _, ok := err.(frame.Error); !ok {
					t.Fatalf("Step returned %T %v, not a frame.Error", err, err)
				}
			}
			pump(t, n.now, nil, route)
			checkSessionInvariants(t, n.a)
			checkSessionInvariants(t, n.b)
		}
	})
}

// appendRecord appends one fuzz input record.
func appendRecord(b []byte, toA bool, advance time.Duration, pdu []byte) []byte {
	ctl := byte(min(advance/time.Millisecond, 0x7f))
	if toA {
		ctl |= 0x80
	}
	b = append(b, ctl)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pdu)))
	return append(b, pdu...)
}

// TestWriteSessionFuzzCorpus writes the seed corpus of FuzzSessionStep
// from frames the fuzz's own Sessions send as they run on: the handshakes,
// data and keepalives of a0, a and B; a0 speaking on after B left it (an
// incarnation conflict); and a rogue with A's node ID and a newer epoch.
func TestWriteSessionFuzzCorpus(t *testing.T) {
	if os.Getenv("SWHA_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set SWHA_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz/FuzzSessionStep")
	}
	cap := capture{}
	n := newFuzzNodes(t, cap)
	// Go on: a streams some more and falls idle (keepalives); a0 speaks on
	// to a B that no longer hears it, captured; the rogue says hello.
	for i := range 20 {
		if err := n.a.Send(fmt.Appendf(nil, "route %d", i), uint64(10+i)); err != nil {
			t.Fatal(err)
		}
	}
	scratch := fuzzSession(t, 2, 22, 0xb3) // hears a0 and the rogue, so that they speak
	for end := n.now.Add(300 * time.Millisecond); n.now.Before(end); n.now = n.now.Add(10 * time.Millisecond) {
		pump(t, n.now, cap, map[*Session][]*Session{n.a: {n.b}, n.b: {n.a}, n.a0: {scratch}, scratch: {n.a0}, n.r: {scratch}})
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzSessionStep")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, in []byte) {
		t.Helper()
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(in)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	seq := func(frames [][]byte, toA bool, advance time.Duration) []byte {
		var b []byte
		for _, f := range frames {
			b = appendRecord(b, toA, advance, f)
		}
		return b
	}
	rev := func(frames [][]byte) [][]byte {
		out := make([][]byte, len(frames))
		for i, f := range frames {
			out[len(frames)-1-i] = f
		}
		return out
	}
	write("replay-a", seq(cap[n.a], false, time.Millisecond))
	write("replay-a-reversed", seq(rev(cap[n.a]), false, 0))
	write("replay-b-at-a", seq(cap[n.b], true, time.Millisecond))
	write("stale-incarnation-a0", seq(cap[n.a0], false, 5*time.Millisecond))
	write("rogue-newer-epoch", seq(cap[n.r], false, 20*time.Millisecond))
	write("replay-slow-past-dead", seq(cap[n.a][:min(len(cap[n.a]), 12)], false, 100*time.Millisecond))
	var mixed []byte
	for i := range max(len(cap[n.a]), len(cap[n.a0]), len(cap[n.r])) {
		for _, fs := range [][][]byte{cap[n.a], cap[n.a0], cap[n.r]} {
			if i < len(fs) {
				mixed = appendRecord(mixed, false, 3*time.Millisecond, fs[i])
			}
		}
		if i < len(cap[n.b]) {
			mixed = appendRecord(mixed, true, 0, cap[n.b][i])
		}
	}
	write("interleaved-incarnations", mixed)
	t.Logf("frames captured: a0 %d, a %d, b %d, rogue %d", len(cap[n.a0]), len(cap[n.a]), len(cap[n.b]), len(cap[n.r]))
}

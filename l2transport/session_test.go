package l2transport

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"

	"github.com/swha/swha/frame"
	"github.com/swha/swha/l2transport/linktest"
)

// TestPeerRestartMidStream replaces B with a new incarnation mid-stream, with
// the next epoch, or (a misconfiguration the stream survives) the same one.
func TestPeerRestartMidStream(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		t.Run(map[bool]string{false: "next-epoch", true: "same-epoch"}[reuse], func(t *testing.T) {
			linktest.RunSeeds(t, nil, func(t *testing.T, seed uint64) { testPeerRestartMidStream(t, seed, reuse) })
		})
	}
}

func testPeerRestartMidStream(t *testing.T, seed uint64, reuse bool) {
	sm := newSim(t, seed, simConfig{
		faults:   Faults{Loss: 0.05, Delay: 100 * time.Microsecond},
		messages: simMessages / 2,
		minSize:  8, // room for the generation stamp
	})
	var restartedAt time.Time
	oldB := sm.nodes[1].s
	sm.onStep = func(sm *sim) {
		// Replace B once a good part of both streams has flowed, mid-stream.
		if !restartedAt.IsZero() || sm.nodes[1].out.recvd < sm.nodes[1].out.total/4 {
			return
		}
		restartedAt = sm.now
		sm.minEnd = sm.now.Add(time.Second) // see the new stream established
		cfg := oldB.cfg
		cfg.Incarnation = simIncarnation(seed, 2)
		if !reuse {
			cfg.Epoch++ // the next incarnation
		}
		s, err := NewSession(cfg)
		if err != nil {
			t.Fatal(err)
		}
		sm.nodes[1].s = s
		sm.nodes[1].events = nil
		// B's application restarts too: its messages form a new generation;
		// A must see none of the old one after the reset.
		sm.nodes[1].out.gen++
		sm.nodes[1].out.havePend = false
	}
	sm.run()
	if restartedAt.IsZero() {
		t.Fatalf("seed %d: B was never restarted", seed)
	}
	var restarts []Event
	for _, ev := range sm.nodes[0].events {
		if ev.Kind == EventPeerRestarted {
			restarts = append(restarts, ev)
		}
	}
	if len(restarts) != 1 {
		t.Fatalf("seed %d: A saw %d PeerRestarted events, want 1", seed, len(restarts))
	}
	ev := restarts[0]
	newEpoch := oldB.cfg.Epoch + 1
	if reuse {
		newEpoch = oldB.cfg.Epoch
	}
	if ev.OldPeerEpoch != oldB.cfg.Epoch || ev.PeerEpoch != newEpoch || ev.PeerNodeID != 2 || ev.EpochReused != reuse {
		t.Errorf("seed %d: event %+v, want epochs %d→%d from node 2, reused %v", seed, ev, oldB.cfg.Epoch, newEpoch, reuse)
	}
	if ev.At.Before(restartedAt) {
		t.Errorf("seed %d: restart reported at %v, before it happened at %v", seed, ev.At, restartedAt)
	}
	for _, ev := range sm.nodes[1].events {
		if ev.Kind == EventPeerRestarted {
			t.Errorf("seed %d: new B saw %+v; it never knew the old stream", seed, ev)
		}
	}
	a, b := sm.nodes[0].s.Stats(), sm.nodes[1].s.Stats()
	if a.PeerRestarts != 1 || !a.Established || !b.Established {
		t.Errorf("seed %d: A restarts %d established %v, B established %v", seed, a.PeerRestarts, a.Established, b.Established)
	}
	if want := map[bool]uint64{false: 0, true: 1}[reuse]; a.PeerEpochReuses != want {
		t.Errorf("seed %d: A counted %d epoch reuses, want %d", seed, a.PeerEpochReuses, want)
	}
	// Old-stream frames still in flight reached the new B; they must have been
	// refused, not delivered.
	if b.Drops[DropNotEstablished]+b.Drops[DropStaleStream]+b.Drops[DropStaleEpoch] == 0 && len(sm.q) == 0 {
		t.Logf("seed %d: no old-stream frame reached the new B (possible, but rare)", seed)
	}
	t.Logf("A discarded %d messages (%d bytes, txns %v); B drops %v", ev.DiscardedMessages, ev.DiscardedBytes, ev.DiscardedTxns, b.Drops)
}

func TestStaleHelloAfterRestartIsIgnored(t *testing.T) {
	a, b := pair(t, 1, 2)
	establish(t, a, b, simEpoch)
	// Capture a Hello from the old B, restart B, then replay the old Hello.
	old := encode(t, frame.Header{Type: frame.TypeHello, NodeID: 2, Epoch: b.cfg.Epoch, Seq: 1}, helloPayload(0, 0, 10))
	cfg := b.cfg
	cfg.Epoch++
	b2, err := NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := establish(t, a, b2, simEpoch.Add(time.Second))
	a.Step(old, now)
	if got := a.Stats().Drops[DropStaleEpoch]; got != 1 {
		t.Fatalf("stale-epoch drops %d, want 1", got)
	}
	if a.Stats().PeerEpoch != cfg.Epoch || a.Stats().PeerRestarts != 1 {
		t.Fatalf("A followed the stale Hello: %+v", a.Stats())
	}
}

func TestBackpressureSlowReceiver(t *testing.T) {
	linktest.RunSeeds(t, nil, func(t *testing.T, seed uint64) {
		sm := newSim(t, seed, simConfig{faults: Faults{Delay: 100 * time.Microsecond}, messages: 200_000,
			sizes: func(r *rand.Rand) int { return 64 + r.IntN(1000) }})
		a := sm.nodes[0]
		sm.nodes[1].holdMessages = true
		sm.stopAt = simEpoch.Add(3 * time.Second)
		sm.run()
		st := a.s.Stats()
		if st.Backpressure == 0 {
			t.Fatalf("seed %d: sender never saw ErrBackpressure: %+v", seed, st)
		}
		if st.QueuedBytes > a.s.cfg.SendBuffer {
			t.Errorf("seed %d: %d bytes queued, SendBuffer %d", seed, st.QueuedBytes, a.s.cfg.SendBuffer)
		}
		b := sm.nodes[1]
		limit := b.s.cfg.RecvBuffer + b.s.cfg.RecvWindow*b.s.MaxPayload()
		if b.maxHeld > limit {
			t.Errorf("seed %d: receiver held %d bytes, limit %d", seed, b.maxHeld, limit)
		}
		if b.maxHeld < b.s.cfg.RecvBuffer/2 {
			t.Errorf("seed %d: receiver held only %d bytes: the test did not fill the window", seed, b.maxHeld)
		}
		for _, n := range sm.nodes {
			for _, ev := range n.events {
				if ev.Kind == EventPeerSilent {
					t.Errorf("seed %d: %v while the receiver was only slow", seed, ev.Kind)
				}
			}
		}
		delivered := a.out.recvd
		// The application catches up: everything arrives.
		b.holdMessages = false
		b.s.ReleaseMessages()
		sm.stopAt = time.Time{}
		sm.run()
		t.Logf("held %d bytes max; %d delivered while slow, %d in all; %d refused sends", b.maxHeld, delivered, a.out.recvd, st.Backpressure)
	})
}

func TestPeerSilent(t *testing.T) {
	linktest.RunSeeds(t, nil, func(t *testing.T, seed uint64) {
		sm := newSim(t, seed, simConfig{faults: Faults{Delay: 100 * time.Microsecond}, messages: 0})
		cut := simEpoch.Add(500 * time.Millisecond)
		heal := cut.Add(5 * time.Second)
		var lastHeard [2]time.Time
		sm.onStep = func(sm *sim) {
			p := !sm.now.Before(cut) && sm.now.Before(heal)
			for i, n := range sm.nodes {
				n.faults.SetPartitioned(p)
				if !p && sm.now.Before(cut) {
					lastHeard[i] = n.s.lastHeard
				}
			}
			sm.wakeAt = time.Time{}
			if sm.now.Before(cut) {
				sm.wakeAt = cut
			} else if sm.now.Before(heal) {
				sm.wakeAt = heal
			}
		}
		sm.stopAt = heal.Add(time.Second)
		sm.run()
		dead := sm.nodes[0].s.cfg.DeadInterval
		for i, n := range sm.nodes {
			var silent, alive []Event
			for _, ev := range n.events {
				switch ev.Kind {
				case EventPeerSilent:
					silent = append(silent, ev)
				case EventPeerAlive:
					alive = append(alive, ev)
				}
			}
			if len(silent) != 1 || len(alive) != 1 {
				t.Fatalf("node %d: %d silent and %d alive events, want 1 and 1", i, len(silent), len(alive))
			}
			// Keepalives flow every KeepaliveInterval, so the last frame heard before
			// the cut is at most that long before it; silence is declared exactly
			// DeadInterval after it, never earlier.
			if got := silent[0].At.Sub(lastHeard[i]); got != dead {
				t.Errorf("node %d: PeerSilent %v after the last frame heard, want %v", i, got, dead)
			}
			if silent[0].At.Before(cut.Add(dead - n.s.cfg.KeepaliveInterval)) {
				t.Errorf("node %d: PeerSilent at %v, too early for a cut at %v", i, silent[0].At.Sub(simEpoch), cut.Sub(simEpoch))
			}
			if alive[0].At.Before(heal) || alive[0].At.After(heal.Add(n.s.cfg.KeepaliveInterval+time.Millisecond)) {
				t.Errorf("node %d: PeerAlive at %v, heal at %v", i, alive[0].At.Sub(simEpoch), heal.Sub(simEpoch))
			}
		}
	})
}

func TestLargeMessage(t *testing.T) {
	size := 64 << 20
	if raceEnabled {
		size = 8 << 20
	}
	linktest.RunSeeds(t, []uint64{1}, func(t *testing.T, seed uint64) {
		const n = 2 // per seed: two seeds run
		sm := newSim(t, seed, simConfig{faults: Faults{Loss: 0.01, Delay: 100 * time.Microsecond}, messages: n,
			sizes: func(*rand.Rand) int { return size }})
		sm.run()
		if got := sm.nodes[1].s.Stats().BytesDelivered; got != uint64(n*size) {
			t.Fatalf("delivered %d bytes, want %d", got, n*size)
		}
		s := sm.nodes[0].s
		if err := s.Send(make([]byte, s.cfg.MaxMessage+1), 0); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("oversized Send: %v, want ErrMessageTooLarge", err)
		}
	})
}

// pair returns two sessions with node IDs x and y.
func pair(t *testing.T, x, y uint64) (*Session, *Session) {
	t.Helper()
	a, err := NewSession(baseConfig(x, uint32(100+x)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(y, uint32(100+y))
	b, err := NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// exchange runs a and b against each other over a perfect, instant link until
// neither has output.
func exchange(a, b *Session, now time.Time) {
	for range 1000 {
		moved := false
		for _, p := range [][2]*Session{{a, b}, {b, a}} {
			from, to := p[0], p[1]
			from.Tick(now)
			if !from.HasReady() {
				continue
			}
			moved = true
			rd := from.Ready()
			for _, f := range rd.Frames {
				to.Step(f, now)
			}
			from.Advance()
		}
		if !moved {
			return
		}
	}
}

func establish(t *testing.T, a, b *Session, now time.Time) time.Time {
	t.Helper()
	exchange(a, b, now)
	if !a.Established() || !b.Established() {
		t.Fatalf("not established: a %v b %v", a.Established(), b.Established())
	}
	return now
}

func encode(t *testing.T, h frame.Header, payload []byte) []byte {
	t.Helper()
	b, err := frame.NewCodec(nil).Append(nil, &h, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func helloPayload(seenEpoch uint32, seenISN uint64, wnd uint32) []byte {
	p := make([]byte, helloLen)
	p[0], p[1], p[2], p[3] = byte(seenEpoch>>24), byte(seenEpoch>>16), byte(seenEpoch>>8), byte(seenEpoch)
	for i := range 8 {
		p[4+i] = byte(seenISN >> (56 - 8*i))
	}
	p[12], p[13], p[14], p[15] = byte(wnd>>24), byte(wnd>>16), byte(wnd>>8), byte(wnd)
	return p
}

func TestBadFramesCounted(t *testing.T) {
	a, b := pair(t, 1, 2)
	now := establish(t, a, b, simEpoch)
	peerISN := a.peerISN
	bEpoch := b.cfg.Epoch

	// Capture one real data frame from B so it can be replayed as a duplicate.
	if err := b.Send([]byte("hello"), 7); err != nil {
		t.Fatal(err)
	}
	b.Tick(now)
	rd := b.Ready()
	if len(rd.Frames) != 1 {
		t.Fatalf("B produced %d frames, want 1", len(rd.Frames))
	}
	data := append([]byte(nil), rd.Frames[0]...)
	b.Advance()
	a.Step(data, now)
	if rd := a.Ready(); len(rd.Messages) != 1 || string(rd.Messages[0].Data) != "hello" || rd.Messages[0].TxnID != 7 {
		t.Fatalf("A got %+v", rd.Messages)
	}
	a.Advance()

	garbage := make([]byte, 200)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	corrupted := append([]byte(nil), data...)
	corrupted[30] ^= 0x40

	cases := []struct {
		name  string
		pdu   []byte
		check func(SessionStats) uint64
	}{
		{"garbage", garbage, func(s SessionStats) uint64 {
			var n uint64
			for _, c := range s.DecodeErrors {
				n += c
			}
			return n
		}},
		{"short", []byte{1, 3, 0}, func(s SessionStats) uint64 { return s.DecodeErrors[frame.ErrShort] }},
		{"corrupt", corrupted, func(s SessionStats) uint64 { return s.DecodeErrors[frame.ErrBadCRC] }},
		{"duplicate", data, func(s SessionStats) uint64 { return s.Drops[DropDuplicate] }},
		{"wrong node", encode(t, frame.Header{Type: frame.TypeData, NodeID: 99, Epoch: bEpoch, Seq: peerISN + 1}, []byte{0, 1, 'x'}),
			func(s SessionStats) uint64 { return s.Drops[DropWrongNode] }},
		{"self", encode(t, frame.Header{Type: frame.TypeHello, NodeID: 1, Epoch: 5}, helloPayload(0, 0, 1)),
			func(s SessionStats) uint64 { return s.Drops[DropSelf] }},
		{"stale epoch data", encode(t, frame.Header{Type: frame.TypeData, NodeID: 2, Epoch: bEpoch - 1, Seq: peerISN + 1}, []byte{0, 1, 'x'}),
			func(s SessionStats) uint64 { return s.Drops[DropStaleEpoch] }},
		{"stale epoch hello", encode(t, frame.Header{Type: frame.TypeHello, NodeID: 2, Epoch: bEpoch - 1, Seq: 1}, helloPayload(0, 0, 1)),
			func(s SessionStats) uint64 { return s.Drops[DropStaleEpoch] }},
		{"unknown epoch", encode(t, frame.Header{Type: frame.TypeData, NodeID: 2, Epoch: bEpoch + 1, Seq: 1}, []byte{0, 1, 'x'}),
			func(s SessionStats) uint64 { return s.Drops[DropUnknownEpoch] }},
		{"out of window", encode(t, frame.Header{Type: frame.TypeData, Flags: frame.FlagBatch | frame.FlagLastFragment, NodeID: 2, Epoch: bEpoch, Seq: peerISN + 1_000_000}, []byte{0, 1, 'x'}),
			func(s SessionStats) uint64 { return s.Drops[DropOutOfWindow] }},
		{"stale stream", encode(t, frame.Header{Type: frame.TypeAck, Flags: frame.FlagAckValid, NodeID: 2, Epoch: bEpoch, Seq: peerISN - 1}, []byte{0, 0, 0, 1}),
			func(s SessionStats) uint64 { return s.Drops[DropStaleStream] }},
		{"bad ack", encode(t, frame.Header{Type: frame.TypeAck, Flags: frame.FlagAckValid, NodeID: 2, Epoch: bEpoch, Seq: peerISN + 1, Ack: a.sndNxt + 1000}, []byte{0, 0, 0, 1}),
			func(s SessionStats) uint64 { return s.Drops[DropBadAck] }},
		{"short hello", encode(t, frame.Header{Type: frame.TypeHello, NodeID: 2, Epoch: bEpoch}, []byte{1}),
			func(s SessionStats) uint64 { return s.Drops[DropMalformed] }},
		{"heartbeat", encode(t, frame.Header{Type: frame.TypeHeartbeat, NodeID: 2, Epoch: bEpoch}, nil),
			func(s SessionStats) uint64 { return s.Drops[DropUnhandledType] }},
	}
	for _, c := range cases {
		before := c.check(a.Stats())
		a.Step(c.pdu, now)
		if got := c.check(a.Stats()); got != before+1 {
			t.Errorf("%s: counter went %d → %d, want +1", c.name, before, got)
		}
	}
	// None of it disturbed the stream.
	if rd := a.Ready(); len(rd.Messages) != 0 || len(rd.Events) != 0 {
		t.Errorf("bad frames produced output: %+v", rd)
	}
	a.Advance()
	st := a.Stats()
	if !st.Established || st.PeerEpoch != bEpoch || st.PeerRestarts != 0 {
		t.Errorf("bad frames disturbed the session: %+v", st)
	}
	if err := b.Send([]byte("still fine"), 0); err != nil {
		t.Fatal(err)
	}
	exchange(a, b, now)
	if got := a.Stats().MessagesDelivered; got != 2 {
		t.Errorf("delivered %d messages, want 2", got)
	}
}

func TestWrongPeerNodeIgnored(t *testing.T) {
	cfg := baseConfig(1, 10)
	cfg.PeerNodeID = 2
	a, err := NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewSession(baseConfig(3, 30))
	if err != nil {
		t.Fatal(err)
	}
	exchange(a, c, simEpoch)
	if a.Established() || c.Established() {
		t.Fatal("established with a node other than the configured peer")
	}
	if a.Stats().Drops[DropWrongNode] == 0 {
		t.Fatal("wrong-node frames not counted")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []SessionConfig{
		{Epoch: 1, MaxPDU: 1500},
		{LocalNodeID: 1, MaxPDU: 1500},
		{LocalNodeID: 1, Epoch: 1, MaxPDU: 60},
		{LocalNodeID: 1, PeerNodeID: 1, Epoch: 1, MaxPDU: 1500},
		{LocalNodeID: 1, Epoch: 1, MaxPDU: 1500, MinRTO: time.Second, MaxRTO: time.Millisecond},
	} {
		if _, err := NewSession(cfg); err == nil {
			t.Errorf("NewSession(%+v) accepted a bad config", cfg)
		}
	}
}

func TestFaultModelDeterministic(t *testing.T) {
	f := Faults{Loss: 0.1, Duplicate: 0.1, Reorder: 0.1, Corrupt: 0.1, Delay: time.Millisecond, Jitter: time.Millisecond, BandwidthBps: 1e9}
	run := func() []Decision {
		m := NewFaultModel(f, 42)
		var out []Decision
		for i := range 1000 {
			out = append(out, m.Decide(simEpoch.Add(time.Duration(i)*time.Microsecond), 1500))
		}
		return out
	}
	a, b := run(), run()
	var drops, dups, corrupt, reorder int
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("decision %d differs: %+v vs %+v", i, a[i], b[i])
		}
		if a[i].Drop {
			drops++
		}
		if a[i].Duplicate {
			dups++
		}
		if a[i].CorruptAt >= 0 {
			corrupt++
		}
		if a[i].Reordered {
			reorder++
		}
	}
	for name, n := range map[string]int{"drops": drops, "dups": dups, "corrupt": corrupt, "reorder": reorder} {
		if n < 50 || n > 150 {
			t.Errorf("%s: %d of 1000 at p=0.1", name, n)
		}
	}
	m := NewFaultModel(Faults{Partitioned: true}, 1)
	if d := m.Decide(simEpoch, 100); !d.Drop || !d.Partition {
		t.Errorf("partitioned: %+v", d)
	}
}

// TestRequestResponseAckPiggybacked: in a request/response exchange the
// delayed ack never sits on the critical path. The response carries the
// acknowledgment of the request, no standalone Ack is sent while the responses
// keep coming, and nothing waits for the AckDelay timer.
func TestRequestResponseAckPiggybacked(t *testing.T) {
	a, b := pair(t, 1, 2)
	now := establish(t, a, b, simEpoch)
	deliver := func(from, to *Session) (frames []frame.Header, msgs int) {
		rd := from.Ready()
		c := frame.NewCodec(nil)
		for _, f := range rd.Frames {
			var h frame.Header
			if _, err := c.Decode(f, &h); err != nil {
				t.Fatal(err)
			}
			frames = append(frames, h)
			to.Step(f, now)
		}
		from.Advance()
		rd = to.Ready()
		msgs = len(rd.Messages)
		to.AdvanceFrames()
		to.ReleaseMessages()
		return frames, msgs
	}
	acks0 := a.Stats().AcksSent + b.Stats().AcksSent
	for i := range 100 {
		now = now.Add(10 * time.Microsecond) // far less than AckDelay
		a.Tick(now)
		if err := a.Send([]byte("request"), uint64(i)); err != nil {
			t.Fatal(err)
		}
		req, n := deliver(a, b)
		if len(req) != 1 || req[0].Type != frame.TypeData || n != 1 {
			t.Fatalf("round %d: request went as %+v, %d messages delivered", i, req, n)
		}
		b.Tick(now)
		if err := b.Send([]byte("response"), uint64(i)); err != nil {
			t.Fatal(err)
		}
		resp, n := deliver(b, a)
		if len(resp) != 1 || resp[0].Type != frame.TypeData || n != 1 {
			t.Fatalf("round %d: response went as %+v, %d messages delivered", i, resp, n)
		}
		if resp[0].Ack != req[0].Seq+1 {
			t.Fatalf("round %d: response acks %d, want %d (the request)", i, resp[0].Ack, req[0].Seq+1)
		}
		if st := a.Stats(); st.InFlight != 0 {
			t.Fatalf("round %d: %d frames still in flight after the response", i, st.InFlight)
		}
	}
	if acks := a.Stats().AcksSent + b.Stats().AcksSent - acks0; acks != 0 {
		t.Errorf("%d standalone acks sent during the exchange, want 0", acks)
	}
	// A's last response is acknowledged only by the delayed ack, AckDelay later.
	a.Tick(now.Add(DefaultAckDelay - time.Microsecond))
	if a.HasReady() {
		t.Error("ack sent before AckDelay passed")
	}
	a.Tick(now.Add(DefaultAckDelay))
	if !a.HasReady() {
		t.Error("no delayed ack after AckDelay")
	}
}

// TestFragmentBufferReuse: the buffer of an acknowledged fragmented message is
// reused for the next one, and neither message is corrupted by the reuse.
func TestFragmentBufferReuse(t *testing.T) {
	a, b := pair(t, 1, 2)
	now := establish(t, a, b, time.Unix(1000, 0))
	var got [][]byte
	run := func() {
		for range 1000 {
			moved := false
			for _, s := range []*Session{a, b} {
				s.Tick(now)
				if !s.HasReady() {
					continue
				}
				moved = true
				rd := s.Ready()
				for _, m := range rd.Messages {
					got = append(got, bytes.Clone(m.Data))
				}
				peer := b
				if s == b {
					peer = a
				}
				for _, f := range rd.Frames {
					peer.Step(f, now)
				}
				s.Advance()
			}
			if !moved {
				return
			}
			now = now.Add(2 * a.cfg.AckDelay) // let delayed acks go
		}
	}
	n := 3*a.MaxPayload() + 17
	m1 := bytes.Repeat([]byte{0xaa}, n)
	if err := a.Send(m1, 1); err != nil {
		t.Fatal(err)
	}
	run()
	if len(a.wholeFree) != 1 {
		t.Fatalf("%d buffers kept after the first message was acknowledged, want 1", len(a.wholeFree))
	}
	kept := unsafe.SliceData(a.wholeFree[0][:1])
	m2 := bytes.Repeat([]byte{0x55}, n-5)
	if err := a.Send(m2, 2); err != nil {
		t.Fatal(err)
	}
	if len(a.wholeFree) != 0 {
		t.Fatalf("the kept buffer was not reused")
	}
	if f := a.sqAt(0); unsafe.SliceData(f.payload) != kept {
		t.Fatalf("the second message does not live in the first one's buffer")
	}
	m1[0] = 0 // the Session copied m1: the caller may reuse it
	run()
	if len(got) != 2 || !bytes.Equal(got[0], bytes.Repeat([]byte{0xaa}, n)) || !bytes.Equal(got[1], m2) {
		t.Fatalf("delivered %d messages, want the two sent intact", len(got))
	}
}

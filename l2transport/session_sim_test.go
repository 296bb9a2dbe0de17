package l2transport

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/swha/swha/l2transport/linktest"
)

// The simulation drives two Session cores with virtual time and the seeded fault
// model, with no goroutines, so a failure replays exactly from its seed. Every
// run covers fixed seeds and one random one (linktest.Seeds); to replay one:
//
//	go test ./l2transport/ -run TestSim/loss10 -seed=1234
//	SWHA_SEED=1234 go test ./l2transport/ -run TestSim

var simEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type simFrame struct {
	at    time.Time
	order uint64
	to    int
	data  []byte
}

type frameHeap []simFrame

func (h frameHeap) Len() int { return len(h) }
func (h frameHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].order < h[j].order
}
func (h frameHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *frameHeap) Push(x any)   { *h = append(*h, x.(simFrame)) }
func (h *frameHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// simFlow is one direction's workload: the sender's generator and the
// receiver's expectations.
type simFlow struct {
	rng      *rand.Rand
	total    int // messages to send
	sent     int
	gen      uint32 // stream generation, bumped when the sender's peer restarts
	pending  []byte // the next message, generated but refused by backpressure
	pendTxn  uint64
	havePend bool
	expect   []simExpect // sent, not yet delivered
	expHead  int
	recvd    int
	minSize  int
	sizes    func(r *rand.Rand) int
}

type simExpect struct {
	hash uint64
	n    int
	txn  uint64
	gen  uint32
	idx  uint64 // index among the sender's messages
}

var hashSeed = maphash.MakeSeed()

// smallMostly is the brief's size mix: 90% under 256 B, 9% under 64 KiB, 1% up
// to 1 MiB.
func smallMostly(r *rand.Rand) int {
	switch p := r.Float64(); {
	case p < 0.90:
		return 1 + r.IntN(255)
	case p < 0.99:
		return 256 + r.IntN(64<<10-256)
	default:
		return 64<<10 + r.IntN(1<<20-64<<10+1)
	}
}

func (f *simFlow) next() ([]byte, uint64) {
	if f.havePend {
		return f.pending, f.pendTxn
	}
	n := max(f.sizes(f.rng), f.minSize)
	b := f.pending[:0]
	for len(b) < n {
		b = binary.LittleEndian.AppendUint64(b, f.rng.Uint64())
	}
	b = b[:n]
	if n >= 8 {
		// Stamp the generation and index so a restart test can prove no old
		// message crosses into the new stream.
		binary.BigEndian.PutUint32(b[0:], f.gen)
		binary.BigEndian.PutUint32(b[4:], uint32(f.sent))
	}
	// Runs of consecutive messages share a transaction, as commits do.
	txn := uint64(f.sent/7) % 5
	f.pending, f.pendTxn, f.havePend = b, txn, true
	return b, txn
}

type simNode struct {
	s      *Session
	faults *FaultModel // applied to the frames this node sends
	out    *simFlow    // messages this node sends
	in     *simFlow    // messages this node receives (the peer's out)
	events []Event
	// holdMessages makes the node a slow application: it never releases
	// delivered messages while set.
	holdMessages bool
	maxHeld      int
}

type sim struct {
	t      testing.TB
	seed   uint64
	now    time.Time
	nodes  [2]*simNode
	q      frameHeap
	order  uint64
	limit  time.Time
	onStep func(*sim) // called once per loop, e.g. to partition or restart
	wakeAt time.Time  // extra deadline for onStep
	// stopAt, if set, ends run at that virtual time whether or not done.
	stopAt time.Time
	// minEnd keeps run going until then even when done, so that a scheduled
	// fault (a partition) happens whatever the message count.
	minEnd time.Time
}

type simConfig struct {
	faults      Faults
	messages    int // each direction: a→b messages; b→a gets messages/4
	sizes       func(*rand.Rand) int
	minSize     int
	cfg         SessionConfig
	virtualTime time.Duration // fail if not done by then
}

func baseConfig(node uint64, epoch uint32) SessionConfig {
	return SessionConfig{
		LocalNodeID:  node,
		Epoch:        epoch,
		MaxPDU:       1500,
		SendBuffer:   4 << 20,
		RecvBuffer:   4 << 20,
		RecvWindow:   512,
		DeadInterval: 2 * time.Second,
	}
}

func newSim(t testing.TB, seed uint64, sc simConfig) *sim {
	t.Helper()
	sm := &sim{t: t, seed: seed, now: simEpoch}
	if sc.virtualTime == 0 {
		sc.virtualTime = 30 * time.Minute
	}
	sm.limit = simEpoch.Add(sc.virtualTime)
	if sc.sizes == nil {
		sc.sizes = smallMostly
	}
	flows := [2]*simFlow{
		{rng: rand.New(rand.NewPCG(seed, 1)), total: sc.messages, sizes: sc.sizes, minSize: sc.minSize},
		{rng: rand.New(rand.NewPCG(seed, 2)), total: sc.messages / 4, sizes: sc.sizes, minSize: sc.minSize},
	}
	for i := range 2 {
		cfg := sc.cfg
		if cfg.LocalNodeID == 0 {
			cfg = baseConfig(0, 0)
		}
		cfg.LocalNodeID = uint64(i + 1)
		cfg.Epoch = uint32(100 + i)
		cfg.Incarnation = simIncarnation(seed, i) // sequence numbers replay too
		s, err := NewSession(cfg)
		if err != nil {
			t.Fatal(err)
		}
		sm.nodes[i] = &simNode{
			s:      s,
			faults: NewFaultModel(sc.faults, seed^uint64(i+1)*0x51ed2701),
			out:    flows[i],
			in:     flows[1-i],
		}
	}
	return sm
}

// simIncarnation is node i's incarnation in a simulation seeded with seed.
func simIncarnation(seed uint64, i int) uint64 {
	return rand.New(rand.NewPCG(seed, uint64(100+i))).Uint64() | 1
}

func (sm *sim) fatalf(format string, args ...any) {
	sm.t.Helper()
	sm.t.Fatalf("seed %d, t=%v: %s\nA: %+v\nB: %+v", sm.seed, sm.now.Sub(simEpoch), fmt.Sprintf(format, args...),
		sm.nodes[0].s.Stats(), sm.nodes[1].s.Stats())
}

// onRestart is the application's reaction to EventPeerRestarted: what was not
// acknowledged is reported, not retried, and a new stream generation starts.
// Messages the old peer sent and we did not receive are gone too.
func (sm *sim) onRestart(n *simNode, ev Event) {
	// Messages sent before the reset and not delivered must all be reported;
	// later ones belong to the new stream and must arrive.
	var undelivered int
	kept := n.out.expect[:0]
	for _, e := range n.out.expect[n.out.expHead:] {
		if e.idx < ev.SentBefore {
			undelivered++
		} else {
			kept = append(kept, e)
		}
	}
	if ev.DiscardedMessages < undelivered {
		sm.fatalf("restart reported %d discarded messages, but %d were never delivered", ev.DiscardedMessages, undelivered)
	}
	n.out.expect, n.out.expHead = kept, 0
	n.out.gen++
	n.out.havePend = false // regenerate it with the new stamp
	in := n.in
	kept = in.expect[:0]
	for _, e := range in.expect[in.expHead:] {
		if e.gen >= in.gen {
			kept = append(kept, e)
		}
	}
	in.expect, in.expHead = kept, 0
}

// done reports whether every message sent (in the current generation) arrived.
func (sm *sim) done() bool {
	for _, n := range sm.nodes {
		if n.out.sent < n.out.total || n.out.expHead < len(n.out.expect) {
			return false
		}
	}
	return true
}

// pump runs both nodes until neither has output, then returns.
func (sm *sim) pump() {
	for range 1_000_000 {
		busy := false
		for i, n := range sm.nodes {
			if sm.feed(n) {
				busy = true
			}
			if !n.s.HasReady() {
				continue
			}
			busy = true
			rd := n.s.Ready()
			for _, f := range rd.Frames {
				sm.transmit(n, 1-i, f)
			}
			for _, m := range rd.Messages {
				sm.check(n, m)
			}
			n.events = append(n.events, rd.Events...)
			for _, ev := range rd.Events {
				if ev.Kind == EventPeerRestarted {
					sm.onRestart(n, ev)
				}
			}
			if n.holdMessages {
				n.s.AdvanceFrames()
			} else {
				n.s.Advance()
			}
			if h := n.s.heldBytes(); h > n.maxHeld {
				n.maxHeld = h
			}
		}
		if !busy {
			return
		}
	}
	sm.fatalf("pump did not settle: HasReady stays true")
}

// feed offers the node's application messages until backpressure.
func (sm *sim) feed(n *simNode) bool {
	fed := false
	for n.out.sent < n.out.total {
		msg, txn := n.out.next()
		err := n.s.Send(msg, txn)
		if err == ErrBackpressure {
			if n.s.QueuedBytes() > n.s.cfg.SendBuffer && n.s.QueuedBytes() > len(msg)+2 {
				sm.fatalf("send buffer holds %d bytes, limit %d", n.s.QueuedBytes(), n.s.cfg.SendBuffer)
			}
			return fed
		}
		if err != nil {
			sm.fatalf("send: %v", err)
		}
		n.out.havePend = false
		n.out.expect = append(n.out.expect, simExpect{hash: maphash.Bytes(hashSeed, msg), n: len(msg), txn: txn, gen: n.out.gen, idx: uint64(n.out.sent)})
		n.out.sent++
		fed = true
	}
	return fed
}

func (sm *sim) check(n *simNode, m Message) {
	f := n.in
	if f.expHead >= len(f.expect) {
		sm.fatalf("message %d delivered but never sent (%d bytes)", f.recvd, len(m.Data))
	}
	e := f.expect[f.expHead]
	if len(m.Data) >= 8 && binary.BigEndian.Uint32(m.Data) != e.gen {
		sm.fatalf("message %d is from stream generation %d, want %d", f.recvd, binary.BigEndian.Uint32(m.Data), e.gen)
	}
	if len(m.Data) != e.n || m.TxnID != e.txn || maphash.Bytes(hashSeed, m.Data) != e.hash {
		sm.fatalf("message %d: got %d bytes txn %d, want %d bytes txn %d (or content differs)", f.recvd, len(m.Data), m.TxnID, e.n, e.txn)
	}
	f.expHead++
	f.recvd++
	if f.expHead > 4096 {
		f.expect = append(f.expect[:0], f.expect[f.expHead:]...)
		f.expHead = 0
	}
}

func (sm *sim) transmit(from *simNode, to int, pdu []byte) {
	d := from.faults.Decide(sm.now, len(pdu))
	if d.Drop {
		return
	}
	sm.enqueue(to, pdu, d.Delay, d.CorruptAt, d.CorruptMask)
	if d.Duplicate {
		sm.enqueue(to, pdu, d.DupDelay, -1, 0)
	}
}

func (sm *sim) enqueue(to int, pdu []byte, delay time.Duration, corruptAt int, mask byte) {
	b := append([]byte(nil), pdu...)
	if corruptAt >= 0 {
		b[corruptAt] ^= mask
	}
	sm.order++
	heap.Push(&sm.q, simFrame{at: sm.now.Add(delay), order: sm.order, to: to, data: b})
}

// run drives the simulation until both flows are complete.
func (sm *sim) run() {
	for {
		if !sm.stopAt.IsZero() && !sm.now.Before(sm.stopAt) {
			return
		}
		if sm.onStep != nil {
			sm.onStep(sm)
		}
		sm.pump()
		if sm.stopAt.IsZero() && sm.done() && !sm.now.Before(sm.minEnd) {
			return
		}
		next := sm.wakeAt
		if !sm.stopAt.IsZero() && (next.IsZero() || sm.stopAt.Before(next)) {
			next = sm.stopAt
		}
		for _, n := range sm.nodes {
			if d := n.s.NextDeadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
		if len(sm.q) > 0 && (next.IsZero() || sm.q[0].at.Before(next)) {
			next = sm.q[0].at
		}
		if !sm.minEnd.IsZero() && sm.now.Before(sm.minEnd) && (next.IsZero() || sm.minEnd.Before(next)) {
			next = sm.minEnd
		}
		if next.IsZero() {
			sm.fatalf("stalled: no frame in flight and no timer armed (a→b %d/%d, b→a %d/%d)",
				sm.nodes[0].out.recvd, sm.nodes[0].out.total, sm.nodes[1].out.recvd, sm.nodes[1].out.total)
		}
		if next.After(sm.now) {
			sm.now = next
		}
		if sm.now.After(sm.limit) {
			sm.fatalf("not done after %v of virtual time (a→b %d/%d, b→a %d/%d)", sm.limit.Sub(simEpoch),
				sm.nodes[0].out.recvd, sm.nodes[0].out.total, sm.nodes[1].out.recvd, sm.nodes[1].out.total)
		}
		for len(sm.q) > 0 && !sm.q[0].at.After(sm.now) {
			f := heap.Pop(&sm.q).(simFrame)
			_ = sm.nodes[f.to].s.Step(f.data, sm.now)
		}
		for _, n := range sm.nodes {
			n.s.Tick(sm.now)
		}
	}
}

func TestSim(t *testing.T) {
	ms := time.Millisecond
	scenarios := []struct {
		name   string
		faults Faults
		// partition cuts both directions for [from, to) of virtual time.
		partFrom, partTo time.Duration
	}{
		{name: "perfect", faults: Faults{Delay: 50 * time.Microsecond}},
		{name: "loss1", faults: Faults{Loss: 0.01, Delay: 100 * time.Microsecond, Jitter: 20 * time.Microsecond}},
		{name: "loss10", faults: Faults{Loss: 0.10, Delay: 100 * time.Microsecond, Jitter: 50 * time.Microsecond}},
		{name: "loss30", faults: Faults{Loss: 0.30, Delay: 100 * time.Microsecond}},
		{name: "duplicate", faults: Faults{Duplicate: 0.2, Delay: 100 * time.Microsecond, Jitter: 100 * time.Microsecond}},
		{name: "reorder", faults: Faults{Reorder: 0.2, Delay: 100 * time.Microsecond, ReorderDelay: ms}},
		{name: "corrupt", faults: Faults{Corrupt: 0.05, Delay: 100 * time.Microsecond}},
		{name: "mixed", faults: Faults{Loss: 0.05, Duplicate: 0.05, Reorder: 0.05, Corrupt: 0.02, Delay: 200 * time.Microsecond, Jitter: 200 * time.Microsecond, BandwidthBps: 10e9}},
		{name: "partition", faults: Faults{Loss: 0.01, Delay: 100 * time.Microsecond}, partFrom: 2 * ms, partTo: 3 * time.Second},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			linktest.RunSeeds(t, []uint64{1}, func(t *testing.T, seed uint64) {
				sm := newSim(t, seed, simConfig{faults: sc.faults, messages: simMessages})
				var silent, alive int
				if sc.partTo > 0 {
					from, to := simEpoch.Add(sc.partFrom), simEpoch.Add(sc.partTo)
					sm.wakeAt = from
					sm.minEnd = to.Add(time.Second) // long enough to see PeerAlive
					sm.onStep = func(sm *sim) {
						cut := !sm.now.Before(from) && sm.now.Before(to)
						for _, n := range sm.nodes {
							n.faults.SetPartitioned(cut)
						}
						switch {
						case sm.now.Before(from):
							sm.wakeAt = from
						case cut:
							sm.wakeAt = to
						default:
							sm.wakeAt = time.Time{}
						}
					}
				}
				start := time.Now()
				sm.run()
				for _, n := range sm.nodes {
					for _, ev := range n.events {
						switch ev.Kind {
						case EventPeerSilent:
							silent++
						case EventPeerAlive:
							alive++
						case EventPeerRestarted:
							t.Errorf("seed %d: unexpected %v", seed, ev.Kind)
						}
					}
				}
				if sc.partTo > 0 && (silent != 2 || alive != 2) {
					t.Errorf("seed %d: partition of %v gave %d PeerSilent and %d PeerAlive events, want 2 and 2", seed, sc.partTo-sc.partFrom, silent, alive)
				}
				if sc.partTo == 0 && silent != 0 {
					t.Errorf("seed %d: %d PeerSilent events without a partition", seed, silent)
				}
				a, b := sm.nodes[0].s.Stats(), sm.nodes[1].s.Stats()
				var decodeErrs uint64
				for i := range a.DecodeErrors {
					decodeErrs += a.DecodeErrors[i] + b.DecodeErrors[i]
				}
				if sc.faults.Corrupt > 0 && decodeErrs == 0 {
					t.Errorf("seed %d: corruption configured but no CRC errors counted", seed)
				}
				t.Logf("%s: %d+%d messages in %v virtual, %v real; A: sent %d frames, %d retransmits (%d fast), %d timeouts, SRTT %v RTO %v; B drops %v",
					sc.name, sm.nodes[0].out.total, sm.nodes[1].out.total, sm.now.Sub(simEpoch), time.Since(start).Round(time.Millisecond),
					a.FramesSent, a.Retransmits, a.FastRetransmits, a.Timeouts, a.SRTT, a.RTO, b.Drops)
			})
		})
	}
}

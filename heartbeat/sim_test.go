package heartbeat

import (
	"container/heap"
	"encoding/binary"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/swha/swha/frame"
)

// t0 is the virtual epoch of the simulations.
var t0 = time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)

// node is one side of a simulation: a Path and what the harness does to it.
type node struct {
	p       *Path
	name    string
	stopped bool // sends nothing and is not ticked: a dead or frozen peer
	// late, if set, is how late the node wakes for a deadline; frames that arrive
	// in between wait in its queue and are drained before the Tick.
	late   func(deadline time.Time) time.Duration
	queue  [][]byte // arrived, not yet received
	events []Event
	sent   [][]byte          // every frame it sent, for replays
	sentAt []time.Time       // when
	peer   *node             // where its frames go
	drop   func([]byte) bool // loses a frame it sends
}

type arrival struct {
	at    time.Time
	order int
	to    *node
	pdu   []byte
}

type arrivals []arrival

func (h arrivals) Len() int { return len(h) }
func (h arrivals) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].order < h[j].order
}
func (h arrivals) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *arrivals) Push(x any)   { *h = append(*h, x.(arrival)) }
func (h *arrivals) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// sim runs two paths over a wire in virtual time. Every wake-up happens at the
// deadline asked for, plus the node's lateness if set.
type sim struct {
	t       testing.TB
	now     time.Time
	a, b    *node
	latency time.Duration
	// delay, if set, replaces latency per frame (reordering, jitter).
	delay func() time.Duration
	wire  arrivals
	order int
}

func pathConfig(name string, local, peer, disc uint64) PathConfig {
	return PathConfig{Name: name, LocalID: local, PeerID: peer, Disc: disc}
}

func newNode(t testing.TB, cfg PathConfig) *node {
	t.Helper()
	p, err := NewPath(cfg, t0)
	if err != nil {
		t.Fatal(err)
	}
	return &node{p: p, name: cfg.Name}
}

func newSim(t testing.TB, ca, cb PathConfig) *sim {
	return newSimLatency(t, ca, cb, 100*time.Microsecond)
}

func newSimLatency(t testing.TB, ca, cb PathConfig, latency time.Duration) *sim {
	s := &sim{t: t, now: t0, latency: latency}
	s.a, s.b = newNode(t, ca), newNode(t, cb)
	s.a.peer, s.b.peer = s.b, s.a
	s.flush(s.a)
	s.flush(s.b)
	return s
}

func defaultSim(t testing.TB) *sim {
	return newSim(t, pathConfig("a", 1, 2, 0xa1), pathConfig("b", 2, 1, 0xb1))
}

// flush carries out a node's Ready: frames onto the wire, events into its log.
func (s *sim) flush(n *node) {
	rd := n.p.Ready()
	n.events = append(n.events, rd.Events...)
	for _, pdu := range rd.Send {
		c := slices.Clone(pdu)
		n.sent = append(n.sent, c)
		n.sentAt = append(n.sentAt, s.now)
		if n.stopped || (n.drop != nil && n.drop(c)) {
			continue
		}
		s.inject(n.peer, c)
	}
}

// inject puts a frame on the wire to n, as the medium or an attacker would.
func (s *sim) inject(to *node, pdu []byte) {
	d := s.latency
	if s.delay != nil {
		d = s.delay()
	}
	s.order++
	heap.Push(&s.wire, arrival{at: s.now.Add(d), order: s.order, to: to, pdu: pdu})
}

// wake is when n next runs: its deadline plus its lateness.
func (s *sim) wake(n *node) (at, asked time.Time) {
	asked = n.p.NextDeadline()
	if asked.IsZero() || n.stopped {
		return time.Time{}, time.Time{}
	}
	at = asked
	if n.late != nil {
		at = at.Add(n.late(asked))
	}
	return at, asked
}

// run advances virtual time by d.
func (s *sim) run(d time.Duration) {
	end := s.now.Add(d)
	for {
		next := end
		var who *node
		var asked time.Time
		for _, n := range []*node{s.a, s.b} {
			if at, ask := s.wake(n); !at.IsZero() && at.Before(next) {
				next, who, asked = at, n, ask
			}
		}
		if len(s.wire) > 0 && !s.wire[0].at.After(next) {
			f := heap.Pop(&s.wire).(arrival)
			s.now = f.at
			n := f.to
			if n.stopped {
				continue
			}
			if n.late != nil && n.p.NextDeadline().Before(s.now) {
				// Not running: the frame waits in the socket queue.
				n.queue = append(n.queue, f.pdu)
				continue
			}
			n.p.Receive(f.pdu, s.now)
			s.flush(n)
			continue
		}
		if who == nil {
			s.now = end
			return
		}
		s.now = next
		// Drain what waited, as Runner does, then tick.
		for _, pdu := range who.queue {
			who.p.Receive(pdu, s.now)
		}
		who.queue = who.queue[:0]
		who.p.Tick(s.now, asked)
		s.flush(who)
	}
}

// runUntil advances until cond holds or d passes; it reports whether cond held.
func (s *sim) runUntil(d time.Duration, cond func() bool) bool {
	end := s.now.Add(d)
	for s.now.Before(end) {
		if cond() {
			return true
		}
		s.run(100 * time.Microsecond)
	}
	return cond()
}

func (s *sim) bothUp() bool { return s.a.p.Up() && s.b.p.Up() }

func (s *sim) mustUp(t testing.TB) {
	t.Helper()
	if !s.runUntil(100*time.Millisecond, s.bothUp) {
		t.Fatalf("not up after 100 ms: a %v, b %v", s.a.p.State(), s.b.p.State())
	}
}

// kinds lists the kinds of n's events.
func kinds(n *node) []EventKind {
	var k []EventKind
	for _, e := range n.events {
		k = append(k, e.Kind)
	}
	return k
}

// firstEvent returns n's first event of kind k.
func firstEvent(n *node, k EventKind) (Event, bool) {
	for _, e := range n.events {
		if e.Kind == k {
			return e, true
		}
	}
	return Event{}, false
}

func mustKeyring(t testing.TB, id uint32, secret string) *frame.Keyring {
	t.Helper()
	kr, err := frame.NewKeyring(id, map[uint32][]byte{id: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// fixCRC recomputes the CRC32C trailer of an edited PDU.
func fixCRC(pdu []byte) []byte {
	n := len(pdu) - frame.CRCLen
	binary.BigEndian.PutUint32(pdu[n:], crc32.Checksum(pdu[:n], crc32.MakeTable(crc32.Castagnoli)))
	return pdu
}

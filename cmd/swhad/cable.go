package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/swha/swha/l2transport"
)

// cable is the demo's HA link: two in-memory wires between the two switches,
// one for the replication session and one for the heartbeats (a heartbeat
// never queues behind a burst of the stream). Side 0 is switch A, side 1 is
// switch B. The cable "kills" a switch on request: once armed, it lets a few
// more of that switch's session frames out and then cuts both wires in the
// middle of whatever is being sent, so the peer may hold part of a
// transaction; from then on the dead switch sends nothing. A switch that is
// restarted plugs new ports into the same wires (revive).
type cable struct {
	sess, hb [2]*l2transport.MemLink

	lastHB [2]atomic.Int64 // unix ns of the last heartbeat frame each side read

	deadDrop atomic.Uint64 // frames a dead switch did not send

	mu       sync.Mutex
	dying    int // side armed to die, -1 none
	budget   int // session frames it still lets out
	dead     int // side killed, -1 none
	killedAt time.Time
	killed   chan struct{}
	glitched bool
}

func newCable(loss float64, seed uint64) *cable {
	f := l2transport.Faults{Loss: loss}
	c := &cable{dying: -1, dead: -1, killed: make(chan struct{})}
	c.sess[0], c.sess[1] = l2transport.NewMemPair(1500, f, f, seed)
	c.hb[0], c.hb[1] = l2transport.NewMemPair(1500, f, f, seed+1)
	return c
}

// ports returns side's ends of the two wires, as links a Node may close.
func (c *cable) ports(side int) (sess, hb *port) {
	return &port{c: c, side: side, ml: c.sess[side]}, &port{c: c, side: side, ml: c.hb[side], hb: true}
}

// arm makes side die after n more of its session frames.
func (c *cable) arm(side, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead < 0 {
		c.dying, c.budget = side, n
	}
}

// killNow kills side at once if arm's budget has not done it yet.
func (c *cable) killNow(side int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dieLocked(side)
}

func (c *cable) dieLocked(side int) {
	if c.dead >= 0 {
		return
	}
	c.dead, c.dying = side, -1
	c.partition(true)
	c.killedAt = time.Now()
	close(c.killed)
}

func (c *cable) partition(on bool) {
	c.sess[0].SetPartitioned(on)
	c.hb[0].SetPartitioned(on)
}

// glitch cuts both wires (both ways) while on, as a pulled cable would,
// without killing anything. Turning it off does not revive a dead switch.
func (c *cable) glitch(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead < 0 {
		c.glitched = on
		c.partition(on)
	}
}

// killTime is when the kill cut the wires (zero before).
func (c *cable) killTime() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.killedAt
}

// isDead reports whether side has been killed.
func (c *cable) isDead(side int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead == side
}

// revive heals the wires for the dead switch's next incarnation: frames
// queued for the dead one are flushed (a rebooted switch starts with empty
// rings) and the wires carry frames again. Call it once the dead switch's
// Node is closed, before its new ports are used.
func (c *cable) revive() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead < 0 {
		return
	}
	for _, ml := range []*l2transport.MemLink{c.sess[c.dead], c.hb[c.dead]} {
		flush(ml)
	}
	c.dead, c.dying = -1, -1
	c.killed = make(chan struct{})
	c.partition(false)
}

// flush reads and drops whatever is queued on ml.
func flush(ml *l2transport.MemLink) {
	pkts := make([]l2transport.Packet, 64)
	for i := range pkts {
		pkts[i].Buf = make([]byte, ml.MaxPDU())
	}
	_ = ml.SetReadDeadline(time.Now())
	for {
		if n, err := ml.ReadBatch(pkts); err != nil || n == 0 {
			break
		}
	}
	_ = ml.SetReadDeadline(time.Time{})
}

func (c *cable) lastHeard(side int) time.Time {
	ns := c.lastHB[side].Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// port is one switch's end of one wire as its Node sees it. Closing it
// unplugs that incarnation of the switch (its readers get ErrClosed) but
// leaves the wire, for the switch's next incarnation.
type port struct {
	c    *cable
	side int
	ml   *l2transport.MemLink
	hb   bool

	mu     sync.Mutex // orders SetReadDeadline against Close
	closed atomic.Bool
}

func (p *port) MaxPDU() int { return p.ml.MaxPDU() }

func (p *port) WriteBatch(pdus [][]byte) (int, error) {
	if p.closed.Load() {
		return 0, l2transport.ErrClosed
	}
	c := p.c
	c.mu.Lock()
	if c.dead == p.side {
		c.mu.Unlock()
		c.deadDrop.Add(uint64(len(pdus)))
		return len(pdus), nil // a dead switch sends nothing
	}
	pass := len(pdus)
	armed := c.dying == p.side && !p.hb
	if armed {
		pass = min(pass, c.budget)
		c.budget -= pass
	}
	var n int
	var err error
	if pass > 0 {
		n, err = p.ml.WriteBatch(pdus[:pass])
	}
	if armed && c.budget == 0 {
		c.dieLocked(p.side)
		c.deadDrop.Add(uint64(len(pdus) - pass))
	}
	c.mu.Unlock()
	if err != nil {
		return n, err
	}
	return len(pdus), nil
}

func (p *port) ReadBatch(pkts []l2transport.Packet) (int, error) {
	if p.closed.Load() {
		return 0, l2transport.ErrClosed
	}
	n, err := p.ml.ReadBatch(pkts)
	if p.closed.Load() {
		return 0, l2transport.ErrClosed // what a dead incarnation's reader took is lost with it
	}
	if n > 0 && p.hb {
		p.c.lastHB[p.side].Store(time.Now().UnixNano())
	}
	return n, err
}

func (p *port) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return l2transport.ErrClosed
	}
	return p.ml.SetReadDeadline(t)
}

func (p *port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Swap(true) {
		return l2transport.ErrClosed
	}
	// Wake a reader blocked on the wire: it returns ErrClosed.
	return p.ml.SetReadDeadline(time.Now())
}

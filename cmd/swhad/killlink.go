package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/swha/swha/l2transport"
)

// killLink wraps one end of the demo's MemLink pair. On the active's end it
// "kills" the switch on request: once armed, it lets a few more frames out
// and then partitions the pair both ways in the middle of whatever is being
// sent, so the standby may hold part of a transaction. On the standby's end
// it records when the last frame was heard.
type killLink struct {
	*l2transport.MemLink

	lastRead atomic.Int64  // unix nanoseconds of the last frame read
	deadDrop atomic.Uint64 // frames a dead switch did not send

	mu       sync.Mutex
	armed    bool
	budget   int // frames still let out once armed
	dead     bool
	killedAt time.Time
	killed   chan struct{}
}

func newKillLink(l *l2transport.MemLink) *killLink {
	return &killLink{MemLink: l, killed: make(chan struct{})}
}

// arm makes the link die after n more frames.
func (k *killLink) arm(n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.dead {
		k.armed, k.budget = true, n
	}
}

// killNow partitions the pair at once if arm's budget has not done it yet.
func (k *killLink) killNow() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dieLocked()
}

// glitch partitions the pair (both ways) while on, as a cable glitch would,
// without killing anything. Turning it off does not revive a dead link.
func (k *killLink) glitch(on bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.dead {
		k.MemLink.SetPartitioned(on)
	}
}

func (k *killLink) dieLocked() {
	if k.dead {
		return
	}
	k.dead = true
	k.MemLink.SetPartitioned(true) // the pair is partitioned in both directions
	k.killedAt = time.Now()
	close(k.killed)
}

// isDead reports whether the link has been killed.
func (k *killLink) isDead() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dead
}

func (k *killLink) killTime() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.killedAt
}

func (k *killLink) WriteBatch(pdus [][]byte) (int, error) {
	k.mu.Lock()
	if k.dead {
		k.mu.Unlock()
		k.deadDrop.Add(uint64(len(pdus)))
		return len(pdus), nil // a dead switch sends nothing
	}
	pass := len(pdus)
	if k.armed && pass > k.budget {
		pass = k.budget
	}
	if k.armed {
		k.budget -= pass
	}
	var n int
	var err error
	if pass > 0 {
		n, err = k.MemLink.WriteBatch(pdus[:pass])
	}
	if k.armed && k.budget == 0 {
		k.dieLocked()
		k.deadDrop.Add(uint64(len(pdus) - pass))
	}
	k.mu.Unlock()
	if err != nil {
		return n, err
	}
	return len(pdus), nil
}

func (k *killLink) ReadBatch(pkts []l2transport.Packet) (int, error) {
	n, err := k.MemLink.ReadBatch(pkts)
	if n > 0 {
		k.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

func (k *killLink) lastHeard() time.Time {
	ns := k.lastRead.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

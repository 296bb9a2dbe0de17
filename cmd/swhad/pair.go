package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/swha/swha"
)

// demoNode is one switch of the demo: a Node with failover on, its event
// record and the intents its promotions handed back.
type demoNode struct {
	name string // "A" or "B"
	side int    // its side of the cable
	id   uint64
	prio uint8
	dir  string // failover state, kept across its restart
	node *swha.Node
	ev   *eventLog

	mu      sync.Mutex
	intents [][]byte // from its last promotion's role-change hook
}

// eventLog keeps a node's events (Node.OnEvent) for the demo to wait on.
type eventLog struct {
	mu   sync.Mutex
	evs  []swha.Event
	more chan struct{} // closed and replaced at every event
}

func newEventLog() *eventLog { return &eventLog{more: make(chan struct{})} }

func (l *eventLog) add(e swha.Event) {
	l.mu.Lock()
	l.evs = append(l.evs, e)
	close(l.more)
	l.more = make(chan struct{})
	l.mu.Unlock()
}

// mark is the index the next event will have.
func (l *eventLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.evs)
}

// since returns the events from index i on.
func (l *eventLog) since(i int) []swha.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]swha.Event(nil), l.evs[min(i, len(l.evs)):]...)
}

// wait returns the first event from index i on that match accepts.
func (l *eventLog) wait(ctx context.Context, i int, match func(swha.Event) bool) (swha.Event, error) {
	for {
		l.mu.Lock()
		for ; i < len(l.evs); i++ {
			if match(l.evs[i]) {
				e := l.evs[i]
				l.mu.Unlock()
				return e, nil
			}
		}
		more := l.more
		l.mu.Unlock()
		select {
		case <-more:
		case <-ctx.Done():
			return swha.Event{}, ctx.Err()
		}
	}
}

func isRoleChange(to swha.Role) func(swha.Event) bool {
	return func(e swha.Event) bool { return e.Kind == swha.EventRoleChanged && e.To == to }
}

// pair is the two switches over the cable.
type pair struct {
	o     demoOptions
	log   *slog.Logger
	cable *cable
	nodes [2]*demoNode
}

// start (re)starts d's Node on its ports of the cable.
func (p *pair) start(d *demoNode) error {
	reg, err := registry()
	if err != nil {
		return err
	}
	sess, hb := p.cable.ports(d.side)
	peer := p.nodes[1-d.side].id
	ev := newEventLog()
	n, err := swha.NewNode(swha.Config{Link: sess, Registry: reg, NodeID: d.id, PeerNodeID: peer,
		Mode: swha.Sync, Logger: p.log.With("side", d.name),
		Failover: &swha.FailoverConfig{StateDir: d.dir, Priority: d.prio, HeartbeatLink: hb,
			Interval: p.o.interval, Multiplier: p.o.multiplier}})
	if err != nil {
		return fmt.Errorf("start %s: %w", d.name, err)
	}
	n.OnEvent(ev.add)
	n.OnRoleChange(func(rc swha.RoleChange) {
		if rc.To == swha.Active {
			d.mu.Lock()
			d.intents = rc.Intents
			d.mu.Unlock()
		}
	})
	d.node, d.ev = n, ev
	return nil
}

func (p *pair) close() {
	for _, d := range p.nodes {
		if d != nil && d.node != nil {
			d.node.Close()
		}
	}
}

// settle waits until one node is active and the other a standby of the
// same generation that holds everything the active committed (WaitSynced),
// and returns the active's index and generation: every promotion makes a
// new generation, so a changed one says the roles changed since. A stall,
// a resync or a false failover may be in progress: it keeps looking until
// ctx ends.
func (p *pair) settle(ctx context.Context) (int, uint64, error) {
	for {
		ra, rb := p.nodes[0].node.Role(), p.nodes[1].node.Role()
		if ra != rb {
			act := 0
			if rb == swha.Active {
				act = 1
			}
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := p.nodes[act].node.WaitSynced(wctx)
			cancel()
			gen := p.nodes[act].node.FailoverStatus().Generation
			if err == nil && p.nodes[act].node.Role() == swha.Active && p.nodes[1-act].node.Role() == swha.Standby &&
				p.nodes[1-act].node.FailoverStatus().Generation == gen {
				return act, gen, nil
			}
			if err != nil && !errors.Is(err, swha.ErrNotActive) && !errors.Is(err, context.DeadlineExceeded) {
				return 0, 0, fmt.Errorf("waiting for the pair to settle: %w", err)
			}
		}
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("the pair never settled to an active and a hot standby (A %v, B %v): %w", ra, rb, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

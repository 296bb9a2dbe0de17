package swha

import (
	"context"
	"fmt"
	"sync"
)

// Coordinated is a transaction shared by several participants: separate
// applications embedding the same node, each committing its own part. The
// standby applies all parts together, atomically, once every participant
// has committed its part; and since it applies commits in commit order, a
// coordinated transaction never applies before one committed earlier (in
// particular one that shares a participant with it).
//
// On the active, each part takes effect when it commits, as any
// transaction does: the objects are the application's own memory. So a part
// cannot be withdrawn once another has committed, and Abort of a part
// commits an empty part for that participant instead.
//
// In synchronous mode, the acknowledgement of a part (and of anything
// committed after it) comes only when the whole coordinated transaction has
// applied on the standby. A participant must therefore not wait for a
// synchronous commit of anything else while its own part is still to come:
// it would wait for itself. Use asynchronous mode in between, or commit the
// part first.
type Coordinated struct {
	n     *Node
	id    uint64
	count int

	mu        sync.Mutex
	begun     map[string]bool
	committed map[string]bool
}

// NewCoordinated starts a coordinated transaction of participants parts.
func (n *Node) NewCoordinated(participants int) (*Coordinated, error) {
	if participants < 1 || participants > 1<<16 {
		return nil, fmt.Errorf("swha: coordinated transaction of %d participants: %w", participants, ErrParticipant)
	}
	if r := n.Role(); r != Active {
		return nil, fmt.Errorf("swha: coordinated transaction on a %v: %w", r, ErrNotActive)
	}
	id := n.coordNext.Add(1)
	return &Coordinated{n: n, id: id, count: participants, begun: map[string]bool{}, committed: map[string]bool{}}, nil
}

// ID returns the coordinated transaction's ID, carried by each part.
func (c *Coordinated) ID() uint64 { return c.id }

// Participants returns the number of parts.
func (c *Coordinated) Participants() int { return c.count }

// Committed returns how many participants have committed their part.
func (c *Coordinated) Committed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.committed)
}

// Begin opens participant's part, a transaction like any other (it waits for
// the node's write path as Node.Begin does). Each participant commits one
// part; a participant that already has, or one more than the count, is
// refused with ErrParticipant.
func (c *Coordinated) Begin(ctx context.Context, participant string) (*Txn, error) {
	c.mu.Lock()
	switch {
	case c.committed[participant]:
		c.mu.Unlock()
		return nil, fmt.Errorf("swha: coordinated txn %d: participant %q already committed its part: %w", c.id, participant, ErrParticipant)
	case c.begun[participant]:
		c.mu.Unlock()
		return nil, fmt.Errorf("swha: coordinated txn %d: participant %q already has its part open: %w", c.id, participant, ErrParticipant)
	case len(c.committed)+len(c.begun) >= c.count:
		c.mu.Unlock()
		return nil, fmt.Errorf("swha: coordinated txn %d: participant %q would be number %d of %d: %w", c.id, participant, len(c.committed)+len(c.begun)+1, c.count, ErrParticipant)
	}
	c.begun[participant] = true
	c.mu.Unlock()
	t, err := c.n.Begin(ctx)
	if err == nil {
		err = t.tx.Coordinate(c.id, c.count, participant)
		if err != nil {
			_ = t.tx.Abort()
			t.done = true
			t.lease.release()
		}
	}
	if err != nil {
		c.mu.Lock()
		delete(c.begun, participant)
		c.mu.Unlock()
		return nil, fmt.Errorf("swha: coordinated txn %d: part %q: %w", c.id, participant, err)
	}
	t.part = coordPart{c, participant}
	return t, nil
}

// coordPart is a participant's part as its Txn sees it.
type coordPart struct {
	c    *Coordinated
	name string
}

func (p coordPart) ended(committed bool) { p.c.settle(p.name, committed) }

// aborted: the other parts may already be applied on this node, and the
// standby applies the coordinated transaction only when every part
// committed, so this participant still commits one, empty.
func (p coordPart) aborted() error {
	p.c.settle(p.name, false)
	empty, err := p.c.Begin(p.c.n.ctx, p.name)
	if err != nil {
		return err
	}
	empty.SetMode(Async)
	return empty.Commit(p.c.n.ctx)
}

// settle records the outcome of participant's Commit: committed, or failed
// with nothing committed (the participant may try again).
func (c *Coordinated) settle(participant string, committed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.begun, participant)
	if !committed || c.committed[participant] {
		return
	}
	c.committed[participant] = true
	if c.count == 1 {
		return
	}
	switch len(c.committed) {
	case 1:
		c.n.coordinated(+1)
	case c.count:
		c.n.coordinated(-1)
	}
}

// coordinated tells the core that a coordinated transaction became partial
// (+1) or complete (-1): a snapshot waits for none to be partial.
func (n *Node) coordinated(delta int) {
	free := false
	n.own.do(func() {
		if n.act == nil { // demoted: the coordinated transaction died with the role
			return
		}
		n.act.Coordinated(delta)
		free = n.act.CoordinatedPartial() == 0
	})
	if free {
		n.kick() // a snapshot deferred for it can go now
	}
}

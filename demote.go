package swha

import (
	"fmt"
	"slices"
	"time"

	"github.com/swha/swha/internal/replica"
)

// Role changes the failover module asks for besides Promote: stopping the
// stream before a promotion, following an active of a given generation, and
// demoting a replaced active in place.

// stopStream makes a standby apply nothing more of the active's stream: what
// applied so far stays, partial transactions are discarded by the Promote
// that follows. A frame of the old active already queued for delivery must
// not slip in between the decision and the promotion.
func (n *Node) stopStream() {
	n.applyMu.Lock()
	n.streamStopped = true
	n.applyMu.Unlock()
}

// follow makes this standby take the stream of an active of generation gen
// or newer, and refuse one of an older generation: a replaced active that
// resumes must not be followed.
func (n *Node) follow(gen uint32) {
	n.applyMu.Lock()
	n.streamStopped = false
	n.applyMu.Unlock()
	n.own.do(func() { n.followGen = gen })
}

// demote turns this active into a standby of the peer, in place: fenced
// first, so that nothing commits or is acknowledged from here on; then,
// holding the write path (no transaction open), the store gives up its
// state and awaits the new active's snapshot, which replaces it; then the
// session restarts at epoch so that the peer sees a new stream to
// snapshot. It returns how many of its own commits the peer never
// acknowledged: they are gone once the snapshot applies.
func (n *Node) demote(epoch uint32) (discarded uint64, err error) {
	n.fence("demoting to standby")
	l, err := n.write.acquire(n.ctx, n.ctx.Done())
	if err != nil {
		return 0, fmt.Errorf("swha: demote: %w", err)
	}
	defer l.release()
	n.applyMu.Lock()
	if n.Role() != Active {
		n.applyMu.Unlock()
		return 0, fmt.Errorf("swha: demote: %w", ErrNotActive)
	}
	// The store first, off the owner (it may wait for readers): fenced and
	// holding the write path, nothing commits meanwhile, and the core may
	// still take acks.
	rep, err := n.repl.Demote()
	if err != nil {
		n.applyMu.Unlock()
		return 0, fmt.Errorf("swha: demote: %w", err)
	}
	var hooks []func(RoleChange)
	n.own.do(func() {
		st := n.act.Status()
		if st.Committed > st.Acked {
			discarded = st.Committed - st.Acked
		}
		n.act.Event(replica.Silent, 0, time.Now())
		n.role = Standby
		n.act = nil
		n.sby = replica.NewStandby()
		n.fenced = false // a standby commits nothing anyway; a promotion starts clean
		n.hot = false
		hooks = slices.Clone(n.hooks)
		n.emit(Event{Kind: EventRoleChanged, From: Active, To: Standby, Detail: fmt.Sprintf("%d unacknowledged commits discarded", discarded)})
		n.changed()
	})
	n.streamStopped = false
	n.applyMu.Unlock()
	n.log.Warn("demoted to standby", "seq", rep.Seq, "objects", rep.Objects, "discarded_commits", discarded)
	rc := RoleChange{From: Active, To: Standby}
	n.user.queue(func() {
		for _, fn := range hooks {
			fn(rc)
		}
	})
	if err := n.restartSession(epoch); err != nil {
		return discarded, err
	}
	return discarded, nil
}

// drain waits, for a planned switchover, until every commit of this fenced
// active is acknowledged (or there is no standby to acknowledge), and
// returns the seq of the last one: the standby takes over once it has
// applied it.
func (n *Node) drain() uint64 {
	// The write path only orders the drain after the commit in flight, if
	// any: fenced, nothing new commits. Held while waiting, it would keep
	// from the write path the snapshot or coordinated part that the
	// standby's acknowledgement may be waiting for (found in review: a
	// wedge).
	l, err := n.write.acquire(n.ctx, n.ctx.Done())
	if err != nil {
		return 0
	}
	l.release()
	for {
		var st replica.Status
		var ch chan struct{}
		active, fenced := false, false
		n.own.do(func() {
			if active = n.act != nil; active {
				st, ch, fenced = n.act.Status(), n.progress, n.fenced
			}
		})
		if !active {
			return 0
		}
		if st.Acked >= st.Committed || !st.PeerUp || !fenced {
			// Drained, no standby to drain to, or the switchover was
			// called off (ActAccept unfenced the node).
			return st.Committed
		}
		select {
		case <-ch:
		case <-n.ctx.Done():
			return st.Committed
		}
	}
}

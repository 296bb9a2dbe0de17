package swha

import (
	"context"
	"fmt"
	"time"
)

// WaitSynced waits until a standby holds everything this active node had
// committed when it was called: the session is up with the standby
// incarnation the session talks to now (not one the node has not caught up
// with), the standby applied a snapshot or resume on the current stream,
// and it acknowledged that commit. With failover on it is a barrier even
// against a standby that just restarted: its heartbeats announce the new
// incarnation within an interval, before the session may have noticed, and
// a session still on the old incarnation does not count. An application
// uses it to know that redundancy is (re-)established, for example before a
// planned switchover.
func (n *Node) WaitSynced(ctx context.Context) error {
	var target uint64
	active := false
	n.own.do(func() {
		if active = n.role == Active; active {
			target = n.act.Status().Committed
		}
	})
	if !active {
		return fmt.Errorf("swha: wait synced: %w", ErrNotActive)
	}
	for {
		ss := n.conn.Stats()
		var done bool
		var ch chan struct{}
		n.own.do(func() {
			if active = n.act != nil; active {
				done = ss.Established && n.act.Synced(target, ss.PeerEpoch)
			}
			ch = n.progress
		})
		if !active {
			return fmt.Errorf("swha: wait synced: %w", ErrNotActive)
		}
		var poll <-chan time.Time
		if done && n.fo != nil && n.fo.peerRestarted(ss.PeerEpoch) {
			done = false
			poll = time.After(n.fo.pollEvery())
		}
		if done {
			return nil
		}
		select {
		case <-poll:
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("swha: wait synced: %w", ctx.Err())
		case <-n.ctx.Done():
			return fmt.Errorf("swha: wait synced: %w", ErrClosed)
		}
	}
}

// Resync sends the standby a fresh snapshot of the whole state — an
// operator's "resync", when the mirror is suspected wrong — and waits until
// the standby has applied and acknowledged it. Commits go on meanwhile and
// stream behind the snapshot; the standby is not hot (no failover to it
// without Config.Failover's PromoteUnsynced) until the wait ends. It fails
// with ErrNotActive on a standby and ErrNoStandby with no standby up.
func (n *Node) Resync(ctx context.Context) error {
	var active, up bool
	var old uint64
	n.own.do(func() {
		if active = n.role == Active && n.act != nil; active {
			old = n.act.Status().SnapshotTxn
			up = n.act.Resync()
		}
	})
	switch {
	case !active:
		return wrap("resync", ErrNotActive)
	case !up:
		return wrap("resync", ErrNoStandby)
	}
	n.log.Info("resync of the standby asked", "previous_snapshot", old)
	n.kick()
	for {
		var done bool
		var ch chan struct{}
		var lost bool
		n.own.do(func() {
			if active = n.act != nil; active {
				st := n.act.Status()
				done = st.SnapshotTxn != old && n.act.Hot()
				lost = !n.act.PeerUp()
			}
			ch = n.progress
		})
		switch {
		case !active:
			return wrap("resync", ErrNotActive)
		case lost:
			// It gets a snapshot (or a resume) when it is back anyway.
			return wrap("resync", ErrStandbyLost)
		}
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return wrap("resync", ctx.Err())
		case <-n.ctx.Done():
			return wrap("resync", ErrClosed)
		}
	}
}

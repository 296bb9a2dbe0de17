package swha

import (
	"context"
)

// One authority says whether the peer is alive: the heartbeat module (not
// built yet), through Liveness. Session silence means only that the stream
// is down: the active stops streaming and serves solo, and a synchronous
// commit owed to that standby fails with ErrStandbyLost; it promotes
// nothing. Until the heartbeat lands, Node.SessionLiveness stands in for it
// behind the same interface, so that what consumes it (the demo today, the
// failover module next) does not change when the heartbeat arrives.

// SessionLiveness is the stand-in Liveness until the heartbeat module
// lands: the session's silence (no valid frame for its DeadInterval) as the
// peer's death, the session up as its life.
func (n *Node) SessionLiveness() Liveness { return sessionLiveness{n} }

type sessionLiveness struct{ n *Node }

func (l sessionLiveness) Watch(ctx context.Context) <-chan PeerState {
	ch := make(chan PeerState, 1)
	go func() {
		defer close(ch)
		var last PeerState
		first := true
		for {
			var cur PeerState
			var wake chan struct{}
			l.n.own.do(func() { cur, wake = l.n.peer, l.n.progress })
			if first || cur != last {
				// Keep only the latest verdict in the buffer.
				select {
				case <-ch:
				default:
				}
				ch <- cur
				first, last = false, cur
			}
			select {
			case <-wake:
			case <-ctx.Done():
				return
			case <-l.n.ctx.Done():
				return
			}
		}
	}()
	return ch
}

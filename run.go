package swha

import (
	"fmt"
	"time"

	"github.com/swha/swha/internal/replica"
	"github.com/swha/swha/internal/wire"
	"github.com/swha/swha/l2transport"
)

// The driver. One goroutine owns the cores (owner.go); three kinds of
// goroutine bring it input: the Conn's delivery goroutine (onEvent,
// onMessage: the peer's input, and on a standby the Apply of the stream),
// loop, the worker (the work the cores ask for, which may block), and the
// application's own goroutines through Txn, WaitSynced and Promote. None of
// them runs application code: that is the deliverer's.

// onEvent follows the session.
func (n *Node) onEvent(ev l2transport.Event) {
	n.log.Info("peer event", "event", ev.Kind.String(), "peer", ev.PeerNodeID, "peer_epoch", ev.PeerEpoch)
	if ev.EpochReused {
		// Recovered (a new stream), but a restarted peer must come back with
		// a newer epoch: its Config.Epoch is not being advanced.
		n.log.Warn("the peer restarted with the epoch of its previous incarnation; the stream restarts, but its epoch should be newer", "peer", ev.PeerNodeID, "peer_epoch", ev.PeerEpoch)
	}
	var kind replica.Event
	switch ev.Kind {
	case l2transport.EventEstablished, l2transport.EventPeerRestarted:
		kind = replica.NewStream
	case l2transport.EventPeerSilent:
		kind = replica.Silent
	case l2transport.EventPeerAlive:
		kind = replica.Alive
	default:
		return
	}
	n.applyMu.Lock()
	defer n.applyMu.Unlock()
	// The store is read and told here, under applyMu (no Apply runs), not
	// on the owner, which never takes applyMu.
	var resume, await, stale, standby bool
	n.own.do(func() {
		if alive := kind != replica.Silent; alive != n.peer.Alive {
			n.peer = PeerState{Alive: alive, At: ev.At, Reason: "session " + ev.Kind.String()}
			k := EventPeerDown
			if alive {
				k = EventPeerUp
			}
			n.emit(Event{Kind: k, At: ev.At, Path: "session", Detail: ev.Kind.String()})
		}
		if n.act == nil && kind == replica.NewStream {
			n.staleIn = n.staleStream(ev.PeerEpoch)
			if n.staleIn {
				// A replaced active resumed (or a rogue speaks as one): its
				// stream must not reach the mirror, and no ack goes back to
				// it.
				n.stats.staleStreams.Add(1)
				n.log.Warn("refused the stream of an active of an older generation", "peer_epoch", ev.PeerEpoch,
					"generation", generationOf(ev.PeerEpoch), "following", n.followGen)
				n.changed()
				stale = true
				return
			}
		}
		if n.act != nil {
			n.act.Event(kind, ev.PeerEpoch, time.Now())
		} else {
			switch n.sby.Event(kind) {
			case replica.StoreAwaitSnapshot:
				await = true
			case replica.StoreResume:
				resume = true
			}
		}
		standby = n.sby != nil
		n.changed()
	})
	if stale {
		return
	}
	if await {
		n.repl.AwaitSnapshot()
	}
	if resume {
		// Tell the active which version we run and what we hold, so that
		// it can replay from there rather than send everything.
		snap, seq := n.repl.ResumeStream()
		n.own.do(func() {
			if n.sby != nil {
				n.sby.Resume(snap, seq)
			}
		})
	}
	if standby {
		n.notePending()
		holds := n.store.SnapshotID() != 0 && !n.repl.AwaitingSnapshot()
		n.own.do(func() { n.standbyHot(holds) })
	}
	n.kick()
}

// onMessage takes one session message: a node message (internal/wire) from
// the peer, or on a standby a record of the active's stream.
func (n *Node) onMessage(m l2transport.Message) {
	if len(m.Data) == 0 {
		return
	}
	kind, ok := wire.Peek(m.Data)
	switch {
	case ok && kind == wire.KindAck:
		n.onAck(m.Data)
	case ok && kind == wire.KindRefusal:
		n.onRefusal(m.Data)
	case ok && kind == wire.KindHello:
		n.onHello(m.Data)
	case m.Data[0] >= 0x80:
		n.log.Warn("dropped a node message of an unknown kind", "kind", m.Data[0], "len", len(m.Data))
	default:
		n.apply(m.Data)
	}
}

// loop runs what the cores ask for: on the active, snapshots, replays and
// repairs (on the write path, so never on the delivery goroutine, which must
// keep taking acks meanwhile); on the standby, its acks, refusals and hello.
// Acknowledging from here rather than from the delivery goroutine coalesces
// acknowledgements under load (one per wake-up, not one per commit) without
// delaying an idle stream's.
func (n *Node) loop() {
	defer n.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-n.wake:
		case <-timer.C:
		case <-n.ctx.Done():
			timer.Stop()
			return
		}
		if n.Role() != Active {
			n.standbyOutput()
			continue
		}
		timer.Stop()
		if next := n.activeWork(); !next.IsZero() {
			timer.Reset(max(time.Until(next), 0))
		}
	}
}

// restartSession starts a new stream with a newer epoch on the same link:
// what promotion and demotion will do once the failover module moves the
// generation on. The cores drop the old stream at once (nothing more is
// streamed into it, a synchronous commit owed to it fails as lost); the new
// one is decided as any new stream is, when it establishes.
func (n *Node) restartSession(epoch uint32) error {
	n.applyMu.Lock()
	n.own.do(func() {
		if n.act != nil {
			n.act.Event(replica.Silent, 0, time.Now())
		} else {
			n.sby.Event(replica.Silent) // asks nothing of the store
		}
		// The old stream's verdict says nothing of the new one.
		n.peer = PeerState{At: time.Now(), Reason: "session restarted"}
		n.changed()
	})
	n.applyMu.Unlock()
	if err := n.conn.Restart(epoch); err != nil {
		return fmt.Errorf("swha: restart session with epoch %d: %w", epoch, err)
	}
	n.log.Info("session restarted", "epoch", epoch)
	return nil
}

// staleStream reports whether a stream of the peer at epoch is one to
// refuse: the node follows a newer generation. It runs on the owner.
func (n *Node) staleStream(epoch uint32) bool {
	// Serial arithmetic on the epoch's 16 generation bits, which wrap.
	return n.fo != nil && int16(uint16(generationOf(epoch))-uint16(n.followGen)) < 0
}

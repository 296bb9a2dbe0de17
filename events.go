package swha

import (
	"slices"
	"time"
)

// OnEvent registers fn to be called with every event from now on, in order,
// on the node's delivery goroutine (in order with subscribers, message
// handlers and role-change hooks): fn may call any method of the Node,
// Close included.
func (n *Node) OnEvent(fn func(Event)) {
	n.own.do(func() { n.evHooks = append(n.evHooks, fn) })
}

// emit queues ev for the event hooks. It runs on the owner, so events are
// queued in the order the cores changed.
func (n *Node) emit(ev Event) {
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	n.log.Debug("node event", "event", ev.String())
	if len(n.evHooks) == 0 {
		return
	}
	hooks := slices.Clone(n.evHooks)
	n.user.queue(func() {
		for _, fn := range hooks {
			fn(ev)
		}
	})
}

// changed wakes everything waiting on the cores, republishes what the sink
// reads, and reports the standby turning hot or cold. It runs on the owner.
func (n *Node) changed() {
	n.streamOn.Store(n.act != nil && n.act.Streaming())
	if n.act != nil {
		if hot := n.act.Hot(); hot != n.hot {
			n.hot = hot
			n.emit(Event{Kind: hotKind(hot)})
		}
	}
	close(n.progress)
	n.progress = make(chan struct{})
}

// standbyHot is changed's counterpart on a standby, where the store rather
// than the core knows whether a snapshot is held: it runs on the owner and
// is passed what the store says.
func (n *Node) standbyHot(holds bool) {
	if hot := holds && n.sby != nil && n.sby.PeerUp(); hot != n.hot {
		n.hot = hot
		n.emit(Event{Kind: hotKind(hot)})
	}
}

func hotKind(hot bool) EventKind {
	if hot {
		return EventStandbyHot
	}
	return EventStandbyCold
}

// kick wakes the loop: the cores may have work for it.
func (n *Node) kick() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// publish republishes the view; it runs on the owner after every call.
func (n *Node) publish() {
	v := ownView{role: n.role, fenced: n.fenced, progress: n.progress}
	if n.act != nil {
		v.peerUp, v.hot, v.stale = n.act.PeerUp(), n.act.Hot(), n.act.HasStale()
		v.acked = n.act.Status().Acked
	}
	if old := n.view.Load(); old == nil || *old != v {
		n.view.Store(&v)
	}
}

package swha

import (
	"errors"
	"fmt"
	"slices"

	"github.com/swha/swha/internal/replica"
	"github.com/swha/swha/objstore"
)

// The standby's side of the driver: the active's stream into the store, and
// what the core owes the active (acks, refusals, the hello) out.

// apply takes one record of the active's stream, on the Conn's delivery
// goroutine, and hands what it applied to the subscribers on the
// deliverer's, waiting for them: the mirror is not written while they read
// it. The ack may go out before they have run: it says the mirror holds the
// transaction.
func (n *Node) apply(rec []byte) {
	n.applyMu.Lock()
	if n.sby == nil || n.ctx.Err() != nil || n.streamStopped || n.staleIn {
		// A promoted node no longer takes the old active's stream; a closed
		// one (a callback may close it mid-batch) takes nothing.
		n.applyMu.Unlock()
		return
	}
	err := n.repl.Apply(rec)
	if err != nil && n.afterRefusedApply != nil {
		n.afterRefusedApply()
	}
	refs, dropped := n.repl.TakeRefusals()
	if err != nil || len(refs) > 0 || dropped > 0 {
		n.judgeApply(err, refs, dropped)
	}
	n.notePending()
	// Queued under applyMu, before the ack can go out: a Promote (or
	// anything else the application does once its commit is acknowledged)
	// queues its hooks after this transaction's changes.
	var notified <-chan struct{}
	if n.repl.NotifyPending() {
		notified = n.user.queueDone(n.repl.Notify)
	}
	n.applyMu.Unlock()
	n.kick()
	if notified != nil {
		n.user.wait(notified, n.ctx.Done())
	}
}

// judgeApply has the standby core judge an Apply that failed or refused
// something, and carries out its verdict. The caller holds applyMu. An Apply
// that did neither needs no verdict: that is every record of a healthy
// stream, so it costs no lock beyond applyMu.
func (n *Node) judgeApply(err error, refs []objstore.Refusal, dropped uint64) {
	r := replica.Applied{
		Err:              err,
		NotRepresentable: errors.Is(err, objstore.ErrNotRepresentable),
		Dropped:          dropped,
		Snap:             n.store.SnapshotID(),
		Awaiting:         n.repl.AwaitingSnapshot(),
	}
	for _, f := range refs {
		var te *objstore.TransformError
		skew := errors.As(f.Err, &te)
		var obj uint64
		if skew {
			obj = te.ObjectID
			n.stats.refused.Add(1)
			n.log.Warn("refused a transaction the local version cannot hold", "txn", f.Txn, "seq", f.Seq, "snapshot", f.Snapshot, "err", f.Err)
		}
		r.Refusals = append(r.Refusals, replica.Refused{Seq: f.Seq, Txn: f.Txn, Object: obj, Snapshot: f.Snapshot, Text: f.Err.Error(), Skew: skew})
	}
	var v replica.Verdict
	n.own.do(func() {
		if n.sby != nil {
			v = n.sby.Applied(r)
		}
	})
	if v.AwaitSnapshot {
		n.repl.AwaitSnapshot()
	}
	if v.Resync {
		n.stats.applyErrors.Add(1)
		n.stats.resyncAsks.Add(1)
		n.log.Warn("standby apply failed; asking for a snapshot", "err", err)
	}
}

// notePending publishes the store's staged and held counts for Stats. The
// caller holds applyMu.
func (n *Node) notePending() {
	n.stagedN.Store(int64(n.repl.Staged()))
	n.heldN.Store(int64(n.repl.Held()))
}

// standbyOutput sends what the standby core owes the active.
func (n *Node) standbyOutput() {
	n.applyMu.Lock()
	if n.Role() != Standby {
		n.applyMu.Unlock()
		return
	}
	// Read with no Apply in progress (see replica.Standby.Ready).
	snap, applied := n.store.SnapshotID(), n.store.AppliedSeq()
	holds := snap != 0 && !n.repl.AwaitingSnapshot()
	var o replica.Output
	var core *replica.Standby
	sent := n.ackSent
	n.ackSent = pendingAck{}
	n.own.do(func() {
		if n.sby == nil {
			return
		}
		// The previous call's ack, told now rather than in a call of its
		// own: one hand-over per wake-up of the worker.
		if sent.core == n.sby {
			n.sby.AckSent(sent.ack)
		}
		o = n.sby.Ready(snap, applied)
		core = n.sby
		n.standbyHot(holds)
	})
	var hello []byte
	if o.Hello != nil {
		h := *o.Hello
		h.Schemas = schemasOf(n.store.Registry())
		hello = h.Append(nil)
	}
	n.applyMu.Unlock()
	for _, r := range o.Refusals {
		if err := n.conn.Send(n.ctx, r.Append(nil), 0); err != nil && n.ctx.Err() == nil {
			n.log.Warn("send refusal failed", "err", err)
		}
	}
	if hello != nil {
		if err := n.conn.Send(n.ctx, hello, 0); err != nil && n.ctx.Err() == nil {
			n.log.Warn("send hello failed", "err", err)
			n.own.do(func() {
				if n.sby != nil {
					n.sby.HelloFailed()
				}
			})
		}
	}
	if o.Ack == nil {
		return
	}
	if err := n.conn.Send(n.ctx, o.Ack.Append(nil), 0); err != nil {
		if n.ctx.Err() == nil {
			n.log.Warn("send applied-ack failed", "err", err)
		}
		return
	}
	// Learnt by the core at the worker's next call, before its next Ready:
	// only Ready reads what AckSent records, so an idle stream loses nothing
	// by the wait.
	n.ackSent = pendingAck{core: core, ack: *o.Ack}
}

// Promote turns a standby into the active: it stops taking the stream,
// applies nothing more, discards the transactions whose commit never came
// (and any held behind an incomplete coordinated transaction) and returns
// their intents, builds the store's active-side indexes, and queues the
// role-change hooks. The node is then solo until a standby joins (a new
// session epoch from the peer brings a snapshot to it).
func (n *Node) Promote() ([][]byte, error) {
	n.applyMu.Lock()
	defer n.applyMu.Unlock()
	if n.Role() != Standby {
		return nil, fmt.Errorf("swha: promote: %w", ErrNotStandby)
	}
	intents, err := n.repl.Promote()
	if err != nil {
		return nil, fmt.Errorf("swha: promote: %w", err)
	}
	// What this node logged in an earlier term says nothing about the stream
	// it starts now (no commit runs on a standby, so nothing writes it).
	n.replay = replica.NewLog(n.cfg.ReplayBytes)
	n.sink.log = n.replay
	seq := n.store.Seq()
	var hooks []func(RoleChange)
	n.own.do(func() {
		n.role = Active
		n.sby = nil
		n.act = replica.NewActive(n.cfg.Window, seq)
		hooks = slices.Clone(n.hooks)
		n.hot = false // hot again when a standby of ours acknowledges a snapshot
		n.emit(Event{Kind: EventRoleChanged, From: Standby, To: Active, Detail: fmt.Sprintf("%d intents discarded", len(intents))})
		n.changed()
	})
	n.log.Info("promoted to active", "seq", n.store.Seq(), "objects", n.store.Len(), "discarded_intents", len(intents))
	rc := RoleChange{From: Standby, To: Active, Intents: intents}
	n.user.queue(func() {
		for _, fn := range hooks {
			fn(rc)
		}
	})
	return intents, nil
}

// schemasOf is the hello's schema list: every type this node registered.
func schemasOf(reg *objstore.Registry) []*objstore.Schema {
	var out []*objstore.Schema
	for _, name := range reg.Names() {
		out = append(out, reg.Schema(name))
	}
	return out
}

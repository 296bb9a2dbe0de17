package swha

import (
	"fmt"
	"slices"
	"time"

	"github.com/swha/swha/internal/replica"
	"github.com/swha/swha/internal/wire"
)

// The active's side of the driver: the standby's messages in, and the work
// the core asks for out (snapshot, replay, repairs), each on the write path.

// onAck takes a standby's applied-ack.
func (n *Node) onAck(b []byte) {
	a, err := wire.ParseAck(b)
	if err != nil {
		n.log.Warn("dropped bad applied-ack", "err", err)
		return
	}
	n.own.do(func() {
		if n.act != nil {
			n.act.Ack(a)
		}
		n.changed()
	})
	if a.Flags&wire.AckNeedSnapshot != 0 {
		n.kick()
	}
}

// onRefusal takes a standby's refusal of a transaction its version cannot
// hold.
func (n *Node) onRefusal(b []byte) {
	r, err := wire.ParseRefusal(b)
	if err != nil {
		n.log.Warn("dropped bad refusal from the standby", "err", err)
		return
	}
	n.stats.peerRefusals.Add(1)
	n.log.Warn("standby refused a transaction", "txn", r.Txn, "seq", r.Seq, "snapshot", r.Snapshot, "object", r.Object, "err", r.Text)
	n.own.do(func() {
		if n.act != nil {
			n.act.Refusal(r)
		}
		n.changed()
	})
	n.kick()
}

// onHello takes a standby's hello: the version skew, and where its state
// stands, which decides between a replay and a snapshot.
func (n *Node) onHello(b []byte) {
	h, err := wire.ParseHello(b)
	if err != nil {
		n.log.Warn("dropped bad hello from the standby", "err", err)
		return
	}
	n.noteSkew(h.Schemas)
	var resume, decided bool
	n.own.do(func() {
		if n.act != nil {
			resume, decided = n.act.Hello(h)
		}
		n.changed()
	})
	if !decided {
		n.log.Debug("ignored a hello on a stream already decided", "snapshot", h.Snap, "applied_seq", h.Applied)
		return
	}
	n.log.Info("standby hello", "snapshot", h.Snap, "applied_seq", h.Applied, "resume", resume)
	n.kick()
}

// activeWork runs what the core asks for now and returns when to look
// again (zero: when woken).
func (n *Node) activeWork() time.Time {
	now := time.Now()
	var w replica.Work
	active := false
	n.own.do(func() {
		if active = n.act != nil; active { // else demoted since the loop looked
			n.act.Tick(now)
			w = n.act.Work(now)
		}
	})
	if !active {
		return time.Time{}
	}
	if len(w.Repairs) > 0 {
		if err := n.runRepairs(w.Repairs); err != nil && n.ctx.Err() == nil {
			n.log.Warn("repair of a refused transaction failed", "err", err)
		}
	}
	if w.Replay != nil {
		if err := n.sendReplay(*w.Replay); err != nil && n.ctx.Err() == nil {
			n.log.Warn("replay to standby failed", "err", err)
		}
	}
	if w.Snapshot {
		if err := n.sendSnapshot(); err != nil && n.ctx.Err() == nil {
			n.log.Warn("snapshot to standby failed", "err", err)
		}
	}
	var next time.Time
	n.own.do(func() {
		// Demoted while the work above ran (a failover under flapping did
		// this: a nil dereference here).
		if n.act != nil {
			next = n.act.NextDeadline()
		}
	})
	return next
}

// sendSnapshot sends the whole committed state as one transaction, between
// two commits, and from then on streams every commit.
func (n *Node) sendSnapshot() error {
	l, err := n.write.acquire(n.ctx, n.ctx.Done())
	if err != nil {
		return err
	}
	defer l.release()
	if n.Role() != Active {
		return nil // demoted while waiting: the work died with the role
	}
	var start bool
	n.own.do(func() {
		start = n.act != nil && n.act.StartSnapshot(time.Now())
		n.changed() // records from here on are part of the snapshot and what follows
	})
	if !start {
		return nil
	}
	n.sink.begin(n.ctx, 0)
	txn, err := n.repl.Snapshot()
	if err == nil {
		err = n.sink.flush()
	}
	if err == nil {
		// As the seed library does during bulk sync, count the objects
		// nothing reaches any more (Stats.Leaks; Node.Leaks lists them). Not
		// a warning: a plain RIB with no groups is all "unreachable".
		// Counted before the core learns of the snapshot, so that whoever
		// WaitSynced wakes sees this snapshot's count.
		// Only the count: the list costs seconds at a million objects,
		// with the write path held.
		leaks := n.repl.LeakCount()
		n.stats.leaks.Store(uint64(leaks))
		if leaks > 0 {
			n.log.Debug("unreachable dynamic objects (not in a group, no pointer from a root)", "count", leaks)
		}
	}
	seq := n.store.Seq()
	n.own.do(func() {
		if err == nil {
			// Counted before the core knows: the standby may acknowledge
			// it (and a waiter return) before this goroutine runs again.
			n.stats.snapshots.Add(1)
		}
		if n.act != nil {
			n.act.SnapshotSent(txn, seq, err)
		}
		// Wake WaitSynced even when no seq advanced: the standby's first
		// ack of this snapshot may have arrived before the core knew the
		// snapshot, and on a fresh stream that ack (seq 0) is all the
		// waiter is waiting for.
		n.changed()
	})
	if err != nil {
		return fmt.Errorf("swha: snapshot: %w", err)
	}
	n.log.Info("snapshot sent to standby", "txn", txn, "objects", n.store.Len(), "seq", n.store.Seq())
	if d := n.repl.SnapshotDangling(); d > 0 {
		n.log.Warn("snapshot sent pointers to deleted objects as nil", "count", d)
	}
	return nil
}

// sendReplay sends a resuming standby the commits after the seq it holds,
// preceded by every schema and group announcement, if the log still has
// them all; otherwise the core owes a snapshot instead.
func (n *Node) sendReplay(r replica.Range) error {
	l, err := n.write.acquire(n.ctx, n.ctx.Done())
	if err != nil {
		return err
	}
	defer l.release()
	if n.Role() != Active {
		return nil // demoted while waiting: the work died with the role
	}
	ents, ok := n.replay.Since(r.From, n.store.Seq())
	var start bool
	n.own.do(func() {
		if n.act == nil {
			return
		}
		start = ok && n.act.StartReplay(r)
		if !ok {
			n.act.ReplayFailed() // the log no longer reaches back that far
			n.kick()
		}
		n.changed()
	})
	if !start {
		return nil
	}
	msgs := n.repl.Announcements()
	for _, e := range ents {
		msgs = e.Records(msgs)
	}
	for len(msgs) > 0 {
		k := min(len(msgs), sinkMaxRecords)
		if _, err := n.conn.SendBatch(n.ctx, msgs[:k], 0); err != nil {
			n.own.do(func() {
				if n.act != nil {
					n.act.ReplayFailed()
				}
				n.changed()
			})
			n.kick()
			return fmt.Errorf("swha: replay to standby: %w", err)
		}
		msgs = msgs[k:]
	}
	n.stats.replays.Add(1)
	n.log.Info("replayed commits to a resuming standby", "from_seq", r.From, "commits", len(ents), "snapshot", r.Snap)
	return nil
}

// maxRepairChain bounds repairs of repairs: each refused repair names one
// more object that cannot be carried, and leaves it out of the next.
const maxRepairChain = 16

// runRepairs mends refused commits: for each, a transaction that sends again
// whole every object the commit touched except those the standby cannot
// hold, which are marked stale so that their next update carries every
// field.
func (n *Node) runRepairs(reqs []replica.Repair) error {
	l, err := n.write.acquire(n.ctx, n.ctx.Done())
	if err != nil {
		return err
	}
	defer l.release()
	if n.Role() != Active {
		return nil // demoted while waiting: the work died with the role
	}
	for _, r := range reqs {
		bad := append(slices.Clone(n.repairBad[r.Seq]), r.Object)
		if err := n.repl.MarkStale(bad...); err != nil {
			return fmt.Errorf("swha: repair of seq %d: %w", r.Seq, err)
		}
		if len(bad) > maxRepairChain {
			n.stats.unrepaired.Add(1)
			n.log.Warn("gave up repairing a refused transaction", "seq", r.Seq, "objects_refused", len(bad))
			continue
		}
		e, ok := n.replay.Entry(r.Seq)
		if !ok {
			n.stats.unrepaired.Add(1)
			n.log.Warn("refused transaction no longer in the replay log; its objects may differ on the standby until updated", "seq", r.Seq)
			continue
		}
		tx, err := n.store.Begin()
		if err != nil {
			return fmt.Errorf("swha: repair of seq %d: %w", r.Seq, err)
		}
		k, err := tx.Repair(e.Records(nil), func(id uint64) bool { return slices.Contains(bad, id) })
		if err != nil || k == 0 {
			_ = tx.Abort()
			if err != nil {
				return fmt.Errorf("swha: repair of seq %d: %w", r.Seq, err)
			}
			continue
		}
		seq, _, _, err := n.commitStream(n.ctx, tx, true)
		if err != nil {
			return fmt.Errorf("swha: repair of seq %d: %w", r.Seq, err)
		}
		if n.repairBad == nil || len(n.repairBad) > 1024 {
			n.repairBad = map[uint64][]uint64{}
		}
		n.repairBad[seq] = bad
		n.stats.repairs.Add(1)
		ev := Event{Kind: EventRepairDone, Detail: fmt.Sprintf("refused seq %d mended by seq %d", r.Seq, seq)}
		n.own.do(func() { n.emit(ev) })
		n.log.Info("repaired a refused transaction", "refused_seq", r.Seq, "repair_seq", seq, "records", k, "left_out", bad)
	}
	return nil
}

package swha

import (
	"context"
	"errors"
	"fmt"

	"github.com/swha/swha/internal/replica"
	"github.com/swha/swha/objstore"
)

// Txn is a transaction of an active node. Its operations are those of
// objstore.Txn; Commit replicates it according to its commit mode. A Txn
// holds the node's write path from Begin to Commit or Abort: other Begin
// calls wait.
type Txn struct {
	n     *Node
	tx    objstore.Txn
	mode  CommitMode
	part  txnPart // set when this is a part of a coordinated transaction
	done  bool
	lease *lease // the write path, from Begin to Commit or Abort
	info  CommitInfo
}

// txnPart is what a part of a coordinated transaction must be told about
// its transaction (coordinated.go implements it).
type txnPart interface {
	// ended records Commit's outcome: committed, or nothing committed (the
	// participant may try again).
	ended(committed bool)
	// aborted: the part was aborted, and is replaced by an empty one.
	aborted() error
}

// Begin opens a transaction in the node's default commit mode, waiting
// until no other transaction is open or ctx is done.
func (n *Node) Begin(ctx context.Context) (*Txn, error) {
	l, err := n.write.acquire(ctx, n.ctx.Done())
	if err != nil {
		return nil, wrap("begin", err)
	}
	// The view, not a call: holding the write path, no commit of ours can
	// be in flight, and a role change or fencing that the view has not
	// caught up with yet is one that Commit still sees (it asks the owner).
	v := n.view.Load()
	role, fenced := v.role, v.fenced
	var stale []uint64
	if v.stale && role == Active && !fenced {
		n.own.do(func() {
			if n.act != nil {
				stale = n.act.TakeStale()
			}
		})
	}
	if fenced {
		l.release()
		return nil, wrap("begin", ErrFenced)
	}
	if role != Active {
		l.release()
		return nil, fmt.Errorf("swha: begin on a %v: %w", role, ErrNotActive)
	}
	if len(stale) > 0 {
		// The standby refused changes to these: resend them whole.
		if err := n.repl.MarkStale(stale...); err != nil {
			n.log.Warn("mark refused objects stale", "err", err)
		}
	}
	tx, err := n.store.Begin()
	if err != nil {
		l.release()
		return nil, wrap("begin", err)
	}
	return &Txn{n: n, tx: tx, mode: n.cfg.Mode, lease: l}, nil
}

// ID returns the transaction ID its records carry.
func (t *Txn) ID() uint64 { return t.tx.ID() }

// SetMode overrides the node's commit mode for this transaction.
func (t *Txn) SetMode(m CommitMode) { t.mode = m }

// Info says what the transaction's Commit achieved, once it returned nil.
func (t *Txn) Info() CommitInfo { return t.info }

// Create adds obj as a dynamic object and returns its ID.
func (t *Txn) Create(obj any) (uint64, error) { return t.tx.Create(obj) }

// CreateIn adds obj as a dynamic object of group g.
func (t *Txn) CreateIn(g *objstore.Group, obj any) (uint64, error) { return t.tx.CreateIn(g, obj) }

// Update records that obj may have changed; its changed fields are sent.
func (t *Txn) Update(obj any) error { return t.tx.Update(obj) }

// Delete removes obj.
func (t *Txn) Delete(obj any) error { return t.tx.Delete(obj) }

// DeleteGroup removes every object of g.
func (t *Txn) DeleteGroup(g *objstore.Group) error { return t.tx.DeleteGroup(g) }

// Sync scans every object for changes at commit (transparent mode).
func (t *Txn) Sync() error { return t.tx.Sync() }

// SyncGroup scans the objects of g for changes at commit.
func (t *Txn) SyncGroup(g *objstore.Group) error { return t.tx.SyncGroup(g) }

// Message sends msg to the standby application's message handler when the
// transaction applies there.
func (t *Txn) Message(msg any) error { return t.tx.Message(msg) }

// Intent attaches data, handed back by the standby's Promote if this
// transaction's commit never reached it.
func (t *Txn) Intent(data []byte) error { return t.tx.Intent(data) }

// Abort ends the transaction; nothing is sent. Aborting a part of a
// coordinated transaction commits an empty part instead (see Coordinated).
func (t *Txn) Abort() error {
	if t.done {
		return fmt.Errorf("swha: abort txn %d: %w", t.tx.ID(), objstore.ErrTxnDone)
	}
	if t.part != nil {
		if err := t.tx.Abort(); err != nil {
			return fmt.Errorf("swha: abort part of txn %d: %w", t.tx.ID(), err)
		}
		t.done = true
		t.lease.release()
		return t.part.aborted()
	}
	err := t.tx.Abort()
	t.done = true
	t.lease.release()
	if err != nil {
		return fmt.Errorf("swha: abort: %w", err)
	}
	return nil
}

// Commit commits the transaction on this node and replicates it.
//
// Async: it first waits, with ctx, while the window of unacknowledged
// transactions is full (if ctx ends first the transaction is still open and
// nothing is committed: Commit again or Abort), then commits and returns.
//
// Sync: it commits, then waits until the standby acknowledges having applied
// the transaction. With no standby connected it returns at once: nothing can
// be lost in a failover that has no standby to fail over to, and a network
// OS keeps routing solo rather than stall its protocols. If the standby goes
// silent during the wait, Commit returns ErrStandbyLost; if ctx ends, ctx's
// error. In both cases the transaction stands on this node.
//
// Errors from the store (a dangling pointer, the size limit, a Txn already
// ended) leave nothing committed.
func (t *Txn) Commit(ctx context.Context) error {
	n := t.n
	if t.done {
		return fmt.Errorf("swha: commit txn %d: %w", t.tx.ID(), objstore.ErrTxnDone)
	}
	v := n.view.Load()
	fenced, up := v.fenced, v.peerUp
	if fenced {
		// Another node is active: nothing may commit here, and the open
		// transaction holds the write path a demotion needs.
		if err := t.Abort(); err != nil {
			return fmt.Errorf("swha: commit txn %d: %w (and aborting it: %w)", t.tx.ID(), ErrFenced, err)
		}
		return fmt.Errorf("swha: commit txn %d (aborted, nothing committed): %w", t.tx.ID(), ErrFenced)
	}
	if t.mode == Async {
		if err := n.waitWindow(ctx); err != nil {
			return fmt.Errorf("swha: commit txn %d: %w", t.tx.ID(), err)
		}
	}
	if t.mode == Strict {
		if !up {
			// Aborted rather than left open: an open transaction holds the
			// write path, which the snapshot of a joining standby needs.
			if err := t.Abort(); err != nil {
				return fmt.Errorf("swha: commit txn %d: %w (and aborting it: %w)", t.tx.ID(), ErrNoStandby, err)
			}
			return fmt.Errorf("swha: commit txn %d (aborted, nothing committed): %w", t.tx.ID(), ErrNoStandby)
		}
	}
	// An asynchronous commit waits for no answer: its Committed is posted.
	seq, owed, committed, err := n.commitStream(ctx, t.tx, t.mode != Async)
	if t.part != nil {
		t.part.ended(committed)
	}
	t.done = true
	t.lease.release()
	if !committed {
		return wrap(fmt.Sprintf("commit txn %d", t.tx.ID()), err)
	}
	t.info = CommitInfo{Seq: seq, Solo: !owed}
	switch {
	case t.mode == Strict && !owed:
		// The standby went away between the check and the commit.
		return fmt.Errorf("swha: commit txn %d (committed on the active, solo): %w", t.tx.ID(), ErrStandbyLost)
	case t.mode == Sync || t.mode == Strict:
		if err := n.waitAcked(ctx, seq, owed); err != nil {
			return fmt.Errorf("swha: commit txn %d (committed on the active): %w", t.tx.ID(), err)
		}
		t.info.Acked = owed
	}
	return nil
}

// commitStream commits tx to the store and streams its records to the
// standby through the sink; the caller holds the write path. It returns the
// store's seq after the commit, whether a standby is owed the transaction
// (decided with the commit, not when a wait for its ack first looks: a
// standby that goes silent in between must make a sync Commit fail, not pass
// as solo) and whether the store committed. A commit the
// store took whose records did not all leave (ErrSink, or a send error the
// sink kept) leaves a hole in the standby's stream: the core stops streaming
// and owes a snapshot, whose acknowledgement covers this transaction too;
// err is then that failure.
func (n *Node) commitStream(ctx context.Context, tx objstore.Txn, wait bool) (seq uint64, owed, committed bool, err error) {
	n.sink.begin(ctx, tx.ID())
	err = tx.Commit()
	if err == nil {
		err = n.sink.flush()
	}
	hole := err != nil && (errors.Is(err, objstore.ErrSink) || n.sink.err != nil)
	committed = err == nil || hole
	if !committed {
		return n.store.Seq(), false, false, err
	}
	seq = n.store.Seq()
	// step runs on the owner; up receives what the core says of the peer.
	step := func(up *bool) {
		if n.act == nil {
			return
		}
		resnap := n.act.Committed(seq, hole)
		*up = n.act.PeerUp()
		if hole || resnap {
			// resnap: the standby refused our last snapshot; this commit
			// may have fixed what it could not hold, so offer it another.
			n.changed()
			n.kick()
		}
	}
	if wait {
		n.own.do(func() { step(&owed) })
	} else {
		// No answer awaited: owed is what the view says now.
		n.own.post(func() {
			var up bool
			step(&up)
		})
		owed = n.view.Load().peerUp
	}
	if hole {
		n.log.Warn("records lost on the way to the standby; resyncing", "txn", tx.ID(), "err", err)
	}
	return seq, owed, true, err
}

// waitWindow waits while a standby is streaming and Window transactions are
// unacknowledged. Solo, nothing is owed and nothing waits.
func (n *Node) waitWindow(ctx context.Context) error {
	waited := false
	for {
		// The view: acked and progress are published together, so a window
		// freed after this read closes ch. The committed side is the
		// store's own seq, which the write path holds: exact even while the
		// owner has not run the posted Committed of the last commit yet.
		v := n.view.Load()
		full := v.hot && n.store.Seq() >= v.acked+uint64(n.cfg.Window)
		ch, fenced := v.progress, v.fenced || v.role != Active
		if fenced {
			return ErrFenced
		}
		if !full {
			return nil
		}
		if !waited {
			waited = true
			n.stats.windowWaits.Add(1)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for room in the window of %d unacknowledged transactions: %w", n.cfg.Window, ctx.Err())
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
}

// waitAcked waits until the core says how the synchronous commit of seq
// ends. owed says a standby was connected when the transaction committed.
func (n *Node) waitAcked(ctx context.Context, seq uint64, owed bool) error {
	for {
		var o replica.Outcome
		var ch chan struct{}
		active, fenced := false, false
		n.own.do(func() {
			if active = n.act != nil; active {
				o, ch, fenced = n.act.Outcome(seq, owed), n.progress, n.fenced
			}
		})
		switch {
		case !active: // demoted
			return ErrFenced
		case fenced && !o.Done:
			return ErrFenced
		case o.Refused != "":
			return fmt.Errorf("%w: %s", ErrPeerRefused, o.Refused)
		case o.Lost:
			return ErrStandbyLost
		case o.Done:
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the standby to apply seq %d: %w", seq, ctx.Err())
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
}

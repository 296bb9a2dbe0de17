package swha

import (
	"context"
	"errors"
	"fmt"

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
	coord *Coordinated
	part  string
	done  bool
}

// Begin opens a transaction in the node's default commit mode, waiting
// until no other transaction is open or ctx is done.
func (n *Node) Begin(ctx context.Context) (*Txn, error) {
	select {
	case n.wsem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("swha: begin: waiting for the open transaction: %w", ctx.Err())
	case <-n.ctx.Done():
		return nil, fmt.Errorf("swha: begin: %w", ErrClosed)
	}
	if r := n.Role(); r != Active {
		<-n.wsem
		return nil, fmt.Errorf("swha: begin on a %v: %w", r, ErrNotActive)
	}
	n.mu.Lock()
	stale := n.staleIDs
	n.staleIDs = nil
	n.mu.Unlock()
	if len(stale) > 0 {
		// The standby refused changes to these: resend them whole.
		if err := n.store.MarkStale(stale...); err != nil {
			n.log.Warn("mark refused objects stale", "err", err)
		}
	}
	tx, err := n.store.Begin()
	if err != nil {
		<-n.wsem
		return nil, fmt.Errorf("swha: begin: %w", err)
	}
	return &Txn{n: n, tx: tx, mode: n.cfg.Mode}, nil
}

// ID returns the transaction ID its records carry.
func (t *Txn) ID() uint64 { return t.tx.ID() }

// SetMode overrides the node's commit mode for this transaction.
func (t *Txn) SetMode(m CommitMode) { t.mode = m }

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
	if t.coord != nil {
		if err := t.tx.Abort(); err != nil {
			return fmt.Errorf("swha: abort part %q: %w", t.part, err)
		}
		t.done = true
		<-t.n.wsem
		t.coord.settle(t.part, false)
		// The other parts may already be applied on this node: the standby
		// applies the coordinated transaction only when every part
		// committed, so this participant still commits one, empty.
		empty, err := t.coord.Begin(t.n.ctx, t.part)
		if err != nil {
			return err
		}
		empty.SetMode(Async)
		return empty.Commit(t.n.ctx)
	}
	err := t.tx.Abort()
	t.done = true
	<-t.n.wsem
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
	if t.mode == Async {
		if err := n.waitWindow(ctx); err != nil {
			return fmt.Errorf("swha: commit txn %d: %w", t.tx.ID(), err)
		}
	}
	seq, committed, err := n.commitStream(ctx, t.tx)
	if t.coord != nil {
		t.coord.settle(t.part, committed)
	}
	t.done = true
	n.mu.Lock()
	// Whether a standby is owed this transaction is decided now, with the
	// commit, not when the wait below first looks: a standby that goes
	// silent in between must make a sync Commit fail, not pass as solo.
	standbyOwed := n.peerUp
	resnap := n.refusedSnap != "" && err == nil
	n.mu.Unlock()
	if resnap {
		// The standby refused our last snapshot; this commit may have
		// fixed what it could not hold, so offer it another.
		n.needSnap.Store(true)
		n.kick()
	}
	<-n.wsem
	if !committed {
		return fmt.Errorf("swha: %w", err)
	}
	if t.mode == Sync {
		if err := n.waitAcked(ctx, seq, standbyOwed); err != nil {
			return fmt.Errorf("swha: commit txn %d (committed on the active): %w", t.tx.ID(), err)
		}
	}
	return nil
}

// commitStream commits tx to the store and streams its records to the
// standby through the sink, and advances committed; the caller holds the
// write path. It returns the store's seq after the commit and whether the
// store committed. A commit the store took whose records did not all leave
// (ErrSink, or a send error the sink kept) leaves a hole in the standby's
// stream: streaming stops and a snapshot is asked for, whose
// acknowledgement covers this transaction too; err is then that failure.
func (n *Node) commitStream(ctx context.Context, tx objstore.Txn) (seq uint64, committed bool, err error) {
	n.sink.begin(ctx, tx.ID())
	err = tx.Commit()
	if err == nil {
		err = n.sink.flush()
	}
	hole := err != nil && (errors.Is(err, objstore.ErrSink) || n.sink.err != nil)
	seq = n.store.Seq()
	n.mu.Lock()
	n.committed = max(n.committed, seq)
	if hole {
		n.streaming = false // records after a hole are useless to the standby
		n.bump()
	}
	n.mu.Unlock()
	if hole {
		n.log.Warn("records lost on the way to the standby; resyncing", "txn", tx.ID(), "err", err)
		n.needSnap.Store(true)
		n.kick()
	}
	return seq, err == nil || hole, err
}

// waitWindow waits while a standby is streaming and Window transactions are
// unacknowledged. Solo, nothing is owed and nothing waits.
func (n *Node) waitWindow(ctx context.Context) error {
	waited := false
	for {
		n.mu.Lock()
		full := n.peerUp && n.streaming && n.committed >= n.acked+uint64(n.cfg.Window)
		ch := n.progress
		n.mu.Unlock()
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

// waitAcked waits until the standby acknowledged seq. standbyOwed says a
// standby was connected when the transaction committed; without one the
// node is solo and nothing is owed.
func (n *Node) waitAcked(ctx context.Context, seq uint64, standbyOwed bool) error {
	for {
		n.mu.Lock()
		acked, up, ch := n.acked >= seq, n.peerUp, n.progress
		refused, isRefused := n.refused[seq]
		refusedSnap := n.refusedSnap
		n.mu.Unlock()
		switch {
		case acked && isRefused:
			return fmt.Errorf("%w: %s", ErrPeerRefused, refused)
		case acked:
			return nil
		case refusedSnap != "" && standbyOwed:
			return fmt.Errorf("%w: it refused the snapshot it needs to mirror this node: %s", ErrPeerRefused, refusedSnap)
		case !up && !standbyOwed:
			return nil // solo: see Commit
		case !up:
			return ErrStandbyLost
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

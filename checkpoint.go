package swha

import (
	"errors"
	"fmt"
	"os"

	"github.com/swha/swha/objstore"
)

// loadCheckpoint seeds the store from the checkpoint at path before the
// session starts. A missing file is a fresh start; a bad one is logged and
// ignored (the store is left as it was, and a snapshot will come).
func (n *Node) loadCheckpoint(path string) error {
	err := n.store.LoadFile(path)
	switch {
	case err == nil:
		n.log.Info("seeded from checkpoint", "path", path, "seq", n.store.AppliedSeq(), "objects", n.store.Len())
	case errors.Is(err, os.ErrNotExist):
		n.log.Info("no checkpoint to seed from", "path", path)
	default:
		n.log.Warn("ignored checkpoint", "path", path, "err", err)
		n.stats.badCheckpoints.Add(1)
	}
	if n.cfg.Role == Active {
		// Loaded into a standby store, as objstore requires; now take over.
		if _, err := n.repl.Promote(); err != nil {
			return fmt.Errorf("swha: restore active from checkpoint %s: %w", path, err)
		}
	}
	return nil
}

// SaveCheckpoint writes the node's committed state to path (crash-safe:
// see objstore.Store.SaveFile). A standby saves its mirror between two
// applied messages; an active saves between two commits (it takes the
// write path, so it waits for an open transaction). A standby restarted
// with Config.Checkpoint set to that path resumes from it.
func (n *Node) SaveCheckpoint(path string) error {
	release, err := n.quiesce()
	if err != nil {
		return fmt.Errorf("swha: save checkpoint: %w", err)
	}
	defer release()
	if err := n.store.SaveFile(path); err != nil {
		return fmt.Errorf("swha: save checkpoint: %w", err)
	}
	// Read here, not on the owner: the store is held still by quiesce.
	id, seq := n.store.CheckpointID(), n.store.Seq()
	n.own.do(func() {
		if n.act != nil {
			// A standby seeded from this file names its snapshot ID in its
			// hello; knowing it, the active resumes that standby from the
			// log rather than sending the whole store again.
			n.act.RememberSnapshot(id, seq)
		}
	})
	return nil
}

// Leaks reports the dynamic objects that no static object or group reaches
// (see objstore.Store.Leaks): objects the application probably lost track
// of. They are reported, never freed. On an active it takes the write path
// (it reads the committed state between two commits); on a standby it runs
// between two applied messages.
func (n *Node) Leaks() []objstore.Leak {
	release, err := n.quiesce()
	if err != nil {
		return nil
	}
	defer release()
	return n.store.Leaks()
}

// quiesce holds the store still for a whole-store read: a standby between
// two applied messages, an active between two commits.
func (n *Node) quiesce() (release func(), err error) {
	if n.Role() == Standby {
		n.applyMu.Lock()
		return n.applyMu.Unlock, nil
	}
	l, err := n.write.acquire(n.ctx, n.ctx.Done())
	if err != nil {
		return nil, err
	}
	return l.release, nil
}

package swha

import (
	"errors"
	"testing"
	"testing/synctest"
)

// TestFenceFailsWaitersAndCommits: a fenced active (one that learned of a
// newer active) gets no commit through: the synchronous commit waiting for
// an acknowledgement fails with ErrFenced, an open transaction's Commit
// aborts it, and Begin refuses.
func TestFenceFailsWaitersAndCommits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPair(t, pairOpts{mode: Sync})
		open, err := p.act.Begin(bg())
		must(t, err)
		_, err = open.Create(&testHop{Addr: hopAddr(1)})
		must(t, err)
		// Hold the acknowledgement back so that the commit waits.
		p.lb.SetPartitioned(true)
		done := make(chan error, 1)
		go func() { done <- open.Commit(bg()) }()
		synctest.Wait()
		p.act.fence("test")
		if err := <-done; !errors.Is(err, ErrFenced) {
			t.Fatalf("waiting sync commit on a fenced node: %v, want ErrFenced", err)
		}
		if _, err := p.act.Begin(bg()); !errors.Is(err, ErrFenced) {
			t.Fatalf("Begin on a fenced node: %v, want ErrFenced", err)
		}
		p.act.unfence()
		tx, err := p.act.Begin(bg())
		must(t, err)
		p.act.fence("test again")
		if err := tx.Commit(bg()); !errors.Is(err, ErrFenced) {
			t.Fatalf("Commit of a transaction open when the node was fenced: %v, want ErrFenced", err)
		}
		p.act.unfence()
		tx, err = p.act.Begin(bg()) // the aborted one gave the write path back
		must(t, err)
		must(t, tx.Abort())
	})
}

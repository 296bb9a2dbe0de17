package swha

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/objstore"
)

// TestCommitInfoAndStrict: a synchronous commit says whether a standby
// acknowledged it or it went solo, and a Strict commit refuses to go solo:
// with no standby it commits nothing (the transaction is aborted).
func TestCommitInfoAndStrict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 1)
		act, err := NewNode(Config{Link: la, Registry: testRegistry(t), NodeID: 1, Epoch: 1, Role: Active, Logger: testLogger(t)})
		must(t, err)
		defer act.Close()
		commit := func(mode CommitMode, i int) (*Txn, error) {
			t.Helper()
			tx, err := act.Begin(bg())
			must(t, err)
			tx.SetMode(mode)
			_, err = tx.Create(&testHop{Addr: hopAddr(i)})
			must(t, err)
			ctx, cancel := context.WithTimeout(bg(), time.Minute)
			defer cancel()
			return tx, tx.Commit(ctx)
		}
		tx, err := commit(Sync, 1)
		if err != nil || !tx.Info().Solo || tx.Info().Acked {
			t.Fatalf("solo sync commit: err %v info %+v, want solo", err, tx.Info())
		}
		tx, err = commit(Strict, 2)
		if !errors.Is(err, ErrNoStandby) {
			t.Fatalf("strict commit with no standby: %v, want ErrNoStandby", err)
		}
		if act.Stats().CommittedSeq != tx.Info().Seq && tx.Info().Seq != 0 {
			t.Fatalf("a refused strict commit reports seq %d", tx.Info().Seq)
		}
		before := act.Stats().CommittedSeq

		sby, err := NewNode(Config{Link: lb, Registry: testRegistry(t), NodeID: 2, Epoch: 1, Role: Standby, Logger: testLogger(t)})
		must(t, err)
		defer sby.Close()
		ctx, cancel := context.WithTimeout(bg(), time.Minute)
		defer cancel()
		must(t, act.WaitSynced(ctx))
		if act.Stats().CommittedSeq != before {
			t.Fatalf("the refused strict commit committed: seq %d → %d", before, act.Stats().CommittedSeq)
		}
		if err := tx.Commit(ctx); !errors.Is(err, objstore.ErrTxnDone) {
			t.Fatalf("commit of an aborted strict transaction: %v, want ErrTxnDone", err)
		}
		tx, err = commit(Strict, 2)
		if err != nil {
			t.Fatalf("strict commit with a standby: %v", err)
		}
		if i := tx.Info(); !i.Acked || i.Solo || i.Seq <= before {
			t.Fatalf("strict commit with a standby: info %+v, want acked after seq %d", i, before)
		}
		tx, err = commit(Sync, 3)
		if err != nil || !tx.Info().Acked || tx.Info().Solo {
			t.Fatalf("sync commit with a standby: err %v info %+v, want acked", err, tx.Info())
		}
		tx, err = commit(Async, 4)
		if err != nil || tx.Info().Acked || tx.Info().Solo {
			t.Fatalf("async commit with a standby: err %v info %+v, want neither acked nor solo", err, tx.Info())
		}
	})
}

package swha

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swha/swha/l2transport"
)

// A resync sends a snapshot to a hot standby on demand, while commits go
// on, and returns once the standby acknowledged it: the mirror then equals
// the active's state.
func TestResync(t *testing.T) {
	p := newTestPair(t, pairOpts{})
	ctx, cancel := context.WithTimeout(bg(), 60*time.Second)
	defer cancel()
	commit := func(i int) {
		tx, err := p.act.Begin(ctx)
		must(t, err)
		hop := &testHop{Addr: hopAddr(i % 250), Iface: "eth0"}
		_, err = tx.Create(hop)
		must(t, err)
		_, err = tx.Create(&testRoute{Prefix: pfx(i), NextHop: hop})
		must(t, err)
		must(t, tx.Commit(ctx))
	}
	for i := range 200 {
		commit(i)
	}
	before := p.act.Stats().Snapshots
	// Commits go on while the snapshot is on its way; they stream behind it.
	stop, churned := make(chan struct{}), make(chan int)
	go func() {
		i := 200
		defer func() { churned <- i }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			commit(i)
			i++
		}
	}()
	err := p.act.Resync(ctx)
	close(stop)
	n := <-churned
	must(t, err)
	if got := p.act.Stats().Snapshots; got != before+1 {
		t.Fatalf("snapshots: %d before the resync, %d after; want one more", before, got)
	}
	must(t, p.act.WaitSynced(ctx))
	if a, s := dump(p.act.Store(), p.actCfg), dump(p.sby.Store(), p.sbyCfg); a != s {
		t.Fatalf("after the resync (%d commits during it) the mirror differs:\nactive:\n%s\nstandby:\n%s", n-200, a, s)
	}
	t.Logf("%d commits during the resync", n-200)
}

// Resync names what stops it: a standby cannot resync, and an active with
// no standby up has nobody to send to.
func TestResyncRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newTestPair(t, pairOpts{})
		ctx, cancel := context.WithTimeout(bg(), time.Minute)
		defer cancel()
		if err := p.sby.Resync(ctx); !errors.Is(err, ErrNotActive) {
			t.Fatalf("resync on the standby: %v, want ErrNotActive", err)
		}
		must(t, p.sby.Close())
		time.Sleep(3 * l2transport.DefaultDeadInterval)
		synctest.Wait()
		if p.act.Stats().PeerUp {
			t.Fatal("the active still sees the standby after 3 dead intervals")
		}
		if err := p.act.Resync(ctx); !errors.Is(err, ErrNoStandby) {
			t.Fatalf("resync with no standby: %v, want ErrNoStandby", err)
		}
	})
}

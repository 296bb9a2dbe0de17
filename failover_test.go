package swha

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swha/swha/l2transport"
)

// foPair is two nodes with failover on over one in-memory link (session
// and heartbeats share it through a Demux).
type foPair struct {
	a, b   *Node
	la, lb *l2transport.MemLink
	ea, eb *eventLog
}

func newFailoverNode(t *testing.T, l l2transport.Link, id, peer uint64, prio uint8, dir string) *Node {
	t.Helper()
	n, err := NewNode(Config{Link: l, Registry: testRegistry(t), NodeID: id, PeerNodeID: peer, Logger: testLogger(t),
		Failover: &FailoverConfig{StateDir: dir, Priority: prio}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newFoPair(t *testing.T) *foPair {
	t.Helper()
	la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 1)
	p := &foPair{la: la, lb: lb}
	p.a = newFailoverNode(t, la, 1, 2, 10, t.TempDir())
	p.ea = watchEvents(p.a)
	p.b = newFailoverNode(t, lb, 2, 1, 1, t.TempDir())
	p.eb = watchEvents(p.b)
	t.Cleanup(func() { p.a.Close(); p.b.Close() })
	return p
}

func commitHop(t *testing.T, n *Node, i int) (CommitInfo, error) {
	t.Helper()
	tx, err := n.Begin(bg())
	if err != nil {
		return CommitInfo{}, err
	}
	if _, err := tx.Create(&testHop{Addr: hopAddr(i)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg(), time.Minute)
	defer cancel()
	err = tx.Commit(ctx)
	return tx.Info(), err
}

// TestFailoverElectPromoteRejoin: two nodes started together elect the one
// of higher priority; its commits are acknowledged by the hot standby. The
// link is cut: the standby's only path goes down, it promotes (a newer
// generation) and accepts commits. The link heals: the two actives meet,
// the older generation demotes, takes the new active's state and becomes
// its hot standby again — no restart by hand.
func TestFailoverElectPromoteRejoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newFoPair(t)
		p.ea.await(t, "role-changed/standby>active", "standby-hot")
		p.eb.await(t, "standby-hot")
		if p.a.Role() != Active || p.b.Role() != Standby {
			t.Fatalf("roles %v/%v, want active/standby", p.a.Role(), p.b.Role())
		}
		info, err := commitHop(t, p.a, 1)
		if err != nil || !info.Acked {
			t.Fatalf("sync commit on the elected active: %v %+v", err, info)
		}
		genA := p.a.FailoverStatus().Generation

		p.la.SetPartitioned(true)
		p.eb.await(t, "standby-hot", "peer-down/ha", "role-changed/standby>active")
		// The status is published once the driver has carried out the
		// whole Ready, which may be after the role change's event.
		synctest.Wait()
		if g := p.b.FailoverStatus().Generation; g <= genA {
			t.Fatalf("promoted at generation %d, not above the old active's %d", g, genA)
		}
		if _, ok := p.b.Get(1); !ok {
			// The acknowledged commit survived the failover.
			var ids []uint64
			p.b.Store().Each(func(id uint64, _ any) bool { ids = append(ids, id); return true })
			t.Fatalf("the acknowledged hop is not on the promoted node (it has %v)", ids)
		}
		if info, err := commitHop(t, p.b, 2); err != nil || !info.Solo {
			t.Fatalf("commit on the promoted node: %v %+v, want solo", err, info)
		}

		p.la.SetPartitioned(false)
		p.ea.await(t, "role-changed/active>standby", "standby-hot")
		if p.a.Role() != Standby || p.b.Role() != Active {
			t.Fatalf("after the heal: roles %v/%v, want standby/active", p.a.Role(), p.b.Role())
		}
		info, err = commitHop(t, p.b, 3)
		if err != nil || !info.Acked {
			t.Fatalf("sync commit on the new active after the old one rejoined: %v %+v", err, info)
		}
	})
}

// TestFailoverSwitchover: a planned switchover drains the active (every
// commit acknowledged), hands over to the hot standby, and the old active
// becomes its hot standby; nothing acknowledged is lost and the new active
// accepts commits at once.
func TestFailoverSwitchover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newFoPair(t)
		p.ea.await(t, "role-changed/standby>active", "standby-hot", "failover/peer-hot")
		for i := range 20 {
			if info, err := commitHop(t, p.a, i); err != nil || !info.Acked {
				t.Fatalf("commit %d: %v %+v", i, err, info)
			}
		}
		ctx, cancel := context.WithTimeout(bg(), time.Minute)
		defer cancel()
		if err := p.a.Switchover(ctx); err != nil {
			t.Fatalf("switchover: %v", err)
		}
		p.eb.await(t, "role-changed/standby>active")
		if p.a.Role() != Standby || p.b.Role() != Active {
			t.Fatalf("after the switchover: roles %v/%v, want standby/active", p.a.Role(), p.b.Role())
		}
		if got := p.b.Store().Len(); got < 20 {
			t.Fatalf("the new active holds %d objects, want the 20 committed", got)
		}
		p.ea.await(t, "role-changed/active>standby", "standby-hot")
		if info, err := commitHop(t, p.b, 100); err != nil || !info.Acked {
			t.Fatalf("commit on the new active: %v %+v", err, info)
		}
		if _, err := p.a.Begin(bg()); err == nil {
			t.Fatal("Begin on the old active after the switchover succeeded")
		}
	})
}

// TestFailoverStandbyLostInDetectionTime: when the standby dies, a
// synchronous commit waiting for its acknowledgement fails over to solo
// (ErrStandbyLost) as soon as the heartbeats declare it dead, not when the
// session's dead interval (a second) runs out.
func TestFailoverStandbyLostInDetectionTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newFoPair(t)
		p.ea.await(t, "role-changed/standby>active", "standby-hot", "failover/peer-hot")
		tx, err := p.a.Begin(bg())
		must(t, err)
		_, err = tx.Create(&testHop{Addr: hopAddr(1)})
		must(t, err)
		p.la.SetPartitioned(true) // the standby is gone, mid-commit
		cut := time.Now()
		err = tx.Commit(bg())
		if !errors.Is(err, ErrStandbyLost) {
			t.Fatalf("sync commit to a dead standby: %v, want ErrStandbyLost", err)
		}
		d := time.Since(cut)
		dead := l2transport.DefaultDeadInterval
		if d >= dead/2 {
			t.Fatalf("the commit failed %v after the standby died: the session's dead interval (%v), not the heartbeat's detection, decided", d, dead)
		}
		t.Logf("failed over to solo %v after the standby died", d)
	})
}

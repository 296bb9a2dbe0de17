package failover

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/swha/swha/l2transport/linktest"
)

// TestProperty runs the two-node simulation under random faults (path
// cuts, freezes, crashes and restarts, failing writes, fence vetoes,
// switchovers), then heals everything. Every step checks the invariants
// (sim.check, sim.do, sim.deliver): never two actives accepting commits
// at one generation; every promotion above every generation the node
// used before, across restarts, and above every generation it heard; a
// handoff taken over at exactly the drained seq; an active that hears a
// newer active stops accepting at once. After the heal, the pair must
// settle to one active and one hot standby.
func TestProperty(t *testing.T) {
	for _, seed := range linktest.Seeds(t, linktest.PropertySeeds...) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runProperty(t, seed) })
	}
}

func runProperty(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	a, b := simConfig(1, 2, uint8(r.IntN(3)*50)), simConfig(2, 1, uint8(r.IntN(3)*50))
	for _, c := range []*Config{&a, &b} {
		c.Fence = r.IntN(2) == 0
		c.PromoteUnsynced = r.IntN(4) == 0
		c.Preempt = r.IntN(4) == 0
		c.ReserveGeneration = r.IntN(2) == 0
	}
	s := newSim(t, a, b)
	s.rand = r.Uint64
	s.boot(s.n[0])
	s.run(time.Duration(r.IntN(50)) * time.Millisecond)
	s.boot(s.n[1])
	for range 60 {
		n := s.n[r.IntN(2)]
		switch k := r.IntN(10); k {
		case 0, 1:
			s.cut(s.paths[r.IntN(2)], false)
		case 2, 3:
			s.cut(s.paths[r.IntN(2)], true)
		case 4:
			if !n.down {
				s.freeze(n, !n.frozen)
			}
		case 5:
			if n.down {
				s.boot(n)
			} else if r.IntN(2) == 0 {
				s.crash(n)
			}
		case 6:
			n.failSaves = r.IntN(3)
		case 7:
			n.veto = r.IntN(3) == 0
		case 8:
			if !n.down && !n.frozen && n.c.Switchover(s.now) == nil {
				s.logf("%s switchover", n.name)
				s.flush(n)
			}
		}
		s.run(time.Duration(1+r.IntN(150)) * time.Millisecond)
	}
	// Heal everything and let the pair settle.
	for _, p := range s.paths {
		s.cut(p, true)
	}
	for _, n := range s.n {
		n.failSaves, n.veto = 0, false
		switch {
		case n.down:
			s.boot(n)
		case n.frozen:
			s.freeze(n, false)
		}
	}
	s.run(3 * time.Second)
	t.Logf("final %s after %v", s.states(), s.now.Sub(s.start))
	st := [2]State{s.n[0].c.State(), s.n[1].c.State()}
	if !(st[0] == Active && st[1] == StandbyHot || st[0] == StandbyHot && st[1] == Active) {
		s.failf("after the heal: %s", s.states())
	}
	for _, n := range s.n {
		if n.c.State() == Active && !n.accepting {
			s.failf("%s is active and does not accept", n.name)
		}
	}
	s.done()
}

package failover

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// pair is the usual two-node setup: A (ID 1) and B (ID 2), priorities as
// given.
func pair(t *testing.T, prioA, prioB uint8) *sim {
	return newSim(t, simConfig(1, 2, prioA), simConfig(2, 1, prioB))
}

// settled: A active, B a hot standby.
func settled(t *testing.T) *sim {
	s := pair(t, 100, 100)
	s.boot(s.n[0])
	s.boot(s.n[1])
	s.run(300 * time.Millisecond)
	s.wantStates(t, "A=active/1 B=standby-hot/1")
	return s
}

func wantSeq(t *testing.T, s *sim, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("got\n\t%s\nwant\n\t%s\nlog:\n%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"), s.log.String())
	}
}

func hasEvent(evs []string, prefix string) bool {
	for _, e := range evs {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

// TestStartAlone: no peer heard by NegotiateTimeout: solo, a promotion
// like any other (a new generation, on disk first).
func TestStartAlone(t *testing.T) {
	s := pair(t, 100, 100)
	s.boot(s.n[0])
	s.run(199 * time.Millisecond)
	s.wantStates(t, "A=negotiating/0 B=down")
	s.run(2 * time.Millisecond)
	s.wantStates(t, "A=active/1 B=down")
	wantSeq(t, s, s.actionsOf(s.n[0], 0),
		"persist generation=0 incarnation=1",
		"persist generation=1 incarnation=1",
		"stop-stream",
		"promote generation=1 reason=solo")
	s.done()
}

// TestStartTogether: both start at once; the higher priority wins, the
// other follows and gets hot.
func TestStartTogether(t *testing.T) {
	s := pair(t, 100, 200)
	s.boot(s.n[0])
	s.boot(s.n[1])
	s.run(100 * time.Millisecond)
	// B has the even generations (the higher node ID).
	s.wantStates(t, "A=standby-hot/2 B=active/2")
	if r := s.n[1].c.Status().Timings.PromoteReason; r != Elected {
		t.Fatalf("B promoted for %s", r)
	}
	s.done()
}

// TestStartTogetherTie: equal priorities: the lower node ID wins.
func TestStartTogetherTie(t *testing.T) {
	s := settled(t)
	if r := s.n[0].c.Status().Timings.PromoteReason; r != Elected {
		t.Fatalf("A promoted for %s", r)
	}
	if !hasEvent(s.eventsOf(s.n[0], 0), "peer-hot") {
		t.Fatalf("A never saw its standby hot:\n%s", s.log.String())
	}
	s.done()
}

// TestLateJoiner: a node with a higher priority that comes up next to a
// settled active becomes its standby (non-preemptive).
func TestLateJoiner(t *testing.T) {
	s := pair(t, 100, 200)
	s.boot(s.n[0])
	s.run(300 * time.Millisecond)
	s.boot(s.n[1])
	s.run(300 * time.Millisecond)
	s.wantStates(t, "A=active/1 B=standby-hot/1")
	s.done()
}

// TestPreempt: with Preempt, the settled active hands over to the
// higher-priority standby once it is hot, by a planned switchover.
func TestPreempt(t *testing.T) {
	a, b := simConfig(1, 2, 100), simConfig(2, 1, 200)
	a.Preempt = true
	s := newSim(t, a, b)
	s.boot(s.n[0])
	s.run(300 * time.Millisecond)
	s.boot(s.n[1])
	s.run(300 * time.Millisecond)
	s.wantStates(t, "A=standby-hot/2 B=active/2")
	if r := s.n[1].c.Status().Timings.PromoteReason; r != Switchover {
		t.Fatalf("B promoted for %s", r)
	}
	s.done()
}

// TestSyncingStandbyNotPromoted: the active dies before its standby is
// hot: no promotion (its state is not the active's), said once.
func TestSyncingStandbyNotPromoted(t *testing.T) {
	for _, unsynced := range []bool{false, true} {
		a, b := simConfig(1, 2, 100), simConfig(2, 1, 100)
		b.PromoteUnsynced = unsynced
		s := newSim(t, a, b)
		s.boot(s.n[0])
		s.run(300 * time.Millisecond)
		s.boot(s.n[1])
		s.run(20 * time.Millisecond)
		s.wantStates(t, "A=active/1 B=standby-syncing/1")
		mark := s.log.Len()
		s.crash(s.n[0])
		s.run(100 * time.Millisecond)
		if unsynced {
			s.wantStates(t, "A=down B=active/2")
		} else {
			s.wantStates(t, "A=down B=standby-syncing/1")
			if !hasEvent(s.eventsOf(s.n[1], mark), "promotion-blocked") || s.n[1].c.Status().Counters.Blocked != 1 {
				t.Fatalf("no promotion-blocked event, or more than one:\n%s", s.log.String())
			}
		}
		s.done()
	}
}

// TestHALinkCut: the HA link alone down: the peer lives, no promotion,
// the alarm on both sides; cleared on heal, and the standby hot again.
func TestHALinkCut(t *testing.T) {
	s := settled(t)
	mark := s.log.Len()
	s.cut("ha", false)
	s.run(500 * time.Millisecond)
	// The standby keeps what it applied; it resyncs when the stream is
	// back.
	s.wantStates(t, "A=active/1 B=standby-hot/1")
	for _, n := range s.n {
		st := n.c.Status()
		if !st.SplitBrain || st.Counters.SplitBrains != 1 || !hasEvent(s.eventsOf(n, mark), "split-brain") {
			t.Fatalf("%s: no split-brain alarm: %+v\n%s", n.name, st, s.log.String())
		}
		if !st.Peer.Announce.SplitBrain {
			t.Fatalf("%s: the peer's announce does not say split brain", n.name)
		}
	}
	s.cut("ha", true)
	s.run(200 * time.Millisecond)
	s.wantStates(t, "A=active/1 B=standby-hot/1")
	for _, n := range s.n {
		if n.c.Status().SplitBrain || !hasEvent(s.eventsOf(n, mark), "split-brain-cleared") {
			t.Fatalf("%s: alarm not cleared\n%s", n.name, s.log.String())
		}
	}
	s.done()
}

// TestBothPathsCut: every path down: the hot standby promotes, its new
// generation on disk before Promote, and StopStream right before Promote
// (a transaction half-received is discarded there). The cut-off active
// goes on alone at the old generation; when the paths heal it is fenced
// (StopAccepting first), discards its commits since the split and
// resyncs as standby.
func TestBothPathsCut(t *testing.T) {
	s := settled(t)
	mark := s.log.Len()
	s.cut("ha", false)
	s.cut("mgmt", false)
	s.run(200 * time.Millisecond)
	s.wantStates(t, "A=active/1 B=active/2")
	wantSeq(t, s, s.actionsOf(s.n[1], mark),
		"persist generation=2 incarnation=1",
		"stop-stream",
		"promote generation=2 reason=peer-dead")
	st := s.n[1].c.Status()
	if st.Durable.Generation != 2 || st.Timings.PromotedAt.Sub(st.Timings.PeerDeadAt) != 0 {
		t.Fatalf("B: %+v", st)
	}
	aSeq := s.n[0].seq
	mark = s.log.Len()
	s.cut("ha", true)
	s.cut("mgmt", true)
	s.run(300 * time.Millisecond)
	s.wantStates(t, "A=standby-hot/2 B=active/2")
	wantSeq(t, s, s.actionsOf(s.n[0], mark)[:2], "stop-accepting", s.actionsOf(s.n[0], mark)[1])
	if !strings.HasPrefix(s.actionsOf(s.n[0], mark)[1], "demote generation=2 ") || !strings.HasSuffix(s.actionsOf(s.n[0], mark)[1], "discard-async") {
		t.Fatalf("A's second action: %s", s.actionsOf(s.n[0], mark)[1])
	}
	evs := s.eventsOf(s.n[0], mark)
	if !hasEvent(evs, "two-actives") || !hasEvent(evs, "role active->fenced") || !hasEvent(evs, "demoted discarded=") {
		t.Fatalf("A's events: %v", evs)
	}
	if d := s.n[0].c.Status().Counters.Discarded; d == 0 || d > aSeq {
		t.Fatalf("A discarded %d of its %d commits", d, aSeq)
	}
	s.done()
}

// TestPromotionHalfReceived: what the driver sees when the active dies
// mid-transaction: the Persist, then (after PersistDone) StopStream and
// Promote in one Ready, in that order, so that the store settles the
// stream before Promote discards the partial transaction.
func TestPromotionHalfReceived(t *testing.T) {
	cfg := simConfig(2, 1, 100)
	cfg.Paths = []string{"ha"}
	c, now := hotStandby(t, cfg)
	c.PathEvent("ha", false, now)
	rd := c.Ready()
	if len(rd.Actions) != 1 || rd.Actions[0].Kind != ActPersist {
		t.Fatalf("first: %v", rd.Actions)
	}
	p := rd.Actions[0].Persisted
	c.Advance()
	if c.HasReady() && len(c.Ready().Actions) > 0 {
		t.Fatalf("acts before the Persist is done: %v", c.Ready().Actions)
	}
	c.PersistDone(p, nil, now)
	rd = c.Ready()
	var kinds []ActionKind
	for _, a := range rd.Actions {
		kinds = append(kinds, a.Kind)
	}
	if !slices.Equal(kinds, []ActionKind{ActStopStream, ActPromote}) || rd.Actions[1].Generation != p.Generation {
		t.Fatalf("after PersistDone: %v", rd.Actions)
	}
	if !rd.AnnounceChanged || rd.Announce.State != Active || rd.Announce.Generation != p.Generation || !rd.Announce.Accepting {
		t.Fatalf("announce %+v", rd.Announce)
	}
	if c.Announce().State == Active {
		t.Fatal("the new generation is readable for heartbeats before the actions were carried out")
	}
	c.Advance()
	if a := c.Announce(); a.State != Active || a.Generation != p.Generation {
		t.Fatalf("announce after Advance: %+v", a)
	}
}

// hotStandby returns a core following an active (node 1, generation 1)
// as a hot standby, its Ready consumed.
func hotStandby(t *testing.T, cfg Config) (*Core, time.Time) {
	t.Helper()
	now := time.Unix(1_000_000, 0)
	c, err := New(cfg, Persisted{Generation: 1, Incarnation: 4}, now)
	if err != nil {
		t.Fatal(err)
	}
	answer(t, c, now)
	for _, p := range cfg.Paths {
		c.PathEvent(p, true, now)
		c.PeerAnnounce(p, Announce{NodeID: cfg.PeerNodeID, Incarnation: 1, Generation: 1, State: Active, Accepting: true, Priority: 100}, now)
	}
	c.SyncProgress(true, now)
	answer(t, c, now)
	if c.State() != StandbyHot {
		t.Fatalf("state %s", c.State())
	}
	return c, now
}

// answer carries out a Ready with every Persist succeeding and every
// fence allowed.
func answer(t *testing.T, c *Core, now time.Time) []Action {
	t.Helper()
	var all []Action
	for c.HasReady() {
		rd := c.Ready()
		acts := append([]Action(nil), rd.Actions...)
		all = append(all, acts...)
		c.Advance()
		for _, a := range acts {
			switch a.Kind {
			case ActPersist:
				c.PersistDone(a.Persisted, nil, now)
			case ActRunFence:
				c.FenceResult(true, now)
			case ActDemote:
				c.DemoteDone(0, now)
			}
		}
	}
	return all
}

// TestFenceVeto: the fencing hook runs before an unilateral promotion and
// its veto stops it, counted; no generation is spent.
func TestFenceVeto(t *testing.T) {
	a, b := simConfig(1, 2, 100), simConfig(2, 1, 100)
	b.Fence = true
	s := newSim(t, a, b)
	s.boot(s.n[0])
	s.boot(s.n[1])
	s.run(300 * time.Millisecond)
	s.wantStates(t, "A=active/1 B=standby-hot/1")
	s.n[1].veto = true
	mark := s.log.Len()
	s.crash(s.n[0])
	s.run(200 * time.Millisecond)
	s.wantStates(t, "A=down B=standby-hot/1")
	wantSeq(t, s, s.actionsOf(s.n[1], mark), "run-fence")
	st := s.n[1].c.Status()
	if st.Counters.FenceVetoes != 1 || st.Durable.Generation != 1 || !hasEvent(s.eventsOf(s.n[1], mark), "fence-vetoed") {
		t.Fatalf("B: %+v", st)
	}
	// The veto holds while the peer stays dead. When it is back and
	// announces it is no longer active, the standby takes over on its
	// word: no fence.
	s.n[1].veto = false
	mark = s.log.Len()
	s.boot(s.n[0])
	s.run(300 * time.Millisecond)
	s.wantStates(t, "A=standby-hot/2 B=active/2")
	wantSeq(t, s, s.actionsOf(s.n[1], mark), "persist generation=2 incarnation=1", "stop-stream", "promote generation=2 reason=peer-left")
	s.done()
}

// TestFrozenActive: the active is frozen (SIGSTOP) past the detection
// time: the standby promotes. Continued (SIGCONT), the old active hears
// the newer generation in the first heartbeat it drains and stops
// accepting before anything else, then demotes; it never accepts again
// at its old generation (sim.deliver checks it on every announce).
func TestFrozenActive(t *testing.T) {
	s := settled(t)
	s.freeze(s.n[0], true)
	s.run(100 * time.Millisecond)
	s.wantStates(t, "A=active/1 B=active/2")
	mark := s.log.Len()
	s.freeze(s.n[0], false)
	acts := s.actionsOf(s.n[0], mark)
	if len(acts) < 2 || acts[0] != "stop-accepting" || !strings.HasPrefix(acts[1], "demote generation=2") {
		t.Fatalf("A on SIGCONT: %v\n%s", acts, s.log.String())
	}
	if s.n[0].accepting {
		t.Fatal("A accepts after SIGCONT")
	}
	s.run(300 * time.Millisecond)
	s.wantStates(t, "A=standby-hot/2 B=active/2")
	if fa := s.n[1].c.Status().Counters.FalseAlarms; fa != 0 {
		t.Fatalf("B counted %d false alarms: it promoted", fa)
	}
	s.done()
}

// TestFalseAlarm: the active is frozen past detection but the standby is
// not hot (it cannot promote): the freeze decided nothing, and the
// standby counts a false alarm when the active is back.
func TestFalseAlarm(t *testing.T) {
	s := settled(t)
	s.n[1].veto = true
	s.n[1].c.cfg.Fence = true
	s.freeze(s.n[0], true)
	s.run(100 * time.Millisecond)
	s.freeze(s.n[0], false)
	s.run(100 * time.Millisecond)
	s.wantStates(t, "A=active/1 B=standby-hot/1")
	if fa := s.n[1].c.Status().Counters.FalseAlarms; fa != 1 {
		t.Fatalf("B counted %d false alarms", fa)
	}
	s.done()
}

// TestTwoActivesTie: two nodes that promoted to the same generation (no
// PeerNodeID to split the generations, both started with every path
// cut): on heal, priority decides, then the lower node ID; the loser
// stops accepting and demotes, the winner keeps serving.
func TestTwoActivesTie(t *testing.T) {
	for _, c := range []struct {
		prioA, prioB uint8
		want         string
	}{
		{100, 100, "A=active/1 B=standby-hot/1"},
		{100, 200, "A=standby-hot/1 B=active/1"},
	} {
		a, b := simConfig(1, 0, c.prioA), simConfig(2, 0, c.prioB)
		s := newSim(t, a, b)
		s.cut("ha", false)
		s.cut("mgmt", false)
		s.boot(s.n[0])
		s.boot(s.n[1])
		s.run(300 * time.Millisecond)
		s.wantStates(t, "A=active/1 B=active/1")
		s.cut("ha", true)
		s.cut("mgmt", true)
		s.run(300 * time.Millisecond)
		s.wantStates(t, c.want)
		// The loser saw the winner active (the winner may not have seen
		// it: it can stand down before its announce goes out).
		for _, n := range s.n {
			if n.c.State() == Active {
				continue
			}
			if n.c.Status().Counters.TwoActives != 1 {
				t.Fatalf("%s: two-actives alarm counted %d times\n%s", n.name, n.c.Status().Counters.TwoActives, s.log.String())
			}
		}
	}
}

// TestSwitchover: a planned handover, step by step on both cores: the
// active stops accepting and drains, announces the handoff at seq N; the
// standby promotes once it applied N (sim.do checks that); the old active
// demotes with its state resumed at N, no snapshot, nothing discarded.
func TestSwitchover(t *testing.T) {
	s := settled(t)
	a, b := s.n[0], s.n[1]
	mark := s.log.Len()
	if err := a.c.Switchover(s.now); err != nil {
		t.Fatal(err)
	}
	s.flush(a)
	n := s.handoffSeq[a]
	if ann := a.c.Announce(); !ann.Handoff || ann.HandoffSeq != n || ann.Accepting {
		t.Fatalf("A announces %+v", ann)
	}
	s.run(100 * time.Millisecond)
	s.wantStates(t, "A=standby-hot/2 B=active/2")
	acts := s.actionsOf(a, mark)
	if len(acts) != 3 || acts[0] != "stop-accepting drain" || !strings.HasPrefix(acts[1], "demote generation=2 peer-seq=") ||
		!strings.HasSuffix(acts[1], fmt.Sprintf(" resume=%d", n)) || acts[2] != "persist generation=2 incarnation=1" {
		t.Fatalf("A's actions: %q\n%s", acts, s.log.String())
	}
	wantSeq(t, s, s.actionsOf(b, mark), "persist generation=2 incarnation=1", "stop-stream", "promote generation=2 reason=switchover")
	tm := a.c.Status().Timings
	if tm.SwitchoverAt.IsZero() || tm.DrainedAt.Before(tm.SwitchoverAt) || tm.HandedOverAt.Before(tm.DrainedAt) {
		t.Fatalf("timings %+v", tm)
	}
	if a.c.Status().Counters.Discarded != 0 {
		t.Fatal("a switchover discarded commits")
	}
	if err := a.c.Switchover(s.now); err == nil {
		t.Fatal("a standby accepted Switchover")
	}
	s.done()
}

// TestReservedGeneration: with ReserveGeneration a hot standby persists
// its next generation as soon as it is hot, and the promotion when the
// active dies needs no Persist: StopStream and Promote to the reserved
// generation come in the first Ready. A higher generation seen meanwhile
// makes the reservation useless: a new one goes above it, and that is
// the one promoted to.
func TestReservedGeneration(t *testing.T) {
	cfg := simConfig(2, 1, 100)
	cfg.Paths = []string{"ha"}
	cfg.ReserveGeneration = true
	c, now := hotStandby(t, cfg)
	reserved := c.Status().Durable.Generation
	if reserved <= 1 || reserved%2 != 0 {
		t.Fatalf("a hot standby of node ID 2 reserved generation %d, want an even one above the active's 1", reserved)
	}
	c.PathEvent("ha", false, now)
	var kinds []ActionKind
	rd := c.Ready()
	for _, a := range rd.Actions {
		kinds = append(kinds, a.Kind)
	}
	if !slices.Equal(kinds, []ActionKind{ActStopStream, ActPromote}) || rd.Actions[1].Generation != reserved {
		t.Fatalf("the first Ready after the active's death: %v, want stop-stream, promote generation=%d", rd.Actions, reserved)
	}
	c.Advance()

	// A reservation overtaken by a generation the peer announces.
	c, now = hotStandby(t, cfg)
	first := c.Status().Durable.Generation
	c.PeerAnnounce("ha", Announce{NodeID: 1, Incarnation: 1, Generation: first + 1, State: Active, Accepting: true, Priority: 100}, now)
	answer(t, c, now)
	again := c.Status().Durable.Generation
	if again <= first+1 || again%2 != 0 {
		t.Fatalf("after the active announced %d, the reservation is %d, want an even one above", first+1, again)
	}
	c.PathEvent("ha", false, now)
	acts := answer(t, c, now)
	if len(acts) != 2 || acts[0].Kind != ActStopStream || acts[1].Kind != ActPromote || acts[1].Generation != again {
		t.Fatalf("promotion after a renewed reservation: %v, want promote generation=%d", acts, again)
	}
}

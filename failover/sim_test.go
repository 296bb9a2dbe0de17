package failover

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The simulation wires two cores through a fake network of heartbeats on
// every path, with a fake clock and a fake Node behind each (a store seq,
// a stream that lags, commits while accepting). Faults: path cuts, freezes
// (SIGSTOP: the node processes nothing; on SIGCONT it drains the
// heartbeats that arrived first, as the heartbeat module does), crashes
// and restarts from the node's persisted state, failing writes, fence
// vetoes. Invariants are checked after every step (sim.check).

const (
	simStep     = time.Millisecond
	simInterval = 5 * time.Millisecond  // heartbeat interval
	simDetect   = 25 * time.Millisecond // heartbeat detection time
	simHotAfter = 40 * time.Millisecond // snapshot time of a new standby
)

type simNode struct {
	name string
	cfg  Config
	c    *Core

	disk      Persisted
	failSaves int  // the next n Saves fail
	veto      bool // the fencing hook vetoes
	down      bool // crashed
	frozen    bool

	// The fake Node.
	role      string // "", "active", "standby"
	accepting bool
	gen       uint64
	seq       uint64 // committed (active), applied (standby)
	streaming bool   // a standby takes the stream
	syncFrom  time.Time
	hot       bool
	broke     bool // the stream broke while hot
	drainOwed bool

	lastHeard []time.Time // per path: last heartbeat received
	reported  []bool      // per path: what its heartbeat told the core
	heardMax  uint64      // the highest generation announced to this incarnation
	promos    []uint64    // every generation promoted to, across restarts
	discarded uint64
}

type sim struct {
	t     *testing.T
	start time.Time
	now   time.Time
	paths []string
	link  []bool // per path: up
	n     [2]*simNode
	log   strings.Builder
	rand  func() uint64 // nil: no random commits
	fails []string      // invariant violations
	// handoff zero-loss: the seq the old active drained at, checked at the
	// new active's Promote.
	handoffSeq map[*simNode]uint64
}

func simConfig(id, peer uint64, prio uint8) Config {
	return Config{NodeID: id, PeerNodeID: peer, Priority: prio, Paths: []string{"ha", "mgmt"},
		NegotiateTimeout: 200 * time.Millisecond, HandoffTimeout: 100 * time.Millisecond, PersistRetry: 10 * time.Millisecond}
}

func newSim(t *testing.T, a, b Config) *sim {
	s := &sim{t: t, start: time.Unix(1_000_000, 0), paths: a.Paths, handoffSeq: map[*simNode]uint64{}}
	s.now = s.start
	s.link = make([]bool, len(s.paths))
	for i := range s.link {
		s.link[i] = true
	}
	for i, cfg := range []Config{a, b} {
		s.n[i] = &simNode{name: string(rune('A' + i)), cfg: cfg, down: true}
	}
	return s
}

func (s *sim) logf(format string, args ...any) {
	fmt.Fprintf(&s.log, "%6s ", s.now.Sub(s.start).String())
	fmt.Fprintf(&s.log, format, args...)
	s.log.WriteByte('\n')
}

func (s *sim) failf(format string, args ...any) {
	msg := fmt.Sprintf("%v: ", s.now.Sub(s.start)) + fmt.Sprintf(format, args...)
	s.logf("VIOLATION %s", msg)
	s.fails = append(s.fails, msg)
}

func (s *sim) peer(n *simNode) *simNode {
	if n == s.n[0] {
		return s.n[1]
	}
	return s.n[0]
}

// boot starts (or restarts) a node from its disk.
func (s *sim) boot(n *simNode) {
	c, err := New(n.cfg, n.disk, s.now)
	if err != nil {
		s.t.Fatal(err)
	}
	n.c, n.down, n.frozen = c, false, false
	n.role, n.accepting, n.gen, n.seq, n.streaming, n.hot, n.drainOwed = "", false, 0, 0, false, false, false
	n.lastHeard = make([]time.Time, len(s.paths))
	n.reported = make([]bool, len(s.paths))
	n.heardMax = 0
	s.logf("%s boots from %+v", n.name, n.disk)
	s.flush(n)
}

func (s *sim) crash(n *simNode) {
	n.down, n.c = true, nil
	n.role, n.accepting = "", false
	s.logf("%s crashes", n.name)
}

// alive: n's heartbeats reach its peer on path i.
func (s *sim) alive(n *simNode, i int) bool { return s.link[i] && !n.down && !n.frozen }

// flush carries out what n's core asks, answering at once, until it asks
// nothing more.
func (s *sim) flush(n *simNode) {
	for n.c.HasReady() {
		rd := n.c.Ready()
		acts := append([]Action(nil), rd.Actions...)
		for _, e := range rd.Events {
			s.logf("%s event %s", n.name, e)
		}
		for _, a := range acts {
			s.logf("%s action %s", n.name, a)
			s.do(n, a)
		}
		n.c.Advance()
		// Answers come after the Ready was advanced, as a driver's would.
		for _, a := range acts {
			s.answer(n, a)
		}
	}
}

func (s *sim) do(n *simNode, a Action) {
	switch a.Kind {
	case ActStopAccepting:
		n.accepting = false
		n.drainOwed = a.Drain
	case ActAccept:
		n.accepting = true
	case ActStopStream:
		n.streaming = false
	case ActPromote:
		for _, g := range n.promos {
			if a.Generation <= g {
				s.failf("%s promotes to generation %d after promoting to %d", n.name, a.Generation, g)
			}
		}
		if a.Generation <= n.heardMax {
			s.failf("%s promotes to generation %d, having heard %d", n.name, a.Generation, n.heardMax)
		}
		if n.disk.Generation < a.Generation {
			s.failf("%s promotes to generation %d before it is on disk (%d)", n.name, a.Generation, n.disk.Generation)
		}
		if want, ok := s.handoffSeq[s.peer(n)]; ok && a.Reason == Switchover && n.seq != want {
			s.failf("%s takes over a handoff at seq %d, drained at %d", n.name, n.seq, want)
		}
		n.promos = append(n.promos, a.Generation)
		n.role, n.accepting, n.gen, n.hot = "active", true, a.Generation, false
	case ActFollow:
		n.role, n.gen, n.streaming, n.syncFrom, n.hot, n.broke = "standby", a.Generation, true, s.now, false, false
	case ActDemote:
		if a.Resume {
			if n.seq != a.ResumeSeq {
				s.failf("%s resumes at %d, its seq is %d", n.name, a.ResumeSeq, n.seq)
			}
		} else if n.seq > a.PeerSeq {
			n.discarded = n.seq - a.PeerSeq
		}
		n.role, n.accepting, n.gen, n.streaming, n.syncFrom, n.hot, n.broke = "standby", false, a.Generation, true, s.now, false, false
	}
}

func (s *sim) answer(n *simNode, a Action) {
	switch a.Kind {
	case ActPersist:
		var err error
		if n.failSaves > 0 {
			n.failSaves--
			err = errors.New("disk full")
		} else {
			n.disk = a.Persisted
		}
		n.c.PersistDone(a.Persisted, err, s.now)
	case ActRunFence:
		n.c.FenceResult(!n.veto, s.now)
	case ActStopAccepting:
		if a.Drain {
			n.drainOwed = false
			n.c.Drained(n.seq, s.now)
			s.handoffSeq[n] = n.seq
		}
	case ActDemote:
		d := n.discarded
		n.discarded = 0
		if !a.Resume {
			n.seq = 0 // resync from a snapshot
		}
		n.c.DemoteDone(d, s.now)
	}
}

// step advances the clock by one step and runs both nodes.
func (s *sim) step() {
	s.now = s.now.Add(simStep)
	beat := s.now.Sub(s.start)%simInterval == 0
	for _, n := range s.n {
		if n.down || n.frozen {
			continue
		}
		p := s.peer(n)
		if beat {
			for i, name := range s.paths {
				if s.alive(p, i) {
					s.deliver(n, name, p.c.Announce())
					n.lastHeard[i] = s.now
				}
			}
		}
		for i, name := range s.paths {
			up := !n.lastHeard[i].IsZero() && s.now.Sub(n.lastHeard[i]) < simDetect
			if up != n.reported[i] {
				n.reported[i] = up
				if err := n.c.PathEvent(name, up, s.now); err != nil {
					s.t.Fatal(err)
				}
			}
		}
		s.node(n, p)
		n.c.Tick(s.now)
		s.flush(n)
	}
	s.check()
}

func (s *sim) deliver(n *simNode, path string, a Announce) {
	wasActive := n.role == "active" && n.accepting
	if err := n.c.PeerAnnounce(path, a, s.now); err != nil {
		s.t.Fatal(err)
	}
	n.heardMax = max(n.heardMax, a.Generation)
	s.flush(n)
	if wasActive && a.State == Active && a.Generation > n.gen && n.accepting {
		s.failf("%s, active at generation %d, still accepts after hearing %d", n.name, n.gen, a.Generation)
	}
}

// node runs n's fake Node: commits while accepting, the standby's stream
// lagging behind, hot after a snapshot time.
func (s *sim) node(n, p *simNode) {
	switch n.role {
	case "active":
		if n.accepting && (s.rand == nil || s.rand()%4 != 0) {
			n.seq++
			n.c.SetSeq(n.seq, s.now)
		}
	case "standby":
		up := n.streaming && s.link[0] && !p.down && !p.frozen && p.role == "active" && p.gen == n.gen
		if !up {
			// The stream broke: the standby keeps what it applied, and
			// gets a snapshot when the stream is back.
			n.broke = n.broke || n.hot
			n.syncFrom = s.now
			return
		}
		if n.broke {
			n.broke, n.hot = false, false
			n.c.SyncProgress(false, s.now)
		}
		if n.seq < p.seq {
			n.seq++
			n.c.SetSeq(n.seq, s.now)
		}
		if !n.hot && s.now.Sub(n.syncFrom) >= simHotAfter {
			n.hot, n.seq = true, p.seq
			n.c.SetSeq(n.seq, s.now)
			n.c.SyncProgress(true, s.now)
		}
	}
}

// check tests the invariants that hold at every instant.
func (s *sim) check() {
	a, b := s.n[0], s.n[1]
	if a.down || b.down {
		return
	}
	if a.role == "active" && b.role == "active" && a.accepting && b.accepting && a.gen == b.gen {
		s.failf("two actives accept commits at generation %d", a.gen)
	}
	if a.c.Accepting() && b.c.Accepting() && a.c.Status().Generation == b.c.Status().Generation {
		s.failf("two cores accept commits at generation %d", a.gen)
	}
}

func (s *sim) run(d time.Duration) {
	for end := s.now.Add(d); s.now.Before(end); {
		s.step()
	}
}

func (s *sim) cut(path string, up bool) {
	for i, p := range s.paths {
		if p == path {
			s.link[i] = up
		}
	}
	s.logf("link %s up=%v", path, up)
}

func (s *sim) freeze(n *simNode, frozen bool) {
	if !frozen && n.frozen {
		// SIGCONT: the heartbeat drains what arrived before it judges.
		n.frozen = false
		for i := range s.paths {
			if s.alive(s.peer(n), i) {
				n.lastHeard[i] = s.now
			}
		}
		s.logf("%s continues", n.name)
		for i, name := range s.paths {
			if s.alive(s.peer(n), i) {
				s.deliver(n, name, s.peer(n).c.Announce())
			}
		}
		return
	}
	n.frozen = frozen
	s.logf("%s frozen=%v", n.name, frozen)
}

func (s *sim) done() {
	s.t.Helper()
	if len(s.fails) > 0 {
		s.t.Errorf("invariants broken:\n%s\nlog:\n%s", strings.Join(s.fails, "\n"), s.log.String())
	}
}

func (s *sim) states() string {
	var out []string
	for _, n := range s.n {
		if n.down {
			out = append(out, n.name+"=down")
			continue
		}
		st := n.c.Status()
		out = append(out, fmt.Sprintf("%s=%s/%d", n.name, st.State, st.Generation))
	}
	return strings.Join(out, " ")
}

func (s *sim) wantStates(t *testing.T, want string) {
	t.Helper()
	if got := s.states(); got != want {
		t.Fatalf("states %s, want %s\nlog:\n%s", got, want, s.log.String())
	}
}

// actionsOf lists n's actions logged since mark (a log length).
func (s *sim) actionsOf(n *simNode, mark int) []string { return s.logged(n, "action", mark) }

// eventsOf lists n's events logged since mark.
func (s *sim) eventsOf(n *simNode, mark int) []string { return s.logged(n, "event", mark) }

func (s *sim) logged(n *simNode, what string, mark int) []string {
	var out []string
	for _, l := range strings.Split(s.log.String()[mark:], "\n") {
		if _, a, ok := strings.Cut(l, " "+n.name+" "+what+" "); ok {
			out = append(out, a)
		}
	}
	return out
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"time"

	"github.com/swha/swha"
	"github.com/swha/swha/heartbeat"
)

// components lists what the demo exercises and whether it is built yet, so the
// demo says plainly what it cannot show instead of pretending.
var components = []struct {
	name  string
	built bool
}{
	{"frame: wire format, CRC32C, HMAC key ring, gopacket layer, Wireshark dissector", true},
	{"l2transport: AF_PACKET/UDP/in-memory links, reliable session", true},
	{"objstore: replicated objects and transactions (core)", true},
	{"swha.Node: replication over the session, sync commits, snapshot on join", true},
	{"heartbeat: per-path liveness, drain before judging, late-detector grace", true},
	{"failover: election, automatic promotion, fencing of a replaced active, rejoin", true},
}

// demoOptions sizes the demo; the tests run smaller ones.
type demoOptions struct {
	routes     int           // routes created before the churn
	nextHops   int           // next-hop objects
	txnOps     int           // route changes per churn transaction
	churnTxns  int           // churn transactions, the last one killed
	soloTxns   int           // transactions the promoted node commits alone
	loss       float64       // injected frame loss, each direction, both wires
	interval   time.Duration // heartbeat interval (zero: the library's default)
	multiplier int           // heartbeat multiplier (zero: the library's default)
	seed       uint64
	logger     *slog.Logger
	// cutAt, if positive, cuts both wires during churn transaction cutAt
	// (a pulled cable, with both switches alive) until the standby has
	// promoted itself, then heals them: a false failover by construction,
	// which the demo must ride out as it would one caused by a stall.
	cutAt int
}

func defaultDemoOptions() demoOptions {
	return demoOptions{routes: 5000, nextHops: 16, txnOps: 300, churnTxns: 1000, soloTxns: 5, loss: 0.002, seed: 1}
}

func (o demoOptions) timers() (time.Duration, int) {
	iv, m := o.interval, o.multiplier
	if iv == 0 {
		iv = heartbeat.DefaultInterval
	}
	if m == 0 {
		m = heartbeat.DefaultMultiplier
	}
	return iv, m
}

func demo(w io.Writer, o demoOptions) int {
	if _, err := runDemo(w, o); err != nil {
		fmt.Fprintf(w, "\nFAIL: %v\n", err)
		return 1
	}
	return 0
}

var errLost = errors.New("acknowledged transactions lost")

// demoResult is what the demo establishes, for its tests: the invariants,
// not the timings (a loaded machine stretches those at will).
type demoResult struct {
	acked   int // churn transactions acknowledged by a standby
	unacked int // churn transactions committed unacknowledged (the standby resyncing, a false failover, the kill)
	resyncs int // times the demo waited for the standby to hold everything again
	// falseFailovers counts the promotions before the kill, with the
	// active alive (a stall of this process, or the cut); each was
	// verified like the real one.
	falseFailovers int
	checks         int // verifications of a promoted node (false failovers and the kill)
	killAcked      bool
	// deadBeforePromote: the killed active was dead when the standby's
	// promotion was reported.
	deadBeforePromote bool
	promotedEarly     bool // the standby promoted before the kill (a false failover just then): not timed
	intents           int  // intents handed back by the promotion after the kill
	lost              int  // > 0: acknowledged state missing on a promoted node
	held, tail        int  // unacknowledged transactions the promoted node holds, of tail
	role              swha.Role
	soloCommits       int  // transactions the promoted node committed alone (Info().Solo)
	rejoined          bool // the restarted node came back as standby and became hot
	// flippedAfterRejoin: once hot, the restarted node took over in a
	// false failover (a stall); the pair settled with nothing lost.
	flippedAfterRejoin bool
	mirrorOK           bool // its mirror equals the active's routes
	finalActive        string
}

func runDemo(w io.Writer, o demoOptions) (res demoResult, err error) {
	log := o.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// A generous bound: a loaded machine, a paused VM or the race detector
	// stretch every step, and a false failover costs a resync.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	stalls := watchStalls(time.Millisecond, stallMin)
	defer stalls.Stop()
	iv, mult := o.timers()

	dir, err := os.MkdirTemp("", "swhad-demo-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)

	fmt.Fprintf(w, "swhad %s demo: two nodes in one process, in-memory HA link (%.1f%% loss each way), heartbeats %v × %d\n\n",
		version, o.loss*100, iv, mult)
	for _, c := range components {
		mark := "not built yet"
		if c.built {
			mark = "built"
		}
		fmt.Fprintf(w, "  %-14s %s\n", mark, c.name)
	}
	fmt.Fprintln(w)

	p := &pair{o: o, log: log, cable: newCable(o.loss, o.seed)}
	p.nodes[0] = &demoNode{name: "A", side: 0, id: 1, prio: 10, dir: dir + "/A"}
	p.nodes[1] = &demoNode{name: "B", side: 1, id: 2, prio: 1, dir: dir + "/B"}
	defer p.close()
	start := time.Now()
	for _, d := range p.nodes {
		if err := p.start(d); err != nil {
			return res, err
		}
	}
	cur, gen, err := p.settle(ctx)
	if err != nil {
		return res, err
	}
	act, sby := p.nodes[cur], p.nodes[1-cur]
	fmt.Fprintf(w, "election: %s active (priority %d), %s standby and hot after %v (generation %d)\n",
		act.name, act.prio, sby.name, time.Since(start).Round(time.Millisecond), gen)

	wl := newWorkload(o.seed)
	var ffNotes []string
	// recover is the demo's answer to a commit that was not acknowledged:
	// wait until a standby holds everything again. If meanwhile a standby
	// promoted itself with the active alive (a false failover: a stall of
	// this process made each node miss the other's heartbeats), verify the
	// new active like the real failover below, and carry on there.
	cause := func() string { return falseCause(stalls) }
	recover := func(what string, count bool) error {
		if count {
			res.resyncs++
		}
		c, g, err := p.settle(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		defer func() { cause = func() string { return falseCause(stalls) } }()
		if c == cur && g == gen {
			wl.tail = nil // the standby holds all of it now
			return nil
		}
		res.falseFailovers++
		v := wl.verify(p.nodes[c].node)
		res.checks++
		note := fmt.Sprintf("%s: %s took over with %s alive%s; %s verified: %d acknowledged transactions lost, %d of %d unacknowledged held",
			what, p.nodes[c].name, p.nodes[1-c].name, cause(), p.nodes[c].name, v.lost, v.held, len(wl.tail))
		ffNotes = append(ffNotes, note)
		if v.lost > 0 {
			res.lost += v.lost
			return fmt.Errorf("%s: %w (%d routes differ from the acknowledged state, %d duplicate prefixes)", note, errLost, v.lost, v.dups)
		}
		cur, gen = c, g
		act, sby = p.nodes[cur], p.nodes[1-cur]
		wl.adopt(act.node)
		return nil
	}

	// Initial load: next hops and routes, in one synchronous transaction
	// (again on the new active if a false failover took it away).
	start = time.Now()
	for len(wl.hops) == 0 {
		tx, err := act.node.Begin(ctx)
		if err == nil {
			var rec txnRecord
			if rec, err = wl.load(tx, o.nextHops, o.routes); err != nil {
				return res, err
			}
			if err = tx.Commit(ctx); err == nil && tx.Info().Acked {
				break
			}
			wl.tail = append(wl.tail, rec)
		}
		if err != nil && !unacknowledged(err) {
			return res, fmt.Errorf("initial load: %w", err)
		}
		if err := recover("initial load", true); err != nil {
			return res, err
		}
	}
	fmt.Fprintf(w, "loaded %d next hops and %d routes in one synchronous transaction (%v)\n",
		len(wl.hops), len(wl.routes), time.Since(start).Round(time.Millisecond))

	// Churn: transactions of updates, deletes and creates, each with an
	// intent, committed synchronously. The active dies in the middle of the
	// last one (its frames stop partway through).
	killAt := max(o.churnTxns, 1)
	ackedOps := 0
	churnStart := time.Now()
	var churnDur time.Duration
	var inflight string
	inflightOps := 0
	var killed *demoNode
	var sbyMark int
	for n := 1; n <= killAt; n++ {
		if n == killAt {
			// The kill hits a settled pair: a stall may have left the
			// standby resyncing, and it must be hot to take over.
			if err := recover("before the kill", false); err != nil {
				return res, err
			}
		}
		tx, err := act.node.Begin(ctx)
		if err != nil {
			if !unacknowledged(err) {
				return res, fmt.Errorf("churn txn %d: %w", n, err)
			}
			// Fenced: the standby took over. Nothing was committed.
			if err := recover(fmt.Sprintf("churn txn %d", n), true); err != nil {
				return res, err
			}
			n--
			continue
		}
		if err := tx.Intent(fmt.Appendf(nil, "churn txn %d: redo from the routing protocol", n)); err != nil {
			return res, err
		}
		rec, err := wl.churn(tx, n, o.txnOps)
		if err != nil {
			return res, err
		}
		if n == killAt {
			inflightOps = len(rec.changes)
			killed, sbyMark = act, sby.ev.mark()
			churnDur = time.Since(churnStart)
			// Let one more frame of the active's session out, then cut
			// both wires; the commit waits for an ack that cannot come,
			// and the crash (Close) ends it.
			p.cable.arm(act.side, 1)
			done := make(chan error, 1)
			go func() { done <- tx.Commit(ctx) }()
			var cerr error
			select {
			case <-p.cable.killed:
				act.node.Close() // the crash: no goodbye gets out, the wires are cut
				cerr = <-done
			case cerr = <-done:
				p.cable.killNow(act.side)
				act.node.Close()
			}
			if res.killAcked = cerr == nil && tx.Info().Acked; res.killAcked {
				res.acked++
				ackedOps += len(rec.changes)
				wl.tail = nil
				inflight = "arrived whole and was acknowledged before the cut"
			} else {
				res.unacked++
				wl.tail = append(wl.tail, rec)
				inflight = "not acknowledged"
				if cerr != nil {
					inflight = "commit returned " + cerr.Error()
				}
			}
			break
		}
		glitch := n == o.cutAt
		var mark int
		if glitch {
			mark = sby.ev.mark()
			p.cable.glitch(true)
		}
		err = tx.Commit(ctx)
		if glitch {
			// The cut lasts until the standby has promoted itself: a
			// false failover by construction, however the scheduler runs
			// the timers.
			if _, werr := sby.ev.wait(ctx, mark, isRoleChange(swha.Active)); werr != nil {
				return res, fmt.Errorf("churn txn %d: the standby never took over during the cut: %w", n, werr)
			}
			p.cable.glitch(false)
			cause = func() string { return " (the wires were cut)" }
		}
		switch {
		case err == nil && tx.Info().Acked:
			res.acked++
			ackedOps += len(rec.changes)
			wl.tail = nil
		case err == nil || unacknowledged(err):
			// It stands on the active, unacknowledged.
			res.unacked++
			wl.tail = append(wl.tail, rec)
			if err := recover(fmt.Sprintf("churn txn %d", n), true); err != nil {
				return res, err
			}
		default:
			return res, fmt.Errorf("churn txn %d: %w", n, err)
		}
	}
	killedAt := p.cable.killTime()
	survivor := p.nodes[1-killed.side]

	// The survivor's failover module declares the peer dead and promotes it
	// by itself; the demo only watches its events.
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	promo, err := survivor.ev.wait(wctx, sbyMark, isRoleChange(swha.Active))
	wcancel()
	if err != nil {
		return res, fmt.Errorf("%s never promoted itself after %s died: %w", survivor.name, killed.name, err)
	}
	var down swha.Event
	for _, e := range survivor.ev.since(sbyMark) {
		if e.Kind == swha.EventPeerDown && e.Path == "ha" && !e.At.After(promo.At) {
			down = e
		}
	}
	res.promotedEarly = promo.At.Before(killedAt)
	res.deadBeforePromote = p.cable.isDead(killed.side) && !res.promotedEarly
	survivor.mu.Lock()
	intents := survivor.intents
	survivor.mu.Unlock()
	res.intents = len(intents)

	fmt.Fprintf(w, "\nbefore the kill (synchronous commits: acknowledged = applied on the standby)\n")
	fmt.Fprintf(w, "  churn transactions acknowledged  %d (%d route changes, %d ops each max)\n", res.acked, ackedOps, o.txnOps)
	if res.unacked > 0 {
		fmt.Fprintf(w, "  committed unacknowledged         %d (the one killed, and any during a resync or a false failover)\n", res.unacked)
	}
	if res.resyncs > 0 {
		fmt.Fprintf(w, "  waits for the standby to resync  %d\n", res.resyncs)
	}
	fmt.Fprintf(w, "  false failovers                  %d\n", res.falseFailovers)
	for _, n := range ffNotes {
		fmt.Fprintf(w, "    %s\n", n)
	}
	secs := churnDur.Seconds()
	fmt.Fprintf(w, "  commit rate                      %.0f txn/s, %.0f route changes/s (%v)\n",
		float64(res.acked)/secs, float64(ackedOps)/secs, churnDur.Round(time.Millisecond))
	fmt.Fprintf(w, "  routes on the active             %d\n", len(wl.model))
	fmt.Fprintf(w, "  in flight at the kill            txn %d (%d changes): %s\n", killAt, inflightOps, inflight)

	fmt.Fprintf(w, "\nkill: %s's wires cut mid-transaction, %s closed as a crash (no goodbye gets out)\n", killed.name, killed.name)
	fmt.Fprintf(w, "  detection (%s's heartbeats, %v × %d)\n", survivor.name, iv, mult)
	if res.promotedEarly {
		fmt.Fprintf(w, "    not timed: %s had promoted itself just before the kill (a false failover%s)\n", survivor.name, falseCause(stalls))
	} else if !down.At.IsZero() {
		if heard := p.cable.lastHeard(survivor.side); !heard.IsZero() && heard.Before(down.At) {
			fmt.Fprintf(w, "    last heartbeat heard -> peer down  %v\n", down.At.Sub(heard).Round(100*time.Microsecond))
		}
		fmt.Fprintf(w, "    kill instant -> peer down          %v%s\n", down.At.Sub(killedAt).Round(100*time.Microsecond), stallNote(stalls, killedAt, down.At))
		fmt.Fprintf(w, "    %s\n", down.Detail)
	}
	fmt.Fprintf(w, "  promotion (%s's failover module, automatic)\n", survivor.name)
	if !res.promotedEarly {
		if !down.At.IsZero() {
			fmt.Fprintf(w, "    peer down -> role changed          %v%s\n", promo.At.Sub(down.At).Round(10*time.Microsecond), stallNote(stalls, down.At, promo.At))
		}
		fmt.Fprintf(w, "    kill instant -> role changed       %v%s\n", promo.At.Sub(killedAt).Round(100*time.Microsecond), stallNote(stalls, killedAt, promo.At))
	}
	fmt.Fprintf(w, "    generation                         %d\n", survivor.node.FailoverStatus().Generation)
	fmt.Fprintf(w, "  partial transactions discarded, intents handed back: %d\n", len(intents))
	for _, in := range intents {
		fmt.Fprintf(w, "    %q\n", in)
	}

	v := wl.verify(survivor.node)
	res.checks++
	res.held, res.tail = v.held, len(wl.tail)
	fmt.Fprintf(w, "\npromoted %s vs every acknowledged commit (deep compare by prefix: next hop, metric, communities)\n", survivor.name)
	fmt.Fprintf(w, "  routes on the promoted node      %d\n", v.routes)
	if v.lost == 0 {
		fmt.Fprintf(w, "  transactions lost                0\n")
		fmt.Fprintf(w, "  unacknowledged txns it holds     %d of %d (committed on the active, not acknowledged)\n", v.held, len(wl.tail))
	} else {
		res.lost += v.lost
		fmt.Fprintf(w, "  transactions lost                >=1 (%d routes differ, %d duplicate prefixes)\n", v.lost, v.dups)
		return res, errLost
	}
	wl.adopt(survivor.node)

	// The promoted node serves alone.
	soloStart := time.Now()
	soloOK := 0
	for i := range o.soloTxns {
		tx, err := survivor.node.Begin(ctx)
		if err != nil {
			return res, fmt.Errorf("promoted node: %w", err)
		}
		if _, err := wl.churn(tx, killAt+1+i, 10); err != nil {
			return res, err
		}
		r := &Route{Prefix: soloPrefix(i), Metric: 1}
		if _, err := tx.Create(r); err != nil {
			return res, err
		}
		wl.model[r.Prefix] = valOf(r)
		if err := tx.Commit(ctx); err != nil {
			return res, fmt.Errorf("promoted node: %w", err)
		}
		res.soloCommits++
		if tx.Info().Solo {
			soloOK++
		}
	}
	ps := survivor.node.Stats()
	res.role = ps.Role
	fmt.Fprintf(w, "\npromoted %s: role %v, %d transactions committed alone in %v (%d reported solo), %d objects\n",
		survivor.name, ps.Role, res.soloCommits, time.Since(soloStart).Round(time.Microsecond), soloOK, ps.ObjectCount)

	// The old active comes back: it must rejoin as the standby (nobody
	// preempts a settled active) and become hot.
	p.cable.revive()
	restart := time.Now()
	if err := p.start(killed); err != nil {
		return res, err
	}
	rctx, rcancel := context.WithTimeout(ctx, time.Minute)
	hot, err := killed.ev.wait(rctx, 0, func(e swha.Event) bool {
		return e.Kind == swha.EventStandbyHot || e.Kind == swha.EventRoleChanged && e.To == swha.Active
	})
	rcancel()
	if err != nil {
		return res, fmt.Errorf("%s restarted never became a hot standby: %w", killed.name, err)
	}
	if hot.Kind != swha.EventStandbyHot {
		return res, fmt.Errorf("%s restarted took the active role instead of rejoining: %v", killed.name, hot)
	}
	res.rejoined = true
	c, _, err := p.settle(ctx)
	if err != nil {
		return res, fmt.Errorf("after %s rejoined: %w", killed.name, err)
	}
	final := p.nodes[c]
	res.finalActive = final.name
	st := killed.node.FailoverStatus()
	fmt.Fprintf(w, "\nrestart: %s (incarnation %d) rejoined as standby, hot after %v", killed.name, st.Incarnation,
		hot.At.Sub(restart).Round(time.Millisecond))
	if c == survivor.side {
		av, _ := routesOf(survivor.node)
		mv, dups := routesOf(killed.node)
		res.mirrorOK = dups == 0 && maps.EqualFunc(av, mv, routeVal.equal)
		fmt.Fprintf(w, "; its mirror equals %s's %d routes: %v\n", survivor.name, len(av), res.mirrorOK)
		if !res.mirrorOK {
			return res, fmt.Errorf("the rejoined standby's mirror differs from the active's")
		}
	} else {
		// A false failover after it became hot (a stall): the pair
		// settled the other way round, with nothing lost (settle waited
		// for the standby to hold everything).
		res.flippedAfterRejoin = true
		fmt.Fprintf(w, "; then it took over again in a false failover%s\n", falseCause(stalls))
		res.mirrorOK = true
	}

	// What the heartbeats saw, both nodes.
	for _, d := range p.nodes {
		for _, hs := range d.node.HeartbeatStats() {
			fmt.Fprintf(w, "heartbeats %s/%s: largest gap %v, worst detector lateness %v, %d late wake-ups, %d downs discounted (%d saved by the grace), %d drains found %d frames\n",
				d.name, hs.Name, hs.LargestGap.Round(100*time.Microsecond), hs.MaxLateness.Round(100*time.Microsecond),
				hs.LateWakeups, hs.DiscountedDowns, hs.SavedByGrace, hs.Drains, hs.Drained)
		}
	}
	sa, sb := p.cable.sess[0].Stats(), p.cable.sess[1].Stats()
	fmt.Fprintf(w, "session wire: A->B %d frames sent, %d lost (injected), %d dropped by the cut; B->A %d sent, %d lost, %d dropped by the cut; %d never sent by the dead switch\n",
		sa.Sent, sa.Lost, sa.PartitionDrops, sb.Sent, sb.Lost, sb.PartitionDrops, p.cable.deadDrop.Load())
	if n, longest := stalls.all(); n > 0 {
		fmt.Fprintf(w, "stalls of this process (%v or more; both nodes froze together): %d, longest %v\n", stallMin, n, longest.Round(time.Millisecond))
	}
	ff := res.falseFailovers
	if res.flippedAfterRejoin {
		ff++
	}
	fmt.Fprintf(w, "\nOK: 0 acknowledged transactions lost (%d promoted node(s) checked, %d false failover(s) ridden out)\n", res.checks, ff)
	return res, nil
}

// unacknowledged reports whether err leaves a transaction committed (or
// never begun) without a standby's acknowledgement, for a reason the demo
// rides out: the standby's stream went down, or the node was fenced or
// demoted because the standby took over.
func unacknowledged(err error) bool {
	return errors.Is(err, swha.ErrStandbyLost) || errors.Is(err, swha.ErrFenced) || errors.Is(err, swha.ErrNotActive)
}

func soloPrefix(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, byte(i), 0}), 24)
}

// stallMin is the shortest gap in this process's running that the demo
// reports as a stall.
const stallMin = 10 * time.Millisecond

// falseCause names the stalls of this process in the last two seconds,
// the likely cause of a false failover.
func falseCause(w *stallWatch) string {
	now := time.Now()
	n, longest := w.within(now.Add(-2*time.Second), now)
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (this process stalled %d time(s), longest %v)", n, longest.Round(time.Millisecond))
}

// stallNote says when a stall of this process falls within a timed span.
func stallNote(w *stallWatch, from, to time.Time) string {
	n, longest := w.within(from, to)
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (overlapped by %d stall(s) of this process, longest %v)", n, longest.Round(time.Millisecond))
}

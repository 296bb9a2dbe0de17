package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/swha/swha"
	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/objstore"
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
	{"swha.Node: replication over the session, sync commits, Promote", true},
	{"heartbeat + failover: detection and promotion (demo uses session silence + Promote)", false},
}

// NextHop and Route are the demo application's types.
type NextHop struct {
	Addr  netip.Addr
	Iface string
}

type Route struct {
	Prefix      netip.Prefix
	NextHop     *NextHop
	Metric      uint32
	Communities []uint32
}

// demoOptions sizes the demo; the test runs a smaller one.
type demoOptions struct {
	routes    int           // routes created before the churn
	nextHops  int           // next-hop objects
	txnOps    int           // route changes per churn transaction
	churnTxns int           // churn transactions before the kill
	soloTxns  int           // transactions the promoted node commits alone
	loss      float64       // injected frame loss, each direction
	keepalive time.Duration // session KeepaliveInterval
	dead      time.Duration // session DeadInterval
	seed      uint64
	logger    *slog.Logger
	// flapAt, if positive, cuts the link during churn transaction flapAt,
	// as a cable glitch would, until both sessions have gone silent.
	flapAt int
}

func defaultDemoOptions() demoOptions {
	return demoOptions{
		routes: 5000, nextHops: 16, txnOps: 300, churnTxns: 1000, soloTxns: 5,
		loss: 0.002, keepalive: 5 * time.Millisecond, dead: 30 * time.Millisecond, seed: 1,
	}
}

// routeVal is a route's replicated content, kept by the workload as its own
// record of what every acknowledged commit made the active hold.
type routeVal struct {
	nh     NextHop
	metric uint32
	comms  []uint32
}

func (a routeVal) equal(b routeVal) bool {
	return a.nh == b.nh && a.metric == b.metric && slices.Equal(a.comms, b.comms)
}

func valOf(r *Route) routeVal {
	v := routeVal{metric: r.Metric, comms: slices.Clone(r.Communities)}
	if r.NextHop != nil {
		v.nh = *r.NextHop
	}
	return v
}

// change is one route's before and after in a transaction (nil: absent).
type change struct {
	prefix        netip.Prefix
	before, after *routeVal
}

type txnRecord struct {
	n       int // churn transaction number
	changes []change
}

func registry() (*objstore.Registry, error) {
	r := objstore.NewRegistry()
	if err := r.Register("nexthop", NextHop{}); err != nil {
		return nil, err
	}
	if err := r.Register("route", Route{}, objstore.WithIDPrefix("route")); err != nil {
		return nil, err
	}
	return r, nil
}

func demo(w io.Writer, o demoOptions) int {
	if _, err := runDemo(w, o); err != nil {
		fmt.Fprintf(w, "\nFAIL: %v\n", err)
		return 1
	}
	return 0
}

var errLost = errors.New("acknowledged transactions lost")

// demoResult is what the demo establishes, for its test: the invariants,
// not the timings (a loaded machine stretches those at will).
type demoResult struct {
	acked   int // churn transactions the standby acknowledged
	unacked int // churn transactions committed while the standby was silent or resyncing
	flaps   int // times the demo waited for the standby to resync (load and churn)
	// killAcked: the transaction in flight at the kill arrived whole and was
	// acknowledged before the cut.
	killAcked bool
	// deadBeforePromote: the active's link was dead when Promote ran.
	deadBeforePromote bool
	// silentAtKill: the standby's session had already gone silent (a
	// stall) when the kill came, so its silence timed nothing.
	silentAtKill bool
	discarded    int       // partial transactions Promote discarded (staged + held)
	lost         int       // > 0: acknowledged transactions missing on the promoted node
	held, tail   int       // unacknowledged transactions the promoted node holds, of tail
	role         swha.Role // the promoted node's role
	soloCommits  int       // transactions the promoted node committed alone
}

// detection is when the standby's session went silent after the kill.
type detection struct {
	at           time.Time
	silentAtKill bool
	err          error
}

func runDemo(w io.Writer, o demoOptions) (demoResult, error) {
	var res demoResult
	log := o.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// A generous bound: a loaded machine, a paused VM or the race detector
	// stretch every step, and a flap costs a resync.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(o.seed, 0x5eed))
	stalls := watchStalls(time.Millisecond, stallMin)
	defer stalls.Stop()

	fmt.Fprintf(w, "swhad %s demo: two nodes in one process, in-memory HA link (%.1f%% loss each way)\n\n", version, o.loss*100)
	for _, c := range components {
		mark := "not built yet"
		if c.built {
			mark = "built"
		}
		fmt.Fprintf(w, "  %-14s %s\n", mark, c.name)
	}
	fmt.Fprintln(w)

	ma, mb := l2transport.NewMemPair(1500, l2transport.Faults{Loss: o.loss}, l2transport.Faults{Loss: o.loss}, o.seed)
	la, lb := newKillLink(ma), newKillLink(mb)
	sc := l2transport.SessionConfig{KeepaliveInterval: o.keepalive, DeadInterval: o.dead}
	regA, err := registry()
	if err != nil {
		return res, err
	}
	regB, err := registry()
	if err != nil {
		return res, err
	}
	active, err := swha.NewNode(swha.Config{Link: la, Registry: regA, NodeID: 1, Epoch: 1, Role: swha.Active,
		Mode: swha.Sync, Session: sc, Logger: log.With("side", "A")})
	if err != nil {
		return res, err
	}
	defer active.Close()
	standby, err := swha.NewNode(swha.Config{Link: lb, Registry: regB, NodeID: 2, Epoch: 1, Role: swha.Standby,
		Session: sc, Logger: log.With("side", "B")})
	if err != nil {
		return res, err
	}
	defer standby.Close()
	// The role-change hook is where an application would take over (it may
	// run on another goroutine than Promote's).
	promoted := make(chan time.Time, 1)
	standby.OnRoleChange(func(rc swha.RoleChange) {
		if rc.To == swha.Active {
			select {
			case promoted <- time.Now():
			default:
			}
		}
	})
	if err := active.WaitSynced(ctx); err != nil {
		return res, fmt.Errorf("pair never synced: %w", err)
	}

	// acked reports whether the standby has acknowledged everything the
	// active committed. A synchronous commit returns nil unacknowledged
	// when the standby's session was silent (or resyncing) as it began.
	acked := func() bool {
		st := active.Stats()
		return st.PeerUp && st.AckedSeq >= st.CommittedSeq
	}
	// After a commit the standby did not acknowledge, the demo waits until
	// the standby holds everything again before it goes on. A silence
	// before the kill is a stall of this process (or the glitch), not a
	// death: both nodes live here and both froze. The commit stands on the
	// active, the session comes back, the standby resyncs.
	var tail []txnRecord // committed, not known acknowledged (newest last)
	resync := func(what string) error {
		res.flaps++
		if err := active.WaitSynced(ctx); err != nil {
			return fmt.Errorf("%s: the standby never resynced after the session flapped: %w", what, err)
		}
		tail = tail[:0] // the standby holds all of it now
		return nil
	}

	// Initial load: next hops and routes, in one synchronous transaction.
	hops := make([]*NextHop, o.nextHops)
	routes := map[netip.Prefix]*Route{}
	model := map[netip.Prefix]routeVal{}
	prefixes := []netip.Prefix{} // live prefixes, for picking
	next := 0                    // next prefix number to create
	newPrefix := func() netip.Prefix {
		i := next
		next++
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32).Masked()
	}
	newRoute := func() *Route {
		return &Route{Prefix: newPrefix(), NextHop: hops[rng.IntN(len(hops))], Metric: uint32(rng.IntN(1000)),
			Communities: []uint32{65000<<16 | uint32(rng.IntN(100))}}
	}
	start := time.Now()
	tx, err := active.Begin(ctx)
	if err != nil {
		return res, err
	}
	for i := range hops {
		hops[i] = &NextHop{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), Iface: fmt.Sprintf("eth%d", i%4+1)}
		if _, err := tx.Create(hops[i]); err != nil {
			return res, err
		}
	}
	for range o.routes {
		r := newRoute()
		if _, err := tx.Create(r); err != nil {
			return res, err
		}
		routes[r.Prefix] = r
		model[r.Prefix] = valOf(r)
		prefixes = append(prefixes, r.Prefix)
	}
	err = tx.Commit(ctx)
	loadFlapped := false
	if errors.Is(err, swha.ErrStandbyLost) || err == nil && !acked() {
		loadFlapped = true
		err = resync("initial load")
	}
	if err != nil {
		return res, fmt.Errorf("initial load: %w", err)
	}
	fmt.Fprintf(w, "loaded %d next hops and %d routes in one synchronous transaction (%v)\n",
		len(hops), len(routes), time.Since(start).Round(time.Millisecond))
	if loadFlapped {
		fmt.Fprintf(w, "  the session flapped during the load (a stall longer than DeadInterval %v); the standby resynced\n", o.dead)
	}

	// Churn: transactions of updates, deletes and creates, each with an
	// intent, committed synchronously. The active dies in the middle of
	// transaction killAt (its frames stop partway through).
	killAt := max(o.churnTxns, 1) // the kill is a churn transaction
	ackedOps := 0
	var inflightErr error
	inflightOps := 0
	churnStart := time.Now()
	var churnDur time.Duration
	var detected <-chan detection
	for n := 1; n <= killAt; n++ {
		if n == killAt {
			// The kill hits a synced pair: a stall since the last commit
			// may have flapped the session, and a kill during the resync
			// would show a standby that was not mirroring.
			if err := active.WaitSynced(ctx); err != nil {
				return res, fmt.Errorf("before the kill: %w", err)
			}
		}
		tx, err := active.Begin(ctx)
		if err != nil {
			return res, err
		}
		if err := tx.Intent(fmt.Appendf(nil, "churn txn %d: redo from the routing protocol", n)); err != nil {
			return res, err
		}
		rec := txnRecord{n: n}
		touched := map[netip.Prefix]bool{}
		for range o.txnOps {
			var p netip.Prefix
			switch k := rng.IntN(10); {
			case k < 6 && len(prefixes) > 0: // update
				p = prefixes[rng.IntN(len(prefixes))]
				if touched[p] {
					continue
				}
				r := routes[p]
				before := valOf(r)
				r.Metric = uint32(rng.IntN(1000))
				r.Communities = append(r.Communities[:0:0], 65000<<16|uint32(rng.IntN(100)), uint32(n))
				r.NextHop = hops[rng.IntN(len(hops))]
				if err := tx.Update(r); err != nil {
					return res, err
				}
				after := valOf(r)
				rec.changes = append(rec.changes, change{p, &before, &after})
			case k < 8 && len(prefixes) > 0: // delete
				i := rng.IntN(len(prefixes))
				p = prefixes[i]
				if touched[p] {
					continue
				}
				before := valOf(routes[p])
				if err := tx.Delete(routes[p]); err != nil {
					return res, err
				}
				delete(routes, p)
				prefixes[i] = prefixes[len(prefixes)-1]
				prefixes = prefixes[:len(prefixes)-1]
				rec.changes = append(rec.changes, change{p, &before, nil})
			default: // create
				r := newRoute()
				p = r.Prefix
				if _, err := tx.Create(r); err != nil {
					return res, err
				}
				routes[p] = r
				prefixes = append(prefixes, p)
				after := valOf(r)
				rec.changes = append(rec.changes, change{p, nil, &after})
			}
			touched[p] = true
		}
		for _, c := range rec.changes {
			if c.after == nil {
				delete(model, c.prefix)
			} else {
				model[c.prefix] = *c.after
			}
		}
		if n == killAt {
			inflightOps = len(rec.changes)
			// Time the standby's detection from the kill instant, while
			// this goroutine waits in Commit.
			detected = watchDetection(ctx, la, standby)
			// Let one frame of this transaction out, then cut.
			la.arm(1)
			churnDur = time.Since(churnStart)
			err := tx.Commit(ctx)
			if err != nil && !errors.Is(err, swha.ErrStandbyLost) {
				return res, fmt.Errorf("churn txn %d (the kill): %w", n, err)
			}
			inflightErr = err
			if res.killAcked = err == nil && acked(); res.killAcked {
				// The whole transaction went out before the budget ran out.
				res.acked++
				ackedOps += len(rec.changes)
				tail = tail[:0]
			} else {
				tail = append(tail, rec)
			}
			la.killNow() // if the budget has not done it yet
			break
		}
		glitch := n == o.flapAt
		if glitch {
			la.glitch(true)
		}
		err = tx.Commit(ctx)
		if glitch {
			// The glitch lasts until both sessions have noticed it, so
			// that it is a flap by construction, whatever the scheduler
			// does with the timers.
			for active.Stats().PeerUp || standby.Stats().PeerUp {
				if ctx.Err() != nil {
					return res, fmt.Errorf("churn txn %d: the glitch was never noticed: %w", n, ctx.Err())
				}
				time.Sleep(time.Millisecond)
			}
			la.glitch(false)
		}
		switch {
		case err == nil && acked():
			res.acked++
			ackedOps += len(rec.changes)
			tail = tail[:0]
		case err == nil || errors.Is(err, swha.ErrStandbyLost):
			// The transaction stands on the active, unacknowledged.
			res.unacked++
			tail = append(tail, rec)
			if err := resync(fmt.Sprintf("churn txn %d", n)); err != nil {
				return res, err
			}
		default:
			return res, fmt.Errorf("churn txn %d: %w", n, err)
		}
	}
	killed := la.killTime()
	det := <-detected
	if det.err != nil {
		return res, det.err
	}
	active.Close() // abrupt: no goodbye, the link is already partitioned

	// Promote only now: the active is dead (its link partitioned both ways)
	// and the standby's session has gone silent since.
	heard := lb.lastHeard()
	pre := standby.Stats()
	res.deadBeforePromote = la.isDead()
	if !res.deadBeforePromote {
		return res, errors.New("about to promote with the active alive")
	}
	promStart := time.Now()
	intents, err := standby.Promote()
	promDur := time.Since(promStart)
	if err != nil {
		return res, err
	}
	var promotedAt time.Time
	select {
	case promotedAt = <-promoted:
	case <-ctx.Done():
		return res, fmt.Errorf("the role-change hook never ran: %w", ctx.Err())
	}
	res.silentAtKill = det.silentAtKill
	res.discarded = pre.Staged + pre.Held
	res.tail = len(tail)

	fmt.Fprintf(w, "\nbefore the kill (synchronous commits: acknowledged = applied on the standby)\n")
	fmt.Fprintf(w, "  churn transactions acknowledged  %d (%d route changes, %d ops each max)\n", res.acked, ackedOps, o.txnOps)
	if res.unacked > 0 {
		fmt.Fprintf(w, "  committed while standby absent   %d (not acknowledged; held by the standby once it resynced)\n", res.unacked)
	}
	if res.flaps > 0 {
		fmt.Fprintf(w, "  session flaps before the kill    %d (a stall longer than DeadInterval %v, or the glitch; the standby resynced each time)\n", res.flaps, o.dead)
	}
	secs := churnDur.Seconds()
	fmt.Fprintf(w, "  commit rate                      %.0f txn/s, %.0f route changes/s (%v)\n",
		float64(res.acked)/secs, float64(ackedOps)/secs, churnDur.Round(time.Millisecond))
	fmt.Fprintf(w, "  routes on the active             %d\n", len(model))
	fmt.Fprintf(w, "  in flight at the kill            txn %d (%d changes): %v\n", killAt, inflightOps, inflightState(inflightErr, res.killAcked))

	fmt.Fprintf(w, "\nkill: link partitioned both ways mid-transaction, active closed (no goodbye)\n")
	fmt.Fprintf(w, "  detection (session silence; the heartbeat module is not built yet, DeadInterval %v, keepalive %v)\n", o.dead, o.keepalive)
	if det.silentAtKill {
		fmt.Fprintf(w, "    not timed: the standby's session was already silent at the kill (a stall flapped it just before)\n")
	} else {
		if !heard.IsZero() {
			fmt.Fprintf(w, "    last frame heard -> silence    %v\n", det.at.Sub(heard).Round(100*time.Microsecond))
		}
		fmt.Fprintf(w, "    kill instant -> silence        %v%s\n", det.at.Sub(killed).Round(100*time.Microsecond), stallNote(stalls, killed, det.at))
	}
	fmt.Fprintf(w, "  promotion (Promote call)         %v%s\n", promDur.Round(time.Microsecond), stallNote(stalls, promStart, promStart.Add(promDur)))
	if !det.silentAtKill {
		fmt.Fprintf(w, "  kill instant -> role-change hook %v%s\n", promotedAt.Sub(killed).Round(100*time.Microsecond), stallNote(stalls, killed, promotedAt))
	}
	fmt.Fprintf(w, "  partial transactions discarded   %d staged, %d held\n", pre.Staged, pre.Held)
	fmt.Fprintf(w, "  intents handed back              %d\n", len(intents))
	for _, in := range intents {
		fmt.Fprintf(w, "    %q\n", in)
	}

	// Compare: the promoted store must equal the active's state after its
	// last acknowledged commit, or after a later committed one that arrived
	// whole before the kill.
	got := map[netip.Prefix]routeVal{}
	dups := 0
	standby.Store().Each(func(_ uint64, obj any) bool {
		if r, ok := obj.(*Route); ok {
			if _, dup := got[r.Prefix]; dup {
				dups++
			}
			got[r.Prefix] = valOf(r)
		}
		return true
	})
	cand := maps.Clone(model)
	match := -1
	for k := 0; ; k++ { // k: newest tail transactions undone
		if dups == 0 && maps.EqualFunc(cand, got, routeVal.equal) {
			match = k
			break
		}
		if k == len(tail) {
			break
		}
		rec := tail[len(tail)-1-k]
		for i := len(rec.changes) - 1; i >= 0; i-- {
			c := rec.changes[i]
			if c.before == nil {
				delete(cand, c.prefix)
			} else {
				cand[c.prefix] = *c.before
			}
		}
	}
	fmt.Fprintf(w, "\npromoted standby vs every acknowledged commit (deep compare by prefix: next hop, metric, communities)\n")
	fmt.Fprintf(w, "  routes on the promoted node      %d\n", len(got))
	if match >= 0 {
		fmt.Fprintf(w, "  transactions lost                0\n")
		res.held = len(tail) - match
		fmt.Fprintf(w, "  unacknowledged txns it holds     %d of %d (committed on the active, not acknowledged)\n", res.held, len(tail))
	} else {
		// Count the acknowledged transactions whose effect is missing: for
		// every route that differs from the acknowledged state, the last
		// acknowledged transaction that wrote it (cand is that state now).
		diff := 0
		for p, v := range cand {
			if g, ok := got[p]; !ok || !g.equal(v) {
				diff++
			}
		}
		for p := range got {
			if _, ok := cand[p]; !ok {
				diff++
			}
		}
		res.lost = max(1, diff) // routes rather than transactions: enough to fail
		fmt.Fprintf(w, "  transactions lost                >=1 (%d routes differ, %d duplicate prefixes)\n", diff, dups)
	}

	// The promoted node serves alone.
	soloStart := time.Now()
	var mine []*Route
	standby.Store().Each(func(_ uint64, obj any) bool {
		if r, ok := obj.(*Route); ok && len(mine) < o.soloTxns*10 {
			mine = append(mine, r)
		}
		return true
	})
	for i := range o.soloTxns {
		tx, err := standby.Begin(ctx)
		if err != nil {
			return res, fmt.Errorf("promoted node: %w", err)
		}
		for _, r := range mine[min(i*10, len(mine)):min(i*10+10, len(mine))] {
			r.Metric++
			if err := tx.Update(r); err != nil {
				return res, err
			}
		}
		r := &Route{Prefix: netip.MustParsePrefix(fmt.Sprintf("172.16.%d.0/24", i)), Metric: 1}
		if _, err := tx.Create(r); err != nil {
			return res, err
		}
		if err := tx.Commit(ctx); err != nil {
			return res, fmt.Errorf("promoted node: %w", err)
		}
		res.soloCommits++
	}
	ps := standby.Stats()
	res.role = ps.Role
	fmt.Fprintf(w, "\npromoted node: role %v, committed %d transactions solo in %v, %d objects, peer up %v\n",
		ps.Role, o.soloTxns, time.Since(soloStart).Round(time.Microsecond), ps.ObjectCount, ps.PeerUp)
	sa, sb := ma.Stats(), mb.Stats()
	fmt.Fprintf(w, "link: A->B %d frames sent, %d lost (injected), %d never sent by the dead active; B->A %d sent, %d lost, %d dropped by the partition\n",
		sa.Sent, sa.Lost, la.deadDrop.Load()+sa.PartitionDrops, sb.Sent, sb.Lost, sb.PartitionDrops)
	if n, longest := stalls.all(); n > 0 {
		fmt.Fprintf(w, "stalls of this process (%v or more; both nodes froze together): %d, longest %v\n", stallMin, n, longest.Round(time.Millisecond))
	}
	if res.lost > 0 {
		return res, errLost
	}
	fmt.Fprintf(w, "\nOK: 0 acknowledged transactions lost\n")
	return res, nil
}

// stallMin is the shortest gap in this process's running that the demo
// reports as a stall.
const stallMin = 10 * time.Millisecond

// watchDetection waits for the kill, then for the standby's liveness to
// declare the active dead, and reports when. It runs beside the killing
// commit, so that the time it reports is the standby's, not when that
// commit returned. The liveness is session silence until the heartbeat
// module lands; the demo reads it through the same interface either way.
func watchDetection(ctx context.Context, la *killLink, standby *swha.Node) <-chan detection {
	ch := make(chan detection, 1)
	states := standby.SessionLiveness().Watch(ctx)
	go func() {
		select {
		case <-la.killed:
		case <-ctx.Done():
			ch <- detection{err: fmt.Errorf("the active was never killed: %w", ctx.Err())}
			return
		}
		var d detection
		d.silentAtKill = !standby.Stats().PeerUp
		for s := range states {
			if !s.Alive {
				d.at = time.Now()
				ch <- d
				return
			}
		}
		ch <- detection{err: fmt.Errorf("the standby never noticed the active's death: %w", ctx.Err())}
	}()
	return ch
}

// stallNote says when a stall of this process falls within a timed span.
func stallNote(w *stallWatch, from, to time.Time) string {
	n, longest := w.within(from, to)
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (overlapped by %d stall(s) of this process, longest %v)", n, longest.Round(time.Millisecond))
}

func inflightState(err error, acked bool) string {
	switch {
	case err != nil:
		return "commit returned " + err.Error()
	case acked:
		return "arrived whole and was acknowledged before the cut"
	default:
		return "committed while the standby's session was silent (a stall), not acknowledged"
	}
}

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
	// flapAt, if positive, cuts the link for three DeadIntervals during
	// churn transaction flapAt, as a VM pause or a cable glitch would.
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
	if err := runDemo(w, o); err != nil {
		fmt.Fprintf(w, "\nFAIL: %v\n", err)
		return 1
	}
	return 0
}

var errLost = errors.New("acknowledged transactions lost")

func runDemo(w io.Writer, o demoOptions) error {
	log := o.logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rng := rand.New(rand.NewPCG(o.seed, 0x5eed))

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
		return err
	}
	regB, err := registry()
	if err != nil {
		return err
	}
	active, err := swha.NewNode(swha.Config{Link: la, Registry: regA, NodeID: 1, Epoch: 1, Role: swha.Active,
		Mode: swha.Sync, Session: sc, Logger: log.With("side", "A")})
	if err != nil {
		return err
	}
	defer active.Close()
	standby, err := swha.NewNode(swha.Config{Link: lb, Registry: regB, NodeID: 2, Epoch: 1, Role: swha.Standby,
		Session: sc, Logger: log.With("side", "B")})
	if err != nil {
		return err
	}
	defer standby.Close()
	if err := active.WaitSynced(ctx); err != nil {
		return fmt.Errorf("pair never synced: %w", err)
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
		return err
	}
	for i := range hops {
		hops[i] = &NextHop{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), Iface: fmt.Sprintf("eth%d", i%4+1)}
		if _, err := tx.Create(hops[i]); err != nil {
			return err
		}
	}
	for range o.routes {
		r := newRoute()
		if _, err := tx.Create(r); err != nil {
			return err
		}
		routes[r.Prefix] = r
		model[r.Prefix] = valOf(r)
		prefixes = append(prefixes, r.Prefix)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("initial load: %w", err)
	}
	fmt.Fprintf(w, "loaded %d next hops and %d routes in one synchronous transaction (%v)\n",
		len(hops), len(routes), time.Since(start).Round(time.Millisecond))

	// Churn: transactions of updates, deletes and creates, each with an
	// intent, committed synchronously. The active dies in the middle of
	// transaction killAt (its frames stop partway through).
	killAt := o.churnTxns
	var tail []txnRecord // committed, not known acknowledged (newest last)
	acked, ackedOps, solo, flaps := 0, 0, 0, 0
	var inflightErr error
	inflightOps := 0
	churnStart := time.Now()
	var churnDur time.Duration
	for n := 1; n <= killAt; n++ {
		tx, err := active.Begin(ctx)
		if err != nil {
			return err
		}
		if err := tx.Intent(fmt.Appendf(nil, "churn txn %d: redo from the routing protocol", n)); err != nil {
			return err
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
					return err
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
					return err
				}
				delete(routes, p)
				prefixes[i] = prefixes[len(prefixes)-1]
				prefixes = prefixes[:len(prefixes)-1]
				rec.changes = append(rec.changes, change{p, &before, nil})
			default: // create
				r := newRoute()
				p = r.Prefix
				if _, err := tx.Create(r); err != nil {
					return err
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
			// Let one frame of this transaction out, then cut.
			la.arm(1)
			churnDur = time.Since(churnStart)
		}
		if n == o.flapAt && n != killAt {
			ma.SetPartitioned(true)
			time.AfterFunc(3*o.dead, func() { ma.SetPartitioned(false) })
		}
		err = tx.Commit(ctx)
		if errors.Is(err, swha.ErrStandbyLost) && n != killAt {
			// A flap: the VM paused longer than DeadInterval (tens of ms
			// happen under load). The transaction stands on the active,
			// unacknowledged, like a solo commit; the standby resyncs.
			flaps++
			solo++
			tail = append(tail, rec)
			continue
		}
		if err != nil {
			if n != killAt {
				return fmt.Errorf("churn txn %d: %w", n, err)
			}
			inflightErr = err
			tail = append(tail, rec)
			break
		}
		st := active.Stats()
		if st.AckedSeq >= active.Store().Seq() && st.PeerUp {
			acked++
			ackedOps += len(rec.changes)
			tail = tail[:0]
		} else {
			solo++
			tail = append(tail, rec)
		}
		if n == killAt {
			// The whole transaction went out before the budget ran out.
			la.killNow()
		}
	}
	<-la.killed
	killed := la.killTime()
	active.Close() // abrupt: no goodbye, the link is already partitioned

	// Detection: the standby's session goes silent (no heartbeat module yet).
	var detected time.Time
	for {
		if !standby.Stats().PeerUp {
			detected = time.Now()
			break
		}
		if ctx.Err() != nil {
			return errors.New("standby never noticed the active's death")
		}
		time.Sleep(200 * time.Microsecond)
	}
	heard := lb.lastHeard()
	pre := standby.Stats()
	promStart := time.Now()
	intents, err := standby.Promote()
	promDur := time.Since(promStart)
	if err != nil {
		return err
	}

	fmt.Fprintf(w, "\nbefore the kill (synchronous commits: acknowledged = applied on the standby)\n")
	fmt.Fprintf(w, "  churn transactions acknowledged  %d (%d route changes, %d ops each max)\n", acked, ackedOps, o.txnOps)
	if solo > 0 {
		fmt.Fprintf(w, "  committed while standby absent   %d (not acknowledged; not counted)\n", solo)
	}
	if flaps > 0 {
		fmt.Fprintf(w, "  session flaps before the kill    %d (a pause longer than DeadInterval %v; resynced)\n", flaps, o.dead)
	}
	secs := churnDur.Seconds()
	fmt.Fprintf(w, "  commit rate                      %.0f txn/s, %.0f route changes/s (%v)\n",
		float64(acked)/secs, float64(ackedOps)/secs, churnDur.Round(time.Millisecond))
	fmt.Fprintf(w, "  routes on the active             %d\n", len(model))
	fmt.Fprintf(w, "  in flight at the kill            txn %d (%d changes): %v\n", killAt, inflightOps, errOrAcked(inflightErr))

	fmt.Fprintf(w, "\nkill: link partitioned both ways mid-transaction, active closed (no goodbye)\n")
	fmt.Fprintf(w, "  detection (session silence; the heartbeat module is not built yet, DeadInterval %v, keepalive %v)\n", o.dead, o.keepalive)
	if !heard.IsZero() {
		fmt.Fprintf(w, "    last frame heard -> silence    %v\n", detected.Sub(heard).Round(100*time.Microsecond))
	}
	fmt.Fprintf(w, "    kill instant -> silence        %v\n", detected.Sub(killed).Round(100*time.Microsecond))
	fmt.Fprintf(w, "  promotion (Promote call)         %v\n", promDur.Round(time.Microsecond))
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
	lost := 0
	if match >= 0 {
		fmt.Fprintf(w, "  transactions lost                0\n")
		applied := len(tail) - match
		fmt.Fprintf(w, "  unacknowledged txns it holds     %d of %d (committed on the active, not acknowledged)\n", applied, len(tail))
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
		lost = max(1, diff) // routes rather than transactions: enough to fail
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
			return fmt.Errorf("promoted node: %w", err)
		}
		for _, r := range mine[min(i*10, len(mine)):min(i*10+10, len(mine))] {
			r.Metric++
			if err := tx.Update(r); err != nil {
				return err
			}
		}
		r := &Route{Prefix: netip.MustParsePrefix(fmt.Sprintf("172.16.%d.0/24", i)), Metric: 1}
		if _, err := tx.Create(r); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("promoted node: %w", err)
		}
	}
	ps := standby.Stats()
	fmt.Fprintf(w, "\npromoted node: role %v, committed %d transactions solo in %v, %d objects, peer up %v\n",
		ps.Role, o.soloTxns, time.Since(soloStart).Round(time.Microsecond), ps.ObjectCount, ps.PeerUp)
	sa, sb := ma.Stats(), mb.Stats()
	fmt.Fprintf(w, "link: A->B %d frames sent, %d lost (injected), %d never sent by the dead active; B->A %d sent, %d lost, %d dropped by the partition\n",
		sa.Sent, sa.Lost, la.deadDrop.Load()+sa.PartitionDrops, sb.Sent, sb.Lost, sb.PartitionDrops)
	if lost > 0 {
		return errLost
	}
	fmt.Fprintf(w, "\nOK: 0 acknowledged transactions lost\n")
	return nil
}

func errOrAcked(err error) string {
	if err == nil {
		return "arrived whole and was acknowledged before the cut"
	}
	return "commit returned " + err.Error()
}

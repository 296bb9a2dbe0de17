//go:build linux

// Command hanode is the test program of the failover tests in tests/: one
// swha.Node with automatic failover over AF_PACKET on one interface (the
// session on a socket that excludes heartbeats, the heartbeats on a socket of
// their own), optionally with a secondary UDP heartbeat path.
//
// While active it commits synchronous transactions in a loop; each creates a
// NextHop and a Route pointing to it, both tagged with the same key K, and K
// increases (it is at least the wall clock in nanoseconds, so keys are unique
// across both nodes and every term). It prints JSON lines on stdout, each
// with "ev" and "t" (time.Now().UnixNano() when it happened):
//
//	{"ev":"start","id":1,"pid":123}
//	{"ev":"event","kind":"role-changed","from":"standby","to":"active","path":"","detail":"","at":…}
//	{"ev":"commit","k":…,"seq":…,"acked":true,"solo":false}  every commit that returned nil
//	{"ev":"accepting","k":…}          the first commit that succeeded since the node became active
//	{"ev":"commit-err","k":…,"err":"…"}  a failed commit (the first of a run of the same error)
//	{"ev":"dump","min":…,"keys":[…],"partial":[…],"total":…,"role":"…"}
//	{"ev":"stats","paths":[heartbeat.RunnerStats…],"failover":failover.Status}
//	{"ev":"switchover","err":""}
//
// Commands on stdin, one a line: "dump [MIN]" (every key ≥ MIN present, and
// every key, whatever MIN, that has only one of its two objects: a partial
// transaction), "pause", "resume" (committing), "switchover", "stats",
// "quit" (prints stats, closes the node, exits). End of input is "quit".
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swha/swha"
	"github.com/swha/swha/frame"
	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/objstore"
)

// NextHop and Route are the two objects of every transaction, tagged with
// the transaction's key K.
type NextHop struct {
	K    uint64
	Addr netip.Addr
}

type Route struct {
	K       uint64
	Prefix  netip.Prefix
	NextHop *NextHop
}

func main() {
	var (
		ifname    = flag.String("if", "swha0", "HA link interface")
		id        = flag.Uint64("id", 1, "node ID")
		peer      = flag.Uint64("peer", 2, "peer node ID")
		prio      = flag.Uint("priority", 0, "election priority")
		state     = flag.String("state", "", "failover state directory (required)")
		mgmtLocal = flag.String("mgmt-local", "", "secondary heartbeat path: local UDP address:port")
		mgmtPeer  = flag.String("mgmt-peer", "", "secondary heartbeat path: the peer's UDP address:port")
		beaconL   = flag.String("beacon-local", "", "death beacon: local TCP address:port to listen on")
		beaconP   = flag.String("beacon-peer", "", "death beacon: the peer's TCP address:port")
		interval  = flag.Duration("interval", 0, "heartbeat interval (0: the default)")
		mult      = flag.Int("multiplier", 0, "heartbeat multiplier (0: the default)")
		gcEvery   = flag.Int("gc", 0, "force runtime.GC() every N ms (0: never)")
		rate      = flag.Int("rate", 0, "most commits per second (0: as fast as they go)")
		realTime  = flag.Bool("rt", false, "heartbeat threads SCHED_FIFO")
		verbose   = flag.Bool("v", false, "debug logs on stderr")
	)
	flag.Parse()
	if err := run(options{ifname: *ifname, id: *id, peer: *peer, prio: uint8(*prio), state: *state,
		mgmtLocal: *mgmtLocal, mgmtPeer: *mgmtPeer, beaconLocal: *beaconL, beaconPeer: *beaconP, interval: *interval, mult: *mult,
		gcEvery: time.Duration(*gcEvery) * time.Millisecond, rate: *rate, realTime: *realTime, verbose: *verbose}); err != nil {
		fmt.Fprintln(os.Stderr, "hanode:", err)
		os.Exit(1)
	}
}

type options struct {
	ifname, state, mgmtLocal, mgmtPeer string
	beaconLocal, beaconPeer            string
	id, peer                           uint64
	prio                               uint8
	interval                           time.Duration
	mult                               int
	gcEvery                            time.Duration
	rate                               int
	realTime, verbose                  bool
}

// printer writes one JSON object a line, each flushed at once (a SIGKILL
// loses nothing printed).
type printer struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (p *printer) print(ev string, fields map[string]any) {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["ev"] = ev
	if _, ok := fields["t"]; !ok {
		fields["t"] = time.Now().UnixNano()
	}
	b, err := json.Marshal(fields)
	if err != nil {
		b, _ = json.Marshal(map[string]any{"ev": "print-error", "err": err.Error()})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.w.Write(b)
	p.w.WriteByte('\n')
	p.w.Flush()
}

func run(o options) error {
	if o.state == "" {
		return errors.New("-state is required")
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	reg := objstore.NewRegistry()
	if err := reg.Register("nexthop", NextHop{}); err != nil {
		return err
	}
	if err := reg.Register("route", Route{}); err != nil {
		return err
	}
	sess, err := l2transport.NewAFPacketLink(l2transport.AFPacketConfig{Interface: o.ifname,
		ExcludeFrameTypes: []frame.Type{frame.TypeHeartbeat}})
	if err != nil {
		return fmt.Errorf("session link: %w", err)
	}
	hb, err := l2transport.NewAFPacketLink(l2transport.AFPacketConfig{Interface: o.ifname,
		FrameTypes: []frame.Type{frame.TypeHeartbeat}, SocketBuffer: 1 << 20})
	if err != nil {
		return fmt.Errorf("heartbeat link: %w", err)
	}
	fc := &swha.FailoverConfig{StateDir: o.state, Priority: o.prio, Interval: o.interval, Multiplier: o.mult,
		HeartbeatLink: hb, RealTime: o.realTime}
	if o.mgmtLocal != "" || o.mgmtPeer != "" {
		local, err := netip.ParseAddrPort(o.mgmtLocal)
		if err != nil {
			return fmt.Errorf("-mgmt-local: %w", err)
		}
		peer, err := netip.ParseAddrPort(o.mgmtPeer)
		if err != nil {
			return fmt.Errorf("-mgmt-peer: %w", err)
		}
		u, err := l2transport.NewUDPLink(l2transport.UDPConfig{Local: local, Peer: peer, SocketBuffer: 1 << 20})
		if err != nil {
			return fmt.Errorf("secondary link: %w", err)
		}
		fc.Secondary = u
	}
	if o.beaconLocal != "" || o.beaconPeer != "" {
		fc.Beacon = &swha.BeaconConfig{Listen: o.beaconLocal, Peer: o.beaconPeer}
	}
	out := &printer{w: bufio.NewWriterSize(os.Stdout, 1<<16)}
	n, err := swha.NewNode(swha.Config{Link: sess, Registry: reg, NodeID: o.id, PeerNodeID: o.peer,
		Logger: log, Failover: fc})
	if err != nil {
		return err
	}
	h := &hanode{n: n, out: out, id: o.id, rate: o.rate, wake: make(chan struct{}, 1), ctl: make(chan string, 16)}
	n.OnEvent(h.onEvent)
	out.print("start", map[string]any{"id": o.id, "pid": os.Getpid()})
	if o.gcEvery > 0 {
		go func() {
			for range time.Tick(o.gcEvery) {
				runtime.GC()
			}
		}()
	}
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			h.ctl <- strings.TrimSpace(sc.Text())
		}
		h.ctl <- "quit"
	}()
	h.loop()
	h.stats()
	return n.Close()
}

type hanode struct {
	n    *swha.Node
	out  *printer
	id   uint64
	rate int
	wake chan struct{} // an event came: the role may have changed
	ctl  chan string

	term     atomic.Uint64 // bumped each time the node becomes active
	accepted uint64        // the term of the last "accepting" line
	paused   bool
	k        uint64 // the last key used
	lastErr  string
}

func (h *hanode) onEvent(ev swha.Event) {
	f := map[string]any{"kind": ev.Kind.String(), "path": ev.Path, "detail": ev.Detail, "at": ev.At.UnixNano()}
	if ev.Kind == swha.EventRoleChanged {
		f["from"], f["to"] = ev.From.String(), ev.To.String()
		if ev.To == swha.Active {
			h.term.Add(1)
		}
	}
	h.out.print("event", f)
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// loop commits while active and not paused, and runs the commands between
// two commits: a dump never sees a transaction of this node half-done.
func (h *hanode) loop() {
	var next time.Time // the rate limit's next slot
	for {
		select {
		case c := <-h.ctl:
			if !h.command(c) {
				return
			}
			continue
		default:
		}
		if h.paused || h.n.Role() != swha.Active {
			select {
			case c := <-h.ctl:
				if !h.command(c) {
					return
				}
			case <-h.wake:
			}
			continue
		}
		if h.rate > 0 {
			now := time.Now()
			if next.After(now) {
				select {
				case c := <-h.ctl:
					if !h.command(c) {
						return
					}
				case <-time.After(next.Sub(now)):
				}
				continue
			}
			if floor := now.Add(-time.Second / 10); next.Before(floor) {
				next = floor // no burst after a pause
			}
			next = next.Add(time.Second / time.Duration(h.rate))
		}
		if !h.commit() {
			// Refused (fenced, draining, not active yet): wait for an event
			// or a little while.
			select {
			case c := <-h.ctl:
				if !h.command(c) {
					return
				}
			case <-h.wake:
			case <-time.After(500 * time.Microsecond):
			}
		}
	}
}

// commit runs one transaction; it reports whether it committed.
func (h *hanode) commit() bool {
	term := h.term.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k := max(h.k+1, uint64(time.Now().UnixNano()))
	h.k = k
	tx, err := h.n.Begin(ctx)
	if err != nil {
		h.commitErr(k, err)
		return false
	}
	hop := &NextHop{K: k, Addr: netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)})}
	route := &Route{K: k, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(k >> 24), byte(k >> 16), byte(k >> 8), 0}), 24), NextHop: hop}
	if _, err := tx.Create(hop); err != nil {
		tx.Abort()
		h.commitErr(k, err)
		return false
	}
	if _, err := tx.Create(route); err != nil {
		tx.Abort()
		h.commitErr(k, err)
		return false
	}
	if err := tx.Commit(ctx); err != nil {
		h.commitErr(k, err)
		return false
	}
	now := time.Now().UnixNano()
	info := tx.Info()
	h.lastErr = ""
	h.out.print("commit", map[string]any{"k": k, "seq": info.Seq, "acked": info.Acked, "solo": info.Solo, "t": now})
	if term != h.accepted {
		h.accepted = term
		h.out.print("accepting", map[string]any{"k": k, "t": now})
	}
	return true
}

func (h *hanode) commitErr(k uint64, err error) {
	if s := err.Error(); s != h.lastErr {
		h.lastErr = s
		h.out.print("commit-err", map[string]any{"k": k, "err": s})
	}
}

// command runs one command; false means quit.
func (h *hanode) command(c string) bool {
	f := strings.Fields(c)
	if len(f) == 0 {
		return true
	}
	switch f[0] {
	case "dump":
		var min uint64
		if len(f) > 1 {
			min, _ = strconv.ParseUint(f[1], 10, 64)
		}
		h.dump(min)
	case "pause":
		h.paused = true
		h.out.print("paused", nil)
	case "resume":
		h.paused = false
		h.out.print("resumed", nil)
	case "switchover":
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := h.n.Switchover(ctx)
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			h.out.print("switchover", map[string]any{"err": msg})
		}()
	case "stats":
		h.stats()
	case "quit":
		return false
	default:
		h.out.print("error", map[string]any{"err": "unknown command " + strconv.Quote(c)})
	}
	return true
}

// dump prints the keys ≥ min present and every partial key.
func (h *hanode) dump(min uint64) {
	hops, routes := map[uint64]bool{}, map[uint64]bool{}
	h.n.Store().Each(func(_ uint64, obj any) bool {
		switch o := obj.(type) {
		case *NextHop:
			hops[o.K] = true
		case *Route:
			routes[o.K] = true
		}
		return true
	})
	keys, partial := []uint64{}, []uint64{}
	for k := range hops {
		if !routes[k] {
			partial = append(partial, k)
		} else if k >= min {
			keys = append(keys, k)
		}
	}
	for k := range routes {
		if !hops[k] {
			partial = append(partial, k)
		}
	}
	slices.Sort(keys)
	slices.Sort(partial)
	h.out.print("dump", map[string]any{"min": min, "keys": keys, "partial": partial, "total": len(routes),
		"role": h.n.Role().String()})
}

func (h *hanode) stats() {
	h.out.print("stats", map[string]any{"paths": h.n.HeartbeatStats(), "failover": h.n.FailoverStatus()})
}

package swha

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/swha/swha/failover"
	"github.com/swha/swha/frame"
	"github.com/swha/swha/heartbeat"
	"github.com/swha/swha/internal/replica"
	"github.com/swha/swha/l2transport"
)

// stateFile is the failover state's file name in FailoverConfig.StateDir.
const stateFile = "failover.state"

// newFailover loads (and bumps) the persisted incarnation, splits the HA
// link between the session and the heartbeats, and starts the heartbeat
// runners and the core. It returns the link the session runs over and the
// epoch to start it with. The node is not started yet: start does that.
func newFailover(cfg *Config, log *slog.Logger) (*foDriver, l2transport.Link, uint32, error) {
	fc := *cfg.Failover
	if err := fc.check(cfg.PeerNodeID); err != nil {
		return nil, nil, 0, err
	}
	if fc.Beacon != nil && fc.Multiplier == 0 {
		// A process death is the beacon's to report: silence can be slow.
		fc.Multiplier = BeaconMultiplier
	}
	if err := os.MkdirAll(fc.StateDir, 0o700); err != nil {
		return nil, nil, 0, fmt.Errorf("failover state dir: %w", err)
	}
	fd := &foDriver{cfg: fc, log: log, state: failover.FileStore{Path: filepath.Join(fc.StateDir, stateFile)},
		results: make(chan func(time.Time), 16), switchc: make(chan chan error), aborted: make(chan error, 1)}
	p, err := fd.state.Load()
	if err != nil {
		return nil, nil, 0, err
	}
	fd.core, err = failover.New(failover.Config{NodeID: cfg.NodeID, PeerNodeID: cfg.PeerNodeID, Priority: fc.Priority,
		Paths: pathNames(fc), NegotiateTimeout: fc.NegotiateTimeout, PromoteUnsynced: fc.PromoteUnsynced, Fence: fc.Fence != nil,
		// No fsync between the peer's death and the first accepted commit.
		ReserveGeneration: true},
		p, time.Now())
	if err != nil {
		return nil, nil, 0, err
	}
	// Every start is a new incarnation, persisted before anything is sent
	// (the session epoch must be newer than the last incarnation's): the
	// core's first Ready asks for it, and nothing else comes before.
	for fd.core.State() == failover.Init {
		rd := fd.core.Ready()
		var done []failover.Persisted
		for _, a := range rd.Actions {
			if a.Kind != failover.ActPersist {
				return nil, nil, 0, fmt.Errorf("failover asked %v before the incarnation was persisted", a)
			}
			if err := fd.state.Save(a.Persisted); err != nil {
				return nil, nil, 0, fmt.Errorf("persist incarnation: %w", err)
			}
			done = append(done, a.Persisted)
		}
		if len(done) == 0 {
			return nil, nil, 0, fmt.Errorf("failover did not leave its initial state")
		}
		fd.core.Advance()
		for _, d := range done {
			fd.core.PersistDone(d, nil, time.Now())
		}
	}
	st := fd.core.Status()
	fd.inc = st.Incarnation
	epoch := epochOf(st.MaxGeneration, st.Incarnation)

	sessLink, hbLink := cfg.Link, fc.HeartbeatLink
	if hbLink == nil {
		d := l2transport.NewDemux(cfg.Link, frame.TypeHeartbeat)
		sessLink, hbLink = d.Rest(), d.Link(frame.TypeHeartbeat)
	}
	fd.links = []l2transport.Link{hbLink}
	if fc.Secondary != nil {
		fd.links = append(fd.links, fc.Secondary)
	}
	names := pathNames(fc)
	disc, err := heartbeat.NewDisc()
	if err != nil {
		return nil, nil, 0, err
	}
	for i, l := range fd.links {
		r, err := heartbeat.NewRunner(l, heartbeat.RunnerConfig{
			Path: heartbeat.PathConfig{Name: names[i], LocalID: cfg.NodeID, PeerID: cfg.PeerNodeID, Epoch: epoch,
				Interval: fc.Interval, Multiplier: fc.Multiplier, Keyring: cfg.Session.Keyring, Disc: disc + uint64(i)},
			RealTime: fc.RealTime,
			Nice:     cmp.Or(fc.Nice, DefaultHeartbeatNice),
			Logger:   log,
		})
		if err != nil {
			fd.closePaths(false)
			return nil, nil, 0, fmt.Errorf("heartbeat path %s: %w", names[i], err)
		}
		fd.paths = append(fd.paths, r)
	}
	if fc.Beacon != nil {
		fd.beacon, err = startBeacon(*fc.Beacon, func() {
			for _, r := range fd.paths {
				r.PeerGone()
			}
		}, log)
		if err != nil {
			fd.closePaths(false)
			return nil, nil, 0, err
		}
	}
	return fd, sessLink, epoch, nil
}

// pathNames names the liveness paths: the HA link first, as the failover
// core requires.
func pathNames(fc FailoverConfig) []string {
	if fc.Secondary != nil {
		return []string{"ha", "mgmt"}
	}
	return []string{"ha"}
}

// closePaths stops the heartbeats and closes their links. Graceful tells
// the peer (an AdminDown heartbeat on every path takes them down at once,
// so a hot standby takes over without waiting out the detection time);
// otherwise they stop as a crash would.
func (fd *foDriver) closePaths(graceful bool) {
	if fd.beacon != nil {
		fd.beacon.close()
	}
	for _, r := range fd.paths {
		if graceful {
			r.Shutdown()
		} else {
			r.Close()
		}
	}
	for _, l := range fd.links {
		l.Close()
	}
}

// start runs the driver for n.
func (fd *foDriver) start(n *Node) {
	fd.n = n
	fd.publish()
	n.wg.Add(1)
	go fd.run()
}

// pollEvery is how often run reads the node's progress (hot, seq) into the
// core: once per heartbeat interval is as fresh as the peer can hear it.
func (fd *foDriver) pollEvery() time.Duration {
	if fd.cfg.Interval > 0 {
		return fd.cfg.Interval
	}
	return heartbeat.DefaultInterval
}

func (fd *foDriver) run() {
	defer fd.n.wg.Done()
	ctx := fd.n.ctx
	// One channel per path: reflect.Select would allocate per wake-up, and
	// there are at most two.
	var ha, mgmt <-chan heartbeat.Event
	ha = fd.paths[0].Events()
	if len(fd.paths) > 1 {
		mgmt = fd.paths[1].Events()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	poll := time.NewTicker(fd.pollEvery())
	defer poll.Stop()
	for {
		fd.ready()
		if d := fd.core.NextDeadline(); d.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(max(time.Until(d), 0))
		}
		select {
		case ev, ok := <-ha:
			if !ok {
				ha = nil
				continue
			}
			fd.onPath(ev)
		case ev, ok := <-mgmt:
			if !ok {
				mgmt = nil
				continue
			}
			fd.onPath(ev)
		case fn := <-fd.results:
			fn(time.Now())
		case reply := <-fd.switchc:
			reply <- fd.core.Switchover(time.Now())
		case <-poll.C:
			fd.progress()
		case <-timer.C:
			fd.core.Tick(time.Now())
		case <-ctx.Done():
			return
		}
	}
}

// onPath feeds a heartbeat event to the core and to the application.
func (fd *foDriver) onPath(ev heartbeat.Event) {
	switch ev.Kind {
	case heartbeat.EventUp, heartbeat.EventDown:
		up := ev.Kind == heartbeat.EventUp
		if err := fd.core.PathEvent(ev.Path, up, ev.At); err != nil {
			fd.log.Warn("failover: path event", "err", err)
		}
		kind, detail := EventPeerUp, ""
		if !up {
			kind, detail = EventPeerDown, fmt.Sprintf("%v after %v", ev.Diag, ev.Gap)
			if ev.Discounted {
				detail += ", discounted a late detector"
			}
		}
		e := Event{Kind: kind, At: ev.At, Path: ev.Path, Detail: detail}
		fd.n.own.do(func() { fd.n.emit(e) })
	}
	if len(ev.Announce) == 0 {
		return
	}
	a, err := failover.ParseAnnounce(ev.Announce)
	if err != nil {
		fd.log.Warn("failover: bad announce from the peer", "path", ev.Path, "err", err)
		return
	}
	if err := fd.core.PeerAnnounce(ev.Path, a, ev.At); err != nil {
		fd.log.Debug("failover: announce refused", "path", ev.Path, "err", err)
	}
	if a.Handoff {
		// A switchover waits for this standby to have applied the drained
		// seq: tell the core now rather than at the next poll, an interval
		// later, while no node accepts commits.
		fd.progress()
	}
}

// progress tells the core what the node's role-side state is now.
func (fd *foDriver) progress() {
	n, now := fd.n, time.Now()
	var hot bool
	var role Role
	var seq uint64
	n.own.do(func() {
		hot, role = n.hot, n.role
		if n.act != nil {
			seq = n.act.Status().Committed
		}
	})
	if role == Standby {
		seq = n.store.AppliedSeq()
		fd.core.SyncProgress(hot, now)
	}
	fd.core.SetSeq(seq, now)
}

// ready carries out what the core asks, in order, until it asks nothing.
func (fd *foDriver) ready() {
	for fd.core.HasReady() {
		rd := fd.core.Ready()
		var answers []func(time.Time)
		var demote *failover.Action
		for _, a := range rd.Actions {
			if a.Kind == failover.ActDemote {
				// After this Ready's Persists, which may follow it: the
				// demotion restarts the session at the new generation's
				// epoch, which must be on disk first, or a crash in
				// between would restart the node at an older epoch than
				// the one its peer has seen (found in review).
				a := a
				demote = &a
				continue
			}
			if ans := fd.do(a); ans != nil {
				answers = append(answers, ans)
			}
		}
		if demote != nil {
			fd.do(*demote)
		}
		for _, ev := range rd.Events {
			fd.event(ev)
		}
		// Every Ready: besides the changes AnnounceChanged reports, the
		// announce carries the seq, which the peer's switchover reads.
		b := rd.Announce.Append(nil)
		for _, r := range fd.paths {
			if err := r.SetAnnounce(b); err != nil {
				fd.log.Warn("failover: announce", "err", err)
			}
		}
		fd.core.Advance()
		// Answers go in after Advance: the core asks nothing that depends
		// on an answer in the same Ready.
		for _, ans := range answers {
			ans(time.Now())
		}
		fd.publish()
	}
}

// peerRestarted reports whether the peer's heartbeats announce an
// incarnation other than the one of the session's peer epoch: the standby
// restarted and the session has not caught up yet.
func (fd *foDriver) peerRestarted(sessionEpoch uint32) bool {
	st := fd.status.Load()
	if st == nil || st.Peer.Announce.Incarnation == 0 {
		return false
	}
	return uint32(st.Peer.Announce.Incarnation)&0xffff != sessionEpoch&0xffff
}

// publish makes the core's status readable by Node.FailoverStatus.
func (fd *foDriver) publish() {
	st := fd.core.Status()
	fd.status.Store(&st)
}

// offLoop runs fn on a goroutine of its own; its answer comes back to run
// through results.
func (fd *foDriver) offLoop(fn func() func(time.Time)) {
	fd.work.Add(1)
	go func() {
		defer fd.work.Done()
		answer := fn()
		select {
		case fd.results <- answer:
		case <-fd.n.ctx.Done():
		}
	}()
}

// do carries out one action, and returns the answer it owes the core now,
// if any (work that runs off the loop answers through results).
func (fd *foDriver) do(a failover.Action) func(time.Time) {
	n := fd.n
	fd.log.Info("failover action", "action", a.String())
	switch a.Kind {
	case failover.ActPersist:
		// Synchronous: fsync is milliseconds, and nothing may announce or
		// promote to the generation before it is durable.
		err := fd.state.Save(a.Persisted)
		return func(now time.Time) { fd.core.PersistDone(a.Persisted, err, now) }
	case failover.ActRunFence:
		hook := fd.cfg.Fence
		fd.offLoop(func() func(time.Time) {
			err := hook(n.ctx)
			if err != nil {
				fd.log.Warn("failover: the fencing hook vetoed the promotion", "err", err)
			}
			return func(now time.Time) { fd.core.FenceResult(err == nil, now) }
		})
	case failover.ActStopAccepting:
		n.fence("failover: stop accepting")
		if a.Drain {
			fd.offLoop(func() func(time.Time) {
				seq := n.drain()
				return func(now time.Time) { fd.core.Drained(seq, now) }
			})
		}
	case failover.ActAccept:
		n.unfence()
	case failover.ActStopStream:
		n.stopStream()
	case failover.ActPromote:
		fd.promote(a)
	case failover.ActFollow:
		n.follow(uint32(a.Generation))
	case failover.ActDemote:
		epoch := epochOf(a.Generation, fd.inc)
		fd.offLoop(func() func(time.Time) {
			discarded, err := n.demote(epoch)
			for err != nil && !errors.Is(err, ErrNotActive) {
				// Not done, so not reported as done: the node stays fenced
				// (it commits nothing) and tries again, unless it is closing.
				fd.log.Error("failover: demotion failed; fenced, trying again", "err", err)
				select {
				case <-n.ctx.Done():
					return func(time.Time) {}
				case <-time.After(fd.pollEvery()):
				}
				discarded, err = n.demote(epoch)
			}
			n.follow(uint32(a.Generation))
			fd.setEpoch(epoch)
			return func(now time.Time) { fd.core.DemoteDone(discarded, now) }
		})
	}
	return nil
}

// promote makes the node active at the action's generation. Promote itself
// is quick (it discards the partial transactions and indexes the store),
// and the session restart only queues frames, so it runs on the loop: the
// standby accepts commits as soon as it returns.
func (fd *foDriver) promote(a failover.Action) {
	n := fd.n
	if n.Role() == Standby {
		if _, err := n.Promote(); err != nil {
			fd.log.Error("failover: promote", "err", err)
			return
		}
	}
	epoch := epochOf(a.Generation, fd.inc)
	n.unfence()
	if err := n.restartSession(epoch); err != nil {
		fd.log.Error("failover: restart the session after promotion", "err", err)
	}
	fd.setEpoch(epoch)
	n.own.do(func() { n.followGen = uint32(a.Generation) })
	fd.log.Warn("promoted to active", "generation", a.Generation, "reason", a.Reason.String())
}

func (fd *foDriver) setEpoch(epoch uint32) {
	for _, r := range fd.paths {
		r.SetEpoch(epoch)
	}
}

// event hands a failover event to the application.
func (fd *foDriver) event(ev failover.Event) {
	kind := EventFailover
	switch ev.Kind {
	case failover.EvSplitBrain:
		kind = EventSplitBrain
	case failover.EvSplitBrainCleared:
		kind = EventSplitBrainCleared
	case failover.EvTwoActives:
		kind = EventTwoActives
	case failover.EvSwitchoverAborted:
		select {
		case fd.aborted <- fmt.Errorf("swha: switchover: called off: %s", ev.Detail):
		default:
		}
	case failover.EvPeerDead:
		fd.n.heartbeatVerdict(false)
	case failover.EvPeerAlive:
		fd.n.heartbeatVerdict(true)
	case failover.EvRoleChanged, failover.EvPathUp, failover.EvPathDown, failover.EvHot:
		// The Node reports these itself, from what it did.
		fd.log.Debug("failover event", "event", ev.String())
		return
	}
	fd.log.Info("failover event", "event", ev.String())
	e := Event{Kind: kind, At: ev.At, Path: ev.Path, Detail: ev.String()}
	fd.n.own.do(func() { fd.n.emit(e) })
}

// heartbeatVerdict gives the heartbeats' verdict on the peer to an active's
// replication core, the one authority on the peer's death: a standby that
// every path declares dead is lost now, not when the session's dead
// interval (a second by default) runs out, so a synchronous commit owed to
// it fails over to solo (ErrStandbyLost) in a detection time. When the
// paths come back, the stream resumes as after session silence: the
// standby gets a snapshot.
func (n *Node) heartbeatVerdict(alive bool) {
	ss := n.conn.Stats()
	epoch := ss.PeerEpoch
	if alive && !ss.Established {
		// After a promotion the session restarted: the standby comes back
		// as a new stream, whose own events decide.
		return
	}
	n.own.do(func() {
		if n.act == nil || alive && !n.peer.Alive {
			// A standby, or a stream the session itself reports down: the
			// session's own PeerAlive will bring it back.
			return
		}
		if alive {
			n.act.Event(replica.Alive, epoch, time.Now())
		} else {
			n.act.Event(replica.Silent, 0, time.Now())
		}
		n.changed()
		n.kick()
	})
}

// Switchover hands the active role to the hot standby with nothing lost:
// this node stops accepting commits, lets those in flight be acknowledged,
// and hands over; it returns once this node is a standby, or with the
// reason it could not (no hot standby, one in progress, ctx).
func (n *Node) Switchover(ctx context.Context) error {
	if n.fo == nil {
		return fmt.Errorf("swha: switchover: failover is not configured")
	}
	select {
	case <-n.fo.aborted: // an earlier switchover's, nobody waited for it
	default:
	}
	reply := make(chan error, 1)
	select {
	case n.fo.switchc <- reply:
	case <-ctx.Done():
		return fmt.Errorf("swha: switchover: %w", ctx.Err())
	case <-n.ctx.Done():
		return fmt.Errorf("swha: switchover: %w", ErrClosed)
	}
	if err := <-reply; err != nil {
		return fmt.Errorf("swha: switchover: %w", err)
	}
	for {
		var role Role
		var ch chan struct{}
		n.own.do(func() { role, ch = n.role, n.progress })
		if role == Standby {
			return nil
		}
		select {
		case <-ch:
		case err := <-n.fo.aborted:
			return err
		case <-ctx.Done():
			return fmt.Errorf("swha: switchover: waiting to hand over: %w", ctx.Err())
		case <-n.ctx.Done():
			return fmt.Errorf("swha: switchover: %w", ErrClosed)
		}
	}
}

// FailoverStatus returns the failover module's state (zero without
// failover).
func (n *Node) FailoverStatus() failover.Status {
	if n.fo == nil {
		return failover.Status{}
	}
	if st := n.fo.status.Load(); st != nil {
		return *st
	}
	return failover.Status{}
}

// HeartbeatStats returns each heartbeat path's counters (nil without
// failover).
func (n *Node) HeartbeatStats() []heartbeat.RunnerStats {
	if n.fo == nil {
		return nil
	}
	out := make([]heartbeat.RunnerStats, len(n.fo.paths))
	for i, r := range n.fo.paths {
		out[i] = r.Stats()
	}
	return out
}

package failover

import (
	"fmt"
	"time"
)

// Core is one node's failover state machine. It is pure: time comes in as
// arguments, what to do goes out as Actions in Ready, and it has no
// goroutine, lock, clock or I/O (purity_test.go). The driver owns all of
// those and feeds it: PathEvent and PeerAnnounce from the heartbeat,
// SyncProgress and SetSeq from the Node, the replies to the actions
// (PersistDone, FenceResult, Drained, DemoteDone), Switchover from the
// operator and Tick at NextDeadline.
//
// Decisions are made by one function, decide, from the current state after
// every input, rather than in each input's handler: whatever order the
// inputs come in, the same situation gives the same answer, and a promotion
// that stopped being wanted while its fence or its Persist ran is dropped.
type Core struct {
	cfg   Config
	now   time.Time
	state State

	inc      uint64    // this incarnation
	durable  Persisted // the last Persist known to be written
	inflight *Persisted
	// reserved is the generation a hot standby persisted ahead of a
	// promotion (Config.ReserveGeneration); reserving is the one being
	// written.
	reserved, reserving uint64
	retryAt             time.Time // no Persist before this (one failed)
	seenMax             uint64    // the highest generation heard in any announce
	gen                 uint64    // the term's generation
	accepting           bool
	seq                 uint64
	hot                 bool // the Node's last SyncProgress, standby states only
	deferring           bool // Negotiating without complete state

	paths []PathStatus
	peer  PeerStatus
	// deadDecided: something was decided while the peer was dead (a
	// promotion), so its return is not a false alarm.
	deadDecided bool
	deadInc     uint64 // the peer's incarnation when it was declared dead

	negotiateAt time.Time

	promo promotion
	sw    switchover

	splitBrain, twoActives bool
	splitSince             time.Time // when the split-brain condition began
	blocked                string    // the reason of the last EvPromotionBlocked, to say it once

	actions   []Action
	events    []Event
	published Announce

	tm  Timings
	cnt Counters
}

// promotion is a promotion under way: fence, then Persist, then Promote.
type promotion struct {
	reason Reason
	phase  promoPhase
	gen    uint64 // the generation being persisted, phase persisting
}

type promoPhase uint8

const (
	promoNone promoPhase = iota
	promoFencing
	promoFenceOK
	promoVetoed
	promoPersist // to be persisted (maybe waiting for a retry)
	promoPersisting
)

// switchover is the active's side of a planned switchover.
type switchover struct {
	phase    swPhase
	seq      uint64 // drained at
	deadline time.Time
}

type swPhase uint8

const (
	swNone swPhase = iota
	swDraining
	swHandoff
)

// New returns the core of a starting node. persisted is what the node's
// store loaded (zero for a first start). The first Ready asks to persist
// the new incarnation; the node stays Init until PersistDone says it was
// written, so that no two incarnations ever share a number.
func New(cfg Config, persisted Persisted, now time.Time) (*Core, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Core{cfg: cfg, now: now, state: Init, inc: persisted.Incarnation + 1, durable: persisted}
	for _, p := range cfg.Paths {
		c.paths = append(c.paths, PathStatus{Name: p})
	}
	c.decide()
	return c, nil
}

// maxGen is the highest generation this node has used, persisted or seen.
func (c *Core) maxGen() uint64 { return max(c.durable.Generation, c.seenMax, c.gen) }

// nextGen is the generation of the next promotion: above every one known,
// and of this node's parity when the peer's ID is configured.
func (c *Core) nextGen() uint64 {
	g := c.maxGen() + 1
	if c.cfg.PeerNodeID != 0 {
		odd := c.cfg.NodeID < c.cfg.PeerNodeID
		if (g%2 == 1) != odd {
			g++
		}
	}
	return g
}

func (c *Core) event(e Event) {
	e.At = c.now
	c.events = append(c.events, e)
}

func (c *Core) act(a Action) { c.actions = append(c.actions, a) }

func (c *Core) setState(s State) {
	if s == c.state {
		return
	}
	c.event(Event{Kind: EvRoleChanged, From: c.state, To: s})
	c.state = s
	c.blocked = ""
}

func (c *Core) pathIndex(name string) int {
	for i := range c.paths {
		if c.paths[i].Name == name {
			return i
		}
	}
	return -1
}

func (c *Core) anyUp() bool {
	for _, p := range c.paths {
		if p.Up {
			return true
		}
	}
	return false
}

// peerKnown: the peer's state is known from an announce heard since it
// was last declared dead, and it is alive: a path is up, or the announce
// is recent. An announce may come before the heartbeat says the path is up
// (it rides on the first heartbeat); without a path up it stands for life
// only NegotiateTimeout, so that an announce that straggled in after the
// peer died cannot keep its standby from taking over for ever.
func (c *Core) peerKnown() bool {
	return c.peer.Fresh && (c.anyUp() || c.now.Before(c.peer.HeardAt.Add(c.cfg.NegotiateTimeout)))
}

// peerDead: every path is down and nothing was heard since.
func (c *Core) peerDead() bool { return !c.anyUp() && !c.peerKnown() }

// PathEvent takes the heartbeat's verdict on one path.
func (c *Core) PathEvent(path string, up bool, now time.Time) error {
	c.now = now
	i := c.pathIndex(path)
	if i < 0 {
		return fmt.Errorf("failover: path event for %q: %w", path, ErrUnknownPath)
	}
	if c.paths[i].Up == up && !c.paths[i].Since.IsZero() {
		return nil
	}
	wasUp := c.anyUp()
	c.paths[i].Up, c.paths[i].Since = up, now
	if up {
		c.event(Event{Kind: EvPathUp, Path: path})
	} else {
		c.event(Event{Kind: EvPathDown, Path: path})
	}
	switch isUp := c.anyUp(); {
	case wasUp && !isUp:
		c.event(Event{Kind: EvPeerDead})
		c.cnt.PeerDeaths++
		c.peer.DeadAt, c.tm.PeerDeadAt = now, now
		c.peer.Fresh = false
		c.deadDecided, c.deadInc = false, c.peer.Announce.Incarnation
	case !wasUp && isUp:
		c.event(Event{Kind: EvPeerAlive})
	}
	c.peer.Alive = c.anyUp()
	c.splitCheck()
	c.decide()
	return nil
}

// splitCheck raises or clears the split-brain alarm: the HA link down while
// another path says the peer lives, for AlarmHold.
func (c *Core) splitCheck() {
	sb := !c.paths[0].Up && c.anyUp()
	if !sb {
		c.splitSince = time.Time{}
	} else if c.splitSince.IsZero() {
		c.splitSince = c.now
	}
	if sb && !c.splitBrain && c.now.Before(c.splitSince.Add(c.cfg.AlarmHold)) {
		return
	}
	if sb == c.splitBrain {
		return
	}
	c.splitBrain = sb
	if sb {
		c.cnt.SplitBrains++
		c.event(Event{Kind: EvSplitBrain, Detail: "HA link " + c.paths[0].Name + " down, peer alive on another path"})
	} else {
		c.event(Event{Kind: EvSplitBrainCleared})
	}
}

// PeerAnnounce takes an announce the heartbeat surfaced from path. It
// counts whatever the path's state: a valid heartbeat arrived, and an
// active that hears a newer one must stand down at once, before its own
// detector has caught up.
func (c *Core) PeerAnnounce(path string, a Announce, now time.Time) error {
	c.now = now
	if c.pathIndex(path) < 0 {
		return fmt.Errorf("failover: announce on %q: %w", path, ErrUnknownPath)
	}
	if a.NodeID == c.cfg.NodeID || (c.cfg.PeerNodeID != 0 && a.NodeID != c.cfg.PeerNodeID) {
		return fmt.Errorf("failover: announce from node %d on %q: %w", a.NodeID, path, ErrWrongPeer)
	}
	prev, heard, fresh := c.peer.Announce, c.peer.Heard, c.peer.Fresh
	c.peer.Announce, c.peer.Heard, c.peer.Fresh, c.peer.HeardAt = a, true, true, now
	if heard && a.Incarnation != prev.Incarnation {
		c.event(Event{Kind: EvPeerRestarted, Generation: a.Generation})
	}
	if heard && !fresh && !c.peer.DeadAt.IsZero() && !c.deadDecided && a.Incarnation == c.deadInc {
		c.cnt.FalseAlarms++
		c.event(Event{Kind: EvFalseAlarm})
		c.deadDecided = true // count it once
	}
	if !heard || a.State != prev.State {
		c.event(Event{Kind: EvPeerState, From: prev.State, To: a.State})
		if a.State == StandbyHot && c.state == Active {
			c.event(Event{Kind: EvPeerHot})
		}
	}
	c.seenMax = max(c.seenMax, a.Generation)
	c.decide()
	return nil
}

// SyncProgress takes the Node's word on the standby's sync: hot once it
// has its snapshot and follows the live stream, not hot when it must start
// over. Outside the standby states it is ignored.
func (c *Core) SyncProgress(hot bool, now time.Time) {
	c.now = now
	if !c.state.Standby() {
		return
	}
	c.hot = hot
	switch {
	case hot && c.state == StandbySyncing:
		c.setState(StandbyHot)
		c.event(Event{Kind: EvHot})
	case !hot && c.state == StandbyHot:
		c.setState(StandbySyncing)
	}
	c.decide()
}

// SetSeq takes the store's commit seq: the last committed on the active,
// the last applied on a standby. It goes into the announce (without making
// it "changed": a heartbeat carries the latest) and decides a handoff.
func (c *Core) SetSeq(seq uint64, now time.Time) {
	c.now = now
	c.seq = seq
	c.published.Seq = seq
	if c.state == StandbyHot && c.peer.Announce.Handoff {
		c.decide()
	}
}

// Superseded says the driver learned by other means than an announce (a
// standby refusing the stream as older, say) that an active of generation
// gen exists. An active below it is fenced at once.
func (c *Core) Superseded(gen uint64, now time.Time) {
	c.now = now
	c.seenMax = max(c.seenMax, gen)
	if (c.state == Active) && gen > c.gen {
		c.fence()
	}
	c.decide()
}

// PersistDone reports the outcome of the last ActPersist.
func (c *Core) PersistDone(p Persisted, err error, now time.Time) {
	c.now = now
	if c.inflight == nil || *c.inflight != p {
		return // not the one asked for: a driver bug, ignored
	}
	c.inflight = nil
	if err != nil {
		c.cnt.PersistFailures++
		c.retryAt = now.Add(c.cfg.PersistRetry)
		c.event(Event{Kind: EvPersistFailed, Err: err})
		if c.promo.phase == promoPersisting {
			// No promotion on a generation that may not be on disk: a
			// restart could use it again.
			c.promo.phase = promoPersist
		}
		c.decide()
		return
	}
	c.durable = p
	if p.Generation == c.reserving && c.reserving != 0 {
		c.reserved = p.Generation
	}
	c.reserving = 0
	if c.state == Init {
		c.setState(Negotiating)
		c.negotiateAt = now.Add(c.cfg.NegotiateTimeout)
	}
	c.decide()
}

// FenceResult reports the fencing hook's verdict on the last ActRunFence.
func (c *Core) FenceResult(allowed bool, now time.Time) {
	c.now = now
	if c.promo.phase != promoFencing {
		return // the promotion was dropped meanwhile
	}
	if allowed {
		c.promo.phase = promoFenceOK
	} else {
		c.promo.phase = promoVetoed
		c.cnt.FenceVetoes++
		c.event(Event{Kind: EvFenceVetoed, Detail: c.promo.reason.String()})
	}
	c.decide()
}

// Switchover starts a planned switchover on the active: it stops
// accepting, waits for Drained, announces the handoff and demotes once the
// hot standby announces itself active.
func (c *Core) Switchover(now time.Time) error {
	c.now = now
	switch {
	case c.state != Active:
		return fmt.Errorf("failover: switchover in state %s: %w", c.state, ErrNotActive)
	case c.sw.phase != swNone:
		return fmt.Errorf("failover: switchover: %w", ErrSwitchoverInProgress)
	case !c.peerKnown() || c.peer.Announce.State != StandbyHot || !c.paths[0].Up:
		return fmt.Errorf("failover: switchover: peer %s, HA link up %v: %w", c.peerStateName(), c.paths[0].Up, ErrNoHotStandby)
	}
	c.sw = switchover{phase: swDraining, deadline: now.Add(c.cfg.HandoffTimeout)}
	c.tm.SwitchoverAt = now
	c.cnt.Switchovers++
	c.accepting = false
	c.act(Action{Kind: ActStopAccepting, Drain: true})
	return nil
}

func (c *Core) peerStateName() string {
	if !c.peerKnown() {
		return "unknown"
	}
	return c.peer.Announce.State.String()
}

// Drained reports that every transaction in flight when ActStopAccepting
// (Drain) was asked has ended, the last commit being seq.
func (c *Core) Drained(seq uint64, now time.Time) {
	c.now = now
	if c.sw.phase != swDraining {
		return
	}
	c.seq, c.published.Seq = seq, seq
	c.sw.phase, c.sw.seq = swHandoff, seq
	c.sw.deadline = now.Add(c.cfg.HandoffTimeout)
	c.tm.DrainedAt = now
	c.decide()
}

// DemoteDone reports that the driver carried out ActDemote, discarding
// discarded commits of its own.
func (c *Core) DemoteDone(discarded uint64, now time.Time) {
	c.now = now
	if c.state != Demoting {
		return
	}
	c.cnt.Discarded += discarded
	c.tm.LastDiscarded, c.tm.LastDiscardedGen = discarded, c.gen
	c.event(Event{Kind: EvDemoted, Count: discarded})
	c.hot = false
	c.setState(StandbySyncing)
	c.decide()
}

// Tick advances time: the negotiation deadline, a switchover's timeout, a
// Persist retry.
func (c *Core) Tick(now time.Time) {
	c.now = now
	if c.sw.phase != swNone && !now.Before(c.sw.deadline) {
		c.abortSwitchover("timed out")
	}
	c.splitCheck()
	c.decide()
}

// NextDeadline is when Tick must be called next (zero: only on input).
func (c *Core) NextDeadline() time.Time {
	var d time.Time
	at := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if c.state == Negotiating && c.promo.phase == promoNone {
		at(c.negotiateAt)
	}
	if c.sw.phase != swNone {
		at(c.sw.deadline)
	}
	if c.inflight == nil && c.retryAt.After(c.now) {
		at(c.retryAt)
	}
	if c.peer.Fresh && !c.anyUp() {
		at(c.peer.HeardAt.Add(c.cfg.NegotiateTimeout))
	}
	if !c.splitSince.IsZero() && !c.splitBrain {
		at(c.splitSince.Add(c.cfg.AlarmHold))
	}
	return d
}

func (c *Core) abortSwitchover(why string) {
	c.sw = switchover{}
	c.cnt.Aborts++
	c.tm.SwitchoverAbort = c.now
	c.event(Event{Kind: EvSwitchoverAborted, Detail: why})
	if c.state == Active {
		c.accepting = true
		c.act(Action{Kind: ActAccept})
	}
}

// fence stops an active that learned it was replaced: StopAccepting
// before anything else.
func (c *Core) fence() {
	c.sw = switchover{}
	c.accepting = false
	c.act(Action{Kind: ActStopAccepting})
	c.setState(Fenced)
}

// outranks reports whether announce a wins over this node among two
// actives: higher generation, then higher priority, then lower node ID.
// Both sides compute the same answer.
func (c *Core) outranks(a Announce) bool {
	if a.Generation != c.gen {
		return a.Generation > c.gen
	}
	return c.electedOver(a)
}

// electedOver reports whether a ranks before this node by priority, then
// node ID (the election at start, and the preemption check).
func (c *Core) electedOver(a Announce) bool {
	if a.Priority != c.cfg.Priority {
		return a.Priority > c.cfg.Priority
	}
	return a.NodeID < c.cfg.NodeID
}

// decide moves the state machine on from the current situation.
func (c *Core) decide() {
	switch c.state {
	case Active:
		c.decideActive()
	case Fenced:
		if a := c.peer.Announce; c.peer.Fresh && a.State == Active && a.Generation > c.gen {
			c.demote(true, 0)
		}
	}
	if r, ok := c.wanted(); ok {
		c.promote(r)
	} else {
		if c.promo.phase != promoNone {
			c.promo = promotion{}
		}
		c.decideOther()
	}
	// Last, so that a promotion's Persist never waits behind this one.
	c.persistLazily()
}

// persistLazily writes the highest generation seen once it is above the
// one on disk, so that a restarted node promotes above it.
func (c *Core) persistLazily() {
	if c.state == Init {
		if c.inflight == nil && !c.retryAt.After(c.now) {
			c.persist(Persisted{Generation: c.maxGen(), Incarnation: c.inc})
		}
		return
	}
	if c.inflight == nil && (c.promo.phase == promoNone || c.promo.phase == promoVetoed) && !c.retryAt.After(c.now) && c.maxGen() > c.durable.Generation {
		c.persist(Persisted{Generation: c.maxGen(), Incarnation: c.inc})
		return
	}
	if c.cfg.ReserveGeneration && c.state == StandbyHot && c.inflight == nil && c.promo.phase == promoNone &&
		!c.retryAt.After(c.now) && !c.reserveUsable() {
		c.reserving = c.nextGen()
		c.persist(Persisted{Generation: c.reserving, Incarnation: c.inc})
	}
}

// reserveUsable reports whether the reserved generation may be promoted
// to: it is what is on disk, and nothing as high has been seen or used.
func (c *Core) reserveUsable() bool {
	return c.reserved != 0 && c.durable.Generation == c.reserved && c.seenMax < c.reserved && c.gen < c.reserved
}

func (c *Core) persist(p Persisted) {
	c.inflight = &p
	c.act(Action{Kind: ActPersist, Persisted: p})
}

func (c *Core) decideActive() {
	a := c.peer.Announce
	if c.peer.Fresh && a.State == Active {
		if c.outranks(a) {
			if c.sw.phase == swHandoff && a.Generation > c.gen {
				// The standby took over the handoff: our state is its at
				// the drained seq.
				c.tm.HandedOverAt = c.now
				c.demote(false, c.sw.seq)
				return
			}
			c.raiseTwoActives(a)
			if a.Generation > c.gen {
				c.fence()
				c.demote(true, 0)
				return
			}
			c.accepting = false
			c.act(Action{Kind: ActStopAccepting})
			c.demote(true, 0)
			return
		}
		c.raiseTwoActives(a)
		return
	}
	c.clearTwoActives()
	if c.sw.phase != swNone && (!c.peerKnown() || a.State != StandbyHot || !c.paths[0].Up) {
		c.abortSwitchover("standby lost: peer " + c.peerStateName())
		return
	}
	if c.cfg.Preempt && c.sw.phase == swNone && c.peerKnown() && a.State == StandbyHot && c.paths[0].Up &&
		c.electedOver(a) && !c.now.Before(c.tm.SwitchoverAbort.Add(c.cfg.NegotiateTimeout)) {
		_ = c.Switchover(c.now) // it checked what Switchover checks
	}
}

func (c *Core) raiseTwoActives(a Announce) {
	if !c.twoActives {
		c.twoActives = true
		c.cnt.TwoActives++
		c.event(Event{Kind: EvTwoActives, Generation: a.Generation})
	}
}

func (c *Core) clearTwoActives() {
	if c.twoActives {
		c.twoActives = false
		c.event(Event{Kind: EvTwoActivesCleared})
	}
}

// demote asks the driver to become the peer's standby: discarding what
// the peer does not have, or resuming at resume (a handoff).
func (c *Core) demote(discard bool, resume uint64) {
	a := c.peer.Announce
	c.sw = switchover{}
	c.accepting = false
	c.cnt.Demotions++
	c.tm.DemotedAt = c.now
	c.act(Action{Kind: ActDemote, Generation: a.Generation, PeerSeq: a.Seq, DiscardAsync: discard, Resume: !discard, ResumeSeq: resume})
	c.gen = a.Generation
	c.clearTwoActives()
	c.setState(Demoting)
}

// wanted says whether a promotion is wanted now, and why.
func (c *Core) wanted() (Reason, bool) {
	a := c.peer.Announce
	switch c.state {
	case Negotiating:
		if !c.peerDead() {
			if c.peerKnown() && a.State == Negotiating && c.winsElection(a) {
				return Elected, true
			}
			return 0, false
		}
		if !c.now.Before(c.negotiateAt) {
			if c.deferring && !c.cfg.PromoteUnsynced {
				c.blockOnce("no complete state to serve")
				return 0, false
			}
			return Solo, true
		}
	case StandbySyncing, StandbyHot:
		able := c.state == StandbyHot || c.cfg.PromoteUnsynced
		if c.peerKnown() {
			switch a.State {
			case Active:
				if a.Handoff && c.state == StandbyHot && c.seq >= a.HandoffSeq && a.Generation == c.gen && c.paths[0].Up {
					return Switchover, true
				}
			case Init, Negotiating, StandbySyncing, StandbyHot:
				if able {
					return PeerLeft, true
				}
			}
			return 0, false
		}
		if c.peerDead() && c.peer.Heard {
			if able {
				return PeerDead, true
			}
			c.blockOnce("standby not hot")
		}
	}
	return 0, false
}

func (c *Core) winsElection(a Announce) bool {
	if a.Defer != c.deferring {
		return a.Defer
	}
	return !c.electedOver(a)
}

func (c *Core) blockOnce(why string) {
	if c.blocked == why {
		return
	}
	c.blocked = why
	c.cnt.Blocked++
	c.event(Event{Kind: EvPromotionBlocked, Detail: why})
}

// promote moves a wanted promotion one step: fence (when the peer's word
// is missing), then Persist of the new generation, then StopStream and
// Promote. Each step waits for the driver's answer.
func (c *Core) promote(r Reason) {
	if c.promo.phase != promoNone && c.promo.reason != r {
		c.promo = promotion{}
	}
	c.promo.reason = r
	if c.promo.phase == promoNone {
		if c.cfg.Fence && (r == Solo || r == PeerDead) {
			c.promo.phase = promoFencing
			c.tm.FenceAt = c.now
			c.act(Action{Kind: ActRunFence})
			return
		}
		c.promo.phase = promoPersist
	}
	if c.promo.phase == promoFenceOK {
		c.promo.phase = promoPersist
	}
	if c.promo.phase == promoPersist && c.inflight == nil && c.reserveUsable() {
		// Already on disk: straight on to StopStream and Promote below.
		c.promo.gen, c.reserved = c.reserved, 0
		c.promo.phase = promoPersisting
		c.tm.PersistAt = c.now
	}
	switch c.promo.phase {
	case promoVetoed:
		c.blockOnce("fence vetoed")
		return
	case promoPersist:
		if c.inflight != nil || c.retryAt.After(c.now) {
			return
		}
		c.promo.gen = c.nextGen()
		c.promo.phase = promoPersisting
		c.tm.PersistAt = c.now
		c.persist(Persisted{Generation: c.promo.gen, Incarnation: c.inc})
		return
	case promoPersisting:
		if c.inflight != nil || c.durable.Generation != c.promo.gen {
			return
		}
		if c.seenMax >= c.promo.gen {
			// A generation as high appeared while it was written: go
			// above it.
			c.promo.phase = promoPersist
			c.promote(r)
			return
		}
	default:
		return
	}
	// The new generation is on disk: nothing this node does after a
	// crash can use it again. StopStream first, always (a no-op for a node
	// that never followed): whatever of the stream arrived so far is
	// settled before Promote discards what is partial.
	c.act(Action{Kind: ActStopStream})
	c.gen = c.promo.gen
	c.accepting = true
	c.deferring = false
	c.promo = promotion{}
	c.cnt.Promotions++
	c.tm.PromotedAt, c.tm.PromoteReason = c.now, r
	if !c.anyUp() {
		c.deadDecided = true
	}
	c.act(Action{Kind: ActPromote, Generation: c.gen, Reason: r})
	c.setState(Active)
}

// decideOther makes the transitions that are not promotions.
func (c *Core) decideOther() {
	a := c.peer.Announce
	switch c.state {
	case Negotiating:
		if c.peerKnown() && a.State == Active {
			c.follow(a)
		} else if !c.peerDead() && !c.now.Before(c.negotiateAt) {
			// A live peer that settles nothing: listen longer rather
			// than go solo next to it.
			c.negotiateAt = c.now.Add(c.cfg.NegotiateTimeout)
		}
	case StandbySyncing, StandbyHot:
		if !c.peerKnown() {
			return
		}
		switch a.State {
		case Active:
			if a.Generation != c.gen {
				c.follow(a)
			}
		case Init, Negotiating, StandbySyncing, StandbyHot:
			// The active left and this standby may not take over: wait
			// in negotiation, yielding to any node with complete state.
			c.deferring = true
			c.hot = false
			c.negotiateAt = c.now.Add(c.cfg.NegotiateTimeout)
			c.setState(Negotiating)
		}
	}
}

func (c *Core) follow(a Announce) {
	c.gen = a.Generation
	c.deferring = false
	c.act(Action{Kind: ActFollow, Generation: a.Generation})
	if !c.state.Standby() {
		c.hot = false
		c.setState(StandbySyncing)
	}
}

// announce is what this node says of itself now.
func (c *Core) announce() Announce {
	a := Announce{NodeID: c.cfg.NodeID, Incarnation: c.inc, State: c.state, Priority: c.cfg.Priority,
		Accepting: c.state == Active && c.accepting, Defer: c.deferring, SplitBrain: c.splitBrain, Seq: c.seq}
	switch c.state {
	case Init, Negotiating:
		a.Generation = c.maxGen()
	default:
		a.Generation = c.gen
	}
	if c.state == Active && c.sw.phase == swHandoff {
		a.Handoff, a.HandoffSeq = true, c.sw.seq
	}
	return a
}

// Ready is what the driver must do now.
type Ready struct {
	// Actions, to carry out in order. ActPersist, ActRunFence,
	// ActStopAccepting with Drain and ActDemote owe an answer
	// (PersistDone, FenceResult, Drained, DemoteDone); the core asks
	// nothing that depends on it until the answer comes.
	Actions []Action
	// Events, for the application, in order.
	Events []Event
	// Announce is this node's announce once the actions are carried out;
	// AnnounceChanged says it differs from the last one in more than Seq
	// (a heartbeat may go out at once with it).
	Announce        Announce
	AnnounceChanged bool
}

// HasReady reports whether Ready has anything to do.
func (c *Core) HasReady() bool {
	return len(c.actions) > 0 || len(c.events) > 0 || c.announce() != c.published
}

// Ready returns what to do. The slices are valid until Advance.
func (c *Core) Ready() Ready {
	a := c.announce()
	return Ready{Actions: c.actions, Events: c.events, Announce: a, AnnounceChanged: a != c.published}
}

// Advance says the last Ready was carried out: its actions done (those
// owing an answer at least started) and its announce may now be sent.
func (c *Core) Advance() {
	clear(c.actions)
	clear(c.events)
	c.actions, c.events = c.actions[:0], c.events[:0]
	c.published = c.announce()
}

// Announce is the announce to put in heartbeats: the one of the last
// Ready advanced, with the latest seq. A heartbeat runner may read it
// between Readys.
func (c *Core) Announce() Announce { return c.published }

// State is the node's state.
func (c *Core) State() State { return c.state }

// Accepting reports whether the node, active, accepts commits.
func (c *Core) Accepting() bool { return c.state == Active && c.accepting }

// Status returns the core's state; Paths is a copy.
func (c *Core) Status() Status {
	return Status{State: c.state, Accepting: c.Accepting(), Generation: c.gen, MaxGeneration: c.maxGen(),
		Durable: c.durable, Incarnation: c.inc, Seq: c.seq, SplitBrain: c.splitBrain, TwoActives: c.twoActives,
		Switchover: c.sw.phase != swNone, Paths: append([]PathStatus(nil), c.paths...), Peer: c.peer,
		Timings: c.tm, Counters: c.cnt}
}

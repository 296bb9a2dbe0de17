package failover

import (
	"errors"
	"fmt"
	"time"

	"github.com/swha/swha/internal/wire"
)

// State is a node's role in the pair.
type State uint8

// States. The values are those of the announce on the wire (docs/WIRE.md).
const (
	// Init: the node started and waits for its new incarnation to be
	// durable (the first Persist).
	Init State = iota + 1
	// Negotiating: listening for the peer; elects or goes solo after
	// Config.NegotiateTimeout.
	Negotiating
	// Active: the node serves commits (unless draining for a switchover).
	Active
	// StandbySyncing: following an active, not yet hot (no snapshot yet, or
	// not yet on the live stream).
	StandbySyncing
	// StandbyHot: following an active, with its snapshot and on the live
	// stream: it may be promoted.
	StandbyHot
	// Fenced: the node was active and learned that a newer generation
	// replaced it. It refuses commits; it demotes once it hears the new
	// active.
	Fenced
	// Demoting: the driver is turning the node into a standby (Demote).
	Demoting
)

var stateNames = [...]string{"none", "init", "negotiating", "active", "standby-syncing", "standby-hot", "fenced", "demoting"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Standby reports whether s is one of the standby states.
func (s State) Standby() bool { return s == StandbySyncing || s == StandbyHot }

// Config configures a Core.
type Config struct {
	// NodeID is this node's ID, non-zero; the election's tie-break (lower
	// wins).
	NodeID uint64
	// PeerNodeID, if not zero, is the only peer accepted, and it splits the
	// generations between the two nodes: the node with the lower ID
	// promotes only to odd generations, the other only to even ones, so two
	// promotions made without hearing each other (both paths cut, or two
	// nodes starting alone) never pick the same generation. Without it they
	// can, and a tie between two actives falls to priority and node ID.
	PeerNodeID uint64
	// Priority orders the election at start: higher wins.
	Priority uint8
	// Paths names the liveness paths, as the heartbeat reports them.
	// Paths[0] is the HA link (the one the stream runs over); the others are
	// secondary (management) paths. The peer is dead only when every path
	// is down; the HA link down with another path up is split brain.
	Paths []string
	// NegotiateTimeout is how long a starting node listens for its peer
	// before it goes solo. Default 3 s: more than the heartbeat's detection
	// time, so a live peer is heard first.
	NegotiateTimeout time.Duration
	// HandoffTimeout bounds a planned switchover: if the standby has not
	// taken over that long after the active stopped accepting, the active
	// accepts again. Default 1 s.
	HandoffTimeout time.Duration
	// PersistRetry is the wait before a failed Persist is asked again.
	// Default 100 ms.
	PersistRetry time.Duration
	// AlarmHold is how long the HA link must be down with another path up
	// before the split-brain alarm is raised: the paths of a dead peer go
	// down one after the other, a detection time apart, and that is no
	// split brain. It delays only the alarm: no promotion happens while
	// any path is up. Default 100 ms.
	AlarmHold time.Duration
	// PromoteUnsynced lets a standby that is not hot be promoted when its
	// active dies. Default false: its state is not the active's, and what it
	// lacks would be lost.
	PromoteUnsynced bool
	// Preempt makes a settled active hand over (a planned switchover, zero
	// loss) to a hot standby that outranks it by priority and node ID.
	// Default false: non-preemptive.
	Preempt bool
	// ReserveGeneration makes a hot standby persist its next generation
	// ahead of time, so that a promotion that finds it on disk (nothing as
	// high seen since) needs no Persist: one fsync less between the peer's
	// death and the first accepted commit. The reserved generation is of
	// this node's parity and above everything seen, so nobody else can
	// take it, and on disk it is never used again after a restart.
	ReserveGeneration bool
	// Fence says the driver runs a fencing hook: the core asks for it
	// (RunFence) before every promotion that does not have the peer's word
	// (solo start, peer dead), and a veto stops the promotion.
	Fence bool
}

const (
	defaultNegotiate = 3 * time.Second
	defaultHandoff   = time.Second
	defaultRetry     = 100 * time.Millisecond
	defaultHold      = 100 * time.Millisecond
)

func (c Config) withDefaults() (Config, error) {
	if c.NodeID == 0 {
		return c, errors.New("failover: config: NodeID is 0")
	}
	if c.PeerNodeID == c.NodeID {
		return c, fmt.Errorf("failover: config: PeerNodeID %d is this node's own ID", c.NodeID)
	}
	if len(c.Paths) == 0 {
		return c, errors.New("failover: config: no Paths (the HA link at least)")
	}
	seen := map[string]bool{}
	for i, p := range c.Paths {
		if p == "" || seen[p] {
			return c, fmt.Errorf("failover: config: Paths[%d] %q is empty or named twice", i, p)
		}
		seen[p] = true
	}
	if c.NegotiateTimeout < 0 || c.HandoffTimeout < 0 || c.PersistRetry < 0 || c.AlarmHold < 0 {
		return c, errors.New("failover: config: a negative timeout")
	}
	if c.NegotiateTimeout == 0 {
		c.NegotiateTimeout = defaultNegotiate
	}
	if c.HandoffTimeout == 0 {
		c.HandoffTimeout = defaultHandoff
	}
	if c.PersistRetry == 0 {
		c.PersistRetry = defaultRetry
	}
	if c.AlarmHold == 0 {
		c.AlarmHold = defaultHold
	}
	c.Paths = append([]string(nil), c.Paths...)
	return c, nil
}

// Persisted is what a node keeps across restarts. Generation is the highest
// failover generation the node has used or seen, so that its next promotion
// goes above anything the pair used; Incarnation counts its starts.
type Persisted struct {
	Generation, Incarnation uint64
}

// Announce is what a node says of itself in every heartbeat (wire kind
// 0x83, docs/WIRE.md).
type Announce struct {
	NodeID, Incarnation uint64
	// Generation is the generation of the term the sender serves (an
	// active's own, a standby's active's); a node in no term sends the
	// highest it knows.
	Generation uint64
	State      State
	Priority   uint8
	// Accepting: an active that accepts commits (false while it drains).
	Accepting bool
	// Handoff: an active drained at HandoffSeq for a planned switchover.
	Handoff bool
	// Defer: the sender holds no complete state and yields any election.
	Defer bool
	// SplitBrain: the sender raises the split-brain alarm.
	SplitBrain bool
	// Seq is the commit seq: an active's last committed, a standby's last
	// applied.
	Seq, HandoffSeq uint64
}

// Append appends the wire encoding of a to b (at most wire.MaxAnnounce
// bytes); it does not allocate when b has room.
func (a Announce) Append(b []byte) []byte {
	w := wire.Announce{NodeID: a.NodeID, Incarnation: a.Incarnation, Generation: a.Generation,
		State: byte(a.State), Priority: a.Priority, Seq: a.Seq, HandoffSeq: a.HandoffSeq}
	for _, f := range [...]struct {
		on  bool
		bit byte
	}{{a.Accepting, wire.AnnounceAccepting}, {a.Handoff, wire.AnnounceHandoff}, {a.Defer, wire.AnnounceDefer}, {a.SplitBrain, wire.AnnounceSplitBrain}} {
		if f.on {
			w.Flags |= f.bit
		}
	}
	return w.Append(b)
}

// ParseAnnounce decodes an announce the heartbeat surfaced. Errors wrap
// wire.ErrMalformed. Unknown flag bits are ignored.
func ParseAnnounce(b []byte) (Announce, error) {
	w, err := wire.ParseAnnounce(b)
	if err != nil {
		return Announce{}, err
	}
	return Announce{NodeID: w.NodeID, Incarnation: w.Incarnation, Generation: w.Generation,
		State: State(w.State), Priority: w.Priority,
		Accepting: w.Flags&wire.AnnounceAccepting != 0, Handoff: w.Flags&wire.AnnounceHandoff != 0,
		Defer: w.Flags&wire.AnnounceDefer != 0, SplitBrain: w.Flags&wire.AnnounceSplitBrain != 0,
		Seq: w.Seq, HandoffSeq: w.HandoffSeq}, nil
}

// Reason says why a node promoted.
type Reason uint8

// Promotion reasons.
const (
	// Solo: no peer heard within NegotiateTimeout at start.
	Solo Reason = iota + 1
	// Elected: both negotiating; this node ranks first.
	Elected
	// PeerDead: every path to the active is down.
	PeerDead
	// PeerLeft: the active announces it is no longer active (it restarted).
	PeerLeft
	// Switchover: the active handed over (planned, zero loss).
	Switchover
)

var reasonNames = [...]string{"", "solo", "elected", "peer-dead", "peer-left", "switchover"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) && r != 0 {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// ActionKind says what an Action asks of the driver.
type ActionKind uint8

// Actions, each with what it requires of the driver (docs/FAILOVER.md).
const (
	// ActPersist: write Action.Persisted durably (FileStore.Save), then
	// call PersistDone with it and the error.
	ActPersist ActionKind = iota + 1
	// ActRunFence: run the fencing hook, then call FenceResult.
	ActRunFence
	// ActStopAccepting: refuse new commits from now on. With Action.Drain
	// (a planned switchover), let the transactions in flight end and call
	// Drained with the seq of the last commit.
	ActStopAccepting
	// ActAccept: accept commits again (a switchover that did not happen).
	ActAccept
	// ActStopStream: apply nothing more of the active's stream: the
	// transactions complete so far stay, partial ones are discarded at
	// Promote. It always comes right before ActPromote.
	ActStopStream
	// ActPromote: become active at Action.Generation (the store's Promote:
	// discard partial transactions and hand back their intents; the session
	// restarts with an epoch of that generation), then accept commits.
	ActPromote
	// ActFollow: be (or stay) the standby of the peer, active at
	// Action.Generation: sync from it, and refuse any stream of an older
	// generation.
	ActFollow
	// ActDemote: stop being active and become the standby of the peer,
	// active at Action.Generation, then call DemoteDone. With DiscardAsync,
	// drop the local commits the peer does not have (the asynchronous ones
	// since the split: the peer's seq is Action.PeerSeq) and resync from a
	// snapshot; with Resume, the local state is the peer's at ResumeSeq:
	// resume from it, no snapshot.
	ActDemote
)

var actionNames = [...]string{"", "persist", "run-fence", "stop-accepting", "accept", "stop-stream", "promote", "follow", "demote"}

func (k ActionKind) String() string {
	if int(k) < len(actionNames) && k != 0 {
		return actionNames[k]
	}
	return fmt.Sprintf("action(%d)", uint8(k))
}

// Action is one thing the driver must do, in the order given.
type Action struct {
	Kind ActionKind
	// Persisted: ActPersist.
	Persisted Persisted
	// Generation: ActPromote, the new one; ActFollow and ActDemote, the
	// peer's (the oldest stream generation to accept).
	Generation uint64
	// Reason: ActPromote.
	Reason Reason
	// Drain: ActStopAccepting for a switchover; Drained is owed.
	Drain bool
	// PeerSeq: ActDemote, the peer's last announced commit seq.
	PeerSeq uint64
	// DiscardAsync, Resume, ResumeSeq: ActDemote (see there).
	DiscardAsync bool
	Resume       bool
	ResumeSeq    uint64
}

func (a Action) String() string {
	switch a.Kind {
	case ActPersist:
		return fmt.Sprintf("persist generation=%d incarnation=%d", a.Persisted.Generation, a.Persisted.Incarnation)
	case ActStopAccepting:
		if a.Drain {
			return "stop-accepting drain"
		}
	case ActPromote:
		return fmt.Sprintf("promote generation=%d reason=%s", a.Generation, a.Reason)
	case ActFollow:
		return fmt.Sprintf("follow generation=%d", a.Generation)
	case ActDemote:
		s := fmt.Sprintf("demote generation=%d peer-seq=%d", a.Generation, a.PeerSeq)
		if a.DiscardAsync {
			s += " discard-async"
		}
		if a.Resume {
			s += fmt.Sprintf(" resume=%d", a.ResumeSeq)
		}
		return s
	}
	return a.Kind.String()
}

// EventKind says what an Event reports.
type EventKind uint8

// Events, for the application (ordered; the Node delivers them).
const (
	EvRoleChanged       EventKind = iota + 1 // From, To
	EvPathUp                                 // Path
	EvPathDown                               // Path
	EvPeerDead                               // every path down
	EvPeerAlive                              // a path up again
	EvPeerState                              // the peer announces another state: To (From: the one before)
	EvPeerRestarted                          // the peer's incarnation changed
	EvHot                                    // this standby is hot
	EvPeerHot                                // the peer standby is hot: redundancy re-created
	EvSplitBrain                             // HA link down, another path up: no promotion
	EvSplitBrainCleared                      // the HA link is up again
	EvTwoActives                             // the peer announces active too; Generation: the peer's
	EvTwoActivesCleared                      // one of them stood down
	EvPromotionBlocked                       // a promotion is wanted but not allowed: Detail
	EvFenceVetoed                            // the fencing hook vetoed a promotion
	EvPersistFailed                          // Err
	EvSwitchoverAborted                      // Detail
	EvFalseAlarm                             // the peer was declared dead and is back, same incarnation, nothing decided
	EvDemoted                                // Count: commits discarded
)

var eventNames = [...]string{"", "role", "path-up", "path-down", "peer-dead", "peer-alive", "peer-state", "peer-restarted",
	"hot", "peer-hot", "split-brain", "split-brain-cleared", "two-actives", "two-actives-cleared", "promotion-blocked",
	"fence-vetoed", "persist-failed", "switchover-aborted", "false-alarm", "demoted"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is one thing that happened, for the application.
type Event struct {
	Kind       EventKind
	At         time.Time
	From, To   State
	Path       string
	Generation uint64
	Count      uint64
	Detail     string
	Err        error
}

func (e Event) String() string {
	s := e.Kind.String()
	switch e.Kind {
	case EvRoleChanged, EvPeerState:
		s += fmt.Sprintf(" %s->%s", e.From, e.To)
	case EvPathUp, EvPathDown:
		s += " " + e.Path
	case EvTwoActives:
		s += fmt.Sprintf(" peer-generation=%d", e.Generation)
	case EvDemoted:
		s += fmt.Sprintf(" discarded=%d", e.Count)
	case EvPersistFailed:
		s += fmt.Sprintf(" err=%v", e.Err)
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Errors of Switchover and of the inputs.
var (
	ErrNotActive            = errors.New("failover: not the active")
	ErrNoHotStandby         = errors.New("failover: no hot standby to hand over to")
	ErrSwitchoverInProgress = errors.New("failover: a switchover is in progress")
	ErrUnknownPath          = errors.New("failover: unknown path")
	ErrWrongPeer            = errors.New("failover: announce from a node that is not the peer")
)

// PathStatus is one liveness path as the heartbeat last reported it.
type PathStatus struct {
	Name  string
	Up    bool
	Since time.Time // when it last changed; zero if never reported
}

// PeerStatus is what the core knows of the peer.
type PeerStatus struct {
	Alive    bool      // some path is up
	Heard    bool      // an announce was heard (Announce is its latest)
	Fresh    bool      // heard since the peer was last dead
	Announce Announce  // the latest
	HeardAt  time.Time // when
	DeadAt   time.Time // when every path last went down
}

// Timings are timestamps of the last failover and switchover; the driver
// turns them into durations (detection = PromotedAt - the kill, as it
// knows it; promotion = PromotedAt - PeerDeadAt).
type Timings struct {
	PeerDeadAt       time.Time // every path went down
	FenceAt          time.Time // RunFence asked
	PersistAt        time.Time // the promotion's Persist asked
	PromotedAt       time.Time // Promote asked
	PromoteReason    Reason
	SwitchoverAt     time.Time // Switchover called (commits refused from here)
	DrainedAt        time.Time // Drained reported, handoff announced
	HandedOverAt     time.Time // the new active heard; Demote asked
	SwitchoverAbort  time.Time // the last abort
	DemotedAt        time.Time // Demote asked
	LastDiscarded    uint64    // commits the last demotion discarded
	LastDiscardedGen uint64    // at which peer generation
}

// Counters count what happened since New.
type Counters struct {
	Promotions, Demotions    uint64
	PeerDeaths, FalseAlarms  uint64
	FenceVetoes, SplitBrains uint64
	TwoActives, Blocked      uint64
	PersistFailures, Aborts  uint64
	Discarded, Switchovers   uint64
}

// Status is the core's state for Stats and logs.
type Status struct {
	State         State
	Accepting     bool
	Generation    uint64 // the term's: own when active, the active's when standby
	MaxGeneration uint64 // the highest used, persisted or seen
	Durable       Persisted
	Incarnation   uint64
	Seq           uint64
	SplitBrain    bool
	TwoActives    bool
	Switchover    bool // a switchover is in progress
	Paths         []PathStatus
	Peer          PeerStatus
	Timings       Timings
	Counters      Counters
}

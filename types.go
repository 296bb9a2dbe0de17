package swha

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/swha/swha/internal/replica"
	"github.com/swha/swha/internal/wire"
)

// Role is a node's part in the pair.
type Role uint8

// Roles.
const (
	Standby Role = iota + 1
	Active
)

func (r Role) String() string {
	switch r {
	case Standby:
		return "standby"
	case Active:
		return "active"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// CommitMode says when Txn.Commit returns.
type CommitMode uint8

// Commit modes.
const (
	// Sync: Commit returns once the standby has applied the whole
	// transaction, so an acknowledged transaction survives a failover.
	Sync CommitMode = iota + 1
	// Async: Commit returns once the transaction is committed locally and
	// handed to the session; at most Config.Window transactions may be
	// unacknowledged, and Commit waits for room beyond that.
	Async
	// Strict is Sync that never goes solo: with no standby connected,
	// Commit aborts the transaction and returns ErrNoStandby, and a commit
	// no standby acknowledged fails.
	Strict
)

func (m CommitMode) String() string {
	switch m {
	case Sync:
		return "sync"
	case Async:
		return "async"
	case Strict:
		return "strict"
	}
	return fmt.Sprintf("CommitMode(%d)", uint8(m))
}

// Errors of the Node. Returned errors wrap one of these, or an objstore or
// l2transport error, and say what was at fault.
var (
	ErrNotActive  = errors.New("swha: node is not active")
	ErrNotStandby = errors.New("swha: node is not a standby")
	ErrClosed     = errors.New("swha: node closed")
	// ErrStandbyLost: a synchronous commit was waiting for the standby's
	// acknowledgement when the session to the standby went down. The
	// transaction is committed on the active; whether the standby applied it
	// is unknown.
	ErrStandbyLost = errors.New("swha: standby lost before acknowledging")
	// ErrParticipant: a coordinated transaction's participant that already
	// committed its part, or one participant too many.
	ErrParticipant = errors.New("swha: bad coordinated transaction participant")
	// ErrPeerRefused: the standby did not apply a transaction because its
	// version of a type cannot hold a value of it (a rolling upgrade in
	// progress). The transaction stands on the active; the error says the
	// type, field and value. Stats().PeerRefusals counts them.
	ErrPeerRefused = errors.New("swha: standby refused the transaction")
	// ErrNoStandby: a Strict commit found no standby to acknowledge it and
	// committed nothing.
	ErrNoStandby = errors.New("swha: no standby connected")
)

// Defaults.
const (
	// DefaultWindow is Config.Window when zero.
	DefaultWindow = 1024
	// DefaultReplayBytes is Config.ReplayBytes when zero.
	DefaultReplayBytes = replica.DefaultReplayBytes
	// DefaultSessionSendBuffer is the session's send buffer when
	// Config.Session.SendBuffer is zero: room for the snapshot of a large
	// store (1 M routes are about 100 MB of records) to be queued at once,
	// so that the snapshot gives the write path back when it is encoded,
	// not when the standby has received it, and commits go on meanwhile.
	// It is only the bound: memory is taken as frames queue.
	DefaultSessionSendBuffer = 256 << 20
)

// PeerState is a verdict on the peer.
type PeerState struct {
	Alive bool
	// At is when the verdict was reached.
	At time.Time
	// Reason says what it rests on.
	Reason string
}

// Liveness reports the peer's state.
type Liveness interface {
	// Watch sends the current state, then every change, until ctx ends; a
	// slow reader sees the latest state, not every intermediate one.
	Watch(ctx context.Context) <-chan PeerState
}

// EventKind names what an Event reports.
type EventKind uint8

// Event kinds. An application that polled Stats to learn of a dead peer
// gets these instead, in the order they happened.
const (
	// EventRoleChanged: the node changed role (From, To).
	EventRoleChanged EventKind = iota + 1
	// EventPeerUp and EventPeerDown: a liveness path (Path) changed its
	// verdict on the peer. Path "session" is the replication session
	// itself: down means only that the stream is down (see Liveness).
	EventPeerUp
	EventPeerDown
	// EventStandbyHot: on an active, the standby acknowledged a snapshot
	// (or a resume) of the current stream and mirrors every commit since;
	// on a standby, it holds the active's snapshot and follows its stream.
	// Only a hot standby takes over with nothing lost.
	EventStandbyHot
	// EventStandbyCold: the standby stopped being hot (its stream went
	// down, or it needs a new snapshot).
	EventStandbyCold
	// EventRepairDone (active): a transaction the standby refused was
	// mended by sending its objects again (Detail says which seq).
	EventRepairDone
	// EventSplitBrain: the HA link is down while another path still hears
	// the peer, so neither node promotes; raised on both sides.
	// EventSplitBrainCleared: the HA link is back.
	EventSplitBrain
	EventSplitBrainCleared
	// EventTwoActives: the peer announces itself active too (after a heal
	// of both paths); the lower generation demotes.
	EventTwoActives
	// EventFailover: anything else the failover module reports (a vetoed
	// or blocked promotion, a failed persist, a false alarm, a demotion);
	// Detail says what.
	EventFailover
)

func (k EventKind) String() string {
	switch k {
	case EventRoleChanged:
		return "role-changed"
	case EventPeerUp:
		return "peer-up"
	case EventPeerDown:
		return "peer-down"
	case EventStandbyHot:
		return "standby-hot"
	case EventStandbyCold:
		return "standby-cold"
	case EventRepairDone:
		return "repair-done"
	case EventSplitBrain:
		return "split-brain"
	case EventSplitBrainCleared:
		return "split-brain-cleared"
	case EventTwoActives:
		return "two-actives"
	case EventFailover:
		return "failover"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one thing that happened to the node, delivered by OnEvent.
type Event struct {
	Kind EventKind
	At   time.Time
	// Path is the liveness path of a peer event.
	Path string
	// From and To are the roles of a role change.
	From, To Role
	// Detail says more, for logs.
	Detail string
}

func (e Event) String() string {
	s := e.Kind.String()
	if e.Path != "" {
		s += " path=" + e.Path
	}
	if e.Kind == EventRoleChanged {
		s += fmt.Sprintf(" %v→%v", e.From, e.To)
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// CommitInfo says what a Commit that returned nil achieved.
type CommitInfo struct {
	// Seq is the commit's sequence number on this node.
	Seq uint64
	// Acked: the standby acknowledged having applied the transaction
	// (Sync and Strict), so a failover keeps it.
	Acked bool
	// Solo: no standby was connected when it committed, so nothing was
	// replicated; a failover now would lose it. An Async commit with a
	// standby is neither Acked nor Solo: it is on its way.
	Solo bool
}

// ownView is what the owner publishes after each call for the questions of
// the commit path that step no core: whether a transaction may begin or
// commit, and whether the window has room. Reading it costs no hand-over
// to the owner, which is what keeps a commit to one (commitStream's).
// Being a copy, it may be older than the core by the calls in flight; each
// reader says why that is safe for it.
type ownView struct {
	role     Role
	fenced   bool
	peerUp   bool   // Active.PeerUp
	hot      bool   // Active.Hot: the window applies
	acked    uint64 // Active's acked seq: the window is committed − acked
	stale    bool   // Active.HasStale: Begin must call the owner to take them
	progress chan struct{}
}

// pendingAck is an ack the worker sent, for the standby core it came from
// to learn at the worker's next call (a core replaced since learns nothing).
type pendingAck struct {
	core *replica.Standby
	ack  wire.Ack
}

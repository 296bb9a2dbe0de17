package swha

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/swha/swha/internal/replica"
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
)

func (m CommitMode) String() string {
	switch m {
	case Sync:
		return "sync"
	case Async:
		return "async"
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
)

// Defaults.
const (
	// DefaultWindow is Config.Window when zero.
	DefaultWindow = 1024
	// DefaultReplayBytes is Config.ReplayBytes when zero.
	DefaultReplayBytes = replica.DefaultReplayBytes
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

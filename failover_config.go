package swha

import (
	"context"
	"errors"
	"time"

	"github.com/swha/swha/l2transport"
)

// FailoverConfig turns on automatic failover: heartbeats on every path
// (package heartbeat) and the role state machine (package failover) decide
// which node is active. With it, Config.Role and Config.Epoch are not used:
// the nodes elect the active at start, a hot standby promotes itself when
// every path to the active is down, and the epoch is the library's own,
// persisted in StateDir. See docs/FAILOVER.md.
type FailoverConfig struct {
	// StateDir holds the node's persisted generation and incarnation
	// (required). Keep it on storage that survives a restart: a node that
	// lost it could reuse a generation.
	StateDir string
	// Priority orders the election at start: higher wins, then the lower
	// node ID. Once roles are settled nobody preempts.
	Priority uint8
	// Interval and Multiplier are the heartbeat timers of every path: the
	// peer is declared dead on a path after Multiplier intervals with no
	// live heartbeat (defaults heartbeat.DefaultInterval and
	// heartbeat.DefaultMultiplier: 5 ms × 4).
	Interval   time.Duration
	Multiplier int
	// HeartbeatLink carries the HA link's heartbeats: ideally a link of its
	// own that the kernel filters to heartbeat frames (so that a heartbeat
	// never queues behind a burst of the stream, and a late detector finds
	// them waiting in its socket). Nil: they share Config.Link through an
	// l2transport.Demux. The Node closes it.
	HeartbeatLink l2transport.Link
	// Secondary, if set, is a second liveness path to the peer over another
	// network (a UDP link over the management network). With it, the HA
	// link down while the secondary is up is split brain: no promotion, an
	// alarm on both sides. The Node closes it.
	Secondary l2transport.Link
	// NegotiateTimeout is how long a starting node listens for its peer
	// before it becomes active alone (default: the failover package's).
	NegotiateTimeout time.Duration
	// PromoteUnsynced lets a standby that is not hot promote when its
	// active dies (default false: it would lose what it lacks).
	PromoteUnsynced bool
	// Fence, if set, runs before every promotion that does not have the
	// peer's word (the peer dead, a solo start), on a goroutine of its own;
	// an error vetoes the promotion (EventFailover says so). Use it to cut
	// the old active off (power, a switch port) when the risk of two
	// actives is worse than no active.
	Fence func(ctx context.Context) error
	// Beacon, if set, runs a death beacon (BeaconConfig): a peer whose
	// process dies is declared dead in a few heartbeat intervals instead
	// of a detection time. With it, Multiplier defaults to
	// BeaconMultiplier, so that silence rides out scheduling stalls.
	Beacon *BeaconConfig
	// RealTime runs the heartbeat threads SCHED_FIFO (see heartbeat and
	// docs/FAILOVER.md for its limits); if not permitted it logs and runs
	// without.
	RealTime bool
	// Nice is the heartbeat threads' nice value when not RealTime; zero
	// means DefaultHeartbeatNice. A detector that the scheduler leaves
	// waiting behind busy threads is what turns load into a false
	// failover. Raising a thread's priority needs CAP_SYS_NICE; without it
	// the runner logs and runs at the default priority.
	Nice int
}

// DefaultHeartbeatNice is FailoverConfig.Nice when zero: the highest
// priority a normal (not real-time) thread can have.
const DefaultHeartbeatNice = -20

// epochOf is the session epoch of a node at generation gen in its
// incarnation inc: the generation in the high 16 bits, so that a stream's
// epoch says which term its active serves (a standby refuses an older
// one), and every restart or promotion gives a newer epoch, which is what
// the session needs to tell a new incarnation from a late frame.
// Generations and incarnations wrap at 1<<16; the session compares epochs
// in serial arithmetic, so a wrap costs one "epoch not newer" warning.
func epochOf(gen, inc uint64) uint32 { return uint32(gen)<<16 | uint32(inc)&0xffff }

// generationOf is the generation part of a session epoch.
func generationOf(epoch uint32) uint32 { return epoch >> 16 }

func (c *FailoverConfig) check(peer uint64) error {
	switch {
	case c.StateDir == "":
		return errors.New("Failover.StateDir is required: the generation must survive a restart")
	case peer == 0:
		// It splits the generations between the two nodes by parity, so that
		// two promotions made apart never pick the same one.
		return errors.New("PeerNodeID is required with Failover")
	}
	return nil
}

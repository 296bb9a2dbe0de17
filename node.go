// Package swha keeps a standby network switch's control plane a hot mirror
// of the active one. Node is the embedding API: an application registers its
// types in an objstore.Registry, starts a Node on the HA link, and commits
// transactions on the active; the standby's Node holds an exact copy that the
// application there can read and subscribe to.
//
// The replication protocol itself is the pure state machines of
// internal/replica; this package is the facade and their driver. See
// docs/ARCHITECTURE.md for the goroutines, the lock order and the
// invariants, and docs/NODE.md for the commit modes.
package swha

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swha/swha/failover"
	"github.com/swha/swha/heartbeat"
	"github.com/swha/swha/internal/replhooks"
	"github.com/swha/swha/internal/replica"
	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/objstore"
)

// Config configures a Node.
type Config struct {
	// Link is the HA link to the peer. The Node owns it: Close closes it.
	Link l2transport.Link
	// Registry holds the application's types; NewNode seals it. Both nodes
	// must register the same types under the same names.
	Registry *objstore.Registry
	// NodeID identifies this node on the link (non-zero, unlike the peer's).
	NodeID uint64
	// PeerNodeID, if not zero, is the only peer accepted.
	PeerNodeID uint64
	// Epoch is this incarnation's generation, non-zero and newer than any
	// earlier incarnation's (see l2transport.SessionConfig.Epoch).
	Epoch uint32
	// Role is the role at start, without Failover. It changes only through
	// Promote.
	Role Role
	// Mode is the default commit mode (default Sync); Txn.SetMode overrides
	// it per transaction.
	Mode CommitMode
	// Window bounds the asynchronous transactions committed but not yet
	// acknowledged by the standby (default DefaultWindow).
	Window int
	// MaxTxnBytes bounds one transaction's records (objstore.Config).
	MaxTxnBytes int
	// SizeHint is how many objects the store expects (objstore.Config).
	SizeHint int
	// Session tunes the session; LocalNodeID, PeerNodeID and Epoch are
	// taken from the fields above.
	Session l2transport.SessionConfig
	// Logger receives the node's logs (default: discard).
	Logger *slog.Logger
	// Statics are registered as static objects (RegisterStatic) before the
	// checkpoint loads and the session starts; a checkpoint needs them.
	Statics map[string]any
	// Checkpoint, if set, is a checkpoint file (SaveCheckpoint) to start
	// from: a standby then asks the active only for the commits after it,
	// and an active restores its state from it. A missing file is a fresh
	// start; a bad one is logged and ignored.
	Checkpoint string
	// Failover, if set, turns on automatic failover: heartbeats, election,
	// promotion and demotion (FailoverConfig). Role and Epoch are then the
	// failover module's.
	Failover *FailoverConfig
	// ReplayBytes bounds the active's log of recent commits, from which a
	// standby that holds the state up to some seq (a checkpoint, a
	// restart) is resumed without a snapshot (default DefaultReplayBytes;
	// negative: no log, always a snapshot).
	ReplayBytes int
}

// RoleChange tells the application that the node changed role.
type RoleChange struct {
	From, To Role
	// Intents are the intents of the transactions discarded on promotion
	// (their commit never arrived), in commit order, for the application to
	// re-execute.
	Intents [][]byte
}

// Node is one switch's end of the pair: an objstore.Store wired to an
// l2transport.Conn, with the replication cores of internal/replica deciding
// what goes over it. On the active, each commit's records go to the standby
// as session messages carrying the transaction ID; on the standby, the
// session's messages feed the store's Apply and each applied commit is
// acknowledged.
type Node struct {
	cfg   Config
	log   *slog.Logger
	store *objstore.Store
	repl  replhooks.Store // the same store's replication hooks
	conn  *l2transport.Conn
	write writePath  // one transaction, snapshot, replay or repair at a time
	user  *deliverer // runs the application's callbacks, in order

	// own is the goroutine that owns the cores and the fields down to peer
	// (fo is set once): read and write them only in a closure handed to own.do
	// (owner.go). Order: the write path, then applyMu, then own.do.
	own      *owner
	view     atomic.Pointer[ownView] // published by the owner (owner.go)
	role     Role
	act      *replica.Active  // on an active
	sby      *replica.Standby // on a standby
	progress chan struct{}    // closed and replaced whenever the cores change
	hooks    []func(RoleChange)
	evHooks  []func(Event)
	hot      bool // the standby is hot, as last reported (EventStandbyHot)
	fenced   bool // replaced by a newer active: no commits (fence.go)
	// With failover on: fo drives the role; followGen is the oldest
	// generation of active whose stream a standby takes (demote.go).
	fo        *foDriver
	followGen uint32
	peerSkew  []objstore.SkewReport
	peer      PeerState // what the session says of the peer (SessionLiveness)
	// streamOn publishes act.Streaming() for the sink, which asks per
	// record: it turns true only on the write path (a snapshot or replay
	// starts there), so the write path never reads it stale-false.
	streamOn atomic.Bool

	// The write path's own: the sink streams a commit's records, the replay
	// log keeps them, repairBad lists per repair commit the objects it left
	// out (a refused repair leaves them out again, plus the new one).
	sink      batchSink
	replay    *replica.Log
	repairBad map[uint64][]uint64

	// The worker's own (standbyOutput): the last ack it sent.
	ackSent pendingAck

	// applyMu: on a standby, Apply versus Promote and whole-store reads.
	applyMu sync.Mutex
	// Under applyMu: the failover module stopped the stream before a
	// promotion (streamStopped), or the stream is of a replaced active, of a
	// generation older than the one followed (staleIn): apply nothing.
	streamStopped, staleIn bool
	// The store's staged and held counts as of the last applied message, so
	// that Stats needs no applyMu.
	stagedN, heldN atomic.Int64
	// afterRefusedApply, when set by a test, runs between a refused Apply and
	// the standby core's verdict on it: the window in which an ack must not
	// go out.
	afterRefusedApply func()

	wake      chan struct{} // wakes loop
	stats     nodeCounters
	coordNext atomic.Uint64

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

type nodeCounters struct {
	snapshots      atomic.Uint64
	resyncAsks     atomic.Uint64
	applyErrors    atomic.Uint64
	windowWaits    atomic.Uint64
	refused        atomic.Uint64 // standby: transactions its version cannot hold
	peerRefusals   atomic.Uint64 // active: refusals received from the standby
	replays        atomic.Uint64 // active: standbys resumed from their seq
	badCheckpoints atomic.Uint64
	leaks          atomic.Uint64 // active: unreachable objects at the last snapshot
	repairs        atomic.Uint64 // active: repair transactions sent after refusals
	unrepaired     atomic.Uint64 // active: refused commits no longer in the replay log
	staleStreams   atomic.Uint64 // standby: streams refused as of an older generation
}

// Store returns a read view of the node's objects: on a standby, the mirror
// to read and subscribe to. Writes go through Begin.
func (n *Node) Store() *objstore.View { return n.store.View() }

// Role returns the node's current role.
func (n *Node) Role() Role { return n.view.Load().role }

// OnRoleChange registers fn to be called after every role change, on the
// node's delivery goroutine (in order with subscribers and message
// handlers), never on the goroutine that changed the role: fn may call any
// method of the Node, Close included.
func (n *Node) OnRoleChange(fn func(RoleChange)) {
	n.own.do(func() { n.hooks = append(n.hooks, fn) })
}

// RegisterStatic registers a static object (see objstore.Store.RegisterStatic)
// on either role: both nodes register their own under the same names.
//
// The node runs from NewNode on, so a standby may receive a snapshot that
// names a static before this call registers it: it then refuses the snapshot
// and asks for another, which costs a resync. Config.Statics registers them
// before the session starts and avoids that.
func (n *Node) RegisterStatic(name string, obj any) error {
	if err := n.store.RegisterStatic(name, obj); err != nil {
		return wrap("register static", err)
	}
	return nil
}

// NewGroup creates an object group on the active.
func (n *Node) NewGroup(name, prefix string) (*objstore.Group, error) {
	g, err := n.store.NewGroup(name, prefix)
	if err != nil {
		return nil, wrap("new group", err)
	}
	return g, nil
}

// Subscribe calls fn for every change applied to this standby's mirror, in
// order, after each transaction applies, on the node's delivery goroutine.
// fn may read the changed objects and call any method of the Node (Promote
// and Close included); the mirror is not written while it runs. It returns a
// function that cancels the subscription.
func (n *Node) Subscribe(fn func(objstore.Change)) (cancel func()) { return n.store.Subscribe(fn) }

// SubscribeGroup is Subscribe restricted to the objects of one group.
func (n *Node) SubscribeGroup(name string, fn func(objstore.Change)) (cancel func()) {
	return n.store.SubscribeGroup(name, fn)
}

// OnMessage sets the handler of the active's opaque messages (Txn.Message),
// called on the standby in order as their transactions apply, on the
// delivery goroutine as Subscribe's callbacks are.
func (n *Node) OnMessage(fn func(name string, msg any)) { n.store.OnMessage(fn) }

// Get returns the object with the given ID. On a standby the mirror is
// written in place: read the object's fields in a subscriber, or look it up
// with Store().ReadWith (Get inside Read would take the read lock twice).
func (n *Node) Get(id uint64) (any, bool) { return n.store.Get(id) }

// Read runs fn with no transaction half-applied (see objstore.View.Read).
func (n *Node) Read(fn func()) { n.store.Read(fn) }

// foDriver runs the failover module for a Node: one heartbeat runner per
// path (each on a locked OS thread of its own), and one goroutine, run, that
// owns the failover core, feeds it the paths' verdicts, the peer's announces
// and the node's sync progress, and carries out its actions on the Node.
// Work that may block (the fencing hook, draining, demotion) runs on a
// goroutine of its own and answers through results, so run always keeps
// listening to the heartbeats.
type foDriver struct {
	n     *Node
	cfg   FailoverConfig
	log   *slog.Logger
	state failover.FileStore
	inc   uint64 // this incarnation's, persisted at start

	core   *failover.Core // run's
	paths  []*heartbeat.Runner
	links  []l2transport.Link // the paths' links, closed with them
	beacon *beacon            // FailoverConfig.Beacon's, or nil

	results chan func(now time.Time) // answers of off-loop work, applied by run
	switchc chan chan error          // Switchover requests
	aborted chan error               // a switchover the core called off, for its waiter
	status  atomic.Pointer[failover.Status]
	work    sync.WaitGroup
}

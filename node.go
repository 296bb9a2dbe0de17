// Package swha keeps a standby network switch's control plane a hot mirror
// of the active one. Node is the embedding API: an application registers its
// types in an objstore.Registry, starts a Node on the HA link, and commits
// transactions on the active; the standby's Node holds an exact copy that the
// application there can read and subscribe to.
//
// See docs/NODE.md for the commit modes, the acknowledgement message and the
// snapshot a joining standby receives.
package swha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/objstore"
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
	// acknowledgement when the standby went silent. The transaction is
	// committed on the active; whether the standby applied it is unknown.
	ErrStandbyLost = errors.New("swha: standby lost before acknowledging")
	// ErrParticipant: a coordinated transaction's participant that already
	// committed its part, or one participant too many.
	ErrParticipant = errors.New("swha: bad coordinated transaction participant")
)

// DefaultWindow is Config.Window when zero.
const DefaultWindow = 1024

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
	// Role is the role at start. It changes only through Promote (and, later,
	// the failover module).
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
// l2transport.Conn. On the active, each commit's records go to the standby
// as session messages carrying the transaction ID; on the standby, the
// session's messages feed the store's Apply and each applied commit is
// acknowledged (see ack.go).
type Node struct {
	// afterRefusedApply, when set by a test, runs between a refused Apply and
	// the standby marking itself as needing a snapshot: the window in which an
	// ack must not go out.
	afterRefusedApply func()

	cfg   Config
	log   *slog.Logger
	store *objstore.Store
	conn  *l2transport.Conn

	// wsem is the write path: one transaction or snapshot at a time. A
	// channel rather than a mutex so that Begin can give up with its ctx.
	wsem chan struct{}

	mu        sync.Mutex
	role      Role
	peerUp    bool          // active: the session to a standby is up
	streaming bool          // active: a snapshot went out on this stream; records may follow
	snapTxn   uint64        // active: the last snapshot sent
	committed uint64        // active: seq of the last commit
	acked     uint64        // active: highest seq the standby applied on a snapshot of ours
	lastAck   ack           // active: the last acknowledgement received, matched or not
	progress  chan struct{} // closed and replaced when acked or peerUp changes
	hooks     []func(RoleChange)
	// Active: what the standby refused (skew.go). refused maps the seq of
	// each refused commit on the current stream to the standby's reason;
	// refusedSnap is set while the standby refuses our latest snapshot;
	// staleIDs are objects whose next update must carry every field.
	refused     map[uint64]string
	refusedTrim uint64 // acked seq from which refused is trimmed again
	refusedSnap string
	lastRefusal string
	staleIDs    []uint64
	repairs     []repairReq // refused commits to mend, oldest first
	// repairBad (write path) lists, per repair commit, the objects it left
	// out; a refused repair leaves them out again, plus the new one.
	repairBad map[uint64][]uint64
	peerSkew  []objstore.SkewReport

	sink batchSink // owned by the write path

	applyMu sync.Mutex // standby: Apply versus Promote
	// Standby: the store's staged and held counts as of the last applied
	// message, so that Stats needs no applyMu (a subscriber, which runs
	// under it, may call Stats).
	stagedN, heldN atomic.Int64
	refusals       []refusal // standby, under applyMu: to send before the next ack

	// Standby: a hello is owed to the active, saying where our state
	// stands (helloSnap, helloApplied, under applyMu).
	helloOwed               atomic.Bool
	helloSnap, helloApplied uint64

	// Active: resuming a standby from its seq (resume.go). replay belongs
	// to the write path; the rest is under mu.
	replay                 replayLog
	awaitHello, needResume bool
	helloGen               uint64 // which stream's hello the fallback timer waits for
	sentSnapOrder          []uint64
	snapRefusal            refusal // a refusal of a snapshot not yet recorded as sent
	resumeSnap, resumeFrom uint64
	sentSnaps              map[uint64]uint64 // snapshot txn → seq it carried

	needSnap atomic.Bool   // active: the peer needs a snapshot; standby: ask for one
	syncKick chan struct{} // wakes syncLoop (active) or ackLoop (standby)
	stats    nodeCounters

	coordMu   sync.Mutex
	coordNext uint64
	// coordPartial counts coordinated transactions with some parts
	// committed and some not. A snapshot waits until it is zero: one taken
	// in between would carry the committed parts while the standby, which
	// drops its held queue for a snapshot, waits for ever for the rest.
	coordPartial atomic.Int64

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
}

// NewNode builds the store, starts the session over cfg.Link and returns the
// running node.
func NewNode(cfg Config) (*Node, error) {
	switch {
	case cfg.Link == nil:
		return nil, errors.New("swha: new node: Link is required")
	case cfg.Registry == nil:
		return nil, errors.New("swha: new node: Registry is required")
	case cfg.Role != Active && cfg.Role != Standby:
		return nil, fmt.Errorf("swha: new node: role %v is neither Active nor Standby", cfg.Role)
	}
	if cfg.Mode == 0 {
		cfg.Mode = Sync
	}
	if cfg.Mode != Sync && cfg.Mode != Async {
		return nil, fmt.Errorf("swha: new node: commit mode %v", cfg.Mode)
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		cfg:      cfg,
		log:      log.With("node", cfg.NodeID),
		wsem:     make(chan struct{}, 1),
		role:     cfg.Role,
		progress: make(chan struct{}),
		syncKick: make(chan struct{}, 1),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.sink.n = n
	n.replay.max = cfg.ReplayBytes
	if n.replay.max == 0 {
		n.replay.max = DefaultReplayBytes
	}
	st, err := objstore.NewStore(cfg.Registry, objstore.Config{
		Sink: &n.sink,
		// A checkpoint loads into a standby store; an active promotes it.
		Standby:     cfg.Role == Standby || cfg.Checkpoint != "",
		MaxTxnBytes: cfg.MaxTxnBytes,
		SizeHint:    cfg.SizeHint,
		// Unique across incarnations: acks name snapshot txn IDs.
		FirstTxnID: uint64(cfg.Epoch) << 32,
		// Handlers run after onMessage releases applyMu (runHandlers).
		DeferNotify: true,
	})
	if err != nil {
		return nil, fmt.Errorf("swha: new node: %w", err)
	}
	n.store = st
	for name, obj := range cfg.Statics {
		if err := st.RegisterStatic(name, obj); err != nil {
			return nil, fmt.Errorf("swha: new node: %w", err)
		}
	}
	if cfg.Checkpoint != "" {
		if err := n.loadCheckpoint(cfg.Checkpoint); err != nil {
			return nil, fmt.Errorf("swha: new node: %w", err)
		}
	}
	if cfg.Role == Standby && st.SnapshotID() == 0 {
		// Nothing of a stream counts until the active's snapshot on it.
		st.AwaitSnapshot()
	}
	sc := cfg.Session
	sc.LocalNodeID, sc.PeerNodeID, sc.Epoch = cfg.NodeID, cfg.PeerNodeID, cfg.Epoch
	n.conn, err = l2transport.NewConn(cfg.Link, sc,
		l2transport.WithHandler(n.onMessage),
		l2transport.WithEventHandler(n.onEvent),
		l2transport.WithLogger(log))
	if err != nil {
		n.cancel()
		return nil, fmt.Errorf("swha: new node: %w", err)
	}
	n.wg.Add(1)
	go n.loop()
	return n, nil
}

// Close stops the node and closes its link. Open transactions are left as
// they are. Called from a subscriber or message handler, it stops the node
// and returns at once; the node's goroutines end when the handler returns.
func (n *Node) Close() error {
	if inHandler() {
		// The delivery goroutine is this one: stop the node and let another
		// goroutine wait for this handler to return.
		n.cancel()
		go n.Close()
		return nil
	}
	var err error
	n.once.Do(func() {
		n.cancel()
		err = n.conn.Close()
		n.wg.Wait()
		n.mu.Lock()
		n.peerUp = false
		n.bump()
		n.mu.Unlock()
	})
	return err
}

// Store returns the node's object store: on a standby, the mirror to read
// (Get, Each, Read) and subscribe to (Subscribe, SubscribeGroup, OnMessage).
// Its write path belongs to the Node: use Begin, not Store().Begin.
func (n *Node) Store() *objstore.Store { return n.store }

// Role returns the node's current role.
func (n *Node) Role() Role {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.role
}

// OnRoleChange registers fn to be called, on the goroutine that changed the
// role, after every role change.
func (n *Node) OnRoleChange(fn func(RoleChange)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hooks = append(n.hooks, fn)
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
		return fmt.Errorf("swha: %w", err)
	}
	return nil
}

// NewGroup creates an object group on the active.
func (n *Node) NewGroup(name, prefix string) (*objstore.Group, error) {
	g, err := n.store.NewGroup(name, prefix)
	if err != nil {
		return nil, fmt.Errorf("swha: %w", err)
	}
	return g, nil
}

// bump wakes everything waiting on acknowledgement progress. Called with
// n.mu held.
func (n *Node) bump() {
	close(n.progress)
	n.progress = make(chan struct{})
}

func (n *Node) kick() {
	select {
	case n.syncKick <- struct{}{}:
	default:
	}
}

// Stats is a snapshot of a node's replication state.
type Stats struct {
	Role Role
	Mode CommitMode
	// PeerUp: the session to the peer is established and not silent.
	PeerUp bool
	// Streaming (active): the peer has been sent a snapshot on the current
	// stream and receives every commit.
	Streaming bool
	// CommittedSeq (active): seq of the last commit. AckedSeq: the last
	// seq the standby said it applied.
	CommittedSeq, AckedSeq uint64
	// Window is the asynchronous in-flight bound; InFlight the transactions
	// committed and not yet acknowledged (0 when solo: nothing is owed).
	Window, InFlight int
	// WindowWaits counts commits that waited for room in the window.
	WindowWaits uint64
	// Snapshots (active) sent; ResyncRequests (standby) asked for.
	Snapshots, ResyncRequests uint64
	// Standby: seq of the last commit applied, transactions staged (commit
	// not yet received) and held (behind an incomplete coordinated one),
	// and Apply errors (each one asks for a resync).
	AppliedSeq          uint64
	Staged, Held        int
	ApplyErrors         uint64
	AwaitingSnapshot    bool
	Session             l2transport.SessionStats
	ObjectCount         int
	StandbySnapshotTxn  uint64
	ActiveSnapshotTxnID uint64
	// Version skew. Active: PeerRefusals counts transactions the standby
	// refused because its version cannot hold a value (each also fails a
	// synchronous Commit with ErrPeerRefused), LastPeerRefusal is the
	// standby's reason for the last one, and StandbyRefusedSnapshot says the
	// standby refused the current snapshot and mirrors nothing until a
	// commit fixes the value. Standby: Refused counts what it refused.
	PeerRefusals           uint64
	LastPeerRefusal        string
	StandbyRefusedSnapshot bool
	Refused                uint64
	// Replays (active) counts standbys resumed from their seq with the
	// commits after it instead of a snapshot; BadCheckpoints counts
	// checkpoints that could not be loaded at start.
	Replays, BadCheckpoints uint64
	// Leaks (active) is how many dynamic objects no static root or group
	// reached at the last snapshot (see Node.Leaks).
	Leaks uint64
	// Repairs (active) counts transactions sent to mend what the standby
	// refused; Unrepaired counts refused commits that could not be mended
	// because the replay log no longer held them (their objects may
	// differ on the standby until next updated, or the next snapshot).
	Repairs, Unrepaired uint64
}

// Stats returns the node's counters and gauges.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	s := Stats{
		Role:                   n.role,
		Mode:                   n.cfg.Mode,
		PeerUp:                 n.peerUp,
		Streaming:              n.streaming,
		CommittedSeq:           n.committed,
		AckedSeq:               n.acked,
		Window:                 n.cfg.Window,
		ActiveSnapshotTxnID:    n.snapTxn,
		LastPeerRefusal:        n.lastRefusal,
		StandbyRefusedSnapshot: n.refusedSnap != "",
	}
	if n.role == Active && n.peerUp && n.committed > n.acked {
		s.InFlight = int(n.committed - n.acked)
	}
	n.mu.Unlock()
	s.WindowWaits = n.stats.windowWaits.Load()
	s.Snapshots = n.stats.snapshots.Load()
	s.ResyncRequests = n.stats.resyncAsks.Load()
	s.ApplyErrors = n.stats.applyErrors.Load()
	s.PeerRefusals = n.stats.peerRefusals.Load()
	s.Refused = n.stats.refused.Load()
	s.Replays = n.stats.replays.Load()
	s.BadCheckpoints = n.stats.badCheckpoints.Load()
	s.Leaks = n.stats.leaks.Load()
	s.Repairs = n.stats.repairs.Load()
	s.Unrepaired = n.stats.unrepaired.Load()
	s.AppliedSeq = n.store.AppliedSeq()
	s.AwaitingSnapshot = n.store.AwaitingSnapshot()
	s.StandbySnapshotTxn = n.store.SnapshotID()
	s.ObjectCount = n.store.Len()
	if s.Role == Standby {
		s.Staged, s.Held = int(n.stagedN.Load()), int(n.heldN.Load())
	}
	s.Session = n.conn.Stats()
	return s
}

// onEvent follows the session. On the active, a new stream (first
// handshake, a restarted standby) or a peer heard again after silence needs
// a snapshot before live records make sense to it; silence makes the active
// solo. On the standby, a new stream means waiting for that snapshot.
func (n *Node) onEvent(ev l2transport.Event) {
	n.mu.Lock()
	role := n.role
	switch ev.Kind {
	case l2transport.EventEstablished, l2transport.EventPeerRestarted, l2transport.EventPeerAlive:
		n.peerUp = true
		n.streaming = false
		n.needResume = false
		n.lastAck = ack{}
	case l2transport.EventPeerSilent:
		n.peerUp = false
		n.streaming = false
	}
	n.bump()
	n.mu.Unlock()
	n.log.Info("peer event", "event", ev.Kind.String(), "role", role.String(), "peer", ev.PeerNodeID, "peer_epoch", ev.PeerEpoch)
	if ev.Kind == l2transport.EventPeerSilent {
		return
	}
	if role == Active {
		if ev.Kind == l2transport.EventPeerAlive {
			// Same session, after silence: the standby awaits a snapshot.
			n.needSnap.Store(true)
			n.kick()
			return
		}
		// A new stream: the standby's hello says what it needs.
		n.expectHello()
		return
	}
	n.applyMu.Lock()
	if ev.Kind == l2transport.EventPeerAlive {
		n.store.AwaitSnapshot()
		n.notePending()
		n.applyMu.Unlock()
		return
	}
	// A new stream: tell the active which version we run and what we hold,
	// so that it can replay from there rather than send everything.
	n.helloSnap, n.helloApplied = n.store.ResumeStream()
	n.notePending()
	n.applyMu.Unlock()
	n.helloOwed.Store(true)
	n.kick()
}

// onMessage takes one session message: records on a standby,
// acknowledgements on an active.
func (n *Node) onMessage(m l2transport.Message) {
	if len(m.Data) == 0 {
		return
	}
	switch m.Data[0] {
	case ackKind:
		n.onAck(m.Data)
		return
	case refusalKind:
		n.onRefusal(m.Data)
		return
	case helloKind:
		n.onHello(m.Data)
		return
	}
	n.applyMu.Lock()
	if n.Role() != Standby || n.ctx.Err() != nil {
		// A promoted node no longer takes the old active's stream; a closed
		// one (a handler may close it mid-batch) takes nothing.
		n.applyMu.Unlock()
		return
	}
	err := n.store.Apply(m.Data)
	if err != nil && n.afterRefusedApply != nil {
		n.afterRefusedApply()
	}
	// A transaction refused for version skew consumed its seq and is
	// reported to the active; the stream goes on. Anything else means the
	// mirror lost track.
	lostTrack := n.takeRefusals()
	if err != nil && (lostTrack || !errors.Is(err, objstore.ErrNotRepresentable)) && !n.store.AwaitingSnapshot() {
		// The mirror missed or refused a transaction the active committed:
		// it can no longer follow the stream, so start over from a snapshot.
		n.store.AwaitSnapshot()
		n.needSnap.Store(true)
		n.stats.applyErrors.Add(1)
		n.stats.resyncAsks.Add(1)
		n.log.Warn("standby apply failed; asking for a snapshot", "err", err)
	}
	n.notePending()
	n.applyMu.Unlock()
	n.kick()
	n.runHandlers()
}

// runHandlers calls the subscribers and the message handler for what the
// last Apply applied, on the delivery goroutine with no lock held: a handler
// may call Promote, or Close (see inHandler).
//
//go:noinline
func (n *Node) runHandlers() { n.store.Notify() }

// inHandler reports whether the calling goroutine is running a handler
// (runHandlers is on its stack). Close, called from there, must not wait for
// the delivery goroutine: it would wait for itself. Go has no goroutine
// identity, but the stack says it.
func inHandler() bool {
	want := runtime.FuncForPC(reflect.ValueOf((*Node).runHandlers).Pointer()).Name()
	pcs := make([]uintptr, 1024)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		if f.Function == want {
			return true
		}
		if !more {
			return false
		}
	}
}

// notePending publishes the store's staged and held counts for Stats. The
// caller holds applyMu.
func (n *Node) notePending() {
	n.stagedN.Store(int64(n.store.Staged()))
	n.heldN.Store(int64(n.store.Held()))
}

// loop is the node's background goroutine: on the active it sends
// snapshots when the peer needs one; on the standby it acknowledges what was
// applied. Acknowledging from here rather than from the delivery goroutine
// coalesces acknowledgements under load (one per wake-up, not one per
// commit) without delaying an idle stream's.
func (n *Node) loop() {
	defer n.wg.Done()
	var sent ack
	var lastSnap time.Time
	for {
		select {
		case <-n.syncKick:
		case <-n.ctx.Done():
			return
		}
		if n.Role() == Active {
			n.mu.Lock()
			resume, repair := n.needResume, len(n.repairs) > 0
			n.mu.Unlock()
			if repair {
				if err := n.runRepairs(); err != nil && n.ctx.Err() == nil {
					n.log.Warn("repair of a refused transaction failed", "err", err)
				}
			}
			if resume {
				done, err := n.sendReplay()
				if err != nil && n.ctx.Err() == nil {
					n.log.Warn("replay to standby failed", "err", err)
				}
				if !done {
					n.needSnap.Store(true) // the log no longer reaches back that far
				}
			}
			if !n.needSnap.Load() {
				continue
			}
			// A standby that keeps refusing snapshots must not make the
			// active spin.
			if wait := time.Until(lastSnap.Add(minSnapshotGap)); wait > 0 {
				select {
				case <-time.After(wait):
				case <-n.ctx.Done():
					return
				}
			}
			lastSnap = time.Now()
			if err := n.sendSnapshot(); err != nil && n.ctx.Err() == nil {
				n.log.Warn("snapshot to standby failed", "err", err)
			}
			continue
		}
		// Read the applied state under applyMu: Apply moves the applied seq
		// past a transaction it refused (the seq is consumed) and only then,
		// still under applyMu, onMessage marks the mirror as needing a
		// snapshot. Reading in between would acknowledge a transaction the
		// standby does not hold, and a sync Commit on the active would
		// return for it.
		n.applyMu.Lock()
		a := ack{snap: n.store.SnapshotID(), seq: n.store.AppliedSeq()}
		if n.needSnap.Load() {
			a = ack{flags: ackNeedSnapshot}
		}
		// Refusals go before the ack that covers their seqs.
		refusals := n.refusals
		n.refusals = nil
		n.applyMu.Unlock()
		for _, r := range refusals {
			if err := n.conn.Send(n.ctx, r.append(nil), 0); err != nil && n.ctx.Err() == nil {
				n.log.Warn("send refusal failed", "err", err)
			}
		}
		if n.helloOwed.Swap(false) {
			n.applyMu.Lock()
			h := appendHello(nil, n.helloSnap, n.helloApplied, n.store.Registry())
			n.applyMu.Unlock()
			if err := n.conn.Send(n.ctx, h, 0); err != nil && n.ctx.Err() == nil {
				n.log.Warn("send hello failed", "err", err)
				n.helloOwed.Store(true)
			}
		}
		if a == sent {
			continue
		}
		if err := n.conn.Send(n.ctx, a.append(nil), 0); err != nil {
			if n.ctx.Err() == nil {
				n.log.Warn("send applied-ack failed", "err", err)
			}
			continue
		}
		if a.flags&ackNeedSnapshot != 0 {
			n.needSnap.Store(false)
		}
		sent = a
	}
}

// rememberSnapshot records a snapshot this active sent (or wrote into a
// checkpoint) and the seq it carried, for resuming a standby that holds
// it; only the last 64 are kept. The caller holds n.mu.
func (n *Node) rememberSnapshot(txn, seq uint64) {
	if n.sentSnaps == nil {
		n.sentSnaps = map[uint64]uint64{}
	}
	n.sentSnaps[txn] = seq
	n.sentSnapOrder = append(n.sentSnapOrder, txn)
	if len(n.sentSnapOrder) > 64 {
		delete(n.sentSnaps, n.sentSnapOrder[0])
		n.sentSnapOrder = n.sentSnapOrder[1:]
	}
}

// minSnapshotGap spaces snapshots to one standby.
const minSnapshotGap = 50 * time.Millisecond

// sendSnapshot sends the whole committed state as one transaction, between
// two commits (it takes the write path), and from then on streams every
// commit.
func (n *Node) sendSnapshot() error {
	select {
	case n.wsem <- struct{}{}:
	case <-n.ctx.Done():
		return ErrClosed
	}
	defer func() { <-n.wsem }()
	if !n.needSnap.Load() {
		return nil
	}
	if k := n.coordPartial.Load(); k > 0 {
		// Its last part kicks the loop again (Coordinated.settle).
		n.log.Warn("snapshot deferred until coordinated transactions complete", "incomplete", k)
		return nil
	}
	if !n.needSnap.Swap(false) {
		return nil
	}
	n.mu.Lock()
	up := n.peerUp && n.role == Active
	if up {
		// Records from here on are part of the snapshot and what follows.
		n.streaming = true
		// A new stream: what the standby refused of the old one is moot
		// (refused seqs stay: seqs are never reused, and a slow waiter
		// may still look its own up). The snapshot decides the stream.
		n.refusedSnap = ""
		n.awaitHello, n.needResume = false, false
	}
	n.mu.Unlock()
	if !up {
		return nil
	}
	n.sink.begin(n.ctx, 0)
	txn, err := n.store.Snapshot()
	if err == nil {
		err = n.sink.flush()
	}
	n.mu.Lock()
	n.snapTxn = txn
	if err == nil {
		// Counted before the unlock: the standby may acknowledge it (and a
		// waiter return) before this goroutine runs again.
		n.stats.snapshots.Add(1)
		n.rememberSnapshot(txn, n.store.Seq())
		if n.snapRefusal.txn == txn {
			// The standby refused it before we got here.
			n.refusedSnap = n.snapRefusal.text
			n.streaming = false
		}
	}
	if n.lastAck.snap == txn && n.lastAck.seq > n.acked {
		n.acked = n.lastAck.seq // the ack overtook us
	}
	// Wake WaitSynced even when no seq advanced: the standby's first ack of
	// this snapshot may have arrived before snapTxn was set, and on a fresh
	// stream that ack (seq 0) is all the waiter is waiting for.
	n.bump()
	n.mu.Unlock()
	if err != nil {
		n.needSnap.Store(true)
		return fmt.Errorf("swha: snapshot: %w", err)
	}
	n.log.Info("snapshot sent to standby", "txn", txn, "objects", n.store.Len(), "seq", n.store.Seq())
	// As the seed library does during bulk sync: report objects nothing
	// reaches any more, which the application probably forgot to delete.
	// They are replicated all the same; nothing is freed.
	if d := n.store.SnapshotDangling(); d > 0 {
		n.log.Warn("snapshot sent pointers to deleted objects as nil", "count", d)
	}
	leaks := n.store.Leaks()
	n.stats.leaks.Store(uint64(len(leaks)))
	if len(leaks) > 0 {
		n.log.Warn("unreachable dynamic objects (not in a group, no pointer from a root)", "count", len(leaks), "first", leaks[:min(len(leaks), 5)])
	}
	return nil
}

// onAck takes a standby's applied-ack (active role).
func (n *Node) onAck(b []byte) {
	a, err := parseAck(b)
	if err != nil {
		n.log.Warn("dropped bad applied-ack", "err", err)
		return
	}
	if a.flags&ackNeedSnapshot != 0 {
		// Stop streaming until the snapshot: the standby drops records
		// anyway, and a commit waiting for room in the window (holding the
		// write path the snapshot needs) must not wait for acks that will
		// not come.
		n.mu.Lock()
		n.streaming = false
		n.bump()
		n.mu.Unlock()
		n.needSnap.Store(true)
		n.kick()
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lastAck = a
	if n.role == Active && a.snap == n.snapTxn && a.seq > n.acked {
		n.acked = a.seq
		// Waiters check refusals once acked passes their seq; keep a
		// generous tail for the slow ones and bound the rest. Trimming
		// scans the map, so it runs once per 4096 acknowledged commits,
		// not on every ack: a standby refusing most commits (a skewed
		// upgrade) keeps more than 4096 entries live.
		if len(n.refused) > 4096 && n.acked >= n.refusedTrim {
			for seq := range n.refused {
				if seq+uint64(n.cfg.Window)+4096 < n.acked {
					delete(n.refused, seq)
				}
			}
			n.refusedTrim = n.acked + 4096
		}
	}
	n.bump() // WaitSynced also waits for the first ack of a snapshot

}

// Promote turns a standby into the active: it stops taking the stream,
// applies nothing more, discards the transactions whose commit never came
// (and any held behind an incomplete coordinated transaction) and returns
// their intents, builds the store's active-side indexes, and calls the
// role-change hooks. The node is then solo until a standby joins (a new
// session epoch from the peer brings a snapshot to it).
func (n *Node) Promote() ([][]byte, error) {
	n.applyMu.Lock()
	defer n.applyMu.Unlock()
	n.mu.Lock()
	if n.role != Standby {
		n.mu.Unlock()
		return nil, fmt.Errorf("swha: promote: %w", ErrNotStandby)
	}
	n.mu.Unlock()
	intents, err := n.store.Promote()
	if err != nil {
		return nil, fmt.Errorf("swha: promote: %w", err)
	}
	n.mu.Lock()
	n.role = Active
	n.peerUp, n.streaming = false, false
	n.committed, n.acked = n.store.Seq(), n.store.Seq()
	// What this node sent in an earlier term as active says nothing about
	// the stream it starts now; a standby resumes only from this term's
	// snapshots and commits. (No commit runs on a standby, so the log is
	// not being written.)
	n.sentSnaps, n.sentSnapOrder = nil, nil
	n.replay = replayLog{max: n.replay.max}
	hooks := append([]func(RoleChange){}, n.hooks...)
	n.bump()
	n.mu.Unlock()
	n.needSnap.Store(false)
	n.log.Info("promoted to active", "seq", n.store.Seq(), "objects", n.store.Len(), "discarded_intents", len(intents))
	rc := RoleChange{From: Standby, To: Active, Intents: intents}
	for _, fn := range hooks {
		fn(rc)
	}
	return intents, nil
}

// WaitSynced waits until a standby holds everything this active node has
// committed: the session is up, the standby has applied a snapshot on the
// current stream, and it has acknowledged the last commit. An application
// uses it to know that redundancy is (re-)established, for example before a
// planned switchover.
func (n *Node) WaitSynced(ctx context.Context) error {
	for {
		n.mu.Lock()
		if n.role != Active {
			n.mu.Unlock()
			return fmt.Errorf("swha: wait synced: %w", ErrNotActive)
		}
		done := n.peerUp && n.streaming && n.snapTxn != 0 && n.lastAck.snap == n.snapTxn && n.acked >= n.committed
		ch := n.progress
		n.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("swha: wait synced: %w", ctx.Err())
		case <-n.ctx.Done():
			return ErrClosed
		}
	}
}

// Subscribe calls fn for every change applied to this standby's mirror, in
// order, after each transaction applies (see objstore.Store.Subscribe: fn
// may read objects but must not call the store). It returns a function that
// cancels the subscription.
func (n *Node) Subscribe(fn func(objstore.Change)) (cancel func()) { return n.store.Subscribe(fn) }

// SubscribeGroup is Subscribe restricted to the objects of one group.
func (n *Node) SubscribeGroup(name string, fn func(objstore.Change)) (cancel func()) {
	return n.store.SubscribeGroup(name, fn)
}

// OnMessage sets the handler of the active's opaque messages (Txn.Message),
// called on the standby in order as their transactions apply.
func (n *Node) OnMessage(fn func(name string, msg any)) { n.store.OnMessage(fn) }

// Get returns the object with the given ID. On a standby, use it inside
// Read or a subscriber: the mirror is written in place.
func (n *Node) Get(id uint64) (any, bool) { return n.store.Get(id) }

// Read runs fn with no transaction half-applied (see objstore.Store.Read).
func (n *Node) Read(fn func()) { n.store.Read(fn) }

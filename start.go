package swha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/swha/swha/internal/replica"
	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/objstore"
)

// NewNode builds the store, starts the session over cfg.Link and returns the
// running node.
func NewNode(cfg Config) (*Node, error) {
	switch {
	case cfg.Link == nil:
		return nil, errors.New("swha: new node: Link is required")
	case cfg.Registry == nil:
		return nil, errors.New("swha: new node: Registry is required")
	case cfg.Failover == nil && cfg.Role != Active && cfg.Role != Standby:
		return nil, fmt.Errorf("swha: new node: role %v is neither Active nor Standby", cfg.Role)
	}
	if cfg.Mode == 0 {
		cfg.Mode = Sync
	}
	if cfg.Mode != Sync && cfg.Mode != Async && cfg.Mode != Strict {
		return nil, fmt.Errorf("swha: new node: commit mode %v", cfg.Mode)
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	link := cfg.Link
	var fo *foDriver
	if cfg.Failover != nil {
		// The failover module elects the role and owns the epoch: the node
		// starts as a standby until it is told otherwise.
		var epoch uint32
		var err error
		fo, link, epoch, err = newFailover(&cfg, log.With("node", cfg.NodeID))
		if err != nil {
			return nil, fmt.Errorf("swha: new node: failover: %w", err)
		}
		cfg.Role, cfg.Epoch = Standby, epoch
	}
	failLink := func(err error) (*Node, error) {
		if fo != nil {
			fo.closePaths(false)
			if link != cfg.Link {
				link.Close() // the Demux's rest: with the heartbeats' gone, it closes cfg.Link
			}
		}
		return nil, fmt.Errorf("swha: new node: %w", err)
	}
	fail := failLink
	if cfg.Session.Keyring == nil {
		// Said once per node: a link without a key ring lets anyone on it
		// speak as the peer (docs/WIRE.md, authentication).
		log.Warn("the HA link runs without a key ring: frames are neither authenticated nor protected against forgery", "node", cfg.NodeID)
	}
	n := &Node{
		fo:       fo,
		cfg:      cfg,
		log:      log.With("node", cfg.NodeID),
		write:    newWritePath(),
		role:     cfg.Role,
		progress: make(chan struct{}),
		wake:     make(chan struct{}, 1),
		replay:   replica.NewLog(cfg.ReplayBytes),
	}
	n.own = newOwner(n.publish)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.sink.on, n.sink.log = &n.streamOn, n.replay
	st, err := objstore.NewStore(cfg.Registry, objstore.Config{
		Sink: &n.sink,
		// A checkpoint loads into a standby store; an active promotes it.
		Standby:     cfg.Role == Standby || cfg.Checkpoint != "",
		MaxTxnBytes: cfg.MaxTxnBytes,
		SizeHint:    cfg.SizeHint,
		// Unique across incarnations: acks name snapshot txn IDs.
		FirstTxnID: uint64(cfg.Epoch) << 32,
		// Subscribers run on the delivery goroutine (standby.go).
		DeferNotify: true,
	})
	if err != nil {
		n.cancel()
		return fail(err)
	}
	n.store, n.repl = st, st
	fail = func(err error) (*Node, error) {
		_ = st.Close() // its arenas: nothing holds their objects yet
		return failLink(err)
	}
	for name, obj := range cfg.Statics {
		if err := st.RegisterStatic(name, obj); err != nil {
			n.cancel()
			return fail(err)
		}
	}
	if cfg.Checkpoint != "" {
		if err := n.loadCheckpoint(cfg.Checkpoint); err != nil {
			n.cancel()
			return fail(err)
		}
	}
	if cfg.Role == Active {
		n.act = replica.NewActive(cfg.Window, st.Seq())
	} else {
		n.sby = replica.NewStandby()
		if st.SnapshotID() == 0 {
			// Nothing of a stream counts until the active's snapshot on it.
			st.AwaitSnapshot()
		}
	}
	n.publish() // before any goroutine: the owner's from now on
	n.user = newDeliverer()
	// The owner before the Conn, whose events need it from the start.
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.own.run()
	}()
	sc := cfg.Session
	sc.LocalNodeID, sc.PeerNodeID, sc.Epoch = cfg.NodeID, cfg.PeerNodeID, cfg.Epoch
	if sc.SendBuffer == 0 {
		sc.SendBuffer = DefaultSessionSendBuffer
	}
	n.conn, err = l2transport.NewConn(link, sc,
		l2transport.WithHandler(n.onMessage),
		l2transport.WithEventHandler(n.onEvent),
		l2transport.WithLogger(log))
	if err != nil {
		n.cancel()
		close(n.own.stop)
		n.user.stop()
		return fail(err)
	}
	n.sink.conn = n.conn
	n.wg.Add(1)
	go n.loop()
	if fo != nil {
		fo.start(n)
	}
	return n, nil
}

// Close stops the node and closes its link. Open transactions are left as
// they are. It may be called from any goroutine, a subscriber or role-change
// hook included: it waits for the node's protocol goroutines, none of which
// waits for a callback once the node is closing. A callback running when
// Close is called may still be running when it returns; none starts after.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		if n.fo != nil {
			// Fenced first: the AdminDown makes a hot standby take over at
			// once, and nothing may commit here after that.
			n.fence("closing")
			n.fo.closePaths(true) // then, so that the peer hears this node go
		}
		n.cancel()
		close(n.own.stop)
		n.user.stop()
		err = n.conn.Close()
		n.wg.Wait()
		if n.fo != nil {
			n.fo.work.Wait()
		}
		n.own.do(func() {
			if n.act != nil {
				n.act.Event(replica.Silent, 0, time.Now())
			}
			n.changed()
		})
		// Last: nothing of the node uses the store any more. Arenas still
		// holding objects stay mapped (the application may still read
		// them, and a subscriber may still run); only the kernel tracking
		// goes.
		if cerr := n.store.Close(); cerr != nil {
			if errors.Is(cerr, objstore.ErrArenaLive) {
				n.log.Debug("arenas left mapped at close", "err", cerr)
			} else {
				err = errors.Join(err, fmt.Errorf("swha: close: %w", cerr))
			}
		}
	})
	return err
}

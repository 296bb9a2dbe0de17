package swha_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/swha/swha"
	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/objstore"
)

// NextHop and Route are the application's own types: swha derives their
// schemas by reflection, so the application writes no serialization code.
type NextHop struct {
	Addr  netip.Addr
	Iface string
}

type Route struct {
	Prefix  netip.Prefix
	NextHop *NextHop // replicated as a reference to the standby's own copy
	Metric  uint32
}

// registry registers the application's types; both switches register the
// same types under the same names.
func registry() *objstore.Registry {
	r := objstore.NewRegistry()
	if err := r.Register("nexthop", NextHop{}); err != nil {
		log.Fatal(err)
	}
	if err := r.Register("route", Route{}, objstore.WithIDPrefix("route")); err != nil {
		log.Fatal(err)
	}
	return r
}

// startPair starts an active and a standby node over an in-memory link (on
// real switches each node runs on its own switch, over an
// l2transport.AFPacketLink on the HA interface) and waits until the standby
// mirrors the active.
func startPair(ctx context.Context) (active, standby *swha.Node) {
	la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 1)
	active, err := swha.NewNode(swha.Config{Link: la, Registry: registry(), NodeID: 1, Epoch: 1, Role: swha.Active})
	if err != nil {
		log.Fatal(err)
	}
	standby, err = swha.NewNode(swha.Config{Link: lb, Registry: registry(), NodeID: 2, Epoch: 1, Role: swha.Standby})
	if err != nil {
		log.Fatal(err)
	}
	if err := active.WaitSynced(ctx); err != nil {
		log.Fatal(err)
	}
	return active, standby
}

// An application embeds a Node on each switch: it commits on the active and
// reads the mirror on the standby.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	active, standby := startPair(ctx)
	defer active.Close()
	defer standby.Close()

	hop := &NextHop{Addr: netip.MustParseAddr("192.0.2.1"), Iface: "eth1"}
	route := &Route{Prefix: netip.MustParsePrefix("10.0.0.0/24"), NextHop: hop, Metric: 10}
	tx, err := active.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := tx.Create(hop); err != nil {
		log.Fatal(err)
	}
	id, err := tx.Create(route)
	if err != nil {
		log.Fatal(err)
	}
	// Synchronous mode (the default): Commit returns once the standby has
	// applied the transaction.
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}

	// The application changes its own object and says so; only the changed
	// field travels.
	tx, _ = active.Begin(ctx)
	route.Metric = 20
	_ = tx.Update(route)
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}

	mirror := standby.Store()
	mirror.ReadWith(func(r objstore.Reader) { // no transaction is half-applied in here
		obj, _ := r.Get(id)
		rt := obj.(*Route)
		fmt.Println(r.Name(id), rt.Prefix, "via", rt.NextHop.Addr, rt.NextHop.Iface, "metric", rt.Metric)
	})
	// Output:
	// route-2 10.0.0.0/24 via 192.0.2.1 eth1 metric 20
}

// A standby application subscribes to applied changes, for example to keep
// a warm FIB, and is told when it becomes the active.
func ExampleNode_Subscribe() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	active, standby := startPair(ctx)
	defer active.Close()
	defer standby.Close()

	cancelSub := standby.Subscribe(func(c objstore.Change) {
		switch o := c.Object.(type) {
		case *Route:
			fmt.Println(c.Op, c.Type, o.Prefix, "metric", o.Metric)
		case *NextHop:
			fmt.Println(c.Op, c.Type, o.Iface)
		}
	})
	defer cancelSub()
	// Hooks run on the node's delivery goroutine, after the changes
	// delivered before them.
	promoted := make(chan struct{})
	standby.OnRoleChange(func(rc swha.RoleChange) {
		fmt.Println("now", rc.To, "with", len(rc.Intents), "intents to redo")
		close(promoted)
	})

	hop := &NextHop{Addr: netip.MustParseAddr("192.0.2.1"), Iface: "eth1"}
	route := &Route{Prefix: netip.MustParsePrefix("10.1.0.0/16"), NextHop: hop, Metric: 5}
	tx, _ := active.Begin(ctx)
	_, _ = tx.Create(hop)
	_, _ = tx.Create(route)
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}
	tx, _ = active.Begin(ctx)
	_ = tx.Delete(route)
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}

	// The failover module promotes the standby when the active dies.
	if _, err := standby.Promote(); err != nil {
		log.Fatal(err)
	}
	<-promoted
	// Output:
	// create nexthop eth1
	// create route 10.1.0.0/16 metric 5
	// delete route 10.1.0.0/16 metric 5
	// now active with 0 intents to redo
}

// Several applications sharing one node commit one coordinated transaction:
// the standby applies all parts together once every participant committed.
func ExampleCoordinated() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	active, standby := startPair(ctx)
	defer active.Close()
	defer standby.Close()

	c, err := active.NewCoordinated(2)
	if err != nil {
		log.Fatal(err)
	}
	// The routing daemon's part: asynchronous, since a synchronous commit
	// would wait for the whole coordinated transaction, whose other part
	// comes later.
	tx, _ := c.Begin(ctx, "routing")
	_, _ = tx.Create(&Route{Prefix: netip.MustParsePrefix("10.2.0.0/16")})
	tx.SetMode(swha.Async)
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}
	// The interface manager's part, synchronous: it returns once both parts
	// are applied on the standby.
	tx, _ = c.Begin(ctx, "interfaces")
	_, _ = tx.Create(&NextHop{Iface: "eth2"})
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("standby objects:", standby.Store().Len())
	// Output:
	// standby objects: 2
}

package objstore

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestBadInputs(t *testing.T) {
	p := newPair(t, 4096)
	type Unreg struct{ X int }
	hop := &NextHop{Iface: "eth0"}
	tx, _ := p.act.Begin()
	if _, err := tx.Create(&Unreg{}); !errors.Is(err, ErrUnregistered) || !strings.Contains(err.Error(), "objstore.Unreg") {
		t.Fatalf("create unregistered: %v", err)
	}
	if _, err := tx.Create(Route{}); !errors.Is(err, ErrUnregistered) {
		t.Fatalf("create by value: %v", err)
	}
	if _, err := tx.Create(hop); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Create(hop); !errors.Is(err, ErrExists) {
		t.Fatalf("create twice: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); !errors.Is(err, ErrTxnDone) {
		t.Fatalf("commit twice: %v", err)
	}
	if err := tx.Update(hop); !errors.Is(err, ErrTxnDone) {
		t.Fatalf("update after commit: %v", err)
	}
	base := dump(p.act)
	seq := p.sby.Seq()

	// Pointer to an object that is not in the store: nothing is committed.
	tx, _ = p.act.Begin()
	r := &Route{Prefix: netip.MustParsePrefix("10.0.0.0/8"), NextHop: &NextHop{}}
	if _, err := tx.Create(r); err != nil {
		t.Fatal(err)
	}
	hop.Iface = "eth9"
	_ = tx.Update(hop)
	if err := tx.Commit(); !errors.Is(err, ErrDangling) || !strings.Contains(err.Error(), "NextHop") {
		t.Fatalf("pointer to unregistered object: %v", err)
	}
	if p.sby.Seq() != seq || dump(p.sby) != base {
		t.Fatal("failed commit reached the standby")
	}
	if _, ok := p.act.IDOf(r); ok {
		t.Fatal("failed create stayed in the store")
	}
	// hop's change was rolled back with the transaction; it goes with the next commit.
	tx, _ = p.act.Begin()
	_ = tx.Update(hop)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if dump(p.sby) != dump(p.act) {
		t.Fatal("standby missed a change after a failed commit")
	}

	// Update and delete of a deleted object.
	tx, _ = p.act.Begin()
	_ = tx.Delete(hop)
	if err := tx.Update(hop); !errors.Is(err, ErrDeleted) {
		t.Fatalf("update of object deleted in the same txn: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx, _ = p.act.Begin()
	if err := tx.Update(hop); !errors.Is(err, ErrUnknownObject) {
		t.Fatalf("update of deleted object: %v", err)
	}
	if err := tx.Delete(hop); !errors.Is(err, ErrUnknownObject) {
		t.Fatalf("delete of deleted object: %v", err)
	}
	_ = tx.Abort()
	if err := tx.Abort(); !errors.Is(err, ErrTxnDone) {
		t.Fatalf("abort twice: %v", err)
	}

	// A pointer to an object deleted in the same transaction is dangling.
	tx, _ = p.act.Begin()
	h2 := &NextHop{}
	_, _ = tx.Create(h2)
	_ = tx.Commit()
	tx, _ = p.act.Begin()
	r2 := &Route{NextHop: h2}
	_, _ = tx.Create(r2)
	_ = tx.Delete(h2)
	if err := tx.Commit(); !errors.Is(err, ErrDangling) {
		t.Fatalf("pointer to deleted object: %v", err)
	}
	if _, ok := p.act.IDOf(h2); !ok {
		t.Fatal("delete of a failed transaction took effect")
	}

	// Transaction too large: nothing sent, store unchanged.
	before := len(p.recs)
	tx, _ = p.act.Begin()
	for i := 0; i < 200; i++ {
		if _, err := tx.Create(&Route{Communities: make([]uint32, 10)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); !errors.Is(err, ErrTxnTooLarge) {
		t.Fatalf("large txn: %v", err)
	}
	if len(p.recs) != before || p.act.Len() != 1 {
		t.Fatalf("large txn left %d records, %d objects", len(p.recs)-before, p.act.Len())
	}
	tx, _ = p.act.Begin()
	if err := tx.Intent(make([]byte, 5000)); !errors.Is(err, ErrTxnTooLarge) {
		t.Fatalf("large intent: %v", err)
	}
	_ = tx.Abort()

	// One transaction at a time; a standby refuses Begin; an active refuses Apply.
	tx, _ = p.act.Begin()
	if _, err := p.act.Begin(); !errors.Is(err, ErrTxnOpen) {
		t.Fatalf("second Begin: %v", err)
	}
	_ = tx.Abort()
	if _, err := p.sby.Begin(); !errors.Is(err, ErrNotActive) {
		t.Fatalf("Begin on standby: %v", err)
	}
	if err := p.act.Apply([]byte{recAbort, 1}); !errors.Is(err, ErrNotStandby) {
		t.Fatalf("Apply on active: %v", err)
	}
	if dump(p.sby) != dump(p.act) {
		t.Fatal("standby and active differ at the end")
	}
}

// TestStandbyRejects feeds a standby bad streams: each is refused whole.
func TestStandbyRejects(t *testing.T) {
	p := newPair(t, 0)
	hop := &NextHop{Iface: "a"}
	r := &Route{NextHop: hop}
	tx, _ := p.act.Begin()
	_, _ = tx.Create(hop)
	_, _ = tx.Create(r)
	_ = tx.Commit()
	good := dump(p.sby)
	recs := p.recs

	fresh := func() *Store {
		s, _ := NewStore(testRegistry(t), Config{Standby: true, MaxTxnBytes: 1000})
		return s
	}
	// Records of the create txn without the create of hop: the route's
	// pointer dangles at commit.
	s := fresh()
	var err error
	for _, rec := range recs {
		if rec[0] == recCreate && rec[3] == 1 {
			continue // the create of the NextHop (type 1; one-byte varints)
		}
		if rec[0] == recCommit {
			rec = []byte{recCommit, rec[1], 1, 1}
		}
		if e := s.Apply(rec); e != nil {
			err = e
		}
	}
	if !errors.Is(err, ErrDangling) || s.Len() != 0 {
		t.Fatalf("dangling pointer on standby: %v, %d objects", err, s.Len())
	}
	// A commit whose record count does not match.
	s = fresh()
	for _, rec := range recs[:len(recs)-1] {
		_ = s.Apply(rec)
	}
	if err := s.Apply([]byte{recCommit, 1, 1, 7}); !errors.Is(err, ErrCorrupt) || s.Len() != 0 {
		t.Fatalf("bad count: %v", err)
	}
	// A sequence gap.
	s = fresh()
	if err := s.Apply([]byte{recCommit, 5, 3, 0}); !errors.Is(err, ErrSeqGap) {
		t.Fatalf("seq gap: %v", err)
	}
	// Too large to stage.
	s = fresh()
	for _, rec := range recs[:2] {
		_ = s.Apply(rec)
	}
	if err := s.Apply(append([]byte{recIntent, 1}, make([]byte, 2000)...)); !errors.Is(err, ErrTxnTooLarge) {
		t.Fatalf("stage limit: %v", err)
	}
	if err := s.Apply(recs[len(recs)-1]); !errors.Is(err, ErrTxnTooLarge) || s.Len() != 0 {
		t.Fatalf("commit of an oversized txn: %v", err)
	}
	// Record for an unannounced type, unknown kinds, garbage.
	s = fresh()
	for _, bad := range [][]byte{{}, {99}, {recCreate}, {recSchema, 1, 0xff}, {recGroup, 0}} {
		if err := s.Apply(bad); err == nil {
			t.Fatalf("record %x accepted", bad)
		}
	}
	_ = s.Apply([]byte{recCreate, 1, 5, 77, 0})
	if err := s.Apply([]byte{recCommit, 1, 1, 1}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unannounced type: %v", err)
	}
	if dump(p.sby) != good {
		t.Fatal("pair diverged")
	}
}

func TestMessagePointerToDeletedObject(t *testing.T) {
	p := newPair(t, 0)
	h := &NextHop{}
	tx, _ := p.act.Begin()
	_, _ = tx.Create(h)
	_ = tx.Commit()
	tx, _ = p.act.Begin()
	if err := tx.Message(&Msg{Hop: h}); err != nil {
		t.Fatal(err)
	}
	_ = tx.Delete(h)
	if err := tx.Commit(); !errors.Is(err, ErrDangling) {
		t.Fatalf("message pointing at an object deleted later in its txn: %v", err)
	}
	if _, ok := p.act.IDOf(h); !ok || p.sby.Len() != 1 {
		t.Fatal("failed transaction took effect")
	}
	// An empty transaction sends nothing.
	n := len(p.recs)
	tx, _ = p.act.Begin()
	_ = tx.Sync()
	if err := tx.Commit(); err != nil || len(p.recs) != n {
		t.Fatalf("empty sync: %v, %d records", err, len(p.recs)-n)
	}
}

func TestGroupsNamesStatics(t *testing.T) {
	r := NewRegistry()
	if err := r.Register("NextHop", NextHop{}, WithIDPrefix("nh")); err != nil {
		t.Fatal(err)
	}
	_ = r.Register("AppConfig", AppConfig{})
	var changes, red []Change
	sby, _ := NewStore(r, Config{Standby: true})
	sby.Subscribe(func(c Change) { changes = append(changes, c) })
	sby.SubscribeGroup("vrf-red", func(c Change) { red = append(red, c) })
	act, _ := NewStore(r, Config{Sink: SinkFunc(sby.Apply)})
	g, err := act.NewGroup("vrf-red", "red")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := act.NewGroup("vrf-red", ""); !errors.Is(err, ErrExists) {
		t.Fatalf("group twice: %v", err)
	}
	cfg := &AppConfig{Hostname: "sw1"}
	if err := act.RegisterStatic("cfg", cfg); err != nil {
		t.Fatal(err)
	}
	if err := act.RegisterStatic("cfg", &AppConfig{}); !errors.Is(err, ErrExists) {
		t.Fatalf("static twice: %v", err)
	}
	sbyCfg := &AppConfig{}
	_ = sby.RegisterStatic("cfg", sbyCfg)
	tx, _ := act.Begin()
	a, _ := tx.CreateIn(g, &NextHop{Iface: "a"})
	b, _ := tx.Create(&NextHop{Iface: "b"})
	_ = tx.Update(cfg)
	if err := tx.Delete(cfg); !errors.Is(err, ErrStatic) {
		t.Fatalf("delete static: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if act.Name(a) != "red-1" || act.Name(b) != "nh-2" || sby.Name(a) != "red-1" || sby.Name(b) != "nh-2" {
		t.Fatalf("names %s %s / %s %s", act.Name(a), act.Name(b), sby.Name(a), sby.Name(b))
	}
	if sbyCfg.Hostname != "sw1" {
		t.Fatal("static object not replicated")
	}
	if sg := sby.GroupByName("vrf-red"); sg == nil || sg.Len() != 1 {
		t.Fatal("group not replicated")
	}
	if len(changes) != 3 || changes[0].Group != "vrf-red" || changes[1].Group != "" || changes[0].Op != OpCreate {
		t.Fatalf("changes %+v", changes)
	}
	tx, _ = act.Begin()
	_ = tx.DeleteGroup(g)
	c, _ := tx.CreateIn(g, &NextHop{Iface: "c"}) // after the group delete: stays
	_ = tx.Commit()
	if sby.GroupByName("vrf-red").Len() != 1 || g.Len() != 1 || sby.Len() != 3 {
		t.Fatalf("after DeleteGroup: standby group %d, active group %d, standby %d objects", sby.GroupByName("vrf-red").Len(), g.Len(), sby.Len())
	}
	if _, ok := sby.Get(c); !ok {
		t.Fatal("object created after DeleteGroup is missing")
	}
	if len(red) != 3 { // create a; delete a; create c
		t.Fatalf("group subscriber saw %d changes, want 3: %+v", len(red), red)
	}
	// Transparent mode: a change nobody reported is found by Store.Sync.
	cfg.ASN = 65001
	if err := act.Sync(); err != nil || sbyCfg.ASN != 65001 {
		t.Fatalf("Store.Sync: %v, standby ASN %d", err, sbyCfg.ASN)
	}
	if _, err := act.Promote(); !errors.Is(err, ErrNotStandby) {
		t.Fatalf("promote active: %v", err)
	}
}

func TestSinkFailure(t *testing.T) {
	fail := errors.New("link down")
	n := 0
	s, _ := NewStore(testRegistry(t), Config{Sink: SinkFunc(func([]byte) error {
		n++
		if n == 2 {
			return fail
		}
		return nil
	})})
	h := &NextHop{}
	tx, _ := s.Begin()
	_, _ = tx.Create(h)
	if err := tx.Commit(); !errors.Is(err, ErrSink) || !errors.Is(err, fail) {
		t.Fatalf("sink failure: %v", err)
	}
	if _, ok := s.IDOf(h); !ok || s.Seq() != 1 {
		t.Fatal("the commit should stand locally after a sink failure")
	}
	tx, err := s.Begin()
	if err != nil {
		t.Fatalf("store unusable after a sink failure: %v", err)
	}
	_ = tx.Abort()
}

func TestFirstTxnIDSeedsTransactionIDs(t *testing.T) {
	const first = 7 << 32
	s, err := NewStore(testRegistry(t), Config{FirstTxnID: first})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := s.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if tx.ID() != first+1 {
		t.Fatalf("first transaction ID %d, want %d", tx.ID(), first+1)
	}
}

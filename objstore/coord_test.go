package objstore

import (
	"errors"
	"net/netip"
	"testing"
)

// feed applies recs to s, failing on error.
func feed(t *testing.T, s *Store, recs [][]byte) {
	t.Helper()
	for _, r := range recs {
		if err := s.Apply(r); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
}

func TestSnapshotReplacesMirror(t *testing.T) {
	p := newPair(t, 0)
	p.applyTo = false // the standby joins late
	g, _ := p.act.NewGroup("vrf", "v")
	cfg := &AppConfig{Hostname: "a"}
	if err := p.act.RegisterStatic("cfg", cfg); err != nil {
		t.Fatal(err)
	}
	sbyCfg := &AppConfig{}
	if err := p.sby.RegisterStatic("cfg", sbyCfg); err != nil {
		t.Fatal(err)
	}
	hop := &NextHop{Addr: netip.MustParseAddr("192.0.2.1"), Iface: "eth0"}
	tx, _ := p.act.Begin()
	_, _ = tx.Create(hop)
	r := &Route{Prefix: netip.MustParsePrefix("10.0.0.0/8"), NextHop: hop}
	_, _ = tx.CreateIn(g, r)
	cfg.ASN = 65000
	_ = tx.Update(cfg)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// The standby has stale objects of an earlier stream.
	stale := newPair(t, 0)
	tx, _ = stale.act.Begin()
	for range 3 {
		_, _ = tx.Create(&NextHop{Iface: "old"})
	}
	_ = tx.Commit()
	feed(t, p.sby, stale.recs)
	var changes []Change
	p.sby.Subscribe(func(c Change) { changes = append(changes, c) })

	// The application changed an object without committing: the snapshot
	// carries the committed state, not that.
	hop.Iface = "uncommitted"
	p.sby.AwaitSnapshot()
	p.recs = nil
	if _, err := p.act.Snapshot(); err != nil {
		t.Fatal(err)
	}
	feed(t, p.sby, p.recs)
	hop.Iface = "eth0"
	if a, s := dump(p.act), dump(p.sby); a != s {
		t.Fatalf("after snapshot\nactive:\n%s\nstandby:\n%s", a, s)
	}
	if sbyCfg.ASN != 65000 {
		t.Fatalf("static not in the snapshot: %+v", sbyCfg)
	}
	if len(changes) == 0 || changes[0].Op != OpReset {
		t.Fatalf("subscriber saw %+v, want a reset first", changes)
	}
	if p.sby.AppliedSeq() != p.act.Seq() || p.sby.SnapshotID() == 0 {
		t.Fatalf("standby at seq %d snapshot %d, active at %d", p.sby.AppliedSeq(), p.sby.SnapshotID(), p.act.Seq())
	}
	// The live stream continues from the snapshot's seq.
	p.applyTo = true
	tx, _ = p.act.Begin()
	r.Metric = 7
	_ = tx.Update(r)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if a, s := dump(p.act), dump(p.sby); a != s {
		t.Fatalf("after live commit\nactive:\n%s\nstandby:\n%s", a, s)
	}
}

func TestAwaitSnapshotDropsStream(t *testing.T) {
	p := newPair(t, 0)
	p.sby.AwaitSnapshot()
	tx, _ := p.act.Begin()
	_, _ = tx.Create(&NextHop{Iface: "x"})
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if p.sby.Len() != 0 || !p.sby.AwaitingSnapshot() {
		t.Fatalf("a standby awaiting a snapshot applied a live commit: %d objects", p.sby.Len())
	}
}

func TestCoordinatedHeld(t *testing.T) {
	p := newPair(t, 0)
	commit := func(coord uint64, n int, part string, obj any) {
		t.Helper()
		tx, _ := p.act.Begin()
		if coord != 0 {
			if err := tx.Coordinate(coord, n, part); err != nil {
				t.Fatal(err)
			}
		}
		if obj != nil {
			_, _ = tx.Create(obj)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	commit(1, 2, "a", &NextHop{Iface: "1a"})
	commit(2, 2, "a", &NextHop{Iface: "2a"})
	commit(2, 2, "b", &NextHop{Iface: "2b"}) // 2 is complete, but behind 1
	commit(0, 0, "", &NextHop{Iface: "plain"})
	if p.sby.Len() != 0 || p.sby.Held() != 4 || p.sby.AppliedSeq() != 0 {
		t.Fatalf("standby applied %d objects, holds %d, applied seq %d", p.sby.Len(), p.sby.Held(), p.sby.AppliedSeq())
	}
	commit(1, 2, "b", nil) // an empty part completes 1
	if p.sby.Len() != 4 || p.sby.Held() != 0 || p.sby.AppliedSeq() != p.act.Seq() {
		t.Fatalf("after completion: %d objects, %d held, seq %d of %d", p.sby.Len(), p.sby.Held(), p.sby.AppliedSeq(), p.act.Seq())
	}
	if a, s := dump(p.act), dump(p.sby); a != s {
		t.Fatalf("active:\n%s\nstandby:\n%s", a, s)
	}

	// Parts that disagree on the count are refused.
	q := newPair(t, 0)
	q.applyTo = false
	for i, part := range []string{"a", "b"} {
		tx, _ := q.act.Begin()
		_ = tx.Coordinate(9, 2+i, part)
		_ = tx.Commit()
	}
	var err error
	for _, r := range q.recs {
		if e := q.sby.Apply(r); e != nil {
			err = e
		}
	}
	if !errors.Is(err, ErrCoordinated) {
		t.Fatalf("parts with counts 2 and 3: %v", err)
	}
	tx, _ := q.act.Begin()
	if err := tx.Coordinate(0, 2, "a"); !errors.Is(err, ErrCoordinated) {
		t.Fatalf("coordinated id 0: %v", err)
	}
	_ = tx.Abort()
}

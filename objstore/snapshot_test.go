package objstore

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// freshStandby feeds records to a new standby, failing on the first error.
func freshStandby(t *testing.T, recs [][]byte, statics map[string]any) *Store {
	t.Helper()
	s, err := NewStore(testRegistry(t), Config{Standby: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, obj := range statics {
		if err := s.RegisterStatic(name, obj); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range recs {
		if err := s.Apply(r); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
	return s
}

// TestSnapshotSurvivesDanglingPointer: a committed object can no longer be
// left pointing at a deleted one (TestDeleteOfPointedToObject), but a
// standby fed by an older active may hold such a pointer, and after its
// promotion its snapshots must still go out, sending that pointer as nil and
// saying so, or its own standby could never be synced.
func TestSnapshotSurvivesDanglingPointer(t *testing.T) {
	p := newPair(t, 0)
	hop := &NextHop{Iface: "e1"}
	r := &Route{NextHop: hop, Metric: 7}
	tx, _ := p.act.Begin()
	hid, _ := tx.Create(hop)
	rid, _ := tx.Create(r)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// What an active that did not count pointers sent for the Delete.
	const txn = 1000
	for _, rec := range [][]byte{
		rec(recDelete, txn, hid, int(p.act.reg.byName["NextHop"].id)),
		rec(recCommit, txn, int(p.act.Seq())+1, 1),
	} {
		if err := p.sby.Apply(rec); err != nil {
			t.Fatal(err)
		}
	}
	promoted := p.sby
	if _, err := promoted.Promote(); err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	promoted.cfg.Sink = SinkFunc(func(b []byte) error { recs = append(recs, append([]byte(nil), b...)); return nil })
	if _, err := promoted.Snapshot(); err != nil {
		t.Fatalf("snapshot with a dangling pointer: %v", err)
	}
	if n := promoted.SnapshotDangling(); n != 1 {
		t.Fatalf("SnapshotDangling = %d, want 1", n)
	}
	s := freshStandby(t, recs, nil)
	got, ok := s.Get(rid)
	if !ok || got.(*Route).NextHop != nil || got.(*Route).Metric != 7 || s.Len() != 1 {
		t.Fatalf("standby after the snapshot: %+v (%d objects)", got, s.Len())
	}
}

// TestSnapshotAfterPromoteCarriesStatics: a promoted standby's statics hold
// what the old active committed; its first snapshot to a new standby must
// carry them, although promotion marks every object stale.
func TestSnapshotAfterPromoteCarriesStatics(t *testing.T) {
	p := newPair(t, 0)
	actCfg, sbyCfg := &AppConfig{}, &AppConfig{}
	if err := p.act.RegisterStatic("cfg", actCfg); err != nil {
		t.Fatal(err)
	}
	if err := p.sby.RegisterStatic("cfg", sbyCfg); err != nil {
		t.Fatal(err)
	}
	tx, _ := p.act.Begin()
	actCfg.Hostname, actCfg.ASN = "leaf1", 65001
	_ = tx.Update(actCfg)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if sbyCfg.ASN != 65001 {
		t.Fatalf("standby config %+v", sbyCfg)
	}
	promoted := p.sby
	if _, err := promoted.Promote(); err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	promoted.cfg.Sink = SinkFunc(func(b []byte) error { recs = append(recs, append([]byte(nil), b...)); return nil })
	if _, err := promoted.Snapshot(); err != nil {
		t.Fatal(err)
	}
	newCfg := &AppConfig{}
	freshStandby(t, recs, map[string]any{"cfg": newCfg})
	if newCfg.Hostname != "leaf1" || newCfg.ASN != 65001 {
		t.Fatalf("new standby's config after the promoted node's snapshot: %+v", newCfg)
	}
}

// TestFailedCommitLeavesShadows: a commit that fails to encode (here a
// pointer to an object deleted in the same transaction) commits nothing, so
// nothing of it may reach the peer later either. Snapshots, checkpoints and
// repairs are encoded from the shadows; they used to carry the failed
// transaction's values, which the encoder had already copied into them.
func TestFailedCommitLeavesShadows(t *testing.T) {
	p := newPair(t, 0)
	hop := &NextHop{Iface: "e1"}
	other := &NextHop{Iface: "e2"}
	r := &Route{NextHop: hop, Metric: 7, Communities: []uint32{1}}
	tx, _ := p.act.Begin()
	_, _ = tx.Create(hop)
	_, _ = tx.Create(other)
	rid, _ := tx.Create(r)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	committed := dump(p.act)

	tx, _ = p.act.Begin()
	r.Metric, r.Communities = 99, []uint32{2, 3}
	_ = tx.Update(r) // encodes fine
	bad := &Route{NextHop: other}
	_, _ = tx.Create(bad)
	_ = tx.Delete(other) // bad points at an object this transaction deletes
	if err := tx.Commit(); !errors.Is(err, ErrDangling) {
		t.Fatalf("commit of a pointer to a deleted object: %v", err)
	}
	// The application gives the change up.
	r.Metric, r.Communities = 7, []uint32{1}

	start := len(p.recs)
	if _, err := p.act.Snapshot(); err != nil {
		t.Fatal(err)
	}
	s := freshStandby(t, p.recs[start:], nil)
	if got := dump(s); got != committed {
		t.Fatalf("snapshot after a failed commit\ngot:\n%s\nwant (committed):\n%s", got, committed)
	}
	var buf bytes.Buffer
	if _, err := p.act.Save(&buf); err != nil {
		t.Fatal(err)
	}
	c, err := NewStore(testRegistry(t), Config{Standby: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Load(&buf); err != nil {
		t.Fatal(err)
	}
	if got := dump(c); got != committed {
		t.Fatalf("checkpoint after a failed commit\ngot:\n%s\nwant (committed):\n%s", got, committed)
	}
	// And the next real change is a diff against what the peer holds: only
	// the metric goes out, and the standby ends up equal.
	tx, _ = p.act.Begin()
	r.Metric = 8
	_ = tx.Update(r)
	start = len(p.recs)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(summarize(t, p.act.reg, p.recs[start:]), "; "), fmt.Sprintf("update Route %d Metric; commit %d", rid, p.act.Seq()); got != want {
		t.Fatalf("the next commit sent %q, want %q", got, want)
	}
	if got, want := dump(p.sby), dump(p.act); got != want {
		t.Fatalf("standby after the next commit\ngot:\n%s\nwant:\n%s", got, want)
	}
	if obj, _ := p.sby.Get(rid); obj.(*Route).Metric != 8 {
		t.Fatalf("standby route %+v", obj)
	}
}

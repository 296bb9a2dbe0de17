package objstore_test

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/swha/swha/internal/skewtest"
	"github.com/swha/swha/objstore"
)

var skewSeed = flag.Uint64("swha.skewseed", 0, "replay TestSkewRandomStream with this seed")

// skewPair is an active store of one version whose records feed a standby
// store of another, directly.
type skewPair struct {
	act, sby *objstore.Store
	events   []any
	applyErr []error
}

func newSkewPair(t testing.TB, from, to skewtest.Version, extra func(*objstore.Registry)) *skewPair {
	t.Helper()
	p := &skewPair{}
	rs, err := skewtest.NewRegistry(to)
	if err != nil {
		t.Fatal(err)
	}
	p.sby, err = objstore.NewStore(rs, objstore.Config{Standby: true})
	if err != nil {
		t.Fatal(err)
	}
	p.sby.OnMessage(func(_ string, m any) { p.events = append(p.events, m) })
	ra := objstore.NewRegistry()
	if err := skewtest.Register(ra, from); err != nil {
		t.Fatal(err)
	}
	if extra != nil {
		extra(ra)
	}
	p.act, err = objstore.NewStore(ra, objstore.Config{Sink: objstore.SinkFunc(func(rec []byte) error {
		if err := p.sby.Apply(rec); err != nil {
			p.applyErr = append(p.applyErr, err)
		}
		return nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSkewRandomStream replicates random transactions over every field kind
// from an active of one version to a standby of the other, both ways, and
// checks after every commit that the standby holds the active's state in its
// own layout.
func TestSkewRandomStream(t *testing.T) {
	seeds := []uint64{rand.Uint64(), rand.Uint64()}
	if *skewSeed != 0 {
		seeds = []uint64{*skewSeed}
	}
	for _, dir := range [][2]skewtest.Version{{skewtest.V1, skewtest.V2}, {skewtest.V2, skewtest.V1}} {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("%v-to-%v/seed=%d", dir[0], dir[1], seed), func(t *testing.T) {
				p := newSkewPair(t, dir[0], dir[1], nil)
				app := skewtest.NewApp(dir[0], seed)
				rng := rand.New(rand.NewPCG(seed, 1))
				for i := 0; i < 400; i++ {
					tx, err := p.act.Begin()
					if err != nil {
						t.Fatal(err)
					}
					if err := app.Ops(tx, 1+rng.IntN(6)); err != nil {
						t.Fatalf("seed %d txn %d: %v", seed, i, err)
					}
					if err := tx.Commit(); err != nil {
						t.Fatalf("seed %d txn %d: commit: %v", seed, i, err)
					}
					app.Committed()
					if len(p.applyErr) > 0 {
						t.Fatalf("seed %d txn %d: standby: %v", seed, i, p.applyErr[0])
					}
					if err := app.Check(p.sby, dir[1]); err != nil {
						t.Fatalf("seed %d txn %d: %v", seed, i, err)
					}
				}
				if err := app.CheckEvents(p.events, p.sby, dir[1]); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			})
		}
	}
}

func commit(t *testing.T, s *objstore.Store, ops func(tx objstore.Txn) error) {
	t.Helper()
	tx, err := s.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := ops(tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func transformErr(t *testing.T, err error) *objstore.TransformError {
	t.Helper()
	var te *objstore.TransformError
	if !errors.As(err, &te) || !errors.Is(err, objstore.ErrNotRepresentable) {
		t.Fatalf("want a TransformError, got %v", err)
	}
	return te
}

// TestSkewNarrowing: a narrowing that fits is applied; one that does not
// fails its whole transaction with an error naming type, field, value and
// target, and the next, independent transaction still applies.
func TestSkewNarrowing(t *testing.T) {
	t.Run("v1-to-v2", func(t *testing.T) {
		p := newSkewPair(t, skewtest.V1, skewtest.V2, nil)
		r := &skewtest.RouteV1{Pref: 65535, Ratio: -2147483648, Name: "a"}
		var id uint64
		commit(t, p.act, func(tx objstore.Txn) (err error) { id, err = tx.Create(r); return err })
		if len(p.applyErr) > 0 {
			t.Fatalf("narrowing that fits: %v", p.applyErr[0])
		}
		for _, c := range []struct {
			set          func()
			field, value string
			target       string
		}{
			{func() { r.Pref = -1 }, "Pref", "-1", "uint16"},
			{func() { r.Pref = 65536 }, "Pref", "65536", "uint16"},
			{func() { r.Ratio = 1.5 }, "Ratio", "1.5", "int32"},
			{func() { r.Ratio = 1 << 31 }, "Ratio", "2.147483648e+09", "int32"},
			{func() { r.Data = []byte("x"); r.Arr[1] = 1; r.Cost = 1 << 30 }, "", "", ""}, // fits
		} {
			before, objects := p.sby.AppliedSeq(), p.sby.Len()
			keep := *r
			hop := &skewtest.HopV1{Iface: "new"}
			commit(t, p.act, func(tx objstore.Txn) error {
				c.set()
				r.Name = "changed"
				if err := tx.Update(r); err != nil {
					return err
				}
				_, err := tx.Create(hop)
				return err
			})
			if c.field == "" {
				if len(p.applyErr) > 0 {
					t.Fatalf("fitting update refused: %v", p.applyErr[0])
				}
				continue
			}
			if len(p.applyErr) != 1 {
				t.Fatalf("%s=%s: %d apply errors, want 1", c.field, c.value, len(p.applyErr))
			}
			te := transformErr(t, p.applyErr[0])
			if te.Type != "Route" || te.Field != c.field || te.Value != c.value || te.Target != c.target || te.ObjectID != id {
				t.Fatalf("error %+v, want Route.%s value %s target %s object %d", te, c.field, c.value, c.target, id)
			}
			for _, w := range []string{"Route." + c.field, c.value, c.target} {
				if !strings.Contains(p.applyErr[0].Error(), w) {
					t.Fatalf("error %q does not say %q", p.applyErr[0], w)
				}
			}
			p.applyErr = nil
			// Nothing of the transaction: the route keeps its name, the hop
			// does not exist, and the seq moved on.
			got, _ := p.sby.Get(id)
			if got.(*skewtest.RouteV2).Name == "changed" || p.sby.Len() != objects {
				t.Fatalf("refused transaction partly applied: %+v, %d objects", got, p.sby.Len())
			}
			if p.sby.AppliedSeq() != before+1 {
				t.Fatalf("applied seq %d after %d", p.sby.AppliedSeq(), before)
			}
			// An independent transaction after it applies.
			*r = keep
			commit(t, p.act, func(tx objstore.Txn) error { _, err := tx.Create(&skewtest.HopV1{Iface: "later"}); return err })
			if len(p.applyErr) > 0 {
				t.Fatalf("independent transaction after a refused one: %v", p.applyErr[0])
			}
			found := false
			p.sby.Each(func(_ uint64, o any) bool {
				if h, ok := o.(*skewtest.HopV2); ok && string(h.Iface) == "later" {
					found = true
				}
				return true
			})
			if !found {
				t.Fatal("independent transaction not applied")
			}
			// Restore the route on both sides for the next case.
			commit(t, p.act, func(tx objstore.Txn) error { return tx.Update(r) })
			if len(p.applyErr) > 0 {
				t.Fatal(p.applyErr[0])
			}
		}
	})
	t.Run("v2-to-v1", func(t *testing.T) {
		p := newSkewPair(t, skewtest.V2, skewtest.V1, nil)
		r := &skewtest.RouteV2{Tag: -1 << 31, Tiny: 127}
		tb := &skewtest.TableV2{Name: "t"}
		var id, tid uint64
		commit(t, p.act, func(tx objstore.Txn) (err error) {
			if id, err = tx.Create(r); err != nil {
				return err
			}
			tid, err = tx.Create(tb)
			return err
		})
		if len(p.applyErr) > 0 {
			t.Fatal(p.applyErr[0])
		}
		r.Tag = 1 << 40
		commit(t, p.act, func(tx objstore.Txn) error { return tx.Update(r) })
		te := transformErr(t, p.applyErr[0])
		if te.Field != "Tag" || te.Value != "1099511627776" || te.Target != "int32" || te.ObjectID != id {
			t.Fatalf("error %+v", te)
		}
		p.applyErr = nil
		r.Tag = 0
		r.Tiny = -129
		commit(t, p.act, func(tx objstore.Txn) error { return tx.Update(r) })
		if te := transformErr(t, p.applyErr[0]); te.Field != "Tiny" || te.Value != "-129" || te.Target != "int8" {
			t.Fatalf("error %+v", te)
		}
		p.applyErr = nil
		// The longer array of v2 must lose only zero elements.
		tb.Slots[5].B = "lost"
		commit(t, p.act, func(tx objstore.Txn) error { return tx.Update(tb) })
		if te := transformErr(t, p.applyErr[0]); te.Field != "Slots" || te.ObjectID != tid || !strings.Contains(te.Value, "element 5 of 6") {
			t.Fatalf("error %+v", te)
		}
		p.applyErr = nil
		tb.Slots[5].B, tb.Slots[3].B = "", "kept"
		commit(t, p.act, func(tx objstore.Txn) error { return tx.Update(tb) })
		if len(p.applyErr) > 0 {
			t.Fatal(p.applyErr[0])
		}
		got, _ := p.sby.Get(tid)
		if got.(*skewtest.TableV1).Slots[3].B != "kept" {
			t.Fatalf("table %+v", got)
		}
		// A pointer into a slot the local version does not have.
		r.Tiny = 0
		r.Slot = &tb.Slots[4]
		commit(t, p.act, func(tx objstore.Txn) error { return tx.Update(r) })
		if te := transformErr(t, p.applyErr[0]); te.Field != "Slot" || !strings.Contains(te.Value, "element 4") {
			t.Fatalf("error %+v", te)
		}
	})
}

// TestSkewReport: what a standby says of the other version's types.
func TestSkewReport(t *testing.T) {
	r1, err := skewtest.NewRegistry(skewtest.V1)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := skewtest.NewRegistry(skewtest.V2)
	if err != nil {
		t.Fatal(err)
	}
	up := objstore.CompareSchema(r2, r1.Schema("Route"))
	if up.Identical || up.Missing || !slices.Equal(up.Added, []string{"Inner.Z", "Inners[].Z", "Color"}) ||
		len(up.Dropped) != 1 || up.Dropped[0] != (objstore.DroppedField{Field: "Legacy", Reason: "removed"}) ||
		!slices.Equal(up.Renamed, []string{"Distance→AdminDistance"}) {
		t.Fatalf("v1 route on v2: %+v", up)
	}
	for _, c := range []string{"Tag: int32→int64", "Pref: int64→uint16", "Ratio: float64→int32", "Data: bytes→string", "Arr[]: int16→int32", "Inner.A: int16→int32"} {
		if !slices.Contains(up.Converted, c) {
			t.Fatalf("v1 route on v2: %q not in %q", c, up.Converted)
		}
	}
	if viaSchemas := objstore.CompareSchemas(r1.Schema("Route"), r2.Schema("Route")); fmt.Sprint(viaSchemas) != fmt.Sprint(up) {
		t.Fatalf("CompareSchemas %v\nCompareSchema %v", viaSchemas, up)
	}
	down := objstore.CompareSchema(r1, r2.Schema("Route"))
	if !slices.Equal(down.Renamed, []string{"AdminDistance→Distance"}) || len(down.Dropped) != 3 || down.Dropped[0].Field != "Color" ||
		!slices.Contains(down.Converted, "Data: string→bytes") {
		t.Fatalf("v2 route on v1: %+v", down)
	}
	if same := objstore.CompareSchema(r1, r1.Schema("Route")); same.Identical != true {
		t.Fatalf("same version: %+v", same)
	}
	if hop := objstore.CompareSchema(r1, r2.Schema("Hop")); !strings.Contains(hop.String(), "dropped Labels (removed") {
		t.Fatalf("hop: %s", hop)
	}
	other := objstore.NewRegistry()
	_ = other.Register("Other", struct{ A int }{})
	_ = other.Seal()
	if m := objstore.CompareSchema(r1, other.Schema("Other")); !m.Missing {
		t.Fatalf("unknown type: %+v", m)
	}
}

type confA struct {
	Name  string
	Mode  string
	Count int32
}

type confB struct {
	Name  string
	Mode  struct{ Level int }
	Count int32
}

type onlyNew struct{ X int }

// TestSkewIncompatible: a field whose kind changed incompatibly is dropped
// and counted, not guessed at; a type the standby does not have fails the
// transactions that use it and nothing else.
func TestSkewIncompatible(t *testing.T) {
	p := newSkewPair(t, skewtest.V1, skewtest.V2, func(r *objstore.Registry) {
		_ = r.Register("Conf", confA{})
		_ = r.Register("OnlyNew", onlyNew{})
	})
	// newSkewPair's standby has no Conf; replace it with one that does.
	r2 := objstore.NewRegistry()
	_ = skewtest.Register(r2, skewtest.V2)
	_ = r2.Register("Conf", confB{})
	sby, err := objstore.NewStore(r2, objstore.Config{Standby: true})
	if err != nil {
		t.Fatal(err)
	}
	p.sby = sby
	c := &confA{Name: "x", Mode: "fast", Count: 3}
	var cid uint64
	commit(t, p.act, func(tx objstore.Txn) (err error) { cid, err = tx.Create(c); return err })
	if len(p.applyErr) > 0 {
		t.Fatal(p.applyErr[0])
	}
	got, _ := sby.Get(cid)
	if b := got.(*confB); b.Name != "x" || b.Count != 3 || b.Mode.Level != 0 {
		t.Fatalf("conf %+v", b)
	}
	var rep objstore.SkewReport
	for _, r := range sby.PeerSkew() {
		if r.Type == "Conf" {
			rep = r
		}
	}
	if len(rep.Dropped) != 1 || rep.Dropped[0].Field != "Mode" || rep.Dropped[0].Count != 1 || !strings.Contains(rep.Dropped[0].Reason, "peer string, local struct") {
		t.Fatalf("conf report %+v", rep)
	}
	commit(t, p.act, func(tx objstore.Txn) error { _, err := tx.Create(&onlyNew{X: 1}); return err })
	if te := transformErr(t, p.applyErr[0]); te.Type != "OnlyNew" || !strings.Contains(te.Error(), "no type of that name") {
		t.Fatalf("unknown type: %v", p.applyErr[0])
	}
	p.applyErr = nil
	commit(t, p.act, func(tx objstore.Txn) error {
		_, err := tx.Create(&skewtest.HopV1{Addr: netip.MustParseAddr("192.0.2.1")})
		return err
	})
	if len(p.applyErr) > 0 || sby.Len() != 2 {
		t.Fatalf("after an unknown type: %v, %d objects", p.applyErr, sby.Len())
	}
}

// FuzzSkewApply: a standby of version 2 fed a version-1 stream with
// arbitrary changes never panics, and whatever it accepts it can render.
// The transformation decodes peer input with the peer's schema, so it must
// be as careful with hostile bytes as the same-version decoder.
func FuzzSkewApply(f *testing.F) {
	var stream [][]byte
	p := newSkewPair(f, skewtest.V1, skewtest.V2, nil)
	app := skewtest.NewApp(skewtest.V1, 1)
	rec := objstore.SinkFunc(func(b []byte) error { stream = append(stream, append([]byte(nil), b...)); return nil })
	act, err := objstore.NewStore(p.act.Registry(), objstore.Config{Sink: rec})
	if err != nil {
		f.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		tx, _ := act.Begin()
		if err := app.Ops(tx, 4); err != nil {
			f.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			f.Fatal(err)
		}
		app.Committed()
	}
	var all []byte
	for _, r := range stream {
		all = append(all, byte(len(r)>>8), byte(len(r)))
		all = append(all, r...)
	}
	f.Add(all, uint16(0), byte(0))
	f.Add(all, uint16(len(all)/2), byte(0xff))
	f.Fuzz(skewApplyOnce)
}

func skewApplyOnce(t *testing.T, data []byte, at uint16, flip byte) {
	r2, err := skewtest.NewRegistry(skewtest.V2)
	if err != nil {
		t.Fatal(err)
	}
	s, err := objstore.NewStore(r2, objstore.Config{Standby: true, MaxTxnBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	s.OnMessage(func(string, any) {})
	if int(at) < len(data) {
		data = append([]byte(nil), data...)
		data[at] ^= flip
	}
	for len(data) >= 2 {
		n := int(data[0])<<8 | int(data[1])
		data = data[2:]
		n = min(n, len(data))
		_ = s.Apply(data[:n])
		data = data[n:]
	}
	s.Each(func(_ uint64, o any) bool { _ = fmt.Sprint(o); return true })
	_ = s.PeerSkew()
	s.DiscardPartial()
}

// TestSkewCheckpoint: a checkpoint written by one version loads into a
// store of the other through the same transformation as a live stream, and
// one holding a value the loading version cannot take is refused whole,
// naming it, with the store left as it was.
func TestSkewCheckpoint(t *testing.T) {
	for _, dir := range [][2]skewtest.Version{{skewtest.V1, skewtest.V2}, {skewtest.V2, skewtest.V1}} {
		t.Run(fmt.Sprintf("%v-to-%v", dir[0], dir[1]), func(t *testing.T) {
			ra, err := skewtest.NewRegistry(dir[0])
			if err != nil {
				t.Fatal(err)
			}
			act, err := objstore.NewStore(ra, objstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			app := skewtest.NewApp(dir[0], 42)
			for i := 0; i < 60; i++ {
				tx, _ := act.Begin()
				if err := app.Ops(tx, 5); err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				app.Committed()
			}
			var file strings.Builder
			if _, err := act.Save(&file); err != nil {
				t.Fatal(err)
			}
			rb, _ := skewtest.NewRegistry(dir[1])
			sby, _ := objstore.NewStore(rb, objstore.Config{Standby: true})
			if err := sby.Load(strings.NewReader(file.String())); err != nil {
				t.Fatalf("load a %v checkpoint into %v: %v", dir[0], dir[1], err)
			}
			if err := app.Check(sby, dir[1]); err != nil {
				t.Fatal(err)
			}
			if sby.AppliedSeq() != act.Seq() {
				t.Fatalf("loaded seq %d, saved %d", sby.AppliedSeq(), act.Seq())
			}
		})
	}
	// A value that does not fit refuses the whole load.
	ra, _ := skewtest.NewRegistry(skewtest.V2)
	act, _ := objstore.NewStore(ra, objstore.Config{})
	tx, _ := act.Begin()
	_, _ = tx.Create(&skewtest.HopV2{Iface: []byte("fits")})
	id, _ := tx.Create(&skewtest.RouteV2{Tag: 1 << 40})
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var file strings.Builder
	if _, err := act.Save(&file); err != nil {
		t.Fatal(err)
	}
	rb, _ := skewtest.NewRegistry(skewtest.V1)
	sby, _ := objstore.NewStore(rb, objstore.Config{Standby: true})
	err := sby.Load(strings.NewReader(file.String()))
	if te := transformErr(t, err); te.Field != "Tag" || te.ObjectID != id || !errors.Is(err, objstore.ErrCheckpointInvalid) {
		t.Fatalf("load of a value that does not fit: %v", err)
	}
	if sby.Len() != 0 || sby.AppliedSeq() != 0 {
		t.Fatalf("failed load changed the store: %d objects, seq %d", sby.Len(), sby.AppliedSeq())
	}
}

type wasTagged struct {
	Metric uint32 `swha:"Metric,was=Cost"`
}

type wasUntagged struct{ Metric uint32 }

type floatKeys struct{ M map[float64]int32 }

type narrowKeys struct{ M map[float32]int32 }

func newPeers(t *testing.T, act, sby any) (*objstore.Store, *[]error, *objstore.Store) {
	t.Helper()
	rs := objstore.NewRegistry()
	if err := rs.Register("R", sby); err != nil {
		t.Fatal(err)
	}
	s, err := objstore.NewStore(rs, objstore.Config{Standby: true})
	if err != nil {
		t.Fatal(err)
	}
	ra := objstore.NewRegistry()
	if err := ra.Register("R", act); err != nil {
		t.Fatal(err)
	}
	var errs []error
	a, err := objstore.NewStore(ra, objstore.Config{Sink: objstore.SinkFunc(func(rec []byte) error {
		if err := s.Apply(rec); err != nil {
			errs = append(errs, err)
		}
		return nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	return a, &errs, s
}

// TestSkewWasOnly: layouts that differ only by a was= tag (different
// fingerprints, same encoding) replicate as identical ones.
func TestSkewWasOnly(t *testing.T) {
	a, errs, s := newPeers(t, &wasTagged{}, &wasUntagged{})
	var id uint64
	commit(t, a, func(tx objstore.Txn) (err error) { id, err = tx.Create(&wasTagged{Metric: 5}); return err })
	if len(*errs) > 0 {
		t.Fatal((*errs)[0])
	}
	if got, _ := s.Get(id); got.(*wasUntagged).Metric != 5 {
		t.Fatalf("got %+v", got)
	}
	ra, rs := objstore.NewRegistry(), objstore.NewRegistry()
	_ = ra.Register("R", &wasTagged{})
	_ = rs.Register("R", &wasUntagged{})
	_, _ = ra.Seal(), rs.Seal()
	if rep := objstore.CompareSchemas(ra.Schema("R"), rs.Schema("R")); !rep.Identical {
		t.Fatalf("report %+v", rep)
	}
}

// TestSkewMapKeyCollision: two peer keys that become one local key (float64
// keys rounding to the same float32) refuse
// the transaction, on an update as on a create: validation must see what
// decoding would.
func TestSkewMapKeyCollision(t *testing.T) {
	a, errs, s := newPeers(t, &floatKeys{}, &narrowKeys{})
	o := &floatKeys{M: map[float64]int32{1: 1}}
	var id uint64
	commit(t, a, func(tx objstore.Txn) (err error) { id, err = tx.Create(o); return err })
	if len(*errs) > 0 {
		t.Fatal((*errs)[0])
	}
	o.M = map[float64]int32{1: 1, 1 + 1e-12: 2} // one float32
	commit(t, a, func(tx objstore.Txn) error { return tx.Update(o) })
	if te := transformErr(t, (*errs)[0]); te.Field != "M" || !strings.Contains(te.Value, "2 keys (1 after conversion)") {
		t.Fatalf("error %+v", te)
	}
	if got, _ := s.Get(id); len(got.(*narrowKeys).M) != 1 || got.(*narrowKeys).M[1] != 1 {
		t.Fatalf("refused update applied: %+v", got)
	}
}

type holderA struct{ X uint32 }

type holderB struct {
	X uint32
	Y uint64
}

type pointerA struct {
	P *uint32 `swha:",into=H"`
}

type pointerB struct {
	P *uint64 `swha:",into=H"`
}

// TestSkewInteriorPointeeChanged: a pointer whose pointee type changed
// while the field it points into did not cannot be carried: a
// TransformError (the stream goes on), not a dangling pointer (which would
// make the standby resync for ever), and the report says so up front.
func TestSkewInteriorPointeeChanged(t *testing.T) {
	reg := func(h, p any) *objstore.Registry {
		r := objstore.NewRegistry()
		_ = r.Register("H", h)
		_ = r.Register("P", p)
		if err := r.Seal(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	ra, rs := reg(holderA{}, pointerA{}), reg(holderB{}, pointerB{})
	s, _ := objstore.NewStore(rs, objstore.Config{Standby: true})
	var errs []error
	a, _ := objstore.NewStore(ra, objstore.Config{Sink: objstore.SinkFunc(func(rec []byte) error {
		if err := s.Apply(rec); err != nil {
			errs = append(errs, err)
		}
		return nil
	})})
	h := &holderA{X: 1}
	commit(t, a, func(tx objstore.Txn) error {
		if _, err := tx.Create(h); err != nil {
			return err
		}
		_, err := tx.Create(&pointerA{P: &h.X})
		return err
	})
	if te := transformErr(t, errs[0]); te.Type != "P" || te.Field != "P" || !strings.Contains(te.Value, "uint32") {
		t.Fatalf("error %+v", te)
	}
	if rep := objstore.CompareSchema(rs, ra.Schema("P")); rep.Identical || len(rep.Converted) != 1 {
		t.Fatalf("report %+v", rep)
	}
}

type renamedOld struct{ Metric uint32 }

type renamedNew struct {
	Metric string
	Cost   uint32 `swha:"Cost,was=Metric"`
}

// TestSkewRenameWinsOverReusedName: the newer version renamed Metric to
// Cost and reuses the name Metric for a new field. The older side's Metric
// is the renamed field, both ways.
func TestSkewRenameWinsOverReusedName(t *testing.T) {
	a, errs, s := newPeers(t, &renamedOld{}, &renamedNew{})
	var id uint64
	commit(t, a, func(tx objstore.Txn) (err error) { id, err = tx.Create(&renamedOld{Metric: 7}); return err })
	if len(*errs) > 0 {
		t.Fatal((*errs)[0])
	}
	if got, _ := s.Get(id); got.(*renamedNew).Cost != 7 || got.(*renamedNew).Metric != "" {
		t.Fatalf("old → new: %+v", got)
	}
	b, errs2, s2 := newPeers(t, &renamedNew{}, &renamedOld{})
	commit(t, b, func(tx objstore.Txn) (err error) {
		id, err = tx.Create(&renamedNew{Metric: "new", Cost: 9})
		return err
	})
	if len(*errs2) > 0 {
		t.Fatal((*errs2)[0])
	}
	if got, _ := s2.Get(id); got.(*renamedOld).Metric != 9 {
		t.Fatalf("new → old: %+v", got)
	}
}

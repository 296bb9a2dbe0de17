package objstore

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// Arena objects through the rest of the store (checkpoints, demotion and
// the winner's snapshot, the leak check, version skew), and the
// regressions of the arena's review.

// checkInArena fails t unless every Cell of s lives in s's arena, is
// marked so, and its handle resolves to it; it returns how many there are.
func checkInArena(t *testing.T, s *Store, what string) int {
	t.Helper()
	cells, err := ArenaOf[Cell](s.View())
	if err != nil {
		t.Fatal(err)
	}
	type obj struct {
		id uint64
		c  *Cell
	}
	var objs []obj
	s.Each(func(id uint64, o any) bool {
		if c, ok := o.(*Cell); ok {
			objs = append(objs, obj{id, c})
		}
		return true
	})
	a := arenaOfType(s, "Cell")
	for _, o := range objs {
		s.mu.RLock()
		i, _ := s.byID.get(o.id)
		marked := s.ents.at(i).flags&fArena != 0
		s.mu.RUnlock()
		_, _, in := a.slotOf(unsafe.Pointer(o.c))
		h, ok := cells.Handle(o.c)
		if !in || !marked || !ok || cells.At(h) != o.c {
			t.Fatalf("%s: Cell %d at %p: in the arena %v, marked %v, handle %v resolves to %p", what, o.id, o.c, in, marked, ok, cells.At(h))
		}
	}
	return len(objs)
}

// capturing returns a sink that keeps copies of the records in *recs.
func capturing(recs *[][]byte) RecordSink {
	return SinkFunc(func(rec []byte) error {
		*recs = append(*recs, append([]byte(nil), rec...))
		return nil
	})
}

// updates summarizes the Update records of recs, sorted.
func updates(t *testing.T, s *Store, recs [][]byte) []string {
	t.Helper()
	var out []string
	for _, l := range summarize(t, s.reg, recs) {
		if len(l) > 7 && l[:7] == "update " {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// checkTrackedAfter promotes s (a standby holding Cells), and checks that
// its arena is tracked like one filled by New: after the first Sync (every
// object whole, their shadows being stale), a write to one cell sends that
// cell alone, found from its page where the kernel tracks.
func checkTrackedAfter(t *testing.T, s *Store, recs *[][]byte, what string) {
	t.Helper()
	if _, err := s.Promote(); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	var c *Cell
	var id uint64
	s.Each(func(i uint64, o any) bool {
		if x, ok := o.(*Cell); ok && x.Key == 150 {
			c, id = x, i
		}
		return c == nil
	})
	if c == nil {
		t.Fatalf("%s: no cell 150", what)
	}
	*recs = (*recs)[:0]
	c.Port = 4242
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, want := updates(t, s, *recs), []string{fmt.Sprintf("update Cell %d Port", id)}; !slices.Equal(got, want) {
		t.Fatalf("%s: Sync after one write sent %v, want %v", what, got, want)
	}
	a := arenaOfType(s, "Cell")
	if ok, _ := s.DirtyTracking(); ok && (a.lastRun.full || len(a.dirtyPages()) != 1) {
		t.Fatalf("%s: Sync diffed every object (%v) or pages %x, want the one written", what, a.lastRun.full, a.dirtyPages())
	}
}

// TestArenaCheckpoint: a checkpoint of a store with arena objects (saved
// by the active, from its shadows, and by the standby, from its mirror)
// loads them back into the loading store's arena, with valid handles,
// equal content and pointers from heap objects into them; promoted, that
// store's arena is tracked.
func TestArenaCheckpoint(t *testing.T) {
	for _, cfg := range []Config{{}, {ArenaHeap: true}} {
		t.Run(fmt.Sprintf("heap=%v", cfg.ArenaHeap), func(t *testing.T) {
			p := newArenaPair(t, cfg)
			g, err := p.act.NewGroup("vrf", "vrf")
			p.must(err)
			cells := p.newCells(300)
			tx, err := p.act.Begin()
			p.must(err)
			for k := range 20 {
				c, err := p.cells.New()
				p.must(err)
				c.Key, c.Peer = uint64(1000+k), uint64(k+1)
				_, err = tx.CreateIn(g, c)
				p.must(err)
			}
			_, err = tx.CreateIn(g, &CellRef{Name: "r", Cell: cells[5], Val: &cells[7].Val})
			p.must(err)
			p.must(tx.Commit())
			cells[9].Val = 90
			copy(cells[200].Name[:], "edge-9")
			p.sync()
			cells[10].Val = 1000 // never synced: not committed, not in the active's checkpoint
			want := dump(p.sby)

			for _, src := range []*Store{p.act, p.sby} {
				what := map[bool]string{true: "active's", false: "standby's"}[src == p.act]
				data := saveBytes(t, src)
				var recs [][]byte
				s, err := NewStore(arenaRegistry(t), Config{Standby: true, ArenaHeap: cfg.ArenaHeap, Sink: capturing(&recs)})
				p.must(err)
				p.must(s.Load(bytes.NewReader(data)))
				if got := dump(s); got != want {
					t.Fatalf("%s checkpoint loads\n%s\nwant\n%s", what, got, want)
				}
				if n := checkInArena(t, s, what); n != 320 {
					t.Fatalf("%s checkpoint: %d cells", what, n)
				}
				// The heap object points into the loaded store's arena.
				var ref *CellRef
				s.Each(func(_ uint64, o any) bool { ref, _ = o.(*CellRef); return ref == nil })
				id5, _ := p.act.IDOf(cells[5])
				c5, _ := s.Get(id5)
				id7, _ := p.act.IDOf(cells[7])
				c7, _ := s.Get(id7)
				if ref == nil || ref.Cell != c5.(*Cell) || ref.Val != &c7.(*Cell).Val {
					t.Fatalf("%s checkpoint: CellRef %+v does not point at the loaded cells", what, ref)
				}
				checkTrackedAfter(t, s, &recs, what+" checkpoint")
			}
		})
	}
}

// TestArenaDemoteTakesSnapshot: an active holding arena objects (in a
// group, pointed at, and one allocated but never created) is demoted and
// takes the winner's snapshot, which a fresh standby takes too: both hold
// the winner's objects in their own arenas; the demoted store's old
// objects are freed (from its next Apply on, their handles resolve to
// nil), the uncreated one stays the application's; promoted again, its
// arena is tracked.
func TestArenaDemoteTakesSnapshot(t *testing.T) {
	for _, cfg := range []Config{{}, {ArenaHeap: true}} {
		t.Run(fmt.Sprintf("heap=%v", cfg.ArenaHeap), func(t *testing.T) {
			mk := func(c Config) *Store {
				c.ArenaHeap = cfg.ArenaHeap
				s, err := NewStore(arenaRegistry(t), c)
				must(t, err)
				return s
			}
			var aRecs [][]byte
			a := mk(Config{Sink: capturing(&aRecs)})
			var targets []*Store
			b := mk(Config{Sink: SinkFunc(func(rec []byte) error {
				for _, s := range targets {
					if err := s.Apply(rec); err != nil {
						t.Fatalf("apply of the winner's stream: %v", err)
					}
				}
				return nil
			})})
			fill := func(s *Store, group string, n, key int) []*Cell {
				arena, err := ArenaOf[Cell](s.View())
				must(t, err)
				g, err := s.NewGroup(group, group)
				must(t, err)
				tx, err := s.Begin()
				must(t, err)
				var out []*Cell
				for k := range n {
					c, err := arena.New()
					must(t, err)
					c.Key, c.Val = uint64(key+k), uint64(k*k)
					_, err = tx.CreateIn(g, c)
					must(t, err)
					out = append(out, c)
				}
				_, err = tx.CreateIn(g, &CellRef{Name: group, Cell: out[3], Val: &out[4].Val})
				must(t, err)
				must(t, tx.Commit())
				must(t, s.Sync())
				return out
			}
			old := fill(a, "loser", 100, 0)
			aCells, err := ArenaOf[Cell](a.View())
			must(t, err)
			oldH, _ := aCells.Handle(old[0])
			held, err := aCells.New()
			must(t, err)
			held.Key = 7
			fill(b, "winner", 1000, 100)

			if _, err := a.Demote(); err != nil {
				t.Fatal(err)
			}
			f := mk(Config{Standby: true})
			targets = []*Store{a, f}
			if _, err := b.Snapshot(); err != nil {
				t.Fatal(err)
			}
			checkSame(t, "demoted", a, b, true)
			checkSame(t, "fresh standby", f, b, true)
			for _, s := range targets {
				if n := checkInArena(t, s, "after the snapshot"); n != 1000 {
					t.Fatalf("%d cells after the snapshot, want 1000", n)
				}
			}
			// Old slots are freed from the next Apply on (the snapshot's
			// subscribers are handed the deleted objects).
			if n := aCells.Len(); n != 1101 {
				t.Fatalf("demoted arena holds %d, want 1101 until the next Apply", n)
			}
			tx, err := b.Begin()
			must(t, err)
			_, err = tx.Create(&NextHop{Iface: "later"})
			must(t, err)
			must(t, tx.Commit())
			if n := aCells.Len(); n != 1001 || aCells.At(oldH) != nil {
				t.Fatalf("demoted arena holds %d (want 1001), old handle resolves to %p", n, aCells.At(oldH))
			}
			if held.Key != 7 {
				t.Fatal("the uncreated object changed")
			}
			must(t, aCells.Free(held))
			if n := arenaOfType(f, "Cell").live; n != 1000 {
				t.Fatalf("fresh standby arena holds %d, want 1000", n)
			}
			aRecs = aRecs[:0]
			checkTrackedAfter(t, a, &aRecs, "demoted and promoted again")
		})
	}
}

// TestArenaLeaks: the leak check sees arena objects on both sides: one in
// a group, or pointed at (or into) by an object a root reaches, is
// reachable; one neither is reported.
func TestArenaLeaks(t *testing.T) {
	for _, cfg := range []Config{{}, {ArenaHeap: true}} {
		t.Run(fmt.Sprintf("heap=%v", cfg.ArenaHeap), func(t *testing.T) {
			p := newArenaPair(t, cfg)
			g, err := p.act.NewGroup("vrf", "vrf")
			p.must(err)
			tx, err := p.act.Begin()
			p.must(err)
			mk := func(grp *Group) (*Cell, uint64) {
				c, err := p.cells.New()
				p.must(err)
				id, err := tx.CreateIn(grp, c)
				p.must(err)
				return c, id
			}
			var loose []uint64
			var looseCells []*Cell
			for range 3 {
				c, id := mk(nil)
				loose, looseCells = append(loose, id), append(looseCells, c)
			}
			mk(g)
			pointed, pointedID := mk(nil)
			into, _ := mk(nil)
			ref := &CellRef{Name: "r", Cell: pointed, Val: &into.Val}
			_, err = tx.CreateIn(g, ref)
			p.must(err)
			p.must(tx.Commit())
			check := func(want []uint64) {
				t.Helper()
				for _, s := range []*Store{p.act, p.sby} {
					var got []uint64
					for _, l := range s.Leaks() {
						got = append(got, l.ID)
					}
					if !slices.Equal(got, want) || s.LeakCount() != len(want) {
						t.Fatalf("active %v: leaks %v (count %d), want %v", s == p.act, got, s.LeakCount(), want)
					}
				}
			}
			check(loose)
			ref.Cell = looseCells[0]
			tx, err = p.act.Begin()
			p.must(err)
			p.must(tx.Update(ref))
			p.must(tx.Commit())
			want := []uint64{loose[1], loose[2], pointedID}
			slices.Sort(want)
			check(want)
		})
	}
}

// SkewCellV1 and SkewCellV2 are two versions of one arena type: a field
// renamed, one widened, one added.
type SkewCellV1 struct {
	Key  uint64
	Port uint16
	Name [8]byte
	Val  uint64 `swha:"val"`
}

type SkewCellV2 struct {
	Key   uint64
	Port  uint32
	Name  [8]byte
	Value uint64 `swha:"value,was=val"`
	Extra uint32
}

// TestArenaSkew: arena objects replicate between versions of their type,
// both ways, through the skew transform, into the receiver's arena; the
// sender's Sync finds them from the written pages.
func TestArenaSkew(t *testing.T) {
	t.Run("v1-to-v2", func(t *testing.T) {
		skewArena(t, func(c *SkewCellV1, k int) { c.Key, c.Port, c.Val = uint64(k), uint16(k), uint64(k*3) },
			func(c *SkewCellV1) { c.Val++; c.Port++ },
			func(c *SkewCellV1) [3]uint64 { return [3]uint64{c.Key, uint64(c.Port), c.Val} },
			func(c *SkewCellV2) [3]uint64 { return [3]uint64{c.Key, uint64(c.Port), c.Value} })
	})
	t.Run("v2-to-v1", func(t *testing.T) {
		skewArena(t, func(c *SkewCellV2, k int) { c.Key, c.Port, c.Value = uint64(k), uint32(k), uint64(k*3) },
			func(c *SkewCellV2) { c.Value++; c.Port++ },
			func(c *SkewCellV2) [3]uint64 { return [3]uint64{c.Key, uint64(c.Port), c.Value} },
			func(c *SkewCellV1) [3]uint64 { return [3]uint64{c.Key, uint64(c.Port), c.Val} })
	})
}

func skewArena[A, B any](t *testing.T, set func(*A, int), change func(*A), from func(*A) [3]uint64, to func(*B) [3]uint64) {
	t.Helper()
	reg := func(proto any) *Registry {
		r := NewRegistry()
		must(t, r.Register("SkewCell", proto, InArena()))
		return r
	}
	var protoA A
	var protoB B
	sby, err := NewStore(reg(protoB), Config{Standby: true})
	must(t, err)
	var recs [][]byte
	act, err := NewStore(reg(protoA), Config{Sink: SinkFunc(func(rec []byte) error {
		recs = append(recs, append([]byte(nil), rec...))
		return sby.Apply(rec)
	})})
	must(t, err)
	arena, err := ArenaOf[A](act.View())
	must(t, err)
	objs := make([]*A, 3000)
	tx, err := act.Begin()
	must(t, err)
	for k := range objs {
		objs[k], err = arena.New()
		must(t, err)
		set(objs[k], k)
		_, err = tx.Create(objs[k])
		must(t, err)
	}
	must(t, tx.Commit())
	must(t, act.Sync())
	check := func() {
		t.Helper()
		sArena, err := ArenaOf[B](sby.View())
		must(t, err)
		for _, o := range objs {
			id, ok := act.IDOf(o)
			got, found := sby.Get(id)
			if !ok || !found {
				t.Fatalf("object %v not on the standby", from(o))
			}
			g := got.(*B)
			if to(g) != from(o) {
				t.Fatalf("standby holds %v, active %v", to(g), from(o))
			}
			if h, ok := sArena.Handle(g); !ok || sArena.At(h) != g {
				t.Fatalf("standby's object %v not in its arena", to(g))
			}
		}
	}
	check()
	recs = recs[:0]
	change(objs[1500])
	must(t, act.Sync())
	id, _ := act.IDOf(objs[1500])
	if got, want := updates(t, act, recs), fmt.Sprintf("update SkewCell %d Port ", id); len(got) != 1 || !strings.HasPrefix(got[0], want) {
		t.Fatalf("Sync sent %v, want one %q...", got, want)
	}
	if ok, _ := act.DirtyTracking(); ok {
		if a := arenaOfType(act, "SkewCell"); a.lastRun.full || len(a.dirtyPages()) != 1 {
			t.Fatalf("Sync diffed every object (%v) or pages %x", a.lastRun.full, a.dirtyPages())
		}
	}
	check()
}

// TestArenaWriteBetweenEncodeAndScan: an object a transaction encodes
// (created, updated, or synced by an earlier Sync of it) and then written
// before the transaction's Sync protects its page again. That Sync
// consumes the page's mark without reading the object (already encoded),
// so the next Sync must diff it anyway, or the write is never sent.
func TestArenaWriteBetweenEncodeAndScan(t *testing.T) {
	for _, first := range []string{"create", "update", "sync"} {
		t.Run(first, func(t *testing.T) {
			p := newArenaPair(t, Config{ArenaScanRatio: 1})
			requireTracking(t, p.act)
			cells := p.newCells(300)
			p.sync()
			tx, err := p.act.Begin()
			p.must(err)
			c := cells[100]
			switch first {
			case "create":
				c, err = p.cells.New()
				p.must(err)
				c.Key = 1000
				_, err = tx.Create(c)
			case "update":
				c.Val = 1
				err = tx.Update(c)
			case "sync":
				c.Val = 1
				err = tx.Sync()
			}
			p.must(err)
			p.must(tx.Sync())
			p.act.beforeOp = func(k int) {
				if k == 1 {
					c.Port = 4242 // after the first operation encoded c
				}
			}
			p.must(tx.Commit())
			p.act.beforeOp = nil
			id, _ := p.act.IDOf(c)
			if got, want := p.sync(), []string{fmt.Sprintf("update Cell %d Port", id)}; !slices.Equal(got, want) {
				t.Fatalf("next Sync sent %v, want %v", got, want)
			}
			p.checkEqual()
			if got := p.sync(); len(got) != 0 {
				t.Fatalf("Sync after that sent %v", got)
			}
		})
	}
}

// TestArenaStandbyReadersDuringApply: Apply allocates and frees arena
// slots while readers ask the arena's size and the tracking state; under
// -race, a heap arena shows whether the two share a lock.
func TestArenaStandbyReadersDuringApply(t *testing.T) {
	p := newArenaPair(t, Config{ArenaHeap: true})
	cells, err := ArenaOf[Cell](p.sby.View())
	p.must(err)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	reads := 0
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = cells.Len()
			p.sby.DirtyTracking()
			reads++
		}
	})
	for range 40 {
		cs := p.newCells(200)
		tx, err := p.act.Begin()
		p.must(err)
		for _, c := range cs[:150] {
			p.must(tx.Delete(c))
		}
		p.must(tx.Commit())
	}
	close(stop)
	wg.Wait()
	// The last Apply's deletes stay allocated until the next one.
	if n := cells.Len(); n != 40*50+150 {
		t.Fatalf("standby arena holds %d, want %d", n, 40*50+150)
	}
	p.checkEqual()
	t.Logf("%d reads raced the applies", reads)
}

// TestArenaCloseKeepsLastApplysDeletes: a standby's Close leaves mapped
// the objects its last Apply deleted (its subscribers were handed them),
// and unmaps once another Apply has freed them.
func TestArenaCloseKeepsLastApplysDeletes(t *testing.T) {
	p := newArenaPair(t, Config{})
	cs := p.newCells(10)
	var deleted []*Cell
	p.sby.Subscribe(func(c Change) {
		if c.Op == OpDelete {
			deleted = append(deleted, c.Object.(*Cell))
		}
	})
	tx, err := p.act.Begin()
	p.must(err)
	for _, c := range cs {
		p.must(tx.Delete(c))
	}
	p.must(tx.Commit())
	if err := p.sby.Close(); !errors.Is(err, ErrArenaLive) {
		t.Fatalf("close right after the deleting Apply: %v, want ErrArenaLive", err)
	}
	var keys uint64
	for _, c := range deleted {
		keys += c.Key // still mapped
	}
	if len(deleted) != 10 || keys != 45 {
		t.Fatalf("subscribers were handed %d deleted cells, keys summing to %d", len(deleted), keys)
	}
	tx, err = p.act.Begin()
	p.must(err)
	_, err = tx.Create(&NextHop{Iface: "next"})
	p.must(err)
	p.must(tx.Commit())
	if err := p.sby.Close(); err != nil {
		t.Fatalf("close once the next Apply freed them: %v", err)
	}
	if err := p.act.Close(); err != nil {
		t.Fatalf("close of the emptied active: %v", err)
	}
	if _, err := p.cells.New(); err == nil {
		t.Fatal("New after the arenas were unmapped")
	}
}

// TestArenaDemotePromoteBeforeSnapshot: a store demoted and promoted again
// before any snapshot arrives still knows its arena objects as such: the
// first Sync sends every one whole (their shadows are stale, whatever the
// pages say), and a committed delete frees the slot.
func TestArenaDemotePromoteBeforeSnapshot(t *testing.T) {
	p := newArenaPair(t, Config{ArenaScanRatio: 1})
	requireTracking(t, p.act)
	cells := p.newCells(500)
	p.sync()
	_, err := p.act.Demote()
	p.must(err)
	_, err = p.act.Promote()
	p.must(err)
	if got := p.sync(); len(got) != 500 || !arenaOfType(p.act, "Cell").lastRun.full {
		t.Fatalf("first Sync after demote and promote sent %d updates (full %v), want 500", len(got), arenaOfType(p.act, "Cell").lastRun.full)
	}
	tx, err := p.act.Begin()
	p.must(err)
	p.must(tx.Delete(cells[0]))
	p.must(tx.Commit())
	if n := p.cells.Len(); n != 499 {
		t.Fatalf("arena holds %d after a delete, want 499", n)
	}
	p.checkEqual()
}

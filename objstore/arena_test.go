package objstore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/swha/swha/l2transport/linktest"
)

// Cell is an arena type of 40 bytes: 4096 is no multiple of it, so some
// cells straddle two pages.
type Cell struct {
	Key   uint64
	Val   uint64
	Peer  uint64 // ID of another object
	Flags uint32
	Name  [8]byte
	Port  uint16
}

// Wide is a 64-byte arena type, 64 to a page.
type Wide struct {
	Key  uint64
	Vals [7]uint64
}

func arenaRegistry(t testing.TB) *Registry {
	t.Helper()
	r := NewRegistry()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.Register("Cell", Cell{}, InArena()))
	must(r.Register("Wide", Wide{}, InArena()))
	must(r.Register("NextHop", NextHop{}))
	must(r.Register("AppConfig", AppConfig{}))
	must(r.Register("CellRef", CellRef{}))
	return r
}

// CellRef is a heap object that points at an arena object, and into one.
type CellRef struct {
	Name string
	Cell *Cell
	Val  *uint64 `swha:",into=Cell"`
}

// arenaPair is an active store with arenas whose records feed a standby.
type arenaPair struct {
	t     testing.TB
	act   *Store
	sby   *Store
	recs  [][]byte
	cells *Arena[Cell]
	wides *Arena[Wide]
}

func newArenaPair(t testing.TB, cfg Config) *arenaPair {
	t.Helper()
	p := &arenaPair{t: t}
	var err error
	scfg := cfg
	scfg.Standby = true
	if p.sby, err = NewStore(arenaRegistry(t), scfg); err != nil {
		t.Fatal(err)
	}
	cfg.Sink = SinkFunc(func(rec []byte) error {
		c := append([]byte(nil), rec...)
		p.recs = append(p.recs, c)
		if err := p.sby.Apply(c); err != nil {
			t.Fatalf("standby apply: %v", err)
		}
		return nil
	})
	if p.act, err = NewStore(arenaRegistry(t), cfg); err != nil {
		t.Fatal(err)
	}
	if p.cells, err = ArenaOf[Cell](p.act.View()); err != nil {
		t.Fatal(err)
	}
	if p.wides, err = ArenaOf[Wide](p.act.View()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range []*Store{p.act, p.sby} {
			if err := s.Close(); err != nil && !errors.Is(err, ErrArenaLive) {
				t.Errorf("close: %v", err)
			}
		}
	})
	return p
}

// requireTracking skips t where the kernel lacks the dirty tracking, or
// fails it under SWHA_REQUIRE_NETNS=1 (CI, whose kernel has it).
func requireTracking(t testing.TB, s *Store) {
	t.Helper()
	if ok, why := s.DirtyTracking(); !ok {
		msg := "kernel page dirty tracking (userfaultfd WP_ASYNC + PAGEMAP_SCAN, Linux 6.7+) unavailable: " + why
		if os.Getenv("SWHA_REQUIRE_NETNS") == "1" {
			t.Fatal(msg + "; SWHA_REQUIRE_NETNS=1 makes it required")
		}
		t.Skip(msg)
	}
}

func (p *arenaPair) must(err error) {
	p.t.Helper()
	if err != nil {
		p.t.Fatal(err)
	}
}

// newCells creates n cells in one transaction.
func (p *arenaPair) newCells(n int) []*Cell {
	return createArena(p, p.cells, n, func(c *Cell, k int) { c.Key = uint64(k) })
}

// createArena creates n objects of arena in one transaction, set by init.
func createArena[T any](p *arenaPair, arena *Arena[T], n int, init func(*T, int)) []*T {
	p.t.Helper()
	tx, err := p.act.Begin()
	p.must(err)
	out := make([]*T, n)
	for k := range out {
		o, err := arena.New()
		p.must(err)
		init(o, k)
		_, err = tx.Create(o)
		p.must(err)
		out[k] = o
	}
	p.must(tx.Commit())
	return out
}

// sync runs a Sync and returns its records, summarized and sorted.
func (p *arenaPair) sync() []string {
	p.t.Helper()
	p.recs = p.recs[:0]
	p.must(p.act.Sync())
	out := summarize(p.t, p.act.reg, p.recs)
	out = slices.DeleteFunc(out, func(l string) bool { return strings.HasPrefix(l, "commit") })
	sort.Strings(out)
	return out
}

func (p *arenaPair) checkEqual() {
	p.t.Helper()
	if a, b := dump(p.act), dump(p.sby); a != b {
		p.t.Fatalf("standby differs\nactive:\n%s\nstandby:\n%s", a, b)
	}
}

func arenaOfType(s *Store, name string) *arena { return s.arenas[s.reg.byName[name].id-1] }

// dirtyPages lists the pages the last Sync of a found written, as page
// numbers.
func (a *arena) dirtyPages() []uintptr {
	var out []uintptr
	for _, r := range a.ranges {
		for pg := r.lo; pg < r.hi; pg += 1 << pageShift {
			out = append(out, pg>>pageShift)
		}
	}
	return out
}

func pageOf(p unsafe.Pointer, off uintptr) uintptr { return (uintptr(p) + off) >> pageShift }

func TestArenaRefusesPointers(t *testing.T) {
	type bad struct {
		A uint32
		B struct{ S string }
	}
	r := NewRegistry()
	err := r.Register("bad", bad{}, InArena())
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "B.S") {
		t.Fatalf("register: %v, want ErrUnsupported naming B.S", err)
	}
	if err := r.Register("heap", NextHop{}); err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(r, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ArenaOf[NextHop](s.View()); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("ArenaOf of a heap type: %v", err)
	}
}

// TestArenaFallbackReason: a forced fallback says why, and a store without
// arena types opens nothing.
func TestArenaFallbackReason(t *testing.T) {
	p := newArenaPair(t, Config{ArenaFullScan: true})
	if ok, why := p.act.DirtyTracking(); ok || why != "Config.ArenaFullScan" {
		t.Fatalf("DirtyTracking = %v, %q", ok, why)
	}
	s, err := NewStore(testRegistry(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if s.track != nil || s.arenas != nil {
		t.Fatal("a store without arena types opened the tracking")
	}
}

// TestArenaDirtyPagesExact: the pages written, and only those, are
// reported (a page only read is not), and only the objects on them that
// changed are sent.
func TestArenaDirtyPagesExact(t *testing.T) {
	p := newArenaPair(t, Config{ArenaScanRatio: 1}) // never the full diff
	requireTracking(t, p.act)
	cells := p.newCells(600) // about six pages
	p.sync()
	if got := p.sync(); len(got) != 0 {
		t.Fatalf("clean Sync sent %v", got)
	}
	// A cell wholly inside each of the first pages.
	var inside []*Cell
	seen := map[uintptr]bool{}
	for _, c := range cells {
		q := unsafe.Pointer(c)
		if pg := pageOf(q, 0); pg == pageOf(q, unsafe.Sizeof(*c)-1) && !seen[pg] {
			seen[pg] = true
			inside = append(inside, c)
		}
	}
	if len(inside) < 5 {
		t.Fatalf("cells on %d pages", len(inside))
	}
	inside[0].Val = 7
	inside[2].Flags = 9
	sum := inside[3].Val + inside[4].Val // only read
	got := p.sync()
	want := []string{fmt.Sprintf("update Cell %d Val", inside[0].Key+1), fmt.Sprintf("update Cell %d Flags", inside[2].Key+1)}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("records %v, want %v (read %d)", got, want, sum)
	}
	a := arenaOfType(p.act, "Cell")
	wantPages := []uintptr{pageOf(unsafe.Pointer(inside[0]), 0), pageOf(unsafe.Pointer(inside[2]), 0)}
	if pg := a.dirtyPages(); !slices.Equal(pg, wantPages) || a.lastRun.full {
		t.Fatalf("dirty pages %x (full %v), want %x", pg, a.lastRun.full, wantPages)
	}
	if got := p.sync(); len(got) != 0 || len(a.dirtyPages()) != 0 {
		t.Fatalf("second Sync: %v, pages %x", got, a.dirtyPages())
	}
	p.checkEqual()
}

// TestArenaStraddle: a write to the part of an object on its second page
// is found from that page alone.
func TestArenaStraddle(t *testing.T) {
	p := newArenaPair(t, Config{ArenaScanRatio: 1})
	requireTracking(t, p.act)
	cells := p.newCells(300)
	p.sync()
	off := unsafe.Offsetof(Cell{}.Port)
	var c *Cell
	for _, x := range cells {
		if q := unsafe.Pointer(x); pageOf(q, 0) != pageOf(q, off) {
			c = x
			break
		}
	}
	if c == nil {
		t.Fatal("no cell straddles a page")
	}
	c.Port = 179
	got := p.sync()
	if want := []string{fmt.Sprintf("update Cell %d Port", c.Key+1)}; !slices.Equal(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	a := arenaOfType(p.act, "Cell")
	if pg := a.dirtyPages(); !slices.Equal(pg, []uintptr{pageOf(unsafe.Pointer(c), off)}) {
		t.Fatalf("dirty pages %x, want the second page of the cell only", pg)
	}
	p.checkEqual()
}

// TestArenaGrowFreeReuse: the arena grows by regions without moving an
// object, a committed delete frees the slot for reuse, handles of freed
// objects resolve to nil, and Close unmaps only an empty arena.
func TestArenaGrowFreeReuse(t *testing.T) {
	for _, cfg := range []Config{{}, {ArenaHeap: true}} {
		t.Run(fmt.Sprintf("heap=%v", cfg.ArenaHeap), func(t *testing.T) {
			p := newArenaPair(t, cfg)
			cells := p.newCells(1000)
			addrs := make([]uintptr, len(cells))
			hs := make([]Handle, len(cells))
			for k, c := range cells {
				addrs[k] = uintptr(unsafe.Pointer(c))
				h, ok := p.cells.Handle(c)
				if !ok || p.cells.At(h) != c {
					t.Fatalf("handle of cell %d: %v %v", k, h, ok)
				}
				hs[k] = h
			}
			cells = append(cells, p.newCells(4000)...) // several regions
			a := arenaOfType(p.act, "Cell")
			if n := a.nregs.Load(); n < 3 {
				t.Fatalf("%d regions for 5000 cells", n)
			}
			for k := range addrs {
				if uintptr(unsafe.Pointer(cells[k])) != addrs[k] || cells[k].Key != uint64(k) {
					t.Fatalf("cell %d moved or changed", k)
				}
				cells[k].Val = uint64(k) * 3
			}
			p.sync()

			if err := p.cells.Free(cells[0]); !errors.Is(err, ErrArenaInStore) {
				t.Fatalf("free of a stored cell: %v", err)
			}
			tx, err := p.act.Begin()
			p.must(err)
			for _, c := range cells[:500] {
				p.must(tx.Delete(c))
			}
			p.must(tx.Commit())
			if err := p.cells.Free(cells[0]); !errors.Is(err, ErrNotInArena) {
				t.Fatalf("free of a deleted cell: %v", err)
			}
			if p.cells.At(hs[0]) != nil {
				t.Fatal("handle of a deleted cell still resolves")
			}
			freed := map[uintptr]bool{}
			for _, x := range addrs[:500] {
				freed[x] = true
			}
			reused := p.newCells(500)
			for _, c := range reused {
				if !freed[uintptr(unsafe.Pointer(c))] || c.Val != 0 {
					t.Fatalf("new cell at %p: not a freed slot, or not zeroed", c)
				}
			}
			if p.cells.At(hs[0]) != nil {
				t.Fatal("handle of a deleted cell resolves to the cell reusing its slot")
			}
			spare, err := p.cells.New()
			p.must(err)
			p.must(p.cells.Free(spare))
			if err := p.cells.Free(spare); !errors.Is(err, ErrNotInArena) {
				t.Fatalf("double free: %v", err)
			}
			p.sync()
			p.checkEqual()
			if err := p.act.Close(); !errors.Is(err, ErrArenaLive) {
				t.Fatalf("close with live cells: %v", err)
			}
			if cells[600].Key != 600 {
				t.Fatal("memory changed by a refused Close")
			}
			// The standby freed its copies as the deletes applied.
			if n := arenaOfType(p.sby, "Cell").live; n != 5000 {
				t.Fatalf("standby arena holds %d cells, want 5000", n)
			}
			tx, err = p.act.Begin()
			p.must(err)
			for _, c := range append(cells[500:], reused...) {
				p.must(tx.Delete(c))
			}
			p.must(tx.Commit())
			// The standby frees what an Apply deleted from its next Apply
			// on (TestArenaCloseKeepsLastApplysDeletes).
			tx, err = p.act.Begin()
			p.must(err)
			_, err = tx.Create(&NextHop{Iface: "last"})
			p.must(err)
			p.must(tx.Commit())
			if err := p.act.Close(); err != nil {
				t.Fatalf("close of an empty store: %v", err)
			}
			if err := p.sby.Close(); err != nil {
				t.Fatalf("close of the emptied standby: %v", err)
			}
		})
	}
}

// TestArenaFailedCommit: a Sync whose transaction fails has protected the
// written pages again; the next Sync still sends what changed.
func TestArenaFailedCommit(t *testing.T) {
	p := newArenaPair(t, Config{ArenaScanRatio: 1})
	requireTracking(t, p.act)
	cells := p.newCells(300)
	p.sync()
	for _, c := range cells {
		c.Val = 33
	}
	p.act.cfg.MaxTxnBytes = 1000
	if err := p.act.Sync(); !errors.Is(err, ErrTxnTooLarge) {
		t.Fatalf("Sync: %v, want ErrTxnTooLarge", err)
	}
	p.act.cfg.MaxTxnBytes = DefaultMaxTxnBytes
	if got := p.sync(); len(got) != len(cells) {
		t.Fatalf("Sync after the failed one sent %d records, want %d", len(got), len(cells))
	}
	p.checkEqual()
}

// TestArenaPromote: a promoted standby's first Sync sends every object
// whole (their shadows are stale), its later ones only what changed.
func TestArenaPromote(t *testing.T) {
	p := newArenaPair(t, Config{ArenaScanRatio: 1})
	requireTracking(t, p.sby)
	p.newCells(200)
	if _, err := p.sby.Promote(); err != nil {
		t.Fatal(err)
	}
	var n int
	p.sby.cfg.Sink = SinkFunc(func(rec []byte) error {
		if rec[0] == recUpdate {
			n++
		}
		return nil
	})
	p.must(p.sby.Sync())
	if n != 200 {
		t.Fatalf("first Sync after promotion sent %d updates, want 200", n)
	}
	cells, err := ArenaOf[Cell](p.sby.View())
	p.must(err)
	var c *Cell
	p.sby.Each(func(_ uint64, o any) bool { c, _ = o.(*Cell); return c == nil })
	h, _ := cells.Handle(c)
	cells.At(h).Val++
	n = 0
	p.must(p.sby.Sync())
	if n != 1 || arenaOfType(p.sby, "Cell").lastRun.full {
		t.Fatalf("second Sync sent %d updates (full %v), want 1", n, arenaOfType(p.sby, "Cell").lastRun.full)
	}
}

// arenaWorld drives the same random workload on several pairs: writes into
// arena objects without telling the store, creates, deletes, Syncs and
// SyncGroups.
type arenaWorld struct {
	rng   *rand.Rand
	pairs []*arenaPair
	cells [][]*Cell // per pair, in the same order
	grp   []*Group
	inGrp []bool
	syncs int
}

func (w *arenaWorld) step(t *testing.T) {
	n := len(w.cells[0])
	switch op := w.rng.IntN(10); {
	case op < 2 || n < 10:
		k := 1 + w.rng.IntN(40)
		g := w.rng.IntN(2) == 0
		for i, p := range w.pairs {
			tx, err := p.act.Begin()
			p.must(err)
			for j := range k {
				c, err := p.cells.New()
				p.must(err)
				c.Key = uint64(n + j)
				if g {
					_, err = tx.CreateIn(w.grp[i], c)
				} else {
					_, err = tx.Create(c)
				}
				p.must(err)
				w.cells[i] = append(w.cells[i], c)
			}
			p.must(tx.Commit())
		}
		for range k {
			w.inGrp = append(w.inGrp, g)
		}
	case op < 3:
		k := w.rng.IntN(n)
		for i, p := range w.pairs {
			tx, err := p.act.Begin()
			p.must(err)
			p.must(tx.Delete(w.cells[i][k]))
			p.must(tx.Commit())
			w.cells[i] = slices.Delete(w.cells[i], k, k+1)
		}
		w.inGrp = slices.Delete(w.inGrp, k, k+1)
	case op < 8:
		for range 1 + w.rng.IntN(20) {
			k, v, f := w.rng.IntN(n), w.rng.Uint64(), w.rng.IntN(3)
			for i := range w.pairs {
				c := w.cells[i][k]
				switch f {
				case 0:
					c.Val = v
				case 1:
					c.Port = uint16(v)
				default:
					c.Name[v%8] = byte(v)
				}
			}
		}
	default:
		group := op == 9
		var first []string
		for i, p := range w.pairs {
			p.recs = p.recs[:0]
			tx, err := p.act.Begin()
			p.must(err)
			if group {
				p.must(tx.SyncGroup(w.grp[i]))
			} else {
				p.must(tx.Sync())
			}
			p.must(tx.Commit())
			got := summarize(t, p.act.reg, p.recs)
			sort.Strings(got)
			if i == 0 {
				first = got
			} else if !slices.Equal(got, first) {
				t.Fatalf("pair %d (%s) sent %v, pair 0 sent %v", i, trackMode(p.act), got, first)
			}
			if !group && w.syncs%8 == 0 { // a SyncGroup leaves the other objects' changes unsent
				p.checkEqual()
			}
		}
		w.syncs++
	}
}

func trackMode(s *Store) string {
	if ok, why := s.DirtyTracking(); !ok {
		return why
	}
	return "kernel"
}

// TestArenaFallbackEqualsKernel runs one random workload on a tracked store,
// a forced full scan and a heap arena: every Sync and SyncGroup sends the
// same records from all three, and each standby stays equal to its active.
func TestArenaFallbackEqualsKernel(t *testing.T) {
	for _, seed := range linktest.Seeds(t, linktest.PropertySeeds...) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := &arenaWorld{rng: rand.New(rand.NewPCG(seed, 16))}
			for _, cfg := range []Config{{}, {ArenaFullScan: true}, {ArenaHeap: true}} {
				p := newArenaPair(t, cfg)
				g, err := p.act.NewGroup("vrf", "vrf")
				p.must(err)
				w.pairs = append(w.pairs, p)
				w.grp = append(w.grp, g)
				w.cells = append(w.cells, nil)
			}
			requireTracking(t, w.pairs[0].act)
			steps := 200
			if raceEnabled {
				steps = 60
			}
			for range steps {
				w.step(t)
			}
			for _, p := range w.pairs {
				p.sync()
				p.checkEqual()
			}
		})
	}
}

// TestArenaHeapUnderLock is the consistency rule on a heap arena, which the
// race detector sees: writers change objects under the application's state
// lock, the owner syncs under it, readers read the standby inside Read.
func TestArenaHeapUnderLock(t *testing.T) {
	p := newArenaPair(t, Config{ArenaHeap: true})
	cells := p.newCells(200)
	var state sync.Mutex
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 500 {
				state.Lock()
				cells[rng.IntN(len(cells))].Val++
				state.Unlock()
			}
		})
	}
	done := make(chan struct{})
	readers := sync.WaitGroup{}
	readers.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			p.sby.Read(func() {
				p.sby.eachLocked(func(_ uint64, o any) bool { _ = o.(*Cell).Val; return true })
			})
		}
	})
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	for syncing := true; syncing; {
		select {
		case <-finished:
			syncing = false
		default:
		}
		state.Lock()
		p.must(p.act.Sync())
		state.Unlock()
	}
	close(done)
	readers.Wait()
	var total uint64
	for _, c := range cells {
		total += c.Val
	}
	if total != 1000 {
		t.Fatalf("writers made %d increments, want 1000", total)
	}
	p.checkEqual()
}

// TestArenaRacingWriters: writers change arena objects while the owner
// syncs, with no lock between them. Some Syncs send torn objects; once the
// writers stop, one more Sync leaves the standby equal to the active: no
// write is lost. (The race detector does not see mmap'd memory; the
// writers touch only that.)
func TestArenaRacingWriters(t *testing.T) {
	p := newArenaPair(t, Config{})
	requireTracking(t, p.act)
	wides := createArena(p, p.wides, 4000, func(w *Wide, k int) { w.Key = uint64(k) })
	var wg sync.WaitGroup
	var running atomic.Int32
	running.Store(3)
	writes := 100000
	if raceEnabled {
		writes = 10000
	}
	for g := range 3 {
		wg.Go(func() {
			defer running.Add(-1)
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			for range writes {
				w := wides[rng.IntN(len(wides))]
				atomic.AddUint64(&w.Vals[g], 1)
				atomic.AddUint64(&w.Vals[6], 1)
			}
		})
	}
	syncs := 0
	for running.Load() > 0 || syncs < 3 {
		p.must(p.act.Sync())
		syncs++
	}
	wg.Wait()
	p.must(p.act.Sync())
	var total uint64
	for _, w := range wides {
		total += w.Vals[6]
	}
	if total != uint64(3*writes) {
		t.Fatalf("%d increments, want %d", total, 3*writes)
	}
	p.checkEqual()
	t.Logf("%d Syncs raced the writers", syncs)
}

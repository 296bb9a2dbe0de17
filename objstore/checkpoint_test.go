package objstore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ckptStandby is a fresh standby with the static objects the test stores
// register.
func ckptStandby(t testing.TB) *Store {
	t.Helper()
	s, err := NewStore(testRegistry(t), Config{Standby: true})
	if err != nil {
		t.Fatal(err)
	}
	registerStatics(t, s, &AppConfig{}, &Holder{})
	return s
}

func registerStatics(t testing.TB, s *Store, cfg *AppConfig, table *Holder) {
	t.Helper()
	if err := s.RegisterStatic("config", cfg); err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterStatic("table", table); err != nil {
		t.Fatal(err)
	}
}

// rich holds the application's side of richPair's active.
type rich struct {
	cfg        *AppConfig
	table      *Holder
	red, blue  *Group
	hops       []*NextHop
	h          *Holder
	all, all2  *AllKinds
	r0, r1, r2 *Route
}

// richPair builds an active and its standby holding every kind of value:
// statics (one the target of interior pointers), two groups, pointers
// between dynamic objects, into a grouped object and into a static, and
// a history with updates and a delete (so the slab has a hole).
func richPair(t testing.TB) (*pair, *rich) {
	t.Helper()
	p := newPair(t, 0)
	x := &rich{cfg: &AppConfig{Hostname: "sw1", ASN: 65001, Peers: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}, table: &Holder{Name: "table"}}
	registerStatics(t, p.act, x.cfg, x.table)
	registerStatics(t, p.sby, &AppConfig{}, &Holder{})
	var err error
	if x.red, err = p.act.NewGroup("red", "red"); err != nil {
		t.Fatal(err)
	}
	if x.blue, err = p.act.NewGroup("blue", ""); err != nil {
		t.Fatal(err)
	}
	x.hops = []*NextHop{
		{Addr: netip.MustParseAddr("192.0.2.1"), Iface: "eth1"},
		{Addr: netip.MustParseAddr("2001:db8::1"), MAC: []byte{}},
		{Iface: "eth3", Weight: 3},
	}
	x.h = &Holder{Name: "h", Count: 7}
	x.all = fullAllKinds(x.hops, x.h)
	x.all2 = &AllKinds{IntoU: &x.table.Count, IntoIn: &x.table.Slots[1], Ref: x.hops[2], M: map[string]int32{}}
	x.r0 = &Route{Prefix: netip.MustParsePrefix("10.0.0.0/8"), NextHop: x.hops[0], Communities: []uint32{1, 2}}
	x.r1 = &Route{Prefix: netip.MustParsePrefix("10.1.0.0/16"), NextHop: x.hops[1], Communities: []uint32{}}
	x.r2 = &Route{Prefix: netip.MustParsePrefix("10.2.0.0/16")}
	tx, _ := p.act.Begin()
	for _, c := range []struct {
		g   *Group
		obj any
	}{{x.red, x.hops[0]}, {nil, x.hops[1]}, {x.blue, x.hops[2]}, {x.red, x.h}, {nil, x.all}, {x.blue, x.all2}, {x.red, x.r0}, {nil, x.r1}, {x.blue, x.r2}} {
		if _, err := tx.CreateIn(c.g, c.obj); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Update(x.cfg); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx, _ = p.act.Begin()
	x.cfg.ASN++
	x.table.Count = 42
	x.r0.Metric = 100
	_ = tx.Update(x.cfg)
	_ = tx.Update(x.table)
	_ = tx.Update(x.r0)
	_ = tx.Delete(x.r2)
	x.r2 = &Route{Prefix: netip.MustParsePrefix("10.3.0.0/16"), NextHop: x.hops[2], Tag: 9}
	if _, err := tx.CreateIn(x.blue, x.r2); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if a, b := dump(p.act), dump(p.sby); a != b {
		t.Fatalf("standby differs from active:\n%s\n%s", a, b)
	}
	return p, x
}

// groupsOf renders a store's groups: ID, name, prefix and size.
func groupsOf(s *Store) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(s.groups)) {
		g := s.groups[id]
		fmt.Fprintf(&b, "group %d %q/%q n=%d byname=%v\n", id, g.name, g.prefix, g.Len(), s.groupsByName[g.name] == g)
	}
	if len(s.groupsByName) != len(s.groups) {
		fmt.Fprintf(&b, "%d groups by name, %d by ID\n", len(s.groupsByName), len(s.groups))
	}
	return b.String()
}

// ckptState renders everything Load promises to leave alone on failure.
func ckptState(s *Store) string {
	var b strings.Builder
	fmt.Fprintf(&b, "seq=%d applied=%d snap=%d await=%v staged=%d held=%d\n",
		s.Seq(), s.AppliedSeq(), s.SnapshotID(), s.AwaitingSnapshot(), s.Staged(), s.Held())
	s.mu.RLock()
	fmt.Fprintf(&b, "peer types %v, by name %v, refusals %d+%d\n", slices.Sorted(maps.Keys(s.peerTypes)),
		slices.Sorted(maps.Keys(s.peerByName)), len(s.refusals), s.refusalsDropped)
	s.mu.RUnlock()
	b.WriteString(groupsOf(s))
	b.WriteString(dump(s))
	return b.String()
}

// content is what a checkpoint carries: objects, groups and position.
func content(s *Store) string {
	return fmt.Sprintf("applied=%d\n%s%s", s.AppliedSeq(), groupsOf(s), dump(s))
}

func saveBytes(t testing.TB, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := s.Save(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("Save says %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func loadInto(t testing.TB, data []byte) *Store {
	t.Helper()
	s := ckptStandby(t)
	if err := s.Load(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheckpointRoundTrip(t *testing.T) {
	p, x := richPair(t)
	mirror := content(p.sby)
	// Changed and not committed: the checkpoint must not carry it.
	x.r1.Metric = 999
	x.cfg.Hostname = "uncommitted"

	for _, from := range []struct {
		name string
		s    *Store
	}{{"active", p.act}, {"standby", p.sby}} {
		t.Run(from.name, func(t *testing.T) {
			data := saveBytes(t, from.s)
			s := loadInto(t, data)
			if got := content(s); got != mirror {
				t.Fatalf("loaded store differs from the committed state:\n got %s\nwant %s", got, mirror)
			}
			if s.Seq() != p.act.Seq() || s.AppliedSeq() != p.act.Seq() {
				t.Fatalf("loaded seq %d applied %d, want %d", s.Seq(), s.AppliedSeq(), p.act.Seq())
			}
			if s.Staged() != 0 || s.AwaitingSnapshot() {
				t.Fatal("loaded store has a stream in progress")
			}
			id, _ := p.act.IDOf(x.r0)
			if got := s.Name(id); got != "red-"+strconv.FormatUint(id, 10) {
				t.Fatalf("name of a red route: %q", got)
			}
			// What was loaded saves and loads again to the same state (not
			// the same bytes: maps encode in iteration order).
			if got := content(loadInto(t, saveBytes(t, s))); got != mirror {
				t.Fatalf("a loaded store saves to another state:\n got %s\nwant %s", got, mirror)
			}
			if from.s == p.act {
				if s.SnapshotID() != p.act.nextTxn {
					t.Fatalf("snapshot ID %d, active's last txn %d", s.SnapshotID(), p.act.nextTxn)
				}
			} else if s.SnapshotID() != p.sby.SnapshotID() {
				t.Fatalf("snapshot ID %d, standby's %d", s.SnapshotID(), p.sby.SnapshotID())
			}
			checkRestore(t, s, mirror)
		})
	}
}

// checkRestore promotes a store loaded from a checkpoint (how an active
// restores) and checks it replicates from there: a commit that points at
// loaded objects, to a standby seeded by a snapshot.
func checkRestore(t *testing.T, s *Store, want string) {
	if _, err := s.Promote(); err != nil {
		t.Fatal(err)
	}
	sby := ckptStandby(t)
	s.cfg.Sink = SinkFunc(func(rec []byte) error { return sby.Apply(rec) })
	if _, err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	var r *Route
	var h *Holder
	var statics []any
	s.Each(func(id uint64, obj any) bool {
		switch o := obj.(type) {
		case *Route:
			if o.NextHop != nil {
				r = o
			}
		case *Holder:
			if o.Name == "h" {
				h = o
			}
		}
		if id >= 1<<63 {
			statics = append(statics, obj)
		}
		return true
	})
	tx, _ := s.Begin()
	// A snapshot leaves out statics never sent (the promoted store's are
	// all stale): an update sends them whole.
	for _, o := range statics {
		if err := tx.Update(o); err != nil {
			t.Fatal(err)
		}
	}
	r.Metric++
	_ = tx.Update(r)
	a := &AllKinds{Ref: r.NextHop, IntoIn: &h.Slots[3]}
	if _, err := tx.Create(a); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, w := dump(sby), dump(s); got != w {
		t.Fatalf("after restore, replica differs:\n%s\n%s", got, w)
	}
}

func TestCheckpointLoadOnActive(t *testing.T) {
	p, _ := richPair(t)
	data := saveBytes(t, p.act)
	if err := p.act.Load(bytes.NewReader(data)); !errors.Is(err, ErrNotStandby) {
		t.Fatalf("load on an active: %v", err)
	}
	if err := p.act.LoadFile(filepath.Join(t.TempDir(), "none")); !errors.Is(err, ErrNotStandby) {
		t.Fatalf("load file on an active: %v", err)
	}
	tx, _ := p.act.Begin()
	if _, err := p.act.Save(io.Discard); !errors.Is(err, ErrTxnOpen) {
		t.Fatalf("save with a transaction open: %v", err)
	}
	_ = tx.Abort()
}

// ckptRecords splits a checkpoint into its records, independently of the
// loader, by the documented format.
func ckptRecords(t testing.TB, data []byte) [][]byte {
	t.Helper()
	var recs [][]byte
	pos := 12
	for {
		l, k := binary.Uvarint(data[pos:])
		if k <= 0 {
			t.Fatalf("bad length at %d", pos)
		}
		pos += k
		if l == 0 {
			break
		}
		recs = append(recs, data[pos:pos+int(l)])
		pos += int(l)
	}
	if pos+12 != len(data) {
		t.Fatalf("trailer at %d of %d bytes", pos, len(data))
	}
	return recs
}

// frameCheckpoint builds a file around records with a correct trailer.
func frameCheckpoint(version, flags uint16, recs ...[]byte) []byte {
	b := []byte("SWHACKPT")
	b = binary.BigEndian.AppendUint16(b, version)
	b = binary.BigEndian.AppendUint16(b, flags)
	for _, r := range recs {
		b = binary.AppendUvarint(b, uint64(len(r)))
		b = append(b, r...)
	}
	return frameBody(b)
}

// frameBody appends the trailer to a header and records.
func frameBody(b []byte) []byte {
	tpos := len(b)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(tpos))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// rec builds a record: uint64 and int parts are uvarints, strings are
// length-prefixed, byte slices raw.
func rec(kind byte, parts ...any) []byte {
	b := []byte{kind}
	for _, p := range parts {
		switch v := p.(type) {
		case int:
			b = binary.AppendUvarint(b, uint64(v))
		case uint64:
			b = binary.AppendUvarint(b, v)
		case string:
			b = appendString(b, v)
		case []byte:
			b = append(b, v...)
		default:
			panic(fmt.Sprintf("rec: %T", p))
		}
	}
	return b
}

// loadTarget is a standby following a live stream, with a transaction
// staged (its Commit held back) so that a failed load can be seen to leave
// the stream intact. It returns the held-back Commit record.
func loadTarget(t *testing.T) (*pair, []byte) {
	p, x := richPair(t)
	p.applyTo = false
	n := len(p.recs)
	tx, _ := p.act.Begin()
	x.r1.Metric = 5
	_ = tx.Update(x.r1)
	_, _ = tx.CreateIn(x.blue, &NextHop{Iface: "late"})
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, r := range p.recs[n : len(p.recs)-1] {
		if err := p.sby.Apply(r); err != nil {
			t.Fatal(err)
		}
	}
	if p.sby.Staged() != 1 {
		t.Fatalf("%d staged", p.sby.Staged())
	}
	return p, p.recs[len(p.recs)-1]
}

func TestCheckpointLoadErrors(t *testing.T) {
	p, commit := loadTarget(t)
	s := p.sby
	before := ckptState(s)

	// A checkpoint of another, smaller store of the same lineage.
	src, sx := richPair(t)
	tx, _ := src.act.Begin()
	_ = tx.Delete(sx.r0)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	good := saveBytes(t, src.act)
	recs := ckptRecords(t, good)

	fail := func(name string, data []byte, want error) {
		t.Helper()
		err := s.Load(bytes.NewReader(data))
		if !errors.Is(err, want) {
			t.Fatalf("%s: got %v, want %v", name, err, want)
		}
		if got := ckptState(s); got != before {
			t.Fatalf("%s: store changed by a failed load (%v):\n got %s\nwant %s", name, err, got, before)
		}
	}

	for n := 0; n < len(good); n++ {
		fail(fmt.Sprintf("truncated to %d", n), good[:n], ErrCheckpointTruncated)
	}
	for i := 0; i < len(good); i++ {
		bad := bytes.Clone(good)
		bad[i] ^= 1 << (i % 8)
		var want error
		switch {
		case i < 8:
			want = ErrCheckpointForeign
		case i < 10:
			want = ErrCheckpointVersion
		case i >= len(good)-13 && i < len(good)-4:
			want = ErrCheckpointTruncated // the trailer no longer points at itself
		default:
			want = ErrCheckpointCorrupt
		}
		fail(fmt.Sprintf("bit %d of byte %d flipped", i%8, i), bad, want)
	}
	fail("foreign", []byte("#!/bin/sh\necho this is not a checkpoint\n"), ErrCheckpointForeign)
	fail("gzip", []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}, ErrCheckpointForeign)
	fail("empty", nil, ErrCheckpointTruncated)
	v2 := bytes.Clone(good)
	v2[9] = 2
	fail("version 2", v2, ErrCheckpointVersion)
	fail("version 2, intact", frameCheckpoint(2, 0, recs...), ErrCheckpointVersion)
	fail("unknown flag", frameCheckpoint(1, 4, recs...), ErrCheckpointVersion)
	fail("trailing bytes", append(bytes.Clone(good), 0), ErrCheckpointTruncated)
	if err := s.load(bytes.NewReader(good), int64(len(good)-1)); !errors.Is(err, ErrCheckpointTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if err := s.load(io.MultiReader(bytes.NewReader(good), infinite{}), 1<<20); !errors.Is(err, ErrCheckpointTooLarge) {
		t.Fatalf("endless reader: %v", err)
	}

	// Intact files (valid CRC) whose records are wrong.
	schemas := slices.DeleteFunc(slices.Clone(recs), func(r []byte) bool { return r[0] != recSchema })
	var groupRecs [][]byte
	for _, r := range recs {
		if r[0] == recGroup {
			groupRecs = append(groupRecs, r)
		}
	}
	reg := s.reg
	tid := func(name string) int { return int(reg.byName[name].id) }
	hop := func(txn, id int) []byte { // a NextHop with no group
		return rec(recCreate, txn, id, tid("NextHop"), 0, []byte{0}, "", []byte{0}, 0)
	}
	route := func(txn, id, group, hop int) []byte {
		return rec(recCreate, txn, id, tid("Route"), group, []byte{0, 0}, hop, []byte{0, 0, 0, 0, 0, 0, 0}, []byte{0, 0, 0})
	}
	build := func(body ...[]byte) []byte {
		return frameCheckpoint(1, 0, append(append(slices.Clone(schemas), groupRecs...), body...)...)
	}
	// withGroups: the schemas, the given group records and body.
	withGroups := func(groups [][]byte, body ...[]byte) []byte {
		return frameCheckpoint(1, 0, append(append(slices.Clone(schemas), groups...), body...)...)
	}
	// The hand-built records are right when nothing else is wrong.
	ok := build(rec(recSnapshot, 500), hop(500, 1), route(500, 2, 1, 1), rec(recCommit, 500, 77, 3))
	okStore := ckptStandby(t)
	if err := okStore.Load(bytes.NewReader(ok)); err != nil {
		t.Fatalf("hand-built checkpoint: %v", err)
	}
	if okStore.Seq() != 77 || okStore.SnapshotID() != 500 || okStore.Len() != 4 {
		t.Fatalf("hand-built checkpoint loaded as seq %d snapshot %d, %d objects", okStore.Seq(), okStore.SnapshotID(), okStore.Len())
	}
	for _, c := range []struct {
		name string
		data []byte
		also error
	}{
		{"dangling pointer", build(rec(recSnapshot, 5), route(5, 2, 0, 99), rec(recCommit, 5, 3, 2)), ErrDangling},
		{"pointer of the wrong type", build(rec(recSnapshot, 5), hop(5, 1), route(5, 2, 0, 2), rec(recCommit, 5, 3, 3)), ErrDangling},
		{"group never announced", build(rec(recSnapshot, 5), route(5, 2, 9, 0), rec(recCommit, 5, 3, 2)), ErrCorrupt},
		{"type never announced", build(rec(recSnapshot, 5), rec(recCreate, 5, 1, 99, 0), rec(recCommit, 5, 3, 2)), ErrCorrupt},
		{"unknown static", build(rec(recSnapshot, 5), rec(recUpdate, 5, StaticID("nosuch"), tid("AppConfig"), 0), rec(recCommit, 5, 3, 2)), ErrUnknownObject},
		{"static of another type", build(rec(recSnapshot, 5), rec(recUpdate, 5, StaticID("table"), tid("AppConfig"), 0), rec(recCommit, 5, 3, 2)), ErrCorrupt},
		{"object twice", build(rec(recSnapshot, 5), hop(5, 1), hop(5, 1), rec(recCommit, 5, 3, 3)), ErrExists},
		{"bad value", build(rec(recSnapshot, 5), rec(recCreate, 5, 1, tid("NextHop"), 0, []byte{9}), rec(recCommit, 5, 3, 2)), ErrCorrupt},
		{"trailing bytes in a record", build(rec(recSnapshot, 5, []byte{1}), rec(recCommit, 5, 3, 1)), ErrCorrupt},
		{"wrong count", build(rec(recSnapshot, 5), hop(5, 1), rec(recCommit, 5, 3, 5)), ErrCorrupt},
		{"group ID clash", withGroups([][]byte{rec(recGroup, 1, "green", "")}, rec(recSnapshot, 5), rec(recCommit, 5, 3, 1)), ErrCorrupt},
		{"group name clash", withGroups([][]byte{rec(recGroup, 7, "red", "")}, rec(recSnapshot, 5), rec(recCommit, 5, 3, 1)), ErrCorrupt},
		{"group twice", build(rec(recGroup, 1, "red", ""), rec(recSnapshot, 5), rec(recCommit, 5, 3, 1)), nil},
		{"corrupt schema", frameCheckpoint(1, 0, rec(recSchema, 1, []byte{1, 200}), rec(recSnapshot, 5), rec(recCommit, 5, 3, 1)), ErrCorruptSchema},
		{"no commit", build(rec(recSnapshot, 5), hop(5, 1)), nil},
		{"no snapshot", build(), nil},
		{"two snapshots", build(rec(recSnapshot, 5), rec(recSnapshot, 6), rec(recCommit, 5, 3, 1)), nil},
		{"delete inside", build(rec(recSnapshot, 5), rec(recDelete, 5, 1, tid("NextHop")), rec(recCommit, 5, 3, 2)), nil},
		{"record of another txn", build(rec(recSnapshot, 5), hop(6, 1), rec(recCommit, 5, 3, 2)), nil},
		{"commit of another txn", build(rec(recSnapshot, 5), rec(recCommit, 6, 3, 1)), nil},
		{"record after commit", build(rec(recSnapshot, 5), rec(recCommit, 5, 3, 1), hop(5, 1)), nil},
		{"schema inside", build(rec(recSnapshot, 5), schemas[0], rec(recCommit, 5, 3, 1)), nil},
		{"plain commit", build(rec(recCommit, 5, 3, 0)), nil},
		{"unknown kind", build(rec(99, 5)), nil},
		{"empty record", frameBody(append(append([]byte("SWHACKPT\x00\x01\x00\x00"), 0), 0)), nil},
		{"length into trailer", frameBody(append([]byte("SWHACKPT\x00\x01\x00\x00"), 0x7f, 1)), nil},
		{"length varint into the trailer", frameBody(append([]byte("SWHACKPT\x00\x01\x00\x00"), 0xd0)), nil}, // found by FuzzLoadCheckpoint
		{"bad length", frameBody(append([]byte("SWHACKPT\x00\x01\x00\x00"), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)), nil},
	} {
		err := s.Load(bytes.NewReader(c.data))
		if !errors.Is(err, ErrCheckpointInvalid) || (c.also != nil && !errors.Is(err, c.also)) {
			t.Fatalf("%s: got %v, want %v and %v", c.name, err, ErrCheckpointInvalid, c.also)
		}
		if got := ckptState(s); got != before {
			t.Fatalf("%s: store changed by a failed load (%v):\n got %s\nwant %s", c.name, err, got, before)
		}
		t.Logf("%s: %v", c.name, err)
	}

	// The stream the store was following carries on where it was.
	if err := s.Apply(commit); err != nil {
		t.Fatal(err)
	}
	if a, b := dump(p.act), dump(s); a != b {
		t.Fatalf("after failed loads the stream does not continue:\n%s\n%s", a, b)
	}

	// A good checkpoint replaces everything, groups included.
	s.mu.Lock()
	s.addGroup(77, "ghost", "g")
	s.mu.Unlock()
	if err := s.Load(bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	if got, want := content(s), content(src.sby); got != want {
		t.Fatalf("loaded over an existing mirror:\n got %s\nwant %s", got, want)
	}
	if s.Staged() != 0 || s.GroupByName("ghost") != nil {
		t.Fatal("the previous stream's state survived a load")
	}
}

type infinite struct{}

func (infinite) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestCheckpointSeedsStandby seeds a standby with a checkpoint taken at
// seq K, then feeds it only what the active emitted after K: it must end
// up equal to the active. A real resync needs, at the moment the
// checkpoint's state is taken, the active to start a new stream
// (ResetPeer), so that the records after it announce their types again: a
// loaded store forgets the checkpoint's type numbers, which are the saving
// store's.
func TestCheckpointSeedsStandby(t *testing.T) {
	for _, mode := range []string{"active+reset", "standby+reset", "active+refeed"} {
		t.Run(mode, func(t *testing.T) {
			for seed := uint64(1); seed <= 3; seed++ {
				w := newWorld(t, seed)
				needSync := false
				steps := func(n int) {
					for i := 0; i < n; i++ {
						needSync = !w.step(needSync)
					}
				}
				steps(60)
				var data []byte
				if strings.HasPrefix(mode, "active") {
					data = saveBytes(t, w.p.act)
				} else {
					data = saveBytes(t, w.p.sby)
				}
				k := w.p.act.Seq()
				if strings.HasSuffix(mode, "reset") {
					w.p.act.ResetPeer()
				}
				mark := len(w.p.recs)
				steps(60)
				if w.p.act.Seq() <= k+10 {
					t.Fatalf("only %d commits after the checkpoint", w.p.act.Seq()-k)
				}

				s, err := NewStore(testRegistry(t), Config{Standby: true})
				if err != nil {
					t.Fatal(err)
				}
				w.must(s.RegisterStatic("config", &AppConfig{}))
				w.must(s.Load(bytes.NewReader(data)))
				if s.Seq() != k || s.AppliedSeq() != k {
					t.Fatalf("loaded at seq %d/%d, checkpoint taken at %d", s.Seq(), s.AppliedSeq(), k)
				}
				if mode == "standby+reset" && s.SnapshotID() != w.p.sby.SnapshotID() {
					t.Fatalf("snapshot ID %d, source standby's %d", s.SnapshotID(), w.p.sby.SnapshotID())
				}
				if strings.HasSuffix(mode, "refeed") {
					// Without a new stream: the announcements made before
					// the checkpoint, then the live records.
					for _, r := range w.p.recs[:mark] {
						if r[0] == recSchema || r[0] == recGroup {
							w.must(s.Apply(r))
						}
					}
				}
				for i, r := range w.p.recs[mark:] {
					if err := s.Apply(r); err != nil {
						t.Fatalf("seed %d: record %d after the checkpoint: %v", seed, i, err)
					}
				}
				if a, b := dump(w.p.act), dump(s); a != b {
					t.Fatalf("seed %d: seeded standby differs from the active:\n%s\n%s", seed, a, b)
				}
				if s.AppliedSeq() != w.p.act.Seq() {
					t.Fatalf("seed %d: applied %d, active at %d", seed, s.AppliedSeq(), w.p.act.Seq())
				}
			}
		})
	}
}

// failAfter accepts n bytes, then fails.
type failAfter struct {
	w io.Writer
	n int
}

var errInjected = errors.New("injected write failure")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) <= f.n {
		f.n -= len(p)
		return f.w.Write(p)
	}
	k, _ := f.w.Write(p[:f.n])
	f.n = 0
	return k, errInjected
}

func TestSaveWriteFailure(t *testing.T) {
	a := crashStore(t, 0, 300)
	b := crashStore(t, 1, 300)
	path := filepath.Join(t.TempDir(), "ckpt")
	if err := a.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	want := content(loadInto(t, saveBytes(t, a)))
	size := len(saveBytes(t, b))
	for n := 0; n < size; n += 1 + n/40 {
		var buf bytes.Buffer
		got, err := b.Save(&failAfter{w: &buf, n: n})
		if !errors.Is(err, errInjected) || got != int64(n) || buf.Len() != n {
			t.Fatalf("save failing after %d bytes: %v, %d written", n, err, got)
		}
		err = b.saveFile(path, func(w io.Writer) io.Writer { return &failAfter{w: w, n: n} })
		if !errors.Is(err, errInjected) {
			t.Fatalf("save file failing after %d bytes: %v", n, err)
		}
		s := ckptStandby(t)
		if err := s.LoadFile(path); err != nil {
			t.Fatalf("after a failed save at %d bytes: %v", n, err)
		}
		if content(s) != want {
			t.Fatalf("after a failed save at %d bytes the file changed", n)
		}
	}
	if left, _ := filepath.Glob(path + ".tmp-*"); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if err := b.SaveFile(filepath.Join(t.TempDir(), "no", "such", "dir")); err == nil {
		t.Fatal("save into a missing directory succeeded")
	}
}

// crashStore builds an active store of n routes whose content depends on
// variant.
func crashStore(t testing.TB, variant, n int) *Store {
	t.Helper()
	s, err := NewStore(testRegistry(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &AppConfig{Hostname: fmt.Sprint("variant", variant), ASN: uint32(variant)}
	registerStatics(t, s, cfg, &Holder{Name: "table", Count: uint32(variant)})
	g, err := s.NewGroup("vrf", fmt.Sprint("v", variant))
	if err != nil {
		t.Fatal(err)
	}
	tx, _ := s.Begin()
	_ = tx.Update(cfg)
	hops := make([]*NextHop, n/100+1)
	for i := range hops {
		hops[i] = &NextHop{Addr: netip.AddrFrom4([4]byte{192, 0, byte(variant), byte(i)}), Iface: "eth0"}
		_, _ = tx.Create(hops[i])
	}
	for i := 0; i < n; i++ {
		r := &Route{
			Prefix:      netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(variant), byte(i >> 8), byte(i)}), 32),
			NextHop:     hops[i%len(hops)],
			Metric:      uint32(i * (variant + 1)),
			Communities: []uint32{uint32(variant), uint32(i)},
		}
		if _, err := tx.CreateIn(g, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	crashChildEnv = "SWHA_CHECKPOINT_CRASH_CHILD"
	// crashObjects: large enough that a save spends most of its time
	// writing (about 50 KB), small enough that the child starts fast.
	crashObjects = 1000
)

// TestSaveFileCrash kills a process that keeps rewriting one checkpoint
// with SaveFile, at random moments: the file must always load, as one of
// the two states written, never a mix. SIGKILL leaves the page cache
// alone, so this covers process crashes, not power loss (for which the
// fsyncs are there and cannot be tested here).
func TestSaveFileCrash(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(t, path)
		return
	}
	const objs = crashObjects
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SWHA_CRASH_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (SWHA_CRASH_SEED=%d replays the kill times)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	want := map[string]string{}
	for v := range 2 {
		want[content(loadInto(t, saveBytes(t, crashStore(t, v, objs))))] = fmt.Sprint("variant ", v)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt")
	if err := crashStore(t, 0, objs).SaveFile(path); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	kills := 0
	seen := map[string]int{}
	for kills < 30 || (kills < 60 && time.Since(start) < 6*time.Second) {
		if time.Since(start) > 40*time.Second {
			t.Fatalf("only %d kills in %v", kills, time.Since(start))
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestSaveFileCrash$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(out)
		line, err := br.ReadString('\n')
		for err == nil && line != "saving\n" {
			line, err = br.ReadString('\n')
		}
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child did not start saving: %q %v", line, err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(40 * time.Millisecond))))
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		kills++
		s := ckptStandby(t)
		if err := s.LoadFile(path); err != nil {
			t.Fatalf("kill %d: %v", kills, err)
		}
		which, ok := want[content(s)]
		if !ok {
			t.Fatalf("kill %d: the file holds neither state", kills)
		}
		seen[which]++
	}
	left, _ := filepath.Glob(path + ".tmp-*")
	t.Logf("%d kills in %v: loaded %v; %d temporary files left behind", kills, time.Since(start).Round(time.Millisecond), seen, len(left))
}

// crashChild is the process TestSaveFileCrash kills: it writes the two
// states in turn, for at most a minute if nobody kills it.
func crashChild(t *testing.T, path string) {
	stores := []*Store{crashStore(t, 0, crashObjects), crashStore(t, 1, crashObjects)}
	fmt.Println("saving")
	deadline := time.Now().Add(time.Minute)
	for i := 0; time.Now().Before(deadline); i++ {
		if err := stores[i%2].SaveFile(path); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzLoadCheckpoint: Load never panics; a failed load leaves the store as
// it was; a successful one leaves a store that reads, and saves to a
// checkpoint that loads to the same state. With frame set, the input is the
// records region after the Schema records: the target adds the header, the
// registry's Schema records and a valid trailer, so that the fuzzer gets
// past the CRC and spends its effort on groups and objects (schemas have
// FuzzParseSchema).
func FuzzLoadCheckpoint(f *testing.F) {
	reg := testRegistry(f)
	if err := reg.Seal(); err != nil {
		f.Fatal(err)
	}
	head := []byte("SWHACKPT\x00\x01\x00\x00")
	for _, t := range reg.types {
		r := rec(recSchema, int(t.id), t.schemaEnc)
		head = binary.AppendUvarint(head, uint64(len(r)))
		head = append(head, r...)
	}
	for _, c := range fuzzCheckpoints(f) {
		f.Add(c, false)
		f.Add(fuzzBody(f, c), true)
	}
	// One registry for every store: registering types per execution would
	// cost more than the load.
	standby := func(t *testing.T) *Store {
		s, err := NewStore(reg, Config{Standby: true})
		if err != nil {
			t.Fatal(err)
		}
		registerStatics(t, s, &AppConfig{}, &Holder{})
		return s
	}
	base := fuzzBase(f)
	f.Fuzz(func(t *testing.T, data []byte, frame bool) {
		if frame {
			data = frameBody(append(slices.Clone(head), data...))
		}
		s := standby(t)
		if err := s.Load(bytes.NewReader(base)); err != nil {
			t.Fatal(err)
		}
		before := ckptState(s)
		if err := s.load(bytes.NewReader(data), 1<<20); err != nil {
			if got := ckptState(s); got != before {
				t.Fatalf("failed load (%v) changed the store:\n got %s\nwant %s", err, got, before)
			}
			return
		}
		d := content(s)
		_ = s.Leaks()
		again := standby(t)
		if err := again.Load(bytes.NewReader(saveBytes(t, s))); err != nil {
			t.Fatalf("a loaded store saves to a checkpoint that does not load: %v", err)
		}
		if got := content(again); got != d {
			t.Fatalf("a loaded store saves to another state:\n got %s\nwant %s", got, d)
		}
	})
}

// fuzzBody is a checkpoint's records after its Schema records, framed.
func fuzzBody(t testing.TB, c []byte) []byte {
	var b []byte
	for _, r := range ckptRecords(t, c) {
		if r[0] != recSchema {
			b = binary.AppendUvarint(b, uint64(len(r)))
			b = append(b, r...)
		}
	}
	return b
}

// fuzzBase is the state the fuzzed loads start from: objects, statics, and
// no group, so that the seeds' groups do not clash with it.
func fuzzBase(t testing.TB) []byte {
	s, err := NewStore(testRegistry(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &AppConfig{Hostname: "base"}
	registerStatics(t, s, cfg, &Holder{Name: "table"})
	tx, _ := s.Begin()
	_ = tx.Update(cfg)
	hop := &NextHop{Iface: "base"}
	_, _ = tx.Create(hop)
	_, _ = tx.Create(&Route{NextHop: hop, Metric: 1})
	_, _ = tx.Create(&Route{Metric: 2, Communities: []uint32{}})
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return saveBytes(t, s)
}

// fuzzCheckpoints are small real checkpoints: the rich store from both
// roles, a small route table, and an empty store.
func fuzzCheckpoints(t testing.TB) [][]byte {
	p, _ := richPair(t)
	empty, err := NewStore(testRegistry(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{saveBytes(t, p.act), saveBytes(t, p.sby), saveBytes(t, crashStore(t, 1, 5)), saveBytes(t, empty)}
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzLoadCheckpoint from
// fuzzCheckpoints when SWHA_WRITE_FUZZ_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SWHA_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set SWHA_WRITE_FUZZ_CORPUS=1 to regenerate the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzLoadCheckpoint")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, c := range fuzzCheckpoints(t) {
		for _, frame := range []bool{false, true} {
			data := c
			if frame {
				data = fuzzBody(t, c)
			}
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbool(%v)\n", data, frame)
			name := filepath.Join(dir, fmt.Sprintf("checkpoint%d-frame=%v", i, frame))
			if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestSaveConcurrentCommits saves an active while another goroutine
// commits: each checkpoint that is taken (Save refuses while a transaction
// is open) must hold a state the active committed, never half of one.
func TestSaveConcurrentCommits(t *testing.T) {
	s := crashStore(t, 0, 200)
	var routes []*Route
	s.Each(func(id uint64, obj any) bool {
		if r, ok := obj.(*Route); ok {
			routes = append(routes, r)
		}
		return true
	})
	done := make(chan error)
	go func() {
		for i := range 1500 {
			tx, err := s.Begin()
			if err != nil {
				done <- err
				return
			}
			for _, r := range routes[:20] {
				r.Metric = uint32(i)
				_ = tx.Update(r)
			}
			if err := tx.Commit(); err != nil {
				done <- err
				return
			}
			time.Sleep(20 * time.Microsecond)
		}
		done <- nil
	}()
	saved, refused := 0, 0
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
		}
		var buf bytes.Buffer
		if _, err := s.Save(&buf); errors.Is(err, ErrTxnOpen) {
			refused++
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		saved++
		l := ckptStandby(t)
		if err := l.Load(&buf); err != nil {
			t.Fatal(err)
		}
		metrics := map[uint32]int{}
		l.Each(func(id uint64, obj any) bool {
			if r, ok := obj.(*Route); ok && r.Metric != uint32(r.Prefix.Addr().As4()[3])+uint32(r.Prefix.Addr().As4()[2])<<8 {
				metrics[r.Metric]++
			}
			return true
		})
		if len(metrics) > 1 {
			t.Fatalf("checkpoint at seq %d mixes two commits: %v", l.Seq(), metrics)
		}
	}
	t.Logf("%d checkpoints taken, %d refused with a transaction open", saved, refused)
	if saved == 0 {
		t.Fatal("no checkpoint taken while committing")
	}
}

type itemV1 struct {
	Name   string
	Metric uint16
	Gone   string
	Hop    *NextHop
}

type itemV2 struct {
	Name   string
	Metric uint32
	Added  bool
	Hop    *NextHop
}

type itemV3 struct {
	Name   string
	Metric uint8
	Hop    *NextHop
}

// TestCheckpointVersionSkew loads a checkpoint written with one version of a
// type into stores of other versions: it goes through the stream's version
// transformation, so a widened field loads, and a value that no longer fits
// fails the load, naming the field, and changes nothing.
func TestCheckpointVersionSkew(t *testing.T) {
	reg := func(item any) *Registry {
		r := NewRegistry()
		if err := r.Register("NextHop", NextHop{}); err != nil {
			t.Fatal(err)
		}
		if err := r.Register("Item", item); err != nil {
			t.Fatal(err)
		}
		return r
	}
	act, err := NewStore(reg(itemV1{}), Config{})
	if err != nil {
		t.Fatal(err)
	}
	hop := &NextHop{Iface: "eth0"}
	tx, _ := act.Begin()
	_, _ = tx.Create(hop)
	_, _ = tx.Create(&itemV1{Name: "a", Metric: 7, Gone: "x", Hop: hop})
	_, _ = tx.Create(&itemV1{Name: "b", Metric: 300})
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	data := saveBytes(t, act)

	v2, _ := NewStore(reg(itemV2{}), Config{Standby: true})
	if err := v2.Load(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	var got []string
	v2.Each(func(id uint64, obj any) bool {
		if it, ok := obj.(*itemV2); ok {
			got = append(got, fmt.Sprintf("%s %d %v %v", it.Name, it.Metric, it.Added, it.Hop != nil && it.Hop.Iface == "eth0"))
		}
		return true
	})
	slices.Sort(got)
	if want := []string{"a 7 false true", "b 300 false false"}; !slices.Equal(got, want) {
		t.Fatalf("widened load: %q, want %q", got, want)
	}

	v3, _ := NewStore(reg(itemV3{}), Config{Standby: true})
	before := ckptState(v3)
	err = v3.Load(bytes.NewReader(data))
	if !errors.Is(err, ErrCheckpointInvalid) || !errors.Is(err, ErrNotRepresentable) || !strings.Contains(err.Error(), "Metric") {
		t.Fatalf("narrowing load: %v", err)
	}
	if ckptState(v3) != before {
		t.Fatal("a load refused by the transformation changed the store")
	}
	t.Log(err)
}

package objstore

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func fullAllKinds(hops []*NextHop, h *Holder) *AllKinds {
	return &AllKinds{
		B: true, I8: -8, I16: -1600, I32: math.MinInt32, I64: math.MinInt64, I: -42,
		U8: 255, U16: 65535, U32: math.MaxUint32, U64: math.MaxUint64, U: 7,
		F32: -1.5, F64: math.Inf(1), S: "héllo", Bytes: []byte{0, 1, 2}, Arr: [3]int16{-1, 0, 1},
		Strs: []string{"a", "", "ccc"}, M: map[string]int32{"x": 1, "y": -2},
		Nested:  Inner{A: 9, B: "in", C: [2]int8{-1, 1}},
		Nesteds: []Inner{{A: 1}, {B: "two"}},
		AKey:    map[[2]uint8]Inner{{1, 2}: {A: 3}},
		Addr:    netip.MustParseAddr("fe80::1%eth0"),
		Pfx:     netip.MustParsePrefix("10.1.0.0/16"),
		MAC:     net.HardwareAddr{0, 1, 2, 3, 4, 5},
		T:       time.Unix(1700000000, 123456789).UTC(),
		Ref:     hops[0],
		Refs:    []*NextHop{hops[1], nil, hops[0]},
		RefArr:  [2]*NextHop{nil, hops[1]},
		RefMap:  map[string]*NextHop{"a": hops[0], "nil": nil},
		IntoU:   &h.Count,
		IntoIn:  &h.Slots[2],
		IntoArr: []*Inner{&h.Slots[0], nil, &h.Slots[3]},
		IntoHop: &h.Hop,
		Renamed: 5,
		Times:   [2]time.Time{{}, time.Unix(-5, 1).In(time.FixedZone("X", 3600))},
	}
}

// TestRoundTripEveryKind replicates an object with every supported kind, then
// changes each field alone and checks that exactly that field is sent and
// that the standby follows.
func TestRoundTripEveryKind(t *testing.T) {
	p := newPair(t, 0)
	tx, _ := p.act.Begin()
	hops := []*NextHop{{Addr: netip.MustParseAddr("192.0.2.1"), Iface: "eth1"}, {Addr: netip.MustParseAddr("2001:db8::1"), MAC: net.HardwareAddr{}}}
	h := &Holder{Name: "h"}
	for _, o := range []any{hops[0], hops[1], h} {
		if _, err := tx.Create(o); err != nil {
			t.Fatal(err)
		}
	}
	a := fullAllKinds(hops, h)
	a.hidden = 7 // unexported: not replicated
	aid, err := tx.Create(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, want := dump(p.sby), dump(p.act); got != want {
		t.Fatalf("standby differs after create:\n got %s\nwant %s", got, want)
	}
	if o, _ := p.sby.Get(aid); o.(*AllKinds).hidden != 0 {
		t.Fatalf("an unexported field reached the standby: %d", o.(*AllKinds).hidden)
	}
	mutations := map[string]func(){
		"B": func() { a.B = false }, "I8": func() { a.I8 = 8 }, "I16": func() { a.I16++ },
		"I32": func() { a.I32 = 0 }, "I64": func() { a.I64 = math.MaxInt64 }, "I": func() { a.I = 1 << 40 },
		"U8": func() { a.U8 = 0 }, "U16": func() { a.U16 = 1 }, "U32": func() { a.U32 = 2 },
		"U64": func() { a.U64 = 3 }, "U": func() { a.U = 0 }, "F32": func() { a.F32 = 2.25 },
		"F64": func() { a.F64 = math.NaN() }, "S": func() { a.S = "" },
		"Bytes": func() { a.Bytes[1] = 9 }, "Arr": func() { a.Arr[2] = 7 },
		"Strs":     func() { a.Strs[0] = "changed in place" },
		"M":        func() { a.M["x"] = 100 },
		"Nested":   func() { a.Nested.C[0] = 5 },
		"Nesteds":  func() { a.Nesteds = append(a.Nesteds, Inner{A: 3}) },
		"AKey":     func() { a.AKey[[2]uint8{9, 9}] = Inner{} },
		"Addr":     func() { a.Addr = netip.Addr{} },
		"Pfx":      func() { a.Pfx = netip.MustParsePrefix("2001:db8::/32") },
		"MAC":      func() { a.MAC = nil },
		"T":        func() { a.T = a.T.Add(time.Nanosecond) },
		"Ref":      func() { a.Ref = hops[1] },
		"Refs":     func() { a.Refs[1] = hops[1] },
		"RefArr":   func() { a.RefArr[0] = hops[0] },
		"RefMap":   func() { a.RefMap["nil"] = hops[1] },
		"into_u":   func() { a.IntoU = nil },
		"IntoIn":   func() { a.IntoIn = &h.Slots[1] },
		"IntoArr":  nil,
		"IntoHop":  func() { a.IntoHop = hops[0] },
		"new_name": func() { a.Renamed = -5 },
		"Times":    func() { a.Times[0] = time.Unix(1, 0).Local() },
	}
	ti := p.act.reg.byName["AllKinds"]
	for name, mutate := range mutations {
		if name == "IntoArr" {
			mutate = func() { a.IntoArr[1] = &h.Slots[1] }
		}
		if name == "IntoHop" {
			// A pointer to a whole NextHop object is not inside a Holder.
			continue
		}
		mutate()
		n := len(p.recs)
		tx, _ := p.act.Begin()
		if err := tx.Update(a); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var updates [][]byte
		for _, r := range p.recs[n:] {
			if r[0] == recUpdate {
				updates = append(updates, r)
			}
		}
		if len(updates) != 1 {
			t.Fatalf("%s: %d update records, want 1", name, len(updates))
		}
		var h recHead
		p.sby.peerTypes[uint64(ti.id)] = newPeerType(p.sby.reg, p.sby.reg.Schema("AllKinds"))
		if err := p.sby.parseHead(updates[0], &h); err != nil {
			t.Fatal(err)
		}
		if cnt := h.d.uvarint(); cnt != 1 {
			t.Fatalf("%s: update carries %d fields, want 1", name, cnt)
		}
		if fi := h.d.uvarint(); ti.root.fields[fi].name != name {
			t.Fatalf("mutating %s sent field %s", name, ti.root.fields[fi].name)
		}
		if got, want := dump(p.sby), dump(p.act); got != want {
			t.Fatalf("%s: standby differs:\n got %s\nwant %s", name, got, want)
		}
	}
	// The interior pointer to a whole object is refused: it is not inside a Holder.
	a.IntoHop = hops[0]
	tx, _ = p.act.Begin()
	_ = tx.Update(a)
	if err := tx.Commit(); !errors.Is(err, ErrDangling) {
		t.Fatalf("interior pointer outside its target type: %v, want ErrDangling", err)
	}
}

// TestValueCodecDeepEqual checks the codec alone: encoding then decoding a
// value without pointers gives a reflect.DeepEqual copy, nil and empty kept apart.
func TestValueCodecDeepEqual(t *testing.T) {
	r := testRegistry(t)
	if err := r.Seal(); err != nil {
		t.Fatal(err)
	}
	ti := r.byName["AllKinds"]
	for _, v := range []AllKinds{
		{},
		{Bytes: []byte{}, Strs: []string{}, M: map[string]int32{}, Nesteds: []Inner{}, MAC: net.HardwareAddr{}},
		{Pfx: netip.PrefixFrom(netip.MustParseAddr("::ffff:1.2.3.4"), 200), Addr: netip.MustParseAddr("::ffff:1.2.3.4")},
		{T: time.Unix(0, 0), Times: [2]time.Time{time.Unix(1<<40, 999999999).UTC(), {}}},
		*fullAllKinds([]*NextHop{nil, nil}, &Holder{}),
	} {
		v.Ref, v.Refs, v.RefArr, v.RefMap, v.IntoU, v.IntoIn, v.IntoArr, v.IntoHop = nil, nil, [2]*NextHop{}, nil, nil, nil, nil, nil
		b, err := encodeValue(ti.root, nil, ptrOf(&v), nil)
		if err != nil {
			t.Fatal(err)
		}
		var got AllKinds
		d := decoder{b: b}
		decodeValue(ti.root, &d, nil, nil) // validation pass
		if d.err != nil || d.pos != len(b) {
			t.Fatalf("validate: %v at %d/%d", d.err, d.pos, len(b))
		}
		d = decoder{b: b}
		decodeValue(ti.root, &d, ptrOf(&got), nil)
		if d.err != nil {
			t.Fatal(d.err)
		}
		v.Skip = nil
		if !reflect.DeepEqual(v, got) && !(math.IsNaN(v.F64)) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, v)
		}
		// Shadow copy and compare agree with the codec.
		var sh AllKinds
		copyValue(ti.root, ptrOf(&sh), ptrOf(&v))
		if !equalValue(ti.root, ptrOf(&sh), ptrOf(&v)) || len(ti.diff(ptrOf(&v), ptrOf(&sh), nil)) != 0 {
			t.Fatalf("shadow copy differs from its source: %+v", sh)
		}
		// Every truncation of the encoding is an error, never a panic.
		for k := 0; k < len(b); k++ {
			d := decoder{b: b[:k]}
			decodeValue(ti.root, &d, nil, nil)
			if d.err == nil {
				t.Fatalf("truncated to %d/%d bytes: no error", k, len(b))
			}
		}
	}
}

func TestRegisterErrors(t *testing.T) {
	type Iface struct{ C chan int }
	type Bad1 struct{ NextHop struct{ Iface Iface } }
	type Bad2 struct{ F func() }
	type Bad3 struct{ X any }
	type Bad4 struct{ P uintptr }
	type Bad5 struct{ C complex128 }
	type Bad6 struct{ P *int }
	type Bad7 struct{ M map[string][]func() }
	type Bad8 struct {
		A int `swha:"x"`
		B int `swha:"x"`
	}
	type Bad9 struct {
		A int `swha:",bogus"`
	}
	type Bad10 struct {
		U uint32 `swha:",into=Holder"`
	}
	type Tree struct {
		Name string
		Kids []Tree
	}
	cases := []struct {
		proto any
		want  string
	}{
		{Tree{}, "field Kids[]: unsupported kind objstore.Tree (contains itself by value"},
		{Bad1{}, "field NextHop.Iface.C: unsupported kind chan int"},
		{Bad2{}, "field F: unsupported kind func()"},
		{Bad3{}, "field X: unsupported kind interface {}"},
		{Bad4{}, "field P: unsupported kind uintptr"},
		{Bad5{}, "field C: unsupported kind complex128"},
		{Bad6{}, "field P: unsupported kind *int"},
		{Bad7{}, "field M[][]: unsupported kind func()"},
		{Bad8{}, `field B: wire name "x" used twice`},
		{Bad9{}, `unknown tag option "bogus"`},
		{Bad10{}, "into= on a field without pointers"},
		{42, "is not a struct"},
	}
	for _, c := range cases {
		r := NewRegistry()
		err := r.Register("T", c.proto)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "objstore: register T: ") {
			t.Errorf("%T: error %v, want it to contain %q", c.proto, err, c.want)
		}
		if !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrDuplicate) {
			t.Errorf("%T: %v wraps neither ErrUnsupported nor ErrDuplicate", c.proto, err)
		}
	}
	// Pointers to unregistered types are found at Seal, naming the field.
	type Orphan struct{ X int }
	type Route2 struct {
		Hop struct{ Via *Orphan }
	}
	r := NewRegistry()
	if err := r.Register("Route", Route2{}); err != nil {
		t.Fatal(err)
	}
	_, err := NewStore(r, Config{})
	if err == nil || !errors.Is(err, ErrUnregistered) || !strings.Contains(err.Error(), "register Route: field Hop.Via: pointer to unregistered type objstore.Orphan") {
		t.Fatalf("seal: %v", err)
	}
	// Interior pointers: the target type must exist and contain the pointee
	// in a field or array element (not in a slice: not supported yet).
	type Port struct{ N uint8 }
	type Switch struct{ Ports []Port }
	type IntoSlice struct {
		P *Port `swha:",into=Switch"`
	}
	type IntoNowhere struct {
		P *Port `swha:",into=Nowhere"`
	}
	for _, c := range []struct {
		proto any
		want  string
	}{
		{IntoSlice{}, "register T: field P: Switch has no field or element of type objstore.Port"},
		{IntoNowhere{}, "register T: field P: into=Nowhere: type not registered"},
	} {
		r := NewRegistry()
		_ = r.Register("Switch", Switch{})
		if err := r.Register("T", c.proto); err != nil {
			t.Fatal(err)
		}
		if err := r.Seal(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("seal: %v, want %q", err, c.want)
		}
	}
	// Types may point at each other and at themselves.
	type A struct{ Self *A }
	r = NewRegistry()
	if err := r.Register("A", &A{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Seal(); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("late", Inner{}); !errors.Is(err, ErrSealed) {
		t.Fatalf("register after seal: %v", err)
	}
	r = NewRegistry()
	_ = r.Register("A", A{})
	if err := r.Register("B", A{}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("same type twice: %v", err)
	}
	if err := r.Register("A", Inner{}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("same name twice: %v", err)
	}
}

func TestSchemaEncoding(t *testing.T) {
	r := testRegistry(t)
	if err := r.Seal(); err != nil {
		t.Fatal(err)
	}
	for _, name := range r.Names() {
		s := r.Schema(name)
		b := s.AppendBinary(nil)
		got, err := ParseSchema(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("%s: schema round trip differs", name)
		}
		for k := 0; k < len(b); k++ {
			if _, err := ParseSchema(b[:k]); err == nil {
				t.Fatalf("%s: truncated schema (%d/%d) accepted", name, k, len(b))
			}
		}
	}
	// Renames are in the schema; a second registry gives the same fingerprint.
	r2 := testRegistry(t)
	_ = r2.Seal()
	ak := r.Schema("AllKinds")
	if ak.Fingerprint != r2.Schema("AllKinds").Fingerprint {
		t.Fatal("fingerprint not deterministic")
	}
	var found bool
	for _, f := range ak.Root.Fields {
		if f.Name == "new_name" && len(f.Was) == 1 && f.Was[0] == "old_name" {
			found = true
		}
	}
	if !found {
		t.Fatal("rename missing from schema")
	}
	// A different layout under the same name is mapped by wire name, and
	// the standby reports what it cannot carry.
	type Route struct{ Metric uint64 }
	r3 := NewRegistry()
	_ = r3.Register("Route", Route{})
	sby, _ := NewStore(r3, Config{Standby: true})
	rec := append([]byte{recSchema, 4}, r.Schema("Route").AppendBinary(nil)...)
	if err := sby.Apply(rec); err != nil {
		t.Fatalf("schema of another version: %v", err)
	}
	rep := sby.PeerSkew()
	if len(rep) != 1 || rep[0].Type != "Route" || rep[0].Identical || len(rep[0].Dropped) != 9 ||
		len(rep[0].Converted) != 1 || rep[0].Converted[0] != "Metric: uint32→uint64" {
		t.Fatalf("skew report: %+v", rep)
	}
}

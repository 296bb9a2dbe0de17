package objstore

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
	"unsafe"
)

type Inner struct {
	A uint16
	B string
	C [2]int8
}

type NextHop struct {
	Addr   netip.Addr
	Iface  string
	MAC    net.HardwareAddr
	Weight uint16
}

// Holder is a target of interior pointers: into its array and fields.
type Holder struct {
	Name  string
	Slots [4]Inner
	Count uint32
	Hop   NextHop
}

type AllKinds struct {
	B       bool
	I8      int8
	I16     int16
	I32     int32
	I64     int64
	I       int
	U8      uint8
	U16     uint16
	U32     uint32
	U64     uint64
	U       uint
	F32     float32
	F64     float64
	S       string
	Bytes   []byte
	Arr     [3]int16
	Strs    []string
	M       map[string]int32
	Nested  Inner
	Nesteds []Inner
	AKey    map[[2]uint8]Inner
	Addr    netip.Addr
	Pfx     netip.Prefix
	MAC     net.HardwareAddr
	T       time.Time
	Ref     *NextHop
	Refs    []*NextHop
	RefArr  [2]*NextHop
	RefMap  map[string]*NextHop
	IntoU   *uint32  `swha:"into_u,into=Holder"`
	IntoIn  *Inner   `swha:",into=Holder"`
	IntoArr []*Inner `swha:",into=Holder"`
	IntoHop *NextHop `swha:",into=Holder"`
	Skip    chan int `swha:"-"`
	Renamed int32    `swha:"new_name,was=old_name"`
	Times   [2]time.Time
	hidden  int
}

// route-like type of the benchmarks and the property test.
type Route struct {
	Prefix      netip.Prefix
	NextHop     *NextHop
	Metric      uint32
	Distance    uint8
	Protocol    uint8
	Flags       uint16
	Tag         uint32
	VRF         uint32
	Communities []uint32
	Updated     time.Time
}

type Msg struct {
	Text string
	Hop  *NextHop
}

type AppConfig struct {
	Hostname string
	ASN      uint32
	Peers    []netip.Addr
}

func testRegistry(t testing.TB) *Registry {
	t.Helper()
	r := NewRegistry()
	for _, reg := range []struct {
		name  string
		proto any
	}{
		{"NextHop", NextHop{}}, {"Holder", Holder{}}, {"AllKinds", AllKinds{}},
		{"Route", Route{}}, {"Msg", Msg{}}, {"AppConfig", AppConfig{}}, {"Inner", Inner{}},
	} {
		if err := r.Register(reg.name, reg.proto); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// pair is an active store whose records feed a standby store directly.
type pair struct {
	t       testing.TB
	act     *Store
	sby     *Store
	recs    [][]byte
	applyTo bool
}

func newPair(t testing.TB, maxBytes int) *pair {
	t.Helper()
	p := &pair{t: t, applyTo: true}
	var err error
	p.sby, err = NewStore(testRegistry(t), Config{Standby: true, MaxTxnBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	p.act, err = NewStore(testRegistry(t), Config{MaxTxnBytes: maxBytes, Sink: SinkFunc(func(rec []byte) error {
		c := append([]byte(nil), rec...)
		p.recs = append(p.recs, c)
		if p.applyTo {
			if err := p.sby.Apply(c); err != nil {
				t.Fatalf("standby apply: %v", err)
			}
		}
		return nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dump renders a store's committed objects canonically, following pointers
// by (object ID, byte offset) instead of address. It is independent of the
// codec, so it checks it.
func dump(s *Store) string {
	type rng struct {
		lo, hi uintptr
		id     uint64
	}
	var rs []rng
	var ids []uint64
	objs := map[uint64]reflect.Value{}
	s.Each(func(id uint64, obj any) bool {
		v := reflect.ValueOf(obj)
		p := v.Pointer()
		rs = append(rs, rng{p, p + v.Elem().Type().Size(), id})
		ids = append(ids, id)
		objs[id] = v.Elem()
		return true
	})
	sort.Slice(rs, func(a, b int) bool { return rs[a].lo < rs[b].lo })
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	where := func(p uintptr) string {
		k := sort.Search(len(rs), func(k int) bool { return rs[k].hi > p })
		if k < len(rs) && rs[k].lo <= p {
			return fmt.Sprintf("&%d+%d", rs[k].id, p-rs[k].lo)
		}
		return fmt.Sprintf("&outside(%#x)", p)
	}
	var b strings.Builder
	var walk func(b *strings.Builder, v reflect.Value)
	walk = func(b *strings.Builder, v reflect.Value) {
		switch v.Type() {
		case typeTime:
			t := v.Interface().(time.Time)
			fmt.Fprintf(b, "%d.%d@%s", t.Unix(), t.Nanosecond(), t.Location())
			return
		case typeAddr, typePrefix:
			fmt.Fprintf(b, "%v", v.Interface())
			return
		}
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() {
				b.WriteString("nil")
			} else {
				b.WriteString(where(v.Pointer()))
			}
		case reflect.Struct:
			b.WriteString("{")
			for i := 0; i < v.NumField(); i++ {
				sf := v.Type().Field(i)
				if !sf.IsExported() || sf.Tag.Get("swha") == "-" {
					continue
				}
				b.WriteString(sf.Name + ":")
				walk(b, v.Field(i))
				b.WriteString(" ")
			}
			b.WriteString("}")
		case reflect.Slice:
			if v.IsNil() {
				b.WriteString("nil")
				return
			}
			fallthrough
		case reflect.Array:
			b.WriteString("[")
			for i := 0; i < v.Len(); i++ {
				walk(b, v.Index(i))
				b.WriteString(",")
			}
			b.WriteString("]")
		case reflect.Map:
			if v.IsNil() {
				b.WriteString("nilmap")
				return
			}
			keys := v.MapKeys()
			ks := make([]string, len(keys))
			vals := map[string]string{}
			for i, k := range keys {
				ks[i] = fmt.Sprint(k.Interface())
				var vb strings.Builder
				walk(&vb, v.MapIndex(k))
				vals[ks[i]] = vb.String()
			}
			sort.Strings(ks)
			b.WriteString("map[")
			for _, k := range ks {
				b.WriteString(k + "=" + vals[k] + ",")
			}
			b.WriteString("]")
		default:
			fmt.Fprintf(b, "%#v", v.Interface())
		}
	}
	for _, id := range ids {
		fmt.Fprintf(&b, "%d %s: ", id, objs[id].Type().Name())
		walk(&b, objs[id])
		b.WriteString("\n")
	}
	return b.String()
}

func ptrOf(obj any) unsafe.Pointer { return reflect.ValueOf(obj).UnsafePointer() }

// summarize renders the transactional records of recs, encoded by a store
// of registry r, one line each: "create Route 3", "update Route 3 Metric
// Flags", "delete NextHop 2", "deletegroup 1", "commit 5" (seq); schema and
// group announcements are left out.
func summarize(t testing.TB, r *Registry, recs [][]byte) []string {
	t.Helper()
	byID := map[uint64]*typeInfo{}
	for _, ti := range r.types {
		byID[uint64(ti.id)] = ti
	}
	var out []string
	for _, rec := range recs {
		d := decoder{b: rec, pos: 1}
		if rec[0] != recSchema && rec[0] != recGroup {
			d.uvarint() // txn
		}
		var line string
		switch rec[0] {
		case recSchema, recGroup:
			continue
		case recCreate, recUpdate, recDelete:
			id, ti := d.uvarint(), byID[d.uvarint()]
			if ti == nil {
				t.Fatalf("record of an unknown type: %x", rec)
			}
			line = map[byte]string{recCreate: "create", recUpdate: "update", recDelete: "delete"}[rec[0]] + " " + ti.name + " " + fmt.Sprint(id)
			if rec[0] == recUpdate {
				for n := d.uvarint(); n > 0 && d.err == nil; n-- {
					f := ti.root.fields[d.uvarint()]
					line += " " + f.name
					decodeValue(f.n, &d, nil, noRefs{})
				}
			}
		case recDeleteGroup:
			line = fmt.Sprint("deletegroup ", d.uvarint())
		case recCommit:
			line = fmt.Sprint("commit ", d.uvarint())
		default:
			line = fmt.Sprint("kind ", rec[0])
		}
		if d.err != nil {
			t.Fatalf("record %x: %v", rec, d.err)
		}
		out = append(out, line)
	}
	return out
}

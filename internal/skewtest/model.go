package skewtest

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"time"
)

// The model holds the application's state independently of either version,
// with every value inside the range both versions can represent. The active
// materializes it in its own version; the check materializes it in the
// standby's version, with the fields the active's version lacks at zero.

type mHop struct {
	Addr   netip.Addr
	Iface  string
	MAC    net.HardwareAddr
	Weight int16
	Labels []uint8 // v2 only
}

type mSlot struct {
	Z bool // v2 only
	A int16
	B string
}

type mTable struct {
	Name  string
	Owner string // v2 only
	Slots [4]mSlot
	Count uint16
}

// into is an interior pointer: into table key's slot idx (slot), its A
// (field "a"), or its Count ("count").
type into struct {
	table int
	idx   int
}

type mRoute struct {
	Prefix   netip.Prefix
	NextHop  int
	Metric   uint32
	Distance uint8
	Tag      int32
	Pref     uint16
	Weight   float32
	Cost     int32
	Ratio    int32
	Up       bool
	Tiny     int8
	Byte     uint8
	Name     string
	Data     []byte
	Arr      [3]int16
	Comms    []uint16
	Labels   map[string]int16
	Attrs    map[uint16]string
	Inner    mSlot
	Inners   []mSlot
	Hops     []int
	HopArr   [2]int
	HopMap   map[string]int
	Slot     into
	APtr     into
	CountPtr int
	Updated  time.Time
	Src      netip.Addr
	Mac      net.HardwareAddr
	Legacy   string // v1 only
	Color    string // v2 only
}

type mEvent struct {
	Text string
	Code int16
	Hop  int
}

// Txn is what the stream needs of a transaction: objstore.Txn and *swha.Txn
// both have it.
type Txn interface {
	Create(obj any) (uint64, error)
	Update(obj any) error
	Delete(obj any) error
	Message(msg any) error
}

// App is the active application: the model, and its objects in version V.
type App struct {
	V   Version
	rng *rand.Rand

	hops   map[int]*mHop
	tables map[int]*mTable
	routes map[int]*mRoute
	live   map[int]any // key → the active's object
	ids    map[int]uint64
	next   int

	// Events sent, in commit order, and the count of those whose
	// transaction committed (Commit is the caller's).
	events []mEvent
	// What the open transaction pointed at (a delete must not follow a
	// pointer encoded in the same transaction) and the events it sent.
	txnRefs map[int]bool
	txnEvts []mEvent
}

// NewApp returns an empty application of version v driven by seed.
func NewApp(v Version, seed uint64) *App {
	return &App{
		V: v, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)),
		hops: map[int]*mHop{}, tables: map[int]*mTable{}, routes: map[int]*mRoute{},
		live: map[int]any{}, ids: map[int]uint64{},
	}
}

// Ops adds k random operations to tx. Call Committed or Aborted after the
// transaction ends.
func (a *App) Ops(tx Txn, k int) error {
	a.txnRefs = map[int]bool{}
	a.txnEvts = nil
	for i := 0; i < k; i++ {
		if err := a.op(tx); err != nil {
			return err
		}
	}
	return nil
}

// Committed records that the transaction of the last Ops committed.
func (a *App) Committed() {
	a.events = append(a.events, a.txnEvts...)
	a.txnEvts = nil
}

func (a *App) op(tx Txn) error {
	r := a.rng
	switch x := r.IntN(100); {
	case x < 12 || len(a.hops) == 0:
		return a.create(tx, a.newHop())
	case x < 18 || len(a.tables) == 0:
		return a.create(tx, a.newTable())
	case x < 45 || len(a.routes) < 3:
		return a.create(tx, a.newRoute())
	case x < 75:
		k := pick(r, a.routes)
		a.routes[k] = a.newRoute()
		return a.update(tx, k)
	case x < 80:
		k := pick(r, a.hops)
		a.hops[k] = a.newHop()
		return a.update(tx, k)
	case x < 85:
		k := pick(r, a.tables)
		a.tables[k] = a.newTable()
		return a.update(tx, k)
	case x < 92:
		return a.delete(tx, pick(r, a.routes))
	case x < 95:
		if k := pick(r, a.hops); !a.referenced(k) {
			return a.delete(tx, k)
		}
		return nil
	case x < 97:
		if k := pick(r, a.tables); !a.referenced(k) {
			return a.delete(tx, k)
		}
		return nil
	default:
		e := mEvent{Text: randStr(r), Code: int16(r.IntN(1 << 16)), Hop: a.someHop()}
		a.txnEvts = append(a.txnEvts, e)
		return tx.Message(event(e, a.V, a.livePtr))
	}
}

func pick[T any](r *rand.Rand, m map[int]T) int {
	keys := slices.Sorted(maps.Keys(m))
	return keys[r.IntN(len(keys))]
}

func (a *App) create(tx Txn, m any) error {
	a.next++
	k := a.next
	switch m := m.(type) {
	case *mHop:
		a.hops[k] = m
	case *mTable:
		a.tables[k] = m
	case *mRoute:
		a.routes[k] = m
		a.noteRefs(m)
	}
	obj := a.materialize(k, a.V, a.V, a.livePtr)
	a.live[k] = obj
	id, err := tx.Create(obj)
	if err != nil {
		return fmt.Errorf("create %d: %w", k, err)
	}
	a.ids[k] = id
	return nil
}

func (a *App) update(tx Txn, k int) error {
	if r, ok := a.routes[k]; ok {
		a.noteRefs(r)
	}
	// In place: the store finds the object by address.
	obj := a.live[k]
	reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(a.materialize(k, a.V, a.V, a.livePtr)).Elem())
	if err := tx.Update(obj); err != nil {
		return fmt.Errorf("update %d: %w", k, err)
	}
	return nil
}

func (a *App) delete(tx Txn, k int) error {
	if err := tx.Delete(a.live[k]); err != nil {
		return fmt.Errorf("delete %d: %w", k, err)
	}
	delete(a.hops, k)
	delete(a.tables, k)
	delete(a.routes, k)
	delete(a.live, k)
	delete(a.ids, k)
	return nil
}

func (a *App) noteRefs(r *mRoute) {
	for _, k := range append(append([]int{r.NextHop, r.HopArr[0], r.HopArr[1], r.Slot.table, r.APtr.table, r.CountPtr}, r.Hops...), slices.Collect(maps.Values(r.HopMap))...) {
		a.txnRefs[k] = true
	}
}

// referenced: some route points at k now, or pointed at it earlier in the
// open transaction (its record is encoded at commit, pointer included).
func (a *App) referenced(k int) bool {
	if a.txnRefs[k] {
		return true
	}
	for _, e := range a.txnEvts {
		if e.Hop == k {
			return true
		}
	}
	for _, r := range a.routes {
		if r.NextHop == k || r.HopArr[0] == k || r.HopArr[1] == k || r.Slot.table == k || r.APtr.table == k ||
			r.CountPtr == k || slices.Contains(r.Hops, k) || slices.Contains(slices.Collect(maps.Values(r.HopMap)), k) {
			return true
		}
	}
	return false
}

func (a *App) someHop() int {
	if len(a.hops) == 0 || a.rng.IntN(6) == 0 {
		return 0
	}
	return pick(a.rng, a.hops)
}

func (a *App) someTable() int {
	if len(a.tables) == 0 || a.rng.IntN(5) == 0 {
		return 0
	}
	return pick(a.rng, a.tables)
}

func randStr(r *rand.Rand) string {
	if r.IntN(4) == 0 {
		return ""
	}
	return fmt.Sprintf("s%d", r.IntN(1000))
}

func randBytes(r *rand.Rand) []byte {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	return []byte(randStr(r) + "x")
}

func (a *App) newHop() *mHop {
	r := a.rng
	h := &mHop{Iface: randStr(r), Weight: int16(r.IntN(1 << 16))}
	if r.IntN(3) > 0 {
		h.Addr = netip.AddrFrom4([4]byte{192, 0, 2, byte(r.IntN(256))})
	}
	if r.IntN(2) == 0 {
		h.MAC = net.HardwareAddr{2, 0, 0, 0, byte(r.IntN(256)), 1}
	}
	if a.V == V2 && r.IntN(2) == 0 {
		h.Labels = []uint8{byte(r.IntN(256))}
	}
	return h
}

func (a *App) newTable() *mTable {
	r := a.rng
	t := &mTable{Name: randStr(r), Count: uint16(r.IntN(1 << 16))}
	if a.V == V2 {
		t.Owner = randStr(r)
	}
	for i := range t.Slots {
		t.Slots[i] = a.newSlot()
	}
	return t
}

func (a *App) newSlot() mSlot {
	s := mSlot{A: int16(a.rng.IntN(1 << 16)), B: randStr(a.rng)}
	if a.V == V2 {
		s.Z = a.rng.IntN(2) == 0
	}
	return s
}

func (a *App) newRoute() *mRoute {
	r := a.rng
	m := &mRoute{
		Prefix:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(r.IntN(256)), byte(r.IntN(256)), 0}), 24),
		NextHop:  a.someHop(),
		Metric:   r.Uint32(),
		Distance: uint8(r.IntN(256)),
		Tag:      int32(r.Uint32()),
		Pref:     uint16(r.IntN(1 << 16)),
		Weight:   float32(r.NormFloat64()),
		Cost:     int32(r.Uint32()),
		Ratio:    int32(r.Uint32()),
		Up:       r.IntN(2) == 0,
		Tiny:     int8(r.IntN(256)),
		Byte:     uint8(r.IntN(256)),
		Name:     randStr(r),
		Data:     randBytes(r),
		Arr:      [3]int16{int16(r.IntN(1 << 16)), int16(r.IntN(1 << 16)), -1},
		Inner:    a.newSlot(),
		HopArr:   [2]int{a.someHop(), a.someHop()},
		Updated:  time.Unix(int64(r.Uint32()), int64(r.IntN(1e9))).UTC(),
		CountPtr: a.someTable(),
	}
	if r.IntN(3) > 0 {
		m.Comms = []uint16{}
		for range r.IntN(4) {
			m.Comms = append(m.Comms, uint16(r.IntN(1<<16)))
		}
	}
	if r.IntN(3) > 0 {
		m.Labels = map[string]int16{}
		for range r.IntN(3) {
			m.Labels[randStr(r)] = int16(r.IntN(1 << 16))
		}
		m.Attrs = map[uint16]string{uint16(r.IntN(1 << 16)): randStr(r)}
	}
	if r.IntN(2) == 0 {
		for range r.IntN(3) {
			m.Inners = append(m.Inners, a.newSlot())
		}
	}
	if r.IntN(2) == 0 {
		m.Hops = []int{}
		for range r.IntN(3) {
			if h := a.someHop(); h != 0 {
				m.Hops = append(m.Hops, h)
			}
		}
		m.HopMap = map[string]int{}
		if h := a.someHop(); h != 0 {
			m.HopMap["primary"] = h
		}
	}
	if t := a.someTable(); t != 0 {
		m.Slot = into{t, r.IntN(4)}
	}
	if t := a.someTable(); t != 0 {
		m.APtr = into{t, r.IntN(4)}
	}
	if r.IntN(2) == 0 {
		m.Src = netip.MustParseAddr("2001:db8::1")
	}
	if r.IntN(2) == 0 {
		m.Mac = net.HardwareAddr{2, 1, 2, 3, 4, byte(r.IntN(256))}
	}
	if a.V == V1 {
		m.Legacy = randStr(r)
	} else {
		m.Color = randStr(r)
	}
	return m
}

// ptrFn returns the object of model key k in the version being built, nil
// for 0.
type ptrFn func(k int) any

func (a *App) livePtr(k int) any {
	if k == 0 {
		return nil
	}
	return a.live[k]
}

// materialize builds key k's object in version v from the model; from is the
// version the values came from, whose missing fields stay zero.
func (a *App) materialize(k int, v, from Version, ptr ptrFn) any {
	if h, ok := a.hops[k]; ok {
		if v == V1 {
			return &HopV1{Addr: h.Addr, Iface: h.Iface, MAC: h.MAC, Weight: h.Weight}
		}
		o := &HopV2{Addr: h.Addr, Iface: []byte(h.Iface), MAC: h.MAC, Weight: int32(h.Weight)}
		if from == V2 {
			o.Labels = h.Labels
		}
		return o
	}
	if t, ok := a.tables[k]; ok {
		if v == V1 {
			o := &TableV1{Name: t.Name, Count: t.Count}
			for i, s := range t.Slots {
				o.Slots[i] = SlotV1{A: s.A, B: s.B}
			}
			return o
		}
		o := &TableV2{Name: t.Name, Count: uint32(t.Count)}
		if from == V2 {
			o.Owner = t.Owner
		}
		for i, s := range t.Slots {
			o.Slots[i] = slotV2(s, from)
		}
		return o
	}
	m := a.routes[k]
	if v == V1 {
		return routeV1(m, from, ptr)
	}
	return routeV2(m, from, ptr)
}

func slotV2(s mSlot, from Version) SlotV2 {
	o := SlotV2{A: int32(s.A), B: s.B}
	if from == V2 {
		o.Z = s.Z
	}
	return o
}

// hopsAs builds a route's slice and map of next hops in one version,
// keeping nil as nil.
func hopsAs[T any](ptr ptrFn, keys []int, byName map[string]int) ([]*T, map[string]*T) {
	var hops []*T
	if keys != nil {
		hops = []*T{}
		for _, k := range keys {
			hops = append(hops, hopAs[T](ptr, k))
		}
	}
	var m map[string]*T
	if byName != nil {
		m = map[string]*T{}
		for n, k := range byName {
			m[n] = hopAs[T](ptr, k)
		}
	}
	return hops, m
}

func hopAs[T any](ptr ptrFn, k int) *T {
	if k == 0 {
		return nil
	}
	return ptr(k).(*T)
}

func routeV1(m *mRoute, from Version, ptr ptrFn) *RouteV1 {
	o := &RouteV1{
		Prefix: m.Prefix, NextHop: hopAs[HopV1](ptr, m.NextHop), Metric: m.Metric, Distance: m.Distance,
		Tag: m.Tag, Pref: int64(m.Pref), Weight: m.Weight, Cost: m.Cost, Ratio: float64(m.Ratio), Up: m.Up,
		Tiny: m.Tiny, Byte: m.Byte, Name: m.Name, Data: m.Data, Arr: m.Arr, Comms: m.Comms, Labels: m.Labels,
		Attrs: m.Attrs, Inner: SlotV1{A: m.Inner.A, B: m.Inner.B}, Updated: m.Updated, Src: m.Src, Mac: m.Mac,
		Legacy: m.Legacy,
		HopArr: [2]*HopV1{hopAs[HopV1](ptr, m.HopArr[0]), hopAs[HopV1](ptr, m.HopArr[1])},
	}
	if from == V2 {
		// Came from a v2 active: string → []byte is never nil.
		o.Data = []byte(string(m.Data))
	}
	for _, s := range m.Inners {
		o.Inners = append(o.Inners, SlotV1{A: s.A, B: s.B})
	}
	o.Hops, o.HopMap = hopsAs[HopV1](ptr, m.Hops, m.HopMap)
	if m.Slot.table != 0 {
		o.Slot = &ptr(m.Slot.table).(*TableV1).Slots[m.Slot.idx]
	}
	if m.APtr.table != 0 {
		o.APtr = &ptr(m.APtr.table).(*TableV1).Slots[m.APtr.idx].A
	}
	if m.CountPtr != 0 {
		o.CountPtr = &ptr(m.CountPtr).(*TableV1).Count
	}
	return o
}

func routeV2(m *mRoute, from Version, ptr ptrFn) *RouteV2 {
	o := &RouteV2{
		Prefix: m.Prefix, NextHop: hopAs[HopV2](ptr, m.NextHop), Metric: m.Metric, AdminDistance: m.Distance,
		Tag: int64(m.Tag), Pref: m.Pref, Weight: float64(m.Weight), Cost: float64(m.Cost), Ratio: m.Ratio, Up: m.Up,
		Tiny: int64(m.Tiny), Byte: uint16(m.Byte), Name: m.Name, Data: string(m.Data),
		Arr:     [3]int32{int32(m.Arr[0]), int32(m.Arr[1]), int32(m.Arr[2])},
		Inner:   slotV2(m.Inner, from),
		Updated: m.Updated, Src: m.Src, Mac: m.Mac,
		HopArr: [2]*HopV2{hopAs[HopV2](ptr, m.HopArr[0]), hopAs[HopV2](ptr, m.HopArr[1])},
	}
	if from == V2 {
		o.Color = m.Color
	}
	if m.Comms != nil {
		o.Comms = []uint32{}
		for _, c := range m.Comms {
			o.Comms = append(o.Comms, uint32(c))
		}
	}
	if m.Labels != nil {
		o.Labels = map[string]int64{}
		for n, l := range m.Labels {
			o.Labels[n] = int64(l)
		}
	}
	if m.Attrs != nil {
		o.Attrs = map[uint32]string{}
		for n, s := range m.Attrs {
			o.Attrs[uint32(n)] = s
		}
	}
	for _, s := range m.Inners {
		o.Inners = append(o.Inners, slotV2(s, from))
	}
	o.Hops, o.HopMap = hopsAs[HopV2](ptr, m.Hops, m.HopMap)
	if m.Slot.table != 0 {
		o.Slot = &ptr(m.Slot.table).(*TableV2).Slots[m.Slot.idx]
	}
	if m.APtr.table != 0 {
		o.APtr = &ptr(m.APtr.table).(*TableV2).Slots[m.APtr.idx].A
	}
	if m.CountPtr != 0 {
		o.CountPtr = &ptr(m.CountPtr).(*TableV2).Count
	}
	return o
}

func event(e mEvent, v Version, ptr ptrFn) any {
	if v == V1 {
		return &EventV1{Text: e.Text, Code: e.Code, Hop: hopAs[HopV1](ptr, e.Hop)}
	}
	return &EventV2{Text: []byte(e.Text), Code: int32(e.Code), Hop: hopAs[HopV2](ptr, e.Hop)}
}

// Mirror is what Check reads: an objstore.Store or its read View.
type Mirror interface {
	Each(fn func(id uint64, obj any) bool)
	Read(fn func())
}

// Check compares a standby store of version v with the model: every object
// the active holds is there, under the same ID, equal to the model in
// version v with the fields the active's version lacks at zero, and pointers
// lead to the standby's own objects. It must not run while the store
// applies (call it after the standby acknowledged).
func (a *App) Check(s Mirror, v Version) error {
	objs := map[uint64]any{}
	s.Each(func(id uint64, o any) bool {
		objs[id] = o
		return true
	})
	if len(objs) != len(a.ids) {
		return fmt.Errorf("standby holds %d objects, active %d", len(objs), len(a.ids))
	}
	var err error
	s.Read(func() {
		ptr := func(k int) any { return objs[a.ids[k]] }
		for _, k := range slices.Sorted(maps.Keys(a.ids)) {
			got, ok := objs[a.ids[k]]
			if !ok {
				err = fmt.Errorf("object %d (key %d) missing on the standby", a.ids[k], k)
				return
			}
			want := a.materialize(k, v, a.V, ptr)
			if !reflect.DeepEqual(got, want) {
				err = fmt.Errorf("object %d (key %d) differs:\n got %+v\nwant %+v", a.ids[k], k, got, want)
				return
			}
		}
	})
	return err
}

// CheckEvents compares the messages a standby of version v received (in
// order, as delivered) with the ones committed.
func (a *App) CheckEvents(got []any, s Mirror, v Version) error {
	if len(got) != len(a.events) {
		return fmt.Errorf("standby received %d events, active committed %d", len(got), len(a.events))
	}
	objs := map[uint64]any{}
	s.Each(func(id uint64, o any) bool {
		objs[id] = o
		return true
	})
	// A deleted hop's event pointed at an object that is gone now; compare
	// what can still be resolved.
	for i, e := range a.events {
		want := event(mEvent{Text: e.Text, Code: e.Code}, v, nil)
		g := reflect.ValueOf(got[i]).Elem()
		g.FieldByName("Hop").SetZero()
		if !reflect.DeepEqual(got[i], want) {
			return fmt.Errorf("event %d differs: got %+v want %+v", i, got[i], want)
		}
	}
	return nil
}

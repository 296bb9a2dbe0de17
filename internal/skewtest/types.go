// Package skewtest holds two versions of the same application types, as a
// switch pair has them during a rolling upgrade, and a model-driven random
// transaction stream that checks a standby of one version against an active
// of the other. It is test support: nothing in a production build imports it.
package skewtest

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/swha/swha/objstore"
)

// Version is one of the two layouts.
type Version int

// The versions.
const (
	V1 Version = 1
	V2 Version = 2
)

func (v Version) String() string { return fmt.Sprintf("v%d", int(v)) }

// Every field kind of DESIGN.md appears in Route, Hop, Table or Event, and
// each differs between the versions in one of the ways a rolling upgrade
// changes a type: added, removed, renamed, widened, narrowed, signedness,
// float↔int, string↔[]byte, longer arrays of changed elements, and pointers
// into fields whose position and type changed.

// HopV1 is a next hop, version 1.
type HopV1 struct {
	Addr   netip.Addr
	Iface  string
	MAC    net.HardwareAddr
	Weight int16
}

// HopV2: Iface became []byte, Weight widened, Labels added.
type HopV2 struct {
	Labels []uint8
	Addr   netip.Addr
	Iface  []byte
	MAC    net.HardwareAddr
	Weight int32
}

// SlotV1 is an element of Table.Slots, version 1.
type SlotV1 struct {
	A int16
	B string
}

// SlotV2: Z added in front, so A moves; A widened.
type SlotV2 struct {
	Z bool
	A int32
	B string
}

// TableV1 is the target of interior pointers, version 1.
type TableV1 struct {
	Name  string
	Slots [4]SlotV1
	Count uint16
}

// TableV2: Owner added before Slots (every later field index shifts), Slots
// grew to 6 elements of the new SlotV2, Count widened (and an interior
// pointer points at it).
type TableV2 struct {
	Name  string
	Owner string
	Slots [6]SlotV2
	Count uint32
}

// RouteV1 is the route, version 1.
type RouteV1 struct {
	Prefix   netip.Prefix
	NextHop  *HopV1
	Metric   uint32
	Distance uint8
	Tag      int32
	Pref     int64
	Weight   float32
	Cost     int32
	Ratio    float64
	Up       bool
	Tiny     int8
	Byte     uint8
	Name     string
	Data     []byte
	Arr      [3]int16
	Comms    []uint16
	Labels   map[string]int16
	Attrs    map[uint16]string
	Inner    SlotV1
	Inners   []SlotV1
	Hops     []*HopV1
	HopArr   [2]*HopV1
	HopMap   map[string]*HopV1
	Slot     *SlotV1 `swha:",into=Table"`
	APtr     *int16  `swha:",into=Table"`
	CountPtr *uint16 `swha:",into=Table"`
	Updated  time.Time
	Src      netip.Addr
	Mac      net.HardwareAddr
	Legacy   string
}

// RouteV2: Color added (first), Legacy removed, Distance renamed, and most
// other fields changed kind or width.
type RouteV2 struct {
	Color         string
	Prefix        netip.Prefix
	NextHop       *HopV2
	Metric        uint32
	AdminDistance uint8 `swha:"AdminDistance,was=Distance"`
	Tag           int64
	Pref          uint16
	Weight        float64
	Cost          float64
	Ratio         int32
	Up            bool
	Tiny          int64
	Byte          uint16
	Name          string
	Data          string
	Arr           [3]int32
	Comms         []uint32
	Labels        map[string]int64
	Attrs         map[uint32]string
	Inner         SlotV2
	Inners        []SlotV2
	Hops          []*HopV2
	HopArr        [2]*HopV2
	HopMap        map[string]*HopV2
	Slot          *SlotV2 `swha:",into=Table"`
	APtr          *int32  `swha:",into=Table"`
	CountPtr      *uint32 `swha:",into=Table"`
	Updated       time.Time
	Src           netip.Addr
	Mac           net.HardwareAddr
}

// EventV1 is an opaque message, version 1.
type EventV1 struct {
	Text string
	Code int16
	Hop  *HopV1
}

// EventV2: Text became []byte, Code widened, Extra added.
type EventV2 struct {
	Code  int32
	Text  []byte
	Hop   *HopV2
	Extra uint8
}

// Register registers version v's types under the shared wire names.
func Register(r *objstore.Registry, v Version) error {
	protos := map[Version][]any{
		V1: {HopV1{}, TableV1{}, RouteV1{}, EventV1{}, BenchHopV1{}, BenchRouteV1{}},
		V2: {HopV2{}, TableV2{}, RouteV2{}, EventV2{}, BenchHopV2{}, BenchRouteV2{}},
	}[v]
	for i, name := range []string{"Hop", "Table", "Route", "Event", "BenchHop", "BenchRoute"} {
		if err := r.Register(name, protos[i]); err != nil {
			return err
		}
	}
	return nil
}

// NewRegistry returns a registry with version v's types.
func NewRegistry(v Version) (*objstore.Registry, error) {
	r := objstore.NewRegistry()
	if err := Register(r, v); err != nil {
		return nil, err
	}
	return r, r.Seal()
}

// BenchHopV1 and BenchRouteV1 are a route as a routing daemon holds it, for
// the transform benchmark: v2 widens the metric's neighbours, renames one
// field and adds another, the typical shape of a minor-release change.
type BenchHopV1 struct {
	Addr  netip.Addr
	Iface string
}

// BenchHopV2 adds a weight.
type BenchHopV2 struct {
	Addr   netip.Addr
	Iface  string
	Weight uint16
}

// BenchRouteV1 is the benchmark's route, version 1.
type BenchRouteV1 struct {
	Prefix      netip.Prefix
	NextHop     *BenchHopV1
	Metric      uint32
	Distance    uint8
	Tag         int32
	Communities []uint16
	Updated     time.Time
}

// BenchRouteV2 widens Tag and Communities, renames Distance, adds Color.
type BenchRouteV2 struct {
	Prefix        netip.Prefix
	NextHop       *BenchHopV2
	Metric        uint32
	AdminDistance uint8 `swha:"AdminDistance,was=Distance"`
	Tag           int64
	Communities   []uint32
	Updated       time.Time
	Color         uint8
}

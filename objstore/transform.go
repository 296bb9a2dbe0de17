package objstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"
)

// Version skew (ISSU)
//
// During a rolling upgrade the two nodes run different versions of the same
// types. Each side announces its schemas (Schema records); the receiver maps
// the peer's layout onto its own by wire name and decodes every record
// through that map, so the application always sees its own version's layout:
//
//   - a field the peer lacks keeps its zero value (a Create) or its current
//     value (an Update carries only changed fields);
//   - a field the local version lacks is dropped, and counted;
//   - a field renamed with `was=` (on either side) maps to its new name;
//   - integers widen freely; narrowing, signed↔unsigned and float↔int are
//     range-checked, and int→float must be exact; float64→float32 rounds but
//     must not overflow;
//   - string, []byte and net.HardwareAddr convert among themselves;
//   - arrays and slices convert element by element, and into each other (an
//     array that shrinks must only lose zero elements); maps convert keys and
//     values; nested structs map by name again;
//   - pointers keep pointing at the same object, and interior pointers at the
//     same field or element: their paths are rewritten from the peer's field
//     numbering to the local one.
//
// A value that does not fit fails its whole transaction with a TransformError
// naming type, field, value and target kind; nothing of the transaction is
// applied and later transactions are unaffected. A field whose kind changed
// incompatibly (a string that became a struct) cannot be carried at all: it
// is dropped like a removed field, and both the dropped count and the reason
// are in the SkewReport.

// ErrNotRepresentable is wrapped by every TransformError.
var ErrNotRepresentable = errors.New("not representable in the local version")

// TransformError is a value from a peer of another version that the local
// version cannot hold. The transaction that carried it is not applied.
type TransformError struct {
	Type     string // wire name of the type
	Field    string // path of the field in the peer's type, "" for the type itself
	Value    string // the value that did not fit, as text
	Target   string // the local kind it had to become
	ObjectID uint64 // the object, when the record names one
}

func (e *TransformError) Error() string {
	var b strings.Builder
	b.WriteString("objstore: ")
	b.WriteString(e.Type)
	if e.Field != "" {
		b.WriteString(".")
		b.WriteString(e.Field)
	}
	if e.ObjectID != 0 {
		fmt.Fprintf(&b, " (object %d)", e.ObjectID)
	}
	if e.Value != "" {
		fmt.Fprintf(&b, ": value %s does not fit %s", e.Value, e.Target)
	} else {
		fmt.Fprintf(&b, ": %s", e.Target)
	}
	b.WriteString(": ")
	b.WriteString(ErrNotRepresentable.Error())
	return b.String()
}

// Unwrap makes errors.Is(err, ErrNotRepresentable) hold.
func (e *TransformError) Unwrap() error { return ErrNotRepresentable }

// SkewReport says how a peer's version of a type maps onto the local one.
type SkewReport struct {
	Type string
	// Identical: same layout, records decode as they are.
	Identical bool
	// Missing: the local registry has no type of that name; records that
	// use it fail their transaction.
	Missing bool
	// Added lists local fields the peer does not send: they keep zero values.
	Added []string
	// Dropped lists peer fields the local version cannot hold: removed
	// fields, and fields whose kind changed incompatibly.
	Dropped []DroppedField
	// Renamed lists "old→new" renames followed through was= tags.
	Renamed []string
	// Converted lists fields whose kind changes: "Metric: uint32→uint16";
	// narrowing ones are range-checked per value.
	Converted []string
}

// DroppedField is a peer field the local version does not carry.
type DroppedField struct {
	Field  string
	Reason string // "removed", or the incompatible kinds
	Count  uint64 // values dropped so far (Store.PeerSkew only)
}

func (r SkewReport) String() string {
	switch {
	case r.Missing:
		return r.Type + ": not registered locally"
	case r.Identical:
		return r.Type + ": identical"
	}
	var parts []string
	if len(r.Added) > 0 {
		parts = append(parts, "added "+strings.Join(r.Added, ","))
	}
	for _, d := range r.Dropped {
		parts = append(parts, fmt.Sprintf("dropped %s (%s, %d values)", d.Field, d.Reason, d.Count))
	}
	if len(r.Renamed) > 0 {
		parts = append(parts, "renamed "+strings.Join(r.Renamed, ","))
	}
	if len(r.Converted) > 0 {
		parts = append(parts, "converted "+strings.Join(r.Converted, ","))
	}
	if len(parts) == 0 {
		return r.Type + ": compatible"
	}
	return r.Type + ": " + strings.Join(parts, "; ")
}

// peerType is a type as the peer announced it, mapped onto the local type of
// the same wire name.
type peerType struct {
	schema *Schema
	local  *typeInfo // nil: no local type of that name
	// x is the conversion plan; nil when the layouts are identical and
	// records decode with the local plan directly.
	x      *xnode
	report SkewReport
	drops  []*dropCounter
}

type dropCounter struct {
	field, reason string
	n             atomic.Uint64
}

type xop uint8

const (
	xSame     xop = iota // identical encoding: the local plan decodes it
	xNum                 // numeric conversion, range-checked
	xText                // string, []byte, HardwareAddr among themselves
	xSeq                 // array or slice into array or slice
	xMap                 // map with converted keys or values
	xStruct              // fields matched by wire name
	xInterior            // interior pointer: the path is rewritten
)

// xnode converts one peer value into a local one.
type xnode struct {
	op      xop
	peer    *TypeDesc
	local   *node
	elem    *xnode // xSeq, xMap value
	key     *xnode // xMap
	fields  []xfield
	peerMin int    // least bytes a peer value encodes in
	typ     string // wire name of the enclosing type, for errors
	path    string // field path, for errors
}

// xfield is one field of a peer struct; x is nil when it is dropped.
type xfield struct {
	x     *xnode
	local *field
	peer  *TypeDesc
	drops *dropCounter
}

// CompareSchema reports how records of the peer's schema would map onto the
// local registry's type of the same name (the registry must be sealed): for
// checking a peer's schemas against this build's types before an upgrade.
// The Node itself uses CompareSchemas on what its standby announced.
func CompareSchema(local *Registry, peer *Schema) SkewReport {
	return newPeerType(local, peer).report
}

// CompareSchemas is CompareSchema between two schemas, with no registry:
// how records of schema from would map onto a type described by to. An
// active uses it on the schemas its standby announced, to learn what of its
// own version the standby will not carry.
func CompareSchemas(from, to *Schema) SkewReport {
	if from.Name != to.Name {
		return SkewReport{Type: from.Name, Missing: true}
	}
	t := &typeInfo{name: to.Name, root: nodeOfDesc(to.Root), schema: to}
	reg := &Registry{byName: map[string]*typeInfo{to.Name: t}}
	return newPeerType(reg, from).report
}

// nodeOfDesc builds the skeleton of a compiled type from its description:
// enough to plan a transformation and report on it, not to decode.
func nodeOfDesc(d *TypeDesc) *node {
	n := &node{kind: d.Kind, length: d.Len}
	if d.Elem != nil {
		n.elem = nodeOfDesc(d.Elem)
	}
	if d.Key != nil {
		n.key = nodeOfDesc(d.Key)
	}
	if d.Target != "" {
		n.target = &typeInfo{name: d.Target}
	}
	for i, f := range d.Fields {
		n.fields = append(n.fields, &field{name: f.Name, was: f.Was, idx: i, n: nodeOfDesc(f.Type)})
	}
	return n
}

func newPeerType(reg *Registry, sc *Schema) *peerType {
	pt := &peerType{schema: sc, report: SkewReport{Type: sc.Name}}
	t := reg.byName[sc.Name]
	if t == nil {
		pt.report.Missing = true
		return pt
	}
	pt.local = t
	if t.schema != nil && t.schema.Fingerprint == sc.Fingerprint && !hasInteriorDeep(t.root) {
		pt.report.Identical = true
		return pt
	}
	b := xbuilder{pt: pt, typ: sc.Name}
	pt.x = b.build(sc.Root, t.root, "")
	if pt.x == nil || pt.x.op == xSame {
		// Laid out alike: the fingerprints differ only in what does not
		// change the encoding (a was= tag on one side).
		pt.x = nil
		pt.report.Identical = true
		return pt
	}
	pt.report.Identical = len(pt.report.Added) == 0 && len(pt.report.Dropped) == 0 &&
		len(pt.report.Renamed) == 0 && len(pt.report.Converted) == 0
	return pt
}

// hasInteriorDeep reports whether values of n hold interior pointers, whose
// paths depend on another type's layout even when n's own is unchanged.
func hasInteriorDeep(n *node) bool {
	return holdsKind(n, func(k Kind) bool { return k == KindInterior })
}

// hasRefDeep reports whether values of n hold pointers to objects.
func hasRefDeep(n *node) bool {
	return holdsKind(n, func(k Kind) bool { return k == KindRef || k == KindInterior })
}

// holdsKind reports whether values of n contain a value of a kind that want
// accepts, at any depth.
func holdsKind(n *node, want func(Kind) bool) bool {
	if want(n.kind) {
		return true
	}
	switch n.kind {
	case KindArray, KindSlice:
		return holdsKind(n.elem, want)
	case KindMap:
		return holdsKind(n.key, want) || holdsKind(n.elem, want)
	case KindStruct:
		for _, f := range n.fields {
			if holdsKind(f.n, want) {
				return true
			}
		}
	}
	return false
}

type xbuilder struct {
	pt  *peerType
	typ string
}

func (b *xbuilder) build(pd *TypeDesc, ln *node, path string) *xnode {
	x := &xnode{peer: pd, local: ln, peerMin: descMinEnc(pd), typ: b.typ, path: path}
	switch {
	case pd.Kind == KindStruct && ln.kind == KindStruct:
		if sameLayout(pd, ln) {
			x.op = xSame
			return x
		}
		x.op = xStruct
		b.buildStruct(x, path)
		return x
	case sameLayout(pd, ln):
		x.op = xSame
		return x
	case isNumKind(pd.Kind) && isNumKind(ln.kind):
		x.op = xNum
	case isTextKind(pd.Kind) && isTextKind(ln.kind):
		x.op = xText
	case (pd.Kind == KindArray || pd.Kind == KindSlice) && (ln.kind == KindArray || ln.kind == KindSlice):
		x.op = xSeq
		if x.elem = b.build(pd.Elem, ln.elem, path+"[]"); x.elem == nil {
			return nil
		}
	case pd.Kind == KindMap && ln.kind == KindMap:
		x.op = xMap
		x.key = b.build(pd.Key, ln.key, path+"[key]")
		x.elem = b.build(pd.Elem, ln.elem, path+"[]")
		if x.key == nil || x.elem == nil {
			return nil
		}
	case pd.Kind == KindRef && ln.kind == KindRef && ln.target != nil && pd.Target == ln.target.name:
		x.op = xSame // an object ID, whatever the target's layout
		return x
	case pd.Kind == KindInterior && ln.kind == KindInterior && ln.target != nil && pd.Target == ln.target.name:
		x.op = xInterior
		if pd.Elem != nil && ln.elem != nil && !sameLayout(pd.Elem, ln.elem) {
			// Fine only if the field it points into changed alike; each
			// pointer is checked as it is decoded.
			b.pt.report.Converted = append(b.pt.report.Converted, fmt.Sprintf("%s: *%s→*%s (into %s)", path,
				describeKind(pd.Elem), describeKind(describe(ln.elem)), pd.Target))
		}
		return x
	default:
		return nil
	}
	if path != "" && pd.Kind != ln.kind {
		b.pt.report.Converted = append(b.pt.report.Converted, fmt.Sprintf("%s: %s→%s", path, describeKind(pd), describeKind(describe(ln))))
	}
	return x
}

func (b *xbuilder) buildStruct(x *xnode, path string) {
	pd, ln := x.peer, x.local
	match := matchFields(pd.Fields, ln.fields)
	used := make([]bool, len(ln.fields))
	x.fields = make([]xfield, len(pd.Fields))
	for i, pf := range pd.Fields {
		lf := match[i]
		fp := joinPath(path, pf.Name)
		xf := xfield{peer: pf.Type}
		if lf == nil {
			xf.drops = b.drop(fp, "removed")
			x.fields[i] = xf
			continue
		}
		used[lf.idx] = true
		if lf.name != pf.Name {
			b.pt.report.Renamed = append(b.pt.report.Renamed, joinPath(path, pf.Name)+"→"+lf.name)
		}
		xf.local = lf
		xf.x = b.build(pf.Type, lf.n, joinPath(path, lf.name))
		if xf.x == nil {
			xf.drops = b.drop(fp, fmt.Sprintf("peer %s, local %s", describeKind(pf.Type), describeKind(describe(lf.n))))
		}
		x.fields[i] = xf
	}
	for i, lf := range ln.fields {
		if !used[i] {
			b.pt.report.Added = append(b.pt.report.Added, joinPath(path, lf.name))
		}
	}
}

func (b *xbuilder) drop(field, reason string) *dropCounter {
	c := &dropCounter{field: field, reason: reason}
	b.pt.drops = append(b.pt.drops, c)
	b.pt.report.Dropped = append(b.pt.report.Dropped, DroppedField{Field: field, Reason: reason})
	return c
}

// matchFields maps each peer field to a local field, or nil. The newer
// version carries the was= tags, whichever side that is, and a rename wins
// over a same-named field when the other side does not know the new name:
// that side is older, so its field of the old name is the renamed one, and
// a field of the newer side that reuses the old name is a new field. Where
// the other side knows the new name too, names match as they are.
func matchFields(pfs []FieldDesc, fs []*field) []*field {
	out := make([]*field, len(pfs))
	used := make([]bool, len(fs))
	peerHas := func(name string) int {
		return slices.IndexFunc(pfs, func(p FieldDesc) bool { return p.Name == name })
	}
	localHas := func(name string) int {
		return slices.IndexFunc(fs, func(f *field) bool { return f.name == name })
	}
	take := func(i int, f *field) {
		if out[i] == nil && !used[f.idx] {
			out[i], used[f.idx] = f, true
		}
	}
	// Local renames the peer predates.
	for _, f := range fs {
		if peerHas(f.name) >= 0 {
			continue
		}
		for _, old := range f.was {
			if i := peerHas(old); i >= 0 {
				take(i, f)
				break
			}
		}
	}
	// Peer renames the local version predates.
	for i, p := range pfs {
		if localHas(p.Name) >= 0 {
			continue
		}
		for _, old := range p.Was {
			if k := localHas(old); k >= 0 {
				take(i, fs[k])
				break
			}
		}
	}
	// Everything else by name.
	for i, p := range pfs {
		if k := localHas(p.Name); k >= 0 {
			take(i, fs[k])
		}
	}
	return out
}

// sameLayout reports whether values of the peer's type pd encode exactly as
// values of the local type n, so the local plan decodes them unchanged.
// Interior pointers never qualify: their paths follow another type's layout.
func sameLayout(pd *TypeDesc, n *node) bool {
	if pd.Kind != n.kind {
		return false
	}
	switch n.kind {
	case KindArray:
		return pd.Len == n.length && sameLayout(pd.Elem, n.elem)
	case KindSlice:
		return sameLayout(pd.Elem, n.elem)
	case KindMap:
		return sameLayout(pd.Key, n.key) && sameLayout(pd.Elem, n.elem)
	case KindStruct:
		if len(pd.Fields) != len(n.fields) {
			return false
		}
		for i, f := range n.fields {
			if pd.Fields[i].Name != f.name || !sameLayout(pd.Fields[i].Type, f.n) {
				return false
			}
		}
		return true
	case KindRef:
		return n.target != nil && pd.Target == n.target.name
	case KindInterior:
		return false
	}
	return true
}

func isNumKind(k Kind) bool { return k >= KindInt8 && k <= KindFloat64 }

func isTextKind(k Kind) bool { return k == KindString || k == KindBytes || k == KindHWAddr }

// describeKind names a type in wire terms, the same for both sides.
func describeKind(v *TypeDesc) string {
	switch v.Kind {
	case KindArray:
		return fmt.Sprintf("[%d]%s", v.Len, describeKind(v.Elem))
	case KindSlice:
		return "[]" + describeKind(v.Elem)
	case KindMap:
		return fmt.Sprintf("map[%s]%s", describeKind(v.Key), describeKind(v.Elem))
	case KindRef:
		return "*" + v.Target
	case KindInterior:
		return "*(into " + v.Target + ")"
	}
	return v.Kind.String()
}

// descMinEnc mirrors node.minEnc for a peer's type: the fewest bytes one of
// its values encodes in, which bounds counts read from hostile input.
func descMinEnc(d *TypeDesc) int {
	const limit = 1 << 30 // saturate: a hostile schema must not overflow it
	switch d.Kind {
	case KindPrefix:
		return 2
	case KindTime:
		return 3
	case KindArray:
		return min(d.Len*descMinEnc(d.Elem), limit)
	case KindStruct:
		n := 0
		for _, f := range d.Fields {
			n = min(n+descMinEnc(f.Type), limit)
		}
		return n
	}
	return 1
}

// PeerSkew reports, for every type the peer announced on the current stream,
// how its version maps onto the local one and how many values were dropped.
func (s *Store) PeerSkew() []SkewReport {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]SkewReport, 0, len(s.peerByName))
	for _, pt := range s.peerByName {
		r := pt.report
		r.Dropped = slices.Clone(r.Dropped)
		for i, c := range pt.drops {
			r.Dropped[i].Count = c.n.Load()
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b SkewReport) int { return strings.Compare(a.Type, b.Type) })
	return out
}

// decodeObject decodes a whole value of the peer's type pt into p, or only
// validates it when p is nil.
func (s *Store) decodeObject(pt *peerType, d *decoder, p unsafe.Pointer) {
	if pt.x == nil {
		decodeValue(pt.local.root, d, p, s)
		return
	}
	s.decodeX(pt.x, d, p)
}

// decodeField decodes field fi, numbered as in the peer's schema, into the
// object at obj (nil: validate only).
func (s *Store) decodeField(pt *peerType, fi uint64, d *decoder, obj unsafe.Pointer) {
	if pt.x == nil {
		fs := pt.local.root.fields
		if fi >= uint64(len(fs)) {
			d.fail(fmt.Sprintf("field %d of %s", fi, pt.local.name))
			return
		}
		f := fs[fi]
		var fp unsafe.Pointer
		if obj != nil {
			fp = add(obj, f.off)
		}
		decodeValue(f.n, d, fp, s)
		return
	}
	fs := pt.x.fields
	if fi >= uint64(len(fs)) {
		d.fail(fmt.Sprintf("field %d of %s", fi, pt.schema.Name))
		return
	}
	s.decodeXField(&fs[fi], d, obj)
}

func (s *Store) decodeXField(f *xfield, d *decoder, obj unsafe.Pointer) {
	if f.x == nil {
		skipDesc(f.peer, d, 0)
		if s.applying.staging {
			f.drops.n.Add(1)
		}
		return
	}
	var fp unsafe.Pointer
	if obj != nil {
		fp = add(obj, f.local.off)
	}
	s.decodeX(f.x, d, fp)
}

func (x *xnode) fail(d *decoder, value string) {
	if d.err == nil {
		d.err = &TransformError{Type: x.typ, Field: x.path, Value: value, Target: x.local.rt.String()}
	}
}

// decodeX reads a value encoded by the peer as x.peer into the local value
// at p (nil: validate only).
func (s *Store) decodeX(x *xnode, d *decoder, p unsafe.Pointer) {
	if d.err != nil || !d.spend() {
		return
	}
	switch x.op {
	case xSame:
		decodeValue(x.local, d, p, s)
	case xNum:
		v := readNumber(x.peer.Kind, d)
		if d.err == nil && !storeNumber(x.local, v, p) {
			x.fail(d, v.String())
		}
	case xText:
		var b []byte
		isNil := false
		if x.peer.Kind == KindString {
			b = d.bytes(d.count(1))
		} else {
			c := d.nilCount(1)
			isNil = c < 0
			b = d.bytes(max(c, 0))
		}
		if d.err != nil || p == nil {
			return
		}
		switch {
		case x.local.kind == KindString:
			*(*string)(p) = string(b)
		case isNil:
			*(*[]byte)(p) = nil
		default:
			*(*[]byte)(p) = append(make([]byte, 0, len(b)), b...)
		}
	case xSeq:
		s.decodeSeq(x, d, p)
	case xMap:
		s.decodeXMap(x, d, p)
	case xStruct:
		for i := range x.fields {
			s.decodeXField(&x.fields[i], d, p)
		}
	case xInterior:
		s.decodeInterior(x, d, p)
	}
}

func (s *Store) decodeSeq(x *xnode, d *decoder, p unsafe.Pointer) {
	c := x.peer.Len
	if x.peer.Kind == KindSlice {
		c = d.nilCount(x.elem.peerMin)
	}
	if d.err != nil {
		return
	}
	el := x.local.elem
	if c > 0 && !d.spendN(c) {
		return // an array the peer declares huge, before allocating for it
	}
	if x.local.kind == KindSlice {
		if c < 0 {
			if p != nil {
				*(*sliceHdr)(p) = sliceHdr{}
			}
			return
		}
		var data unsafe.Pointer
		if p != nil {
			data = newArray(el, c)
		}
		for i := 0; i < c && d.err == nil; i++ {
			var ep unsafe.Pointer
			if data != nil {
				ep = add(data, uintptr(i)*el.size)
			}
			s.decodeX(x.elem, d, ep)
		}
		if p != nil && d.err == nil {
			*(*sliceHdr)(p) = sliceHdr{data, c, c}
		}
		return
	}
	// Into an array: the whole array is the value, so elements the peer
	// does not send are zero, and elements beyond its length must be.
	n := x.local.length
	for i := 0; i < max(c, 0) && d.err == nil; i++ {
		if i < n {
			var ep unsafe.Pointer
			if p != nil {
				ep = add(p, uintptr(i)*el.size)
			}
			s.decodeX(x.elem, d, ep)
			continue
		}
		tmp := reflect.New(el.rt)
		s.decodeX(x.elem, d, tmp.UnsafePointer())
		if d.err == nil && !tmp.Elem().IsZero() {
			// Pointers decoded while validating are not type-checked
			// yet (checkRefs does that at the end of the step), so a
			// value holding them must not be followed to print it.
			what := "a non-zero " + el.rt.String()
			if !hasRefDeep(el) {
				what = fmt.Sprintf("%v", tmp.Elem().Interface())
			}
			x.fail(d, fmt.Sprintf("%s (element %d of %d)", what, i, c))
		}
	}
	if p != nil && d.err == nil {
		for i := max(c, 0); i < n; i++ {
			clearValue(el, add(p, uintptr(i)*el.size))
		}
	}
}

func (s *Store) decodeXMap(x *xnode, d *decoder, p unsafe.Pointer) {
	c := d.nilCount(x.key.peerMin + x.elem.peerMin)
	if d.err != nil {
		return
	}
	if p == nil && c < 0 {
		return
	}
	if p == nil {
		// Validation must find what decoding would: keys that collide
		// once converted (-0.0 and 0.0 becoming the integer 0).
		seen := reflect.MakeMapWithSize(reflect.MapOf(x.local.key.rt, reflect.TypeFor[struct{}]()), c)
		k := reflect.New(x.local.key.rt).Elem()
		present := reflect.ValueOf(struct{}{})
		for i := 0; i < c && d.err == nil; i++ {
			k.SetZero()
			s.decodeX(x.key, d, k.Addr().UnsafePointer())
			s.decodeX(x.elem, d, nil)
			seen.SetMapIndex(k, present)
		}
		if d.err == nil && seen.Len() != c {
			x.fail(d, fmt.Sprintf("%d keys (%d after conversion)", c, seen.Len()))
		}
		return
	}
	mv := reflect.NewAt(x.local.rt, p).Elem()
	if c < 0 {
		mv.SetZero()
		return
	}
	m := reflect.MakeMapWithSize(x.local.rt, c)
	k := reflect.New(x.local.key.rt).Elem()
	v := reflect.New(x.local.elem.rt).Elem()
	for i := 0; i < c && d.err == nil; i++ {
		k.SetZero()
		v.SetZero()
		s.decodeX(x.key, d, k.Addr().UnsafePointer())
		s.decodeX(x.elem, d, v.Addr().UnsafePointer())
		m.SetMapIndex(k, v)
	}
	if d.err == nil {
		if m.Len() != c {
			// Two peer keys became one local key: a value would be lost.
			x.fail(d, fmt.Sprintf("%d keys (%d after conversion)", c, m.Len()))
			return
		}
		mv.Set(m)
	}
}

// decodeInterior reads an interior pointer and rewrites its path from the
// peer's field numbering of the target type to the local one.
func (s *Store) decodeInterior(x *xnode, d *decoder, p unsafe.Pointer) {
	id := d.uvarint()
	var path []uint32
	if id != 0 {
		path = readPath(d)
	}
	if d.err != nil {
		return
	}
	if id != 0 {
		if err := s.translatePath(x, path); err != nil {
			if d.err == nil {
				d.err = err
			}
			return
		}
		// The path may now lead to a field whose type differs from what
		// the local pointer points to (the peer's *uint32 into a uint32
		// field, the local pointer a *uint64): this version cannot hold
		// that pointer.
		if _, n, ok := walkPath(x.local.target.root, nil, path); ok && n.rt != x.local.elem.rt {
			d.err = &TransformError{Type: x.typ, Field: x.path, Value: fmt.Sprintf("a pointer to a %v in %s", n.rt, x.local.target.name),
				Target: x.local.rt.String()}
			return
		}
	}
	finishRef(x.local, d, p, s, id, path)
}

func readPath(d *decoder) []uint32 {
	k := d.count(1)
	if k > maxPath {
		d.fail("interior path too long")
		return nil
	}
	for i := 0; i < k; i++ {
		st := d.uvarint()
		if st > math.MaxUint32 {
			d.fail("bad path step")
		}
		d.path[i] = uint32(st)
	}
	return d.path[:k]
}

func (s *Store) translatePath(x *xnode, path []uint32) error {
	target := x.local.target.name
	pt := s.peerByName[target]
	if pt == nil {
		return fmt.Errorf("pointer into %s, a type the peer never announced: %w", target, ErrCorrupt)
	}
	cur := pt.x
	for i, st := range path {
		if cur == nil || cur.op == xSame {
			return nil // the rest of the path is laid out alike on both sides
		}
		switch {
		case cur.op == xStruct:
			if int(st) >= len(cur.fields) {
				return fmt.Errorf("pointer into %s: path %v: step %d out of range: %w", target, path, st, ErrCorrupt)
			}
			f := &cur.fields[st]
			if f.x == nil {
				return &TransformError{Type: x.typ, Field: x.path, Value: fmt.Sprintf("&%s.%s", target, joinPath(cur.path, cur.peer.Fields[st].Name)),
					Target: fmt.Sprintf("a pointer into %s (the local version has no field the peer's points to)", target)}
			}
			path[i] = uint32(f.local.idx)
			cur = f.x
		case cur.op == xSeq && cur.peer.Kind == KindArray && cur.local.kind == KindArray:
			if int(st) >= cur.local.length {
				return &TransformError{Type: x.typ, Field: x.path, Value: fmt.Sprintf("a pointer to element %d of %s", st, cur.path),
					Target: x.local.rt.String() + " into " + cur.local.rt.String()}
			}
			cur = cur.elem
		case cur.peer.Kind != KindStruct && cur.peer.Kind != KindArray:
			return fmt.Errorf("pointer into %s: path %v steps into a %v: %w", target, path, cur.peer.Kind, ErrCorrupt)
		default:
			return &TransformError{Type: x.typ, Field: x.path, Value: "a pointer into " + target + "." + cur.path,
				Target: x.local.rt.String() + " (the field is no longer an array or struct)"}
		}
	}
	return nil
}

// number is a numeric value read from a peer, before it is converted.
type number struct {
	kind byte // 'i' signed, 'u' unsigned, 'f' float
	i    int64
	u    uint64
	f    float64
}

func (v number) String() string {
	switch v.kind {
	case 'i':
		return strconv.FormatInt(v.i, 10)
	case 'u':
		return strconv.FormatUint(v.u, 10)
	}
	return strconv.FormatFloat(v.f, 'g', -1, 64)
}

func readNumber(k Kind, d *decoder) number {
	switch k {
	case KindInt8:
		return number{kind: 'i', i: int64(int8(d.byte()))}
	case KindUint8:
		return number{kind: 'u', u: uint64(d.byte())}
	case KindInt16, KindInt32, KindInt64:
		return number{kind: 'i', i: d.varint()}
	case KindUint16, KindUint32, KindUint64:
		return number{kind: 'u', u: d.uvarint()}
	case KindFloat32:
		b := d.bytesOr(4)
		return number{kind: 'f', f: float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))}
	default:
		b := d.bytesOr(8)
		return number{kind: 'f', f: math.Float64frombits(binary.LittleEndian.Uint64(b))}
	}
}

const two63 = 9223372036854775808.0 // 2^63, exact as a float64

// storeNumber converts v to the local numeric type n and stores it at p
// (nil: check only). It reports false when v does not fit exactly.
func storeNumber(n *node, v number, p unsafe.Pointer) bool {
	bits := n.size * 8
	switch n.kind {
	case KindInt8, KindInt16, KindInt32, KindInt64:
		var i int64
		switch v.kind {
		case 'i':
			i = v.i
		case 'u':
			if v.u > math.MaxInt64 {
				return false
			}
			i = int64(v.u)
		default:
			if v.f != math.Trunc(v.f) || v.f < -two63 || v.f >= two63 {
				return false // fractions, NaN, infinities and overflow
			}
			i = int64(v.f)
		}
		if bits < 64 && (i < -1<<(bits-1) || i >= 1<<(bits-1)) {
			return false
		}
		if p != nil {
			storeUint(p, n.size, uint64(i))
		}
	case KindUint8, KindUint16, KindUint32, KindUint64:
		var u uint64
		switch v.kind {
		case 'i':
			if v.i < 0 {
				return false
			}
			u = uint64(v.i)
		case 'u':
			u = v.u
		default:
			if v.f != math.Trunc(v.f) || v.f < 0 || v.f >= 2*two63 {
				return false
			}
			u = uint64(v.f)
		}
		if bits < 64 && u >= 1<<bits {
			return false
		}
		if p != nil {
			storeUint(p, n.size, u)
		}
	case KindFloat32, KindFloat64:
		var f float64
		switch v.kind {
		case 'i':
			f = float64(v.i)
			if f >= two63 || int64(f) != v.i {
				return false // not exact: an integer must not change value
			}
		case 'u':
			f = float64(v.u)
			if f >= 2*two63 || uint64(f) != v.u {
				return false
			}
		default:
			f = v.f
		}
		if n.kind == KindFloat64 {
			if p != nil {
				*(*float64)(p) = f
			}
			return true
		}
		f32 := float32(f)
		if math.IsInf(float64(f32), 0) && !math.IsInf(f, 0) {
			return false // overflow
		}
		if v.kind != 'f' && float64(f32) != f {
			return false
		}
		if p != nil {
			*(*float32)(p) = f32
		}
	default:
		return false
	}
	return true
}

// skipDesc reads past a value of the peer's type pd without storing it (a
// dropped field), validating its encoding as it goes.
func skipDesc(pd *TypeDesc, d *decoder, depth int) {
	if d.err != nil || !d.spend() {
		return
	}
	if depth > errMaxSchemaDepth {
		d.fail("value nested too deep")
		return
	}
	switch pd.Kind {
	case KindBool, KindInt8, KindUint8:
		d.byte()
	case KindInt16, KindInt32, KindInt64, KindUint16, KindUint32, KindUint64:
		d.uvarint()
	case KindFloat32:
		d.bytes(4)
	case KindFloat64:
		d.bytes(8)
	case KindString:
		d.bytes(d.count(1))
	case KindBytes, KindHWAddr:
		d.bytes(max(d.nilCount(1), 0))
	case KindArray:
		for i := 0; i < pd.Len && d.err == nil; i++ {
			skipDesc(pd.Elem, d, depth+1)
		}
	case KindSlice:
		c := d.nilCount(descMinEnc(pd.Elem))
		for i := 0; i < c && d.err == nil; i++ {
			skipDesc(pd.Elem, d, depth+1)
		}
	case KindMap:
		c := d.nilCount(descMinEnc(pd.Key) + descMinEnc(pd.Elem))
		for i := 0; i < c && d.err == nil; i++ {
			skipDesc(pd.Key, d, depth+1)
			skipDesc(pd.Elem, d, depth+1)
		}
	case KindStruct:
		for _, f := range pd.Fields {
			skipDesc(f.Type, d, depth+1)
		}
	case KindAddr:
		decodeAddr(d)
	case KindPrefix:
		decodeAddr(d)
		d.uvarint()
	case KindTime:
		decodeTime(d)
	case KindRef:
		d.uvarint()
	case KindInterior:
		if d.uvarint() != 0 {
			readPath(d)
		}
	default:
		d.fail("unsupported kind " + pd.Kind.String())
	}
}

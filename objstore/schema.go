package objstore

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"time"
)

// Kind is the wire kind of a schema node. Its numeric values are part of the
// schema encoding exchanged with the peer, so they never change meaning.
type Kind uint8

const (
	KindInvalid Kind = iota
	KindBool
	KindInt8
	KindInt16
	KindInt32
	KindInt64
	KindUint8
	KindUint16
	KindUint32
	KindUint64
	KindFloat32
	KindFloat64
	KindString
	KindBytes
	KindArray
	KindSlice
	KindMap
	KindStruct
	KindAddr     // netip.Addr
	KindPrefix   // netip.Prefix
	KindHWAddr   // net.HardwareAddr
	KindTime     // time.Time
	KindRef      // pointer to a whole registered object
	KindInterior // pointer into a field or array element of a registered object
	kindCount
)

var kindNames = [...]string{"invalid", "bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
	"uint32", "uint64", "float32", "float64", "string", "bytes", "array", "slice", "map", "struct",
	"netip.Addr", "netip.Prefix", "net.HardwareAddr", "time.Time", "ref", "interior"}

func (k Kind) String() string {
	if k < kindCount {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Errors returned by registration and schema decoding. Each returned error wraps
// one of these and names the type and field at fault.
var (
	ErrUnsupported   = errors.New("unsupported field")
	ErrUnregistered  = errors.New("type not registered")
	ErrDuplicate     = errors.New("duplicate registration")
	ErrSealed        = errors.New("registry sealed")
	ErrCorruptSchema = errors.New("corrupt schema")
)

const (
	errMaxSchemaDepth  = 32
	errMaxSchemaFields = 1 << 12
)

var (
	typeTime   = reflect.TypeFor[time.Time]()
	typeAddr   = reflect.TypeFor[netip.Addr]()
	typePrefix = reflect.TypeFor[netip.Prefix]()
	typeHWAddr = reflect.TypeFor[net.HardwareAddr]()
)

// span is a byte range [off, end) of a value's memory that holds data, as
// opposed to padding. Comparing spans instead of whole values matters because
// Go does not promise what padding bytes contain after a copy.
type span struct{ off, end uintptr }

// node is the compiled form of one Go type in a schema: what the codec needs
// at run time, computed once at registration so that encoding and comparing
// never go through reflect.Value in the steady state.
type node struct {
	kind   Kind
	rt     reflect.Type
	size   uintptr
	signed bool // integer kinds: two's complement in memory

	// raw means "equal bytes over spans ⇔ equal values (up to harmless false
	// negatives)": ints, floats, bools, pointers, netip and time values and
	// arrays/structs of those. Raw values compare with a memory compare.
	raw    bool
	spans  []span
	hasPtr bool // memory holds Go pointers: copies must be typed (write barriers)
	// hasRefs: a value can hold a KindRef or KindInterior pointer, so the
	// walks that follow pointers (leak check, incoming counts) look inside;
	// refFields are a struct's fields that can (a route's next hop only).
	hasRefs   bool
	refFields []*field

	elem   *node // array, slice, map value, interior pointee
	key    *node // map key
	length int   // array
	fields []*field

	target    *typeInfo // ref, interior: the object type pointed at
	targetRT  reflect.Type
	intoName  string // interior: name of the target type as tagged
	minEnc    int    // minimum encoded size in bytes, bounds decoder loops
	pending   bool   // ref whose target was not registered yet (checked at Seal)
	fieldPath string // for errors at Seal
}

// field is one struct member that is replicated.
type field struct {
	name string
	was  []string
	off  uintptr
	idx  int // position in the struct's wire order
	n    *node
}

// typeInfo is a registered type: its compiled plan and its wire identity.
type typeInfo struct {
	id     uint32 // local type ID, carried in records; peers map it by name
	name   string
	rt     reflect.Type
	root   *node
	prefix string // ID prefix for object names

	// runs group the raw top-level fields into contiguous byte ranges so an
	// unchanged object compares with a few memory compares.
	runs       []run
	nonRaw     []int // indexes of fields compared one by one
	schema     *Schema
	schemaEnc  []byte
	interiorOf bool // some interior pointer targets this type: keep an address index
	refTarget  bool // some pointer (to it, or into it) can target this type
	arena      bool // InArena: objects live in the store's arena of the type
}

type run struct {
	off, end   uintptr
	firstField int // fields[firstField:lastField+1] lie in the run
	lastField  int
}

// TypeOption configures a registered type.
type TypeOption func(*typeInfo)

// WithIDPrefix names objects of the type prefix+"-"+ID (see Store.Name), for
// logs, leak reports and lookups by name.
func WithIDPrefix(prefix string) TypeOption { return func(t *typeInfo) { t.prefix = prefix } }

// Registry holds the types a store can replicate. It is a value, not a global:
// a test can build two registries with different versions of the same types.
// Register types, then create stores; the first NewStore seals the registry,
// after which it is immutable and safe for concurrent use.
type Registry struct {
	types  []*typeInfo
	byName map[string]*typeInfo
	byType map[reflect.Type]*typeInfo
	sealed bool
	refs   []*pendingRef
	// building holds the struct types being compiled, to refuse types that
	// contain themselves by value (through a slice or map): their values are
	// trees, which a schema of fixed nesting cannot describe.
	building map[reflect.Type]bool
}

type pendingRef struct {
	owner *typeInfo
	n     *node
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: map[string]*typeInfo{}, byType: map[reflect.Type]*typeInfo{}}
}

// Register derives the schema of proto's type (a struct or a pointer to one)
// and registers it under the wire name name. Fields use their Go name unless
// tagged `swha:"wire"`; `swha:"wire,was=old"` records a rename for version
// skew; `swha:"-"` skips a field; `swha:",into=Type"` marks a pointer that
// points into a field or array element of a registered Type. Unexported fields
// are skipped, like encoding/json does. Pointers to struct types not registered
// yet are allowed so that types may point at each other; Seal reports the ones
// still unregistered.
func (r *Registry) Register(name string, proto any, opts ...TypeOption) error {
	if r.sealed {
		return fmt.Errorf("objstore: register %s: %w", name, ErrSealed)
	}
	rt := reflect.TypeOf(proto)
	if rt != nil && rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	if rt == nil || rt.Kind() != reflect.Struct {
		return fmt.Errorf("objstore: register %s: %v is not a struct: %w", name, rt, ErrUnsupported)
	}
	if name == "" {
		return fmt.Errorf("objstore: register %v: empty name: %w", rt, ErrUnsupported)
	}
	if _, dup := r.byName[name]; dup {
		return fmt.Errorf("objstore: register %s: name already used: %w", name, ErrDuplicate)
	}
	if old, dup := r.byType[rt]; dup {
		return fmt.Errorf("objstore: register %s: %v already registered as %s: %w", name, rt, old.name, ErrDuplicate)
	}
	ti := &typeInfo{id: uint32(len(r.types) + 1), name: name, rt: rt}
	for _, o := range opts {
		o(ti)
	}
	// Visible during compilation so that self-references resolve at once.
	r.byType[rt] = ti
	var pend []*pendingRef
	root, err := r.build(rt, "", "", ti, &pend)
	if err != nil {
		delete(r.byType, rt)
		return fmt.Errorf("objstore: register %s: %w", name, err)
	}
	ti.root = root
	if ti.arena {
		if err := arenaLayout(rt, ""); err != nil {
			delete(r.byType, rt)
			return fmt.Errorf("objstore: register %s: in arena: %w", name, err)
		}
		if rt.Size() == 0 {
			delete(r.byType, rt)
			return fmt.Errorf("objstore: register %s: in arena: zero-size type: %w", name, ErrUnsupported)
		}
	}
	ti.compileRuns()
	r.types = append(r.types, ti)
	r.byName[name] = ti
	r.refs = append(r.refs, pend...)
	return nil
}

// Seal resolves pointers between types and freezes the registry. It fails,
// naming the field, if a pointer targets a type that was never registered.
// NewStore seals implicitly; calling Seal again is harmless.
func (r *Registry) Seal() error {
	if r.sealed {
		return nil
	}
	for _, p := range r.refs {
		n := p.n
		if n.kind == KindInterior {
			t := r.byName[n.intoName]
			if t == nil {
				return fmt.Errorf("objstore: register %s: field %s: into=%s: %w", p.owner.name, n.fieldPath, n.intoName, ErrUnregistered)
			}
			if !containsType(t.root, n.elem.rt, map[*node]bool{}) {
				return fmt.Errorf("objstore: register %s: field %s: %s has no field or element of type %v: %w",
					p.owner.name, n.fieldPath, t.name, n.elem.rt, ErrUnsupported)
			}
			n.target = t
			t.interiorOf = true
			continue
		}
		t := r.byType[n.targetRT]
		if t == nil {
			return fmt.Errorf("objstore: register %s: field %s: pointer to unregistered type %v: %w", p.owner.name, n.fieldPath, n.targetRT, ErrUnregistered)
		}
		n.target = t
		n.pending = false
	}
	r.refs = nil
	memo := map[*node]bool{}
	for _, t := range r.types {
		markRefs(t.root, memo)
	}
	for id, target := range refTargets(r) {
		if target {
			r.types[id-1].refTarget = true
		}
	}
	for _, t := range r.types {
		t.schema = &Schema{Name: t.name, Root: describe(t.root)}
		t.schemaEnc = t.schema.AppendBinary(nil)
		t.schema.Fingerprint = fingerprint(t.schemaEnc)
	}
	r.sealed = true
	return nil
}

// Schema returns the schema registered under name, nil if there is none or
// the registry is not sealed yet.
func (r *Registry) Schema(name string) *Schema {
	if t := r.byName[name]; t != nil {
		return t.schema
	}
	return nil
}

// Names lists the registered wire names in registration order.
func (r *Registry) Names() []string {
	out := make([]string, len(r.types))
	for i, t := range r.types {
		out[i] = t.name
	}
	return out
}

// markRefs sets n.hasRefs, and that of every node below n.
func markRefs(n *node, memo map[*node]bool) bool {
	if n == nil {
		return false
	}
	if v, ok := memo[n]; ok {
		return v
	}
	memo[n] = false
	var v bool
	switch n.kind {
	case KindRef, KindInterior:
		v = true
	case KindArray, KindSlice:
		v = markRefs(n.elem, memo)
	case KindMap:
		v = markRefs(n.key, memo)
		v = markRefs(n.elem, memo) || v
	case KindStruct:
		n.refFields = nil
		for _, f := range n.fields {
			if markRefs(f.n, memo) {
				v = true
				n.refFields = append(n.refFields, f)
			}
		}
	}
	memo[n], n.hasRefs = v, v
	return v
}

func containsType(n *node, rt reflect.Type, seen map[*node]bool) bool {
	if n == nil || seen[n] {
		return false
	}
	seen[n] = true
	if n.rt == rt {
		return true
	}
	switch n.kind {
	case KindStruct:
		for _, f := range n.fields {
			if containsType(f.n, rt, seen) {
				return true
			}
		}
	case KindArray:
		return containsType(n.elem, rt, seen)
	}
	return false
}

type tagOpts struct {
	name string
	was  []string
	into string
	skip bool
}

func parseTag(tag string) (tagOpts, error) {
	var o tagOpts
	if tag == "-" {
		o.skip = true
		return o, nil
	}
	parts := strings.Split(tag, ",")
	o.name = parts[0]
	for _, p := range parts[1:] {
		switch {
		case strings.HasPrefix(p, "was="):
			o.was = append(o.was, strings.TrimPrefix(p, "was="))
		case strings.HasPrefix(p, "into="):
			o.into = strings.TrimPrefix(p, "into=")
		case p == "":
		default:
			return o, fmt.Errorf("unknown tag option %q", p)
		}
	}
	return o, nil
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// build compiles rt. path names the field for errors; into is the into= option
// inherited by pointers nested in slices, arrays and maps of the field.
func (r *Registry) build(rt reflect.Type, path, into string, owner *typeInfo, pend *[]*pendingRef) (*node, error) {
	n := &node{rt: rt, size: rt.Size()}
	unsupported := func(why string) (*node, error) {
		return nil, fmt.Errorf("field %s: unsupported kind %v%s: %w", path, rt, why, ErrUnsupported)
	}
	switch rt {
	case typeTime:
		n.kind, n.raw, n.hasPtr, n.minEnc = KindTime, true, true, 3
		n.spans = leafSpans(rt, 0, nil)
		return n, nil
	case typeAddr:
		n.kind, n.raw, n.hasPtr, n.minEnc = KindAddr, true, true, 1
		n.spans = leafSpans(rt, 0, nil)
		return n, nil
	case typePrefix:
		n.kind, n.raw, n.hasPtr, n.minEnc = KindPrefix, true, true, 2
		n.spans = leafSpans(rt, 0, nil)
		return n, nil
	case typeHWAddr:
		n.kind, n.hasPtr, n.minEnc = KindHWAddr, true, 1
		return n, nil
	}
	switch rt.Kind() {
	case reflect.Bool:
		n.kind = KindBool
	case reflect.Int8:
		n.kind, n.signed = KindInt8, true
	case reflect.Int16:
		n.kind, n.signed = KindInt16, true
	case reflect.Int32:
		n.kind, n.signed = KindInt32, true
	case reflect.Int64, reflect.Int:
		// int is replicated as 64 bits; a 32-bit peer range-checks on decode.
		n.kind, n.signed = KindInt64, true
	case reflect.Uint8:
		n.kind = KindUint8
	case reflect.Uint16:
		n.kind = KindUint16
	case reflect.Uint32:
		n.kind = KindUint32
	case reflect.Uint64, reflect.Uint:
		n.kind = KindUint64
	case reflect.Float32:
		n.kind = KindFloat32
	case reflect.Float64:
		n.kind = KindFloat64
	case reflect.String:
		n.kind, n.hasPtr, n.minEnc = KindString, true, 1
		return n, nil
	case reflect.Slice:
		if rt.Elem().Kind() == reflect.Uint8 {
			n.kind, n.hasPtr, n.minEnc = KindBytes, true, 1
			return n, nil
		}
		el, err := r.build(rt.Elem(), path+"[]", into, owner, pend)
		if err != nil {
			return nil, err
		}
		n.kind, n.elem, n.hasPtr, n.minEnc = KindSlice, el, true, 1
		return n, nil
	case reflect.Array:
		el, err := r.build(rt.Elem(), path+"[]", into, owner, pend)
		if err != nil {
			return nil, err
		}
		n.kind, n.elem, n.length = KindArray, el, rt.Len()
		n.hasPtr = el.hasPtr
		n.minEnc = el.minEnc * n.length
		if el.raw {
			n.raw = true
			for i := 0; i < n.length; i++ {
				for _, s := range el.spans {
					n.spans = appendSpan(n.spans, span{uintptr(i)*el.size + s.off, uintptr(i)*el.size + s.end})
				}
			}
		}
		return n, nil
	case reflect.Map:
		k, err := r.build(rt.Key(), path+"[key]", into, owner, pend)
		if err != nil {
			return nil, err
		}
		v, err := r.build(rt.Elem(), path+"[]", into, owner, pend)
		if err != nil {
			return nil, err
		}
		n.kind, n.key, n.elem, n.hasPtr, n.minEnc = KindMap, k, v, true, 1
		return n, nil
	case reflect.Struct:
		if r.building[rt] {
			return unsupported(" (contains itself by value; point to a registered type instead)")
		}
		if r.building == nil {
			r.building = map[reflect.Type]bool{}
		}
		r.building[rt] = true
		defer delete(r.building, rt)
		return r.buildStruct(n, path, owner, pend)
	case reflect.Pointer:
		n.hasPtr, n.raw, n.minEnc = true, true, 1
		n.spans = []span{{0, n.size}}
		n.fieldPath = path
		if into != "" {
			el, err := r.build(rt.Elem(), path+"*", "", owner, pend)
			if err != nil {
				return nil, err
			}
			n.kind, n.elem, n.intoName = KindInterior, el, into
			*pend = append(*pend, &pendingRef{owner: owner, n: n})
			return n, nil
		}
		if rt.Elem().Kind() != reflect.Struct || rt.Elem() == typeTime || rt.Elem() == typeAddr || rt.Elem() == typePrefix {
			return unsupported(" (a pointer must target a registered type, or be tagged into=Type)")
		}
		n.kind, n.targetRT, n.pending = KindRef, rt.Elem(), true
		*pend = append(*pend, &pendingRef{owner: owner, n: n})
		return n, nil
	default:
		return unsupported("")
	}
	// Fixed-size scalars.
	n.raw, n.minEnc = true, 1
	n.spans = []span{{0, n.size}}
	return n, nil
}

func (r *Registry) buildStruct(n *node, path string, owner *typeInfo, pend *[]*pendingRef) (*node, error) {
	rt := n.rt
	n.kind = KindStruct
	n.raw = true
	names := map[string]bool{}
	for i := 0; i < rt.NumField(); i++ {
		sf := rt.Field(i)
		tag, err := parseTag(sf.Tag.Get("swha"))
		if err != nil {
			return nil, fmt.Errorf("field %s: %w: %w", joinPath(path, sf.Name), err, ErrUnsupported)
		}
		if tag.skip || (!sf.IsExported() && sf.Tag.Get("swha") == "") {
			continue
		}
		if sf.Name == "_" {
			continue
		}
		wire := tag.name
		if wire == "" {
			wire = sf.Name
		}
		fp := joinPath(path, sf.Name)
		if names[wire] {
			return nil, fmt.Errorf("field %s: wire name %q used twice: %w", fp, wire, ErrDuplicate)
		}
		names[wire] = true
		fn, err := r.build(sf.Type, fp, tag.into, owner, pend)
		if err != nil {
			return nil, err
		}
		if tag.into != "" && !hasInterior(fn) {
			return nil, fmt.Errorf("field %s: into= on a field without pointers: %w", fp, ErrUnsupported)
		}
		f := &field{name: wire, was: tag.was, off: sf.Offset, idx: len(n.fields), n: fn}
		n.fields = append(n.fields, f)
		n.hasPtr = n.hasPtr || fn.hasPtr
		n.minEnc += fn.minEnc
		if fn.raw {
			for _, s := range fn.spans {
				n.spans = appendSpan(n.spans, span{f.off + s.off, f.off + s.end})
			}
		} else {
			n.raw = false
		}
	}
	if len(n.fields) > errMaxSchemaFields {
		return nil, fmt.Errorf("field %s: more than %d fields: %w", path, errMaxSchemaFields, ErrUnsupported)
	}
	if !n.raw {
		n.spans = nil
	}
	return n, nil
}

func hasInterior(n *node) bool {
	switch n.kind {
	case KindInterior:
		return true
	case KindArray, KindSlice:
		return hasInterior(n.elem)
	case KindMap:
		return hasInterior(n.key) || hasInterior(n.elem)
	}
	return false
}

func appendSpan(ss []span, s span) []span {
	if s.end == s.off {
		return ss
	}
	if k := len(ss); k > 0 && ss[k-1].end == s.off {
		ss[k-1].end = s.end
		return ss
	}
	return append(ss, s)
}

// leafSpans lists the bytes of rt that hold data, walking unexported fields
// too: it is how time.Time and netip values get compared without their padding.
func leafSpans(rt reflect.Type, base uintptr, ss []span) []span {
	switch rt.Kind() {
	case reflect.Struct:
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			ss = leafSpans(f.Type, base+f.Offset, ss)
		}
	case reflect.Array:
		for i := 0; i < rt.Len(); i++ {
			ss = leafSpans(rt.Elem(), base+uintptr(i)*rt.Elem().Size(), ss)
		}
	default:
		ss = appendSpan(ss, span{base, base + rt.Size()})
	}
	return ss
}

func (t *typeInfo) compileRuns() {
	fs := t.root.fields
	t.runs, t.nonRaw = nil, nil
	var spans []span
	// Go lays struct fields out in declaration order, so spans come sorted.
	for i, f := range fs {
		if !f.n.raw {
			t.nonRaw = append(t.nonRaw, i)
			continue
		}
		for _, s := range f.n.spans {
			spans = appendSpan(spans, span{f.off + s.off, f.off + s.end})
		}
	}
	for _, s := range spans {
		lo, hi := len(fs), -1
		for i, f := range fs {
			if f.n.raw && f.off < s.end && f.off+f.n.size > s.off {
				lo, hi = min(lo, i), max(hi, i)
			}
		}
		t.runs = append(t.runs, run{off: s.off, end: s.end, firstField: lo, lastField: hi})
	}
}

// Schema is the wire description of a registered type: what a peer needs to
// map our records onto its own version of the type by wire name.
type Schema struct {
	Name        string
	Root        *TypeDesc
	Fingerprint uint64 // FNV-1a of the encoding: equal fingerprints, identical layouts
}

// TypeDesc describes one node of a schema.
type TypeDesc struct {
	Kind   Kind
	Len    int         // array length
	Elem   *TypeDesc   // array, slice, map value, interior pointee
	Key    *TypeDesc   // map key
	Fields []FieldDesc // struct
	Target string      // ref, interior: wire name of the target type
}

// FieldDesc is a struct member in a schema.
type FieldDesc struct {
	Name string
	Was  []string
	Type *TypeDesc
}

func describe(n *node) *TypeDesc {
	d := &TypeDesc{Kind: n.kind}
	switch n.kind {
	case KindArray:
		d.Len, d.Elem = n.length, describe(n.elem)
	case KindSlice:
		d.Elem = describe(n.elem)
	case KindMap:
		d.Key, d.Elem = describe(n.key), describe(n.elem)
	case KindStruct:
		d.Fields = make([]FieldDesc, len(n.fields))
		for i, f := range n.fields {
			d.Fields[i] = FieldDesc{Name: f.name, Was: f.was, Type: describe(f.n)}
		}
	case KindRef:
		d.Target = n.target.name
	case KindInterior:
		d.Target, d.Elem = n.target.name, describe(n.elem)
	}
	return d
}

const schemaVersion = 1

// AppendBinary appends the schema's compact encoding:
//
//	schema  = version:u8 name:str type
//	type    = kind:u8 body
//	body    = array: len:uvarint type | slice: type | map: key:type elem:type
//	        | struct: n:uvarint { name:str nwas:uvarint {was:str} type }
//	        | ref: target:str | interior: target:str pointee:type | others: empty
//	str     = len:uvarint bytes
//
// The fingerprint is not part of the encoding; it is computed from it.
func (s *Schema) AppendBinary(b []byte) []byte {
	b = append(b, schemaVersion)
	b = appendString(b, s.Name)
	return appendTypeDesc(b, s.Root)
}

func appendTypeDesc(b []byte, d *TypeDesc) []byte {
	b = append(b, byte(d.Kind))
	switch d.Kind {
	case KindArray:
		b = appendUvarint(b, uint64(d.Len))
		b = appendTypeDesc(b, d.Elem)
	case KindSlice:
		b = appendTypeDesc(b, d.Elem)
	case KindMap:
		b = appendTypeDesc(b, d.Key)
		b = appendTypeDesc(b, d.Elem)
	case KindStruct:
		b = appendUvarint(b, uint64(len(d.Fields)))
		for _, f := range d.Fields {
			b = appendString(b, f.Name)
			b = appendUvarint(b, uint64(len(f.Was)))
			for _, w := range f.Was {
				b = appendString(b, w)
			}
			b = appendTypeDesc(b, f.Type)
		}
	case KindRef:
		b = appendString(b, d.Target)
	case KindInterior:
		b = appendString(b, d.Target)
		b = appendTypeDesc(b, d.Elem)
	}
	return b
}

func fingerprint(enc []byte) uint64 {
	h := fnv.New64a()
	h.Write(enc)
	return h.Sum64()
}

// ParseSchema decodes a schema encoded by AppendBinary. It never panics on
// hostile input and bounds nesting and counts by the input's length.
func ParseSchema(b []byte) (*Schema, error) {
	d := decoder{b: b}
	if v := d.byte(); v != schemaVersion {
		if d.err != nil {
			return nil, fmt.Errorf("objstore: schema: %w", d.err)
		}
		return nil, fmt.Errorf("objstore: schema: version %d, want %d: %w", v, schemaVersion, ErrCorruptSchema)
	}
	s := &Schema{Name: d.str()}
	s.Root = parseTypeDesc(&d, 0)
	if d.err == nil && d.pos != len(d.b) {
		d.fail("trailing bytes")
	}
	if d.err == nil && (s.Root.Kind != KindStruct || s.Name == "") {
		d.fail("root is not a named struct")
	}
	if d.err != nil {
		return nil, fmt.Errorf("objstore: schema %q: %w: %w", s.Name, d.err, ErrCorruptSchema)
	}
	s.Fingerprint = fingerprint(b)
	return s, nil
}

func parseTypeDesc(d *decoder, depth int) *TypeDesc {
	t := &TypeDesc{}
	if depth > errMaxSchemaDepth {
		d.fail("nesting too deep")
		return t
	}
	t.Kind = Kind(d.byte())
	if d.err != nil {
		return t
	}
	switch t.Kind {
	case KindArray:
		n := d.uvarint()
		if n > 1<<24 {
			d.fail("array too long")
			return t
		}
		t.Len = int(n)
		t.Elem = parseTypeDesc(d, depth+1)
	case KindSlice:
		t.Elem = parseTypeDesc(d, depth+1)
	case KindMap:
		t.Key = parseTypeDesc(d, depth+1)
		t.Elem = parseTypeDesc(d, depth+1)
	case KindStruct:
		n := d.uvarint()
		if n > uint64(d.remaining()) || n > uint64(errMaxSchemaFields) {
			d.fail("field count exceeds input")
			return t
		}
		t.Fields = make([]FieldDesc, 0, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			f := FieldDesc{Name: d.str()}
			nw := d.uvarint()
			if nw > uint64(d.remaining()) {
				d.fail("rename count exceeds input")
				return t
			}
			for j := uint64(0); j < nw && d.err == nil; j++ {
				f.Was = append(f.Was, d.str())
			}
			f.Type = parseTypeDesc(d, depth+1)
			t.Fields = append(t.Fields, f)
		}
	case KindRef:
		t.Target = d.str()
	case KindInterior:
		t.Target = d.str()
		t.Elem = parseTypeDesc(d, depth+1)
	default:
		if t.Kind == KindInvalid || t.Kind >= kindCount {
			d.fail(fmt.Sprintf("unknown kind %d", t.Kind))
		}
	}
	return t
}

package objstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"time"
	"unsafe"
)

// Value encoding (all integers little-endian or varint; no alignment):
//
//	bool                 1 byte, 0 or 1
//	int8/uint8           1 byte
//	int16..int64, int    zigzag varint
//	uint16..uint64, uint uvarint
//	float32/float64      4/8 bytes, IEEE 754 bits
//	string               len:uvarint bytes
//	[]byte, HardwareAddr 0 for nil, else len+1:uvarint bytes
//	array                elements in order (length from the schema)
//	slice, map           0 for nil, else len+1:uvarint, then elements / key,value pairs
//	struct               fields in wire order
//	netip.Addr           tag:u8 (0 invalid, 4 IPv4 +4 bytes, 6 IPv6 +16 bytes, 7 IPv6+zone +16 bytes +str)
//	netip.Prefix         addr bits+1:uvarint (0: invalid prefix)
//	time.Time            unix seconds:varint nanoseconds:uvarint zone:u8 (0 UTC, 1 Local, 2 fixed: name:str offset:varint)
//	ref                  object ID:uvarint, 0 for nil
//	interior             object ID:uvarint (0 for nil), n:uvarint, n path steps:uvarint
//
// Nil and empty slices and maps encode differently so that the standby's copy
// is reflect.DeepEqual to the active's, not merely equivalent.

// ErrCorrupt is wrapped by every decoding error of records and values.
var ErrCorrupt = errors.New("corrupt record")

// maxPath bounds interior pointer paths; deeper nesting is a registration
// limit in practice (schemas nest at most errMaxSchemaDepth).
const maxPath = 16

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads records and values. It records the first error and then
// returns zero values, so callers check d.err once per record, not per field.
type decoder struct {
	b    []byte
	pos  int
	err  error
	path [maxPath]uint32
	// work counts values decoded through a peer's schema. A hostile schema
	// can describe values that take no input bytes (arrays of empty
	// structs, nested), so input length alone does not bound the work.
	work int
}

// spend charges one value to the decoder's work budget, which is
// proportional to the input, and fails the decoder when it runs out.
func (d *decoder) spend() bool { return d.spendN(1) }

// spendN charges n values at once.
func (d *decoder) spendN(n int) bool {
	d.work += n
	if d.work > 64*len(d.b)+1<<16 {
		d.fail("values too many for the input's size")
		return false
	}
	return true
}

func (d *decoder) fail(why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s at byte %d: %w", why, d.pos, ErrCorrupt)
	}
}

func (d *decoder) remaining() int { return len(d.b) - d.pos }

func (d *decoder) byte() byte {
	if d.err != nil || d.pos >= len(d.b) {
		d.fail("truncated")
		return 0
	}
	c := d.b[d.pos]
	d.pos++
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.pos:])
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.pos += n
	return v
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || n < 0 || n > d.remaining() {
		d.fail("truncated")
		return nil
	}
	b := d.b[d.pos : d.pos+n : d.pos+n]
	d.pos += n
	return b
}

func (d *decoder) str() string { return string(d.bytes(d.count(1))) }

// count reads a length and checks that at least n*minEach bytes follow, so a
// forged length cannot make the decoder allocate more than the input allows.
func (d *decoder) count(minEach int) int {
	v := d.uvarint()
	lim := uint64(d.remaining())
	if minEach == 0 {
		lim = 1 << 16
	} else {
		lim /= uint64(minEach)
	}
	if v > lim {
		d.fail("length exceeds input")
		return 0
	}
	return int(v)
}

// nilCount reads the len+1 form used for slices and maps: -1 means nil.
func (d *decoder) nilCount(minEach int) int {
	v := d.uvarint()
	if v == 0 {
		return -1
	}
	lim := uint64(d.remaining())
	if minEach == 0 {
		lim = 1 << 16
	} else {
		lim /= uint64(minEach)
	}
	if v-1 > lim {
		d.fail("length exceeds input")
		return 0
	}
	return int(v - 1)
}

// refMapper turns pointers into object IDs on the encoding side (the store).
type refMapper interface {
	refID(n *node, p unsafe.Pointer) (uint64, error)
	interiorRef(n *node, p unsafe.Pointer, path []uint32) (uint64, []uint32, error)
}

// refResolver turns object IDs back into pointers on the decoding side. With
// a nil destination the decoder only validates and calls note, so that a
// transaction is checked whole before anything is written.
type refResolver interface {
	note(n *node, id uint64, path []uint32)
	resolve(n *node, id uint64, path []uint32) (unsafe.Pointer, error)
}

func add(p unsafe.Pointer, off uintptr) unsafe.Pointer { return unsafe.Add(p, off) }

func mem(p unsafe.Pointer, n uintptr) []byte { return unsafe.Slice((*byte)(p), n) }

func memEq(a, b unsafe.Pointer, n uintptr) bool {
	return string(mem(a, n)) == string(mem(b, n))
}

type sliceHdr struct {
	data     unsafe.Pointer
	len, cap int
}

func loadUint(p unsafe.Pointer, size uintptr) uint64 {
	switch size {
	case 1:
		return uint64(*(*uint8)(p))
	case 2:
		return uint64(*(*uint16)(p))
	case 4:
		return uint64(*(*uint32)(p))
	default:
		return *(*uint64)(p)
	}
}

func loadInt(p unsafe.Pointer, size uintptr) int64 {
	switch size {
	case 1:
		return int64(*(*int8)(p))
	case 2:
		return int64(*(*int16)(p))
	case 4:
		return int64(*(*int32)(p))
	default:
		return *(*int64)(p)
	}
}

func storeUint(p unsafe.Pointer, size uintptr, v uint64) {
	switch size {
	case 1:
		*(*uint8)(p) = uint8(v)
	case 2:
		*(*uint16)(p) = uint16(v)
	case 4:
		*(*uint32)(p) = uint32(v)
	default:
		*(*uint64)(p) = v
	}
}

// encodeValue appends the encoding of the value of type n at p.
func encodeValue(n *node, b []byte, p unsafe.Pointer, m refMapper) ([]byte, error) {
	switch n.kind {
	case KindBool:
		if *(*bool)(p) {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case KindInt8, KindUint8:
		return append(b, *(*uint8)(p)), nil
	case KindInt16, KindInt32, KindInt64:
		return binary.AppendVarint(b, loadInt(p, n.size)), nil
	case KindUint16, KindUint32, KindUint64:
		return binary.AppendUvarint(b, loadUint(p, n.size)), nil
	case KindFloat32:
		return binary.LittleEndian.AppendUint32(b, *(*uint32)(p)), nil
	case KindFloat64:
		return binary.LittleEndian.AppendUint64(b, *(*uint64)(p)), nil
	case KindString:
		return appendString(b, *(*string)(p)), nil
	case KindBytes, KindHWAddr:
		s := *(*[]byte)(p)
		if s == nil {
			return append(b, 0), nil
		}
		b = binary.AppendUvarint(b, uint64(len(s))+1)
		return append(b, s...), nil
	case KindArray:
		var err error
		for i := 0; i < n.length; i++ {
			if b, err = encodeValue(n.elem, b, add(p, uintptr(i)*n.elem.size), m); err != nil {
				return b, atStep(err, "["+strconv.Itoa(i)+"]")
			}
		}
		return b, nil
	case KindSlice:
		h := (*sliceHdr)(p)
		if h.data == nil {
			return append(b, 0), nil
		}
		b = binary.AppendUvarint(b, uint64(h.len)+1)
		var err error
		for i := 0; i < h.len; i++ {
			if b, err = encodeValue(n.elem, b, add(h.data, uintptr(i)*n.elem.size), m); err != nil {
				return b, atStep(err, "["+strconv.Itoa(i)+"]")
			}
		}
		return b, nil
	case KindMap:
		return encodeMap(n, b, p, m)
	case KindStruct:
		var err error
		for _, f := range n.fields {
			if b, err = encodeValue(f.n, b, add(p, f.off), m); err != nil {
				return b, atStep(err, f.name)
			}
		}
		return b, nil
	case KindAddr:
		return appendAddr(b, *(*netip.Addr)(p)), nil
	case KindPrefix:
		pf := *(*netip.Prefix)(p)
		b = appendAddr(b, pf.Addr())
		return binary.AppendUvarint(b, uint64(pf.Bits()+1)), nil
	case KindTime:
		return appendTime(b, *(*time.Time)(p)), nil
	case KindRef:
		ptr := *(*unsafe.Pointer)(p)
		if ptr == nil {
			return append(b, 0), nil
		}
		id, err := m.refID(n, ptr)
		return binary.AppendUvarint(b, id), err
	case KindInterior:
		ptr := *(*unsafe.Pointer)(p)
		if ptr == nil {
			return append(b, 0), nil
		}
		var scratch [maxPath]uint32
		id, path, err := m.interiorRef(n, ptr, scratch[:0])
		if err != nil || id == 0 {
			return append(b, 0), err // a mapper may send an unmappable pointer as nil
		}
		b = binary.AppendUvarint(b, id)
		b = binary.AppendUvarint(b, uint64(len(path)))
		for _, s := range path {
			b = binary.AppendUvarint(b, uint64(s))
		}
		return b, nil
	}
	return b, fmt.Errorf("objstore: encode %v: kind %v: %w", n.rt, n.kind, ErrUnsupported)
}

func encodeMap(n *node, b []byte, p unsafe.Pointer, m refMapper) ([]byte, error) {
	mv := reflect.NewAt(n.rt, p).Elem()
	if mv.IsNil() {
		return append(b, 0), nil
	}
	b = binary.AppendUvarint(b, uint64(mv.Len())+1)
	k := reflect.New(n.key.rt).Elem()
	v := reflect.New(n.elem.rt).Elem()
	it := mv.MapRange()
	var err error
	for it.Next() {
		k.SetIterKey(it)
		v.SetIterValue(it)
		if b, err = encodeValue(n.key, b, k.Addr().UnsafePointer(), m); err != nil {
			return b, atStep(err, "[key "+mapKey(k)+"]")
		}
		if b, err = encodeValue(n.elem, b, v.Addr().UnsafePointer(), m); err != nil {
			return b, atStep(err, "["+mapKey(k)+"]")
		}
	}
	return b, nil
}

// mapKey renders a map key for an error's field path.
func mapKey(k reflect.Value) string {
	if k.Kind() == reflect.String {
		return strconv.Quote(k.String())
	}
	return fmt.Sprint(k.Interface())
}

// fieldError is an error in one field of an object or message, with the
// path that leads to it from the top of the value: "NextHop",
// "Hops[2].Via", "ByName[\"eth0\"]". It wraps the error itself (errors.Is
// sees ErrDangling through it).
type fieldError struct {
	path string
	err  error
}

func (e *fieldError) Error() string { return "field " + e.path + ": " + e.err.Error() }

func (e *fieldError) Unwrap() error { return e.err }

// prependStep puts step (a field name, or an index "[3]") in front of path.
func prependStep(step, path string) string {
	if path == "" || path[0] == '[' {
		return step + path
	}
	return step + "." + path
}

// atStep puts step in front of the field path of err, making it a
// fieldError if it is not one yet. encodeValue calls it as it unwinds from
// an error, so a path costs nothing while encoding succeeds.
func atStep(err error, step string) error {
	fe, ok := err.(*fieldError)
	if !ok {
		fe = &fieldError{err: err}
	}
	fe.path = prependStep(step, fe.path)
	return fe
}

// noRefs is a refResolver for values only walked, never stored.
type noRefs struct{}

func (noRefs) note(*node, uint64, []uint32) {}
func (noRefs) resolve(*node, uint64, []uint32) (unsafe.Pointer, error) {
	return nil, nil
}

// refPath reads the encoded value of type n from d and returns the path of
// the first pointer in it to object id, for an error that must say where a
// pointer already encoded came from (a message's).
func refPath(n *node, d *decoder, id uint64) (string, bool) {
	found := func(step, rest string) (string, bool) { return prependStep(step, rest), true }
	switch n.kind {
	case KindRef, KindInterior:
		v := d.uvarint()
		if n.kind == KindInterior && v != 0 {
			readPath(d)
		}
		return "", v == id && d.err == nil
	case KindStruct:
		for _, f := range n.fields {
			if p, ok := refPath(f.n, d, id); ok {
				return found(f.name, p)
			}
		}
	case KindArray:
		for i := 0; i < n.length && d.err == nil; i++ {
			if p, ok := refPath(n.elem, d, id); ok {
				return found("["+strconv.Itoa(i)+"]", p)
			}
		}
	case KindSlice:
		c := d.nilCount(n.elem.minEnc)
		for i := 0; i < c && d.err == nil; i++ {
			if p, ok := refPath(n.elem, d, id); ok {
				return found("["+strconv.Itoa(i)+"]", p)
			}
		}
	case KindMap:
		c := d.nilCount(n.key.minEnc + n.elem.minEnc)
		for i := 0; i < c && d.err == nil; i++ {
			at := d.pos
			if p, ok := refPath(n.key, d, id); ok {
				return found("[key]", p)
			}
			d.pos = at
			k := reflect.New(n.key.rt)
			decodeValue(n.key, d, k.UnsafePointer(), noRefs{})
			if p, ok := refPath(n.elem, d, id); ok {
				return found("["+mapKey(k.Elem())+"]", p)
			}
		}
	default:
		decodeValue(n, d, nil, noRefs{})
	}
	return "", false
}

func appendAddr(b []byte, a netip.Addr) []byte {
	switch {
	case !a.IsValid():
		return append(b, 0)
	case a.Is4():
		a4 := a.As4()
		return append(append(b, 4), a4[:]...)
	default:
		a16 := a.As16()
		if z := a.Zone(); z != "" {
			b = append(append(b, 7), a16[:]...)
			return appendString(b, z)
		}
		return append(append(b, 6), a16[:]...)
	}
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	switch loc := t.Location(); loc {
	case time.UTC:
		return append(b, 0)
	case time.Local:
		return append(b, 1)
	default:
		name, off := t.Zone()
		b = appendString(append(b, 2), name)
		return binary.AppendVarint(b, int64(off))
	}
}

// decodeValue reads a value of type n into p, or only validates it when p is
// nil. New slices, maps and strings are always freshly allocated: a standby
// reader holding an old slice header never sees it change under it.
func decodeValue(n *node, d *decoder, p unsafe.Pointer, r refResolver) {
	if d.err != nil {
		return
	}
	switch n.kind {
	case KindBool:
		c := d.byte()
		if c > 1 {
			d.fail("bad bool")
		} else if p != nil {
			*(*bool)(p) = c == 1
		}
	case KindInt8, KindUint8:
		c := d.byte()
		if p != nil && d.err == nil {
			*(*uint8)(p) = c
		}
	case KindInt16, KindInt32, KindInt64:
		v := d.varint()
		bits := n.size * 8
		if bits < 64 && (v < -1<<(bits-1) || v >= 1<<(bits-1)) {
			d.fail(fmt.Sprintf("%d overflows %v", v, n.rt))
		}
		if p != nil && d.err == nil {
			storeUint(p, n.size, uint64(v))
		}
	case KindUint16, KindUint32, KindUint64:
		v := d.uvarint()
		if bits := n.size * 8; bits < 64 && v >= 1<<bits {
			d.fail(fmt.Sprintf("%d overflows %v", v, n.rt))
		}
		if p != nil && d.err == nil {
			storeUint(p, n.size, v)
		}
	case KindFloat32:
		b := d.bytes(4)
		if p != nil && d.err == nil {
			*(*uint32)(p) = binary.LittleEndian.Uint32(b)
		}
	case KindFloat64:
		b := d.bytes(8)
		if p != nil && d.err == nil {
			*(*uint64)(p) = binary.LittleEndian.Uint64(b)
		}
	case KindString:
		b := d.bytes(d.count(1))
		if p != nil && d.err == nil {
			*(*string)(p) = string(b)
		}
	case KindBytes, KindHWAddr:
		c := d.nilCount(1)
		b := d.bytes(max(c, 0))
		if p != nil && d.err == nil {
			if c < 0 {
				*(*[]byte)(p) = nil
			} else {
				*(*[]byte)(p) = append(make([]byte, 0, c), b...)
			}
		}
	case KindArray:
		for i := 0; i < n.length && d.err == nil; i++ {
			var ep unsafe.Pointer
			if p != nil {
				ep = add(p, uintptr(i)*n.elem.size)
			}
			decodeValue(n.elem, d, ep, r)
		}
	case KindSlice:
		c := d.nilCount(n.elem.minEnc)
		if d.err != nil {
			return
		}
		if p == nil {
			for i := 0; i < c && d.err == nil; i++ {
				decodeValue(n.elem, d, nil, r)
			}
			return
		}
		if c < 0 {
			*(*sliceHdr)(p) = sliceHdr{}
			return
		}
		data := newArray(n.elem, c)
		for i := 0; i < c && d.err == nil; i++ {
			decodeValue(n.elem, d, add(data, uintptr(i)*n.elem.size), r)
		}
		*(*sliceHdr)(p) = sliceHdr{data, c, c}
	case KindMap:
		decodeMap(n, d, p, r)
	case KindStruct:
		for _, f := range n.fields {
			var fp unsafe.Pointer
			if p != nil {
				fp = add(p, f.off)
			}
			decodeValue(f.n, d, fp, r)
		}
	case KindAddr:
		a := decodeAddr(d)
		if p != nil && d.err == nil {
			*(*netip.Addr)(p) = a
		}
	case KindPrefix:
		a := decodeAddr(d)
		bits := int(d.uvarint()) - 1
		if d.err != nil {
			return
		}
		var pf netip.Prefix
		switch {
		case bits < -1 || bits > a.BitLen() || (!a.IsValid() && bits != -1):
			d.fail("bad prefix length")
			return
		case a.IsValid():
			if a.Zone() != "" {
				d.fail("zone in prefix")
				return
			}
			pf = netip.PrefixFrom(a, bits)
		}
		if p != nil {
			*(*netip.Prefix)(p) = pf
		}
	case KindTime:
		t := decodeTime(d)
		if p != nil && d.err == nil {
			*(*time.Time)(p) = t
		}
	case KindRef, KindInterior:
		id := d.uvarint()
		var path []uint32
		if n.kind == KindInterior && id != 0 {
			path = readPath(d)
		}
		if d.err != nil {
			return
		}
		finishRef(n, d, p, r, id, path)
	default:
		d.fail("unsupported kind " + n.kind.String())
	}
}

// finishRef stores the pointer to object id (and path, for an interior
// pointer) at p, or only notes it for the end-of-step check when p is nil.
func finishRef(n *node, d *decoder, p unsafe.Pointer, r refResolver, id uint64, path []uint32) {
	if p == nil {
		if id != 0 {
			r.note(n, id, path)
		}
		return
	}
	if id == 0 {
		*(*unsafe.Pointer)(p) = nil
		return
	}
	ptr, err := r.resolve(n, id, path)
	if err != nil && d.err == nil {
		d.err = err
		return
	}
	*(*unsafe.Pointer)(p) = ptr
}

// newArray allocates zeroed backing memory for c elements of type el. Element
// types without pointers get a plain byte allocation: one allocation, no
// reflect, and the garbage collector has nothing to scan in it anyway.
func newArray(el *node, c int) unsafe.Pointer {
	if c == 0 {
		return unsafe.Pointer(&zeroArray)
	}
	if !el.hasPtr {
		switch {
		case el.size%8 == 0:
			return unsafe.Pointer(unsafe.SliceData(make([]uint64, uintptr(c)*el.size/8)))
		case el.size%4 == 0:
			return unsafe.Pointer(unsafe.SliceData(make([]uint32, uintptr(c)*el.size/4)))
		case el.size%2 == 0:
			return unsafe.Pointer(unsafe.SliceData(make([]uint16, uintptr(c)*el.size/2)))
		default:
			return unsafe.Pointer(unsafe.SliceData(make([]byte, uintptr(c)*el.size)))
		}
	}
	return reflect.MakeSlice(reflect.SliceOf(el.rt), c, c).UnsafePointer()
}

// zeroArray is where empty, non-nil slices point, as the runtime does for
// zero-sized allocations.
var zeroArray [0]uint64

func decodeMap(n *node, d *decoder, p unsafe.Pointer, r refResolver) {
	c := d.nilCount(n.key.minEnc + n.elem.minEnc)
	if d.err != nil {
		return
	}
	if p == nil {
		for i := 0; i < c && d.err == nil; i++ {
			decodeValue(n.key, d, nil, r)
			decodeValue(n.elem, d, nil, r)
		}
		return
	}
	mv := reflect.NewAt(n.rt, p).Elem()
	if c < 0 {
		mv.SetZero()
		return
	}
	m := reflect.MakeMapWithSize(n.rt, c)
	k := reflect.New(n.key.rt).Elem()
	v := reflect.New(n.elem.rt).Elem()
	for i := 0; i < c && d.err == nil; i++ {
		k.SetZero()
		v.SetZero()
		decodeValue(n.key, d, k.Addr().UnsafePointer(), r)
		decodeValue(n.elem, d, v.Addr().UnsafePointer(), r)
		m.SetMapIndex(k, v)
	}
	if d.err == nil {
		mv.Set(m)
	}
}

func decodeAddr(d *decoder) netip.Addr {
	switch d.byte() {
	case 0:
		return netip.Addr{}
	case 4:
		return netip.AddrFrom4([4]byte(d.bytesOr(4)))
	case 6:
		return netip.AddrFrom16([16]byte(d.bytesOr(16)))
	case 7:
		a := netip.AddrFrom16([16]byte(d.bytesOr(16)))
		z := d.str()
		if z == "" {
			d.fail("empty zone")
		}
		return a.WithZone(z)
	default:
		d.fail("bad address tag")
		return netip.Addr{}
	}
}

// bytesOr returns n bytes, or n zero bytes after an error, so that fixed-size
// conversions never panic.
func (d *decoder) bytesOr(n int) []byte {
	b := d.bytes(n)
	if d.err != nil {
		return make([]byte, n)
	}
	return b
}

func decodeTime(d *decoder) time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.fail("bad nanoseconds")
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	switch d.byte() {
	case 0:
		return t.UTC()
	case 1:
		return t
	case 2:
		name := d.str()
		off := d.varint()
		if off < -100000 || off > 100000 {
			d.fail("bad zone offset")
			return time.Time{}
		}
		return t.In(time.FixedZone(name, int(off)))
	default:
		d.fail("bad zone tag")
		return time.Time{}
	}
}

// equalValue reports whether the values of type n at a and b are equal. It is
// the change detector: a false "unequal" only costs a redundant update, a
// false "equal" would lose one, so raw compares err on the unequal side.
func equalValue(n *node, a, b unsafe.Pointer) bool {
	if n.raw {
		for _, s := range n.spans {
			if !memEq(add(a, s.off), add(b, s.off), s.end-s.off) {
				return false
			}
		}
		return true
	}
	switch n.kind {
	case KindString:
		return *(*string)(a) == *(*string)(b)
	case KindBytes, KindHWAddr:
		x, y := *(*[]byte)(a), *(*[]byte)(b)
		return (x == nil) == (y == nil) && string(x) == string(y)
	case KindArray:
		for i := 0; i < n.length; i++ {
			off := uintptr(i) * n.elem.size
			if !equalValue(n.elem, add(a, off), add(b, off)) {
				return false
			}
		}
		return true
	case KindSlice:
		x, y := (*sliceHdr)(a), (*sliceHdr)(b)
		if (x.data == nil) != (y.data == nil) || x.len != y.len {
			return false
		}
		if x.data == y.data {
			return true
		}
		if dense(n.elem) {
			return memEq(x.data, y.data, uintptr(x.len)*n.elem.size)
		}
		for i := 0; i < x.len; i++ {
			off := uintptr(i) * n.elem.size
			if !equalValue(n.elem, add(x.data, off), add(y.data, off)) {
				return false
			}
		}
		return true
	case KindStruct:
		for _, f := range n.fields {
			if !equalValue(f.n, add(a, f.off), add(b, f.off)) {
				return false
			}
		}
		return true
	case KindMap:
		return equalMap(n, a, b)
	}
	return false
}

// dense reports whether a value of type n is raw and has no padding, so a
// run of them compares with one memory compare.
func dense(n *node) bool {
	return n.raw && len(n.spans) == 1 && n.spans[0] == span{0, n.size}
}

func equalMap(n *node, a, b unsafe.Pointer) bool {
	x, y := reflect.NewAt(n.rt, a).Elem(), reflect.NewAt(n.rt, b).Elem()
	if x.IsNil() != y.IsNil() || x.Len() != y.Len() {
		return false
	}
	if x.UnsafePointer() == y.UnsafePointer() {
		return true
	}
	va := reflect.New(n.elem.rt).Elem()
	vb := reflect.New(n.elem.rt).Elem()
	it := x.MapRange()
	for it.Next() {
		w := y.MapIndex(it.Key())
		if !w.IsValid() {
			return false
		}
		va.SetIterValue(it)
		vb.Set(w)
		if !equalValue(n.elem, va.Addr().UnsafePointer(), vb.Addr().UnsafePointer()) {
			return false
		}
	}
	return true
}

// copyValue makes dst (a shadow the store owns) equal to src, deep-copying
// the mutable parts (slices, maps) and sharing the immutable ones (strings,
// pointers to other objects). It reuses dst's slice backing when large enough.
func copyValue(n *node, dst, src unsafe.Pointer) {
	if n.raw {
		switch {
		case !n.hasPtr:
			copy(mem(dst, n.size), mem(src, n.size))
		case n.kind == KindRef || n.kind == KindInterior:
			*(*unsafe.Pointer)(dst) = *(*unsafe.Pointer)(src)
		case n.kind == KindTime:
			*(*time.Time)(dst) = *(*time.Time)(src)
		case n.kind == KindPrefix:
			*(*netip.Prefix)(dst) = *(*netip.Prefix)(src)
		case n.kind == KindAddr:
			*(*netip.Addr)(dst) = *(*netip.Addr)(src)
		default:
			reflect.NewAt(n.rt, dst).Elem().Set(reflect.NewAt(n.rt, src).Elem())
		}
		return
	}
	switch n.kind {
	case KindString:
		*(*string)(dst) = *(*string)(src)
	case KindBytes, KindHWAddr:
		s, d := *(*[]byte)(src), (*[]byte)(dst)
		if s == nil {
			*d = nil
		} else {
			*d = append((*d)[:0:cap(*d)], s...)
			if *d == nil {
				*d = []byte{}
			}
		}
	case KindArray:
		for i := 0; i < n.length; i++ {
			off := uintptr(i) * n.elem.size
			copyValue(n.elem, add(dst, off), add(src, off))
		}
	case KindSlice:
		s, d := (*sliceHdr)(src), (*sliceHdr)(dst)
		if s.data == nil {
			*d = sliceHdr{}
			return
		}
		if d.data == nil || d.cap < s.len || d.data == s.data {
			*d = sliceHdr{newArray(n.elem, s.len), s.len, s.len}
		} else {
			// Clear what the shorter value no longer uses so it does not pin memory.
			for i := s.len; i < d.len; i++ {
				clearValue(n.elem, add(d.data, uintptr(i)*n.elem.size))
			}
			d.len = s.len
		}
		if !n.elem.hasPtr {
			copy(mem(d.data, uintptr(s.len)*n.elem.size), mem(s.data, uintptr(s.len)*n.elem.size))
			return
		}
		for i := 0; i < s.len; i++ {
			off := uintptr(i) * n.elem.size
			copyValue(n.elem, add(d.data, off), add(s.data, off))
		}
	case KindStruct:
		for _, f := range n.fields {
			copyValue(f.n, add(dst, f.off), add(src, f.off))
		}
	case KindMap:
		sv := reflect.NewAt(n.rt, src).Elem()
		dv := reflect.NewAt(n.rt, dst).Elem()
		if sv.IsNil() {
			dv.SetZero()
			return
		}
		m := reflect.MakeMapWithSize(n.rt, sv.Len())
		tmp := reflect.New(n.elem.rt).Elem()
		it := sv.MapRange()
		for it.Next() {
			v := reflect.New(n.elem.rt).Elem()
			tmp.SetIterValue(it)
			copyValue(n.elem, v.Addr().UnsafePointer(), tmp.Addr().UnsafePointer())
			m.SetMapIndex(it.Key(), v)
		}
		dv.Set(m)
	}
}

func clearValue(n *node, p unsafe.Pointer) {
	reflect.NewAt(n.rt, p).Elem().SetZero()
}

// pathTo finds the path from an object of type root to the value at byte
// offset off whose Go type is want: field indexes and array indexes, the
// outermost match first. Both sides compute addresses from paths, never from
// offsets, so the path survives layout changes of a later version.
func pathTo(root *node, off uintptr, want reflect.Type, path []uint32) ([]uint32, bool) {
	n := root
	for len(path) <= maxPath {
		if off == 0 && n.rt == want {
			return path, true
		}
		switch n.kind {
		case KindStruct:
			var next *field
			for _, f := range n.fields {
				if off >= f.off && off < f.off+f.n.size {
					next = f
					break
				}
			}
			if next == nil {
				return nil, false
			}
			path = append(path, uint32(next.idx))
			off -= next.off
			n = next.n
		case KindArray:
			if n.elem.size == 0 {
				return nil, false
			}
			i := off / n.elem.size
			path = append(path, uint32(i))
			off -= i * n.elem.size
			n = n.elem
		default:
			return nil, false
		}
	}
	return nil, false
}

// walkPath follows path from an object of type root at base, returning the
// address and type reached, or false if the path does not fit the type. With a
// nil base it only checks the path against the type.
func walkPath(root *node, base unsafe.Pointer, path []uint32) (unsafe.Pointer, *node, bool) {
	n, p := root, base
	for _, s := range path {
		switch n.kind {
		case KindStruct:
			if int(s) >= len(n.fields) {
				return nil, nil, false
			}
			f := n.fields[s]
			if p != nil {
				p = add(p, f.off)
			}
			n = f.n
		case KindArray:
			if int(s) >= n.length {
				return nil, nil, false
			}
			if p != nil {
				p = add(p, uintptr(s)*n.elem.size)
			}
			n = n.elem
		default:
			return nil, nil, false
		}
	}
	return p, n, true
}

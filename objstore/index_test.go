package objstore

import (
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestIndexesAgainstMaps drives both indexes and Go maps with the same random
// inserts and deletes, including the backward-shift deletion's wraparound.
func TestIndexesAgainstMaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	objs := make([]uint64, 5000)
	px := newPtrIndex(0)
	var ix idIndex
	pm := map[unsafe.Pointer]int32{}
	im := map[uint64]int32{}
	for step := 0; step < 200000; step++ {
		k := rng.IntN(len(objs))
		p := unsafe.Pointer(&objs[k])
		id := uint64(k*7 + 1)
		if k%50 == 0 {
			id = StaticID(string(rune(k)))
		}
		if rng.IntN(3) == 0 {
			px.del(p)
			delete(pm, p)
			ix.del(id)
			delete(im, id)
		} else {
			v := int32(rng.IntN(1 << 20))
			px.set(p, v)
			pm[p] = v
			ix.set(id, v)
			im[id] = v
		}
		if step%1000 == 0 || step > 199000 {
			for k := range objs {
				p := unsafe.Pointer(&objs[k])
				got, ok := px.get(p)
				want, wok := pm[p]
				if ok != wok || got != want {
					t.Fatalf("step %d: ptr index %v,%v want %v,%v", step, got, ok, want, wok)
				}
			}
			for id, want := range im {
				if got, ok := ix.get(id); !ok || got != want {
					t.Fatalf("step %d: id %d: %v,%v want %v", step, id, got, ok, want)
				}
			}
			if px.n != len(pm) {
				t.Fatalf("ptr index counts %d, map %d", px.n, len(pm))
			}
		}
	}
	for id := range im {
		ix.del(id)
	}
	if len(ix.pages) != 0 || len(ix.statics) != 0 {
		t.Fatalf("emptied id index keeps %d pages, %d statics", len(ix.pages), len(ix.statics))
	}
}

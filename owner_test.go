package swha

import (
	"sync"
	"testing"
)

// BenchmarkOwnerDo is the cost of one input handed to the owner and waited
// for, against the mutex it replaced.
func BenchmarkOwnerDo(b *testing.B) {
	b.Run("owner", func(b *testing.B) {
		o := newOwner(func() {})
		go o.run()
		defer close(o.stop)
		x := 0
		for b.Loop() {
			o.do(func() { x++ })
		}
	})
	b.Run("mutex", func(b *testing.B) {
		var mu sync.Mutex
		x := 0
		for b.Loop() {
			mu.Lock()
			x++
			mu.Unlock()
		}
	})
}

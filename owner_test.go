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

// TestOwnerPostOrder: a goroutine's posts run before its next call, in
// order, and posts after the owner stopped still run (on the caller).
func TestOwnerPostOrder(t *testing.T) {
	o := newOwner(func() {})
	go o.run()
	var got []int
	for i := range 100 {
		o.post(func() { got = append(got, i) })
	}
	var n int
	o.do(func() { n = len(got) })
	if n != 100 {
		t.Fatalf("a call saw %d of 100 earlier posts", n)
	}
	close(o.stop)
	<-o.done
	o.post(func() { got = append(got, 100) })
	for i, v := range got {
		if v != i {
			t.Fatalf("post %d ran as %d", i, v)
		}
	}
	if len(got) != 101 {
		t.Fatalf("%d posts ran, want 101", len(got))
	}
}

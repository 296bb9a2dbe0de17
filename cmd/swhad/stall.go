package main

import (
	"sync"
	"time"
)

// stallWatch notices when this process did not run for a while: a busy
// machine, a paused VM, a SIGSTOP. Both nodes of the demo live in this
// process, so such a stall freezes both sessions at once and, when it is
// longer than DeadInterval, flaps them; the demo uses the record to say
// which of its timings a stall inflated instead of passing them off as the
// protocol's.
type stallWatch struct {
	min  time.Duration
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	stalls []stall
}

type stall struct{ from, to time.Time }

func (s stall) dur() time.Duration { return s.to.Sub(s.from) }

// watchStalls ticks every tick and records every gap between ticks of at
// least min.
func watchStalls(tick, min time.Duration) *stallWatch {
	w := &stallWatch{min: min, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(tick)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
			now := time.Now()
			if now.Sub(last) >= min {
				w.mu.Lock()
				w.stalls = append(w.stalls, stall{last, now})
				w.mu.Unlock()
			}
			last = now
		}
	}()
	return w
}

// Stop ends the watch.
func (w *stallWatch) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// within returns how many recorded stalls overlap [from, to] and the
// longest of them.
func (w *stallWatch) within(from, to time.Time) (n int, longest time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.stalls {
		if s.from.Before(to) && s.to.After(from) {
			n++
			longest = max(longest, s.dur())
		}
	}
	return n, longest
}

// all returns how many stalls were recorded and the longest.
func (w *stallWatch) all() (n int, longest time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.stalls {
		longest = max(longest, s.dur())
	}
	return len(w.stalls), longest
}

package swha

import (
	"context"
	"fmt"
)

// writePath is the active's write path: one transaction, snapshot, replay or
// repair at a time. A channel rather than a mutex so that acquiring can give
// up with a ctx; a lease rather than a bare release so that each holder
// releases exactly once, whatever path it leaves by.
type writePath struct{ sem chan struct{} }

func newWritePath() writePath { return writePath{sem: make(chan struct{}, 1)} }

// lease is one holding of the write path.
type lease struct {
	w    *writePath
	held bool
}

// acquire waits for the write path until ctx or the node's closed ends.
// A closed node wins over a free write path: select picks at random among
// ready cases, so closed is checked again once the path is held.
func (w *writePath) acquire(ctx context.Context, closed <-chan struct{}) (*lease, error) {
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the write path: %w", ctx.Err())
	case <-closed:
		return nil, ErrClosed
	}
	select {
	case <-closed:
		<-w.sem
		return nil, ErrClosed
	default:
		return &lease{w: w, held: true}, nil
	}
}

// release gives the write path back; a second call does nothing.
func (l *lease) release() {
	if l != nil && l.held {
		l.held = false
		<-l.w.sem
	}
}

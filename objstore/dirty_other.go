//go:build !linux

package objstore

import "errors"

// Elsewhere than on Linux there is no kernel dirty tracking: arenas live on
// the Go heap and Sync diffs every object.

type tracker struct{}

func newTracker() (*tracker, error) {
	return nil, errors.New("page dirty tracking needs Linux 6.7 or later")
}

func (t *tracker) register(base, size uintptr) error { return errors.ErrUnsupported }

func (t *tracker) protect(base, size uintptr) error { return errors.ErrUnsupported }

func (t *tracker) scan(start, end uintptr, protect bool, budget int, fn func(lo, hi uintptr)) (bool, error) {
	return false, errors.ErrUnsupported
}

func (t *tracker) close() {}

func mapRegion(size uintptr) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmapRegion(b []byte) error { return nil }

//go:build race

package l2transport

// The race detector slows the simulation roughly tenfold; it still runs every
// scenario, on fewer messages.
const (
	simMessages = 1_000
	raceEnabled = true
)

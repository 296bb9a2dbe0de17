//go:build race

package objstore

// raceEnabled thins out the quadratic stream-cut check under the race
// detector, which is ten times slower and adds nothing to a single-goroutine
// replay.
const raceEnabled = true

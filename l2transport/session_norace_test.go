//go:build !race

package l2transport

const (
	simMessages = 10_000
	raceEnabled = false
)

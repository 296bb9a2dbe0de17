//go:build race

package tests

// The race detector slows the Session tenfold and more; the end-to-end tests
// run every scenario on fewer, smaller messages.
const (
	e2eMessages = 1000
	e2eMaxLarge = 512 << 10
)

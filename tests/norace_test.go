//go:build !race

package tests

const (
	e2eMessages = 3000
	e2eMaxLarge = 1 << 20
)

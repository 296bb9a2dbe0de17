// Package linktest holds the test helpers that l2transport's tests and the
// end-to-end tests in tests/ share: the Link contract every implementation
// is checked against, a checker for a delivered message stream, and the
// seeds randomized tests run with.
//
// It does not import l2transport, so that l2transport's own (in-package)
// tests can use it without an import cycle: the contract is written against
// a structural Link interface generic in the packet type, which
// l2transport.Link satisfies with l2transport.Packet.
package linktest

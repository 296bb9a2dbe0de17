// Package tests holds swha's end-to-end tests and side-by-side benchmarks. Most
// of them build two network namespaces joined by a veth pair (see
// tests/internal/netnstest) and so need root; without it they skip, unless
// SWHA_REQUIRE_NETNS=1 makes that a failure.
//
// Run them with
//
//	sudo go test ./tests/...
//	sudo go test ./tests/ -run '^$' -bench 'RawLink' -benchtime=1x
//
// One benchmark iteration sends for 2 s, so -benchtime=1x gives meaningful
// figures. Knobs, all optional:
//
//	SWHA_BENCH_DURATION=5s   how long one iteration sends
//	SWHA_BENCH_PIN=none|S,R  CPU placement (default 0,1; see netnstest.Pin)
//	SWHA_BENCH_RX=recvmmsg   receive with recvmmsg instead of the RX ring
//
// The 2-core build VMs are shared: check that nothing else is running before
// trusting a figure, and compare runs made back to back.
package tests

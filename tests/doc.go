// Package tests holds swha's end-to-end tests and side-by-side benchmarks. Most
// of them build two network namespaces joined by a veth pair (see
// internal/netnstest) and so need root; without it they skip, unless
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
//	SWHA_BENCH_PIN=none|S,R  CPU placement (default 0,1, but none for the Conn
//	                         throughput benchmarks; see netnstest.Pin)
//	SWHA_BENCH_RX=recvmmsg   receive with recvmmsg instead of the RX ring
//	SWHA_BENCH_WINDOW=2048   SessionConfig.RecvWindow for the Conn benchmarks
//	SWHA_BENCH_DEMUX=1       run the Conn benchmarks over the Rest of a Demux
//	SWHA_SEED=N (or -seed=N) run the randomized tests with seed N only, to
//	                         replay a failure's fault decisions; by default
//	                         they run fixed seeds and one random one
//
// The Conn benchmarks (BulkVsTCP, SmallMessages, PingPong, Lossy) are run with
//
//	sudo go test ./tests/ -run '^$' -bench 'BulkVsTCP|SmallMessages|^BenchmarkPingPong$|Lossy' -benchtime=1x
//
// and place goroutines as described in conn_bench_test.go.
//
// The 2-core build VMs are shared: check that nothing else is running before
// trusting a figure, and compare runs made back to back.
package tests

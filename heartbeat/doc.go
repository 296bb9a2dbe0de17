// Package heartbeat is swha's liveness detector: BFD-like heartbeats on each path
// between the two switches of a pair (the HA link, optionally a secondary UDP path),
// with a three-way discriminator handshake that makes replayed frames worthless, RTT
// measured by echo, an application announce carried in every heartbeat, and a
// detector that judges its own scheduling lateness before it judges the peer.
//
// Path is the pure core (time is injected; no goroutine, lock, socket or clock), in
// the style of l2transport.Session. Runner is its thin driver: one goroutine locked
// to an OS thread per path, reading a Link with a deadline, feeding the core and
// sending what it asks. The design and the defaults are in docs/HEARTBEAT.md; the
// body layout is in docs/WIRE.md ("Heartbeat frames").
package heartbeat

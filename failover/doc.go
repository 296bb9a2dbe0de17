// Package failover is the role state machine of an swha node, as a pure
// core: election at start, promotion when the active dies, fencing of a
// replaced active, split-brain alarms, planned switchover, and the
// persisted generation that orders the pair's terms.
//
// A Core takes the heartbeat's per-path verdicts (PathEvent) and the
// peer's announces (PeerAnnounce), the Node's sync progress (SyncProgress,
// SetSeq), the answers to the actions it asked for (PersistDone,
// FenceResult, Drained, DemoteDone), Switchover and Tick. It answers with
// Ready: Actions for the driver, in order; Events for the application; the
// Announce to put in heartbeats. FileStore (store.go, the one file with
// I/O) keeps Persisted across restarts. docs/FAILOVER.md is the reference:
// the states, the rules, and what each action requires of the driver.
package failover

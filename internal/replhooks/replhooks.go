// Package replhooks is the seam between the swha Node and the replication
// half of objstore.Store: the calls that feed a standby's mirror from the
// active's stream, turn it into an active and back, and produce what the
// active streams besides commits. Applications never see it: Node.Store
// hands them an objstore.View, and the Node reaches these hooks only
// through this interface (a test in the root package fails on any other
// use), so a fake store can stand in for objstore in the driver's tests.
package replhooks

import "github.com/swha/swha/objstore"

// Store is what the Node's driver asks of the store besides the
// application's API.
type Store interface {
	// The standby: the active's stream in, refusals and notifications out.
	Apply(rec []byte) error
	TakeRefusals() ([]objstore.Refusal, uint64)
	NotifyPending() bool
	Notify()
	Staged() int
	Held() int
	AwaitSnapshot()
	AwaitingSnapshot() bool
	ResumeStream() (snapTxn, applied uint64)
	// Role changes.
	Promote() ([][]byte, error)
	Demote() (objstore.DemoteReport, error)
	// The active: what goes to a standby besides commits.
	Snapshot() (uint64, error)
	SnapshotDangling() int
	Announcements() [][]byte
	MarkStale(ids ...uint64) error
	LeakCount() int
}

var _ Store = (*objstore.Store)(nil)

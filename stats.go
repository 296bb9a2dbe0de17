package swha

import (
	"github.com/swha/swha/failover"
	"github.com/swha/swha/heartbeat"
	"github.com/swha/swha/l2transport"
)

// Stats is a snapshot of a node's replication state.
type Stats struct {
	Role Role
	Mode CommitMode
	// PeerUp: the session to the peer is established and not silent.
	PeerUp bool
	// Streaming (active): the peer has been sent a snapshot on the current
	// stream and receives every commit.
	Streaming bool
	// CommittedSeq (active): seq of the last commit. AckedSeq: the last
	// seq the standby said it applied.
	CommittedSeq, AckedSeq uint64
	// Window is the asynchronous in-flight bound; InFlight the transactions
	// committed and not yet acknowledged (0 when solo: nothing is owed).
	Window, InFlight int
	// WindowWaits counts commits that waited for room in the window.
	WindowWaits uint64
	// Snapshots (active) sent; ResyncRequests (standby) asked for.
	Snapshots, ResyncRequests uint64
	// Standby: seq of the last commit applied, transactions staged (commit
	// not yet received) and held (behind an incomplete coordinated one),
	// and Apply errors (each one asks for a resync).
	AppliedSeq          uint64
	Staged, Held        int
	ApplyErrors         uint64
	AwaitingSnapshot    bool
	Session             l2transport.SessionStats
	ObjectCount         int
	StandbySnapshotTxn  uint64
	ActiveSnapshotTxnID uint64
	// Version skew. Active: PeerRefusals counts transactions the standby
	// refused because its version cannot hold a value (each also fails a
	// synchronous Commit with ErrPeerRefused), LastPeerRefusal is the
	// standby's reason for the last one, and StandbyRefusedSnapshot says the
	// standby refused the current snapshot and mirrors nothing until a
	// commit fixes the value. Standby: Refused counts what it refused.
	PeerRefusals           uint64
	LastPeerRefusal        string
	StandbyRefusedSnapshot bool
	Refused                uint64
	// Replays (active) counts standbys resumed from their seq with the
	// commits after it instead of a snapshot; BadCheckpoints counts
	// checkpoints that could not be loaded at start.
	Replays, BadCheckpoints uint64
	// Leaks (active) is how many dynamic objects no static root or group
	// reached at the last snapshot (see Node.Leaks).
	Leaks uint64
	// Repairs (active) counts transactions sent to mend what the standby
	// refused; Unrepaired counts refused commits that could not be mended
	// because the replay log no longer held them (their objects may
	// differ on the standby until next updated, or the next snapshot).
	Repairs, Unrepaired uint64
	// StaleStreams (standby) counts streams refused because their active
	// serves an older generation than the one followed (a replaced active).
	StaleStreams uint64
	// Failover is the failover module's state (zero without
	// Config.Failover): its role state, generation, every path's verdict,
	// the peer's announce, the last failover's timings and the counters of
	// promotions, false alarms, vetoes and split brains. Heartbeats are
	// the heartbeat paths' counters (largest gap, lateness, discounted
	// detections, drops by reason).
	Failover   failover.Status
	Heartbeats []heartbeat.RunnerStats
}

// Stats returns the node's counters and gauges.
func (n *Node) Stats() Stats {
	s := Stats{Mode: n.cfg.Mode, Window: n.cfg.Window}
	n.own.do(func() {
		s.Role = n.role
		if n.act != nil {
			st := n.act.Status()
			s.PeerUp, s.Streaming = st.PeerUp, st.Streaming
			s.CommittedSeq, s.AckedSeq, s.InFlight = st.Committed, st.Acked, st.InFlight
			s.ActiveSnapshotTxnID = st.SnapshotTxn
			s.LastPeerRefusal, s.StandbyRefusedSnapshot = st.LastRefusal, st.SnapshotRefused != ""
		} else {
			s.PeerUp = n.sby.PeerUp()
		}
	})
	s.WindowWaits = n.stats.windowWaits.Load()
	s.Snapshots = n.stats.snapshots.Load()
	s.ResyncRequests = n.stats.resyncAsks.Load()
	s.ApplyErrors = n.stats.applyErrors.Load()
	s.PeerRefusals = n.stats.peerRefusals.Load()
	s.Refused = n.stats.refused.Load()
	s.Replays = n.stats.replays.Load()
	s.BadCheckpoints = n.stats.badCheckpoints.Load()
	s.Leaks = n.stats.leaks.Load()
	s.Repairs = n.stats.repairs.Load()
	s.Unrepaired = n.stats.unrepaired.Load()
	s.AppliedSeq = n.store.AppliedSeq()
	s.AwaitingSnapshot = n.repl.AwaitingSnapshot()
	s.StandbySnapshotTxn = n.store.SnapshotID()
	s.ObjectCount = n.store.Len()
	if s.Role == Standby {
		s.Staged, s.Held = int(n.stagedN.Load()), int(n.heldN.Load())
	}
	s.StaleStreams = n.stats.staleStreams.Load()
	s.Session = n.conn.Stats()
	s.Failover, s.Heartbeats = n.FailoverStatus(), n.HeartbeatStats()
	return s
}

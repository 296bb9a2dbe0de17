package daemon

import (
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/swha/swha"
	"github.com/swha/swha/failover"
	"github.com/swha/swha/frame"
	"github.com/swha/swha/heartbeat"
	"github.com/swha/swha/l2transport"
)

// NodeSource is what the metrics read from the node, at each scrape:
// *swha.Node satisfies it. Stats carries the role, the session's, the
// failover module's and the heartbeat paths' counters in one snapshot.
type NodeSource interface {
	Stats() swha.Stats
}

// FIBStats are the kernel FIB replication's counters and gauges, as the
// metrics want them: the fib replication fills it in (see FIBSourceFunc).
type FIBStats struct {
	// Routes and neighbours in the mirror (the swha objects) and installed
	// into this switch's kernel by swhad.
	RoutesMirrored, RoutesInstalled         int
	NeighboursMirrored, NeighboursInstalled int
	// NetlinkResyncs counts netlink subscriptions that ended (ENOBUFS or
	// another receive error) and were resubscribed, re-dumped and
	// reconciled.
	NetlinkResyncs uint64
	// InstallErrors counts kernel writes that failed; Reconciliations the
	// reconciliations of the kernel with the mirror (at promotion).
	InstallErrors, Reconciliations uint64
	// LastReconcile is how long the last reconciliation took.
	LastReconcile time.Duration
}

// FIBSource gives the FIB replication's stats at each scrape.
type FIBSource interface {
	FIBStats() FIBStats
}

// FIBSourceFunc adapts a function to FIBSource, so that the fib package
// need not import this one: FIBSourceFunc(func() FIBStats { … }).
type FIBSourceFunc func() FIBStats

// FIBStats calls f.
func (f FIBSourceFunc) FIBStats() FIBStats { return f() }

// MetricsOptions are NewMetricsHandler's settings.
type MetricsOptions struct {
	// FIB, if set, adds the swha_fib_ metrics.
	FIB FIBSource
	// Version is swha_build_info's version label.
	Version string
	// NoRuntime leaves out the go_ and process_ metrics (tests).
	NoRuntime bool
}

// NewMetricsHandler returns the /metrics handler: a Collector over node
// and opt.FIB, the Go runtime's and the process's metrics, on a registry
// of its own (no global state: two nodes in one process, as in swhad demo,
// each get theirs).
func NewMetricsHandler(node NodeSource, opt MetricsOptions) http.Handler {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(node, opt.FIB, opt.Version))
	if !opt.NoRuntime {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, ErrorHandling: promhttp.ContinueOnError})
}

// Collector is a prometheus.Collector that reads node (and fib, if not
// nil) at each scrape. Its metrics are listed in docs/OPERATIONS.md.
//
// Conventions: prefix swha_, base units (seconds, bytes), _total for
// counters. A state is a set of 0/1 gauges, one series per possible value
// (swha_role{role="active"} 1, swha_role{role="standby"} 0), not a label
// whose value changes: a changing label breaks the series, and alerts on
// it, at the very moment of a failover. Labelled counters emit every
// reason, zeros too, so that rate() sees a reason's first drop.
type Collector struct {
	node    NodeSource
	fib     FIBSource
	version string
	descs   []*prometheus.Desc
	d       descs
}

// descs are the collector's metric descriptions, one field each.
type descs struct {
	buildInfo, role, failoverState, epoch, maxGeneration, accepting                         *prometheus.Desc
	peerUp, peerAlive, pathUp, splitBrain, twoActives, switchoverInProgress                 *prometheus.Desc
	hbRTT, hbSent, hbReceived, hbLive, hbDrops, hbFrameErrors, hbUps, hbDowns               *prometheus.Desc
	hbDeferred, hbSavedByGrace, hbLateWakeups, hbMaxLateness, hbLargestGap, hbDetection     *prometheus.Desc
	hbInitTimeouts, hbReadErrors, hbWriteErrors                                             *prometheus.Desc
	sEstablished, sFramesSent, sFramesRecv, sBytesSent, sBytesRecv, sMsgSent, sMsgDelivered *prometheus.Desc
	sRetransmits, sFastRetransmits, sTimeouts, sSpurious, sBackpressure, sPeerRestarts      *prometheus.Desc
	sDrops, sDecodeErrors, sRTT, sRTO, sInFlight, sQueuedFrames, sQueuedBytes               *prometheus.Desc
	commitSeq, ackedSeq, appliedSeq, inFlight, window, windowWaits, staged, held, syncLag   *prometheus.Desc
	peerRefusals, refused, applyErrors, repairs, unrepaired, replays, staleStreams, badCkpt *prometheus.Desc
	objects, leaks, bulkSyncs, resyncRequests, bulkSyncInProgress, streaming                *prometheus.Desc
	fPromotions, fDemotions, fPeerDeaths, fFalseAlarms, fFenceVetoes, fSplitBrains          *prometheus.Desc
	fTwoActives, fBlocked, fPersistFailures, fAborts, fDiscarded, fSwitchovers              *prometheus.Desc
	fLastPeerDeath, fLastPromotion, fLastPromotionSeconds, fLastReason                      *prometheus.Desc
	fibRoutesMirrored, fibRoutesInstalled, fibNeighMirrored, fibNeighInstalled              *prometheus.Desc
	fibResyncs, fibInstallErrors, fibReconciliations, fibLastReconcile                      *prometheus.Desc
}

// NewCollector returns a Collector over node and fib (nil: no swha_fib_
// metrics); version labels swha_build_info.
func NewCollector(node NodeSource, fib FIBSource, version string) *Collector {
	c := &Collector{node: node, fib: fib, version: version}
	def := func(name, help string, labels ...string) *prometheus.Desc {
		d := prometheus.NewDesc("swha_"+name, help, labels, nil)
		c.descs = append(c.descs, d)
		return d
	}
	d := &c.d
	d.buildInfo = def("build_info", "Always 1; the labels say which swhad runs.", "version", "goversion")
	d.role = def("role", "1 for the node's replication role, 0 for the other (one series per role).", "role")
	d.failoverState = def("failover_state", "1 for the failover module's state, 0 for the others (all 0 without failover).", "state")
	d.epoch = def("epoch", "Generation of the current term: own when active, the active's when standby (the session epoch derives from it).")
	d.maxGeneration = def("max_generation", "Highest generation used, persisted or seen.")
	d.accepting = def("accepting_commits", "1 if the node accepts commits (active and not draining for a switchover).")
	d.peerUp = def("peer_up", "1 if the replication session to the peer is established and not silent.")
	d.peerAlive = def("peer_alive", "1 if some liveness path to the peer is up.")
	d.pathUp = def("path_up", "1 if the liveness path to the peer is up, per path.", "path")
	d.splitBrain = def("split_brain", "1 while the HA link is down and another path up: no promotion, an alarm.")
	d.twoActives = def("two_actives", "1 while the peer announces active too.")
	d.switchoverInProgress = def("switchover_in_progress", "1 while a switchover is in progress.")

	d.hbRTT = def("heartbeat_rtt_seconds", "Smoothed round-trip time of the heartbeat echoes, per path.", "path")
	d.hbSent = def("heartbeat_sent_total", "Heartbeats sent, per path.", "path")
	d.hbReceived = def("heartbeat_received_total", "Frames received on the heartbeat path, per path.", "path")
	d.hbLive = def("heartbeat_live_total", "Heartbeats that counted as the peer's life, per path.", "path")
	d.hbDrops = def("heartbeat_drops_total", "Heartbeat frames that decoded and were not taken, per path and reason.", "path", "reason")
	d.hbFrameErrors = def("heartbeat_frame_errors_total", "Heartbeat frames that did not decode (CRC, authentication...), per path and reason.", "path", "reason")
	d.hbUps = def("heartbeat_path_ups_total", "Times the path came up, per path.", "path")
	d.hbDowns = def("heartbeat_path_downs_total", "Times the path went down: detection times that ran out without a live heartbeat, per path.", "path")
	d.hbDeferred = def("heartbeat_deferred_detections_total", "Detection expiries deferred by one grace interval because the detector or the peer ran late, per path.", "path")
	d.hbSavedByGrace = def("heartbeat_saved_by_grace_total", "Deferred detections that a live heartbeat ended: false downs avoided, per path.", "path")
	d.hbLateWakeups = def("heartbeat_late_wakeups_total", "Detector wake-ups late by more than one interval, per path.", "path")
	d.hbMaxLateness = def("heartbeat_max_lateness_seconds", "Worst lateness of the detector's wake-ups, per path.", "path")
	d.hbLargestGap = def("heartbeat_largest_gap_seconds", "Longest time between live heartbeats while the path was up, per path.", "path")
	d.hbDetection = def("heartbeat_detection_time_seconds", "Current detection time: silence after which the path goes down, per path.", "path")
	d.hbInitTimeouts = def("heartbeat_init_timeouts_total", "Handshakes that began and did not complete, per path.", "path")
	d.hbReadErrors = def("heartbeat_read_errors_total", "Read errors of the heartbeat link, per path.", "path")
	d.hbWriteErrors = def("heartbeat_write_errors_total", "Write errors of the heartbeat link, per path.", "path")

	d.sEstablished = def("session_established", "1 if the replication session's handshake completed.")
	d.sFramesSent = def("session_frames_sent_total", "Frames sent by the replication session.")
	d.sFramesRecv = def("session_frames_received_total", "Frames received by the replication session.")
	d.sBytesSent = def("session_sent_bytes_total", "Bytes of frames sent by the replication session.")
	d.sBytesRecv = def("session_received_bytes_total", "Bytes of frames received by the replication session.")
	d.sMsgSent = def("session_messages_sent_total", "Messages accepted for sending.")
	d.sMsgDelivered = def("session_messages_delivered_total", "Messages delivered in order to the node.")
	d.sRetransmits = def("session_retransmits_total", "Data frames sent again, for any reason.")
	d.sFastRetransmits = def("session_fast_retransmits_total", "Retransmits triggered by SACK or duplicate acks.")
	d.sTimeouts = def("session_timeouts_total", "Retransmission timer expiries.")
	d.sSpurious = def("session_spurious_timeouts_total", "Retransmission timer expiries found spurious (F-RTO).")
	d.sBackpressure = def("session_backpressure_total", "Sends refused because the send queue was full.")
	d.sPeerRestarts = def("session_peer_restarts_total", "Restarts of the peer's session seen.")
	d.sDrops = def("session_drops_total", "Well-formed frames the session did not use, per reason.", "reason")
	d.sDecodeErrors = def("session_decode_errors_total", "Frames refused by the codec (CRC, authentication...), per reason.", "reason")
	d.sRTT = def("session_rtt_seconds", "Smoothed round-trip time of the session's acks.")
	d.sRTO = def("session_rto_seconds", "Current retransmission timeout.")
	d.sInFlight = def("session_inflight_frames", "Frames sent and not yet acknowledged.")
	d.sQueuedFrames = def("session_queued_frames", "Frames queued or in flight.")
	d.sQueuedBytes = def("session_queued_bytes", "Payload bytes queued or in flight.")

	d.commitSeq = def("commit_seq", "Sequence number of the last transaction committed (active; 0 on a standby).")
	d.ackedSeq = def("acked_seq", "Last sequence number the standby acknowledged as applied (active).")
	d.appliedSeq = def("applied_seq", "Sequence number of the last transaction applied to the store.")
	d.inFlight = def("transactions_in_flight", "Transactions committed and not yet acknowledged by the standby.")
	d.window = def("transactions_window", "Bound on asynchronous transactions in flight.")
	d.windowWaits = def("transactions_window_waits_total", "Commits that waited for room in the window.")
	d.staged = def("transactions_staged", "Standby: transactions received whose commit has not arrived.")
	d.held = def("transactions_held", "Standby: transactions held behind an incomplete coordinated one.")
	d.syncLag = def("sync_lag_transactions", "Active: transactions committed that the standby has not yet applied.")
	d.peerRefusals = def("peer_refusals_total", "Active: transactions the standby refused (version skew).")
	d.refused = def("refused_total", "Standby: transactions refused because this version cannot hold a value.")
	d.applyErrors = def("apply_errors_total", "Standby: transactions that failed to apply (each asks for a resync).")
	d.repairs = def("repairs_total", "Active: transactions sent to mend what the standby refused.")
	d.unrepaired = def("unrepaired_total", "Active: refused commits the replay log no longer held.")
	d.replays = def("replays_total", "Active: standbys resumed from their sequence number without a bulk sync.")
	d.staleStreams = def("stale_streams_total", "Standby: streams refused from an active of an older generation.")
	d.badCkpt = def("bad_checkpoints_total", "Checkpoints that could not be loaded at start.")
	d.objects = def("objects", "Objects in the store.")
	d.leaks = def("leaked_objects", "Active: dynamic objects no static root or group reached at the last bulk sync.")
	d.bulkSyncs = def("bulk_syncs_total", "Active: bulk syncs (snapshots) sent to the standby.")
	d.resyncRequests = def("resync_requests_total", "Standby: bulk syncs asked of the active.")
	d.bulkSyncInProgress = def("bulk_sync_in_progress", "1 while a bulk sync is under way: active with a peer not yet streaming, or standby awaiting its snapshot.")
	d.streaming = def("streaming", "Active: 1 if the standby has its snapshot and receives every commit.")

	d.fPromotions = def("failover_promotions_total", "Promotions to active.")
	d.fDemotions = def("failover_demotions_total", "Demotions to standby.")
	d.fPeerDeaths = def("failover_peer_deaths_total", "Times every path to the peer went down.")
	d.fFalseAlarms = def("failover_false_alarms_total", "Peer deaths undone: the same incarnation came back before anything was decided.")
	d.fFenceVetoes = def("failover_fence_vetoes_total", "Promotions the fencing hook vetoed.")
	d.fSplitBrains = def("failover_split_brains_total", "Split brains: the HA link down while another path was up.")
	d.fTwoActives = def("failover_two_actives_total", "Times the peer announced active too.")
	d.fBlocked = def("failover_blocked_promotions_total", "Promotions wanted and not allowed.")
	d.fPersistFailures = def("failover_persist_failures_total", "Failures to persist the generation.")
	d.fAborts = def("failover_switchover_aborts_total", "Switchovers aborted.")
	d.fDiscarded = def("failover_discarded_commits_total", "Commits discarded by demotions (never acknowledged by the peer).")
	d.fSwitchovers = def("failover_switchovers_total", "Switchovers begun.")
	d.fLastPeerDeath = def("failover_last_peer_death_timestamp_seconds", "When every path to the peer last went down (Unix time; absent if never).")
	d.fLastPromotion = def("failover_last_promotion_timestamp_seconds", "When the node last asked to promote (Unix time; absent if never).")
	d.fLastPromotionSeconds = def("failover_last_promotion_seconds", "From the peer declared dead to the promotion asked, for the last promotion after a peer death.")
	d.fLastReason = def("failover_last_promotion_reason", "1 for the reason of the last promotion, 0 for the others.", "reason")

	if fib != nil {
		d.fibRoutesMirrored = def("fib_routes_mirrored", "Kernel routes in the replicated mirror.")
		d.fibRoutesInstalled = def("fib_routes_installed", "Mirrored routes swhad installed into this switch's kernel.")
		d.fibNeighMirrored = def("fib_neighbours_mirrored", "Kernel neighbours in the replicated mirror.")
		d.fibNeighInstalled = def("fib_neighbours_installed", "Mirrored neighbours swhad installed into this switch's kernel.")
		d.fibResyncs = def("fib_netlink_resyncs_total", "Netlink subscriptions that ended and were resubscribed, re-dumped and reconciled.")
		d.fibInstallErrors = def("fib_install_errors_total", "Kernel route or neighbour writes that failed.")
		d.fibReconciliations = def("fib_reconciliations_total", "Reconciliations of the kernel with the mirror.")
		d.fibLastReconcile = def("fib_last_reconcile_seconds", "Duration of the last reconciliation of the kernel with the mirror.")
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// failoverStates are every failover.State, for the state set.
var failoverStates = []failover.State{failover.Init, failover.Negotiating, failover.Active,
	failover.StandbySyncing, failover.StandbyHot, failover.Fenced, failover.Demoting}

var promoteReasons = []failover.Reason{failover.Solo, failover.Elected, failover.PeerDead,
	failover.PeerLeft, failover.Switchover}

// frameErrorNames are label values for frame.Error: its String is a
// sentence, too long for a label.
var frameErrorNames = map[frame.Error]string{
	frame.ErrShort: "short", frame.ErrVersion: "version", frame.ErrUnknownType: "unknown-type",
	frame.ErrLength: "length", frame.ErrBadCRC: "bad-crc", frame.ErrBadSACK: "bad-sack",
	frame.ErrAuthMissing: "auth-missing", frame.ErrUnknownKey: "unknown-key", frame.ErrAuthBad: "auth-bad",
	frame.ErrPayloadTooLarge: "payload-too-large", frame.ErrNotEthernet: "not-ethernet",
	frame.ErrAuthMode: "auth-mode", frame.ErrKeyNode: "key-node",
}

func frameErrorName(e frame.Error) string {
	if s, ok := frameErrorNames[e]; ok {
		return s
	}
	return "error-" + strconv.Itoa(int(e))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect implements prometheus.Collector: one Stats snapshot per scrape,
// so that the metrics of a scrape agree with each other.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.node.Stats()
	d := &c.d
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	seconds := func(desc *prometheus.Desc, t time.Duration, labels ...string) {
		gauge(desc, t.Seconds(), labels...)
	}

	gauge(d.buildInfo, 1, c.version, runtime.Version())
	for _, r := range []swha.Role{swha.Active, swha.Standby} {
		gauge(d.role, b2f(s.Role == r), r.String())
	}
	f := &s.Failover
	for _, st := range failoverStates {
		gauge(d.failoverState, b2f(f.State == st), st.String())
	}
	gauge(d.epoch, float64(f.Generation))
	gauge(d.maxGeneration, float64(f.MaxGeneration))
	gauge(d.accepting, b2f(f.Accepting))
	gauge(d.peerUp, b2f(s.PeerUp))
	gauge(d.peerAlive, b2f(f.Peer.Alive))
	for _, p := range f.Paths {
		gauge(d.pathUp, b2f(p.Up), p.Name)
	}
	gauge(d.splitBrain, b2f(f.SplitBrain))
	gauge(d.twoActives, b2f(f.TwoActives))
	gauge(d.switchoverInProgress, b2f(f.Switchover))

	for i := range s.Heartbeats {
		c.collectHeartbeat(&s.Heartbeats[i], gauge, counter, seconds)
	}
	c.collectSession(&s.Session, gauge, counter, seconds)

	gauge(d.commitSeq, float64(s.CommittedSeq))
	gauge(d.ackedSeq, float64(s.AckedSeq))
	gauge(d.appliedSeq, float64(s.AppliedSeq))
	gauge(d.inFlight, float64(s.InFlight))
	gauge(d.window, float64(s.Window))
	counter(d.windowWaits, s.WindowWaits)
	gauge(d.staged, float64(s.Staged))
	gauge(d.held, float64(s.Held))
	var lag uint64
	if s.Role == swha.Active && s.CommittedSeq > s.AckedSeq && s.PeerUp {
		lag = s.CommittedSeq - s.AckedSeq
	}
	gauge(d.syncLag, float64(lag))
	counter(d.peerRefusals, s.PeerRefusals)
	counter(d.refused, s.Refused)
	counter(d.applyErrors, s.ApplyErrors)
	counter(d.repairs, s.Repairs)
	counter(d.unrepaired, s.Unrepaired)
	counter(d.replays, s.Replays)
	counter(d.staleStreams, s.StaleStreams)
	counter(d.badCkpt, s.BadCheckpoints)
	gauge(d.objects, float64(s.ObjectCount))
	gauge(d.leaks, float64(s.Leaks))
	counter(d.bulkSyncs, s.Snapshots)
	counter(d.resyncRequests, s.ResyncRequests)
	inProgress := s.AwaitingSnapshot
	if s.Role == swha.Active {
		inProgress = s.PeerUp && !s.Streaming
	}
	gauge(d.bulkSyncInProgress, b2f(inProgress))
	gauge(d.streaming, b2f(s.Role == swha.Active && s.Streaming))

	k := &f.Counters
	counter(d.fPromotions, k.Promotions)
	counter(d.fDemotions, k.Demotions)
	counter(d.fPeerDeaths, k.PeerDeaths)
	counter(d.fFalseAlarms, k.FalseAlarms)
	counter(d.fFenceVetoes, k.FenceVetoes)
	counter(d.fSplitBrains, k.SplitBrains)
	counter(d.fTwoActives, k.TwoActives)
	counter(d.fBlocked, k.Blocked)
	counter(d.fPersistFailures, k.PersistFailures)
	counter(d.fAborts, k.Aborts)
	counter(d.fDiscarded, k.Discarded)
	counter(d.fSwitchovers, k.Switchovers)
	tm := &f.Timings
	if !tm.PeerDeadAt.IsZero() {
		gauge(d.fLastPeerDeath, float64(tm.PeerDeadAt.UnixNano())/1e9)
	}
	if !tm.PromotedAt.IsZero() {
		gauge(d.fLastPromotion, float64(tm.PromotedAt.UnixNano())/1e9)
		for _, r := range promoteReasons {
			gauge(d.fLastReason, b2f(tm.PromoteReason == r), r.String())
		}
		if tm.PromoteReason == failover.PeerDead && !tm.PeerDeadAt.IsZero() && !tm.PromotedAt.Before(tm.PeerDeadAt) {
			seconds(d.fLastPromotionSeconds, tm.PromotedAt.Sub(tm.PeerDeadAt))
		}
	}

	if c.fib != nil {
		fs := c.fib.FIBStats()
		gauge(d.fibRoutesMirrored, float64(fs.RoutesMirrored))
		gauge(d.fibRoutesInstalled, float64(fs.RoutesInstalled))
		gauge(d.fibNeighMirrored, float64(fs.NeighboursMirrored))
		gauge(d.fibNeighInstalled, float64(fs.NeighboursInstalled))
		counter(d.fibResyncs, fs.NetlinkResyncs)
		counter(d.fibInstallErrors, fs.InstallErrors)
		counter(d.fibReconciliations, fs.Reconciliations)
		seconds(d.fibLastReconcile, fs.LastReconcile)
	}
}

type (
	gaugeFunc   = func(*prometheus.Desc, float64, ...string)
	counterFunc = func(*prometheus.Desc, uint64, ...string)
	secondsFunc = func(*prometheus.Desc, time.Duration, ...string)
)

func (c *Collector) collectHeartbeat(h *heartbeat.RunnerStats, gauge gaugeFunc, counter counterFunc, seconds secondsFunc) {
	d, p := &c.d, h.Name
	seconds(d.hbRTT, h.SmoothedRTT, p)
	counter(d.hbSent, h.Sent, p)
	counter(d.hbReceived, h.Received, p)
	counter(d.hbLive, h.Live, p)
	for r := range heartbeat.NumDropReasons {
		counter(d.hbDrops, h.Drops[r], p, heartbeat.DropReason(r).String())
	}
	for e := 1; e < frame.NumErrors; e++ {
		counter(d.hbFrameErrors, h.FrameErrors[e], p, frameErrorName(frame.Error(e)))
	}
	counter(d.hbUps, h.Ups, p)
	counter(d.hbDowns, h.Downs, p)
	counter(d.hbDeferred, h.DiscountedDowns, p)
	counter(d.hbSavedByGrace, h.SavedByGrace, p)
	counter(d.hbLateWakeups, h.LateWakeups, p)
	seconds(d.hbMaxLateness, h.MaxLateness, p)
	seconds(d.hbLargestGap, h.LargestGap, p)
	seconds(d.hbDetection, h.DetectTime, p)
	counter(d.hbInitTimeouts, h.InitTimeouts, p)
	counter(d.hbReadErrors, h.ReadErrors, p)
	counter(d.hbWriteErrors, h.WriteErrors, p)
}

func (c *Collector) collectSession(s *l2transport.SessionStats, gauge gaugeFunc, counter counterFunc, seconds secondsFunc) {
	d := &c.d
	gauge(d.sEstablished, b2f(s.Established))
	counter(d.sFramesSent, s.FramesSent)
	counter(d.sFramesRecv, s.FramesReceived)
	counter(d.sBytesSent, s.BytesSent)
	counter(d.sBytesRecv, s.BytesReceived)
	counter(d.sMsgSent, s.MessagesSent)
	counter(d.sMsgDelivered, s.MessagesDelivered)
	counter(d.sRetransmits, s.Retransmits)
	counter(d.sFastRetransmits, s.FastRetransmits)
	counter(d.sTimeouts, s.Timeouts)
	counter(d.sSpurious, s.SpuriousTimeouts)
	counter(d.sBackpressure, s.Backpressure)
	counter(d.sPeerRestarts, s.PeerRestarts)
	for r := range l2transport.NumDropReasons {
		counter(d.sDrops, s.Drops[r], l2transport.DropReason(r).String())
	}
	for e := 1; e < frame.NumErrors; e++ {
		counter(d.sDecodeErrors, s.DecodeErrors[e], frameErrorName(frame.Error(e)))
	}
	seconds(d.sRTT, s.SRTT)
	seconds(d.sRTO, s.RTO)
	gauge(d.sInFlight, float64(s.InFlight))
	gauge(d.sQueuedFrames, float64(s.QueuedFrames))
	gauge(d.sQueuedBytes, float64(s.QueuedBytes))
}

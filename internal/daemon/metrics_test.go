package daemon

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/swha/swha"
	"github.com/swha/swha/failover"
	"github.com/swha/swha/heartbeat"
	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/objstore"
)

var _ NodeSource = (*swha.Node)(nil)

type fakeNode struct{ s swha.Stats }

func (f *fakeNode) Stats() swha.Stats { return f.s }

// fakeStats is a hot standby that promoted once after its peer died, with
// two heartbeat paths.
func fakeStats() swha.Stats {
	dead := time.Unix(1_700_000_000, 0)
	hb := func(name string) heartbeat.RunnerStats {
		var r heartbeat.RunnerStats
		r.Name, r.Sent, r.Received, r.Live, r.Downs = name, 1000, 990, 980, 1
		r.SmoothedRTT, r.DetectTime, r.LargestGap = 150*time.Microsecond, 20*time.Millisecond, 12*time.Millisecond
		r.Drops[heartbeat.DropReplay] = 3
		return r
	}
	s := swha.Stats{Role: swha.Active, PeerUp: true, Streaming: true, CommittedSeq: 120, AckedSeq: 100,
		Window: 1024, InFlight: 20, Snapshots: 2, ObjectCount: 42, AppliedSeq: 120,
		Heartbeats: []heartbeat.RunnerStats{hb("ha"), hb("secondary")},
		Failover: failover.Status{State: failover.Active, Accepting: true, Generation: 7, MaxGeneration: 7,
			Paths: []failover.PathStatus{{Name: "ha", Up: true}, {Name: "secondary", Up: false}},
			Peer:  failover.PeerStatus{Alive: true},
			Timings: failover.Timings{PeerDeadAt: dead, PromotedAt: dead.Add(3 * time.Millisecond),
				PromoteReason: failover.PeerDead},
			Counters: failover.Counters{Promotions: 1, PeerDeaths: 1}},
	}
	s.Session.Established, s.Session.FramesSent, s.Session.BytesSent = true, 500, 64000
	s.Session.Retransmits = 4
	s.Session.Drops[l2transport.DropDuplicate] = 2
	s.Session.SRTT = 200 * time.Microsecond
	return s
}

var fakeFIB = FIBSourceFunc(func() FIBStats {
	return FIBStats{RoutesMirrored: 100000, RoutesInstalled: 99999, NetlinkResyncs: 2, LastReconcile: 1500 * time.Millisecond}
})

func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return parse(t, body)
}

func parse(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	return fams
}

// value is the value of the series of family name whose labels include
// labels (name=value pairs); it fails if there is none.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		}
		t.Fatalf("%s: type %v", name, f.GetType())
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func TestMetricsEndpoint(t *testing.T) {
	fams := scrape(t, NewMetricsHandler(&fakeNode{fakeStats()}, MetricsOptions{FIB: fakeFIB, Version: "test"}))

	for name, typ := range map[string]dto.MetricType{
		"swha_role": dto.MetricType_GAUGE, "swha_failover_state": dto.MetricType_GAUGE, "swha_epoch": dto.MetricType_GAUGE,
		"swha_path_up": dto.MetricType_GAUGE, "swha_heartbeat_rtt_seconds": dto.MetricType_GAUGE,
		"swha_heartbeat_path_downs_total": dto.MetricType_COUNTER, "swha_heartbeat_drops_total": dto.MetricType_COUNTER,
		"swha_session_frames_sent_total": dto.MetricType_COUNTER, "swha_session_sent_bytes_total": dto.MetricType_COUNTER,
		"swha_session_retransmits_total": dto.MetricType_COUNTER, "swha_session_drops_total": dto.MetricType_COUNTER,
		"swha_transactions_in_flight": dto.MetricType_GAUGE, "swha_commit_seq": dto.MetricType_GAUGE,
		"swha_sync_lag_transactions": dto.MetricType_GAUGE, "swha_bulk_syncs_total": dto.MetricType_COUNTER,
		"swha_bulk_sync_in_progress": dto.MetricType_GAUGE, "swha_failover_last_promotion_seconds": dto.MetricType_GAUGE,
		"swha_failover_last_peer_death_timestamp_seconds": dto.MetricType_GAUGE,
		"swha_fib_routes_mirrored":                        dto.MetricType_GAUGE, "swha_fib_routes_installed": dto.MetricType_GAUGE,
		"swha_fib_netlink_resyncs_total": dto.MetricType_COUNTER, "swha_build_info": dto.MetricType_GAUGE,
		"go_goroutines": dto.MetricType_GAUGE, "process_cpu_seconds_total": dto.MetricType_COUNTER,
	} {
		f, ok := fams[name]
		if !ok {
			t.Errorf("no metric %s", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("%s is a %v, want %v", name, f.GetType(), typ)
		}
		if f.GetHelp() == "" {
			t.Errorf("%s has no help", name)
		}
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"swha_role", []string{"role", "active"}, 1},
		{"swha_role", []string{"role", "standby"}, 0},
		{"swha_failover_state", []string{"state", "active"}, 1},
		{"swha_failover_state", []string{"state", "standby-hot"}, 0},
		{"swha_epoch", nil, 7},
		{"swha_path_up", []string{"path", "ha"}, 1},
		{"swha_path_up", []string{"path", "secondary"}, 0},
		{"swha_heartbeat_rtt_seconds", []string{"path", "ha"}, 150e-6},
		{"swha_heartbeat_detection_time_seconds", []string{"path", "secondary"}, 0.02},
		{"swha_heartbeat_drops_total", []string{"path", "ha", "reason", "replay"}, 3},
		{"swha_heartbeat_drops_total", []string{"path", "ha", "reason", "wrong-peer"}, 0},
		{"swha_session_drops_total", []string{"reason", "duplicate"}, 2},
		{"swha_session_decode_errors_total", []string{"reason", "bad-crc"}, 0},
		{"swha_session_sent_bytes_total", nil, 64000},
		{"swha_session_rtt_seconds", nil, 200e-6},
		{"swha_sync_lag_transactions", nil, 20},
		{"swha_failover_last_promotion_seconds", nil, 0.003},
		{"swha_failover_last_peer_death_timestamp_seconds", nil, 1_700_000_000},
		{"swha_failover_last_promotion_reason", []string{"reason", "peer-dead"}, 1},
		{"swha_failover_last_promotion_reason", []string{"reason", "solo"}, 0},
		{"swha_failover_promotions_total", nil, 1},
		{"swha_fib_routes_mirrored", nil, 100000},
		{"swha_fib_netlink_resyncs_total", nil, 2},
		{"swha_fib_last_reconcile_seconds", nil, 1.5},
		{"swha_build_info", []string{"version", "test"}, 1},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// One series per role and per failover state, whatever the state.
	if n := len(fams["swha_role"].Metric); n != 2 {
		t.Errorf("%d swha_role series, want 2", n)
	}
	if n := len(fams["swha_failover_state"].Metric); n != 7 {
		t.Errorf("%d swha_failover_state series, want 7", n)
	}

	// Every swha_ metric is documented in docs/OPERATIONS.md.
	ops, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range fams {
		if strings.HasPrefix(name, "swha_") {
			names = append(names, name)
			if !strings.Contains(string(ops), "`"+name+"`") {
				t.Errorf("metric %s is not in docs/OPERATIONS.md", name)
			}
		}
	}
	// And nothing documented is missing from the scrape.
	for _, m := range regexp.MustCompile("`(swha_[a-z_]+)`").FindAllStringSubmatch(string(ops), -1) {
		if !slices.Contains(names, m[1]) {
			t.Errorf("docs/OPERATIONS.md names %s, which the scrape lacks", m[1])
		}
	}
}

// Without a FIB source the swha_fib_ metrics are absent, not zero.
func TestMetricsWithoutFIB(t *testing.T) {
	fams := scrape(t, NewMetricsHandler(&fakeNode{swha.Stats{Role: swha.Standby}}, MetricsOptions{NoRuntime: true}))
	for name := range fams {
		if strings.HasPrefix(name, "swha_fib_") || strings.HasPrefix(name, "go_") {
			t.Errorf("%s present", name)
		}
	}
	if value(t, fams, "swha_role", "role", "standby") != 1 {
		t.Fatal("standby role")
	}
	// Never promoted: the last promotion's metrics are absent, not 0 (a
	// zero timestamp would read as 1970).
	if _, ok := fams["swha_failover_last_promotion_timestamp_seconds"]; ok {
		t.Fatal("a promotion timestamp without a promotion")
	}
}

func TestMetricsLint(t *testing.T) {
	for _, src := range []NodeSource{&fakeNode{fakeStats()}, &fakeNode{}} {
		problems, err := testutil.CollectAndLint(NewCollector(src, fakeFIB, "test"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

type route struct {
	Prefix netip.Prefix
	Metric uint32
}

func registry(t *testing.T) *objstore.Registry {
	r := objstore.NewRegistry()
	if err := r.Register("route", route{}); err != nil {
		t.Fatal(err)
	}
	return r
}

// A real pair with failover over an in-memory link, in a synctest bubble
// (virtual time: the heartbeats' timers cannot be upset by a busy
// machine): the metrics of *swha.Node say who is active, that the peer is
// up on the path, and count what was committed and sent.
func TestMetricsRealPair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 1)
		newNode := func(l l2transport.Link, id, peer uint64, prio uint8) *swha.Node {
			n, err := swha.NewNode(swha.Config{Link: l, Registry: registry(t), NodeID: id, PeerNodeID: peer,
				Failover: &swha.FailoverConfig{StateDir: t.TempDir(), Priority: prio}})
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		a, b := newNode(la, 1, 2, 10), newNode(lb, 2, 1, 1)
		defer b.Close()
		defer a.Close()
		// Virtual time: this loop waits on the nodes' own timers, and a
		// minute of it bounds a pair that never settles.
		for deadline := time.Now().Add(time.Minute); a.Role() != swha.Active || b.FailoverStatus().State != failover.StandbyHot; {
			if time.Now().After(deadline) {
				t.Fatalf("no active/hot standby: %v %v", a.FailoverStatus().State, b.FailoverStatus().State)
			}
			time.Sleep(time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := range 3 {
			tx, err := a.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Create(&route{Prefix: netip.MustParsePrefix("10.0.0.0/24"), Metric: uint32(i)}); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}

		get := func(n *swha.Node) map[string]*dto.MetricFamily {
			rec := httptest.NewRecorder()
			NewMetricsHandler(n, MetricsOptions{NoRuntime: true}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			if rec.Code != 200 {
				t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
			}
			return parse(t, rec.Body.Bytes())
		}
		fa, fb := get(a), get(b)
		for _, c := range []struct {
			fams        map[string]*dto.MetricFamily
			name        string
			labels      []string
			want, least float64
		}{
			{fa, "swha_role", []string{"role", "active"}, 1, -1},
			{fa, "swha_failover_state", []string{"state", "active"}, 1, -1},
			{fb, "swha_role", []string{"role", "standby"}, 1, -1},
			{fb, "swha_failover_state", []string{"state", "standby-hot"}, 1, -1},
			{fa, "swha_peer_up", nil, 1, -1},
			{fa, "swha_streaming", nil, 1, -1},
			{fa, "swha_sync_lag_transactions", nil, 0, -1},
			{fb, "swha_objects", nil, 3, -1},
			{fa, "swha_commit_seq", nil, -1, 3},
			{fb, "swha_applied_seq", nil, -1, 3},
			{fa, "swha_session_frames_sent_total", nil, -1, 1},
			{fa, "swha_session_sent_bytes_total", nil, -1, 1},
			{fb, "swha_session_messages_delivered_total", nil, -1, 3},
			{fa, "swha_bulk_syncs_total", nil, -1, 1},
			{fa, "swha_epoch", nil, -1, 1},
			{fa, "swha_failover_promotions_total", nil, -1, 1},
		} {
			got := value(t, c.fams, c.name, c.labels...)
			if (c.want >= 0 && got != c.want) || (c.least >= 0 && got < c.least) {
				t.Errorf("%s%v = %v, want %v (at least %v)", c.name, c.labels, got, c.want, c.least)
			}
		}
		// The heartbeat path is named, and up on both sides.
		for _, fams := range []map[string]*dto.MetricFamily{fa, fb} {
			f := fams["swha_path_up"]
			if f == nil || len(f.Metric) == 0 {
				t.Fatal("no swha_path_up series")
			}
			for _, m := range f.Metric {
				if m.GetGauge().GetValue() != 1 {
					t.Errorf("path %v down", m.Label)
				}
			}
			if _, ok := fams["swha_heartbeat_rtt_seconds"]; !ok {
				t.Error("no heartbeat RTT")
			}
		}
		problems, err := testutil.CollectAndLint(NewCollector(a, nil, "test"))
		if err != nil || len(problems) != 0 {
			t.Fatalf("lint of a real node: %v %v", problems, err)
		}
	})
}

package heartbeat

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/swha/swha/frame"
	"github.com/swha/swha/l2transport"
)

// runnerPair starts runners a (node 1) and b (node 2) over la and lb.
func runnerPair(t *testing.T, la, lb l2transport.Link, tweak func(*RunnerConfig)) (*Runner, *Runner) {
	t.Helper()
	var rs [2]*Runner
	for i, l := range []l2transport.Link{la, lb} {
		cfg := RunnerConfig{Path: PathConfig{Name: []string{"a", "b"}[i], LocalID: uint64(i + 1), PeerID: uint64(2 - i)}}
		if tweak != nil {
			tweak(&cfg)
		}
		r, err := NewRunner(l, cfg)
		if err != nil {
			t.Fatal(err)
		}
		rs[i] = r
	}
	t.Cleanup(func() {
		rs[0].Close()
		rs[1].Close()
	})
	return rs[0], rs[1]
}

// next returns r's next event, failing after timeout (virtual time in a bubble).
func next(t *testing.T, r *Runner, timeout time.Duration) Event {
	t.Helper()
	select {
	case e, ok := <-r.Events():
		if !ok {
			t.Fatalf("events closed")
		}
		return e
	case <-time.After(timeout):
		t.Fatalf("no event in %v (state %v)", timeout, r.State())
	}
	return Event{}
}

func expect(t *testing.T, r *Runner, k EventKind, timeout time.Duration) Event {
	t.Helper()
	e := next(t, r, timeout)
	if e.Kind != k {
		t.Fatalf("event %+v, want %v", e, k)
	}
	return e
}

// awaitKind waits for an event of kind k at or after since, skipping the
// others: over real sockets on a loaded machine a path may flap before the
// step the test is about, and a flap is not what it tests. It returns the
// zero Event when k is EventDown and the path is already down.
func awaitKind(t *testing.T, r *Runner, k EventKind, since time.Time, timeout time.Duration) Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if k == EventDown && !r.Up() && !since.IsZero() {
			return Event{}
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("no %v event at or after %v within %v (state %v)", k, since, timeout, r.State())
		}
		e := next(t, r, left)
		if e.Kind == k && !e.At.Before(since) {
			return e
		}
	}
}

// memUp starts runners over a fresh in-memory pair (inside the caller's
// bubble) and waits for both Up events; the links close at the end of the test.
func memUp(t *testing.T, seed uint64, tweak func(*RunnerConfig)) (la *l2transport.MemLink, a, b *Runner) {
	t.Helper()
	la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, seed)
	t.Cleanup(func() {
		la.Close()
		lb.Close()
	})
	a, b = runnerPair(t, la, lb, tweak)
	expect(t, a, EventUp, 100*time.Millisecond)
	expect(t, b, EventUp, 100*time.Millisecond)
	return la, a, b
}

// TestRunnerMemPartition: over an in-memory pair in virtual time, up; a
// partition takes both down within the detection time (plus an interval for
// the last heartbeat in flight); healed, both come back up.
func TestRunnerMemPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, a, b := memUp(t, 1, nil)
		time.Sleep(time.Second) // virtual: a second of heartbeats
		if st := a.Stats(); st.Downs != 0 || st.Live < 150 || st.RTTSamples == 0 {
			t.Fatalf("a after 1 s: %+v", st)
		}
		la.SetPartitioned(true)
		cut := time.Now()
		bound := DefaultMultiplier*DefaultInterval + DefaultInterval
		for _, r := range []*Runner{a, b} {
			e := expect(t, r, EventDown, time.Second)
			if d := e.At.Sub(cut); d > bound || e.Diag != DiagDetectExpired {
				t.Fatalf("down %+v %v after the cut, want detect-time-expired within %v", e, d, bound)
			}
		}
		la.SetPartitioned(false)
		expect(t, a, EventUp, 100*time.Millisecond)
		expect(t, b, EventUp, 100*time.Millisecond)
	})
}

// TestRunnerCloseAndShutdown: Close is silent (the peer detects it); Shutdown
// takes the peer down at once with admin-down. Events channels close.
func TestRunnerCloseAndShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := memUp(t, 2, nil)
		if err := b.Shutdown(); err != nil {
			t.Fatal(err)
		}
		e := expect(t, a, EventDown, 2*time.Millisecond)
		if e.Diag != DiagAdminDown {
			t.Fatalf("down %+v, want admin-down", e)
		}
		if _, ok := <-b.Events(); ok {
			// b's own Down(admin-down) may still be queued; the channel must end.
			for range b.Events() {
			}
		}
		a.Close()
		if _, ok := <-a.Events(); ok {
			for range a.Events() {
			}
		}
	})
}

// TestRunnerAnnounce: the announce reaches the peer in its Up event, as
// PeerAnnounce, and on change as an Announce event.
func TestRunnerAnnounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 3)
		defer la.Close()
		defer lb.Close()
		a, b := runnerPair(t, la, lb, nil)
		if err := b.SetAnnounce([]byte("active/7")); err != nil {
			t.Fatal(err)
		}
		expect(t, b, EventUp, 100*time.Millisecond)
		up := expect(t, a, EventUp, 100*time.Millisecond)
		if string(up.Announce) != "active/7" && string(expect(t, a, EventAnnounce, time.Second).Announce) != "active/7" {
			t.Fatalf("up announce %q", up.Announce)
		}
		if err := b.SetAnnounce([]byte("standby/8")); err != nil {
			t.Fatal(err)
		}
		if e := expect(t, a, EventAnnounce, 10*time.Millisecond); string(e.Announce) != "standby/8" {
			t.Fatalf("announce %q", e.Announce)
		}
		synctest.Wait()
		if got := string(a.PeerAnnounce()); got != "standby/8" {
			t.Fatalf("PeerAnnounce %q", got)
		}
		if err := b.SetAnnounce(make([]byte, MaxAnnounce+1)); err == nil {
			t.Fatal("long announce accepted")
		}
	})
}

// TestRunnerSlowConsumer: a consumer that reads nothing for a while loses no Up
// or Down, and sees only the latest of the announces it missed.
func TestRunnerSlowConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 4)
		defer la.Close()
		defer lb.Close()
		a, b := runnerPair(t, la, lb, func(c *RunnerConfig) { c.EventBuffer = 1 })
		for i := range 20 {
			b.SetAnnounce([]byte{byte(i)})
			time.Sleep(10 * time.Millisecond)
		}
		for range 3 {
			la.SetPartitioned(true)
			time.Sleep(100 * time.Millisecond)
			la.SetPartitioned(false)
			time.Sleep(100 * time.Millisecond)
		}
		b.SetAnnounce([]byte("last"))
		time.Sleep(10 * time.Millisecond)
		b.SetAnnounce([]byte("latest"))
		time.Sleep(10 * time.Millisecond)
		var got []EventKind
		var lastAnn string
		for len(got) < 20 {
			select {
			case e := <-a.Events():
				if e.Kind == EventAnnounce {
					lastAnn = string(e.Announce)
					continue
				}
				got = append(got, e.Kind)
				continue
			case <-time.After(50 * time.Millisecond):
			}
			break
		}
		want := []EventKind{EventUp, EventDown, EventUp, EventDown, EventUp, EventDown, EventUp}
		if len(got) != len(want) {
			t.Fatalf("up/down events %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("up/down events %v, want %v", got, want)
			}
		}
		if lastAnn != "latest" || a.Stats().AnnouncesDropped == 0 {
			t.Fatalf("last announce %q, dropped %d", lastAnn, a.Stats().AnnouncesDropped)
		}
	})
}

// TestRunnerLinkClosed: the link closing under the runner stops it with an error.
func TestRunnerLinkClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 5)
		defer lb.Close()
		a, _ := runnerPair(t, la, lb, nil)
		la.Close()
		<-a.Done()
		if a.Err() == nil {
			t.Fatal("no error after the link closed")
		}
	})
}

// TestRunnerRealTimeFallback: RealTime either takes effect or is refused with a
// warning; the path comes up either way.
func TestRunnerRealTimeFallback(t *testing.T) {
	la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 6)
	defer la.Close()
	defer lb.Close()
	a, _ := runnerPair(t, la, lb, func(c *RunnerConfig) { c.RealTime = true })
	expect(t, a, EventUp, 10*time.Second)
	t.Logf("real time: %v", a.Stats().RealTime)
}

// TestRunnerDemux: the runner over an l2transport.Demux sublink that splits the
// heartbeats off a link shared with other traffic.
func TestRunnerDemux(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := l2transport.NewMemPair(1500, l2transport.Faults{}, l2transport.Faults{}, 7)
		da, db := l2transport.NewDemux(la, frame.TypeHeartbeat), l2transport.NewDemux(lb, frame.TypeHeartbeat)
		defer da.Close()
		defer db.Close()
		a, b := runnerPair(t, da.Link(frame.TypeHeartbeat), db.Link(frame.TypeHeartbeat), nil)
		expect(t, a, EventUp, 100*time.Millisecond)
		expect(t, b, EventUp, 100*time.Millisecond)
		b.Close()
		if e := expect(t, a, EventDown, time.Second); e.Diag != DiagDetectExpired {
			t.Fatalf("down %+v", e)
		}
	})
}

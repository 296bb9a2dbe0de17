package replica

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swha/swha/internal/wire"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the transcripts in testdata/ with the output the cores give now")

// TestTranscripts replays each testdata/*.txt against an Active and a
// Standby core in virtual time. A transcript is blocks of one command line,
// a "----" line, and the output the command must give, up to a blank line
// (etcd-io/raft's datadriven tests are the model). go test -rewrite writes
// the outputs the cores give now; review the diff before committing it.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			runTranscript(t, path)
		})
	}
}

type block struct {
	comment []string // lines before the command
	cmd     string
	want    string
	line    int
}

func parseTranscript(t *testing.T, path string) []block {
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []block
	lines := strings.Split(string(src), "\n")
	var cur block
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case cur.cmd == "" && (strings.HasPrefix(l, "#") || strings.TrimSpace(l) == ""):
			cur.comment = append(cur.comment, l)
		case cur.cmd == "":
			cur.cmd, cur.line = l, i+1
			if i+1 >= len(lines) || lines[i+1] != "----" {
				t.Fatalf("%s:%d: command %q not followed by ----", path, i+1, l)
			}
			i++
			var out []string
			for i+1 < len(lines) && lines[i+1] != "" {
				i++
				out = append(out, lines[i])
			}
			cur.want = strings.Join(out, "\n")
			blocks = append(blocks, cur)
			cur = block{}
		}
	}
	return blocks
}

func runTranscript(t *testing.T, path string) {
	blocks := parseTranscript(t, path)
	e := &env{now: time.Unix(1_000_000, 0)}
	var out strings.Builder
	for _, b := range blocks {
		got := strings.TrimRight(e.run(t, path, b), "\n")
		if *rewrite {
			for _, c := range b.comment {
				out.WriteString(c + "\n")
			}
			out.WriteString(b.cmd + "\n----\n" + got + "\n")
			continue
		}
		if got != b.want {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, b.line, b.cmd, got, b.want)
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// env holds the cores of one transcript and a virtual clock.
type env struct {
	now     time.Time
	a       *Active
	s       *Standby
	work    Work
	lastOut Output
}

func args(fields []string) map[string]string {
	m := map[string]string{}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

func (e *env) run(t *testing.T, path string, b block) string {
	fields := strings.Fields(b.cmd)
	m := args(fields[1:])
	u := func(k string) uint64 {
		if m[k] == "" {
			return 0
		}
		v, err := strconv.ParseUint(m[k], 10, 64)
		if err != nil {
			t.Fatalf("%s:%d: %s=%q: %v", path, b.line, k, m[k], err)
		}
		return v
	}
	_, flag := m["need"]
	switch fields[0] {
	case "active":
		e.a = NewActive(int(u("window")), u("seq"))
		return e.astatus()
	case "standby":
		e.s = NewStandby()
		return e.sstatus()
	case "tick":
		e.now = e.now.Add(time.Duration(u("ms")) * time.Millisecond)
		if e.a != nil {
			e.a.Tick(e.now)
			return e.astatus()
		}
		return "ok"
	case "event":
		ev := map[string]Event{"new": NewStream, "silent": Silent, "alive": Alive}[m["kind"]]
		if ev == 0 {
			t.Fatalf("%s:%d: kind=%q", path, b.line, m["kind"])
		}
		if _, ok := m["standby"]; ok {
			act := e.s.Event(ev)
			return fmt.Sprintf("store: %s\n%s", []string{"none", "await-snapshot", "resume"}[act], e.sstatus())
		}
		e.a.Event(ev, uint32(u("epoch")), e.now)
		return e.astatus()
	case "hello":
		resume, decided := e.a.Hello(wire.Hello{Snap: u("snap"), Applied: u("applied")})
		return fmt.Sprintf("decided=%v resume=%v\n%s", decided, resume, e.astatus())
	case "ack":
		a := wire.Ack{Snap: u("snap"), Seq: u("seq")}
		if flag {
			a.Flags = wire.AckNeedSnapshot
		}
		e.a.Ack(a)
		return e.astatus()
	case "refusal":
		_, snap := m["snapshot"]
		e.a.Refusal(wire.Refusal{Snap: u("snap"), Seq: u("seq"), Txn: u("txn"), Object: u("object"), Snapshot: snap, Text: m["text"]})
		return e.astatus()
	case "committed":
		_, hole := m["hole"]
		resnap := e.a.Committed(u("seq"), hole)
		return fmt.Sprintf("resnap=%v\n%s", resnap, e.astatus())
	case "coord":
		d, _ := strconv.Atoi(m["delta"])
		e.a.Coordinated(d)
		return fmt.Sprintf("partial=%d\n%s", e.a.CoordinatedPartial(), e.astatus())
	case "stale":
		return fmt.Sprint(e.a.TakeStale())
	case "work":
		e.work = e.a.Work(e.now)
		s := fmt.Sprintf("snapshot=%v", e.work.Snapshot)
		if e.work.Replay != nil {
			s += fmt.Sprintf(" replay=snap:%d,from:%d", e.work.Replay.Snap, e.work.Replay.From)
		}
		for _, r := range e.work.Repairs {
			s += fmt.Sprintf(" repair=seq:%d,object:%d", r.Seq, r.Object)
		}
		if d := e.a.SnapshotDue(); d.After(e.now) {
			s += fmt.Sprintf(" snapshot-due=+%dms", d.Sub(e.now).Milliseconds())
		}
		return s
	case "start-snapshot":
		return fmt.Sprintf("start=%v\n%s", e.a.StartSnapshot(e.now), e.astatus())
	case "snapshot-sent":
		var err error
		if _, ok := m["err"]; ok {
			err = errors.New("send failed")
		}
		e.a.SnapshotSent(u("txn"), u("seq"), err)
		return e.astatus()
	case "start-replay":
		if e.work.Replay == nil {
			t.Fatalf("%s:%d: no replay in the last work", path, b.line)
		}
		return fmt.Sprintf("start=%v\n%s", e.a.StartReplay(*e.work.Replay), e.astatus())
	case "resync":
		return fmt.Sprintf("resync=%v\n%s", e.a.Resync(), e.astatus())
	case "replay-failed":
		e.a.ReplayFailed()
		return e.astatus()
	case "remember":
		e.a.RememberSnapshot(u("txn"), u("seq"))
		return e.astatus()
	case "outcome":
		_, owed := m["owed"]
		o := e.a.Outcome(u("seq"), owed)
		return fmt.Sprintf("done=%v lost=%v refused=%q", o.Done, o.Lost, o.Refused)
	case "synced":
		return fmt.Sprintf("synced=%v", e.a.Synced(u("seq"), uint32(u("epoch"))))
	case "hot":
		return fmt.Sprintf("hot=%v", e.a.Hot())
	case "window-full":
		return fmt.Sprintf("full=%v", e.a.WindowFull())
	case "resume":
		e.s.Resume(u("snap"), u("applied"))
		return e.sstatus()
	case "applied":
		r := Applied{Snap: u("snap")}
		_, r.Awaiting = m["awaiting"]
		switch m["err"] {
		case "skew":
			r.Err, r.NotRepresentable = errors.New("value does not fit"), true
		case "other":
			r.Err = errors.New("commit sequence gap")
		}
		if m["refused"] != "" {
			// refused=seq:txn:object:flags, flags from s (snapshot) and k (skew)
			for _, f := range strings.Split(m["refused"], ",") {
				p := strings.Split(f, ":")
				seq, _ := strconv.ParseUint(p[0], 10, 64)
				txn, _ := strconv.ParseUint(p[1], 10, 64)
				obj, _ := strconv.ParseUint(p[2], 10, 64)
				r.Refusals = append(r.Refusals, Refused{Seq: seq, Txn: txn, Object: obj,
					Snapshot: strings.Contains(p[3], "s"), Skew: strings.Contains(p[3], "k"), Text: "Route.Pref: value 300 does not fit int8"})
			}
		}
		v := e.s.Applied(r)
		return fmt.Sprintf("await-snapshot=%v resync=%v\n%s", v.AwaitSnapshot, v.Resync, e.sstatus())
	case "ready":
		o := e.s.Ready(u("snap"), u("applied"))
		e.lastOut = o
		var lines []string
		for _, r := range o.Refusals {
			lines = append(lines, fmt.Sprintf("send refusal snap:%d seq:%d txn:%d object:%d snapshot:%v", r.Snap, r.Seq, r.Txn, r.Object, r.Snapshot))
		}
		if o.Hello != nil {
			lines = append(lines, fmt.Sprintf("send hello snap:%d applied:%d", o.Hello.Snap, o.Hello.Applied))
		}
		if o.Ack != nil {
			lines = append(lines, fmt.Sprintf("send ack snap:%d seq:%d need-snapshot:%v", o.Ack.Snap, o.Ack.Seq, o.Ack.Flags&wire.AckNeedSnapshot != 0))
		}
		if len(lines) == 0 {
			return "nothing to send"
		}
		return strings.Join(lines, "\n")
	case "ack-sent":
		if e.lastOut.Ack == nil {
			t.Fatalf("%s:%d: the last ready had no ack", path, b.line)
		}
		e.s.AckSent(*e.lastOut.Ack)
		return e.sstatus()
	case "hello-failed":
		e.s.HelloFailed()
		return e.sstatus()
	}
	t.Fatalf("%s:%d: unknown command %q", path, b.line, fields[0])
	return ""
}

func (e *env) astatus() string {
	s := e.a.Status()
	var flags []string
	for _, f := range []struct {
		on   bool
		name string
	}{{s.PeerUp, "peer-up"}, {s.Streaming, "streaming"}, {s.AwaitingHello, "await-hello"}, {s.NeedSnap, "need-snapshot"}, {s.SnapshotRefused != "", "snapshot-refused"}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	if len(flags) == 0 {
		flags = []string{"-"}
	}
	return fmt.Sprintf("active: %s committed=%d acked=%d snap=%d epoch=%d in-flight=%d",
		strings.Join(flags, ","), s.Committed, s.Acked, s.SnapshotTxn, s.PeerEpoch, s.InFlight)
}

func (e *env) sstatus() string {
	s := e.s
	return fmt.Sprintf("standby: peer-up=%v silent=%v need-snapshot=%v hello-owed=%v pending-refusals=%d",
		s.peerUp, s.silent, s.needSnap, s.helloOwed, len(s.refusals))
}

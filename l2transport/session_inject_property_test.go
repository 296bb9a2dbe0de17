package l2transport_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/swha/swha/frame"
	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/l2transport/linktest"
)

// The link-security property (issue 12): no sequence of injected frames —
// replays of anything ever on the link, duplicates, an earlier incarnation's
// frames (stale epochs), mutations, and with a key ring a rogue speaking the
// real protocol under a key not in the ring (a forged source, a newer epoch)
// — changes what the standby delivers, makes it follow another stream, or
// delays its detection of a frozen active beyond its bound. Each seed runs
// the same traffic twice, clean and under injection, and compares.

const (
	injDead = 200 * time.Millisecond // DeadInterval of every Session here
	injStep = time.Millisecond       // the clock's step
)

var injEpoch = time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)

type injRun struct {
	t          *testing.T
	rng        *rand.Rand
	a0, a, b   *l2transport.Session
	rogue      *l2transport.Session // its own key: nothing it says verifies
	now        time.Time
	wire       [][]byte // every frame any Session put on the link
	delivered  []string // B's messages, in order
	sent       []string // A's messages, in order
	silentAt   time.Time
	lastFromA  time.Time // the last frame of A that B received
	injected   int
	bPeerEpoch uint32
}

func injKeyring(t *testing.T, key byte) *frame.Keyring {
	kr, err := frame.NewKeyring(1, map[uint32][]byte{1: bytes.Repeat([]byte{key}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func injSession(t *testing.T, node uint64, epoch uint32, inc uint64, kr *frame.Keyring) *l2transport.Session {
	s, err := l2transport.NewSession(l2transport.SessionConfig{
		LocalNodeID: node, Epoch: epoch, Incarnation: inc, MaxPDU: 1500,
		SendBuffer: 4 << 20, RecvBuffer: 4 << 20, RecvWindow: 512, DeadInterval: injDead, Keyring: kr,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// drain takes s's output: frames go to the link (recorded) and to each of
// to; B's messages and events are recorded.
func (r *injRun) drain(s *l2transport.Session, to ...*l2transport.Session) bool {
	s.Tick(r.now)
	if !s.HasReady() {
		return false
	}
	rd := s.Ready()
	for _, f := range rd.Frames {
		r.wire = append(r.wire, slices.Clone(f))
		for _, d := range to {
			if d == r.b && s == r.a {
				r.lastFromA = r.now
			}
			d.Step(f, r.now)
		}
	}
	if s == r.b {
		for _, m := range rd.Messages {
			r.delivered = append(r.delivered, string(m.Data))
		}
		for _, ev := range rd.Events {
			if ev.Kind == l2transport.EventPeerSilent && r.silentAt.IsZero() {
				r.silentAt = ev.At
			}
		}
	}
	s.Advance()
	return true
}

// step runs one clock step: the live Sessions exchange until quiet.
func (r *injRun) step(pairs map[*l2transport.Session][]*l2transport.Session) {
	for range 1000 {
		moved := false
		for _, s := range []*l2transport.Session{r.a0, r.a, r.b, r.rogue} {
			if to, ok := pairs[s]; ok && r.drain(s, to...) {
				moved = true
			}
		}
		if !moved {
			break
		}
	}
	r.now = r.now.Add(injStep)
}

// inject delivers k frames to B (and some to A) drawn from what the link
// carried: verbatim replays, mutations, or the rogue's frames.
func (r *injRun) inject(k int) {
	for range k {
		if len(r.wire) == 0 {
			return
		}
		f := slices.Clone(r.wire[r.rng.IntN(len(r.wire))])
		switch r.rng.IntN(8) {
		case 0: // a bit flip anywhere: CRC or HMAC fails
			f[r.rng.IntN(len(f))] ^= 1 << r.rng.IntN(8)
		case 1: // the newest frames, duplicated (the likeliest replay)
			f = slices.Clone(r.wire[len(r.wire)-1-r.rng.IntN(min(len(r.wire), 16))])
		}
		to := r.b
		if r.rng.IntN(4) == 0 {
			to = r.a
		}
		to.Step(f, r.now)
		r.injected++
	}
}

func runInjection(t *testing.T, seed uint64, auth, attack bool) *injRun {
	var kr, rogueKR *frame.Keyring
	if auth {
		kr, rogueKR = injKeyring(t, 'k'), injKeyring(t, 'r')
	}
	r := &injRun{t: t, rng: rand.New(rand.NewPCG(seed, 0x1a7)), now: injEpoch,
		a0: injSession(t, 1, 10, 0xa0, kr), a: injSession(t, 1, 11, 0xa1, kr),
		b: injSession(t, 2, 22, 0xb2, kr)}
	if auth {
		// The rogue claims A's node ID and a newer epoch, and talks to B as
		// A would; only its key is wrong.
		r.rogue = injSession(t, 1, 99, 0xee, rogueKR)
	}
	traffic := rand.New(rand.NewPCG(seed, 0x7aff)) // the same in both runs
	atk := rand.New(rand.NewPCG(seed, 0xa77))      // only the attacker's
	// B follows a0, an earlier incarnation of A, whose frames stay on the
	// link's record (stale epoch) once A replaces it.
	old := map[*l2transport.Session][]*l2transport.Session{r.a0: {r.b}, r.b: {r.a0}}
	for range 50 {
		r.step(old)
	}
	if err := r.a0.Send([]byte("a0"), 1); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		r.step(old)
	}
	cur := map[*l2transport.Session][]*l2transport.Session{r.a: {r.b}, r.b: {r.a}}
	if r.rogue != nil {
		cur[r.rogue] = []*l2transport.Session{r.b}
	}
	r.delivered = nil // what a0's stream delivered is not under test
	for range 50 {
		r.step(cur)
	}
	if !r.b.Established() || r.b.Stats().PeerEpoch != 11 {
		t.Fatalf("seed %d: B does not follow A after setup: %+v", seed, r.b.Stats())
	}
	// A streams 300 messages of random sizes at random times; B sends some
	// back; the attacker injects a random number of frames each step.
	for i := 0; len(r.sent) < 300; i++ {
		if traffic.IntN(3) == 0 {
			m := fmt.Sprintf("a-%d-%s", len(r.sent), bytes.Repeat([]byte("x"), traffic.IntN(3000)))
			if err := r.a.Send([]byte(m), uint64(len(r.sent)+1)); err != nil {
				t.Fatal(err)
			}
			r.sent = append(r.sent, m)
		}
		if traffic.IntN(20) == 0 {
			if err := r.b.Send([]byte("b"), 0); err != nil {
				t.Fatal(err)
			}
		}
		if attack {
			r.rng = atk
			r.inject(atk.IntN(6))
		}
		r.step(cur)
	}
	for range 3 * int(injDead/injStep) / 2 { // let the stream finish
		if attack {
			r.inject(atk.IntN(6))
		}
		r.step(cur)
	}
	r.bPeerEpoch = r.b.Stats().PeerEpoch
	if !r.silentAt.IsZero() {
		t.Fatalf("seed %d attack=%v: B declared A silent at +%v while A was alive", seed, attack, r.silentAt.Sub(injEpoch))
	}
	// A freezes: it sends nothing more, and the attacker replays at B,
	// every step, what A and everyone else ever sent.
	frozen := map[*l2transport.Session][]*l2transport.Session{r.b: {}}
	if r.rogue != nil {
		frozen[r.rogue] = []*l2transport.Session{r.b}
	}
	end := r.now.Add(3 * injDead)
	for r.now.Before(end) {
		if attack {
			r.inject(20)
		}
		r.step(frozen)
	}
	return r
}

func TestPropertyInjectedFramesChangeNothing(t *testing.T) {
	for _, auth := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "hmac"}[auth], func(t *testing.T) {
			for _, seed := range linktest.Seeds(t, linktest.PropertySeeds...) {
				clean := runInjection(t, seed, auth, false)
				att := runInjection(t, seed, auth, true)
				if !slices.Equal(clean.delivered, clean.sent) {
					t.Fatalf("seed %d: the clean run delivered %d of %d messages in order", seed, len(clean.delivered), len(clean.sent))
				}
				if !slices.Equal(att.delivered, att.sent) {
					t.Fatalf("seed %d: under %d injected frames B delivered %d messages, want the %d A sent, in order, once",
						seed, att.injected, len(att.delivered), len(att.sent))
				}
				if att.bPeerEpoch != clean.bPeerEpoch {
					t.Fatalf("seed %d: under injection B follows epoch %d, clean %d", seed, att.bPeerEpoch, clean.bPeerEpoch)
				}
				for _, r := range []*injRun{clean, att} {
					if r.silentAt.IsZero() {
						t.Fatalf("seed %d: B never declared the frozen A silent (%d frames injected)", seed, r.injected)
					}
				}
				// Detection runs from A's last frame: injection must not
				// delay it past the bound (one step of slack for the clock).
				if d := att.silentAt.Sub(att.lastFromA); d > injDead+injStep {
					t.Fatalf("seed %d: under injection B declared A silent %v after A's last frame, bound %v", seed, d, injDead)
				}
				if att.silentAt.After(clean.silentAt.Add(injStep)) && att.lastFromA.Equal(clean.lastFromA) {
					t.Fatalf("seed %d: injection delayed detection from +%v to +%v", seed,
						clean.silentAt.Sub(injEpoch), att.silentAt.Sub(injEpoch))
				}
				st := att.b.Stats()
				t.Logf("seed %d: %d frames injected; B detected at %v after A's last frame (clean %v); drops %v, decode errors %v",
					seed, att.injected, att.silentAt.Sub(att.lastFromA), clean.silentAt.Sub(clean.lastFromA), st.Drops, st.DecodeErrors)
			}
		})
	}
}

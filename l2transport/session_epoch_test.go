package l2transport

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/swha/swha/frame"
)

// drive runs a and b against each other over a perfect, instant link for d of
// virtual time in steps of step, firing their timers, and returns what each
// was delivered (as "txn:data") and the events each reported.
func drive(a, b *Session, now time.Time, d, step time.Duration) (end time.Time, toA, toB []string, evA, evB []Event) {
	end = now.Add(d)
	for ; !now.After(end); now = now.Add(step) {
		for range 1000 {
			moved := false
			for i, p := range [][2]*Session{{a, b}, {b, a}} {
				from, to := p[0], p[1]
				from.Tick(now)
				if !from.HasReady() {
					continue
				}
				moved = true
				rd := from.Ready()
				for _, m := range rd.Messages {
					s := fmt.Sprintf("%d:%s", m.TxnID, m.Data)
					if i == 0 {
						toA = append(toA, s)
					} else {
						toB = append(toB, s)
					}
				}
				if i == 0 {
					evA = append(evA, rd.Events...)
				} else {
					evB = append(evB, rd.Events...)
				}
				for _, f := range rd.Frames {
					to.Step(f, now)
				}
				from.Advance()
			}
			if !moved {
				break
			}
		}
	}
	return end, toA, toB, evA, evB
}

// newSessionInc is NewSession for baseConfig(node, epoch) with a fixed
// incarnation, so that sequence numbers replay.
func newSessionInc(t *testing.T, node uint64, epoch uint32, inc uint64) *Session {
	t.Helper()
	cfg := baseConfig(node, epoch)
	cfg.Incarnation = inc
	s, err := NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPeerReusedEpoch: B restarts (a new Session, nothing kept) with the
// epoch of its previous incarnation, which SessionConfig.Epoch forbids but a
// lost boot counter or a restored snapshot can cause. Before incarnations the
// pair wedged: A, established, ignored the new B's Hello; A's HelloAck
// echoed B's old epoch and ISN 1, which the new B also had, so B
// established against A's old stream; then A dropped B's data as duplicates,
// B dropped A's acks as acknowledging what it never sent (and went silent),
// and neither side reported anything. Now A sees a new incarnation under the
// known epoch and restarts the stream, loudly; the old B's late frames are
// refused.
func TestPeerReusedEpoch(t *testing.T) {
	a := newSessionInc(t, 1, 101, 0xa1)
	b := newSessionInc(t, 2, 102, 0xb1)
	now := establish(t, a, b, simEpoch)
	for i := range 20 {
		a.Send([]byte(fmt.Sprintf("a%d", i)), uint64(i))
		b.Send([]byte(fmt.Sprintf("b%d", i)), uint64(i))
	}
	now, toA, toB, _, _ := drive(a, b, now, 10*time.Millisecond, time.Millisecond)
	if len(toA) != 20 || len(toB) != 20 {
		t.Fatalf("before the restart: A got %d, B got %d of 20", len(toA), len(toB))
	}
	// Frames of the old B that arrive late, after the new one took over.
	b.Send([]byte("ghost"), 99)
	b.needHello = true
	lateOld := append([][]byte(nil), b.Ready().Frames...)
	if len(lateOld) != 2 {
		t.Fatalf("old B built %d frames, want a Hello and a Data", len(lateOld))
	}

	b2 := newSessionInc(t, 2, 102, 0xb2<<40) // the same epoch; its ISN is far from the old one's
	a.Send([]byte("a-early"), 100)           // before A can know
	b2.Send([]byte("b-after"), 200)
	now, toA, toB, evA, evB := drive(a, b2, now.Add(time.Millisecond), 3*time.Second, time.Millisecond)
	if fmt.Sprint(toA) != "[200:b-after]" {
		t.Fatalf("after B restarted with its old epoch, A got %v, want B's message; A %+v", toA, a.Stats())
	}
	if len(toB) != 0 {
		t.Errorf("the new B got %v from A's old stream", toB)
	}
	var restarts []Event
	for _, ev := range evA {
		if ev.Kind == EventPeerRestarted {
			restarts = append(restarts, ev)
		}
	}
	if len(restarts) != 1 {
		t.Fatalf("A reported %d restarts (%v), want 1", len(restarts), evA)
	}
	if ev := restarts[0]; !ev.EpochReused || ev.PeerEpoch != 102 || ev.OldPeerEpoch != 102 || fmt.Sprint(ev.DiscardedTxns) != "[100]" {
		t.Errorf("A's restart event %+v, want epoch 102 reused and txn 100 discarded", ev)
	}
	if st := a.Stats(); st.PeerEpochReuses != 1 || st.PeerRestarts != 1 || !st.Established {
		t.Errorf("A stats: %d epoch reuses, %d restarts, established %v; want 1, 1, true", st.PeerEpochReuses, st.PeerRestarts, st.Established)
	}
	for _, ev := range evB {
		if ev.Kind != EventEstablished {
			t.Errorf("the new B reported %v; it never knew the old stream", ev)
		}
	}

	// The old B's late Hello and data are refused, and A stays with the new B.
	for _, f := range lateOld {
		a.Step(f, now)
	}
	if st := a.Stats(); st.Drops[DropStaleStream] != 2 || st.PeerEpochReuses != 1 {
		t.Errorf("A after the old B's late frames: stale-stream drops %d, epoch reuses %d; want 2, 1", st.Drops[DropStaleStream], st.PeerEpochReuses)
	}
	a.Send([]byte("a-again"), 101) // the application resends what was discarded
	_, toA, toB, evA, _ = drive(a, b2, now, 100*time.Millisecond, time.Millisecond)
	if fmt.Sprint(toB) != "[101:a-again]" || len(toA) != 0 || len(evA) != 0 {
		t.Errorf("after the late frames: B got %v, A got %v and events %v; want only A's resent message", toB, toA, evA)
	}
}

// TestHelloWithoutIncarnation: a peer from before incarnations sends the
// 16-byte Hello payload; the handshake completes on epoch and ISN alone, and
// the extended HelloAck it gets back starts with the bytes it knows.
// (A peer without hello counters is served as before: the counter's checks
// need one.)
func TestHelloWithoutIncarnation(t *testing.T) {
	a := newSessionInc(t, 1, 101, 0xa1)
	const bEpoch, bISN = 7, 42
	hello := encode(t, frame.Header{Type: frame.TypeHello, NodeID: 2, Epoch: bEpoch, Seq: bISN}, helloPayload(0, 0, 100))
	a.Tick(simEpoch)
	a.Advance() // A's own first Hello
	a.Step(hello, simEpoch)
	rd := a.Ready()
	var h frame.Header
	var ack []byte
	for _, f := range rd.Frames {
		p, err := frame.NewCodec(nil).Decode(f, &h)
		if err == nil && h.Type == frame.TypeHelloAck {
			ack = p
		}
	}
	a.Advance()
	if len(ack) != helloCtrLen || !bytes.Equal(ack[:12], helloPayload(bEpoch, bISN, 0)[:12]) {
		t.Fatalf("HelloAck payload %x, want the old layout's epoch and ISN first, then the incarnations and the hello counter", ack)
	}
	a.Step(encode(t, frame.Header{Type: frame.TypeHelloAck, NodeID: 2, Epoch: bEpoch, Seq: bISN}, helloPayload(101, a.isn, 100)), simEpoch)
	if !a.Established() {
		t.Fatalf("not established with a peer that sends no incarnation: %+v", a.Stats())
	}
}

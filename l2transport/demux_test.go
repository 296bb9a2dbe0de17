package l2transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swha/swha/frame"
	"github.com/swha/swha/l2transport/linktest"
)

// typedPDU encodes a frame of type t whose payload is tag, so that tests can
// tell frames apart after routing.
func typedPDU(t testing.TB, typ frame.Type, tag string) []byte {
	t.Helper()
	pdu, err := frame.NewCodec(nil).Append(nil, &frame.Header{Type: typ, NodeID: 9, Epoch: 1}, []byte(tag))
	if err != nil {
		t.Fatal(err)
	}
	return pdu
}

// pduTag returns the payload typedPDU put in pdu.
func pduTag(t testing.TB, pdu []byte) string {
	t.Helper()
	var h frame.Header
	p, err := frame.NewCodec(nil).Decode(pdu, &h)
	if err != nil {
		t.Fatalf("routed PDU does not decode: %v", err)
	}
	return fmt.Sprintf("%v:%s", h.Type, p)
}

// readAll reads n PDUs from l and returns copies.
func readAll(t testing.TB, l Link, n int) [][]byte {
	t.Helper()
	pkts := make([]Packet, 8)
	for i := range pkts {
		pkts[i].Buf = make([]byte, l.MaxPDU())
	}
	var out [][]byte
	for len(out) < n {
		k, err := l.ReadBatch(pkts[:min(len(pkts), n-len(out))])
		if err != nil {
			t.Fatalf("read %d of %d: %v", len(out), n, err)
		}
		for _, p := range pkts[:k] {
			out = append(out, append([]byte(nil), p.Buf[:p.N]...))
		}
	}
	return out
}

func TestDemuxTypeOffset(t *testing.T) {
	for typ := frame.TypeHello; typ.Known(); typ++ {
		if pdu := typedPDU(t, typ, "x"); frame.Type(pdu[demuxTypeOffset]) != typ {
			t.Fatalf("%v frame has byte %d at the type offset %d: the header layout moved", typ, pdu[demuxTypeOffset], demuxTypeOffset)
		}
	}
}

// TestDemuxRoutes: each split-off type reaches its Link only, in order;
// everything else (other types, unknown types, runts) reaches Rest, in order.
func TestDemuxRoutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewMemPair(1500, Faults{}, Faults{}, 1)
		defer a.Close()
		d := NewDemux(b, frame.TypeHeartbeat, frame.TypeClose, frame.TypeHeartbeat)
		defer d.Close()
		var in [][]byte
		var wantHB, wantClose, wantRest []string
		for i := range 30 {
			var p []byte
			switch i % 5 {
			case 0:
				p = typedPDU(t, frame.TypeHeartbeat, fmt.Sprint(i))
				wantHB = append(wantHB, pduTag(t, p))
			case 1:
				p = typedPDU(t, frame.TypeData, fmt.Sprint(i))
				wantRest = append(wantRest, pduTag(t, p))
			case 2:
				p = typedPDU(t, frame.TypeClose, fmt.Sprint(i))
				wantClose = append(wantClose, pduTag(t, p))
			case 3:
				p = typedPDU(t, frame.TypeHello, fmt.Sprint(i))
				wantRest = append(wantRest, pduTag(t, p))
			case 4:
				p = []byte{frame.Version} // a runt with no type byte
				wantRest = append(wantRest, "runt")
			}
			in = append(in, p)
		}
		if _, err := a.WriteBatch(in); err != nil {
			t.Fatal(err)
		}
		tags := func(pdus [][]byte) []string {
			var s []string
			for _, p := range pdus {
				if len(p) == 1 {
					s = append(s, "runt")
					continue
				}
				s = append(s, pduTag(t, p))
			}
			return s
		}
		for _, c := range []struct {
			l    *DemuxLink
			want []string
		}{{d.Link(frame.TypeHeartbeat), wantHB}, {d.Link(frame.TypeClose), wantClose}, {d.Rest(), wantRest}} {
			got := tags(readAll(t, c.l, len(c.want)))
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%v got %v, want %v", c.l, got, c.want)
			}
			if st := c.l.Stats(); st.Frames != uint64(len(c.want)) || st.QueueDrops != 0 {
				t.Errorf("%v stats %+v, want %d frames", c.l, st, len(c.want))
			}
		}
		defer func() {
			if recover() == nil {
				t.Error("Link of a type not split off did not panic")
			}
		}()
		d.Link(frame.TypeData)
	})
}

// TestDemuxSlowConsumer: a consumer that stops reading loses its own frames,
// counted, and holds up nobody else; either way round.
func TestDemuxSlowConsumer(t *testing.T) {
	for _, stalled := range []string{"heartbeat", "rest"} {
		t.Run(stalled, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const qlen, n = 8, 100
				a, b := NewMemPair(1500, Faults{}, Faults{}, 1)
				defer a.Close()
				d := NewDemuxConfig(b, DemuxConfig{Types: []frame.Type{frame.TypeHeartbeat}, QueueLen: qlen, RestQueueLen: qlen})
				defer d.Close()
				hb, rest := d.Link(frame.TypeHeartbeat), d.Rest()
				reader, idle := rest, hb
				if stalled == "rest" {
					reader, idle = hb, rest
				}
				var want []string
				for i := range n {
					h := typedPDU(t, frame.TypeHeartbeat, fmt.Sprint(i))
					dt := typedPDU(t, frame.TypeData, fmt.Sprint(i))
					if _, err := a.WriteBatch([][]byte{h, dt}); err != nil {
						t.Fatal(err)
					}
					w := dt
					if reader == hb {
						w = h
					}
					want = append(want, pduTag(t, w))
					// The reader keeps up, one frame at a time; the other
					// consumer does not read at all.
					if got := pduTag(t, readAll(t, reader, 1)[0]); got != want[i] {
						t.Fatalf("%v read %s, want %s", reader, got, want[i])
					}
				}
				synctest.Wait()
				if st := reader.Stats(); st.Frames != n || st.QueueDrops != 0 {
					t.Errorf("%v (reading) stats %+v, want %d frames and no drops", reader, st, n)
				}
				if st := idle.Stats(); st.Frames != qlen || st.QueueDrops != n-qlen {
					t.Errorf("%v (stalled) stats %+v, want %d queued and %d dropped", idle, st, qlen, n-qlen)
				}
				// What it has queued is the oldest frames, intact.
				typ := frame.TypeData
				if idle == hb {
					typ = frame.TypeHeartbeat
				}
				for i, p := range readAll(t, idle, qlen) {
					if got, want := pduTag(t, p), fmt.Sprintf("%v:%d", typ, i); got != want {
						t.Errorf("stalled %v frame %d is %s, want %s", idle, i, got, want)
					}
				}
			})
		})
	}
}

func TestDemuxDeadlineAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewMemPair(1500, Faults{}, Faults{}, 1)
		defer a.Close()
		d := NewDemux(b, frame.TypeHeartbeat)
		hb, rest := d.Link(frame.TypeHeartbeat), d.Rest()
		pkts := []Packet{{Buf: make([]byte, 1500)}}
		linktest.DeadlineAndClose(t, hb, pkts, typedPDU(t, frame.TypeHeartbeat, "x"), ErrClosed)

		// Closing the heartbeat link closed only it: Rest still reads and
		// writes, and heartbeats now count as dropped.
		if _, err := a.WriteBatch([][]byte{typedPDU(t, frame.TypeHeartbeat, "late"), typedPDU(t, frame.TypeData, "d")}); err != nil {
			t.Fatal(err)
		}
		if got := pduTag(t, readAll(t, rest, 1)[0]); got != "Data:d" {
			t.Fatalf("Rest read %s", got)
		}
		if st := hb.Stats(); st.ClosedDrops != 1 {
			t.Errorf("closed heartbeat link stats %+v, want 1 closed drop", st)
		}
		if _, err := rest.WriteBatch([][]byte{typedPDU(t, frame.TypeData, "up")}); err != nil {
			t.Fatal(err)
		}
		if got := pduTag(t, readAll(t, a, 1)[0]); got != "Data:up" {
			t.Fatalf("peer read %s", got)
		}

		// Rest is the last one open: closing it closes the underlying link.
		linktest.DeadlineAndClose(t, rest, pkts, typedPDU(t, frame.TypeData, "x"), ErrClosed)
		if _, err := b.WriteBatch([][]byte{{1}}); !errors.Is(err, ErrClosed) {
			t.Errorf("underlying link after every sub-link closed: %v, want ErrClosed", err)
		}
		if err := d.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("Demux.Close after every sub-link closed: %v, want ErrClosed", err)
		}
	})
}

// TestDemuxClose: Demux.Close unblocks every reader and closes the link.
func TestDemuxClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewMemPair(1500, Faults{}, Faults{}, 1)
		defer a.Close()
		d := NewDemux(b, frame.TypeHeartbeat)
		errc := make(chan error, 2)
		for _, l := range []Link{d.Link(frame.TypeHeartbeat), d.Rest()} {
			go func() {
				_, err := l.ReadBatch([]Packet{{Buf: make([]byte, 1500)}})
				errc <- err
			}()
		}
		synctest.Wait()
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-errc; !errors.Is(err, ErrClosed) {
				t.Errorf("blocked read across Demux.Close: %v", err)
			}
		}
		if _, err := b.ReadBatch(nil); !errors.Is(err, ErrClosed) {
			t.Errorf("underlying link after Demux.Close: %v", err)
		}
		if err := d.Rest().Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("sub-link Close after Demux.Close: %v", err)
		}
		if err := d.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("second Demux.Close: %v", err)
		}
	})
}

// TestDemuxLinkClosedUnderneath: when someone else closes the underlying
// link, each sub-link hands out what it had queued and then reports ErrClosed.
func TestDemuxLinkClosedUnderneath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewMemPair(1500, Faults{}, Faults{}, 1)
		defer a.Close()
		d := NewDemux(b, frame.TypeHeartbeat)
		if _, err := a.WriteBatch([][]byte{typedPDU(t, frame.TypeData, "1"), typedPDU(t, frame.TypeHeartbeat, "2")}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // routed
		b.Close()
		synctest.Wait() // the reader saw it
		for _, c := range []struct {
			l    Link
			want string
		}{{d.Rest(), "Data:1"}, {d.Link(frame.TypeHeartbeat), "Heartbeat:2"}} {
			if got := pduTag(t, readAll(t, c.l, 1)[0]); got != c.want {
				t.Errorf("%v: %s, want %s", c.l, got, c.want)
			}
			if _, err := c.l.ReadBatch([]Packet{{Buf: make([]byte, 100)}}); !errors.Is(err, ErrClosed) {
				t.Errorf("%v after its queue drained: %v, want ErrClosed", c.l, err)
			}
		}
		if err := d.Close(); err != nil {
			t.Errorf("Demux.Close over a link closed underneath: %v", err)
		}
	})
}

// failOnceLink fails its first ReadBatch with errBoom, then delegates.
type failOnceLink struct {
	Link
	once sync.Once
}

var errBoom = errors.New("boom")

func (l *failOnceLink) ReadBatch(p []Packet) (int, error) {
	var fail bool
	l.once.Do(func() { fail = true })
	if fail {
		return 0, errBoom
	}
	return l.Link.ReadBatch(p)
}

// TestDemuxReadError: an error of the underlying link reaches every consumer
// once, and reading goes on.
func TestDemuxReadError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewMemPair(1500, Faults{}, Faults{}, 1)
		defer a.Close()
		d := NewDemux(&failOnceLink{Link: b}, frame.TypeHeartbeat)
		defer d.Close()
		pkts := []Packet{{Buf: make([]byte, 1500)}}
		for _, l := range []Link{d.Rest(), d.Link(frame.TypeHeartbeat)} {
			if _, err := l.ReadBatch(pkts); !errors.Is(err, errBoom) {
				t.Errorf("%v: %v, want the link's error", l, err)
			}
		}
		if _, err := a.WriteBatch([][]byte{typedPDU(t, frame.TypeData, "after")}); err != nil {
			t.Fatal(err)
		}
		if got := pduTag(t, readAll(t, d.Rest(), 1)[0]); got != "Data:after" {
			t.Errorf("after the error: %s", got)
		}
		if st := d.Rest().Stats(); st.ReadErrors != 1 {
			t.Errorf("stats %+v, want 1 read error", st)
		}
	})
}

// TestDemuxAllocs: routing and reading allocate nothing once the queues have
// been used.
func TestDemuxAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	a, b := NewMemPair(1500, Faults{}, Faults{}, 1)
	defer a.Close()
	d := NewDemux(b, frame.TypeHeartbeat)
	defer d.Close()
	hb, rest := d.Link(frame.TypeHeartbeat), d.Rest()
	batch := [][]byte{typedPDU(t, frame.TypeData, "d"), typedPDU(t, frame.TypeHeartbeat, "h"), typedPDU(t, frame.TypeAck, "a")}
	pkts := make([]Packet, 4)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 1500)
	}
	round := func() {
		if _, err := a.WriteBatch(batch); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < 2; {
			n, err := rest.ReadBatch(pkts)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
		if _, err := hb.ReadBatch(pkts); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		round() // warm: every queue slot and buffer is in use once
	}
	if n := testing.AllocsPerRun(1000, round); n > 0.01 {
		t.Errorf("%.2f allocations per round of 3 frames, want 0", n)
	}
}

// TestConnOverDemux: two Conns over the Rest of a Demux on a FaultyLink, with
// heartbeats exchanged on the side: the stream arrives exactly once and in
// order, no heartbeat reaches a Session, and every heartbeat that arrives is
// one.
func TestConnOverDemux(t *testing.T) {
	linktest.RunSeeds(t, nil, func(t *testing.T, seed uint64) {
		n := 2000
		if raceEnabled {
			n = 400
		}
		synctest.Test(t, func(t *testing.T) {
			f := Faults{Loss: 0.05, Duplicate: 0.02, Reorder: 0.02, Corrupt: 0.01}
			ma, mb := NewMemPair(1500, Faults{Delay: 100 * time.Microsecond}, Faults{Delay: 100 * time.Microsecond}, seed)
			la, lb := NewFaultyLink(ma, f, seed), NewFaultyLink(mb, f, seed+1)
			da, db := NewDemux(la, frame.TypeHeartbeat), NewDemux(lb, frame.TypeHeartbeat)
			msgs := numbered(n)
			for i := range msgs {
				if i%40 == 0 {
					msgs[i] = bytes.Repeat(msgs[i], 100) // fragmented
				}
			}
			stream := linktest.NewStream(msgs, nil)
			b, err := NewConn(db.Rest(), connConfig(2), WithHandler(func(m Message) { stream.Deliver(m.Data, m.TxnID) }))
			if err != nil {
				t.Fatal(err)
			}
			a, err := NewConn(da.Rest(), connConfig(1))
			if err != nil {
				t.Fatal(err)
			}
			// Each side beats every millisecond and counts what it hears,
			// until the stream is in and each has heard enough beats.
			const enough = 20
			stop := make(chan struct{})
			var wg sync.WaitGroup
			heard := make([]int, 2)
			heardEnough := []chan struct{}{make(chan struct{}), make(chan struct{})}
			for i, l := range []*DemuxLink{da.Link(frame.TypeHeartbeat), db.Link(frame.TypeHeartbeat)} {
				wg.Add(2)
				go func() {
					defer wg.Done()
					beat := typedPDU(t, frame.TypeHeartbeat, fmt.Sprint(i))
					for {
						select {
						case <-stop:
							return
						case <-time.After(time.Millisecond):
						}
						l.WriteBatch([][]byte{beat})
					}
				}()
				go func() {
					defer wg.Done()
					pkts := []Packet{{Buf: make([]byte, 1500)}}
					var h frame.Header
					for {
						k, err := l.ReadBatch(pkts)
						if err != nil {
							return
						}
						// The type byte routed it; a corrupted frame may fail
						// its CRC here, but none is of another type.
						if pk := pkts[0].Buf[:pkts[0].N]; k > 0 && frame.Type(pk[demuxTypeOffset]) != frame.TypeHeartbeat {
							t.Errorf("heartbeat link got a frame of type %d", pk[demuxTypeOffset])
						} else if _, err := frame.NewCodec(nil).Decode(pk, &h); err == nil && h.Type != frame.TypeHeartbeat {
							t.Errorf("heartbeat link got a %v frame", h.Type)
						}
						heard[i] += k
						if heard[i] >= enough && heard[i]-k < enough {
							close(heardEnough[i])
						}
					}
				}()
			}
			for i, m := range msgs {
				if err := a.Send(context.Background(), m, uint64(i)); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			select {
			case <-stream.Done():
			case <-time.After(5 * time.Minute): // fake time
				t.Fatalf("seed %d: %d of %d delivered", seed, stream.Got(), n)
			}
			for _, ch := range heardEnough {
				<-ch
			}
			close(stop)
			b.Close()
			a.Close()
			stream.Check(t)
			for _, s := range []SessionStats{a.Stats(), b.Stats()} {
				if s.Drops[DropUnhandledType] != 0 {
					t.Errorf("a Session got %d frames of a type it does not handle", s.Drops[DropUnhandledType])
				}
			}
			// Closing the heartbeat links, the last ones open, closes the links.
			for _, d := range []*Demux{da, db} {
				if err := d.Link(frame.TypeHeartbeat).Close(); err != nil {
					t.Fatal(err)
				}
			}
			wg.Wait()
			if _, err := ma.WriteBatch([][]byte{{1}}); !errors.Is(err, ErrClosed) {
				t.Errorf("link still open after every sub-link closed: %v", err)
			}
			t.Logf("heartbeats heard %v; Rest stats A %+v B %+v", heard, da.Rest().Stats(), db.Rest().Stats())
		})
	})
}

package heartbeat

import (
	"bytes"
	"errors"
	"testing"
)

func sampleHeartbeat() Heartbeat {
	return Heartbeat{
		State: StateUp, Diag: DiagDetectExpired, Multiplier: 4,
		MyDisc: 0x1122334455667788, YourDisc: 0x99aabbccddeeff00, Counter: 42,
		TxTime: 123456789, EchoCounter: 41, EchoTime: 987654321, EchoDelay: 1500,
		Interval: 5000, Lateness: 700, Announce: []byte("role=active"),
	}
}

// TestBodyLayout pins the byte layout documented in docs/WIRE.md.
func TestBodyLayout(t *testing.T) {
	hb := sampleHeartbeat()
	b, err := AppendHeartbeat(nil, &hb)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		1, 3, 1, 0, 4, 11, 0, 0,
		0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
		0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00,
		0, 0, 0, 0, 0, 0, 0, 42,
		0, 0, 0, 0, 0x07, 0x5b, 0xcd, 0x15,
		0, 0, 0, 0, 0, 0, 0, 41,
		0, 0, 0, 0, 0x3a, 0xde, 0x68, 0xb1,
		0, 0, 0x05, 0xdc,
		0, 0, 0x13, 0x88,
		0, 0, 0x02, 0xbc,
	}
	want = append(want, "role=active"...)
	if !bytes.Equal(b, want) {
		t.Fatalf("layout\n got %x\nwant %x", b, want)
	}
	var got Heartbeat
	if err := ParseHeartbeat(b, &got); err != nil {
		t.Fatal(err)
	}
	if !equalHB(&got, &hb) {
		t.Fatalf("round trip: %+v, want %+v", got, hb)
	}
}

func equalHB(a, b *Heartbeat) bool {
	x, y := *a, *b
	xa, ya := x.Announce, y.Announce
	x.Announce, y.Announce = nil, nil
	return fixedPart(x) == fixedPart(y) && bytes.Equal(xa, ya)
}

// TestBodyRefused: each rule of the layout refuses what breaks it.
func TestBodyRefused(t *testing.T) {
	good := sampleHeartbeat()
	b, _ := AppendHeartbeat(nil, &good)
	for name, edit := range map[string]func([]byte) []byte{
		"short":        func(b []byte) []byte { return b[:BodyFixedLen-1] },
		"version":      func(b []byte) []byte { b[offVersion] = 2; return b },
		"state":        func(b []byte) []byte { b[offState] = 4; return b },
		"multiplier":   func(b []byte) []byte { b[offMultiplier] = 0; return b },
		"announce len": func(b []byte) []byte { b[offAnnounceLen]++; return b },
		"trailing":     func(b []byte) []byte { return append(b, 0) },
		"my disc":      func(b []byte) []byte { clear(b[offMyDisc : offMyDisc+8]); return b },
		"your disc up": func(b []byte) []byte { clear(b[offYourDisc : offYourDisc+8]); return b },
		"counter":      func(b []byte) []byte { clear(b[offCounter : offCounter+8]); return b },
		"interval":     func(b []byte) []byte { clear(b[offInterval : offInterval+4]); return b },
	} {
		var hb Heartbeat
		if err := ParseHeartbeat(edit(bytes.Clone(b)), &hb); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	long := good
	long.Announce = make([]byte, MaxAnnounce+1)
	if _, err := AppendHeartbeat(nil, &long); !errors.Is(err, ErrMalformed) {
		t.Errorf("append of a long announce: %v", err)
	}
}

// TestBodyAllocs: Append into a buffer with room and Parse do not allocate.
func TestBodyAllocs(t *testing.T) {
	hb := sampleHeartbeat()
	buf := make([]byte, 0, MaxBodyLen)
	var out Heartbeat
	if n := testing.AllocsPerRun(100, func() {
		b, _ := AppendHeartbeat(buf[:0], &hb)
		if ParseHeartbeat(b, &out) != nil {
			t.Fatal("parse")
		}
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// FuzzHeartbeat: whatever parses re-encodes to the same bytes, and whatever is
// encoded parses back to the same heartbeat.
func FuzzHeartbeat(f *testing.F) {
	hb := sampleHeartbeat()
	b, _ := AppendHeartbeat(nil, &hb)
	f.Add(b)
	hb.State, hb.YourDisc, hb.Announce = StateDown, 0, nil
	b, _ = AppendHeartbeat(nil, &hb)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var hb Heartbeat
		if err := ParseHeartbeat(data, &hb); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		out, err := AppendHeartbeat(nil, &hb)
		if err != nil {
			t.Fatalf("parsed %+v but cannot append it: %v", hb, err)
		}
		// The reserved bytes are ignored on parse and written as zero.
		want := bytes.Clone(data)
		want[6], want[7] = 0, 0
		if !bytes.Equal(out, want) {
			t.Fatalf("re-encoded\n got %x\nwant %x", out, want)
		}
		var again Heartbeat
		if err := ParseHeartbeat(out, &again); err != nil || !equalHB(&again, &hb) {
			t.Fatalf("second parse: %+v, %v", again, err)
		}
	})
}

type fixed struct {
	State, Diag, Flags, Multiplier    uint8
	MyDisc, YourDisc, Counter, TxTime uint64
	EchoCounter, EchoTime             uint64
	EchoDelay, Interval, Lateness     uint32
}

func fixedPart(h Heartbeat) fixed {
	return fixed{uint8(h.State), uint8(h.Diag), h.Flags, h.Multiplier, h.MyDisc, h.YourDisc, h.Counter, h.TxTime,
		h.EchoCounter, h.EchoTime, h.EchoDelay, h.Interval, h.Lateness}
}

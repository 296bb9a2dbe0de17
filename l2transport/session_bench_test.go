package l2transport

import (
	"testing"
	"time"
)

// BenchmarkSessionCore moves 64-byte messages from one Session core to another
// in memory: Send, Ready, Step, ack, Advance, with no link in between. It is the
// protocol's own cost per message, the ceiling for any driver.
func BenchmarkSessionCore(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(byteSize(size), func(b *testing.B) {
			x, y := benchPair(b)
			msg := make([]byte, size)
			now := simEpoch
			delivered := 0
			pump := func() {
				for _, p := range [2][2]*Session{{x, y}, {y, x}} {
					from, to := p[0], p[1]
					from.Tick(now)
					if !from.HasReady() {
						continue
					}
					rd := from.Ready()
					for _, f := range rd.Frames {
						to.Step(f, now)
					}
					delivered += len(rd.Messages)
					from.Advance()
				}
			}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; {
				if err := x.Send(msg, 0); err == nil {
					i++
					if i%256 != 0 {
						continue
					}
				}
				now = now.Add(time.Microsecond)
				pump()
			}
			for delivered < b.N {
				now = now.Add(time.Microsecond)
				pump()
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

func byteSize(n int) string {
	if n >= 1024 {
		return string(rune('0'+n/1024)) + "KiB"
	}
	return "64B"
}

func benchPair(b *testing.B) (*Session, *Session) {
	b.Helper()
	x, err := NewSession(baseConfig(1, 1))
	if err != nil {
		b.Fatal(err)
	}
	y, err := NewSession(baseConfig(2, 2))
	if err != nil {
		b.Fatal(err)
	}
	exchange(x, y, simEpoch)
	if !x.Established() || !y.Established() {
		b.Fatal("not established")
	}
	return x, y
}

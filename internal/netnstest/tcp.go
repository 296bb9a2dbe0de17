//go:build linux

package netnstest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"time"
)

// BulkResult is the outcome of a one-way bulk transfer.
type BulkResult struct {
	Bytes   int64         // bytes the receiver got
	Elapsed time.Duration // from the sender's first write to the receiver's last byte
}

// MBps is the receiver's goodput in megabytes (10^6) per second.
func (r BulkResult) MBps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds()
}

// LatencyResult summarises round-trip times.
type LatencyResult struct {
	Rounds        int
	P50, P99, Max time.Duration
}

// Latencies sorts rtts in place and summarises them.
func Latencies(rtts []time.Duration) LatencyResult {
	if len(rtts) == 0 {
		return LatencyResult{}
	}
	slices.Sort(rtts)
	q := func(f float64) time.Duration { return rtts[min(len(rtts)-1, int(f*float64(len(rtts))))] }
	return LatencyResult{Rounds: len(rtts), P50: q(0.50), P99: q(0.99), Max: rtts[len(rtts)-1]}
}

// tcpPair returns a connected TCP pair: client in A, server end in B.
func (p *Pair) tcpPair() (client, server *net.TCPConn, err error) {
	var ln *net.TCPListener
	err = p.B.Do(func() error {
		var err error
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(p.B.Addr, 0)))
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("netnstest: listen in B: %w", err)
	}
	defer ln.Close()
	accepted := make(chan *net.TCPConn, 1)
	acceptErr := make(chan error, 1)
	go func() {
		ln.SetDeadline(time.Now().Add(5 * time.Second))
		c, err := ln.AcceptTCP()
		if err != nil {
			acceptErr <- err
			return
		}
		accepted <- c
	}()
	err = p.A.Do(func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.Dial("tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		client = c.(*net.TCPConn)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("netnstest: dial from A: %w", err)
	}
	select {
	case server = <-accepted:
		return client, server, nil
	case err := <-acceptErr:
		client.Close()
		return nil, nil, fmt.Errorf("netnstest: accept in B: %w", err)
	}
}

// TCPBulk streams from A to B over one Go TCP connection for about d and
// reports what B received, with the sender and receiver placed per pin (see
// Pin.Apply). Writes are 256 KiB: large enough that syscall overhead does not count.
func TCPBulk(p *Pair, d time.Duration, pin Pin) (BulkResult, error) {
	return TCPStream(p, d, 256<<10, pin)
}

// TCPStream is TCPBulk with writeSize bytes per Write, for baselines of
// batched small messages (writeSize = messages per batch × message size).
func TCPStream(p *Pair, d time.Duration, writeSize int, pin Pin) (BulkResult, error) {
	if writeSize <= 0 {
		return BulkResult{}, fmt.Errorf("netnstest: tcp stream: write size %d", writeSize)
	}
	client, server, err := p.tcpPair()
	if err != nil {
		return BulkResult{}, err
	}
	defer client.Close()
	defer server.Close()

	type recvResult struct {
		n   int64
		end time.Time
		err error
	}
	recvc := make(chan recvResult, 1)
	undo, err := pin.Apply()
	if err != nil {
		return BulkResult{}, err
	}
	defer undo()
	go func() {
		buf := make([]byte, 256<<10)
		var n int64
		for {
			k, err := server.Read(buf)
			n += int64(k)
			if errors.Is(err, io.EOF) {
				recvc <- recvResult{n: n, end: time.Now()}
				return
			}
			if err != nil {
				recvc <- recvResult{n: n, err: err}
				return
			}
		}
	}()

	start, serr := func() (time.Time, error) {
		buf := make([]byte, writeSize)
		start := time.Now()
		stop := start.Add(d)
		for time.Now().Before(stop) {
			if _, err := client.Write(buf); err != nil {
				return start, fmt.Errorf("netnstest: tcp write: %w", err)
			}
		}
		return start, client.CloseWrite()
	}()
	if serr != nil {
		client.Close()
		<-recvc
		return BulkResult{}, serr
	}
	r := <-recvc
	if r.err != nil {
		return BulkResult{}, fmt.Errorf("netnstest: tcp read: %w", r.err)
	}
	return BulkResult{Bytes: r.n, Elapsed: r.end.Sub(start)}, nil
}

// TCPPingPong bounces a size-byte message between A and B rounds times over
// one Go TCP connection (Nagle off, Go's default) and returns the round-trip
// times seen by A, after a short warm-up that is not counted. A's side runs on
// pin.Sender, B's echo on pin.Receiver.
func TCPPingPong(p *Pair, rounds, size int, pin Pin) (LatencyResult, error) {
	client, server, err := p.tcpPair()
	if err != nil {
		return LatencyResult{}, err
	}
	defer client.Close()
	defer server.Close()

	echoErr := make(chan error, 1)
	undo, err := pin.Apply()
	if err != nil {
		return LatencyResult{}, err
	}
	defer undo()
	go func() {
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(server, buf); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				echoErr <- err
				return
			}
			if _, err := server.Write(buf); err != nil {
				echoErr <- err
				return
			}
		}
	}()

	const warmup = 100
	buf := make([]byte, size)
	rtts := make([]time.Duration, 0, rounds)
	for i := range warmup + rounds {
		t0 := time.Now()
		if _, err := client.Write(buf); err != nil {
			return LatencyResult{}, fmt.Errorf("netnstest: ping write: %w", err)
		}
		if _, err := io.ReadFull(client, buf); err != nil {
			return LatencyResult{}, fmt.Errorf("netnstest: pong read: %w", err)
		}
		if i >= warmup {
			rtts = append(rtts, time.Since(t0))
		}
	}
	client.CloseWrite()
	if err := <-echoErr; err != nil {
		return LatencyResult{}, fmt.Errorf("netnstest: echo: %w", err)
	}
	return Latencies(rtts), nil
}

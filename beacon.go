package swha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// BeaconConfig configures a death beacon (FailoverConfig.Beacon): a TCP
// connection from each node to the other's listener, over any network the
// two share (the management network, or addresses on the HA interface).
// Nothing is sent on it. When a node's process dies, killed or crashed,
// its kernel closes the connection at once, and the peer hears that
// without waiting out a detection time: the heartbeat paths then confirm
// the death after heartbeat.CarrierHold intervals without a live heartbeat
// (heartbeat.Path.PeerGone). A lost connection never declares anything
// alone, so neither a forged reset nor a broken network takes down a peer
// that still heartbeats. A frozen, hung or powered-off peer closes nothing:
// silence (Interval × Multiplier) catches those.
type BeaconConfig struct {
	// Listen is this node's address (host:port) for the peer's connection.
	Listen string
	// Peer is the peer's Listen address.
	Peer string
}

// BeaconMultiplier is FailoverConfig.Multiplier's default with a beacon:
// 100 × 5 ms. A process death is reported by the beacon in a few
// milliseconds, so silence has to catch only freezes, hangs and power
// loss, and can ride out the scheduling stalls of a saturated machine
// (seen here: heartbeat runners late by up to 290 ms; at 40 × 5 ms one
// false failover in 120 s) instead of failing over on them.
const BeaconMultiplier = 100

// beaconMaxConns bounds the connections a beacon holds: its own and the
// peer's, plus room for a peer's reconnection racing the end of its last.
const beaconMaxConns = 4

// beaconRedial bounds the wait between two connection attempts.
const beaconRedial = 200 * time.Millisecond

// beacon runs both ends: it accepts the peer's connection and holds it (its
// closing is what the peer hears), and keeps a connection of its own to the
// peer, whose loss it reports through gone.
type beacon struct {
	ln    net.Listener
	peer  string
	gone  func()
	log   *slog.Logger
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{} // open, closed by close
	up    atomic.Bool
	lost  atomic.Uint64 // connections to the peer lost after being up
}

func startBeacon(cfg BeaconConfig, gone func(), log *slog.Logger) (*beacon, error) {
	if cfg.Listen == "" || cfg.Peer == "" {
		return nil, errors.New("beacon: Listen and Peer are both required")
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("beacon: listen: %w", err)
	}
	b := &beacon{ln: ln, peer: cfg.Peer, gone: gone, log: log, conns: map[net.Conn]struct{}{}}
	b.ctx, b.stop = context.WithCancel(context.Background())
	b.wg.Add(2)
	go b.accept()
	go b.dial()
	return b, nil
}

// track registers c to be closed by close; false if closing already.
func (b *beacon) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx.Err() != nil {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *beacon) tracked() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

func (b *beacon) untrack(c net.Conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
	c.Close()
}

// accept holds every connection the peer makes until it ends.
func (b *beacon) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			if b.ctx.Err() == nil {
				b.log.Warn("beacon: accept", "err", err)
			}
			return
		}
		if !b.track(c) {
			c.Close()
			return
		}
		if b.tracked() > beaconMaxConns {
			// The peer needs one; more is someone else holding sockets.
			b.untrack(c)
			continue
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			drain(c)
			b.untrack(c)
		}()
	}
}

// dial keeps a connection to the peer; the end of one that was up is the
// report.
func (b *beacon) dial() {
	defer b.wg.Done()
	d := net.Dialer{Timeout: time.Second}
	for b.ctx.Err() == nil {
		c, err := d.DialContext(b.ctx, "tcp", b.peer)
		if err == nil && b.track(c) {
			b.up.Store(true)
			drain(c)
			b.up.Store(false)
			b.untrack(c)
			if b.ctx.Err() != nil {
				return
			}
			b.lost.Add(1)
			b.log.Info("beacon: the connection to the peer ended; its process may be gone", "peer", b.peer)
			b.gone()
		} else if c != nil {
			c.Close()
		}
		select {
		case <-b.ctx.Done():
		case <-time.After(beaconRedial):
		}
	}
}

// drain reads c until it ends: nothing is sent on a beacon, so what ends it
// is the peer's kernel closing it, or a reset.
func drain(c net.Conn) {
	var buf [64]byte
	for {
		if _, err := c.Read(buf[:]); err != nil {
			return
		}
	}
}

// close ends both ends; the peer hears it as this node's process going,
// which is what a Close is.
func (b *beacon) close() {
	b.mu.Lock()
	b.stop()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.ln.Close()
	b.wg.Wait()
}

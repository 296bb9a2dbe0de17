package l2transport

import (
	"errors"
	"fmt"
	"time"

	"github.com/swha/swha/frame"
)

// SessionConfig configures a Session. Zero fields take the defaults documented on
// each; LocalNodeID, Epoch and MaxPDU are required.
type SessionConfig struct {
	// LocalNodeID is written in every frame and must differ from the peer's.
	LocalNodeID uint64
	// PeerNodeID, if not zero, is the only node ID accepted; zero learns the peer
	// from the first Hello and then sticks to it for the Session's lifetime.
	PeerNodeID uint64
	// Epoch is this Session's incarnation. It must be non-zero and must be newer,
	// in RFC 1982 serial arithmetic, than the epoch of any earlier incarnation of
	// this node (a boot counter, the failover generation or a clock-derived value),
	// because the peer tells a restart from a delayed old frame by comparing
	// epochs.
	Epoch uint32
	// Incarnation tells this Session apart from every other incarnation of
	// the node, even one that (wrongly) has the same Epoch: it travels in
	// Hello and HelloAck, and a peer that sees a new one under an epoch it
	// already knows restarts the stream (EventPeerRestarted with EpochReused)
	// instead of taking the newcomer for the incarnation it was talking to.
	// It also picks the initial sequence number, so that a dead
	// incarnation's late frames fall outside the new stream. Zero, the
	// default, draws a random one; set it only to make a test replay.
	Incarnation uint64

	// MaxPDU is the largest PDU the link carries (Link.MaxPDU).
	MaxPDU int
	// Keyring, if set, signs every frame and refuses unsigned or forged ones;
	// an AEAD ring (frame.NewAEADKeyring) also encrypts every payload. Its send
	// key must not be bound to another node than LocalNodeID.
	Keyring *frame.Keyring

	// MaxMessage bounds one message (default 64 MiB, at most 4 GiB-1 because the
	// fragment offset is 32 bits). Both ends should agree.
	MaxMessage int
	// SendBuffer bounds the bytes queued or unacknowledged (default 16 MiB). A
	// message larger than SendBuffer is still accepted when the buffer is empty, so
	// the bound on memory is max(SendBuffer, MaxMessage).
	SendBuffer int
	// RecvWindow is how many frames beyond the next expected one the receiver
	// buffers out of order; it is also the largest window it advertises (default
	// 1024).
	RecvWindow int
	// RecvBuffer bounds the bytes of complete messages held for the application
	// plus out-of-order frames; the advertised window shrinks as it fills, which is
	// what stops a fast sender from overrunning a slow application (default 16 MiB).
	RecvBuffer int

	// AckEvery acknowledges at once after this many in-order data frames (default 4);
	// fewer frames are acknowledged after AckDelay (default 1 ms).
	AckEvery int
	AckDelay time.Duration

	// InitialRTO applies before the first RTT sample (default 100 ms); the RTO is
	// clamped to [MinRTO, MaxRTO] (defaults 5 ms and 1 s). MaxRTO also bounds how
	// long a healed partition takes to resume.
	InitialRTO time.Duration
	MinRTO     time.Duration
	MaxRTO     time.Duration
	// DupThresh is how many frames selectively acknowledged above an unacknowledged
	// one make it count as lost (default 3, as in RFC 6675).
	DupThresh int

	// HelloInterval is how often Hello is repeated until the stream is established
	// (default 100 ms).
	HelloInterval time.Duration
	// KeepaliveInterval: after this long without sending, an established Session
	// sends an Ack with AckRequest so that both ends keep hearing each other
	// (default 100 ms).
	KeepaliveInterval time.Duration
	// DeadInterval: after this long without a valid frame from the peer, the
	// Session emits EventPeerSilent once (default 1 s).
	DeadInterval time.Duration

	// MaxBurst bounds the data frames one Ready produces, so that output buffers
	// stay small and acks interleave with data (default 256).
	MaxBurst int
}

// Defaults for SessionConfig.
const (
	DefaultMaxMessage        = 64 << 20
	DefaultSendBuffer        = 16 << 20
	DefaultRecvWindow        = 1024
	DefaultRecvBuffer        = 16 << 20
	DefaultAckEvery          = 4
	DefaultAckDelay          = time.Millisecond
	DefaultInitialRTO        = 100 * time.Millisecond
	DefaultMinRTO            = 5 * time.Millisecond
	DefaultMaxRTO            = time.Second
	DefaultDupThresh         = 3
	DefaultHelloInterval     = 100 * time.Millisecond
	DefaultKeepaliveInterval = 100 * time.Millisecond
	DefaultDeadInterval      = time.Second
	DefaultMaxBurst          = 256
)

// helloLen is the Hello/HelloAck payload a receiver requires: peer epoch
// seen (4), peer ISN seen (8), receive window in frames (4). helloExtLen adds
// the sender's incarnation (8) and the peer incarnation seen (8); a sender
// before the extension sends helloLen bytes, and a receiver before it ignores
// the bytes beyond, so either end may be older. helloCtrLen adds the sender's
// hello counter (8), which grows with every Hello and HelloAck a Session
// sends, so that a replayed or duplicated one is told from a new one.
const (
	helloLen    = 16
	helloExtLen = helloLen + 16
	helloCtrLen = helloExtLen + 8
)

// The TypeAck payload: receive window in frames (4), then the sender's ack
// counter (8), which increases with every ack it sends so that a replayed
// or duplicated ack is not mistaken for a sign of life.
const (
	ackWndLen = 4
	ackLen    = ackWndLen + 8
)

func (c *SessionConfig) withDefaults() (SessionConfig, error) {
	cfg := *c
	if cfg.LocalNodeID == 0 {
		return cfg, errors.New("l2transport: session: LocalNodeID is required")
	}
	if cfg.PeerNodeID == cfg.LocalNodeID {
		return cfg, errors.New("l2transport: session: PeerNodeID equals LocalNodeID")
	}
	if cfg.Epoch == 0 {
		return cfg, errors.New("l2transport: session: Epoch must be non-zero")
	}
	if cfg.Keyring != nil {
		if err := cfg.Keyring.CheckSender(cfg.LocalNodeID); err != nil {
			return cfg, fmt.Errorf("l2transport: session: %w", err)
		}
	}
	// A data frame must hold the header, four SACK blocks, the trailers and at
	// least a little payload, or fragmentation makes no progress.
	minPDU := cfg.Keyring.Len(frame.MaxSACK, 64)
	if cfg.MaxPDU < minPDU {
		return cfg, fmt.Errorf("l2transport: session: MaxPDU %d is below the minimum %d", cfg.MaxPDU, minPDU)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.MaxMessage, DefaultMaxMessage)
	if int64(cfg.MaxMessage) > 1<<32-1 {
		return cfg, fmt.Errorf("l2transport: session: MaxMessage %d exceeds the 32-bit fragment offset", cfg.MaxMessage)
	}
	def(&cfg.SendBuffer, DefaultSendBuffer)
	def(&cfg.RecvWindow, DefaultRecvWindow)
	def(&cfg.RecvBuffer, DefaultRecvBuffer)
	def(&cfg.AckEvery, DefaultAckEvery)
	defD(&cfg.AckDelay, DefaultAckDelay)
	defD(&cfg.InitialRTO, DefaultInitialRTO)
	defD(&cfg.MinRTO, DefaultMinRTO)
	defD(&cfg.MaxRTO, DefaultMaxRTO)
	def(&cfg.DupThresh, DefaultDupThresh)
	defD(&cfg.HelloInterval, DefaultHelloInterval)
	defD(&cfg.KeepaliveInterval, DefaultKeepaliveInterval)
	defD(&cfg.DeadInterval, DefaultDeadInterval)
	def(&cfg.MaxBurst, DefaultMaxBurst)
	if cfg.MinRTO > cfg.MaxRTO {
		return cfg, fmt.Errorf("l2transport: session: MinRTO %v above MaxRTO %v", cfg.MinRTO, cfg.MaxRTO)
	}
	return cfg, nil
}

package swha

import (
	"context"
	"fmt"
)

// batchSink is the active store's RecordSink. It copies a commit's records
// into one buffer and hands them to the session in batches (Conn.SendBatch):
// one lock and one flush per batch instead of per record is what lets a
// stream of small records keep up with the store. While no standby is
// streaming (solo, or before its snapshot) it drops records: the snapshot a
// standby gets when it joins carries the state they made.
type batchSink struct {
	n    *Node
	ctx  context.Context
	txn  uint64
	buf  []byte
	ends []int
	msgs [][]byte
	err  error
}

// Flush thresholds: a batch is sent when it reaches either, so a large
// transaction streams while it is still being emitted and memory stays
// bounded.
const (
	sinkMaxRecords = 512
	sinkMaxBytes   = 256 << 10
)

func (s *batchSink) begin(ctx context.Context, txn uint64) {
	s.ctx, s.txn, s.err = ctx, txn, nil
	s.buf, s.ends = s.buf[:0], s.ends[:0]
}

// WriteRecord implements objstore.RecordSink.
func (s *batchSink) WriteRecord(rec []byte) error {
	if s.err != nil {
		return s.err
	}
	n := s.n
	n.mu.Lock()
	on := n.streaming && n.peerUp
	n.mu.Unlock()
	if !on {
		return nil
	}
	s.buf = append(s.buf, rec...)
	s.ends = append(s.ends, len(s.buf))
	if len(s.ends) >= sinkMaxRecords || len(s.buf) >= sinkMaxBytes {
		return s.flush()
	}
	return nil
}

// flush sends the batched records. After a failure the stream to the
// standby has a hole, so every later record is refused until the next
// snapshot (the caller asks for one).
func (s *batchSink) flush() error {
	if s.err != nil || len(s.ends) == 0 {
		return s.err
	}
	s.msgs = s.msgs[:0]
	start := 0
	for _, end := range s.ends {
		s.msgs = append(s.msgs, s.buf[start:end])
		start = end
	}
	_, err := s.n.conn.SendBatch(s.ctx, s.msgs, s.txn)
	clear(s.msgs)
	s.buf, s.ends = s.buf[:0], s.ends[:0]
	if err != nil {
		s.err = fmt.Errorf("swha: send records of txn %d: %w", s.txn, err)
	}
	return s.err
}

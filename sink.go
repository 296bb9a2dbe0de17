package swha

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/swha/swha/internal/replica"
	"github.com/swha/swha/l2transport"
	"github.com/swha/swha/objstore"
)

// batchSink is the active store's RecordSink. It copies a commit's records
// into one buffer and hands them to the session in batches (Conn.SendBatch):
// one lock and one flush per batch instead of per record is what lets a
// stream of small records keep up with the store. While no standby is
// streaming (solo, or before its snapshot) it sends nothing: the snapshot a
// standby gets when it joins carries the state the records made.
//
// With the replay log on, a commit's records stay in the buffer,
// sent or not, and the log copies them when the commit ends.
type batchSink struct {
	conn *l2transport.Conn
	// on says whether a standby follows the stream (Node.streamOn).
	on   *atomic.Bool
	log  *replica.Log
	ctx  context.Context
	txn  uint64
	buf  []byte
	ends []int
	// keep: this is a commit for the replay log, not a snapshot. sent is
	// how many records of buf the session has had (or will never get:
	// nobody was streaming); seq is the commit's, once its Commit record
	// has passed.
	keep bool
	sent int
	seq  uint64
	msgs [][]byte
	err  error
}

// Flush thresholds: a batch is sent when it reaches either, so a large
// transaction streams while it is still being emitted and, without a replay
// log, memory stays bounded.
const (
	sinkMaxRecords = 512
	sinkMaxBytes   = 256 << 10
)

func (s *batchSink) begin(ctx context.Context, txn uint64) {
	s.ctx, s.txn, s.err = ctx, txn, nil
	s.buf, s.ends = s.buf[:0], s.ends[:0]
	s.sent, s.seq = 0, 0
	s.keep = txn != 0 && s.log.Enabled()
}

// WriteRecord implements objstore.RecordSink.
func (s *batchSink) WriteRecord(rec []byte) error {
	if s.err != nil {
		return s.err
	}
	on := s.on.Load()
	if !on && !s.keep {
		return nil
	}
	s.buf = append(s.buf, rec...)
	s.ends = append(s.ends, len(s.buf))
	if s.keep {
		if seq, ok := objstore.CommitSeq(rec); ok {
			s.seq = seq
		}
	}
	if !on {
		s.sent = len(s.ends) // for the log only
		return nil
	}
	if len(s.ends)-s.sent >= sinkMaxRecords || len(s.buf)-s.offset(s.sent) >= sinkMaxBytes {
		return s.flush()
	}
	return nil
}

// offset is where record i starts in buf.
func (s *batchSink) offset(i int) int {
	if i == 0 {
		return 0
	}
	return s.ends[i-1]
}

// flush sends the records not sent yet and, once the commit is whole, hands
// its buffer to the replay log. After a send failure the stream to the
// standby has a hole, so every later record is refused until the next
// snapshot (the caller asks for one).
func (s *batchSink) flush() error {
	if s.err == nil && len(s.ends) > s.sent {
		s.msgs = replica.AppendRecords(s.msgs[:0], s.buf, s.offset(s.sent), s.ends[s.sent:])
		_, err := s.conn.SendBatch(s.ctx, s.msgs, s.txn)
		clear(s.msgs)
		s.sent = len(s.ends)
		if err != nil {
			s.err = fmt.Errorf("swha: send records of txn %d: %w", s.txn, err)
		}
	}
	switch {
	case !s.keep:
		s.reset()
	case s.seq != 0:
		// The whole commit is here (its Commit record came last), sent or
		// not: the local commit stands either way.
		s.log.Keep(s.seq, s.buf, s.ends)
		s.reset()
	}
	return s.err
}

// reset empties the buffers for the next batch, letting the collector have
// those a rare huge transaction grew.
func (s *batchSink) reset() {
	if cap(s.buf) > sinkKeepBytes {
		s.buf, s.ends = nil, nil
	}
	s.buf, s.ends, s.sent, s.seq = s.buf[:0], s.ends[:0], 0, 0
}

// sinkKeepBytes bounds the buffer the sink keeps between commits.
const sinkKeepBytes = 1 << 20

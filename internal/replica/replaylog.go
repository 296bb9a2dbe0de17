package replica

// DefaultReplayBytes is the replay log's budget when the node's is zero.
const DefaultReplayBytes = 32 << 20

// NewLog returns a replay log of max bytes (negative: keep nothing, so
// every standby gets a snapshot).
func NewLog(max int) *Log {
	if max == 0 {
		max = DefaultReplayBytes
	}
	return &Log{max: max}
}

// Enabled reports whether the log keeps anything.
func (l *Log) Enabled() bool { return l.max >= 0 }

// Records appends to dst the records of the logged commit.
func (e Entry) Records(dst [][]byte) [][]byte { return AppendRecords(dst, e.Data, 0, e.Ends) }

// AppendRecords appends to dst the records of data that end at ends, the
// first starting at start.
func AppendRecords(dst [][]byte, data []byte, start int, ends []int) [][]byte {
	for _, end := range ends {
		dst = append(dst, data[start:end])
		start = end
	}
	return dst
}

// Log keeps the records of the latest commits, up to a byte budget,
// oldest first. It belongs to the active's write path: the sink hands it
// each commit's records; a replay or a repair reads it.
//
// The records are copied into large chunks rather than kept in a buffer per
// commit: a stream of small commits then costs one chunk allocation per
// megabyte, not a buffer grown by doubling per commit (measured: of the
// active's allocations while streaming a million routes in commits of 100,
// the per-commit buffers were a fifth of the bytes, and each was fresh memory
// to fault in and for the collector to chase), and a full log turns over by
// reusing the chunks that fell off it.
type Log struct {
	max    int // bytes; negative: keep nothing
	size   int
	ents   []Entry
	chunks []*chunk // oldest first; the last one is being filled
	spare  []*chunk // chunks that fell off the log, for reuse
}

// Entry is one logged commit; its slices belong to the log.
type Entry struct {
	Seq   uint64
	Data  []byte // the commit's records, back to back
	Ends  []int  // where each record ends in Data
	chunk *chunk
}

// chunk holds the records and record ends of consecutive commits.
type chunk struct {
	data []byte
	ends []int
	live int // entries of the log in this chunk
}

// Chunk sizes: a commit larger than a chunk gets a chunk of its own, which
// is not reused.
const (
	chunkBytes     = 1 << 20
	chunkEnds      = chunkBytes / 32
	maxReplaySpare = 2
)

// Keep copies the records of commit seq (data, split at ends; the caller
// keeps both) into the log and drops the oldest commits beyond the budget.
func (l *Log) Keep(seq uint64, data []byte, ends []int) {
	c := l.room(len(data), len(ends))
	start := len(c.data)
	c.data = append(c.data, data...)
	e := Entry{Seq: seq, Data: c.data[start:len(c.data):len(c.data)], chunk: c}
	start = len(c.ends)
	c.ends = append(c.ends, ends...)
	e.Ends = c.ends[start:len(c.ends):len(c.ends)]
	c.live++
	l.ents = append(l.ents, e)
	l.size += len(data)
	for l.size > l.max && len(l.ents) > 1 {
		old := l.ents[0]
		l.size -= len(old.Data)
		l.ents[0] = Entry{}
		l.ents = l.ents[1:]
		// The newest entry is in the last chunk, so a chunk emptied here is
		// an older one, and entries leave in order: it is the oldest.
		if old.chunk.live--; old.chunk.live == 0 {
			l.chunks[0] = nil
			l.chunks = l.chunks[1:]
			if len(l.spare) < maxReplaySpare && cap(old.chunk.data) == chunkBytes {
				old.chunk.data, old.chunk.ends = old.chunk.data[:0], old.chunk.ends[:0]
				l.spare = append(l.spare, old.chunk)
			}
		}
	}
}

// room returns the chunk to copy a commit of n bytes and k records into.
func (l *Log) room(n, k int) *chunk {
	if len(l.chunks) > 0 {
		c := l.chunks[len(l.chunks)-1]
		if len(c.data)+n <= cap(c.data) && len(c.ends)+k <= cap(c.ends) {
			return c
		}
	}
	var c *chunk
	if j := len(l.spare); j > 0 && n <= chunkBytes && k <= chunkEnds {
		c = l.spare[j-1]
		l.spare[j-1] = nil
		l.spare = l.spare[:j-1]
	} else {
		c = &chunk{
			data: make([]byte, 0, max(n, chunkBytes)),
			ends: make([]int, 0, max(k, chunkEnds)),
		}
	}
	l.chunks = append(l.chunks, c)
	return c
}

// Entry returns the logged commit with sequence number seq, if the log holds
// it.
func (l *Log) Entry(seq uint64) (Entry, bool) {
	for _, e := range l.ents {
		if e.Seq == seq {
			return e, true
		}
	}
	return Entry{}, false
}

// Since returns the commits after seq from through to, and false unless the
// log holds every one of them.
func (l *Log) Since(from, to uint64) ([]Entry, bool) {
	if l.max < 0 {
		return nil, false // no log: always a snapshot
	}
	if from == to {
		return nil, true
	}
	for i, e := range l.ents {
		if e.Seq != from+1 {
			continue
		}
		out := l.ents[i:]
		for k, e := range out {
			if e.Seq != from+1+uint64(k) {
				return nil, false // a commit whose records did not all reach the log
			}
		}
		return out, out[len(out)-1].Seq == to
	}
	return nil, false
}

package replica

import (
	"bytes"
	"fmt"
	"testing"
)

// TestReplayLogTurnover fills a log far beyond its budget, with commits of
// varied sizes and one larger than a chunk, and checks that what it still
// holds is exactly the latest commits, record by record, after its chunks
// have been dropped and reused many times over.
func TestReplayLogTurnover(t *testing.T) {
	const budget = 3 * chunkBytes
	l := Log{max: budget}
	commit := func(seq uint64) ([]byte, []int) {
		var data []byte
		var ends []int
		n := 1 + int(seq%97)
		if seq%1000 == 0 {
			n = chunkBytes/64 + 10 // one commit larger than a chunk
		}
		for r := range n {
			data = fmt.Appendf(data, "commit %d record %d %s;", seq, r, bytes.Repeat([]byte{'x'}, int(seq%13)))
			ends = append(ends, len(data))
		}
		return data, ends
	}
	const last = 5000
	for seq := uint64(1); seq <= last; seq++ {
		data, ends := commit(seq)
		l.Keep(seq, data, ends)
		// The caller reuses its buffers: the log must not alias them.
		clear(data)
	}
	if l.size > budget {
		t.Fatalf("log holds %d bytes, budget %d", l.size, budget)
	}
	first := l.ents[0].Seq
	got, ok := l.Since(first-1, last)
	if !ok || len(got) != int(last-first+1) {
		t.Fatalf("since(%d, %d) = %d entries, %v", first-1, last, len(got), ok)
	}
	for _, e := range got {
		data, ends := commit(e.Seq)
		if !bytes.Equal(e.Data, data) || fmt.Sprint(e.Ends) != fmt.Sprint(ends) {
			t.Fatalf("commit %d: log holds %d bytes / %d records, want %d / %d", e.Seq, len(e.Data), len(e.Ends), len(data), len(ends))
		}
	}
	if len(l.chunks) > budget/chunkBytes+2 {
		t.Fatalf("log holds %d chunks for a budget of %d bytes", len(l.chunks), budget)
	}
}

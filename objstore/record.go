package objstore

// Record format
//
// A commit produces an ordered list of records. Each record is one message
// of the reliable session (the transport delimits records; a record never
// carries its own length). Integers are unsigned LEB128 varints ("uv") unless
// noted; "str" is uv length + bytes; "value" is the value encoding documented
// in codec.go. Record kinds:
//
//	1 Schema       kind uv(typeID) schema-bytes            (not transactional)
//	2 Group        kind uv(groupID) str(name) str(prefix)  (not transactional)
//	3 Create       kind uv(txn) uv(objID) uv(typeID) uv(groupID, 0 = none) value(all fields)
//	4 Update       kind uv(txn) uv(objID) uv(typeID) uv(n) n × { uv(fieldIndex) value(field) }
//	5 Delete       kind uv(txn) uv(objID) uv(typeID)
//	6 DeleteGroup  kind uv(txn) uv(groupID)
//	7 Message      kind uv(txn) uv(typeID) value(all fields)
//	8 Intent       kind uv(txn) opaque-bytes
//	9 Commit       kind uv(txn) uv(seq) uv(records)
//	10 Abort       kind uv(txn)
//	11 Coord       kind uv(txn) uv(coordID) uv(participants) str(participant)
//	12 Snapshot    kind uv(txn)
//
// typeID is the sender's local type number; a Schema record announcing it
// (wire name, layout, fingerprint) precedes its first use on a stream, and the
// receiver maps it to its own type by wire name. Likewise a Group record
// precedes the first use of a group ID. fieldIndex is the position of the
// field in the sender's schema. Object IDs with the top bit set are static
// objects: FNV-1a-64 of the static name with the top bit forced, the same on
// both sides without any record; other IDs are dynamic, assigned in creation
// order by the active and never reused.
//
// A transaction is the records carrying its txn ID followed by its Commit
// record; seq numbers commits 1, 2, 3… in commit order on a stream, and
// records counts the transaction's records (schema and group records
// excluded), so a receiver detects a lost record or commit. The receiver
// stages records by txn ID and applies them, all or nothing, when the Commit
// arrives; Intent records are kept until then and handed back if the
// transaction is discarded (promotion with the commit missing). Abort, or a
// stream cut before Commit, leaves no trace on the receiver.
//
// A Coord record, first in its transaction, makes the transaction one part of
// coordinated transaction coordID, committed by the named participant, out
// of participants parts. The receiver holds a committed part until every
// part has committed and then applies all parts at once. Commits are applied
// in commit order: anything committed after a held part waits behind it, so a
// coordinated transaction never applies before an earlier one it depends on.
//
// A Snapshot record, first in its transaction, makes the transaction the
// whole state of the sender: a Create for every dynamic object and an Update
// with every field for every static object the peer holds. Its Commit
// carries the sender's current seq rather than the next one. The receiver
// replaces all its dynamic objects with the snapshot's, atomically, and
// continues the stream from that seq. After AwaitSnapshot the receiver drops
// every transactional record until a Snapshot starts.

const (
	recSchema      = 1
	recGroup       = 2
	recCreate      = 3
	recUpdate      = 4
	recDelete      = 5
	recDeleteGroup = 6
	recMessage     = 7
	recIntent      = 8
	recCommit      = 9
	recAbort       = 10
	recCoord       = 11
	recSnapshot    = 12
)

// RecordSink receives the records of each commit, in order. rec is only valid
// during the call: a sink that keeps it must copy it. The sink runs on the
// committing goroutine without the store's lock (it may read the store, and
// may block for flow control) while the transaction is still open (it cannot
// begin another). An error from the sink fails the commit after the local
// change (see Txn.Commit).
type RecordSink interface {
	WriteRecord(rec []byte) error
}

// SinkFunc adapts a function to RecordSink.
type SinkFunc func(rec []byte) error

// WriteRecord calls f(rec).
func (f SinkFunc) WriteRecord(rec []byte) error { return f(rec) }

// Discard is a RecordSink that drops every record (benchmarks, solo mode).
var Discard RecordSink = SinkFunc(func([]byte) error { return nil })

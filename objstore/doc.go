// Package objstore replicates registered Go objects transactionally: an active
// store turns object changes into a stream of compact records, and a standby
// store applies that stream atomically per transaction. The application writes
// no serialization code: schemas are derived by reflection from its structs.
//
// The package is pure: it does no I/O and owns no goroutines. The active side
// hands records to a RecordSink; whatever carries them (the reliable session
// of l2transport, a test, a checkpoint file) feeds them to the standby's
// Apply. The record format is documented in record.go, the value encoding in
// codec.go and the schema encoding at Schema.AppendBinary.
//
// # Design choices
//
// Registration compiles each type once into a plan of field offsets, so the
// codec reads and writes the application's memory through unsafe pointers
// and never builds a reflect.Value per field in the steady state (maps are
// the exception: they go through reflect).
//
// The active keeps, per object, a shadow: a typed deep copy of what the peer
// holds (strings and pointers to other objects are shared, slices and maps
// are copied). A shadow costs about one object of memory on the active, and
// buys change detection by memory compare: the fixed-size fields of a struct
// are grouped into runs of adjacent bytes (padding excluded) compared with
// one memcmp each, and only a run that differs is examined field by field.
// An encoded-bytes shadow would be smaller but would cost an encode per object
// scanned, which is what Sync (transparent mode) cannot afford at a million
// objects. A typed shadow also keeps the targets of its pointers alive, so a
// freed and reused address can never make a changed pointer look unchanged.
//
// The standby keeps no shadow: its memory is the objects plus a 48-byte
// entry per object in a slab and 4 bytes in a paged ID index, which is what
// keeps its overhead ratio near 1.6 for a route-sized object. Promote builds
// the active-only parts (address index, shadows) in one pass; Demote drops
// them again, for an active that lost a split and takes the winner's
// snapshot in place of its own state (demote.go).
//
// Commit cost depends on what changed, not on the store's size: Update looks
// the object up in an open-addressing address index, diffs it against its
// shadow and encodes the changed fields; nothing walks the store except Sync.
// A Delete of an object committed objects still point to is refused; the
// active knows it without a scan because it counts, per object, the
// pointers to it that the shadows hold, and the counts change only with the
// pointer fields a commit copies into the shadows (refcount.go).
//
// Pointers travel as object IDs, and pointers into another object (a field,
// or an element of an array field, of an object of the type named by the
// into= tag option) as an ID and a path of field and array indexes, which a
// later version of the type can still follow. A standby validates a whole
// transaction, pointers included, before it changes anything; objects created
// by the transaction exist before any of its records is decoded, so pointers
// to objects created later in the same transaction resolve.
//
// A new or returning peer gets a Snapshot: the whole committed state as one
// transaction, which the standby applies atomically in place of its dynamic
// objects. Coordinated transactions (Txn.Coordinate) are held on the standby
// until every part has committed and then applied together; commits are
// applied in commit order, so a held part also holds what follows it.
//
// A peer running another version of a type (a rolling upgrade) is handled by
// mapping its schema onto the local one by wire name (transform.go): every
// record is decoded into the local layout, and a value that does not fit
// fails its transaction with a TransformError.
//
// An application reads a store through its View (Store.View), which says
// of each method from where it may be called: the write path stays with the
// store's owner, and on a standby the objects are only read while no Apply
// runs (inside View.Read, ReadWith, Each, or a subscriber callback).
//
// Checkpoints (Save, Load, SaveFile, LoadFile) write the committed state to a
// file in the record format, so that loading one goes through Apply, version
// transformation included; Leaks reports dynamic objects no root reaches.
//
// Types registered with InArena live in memory the store maps itself
// (arena.go), write-protected through userfaultfd in asynchronous mode, so
// that Sync learns from PAGEMAP_SCAN which pages were written since the last
// Sync and diffs only the objects on them; where the kernel lacks that, Sync
// diffs every object as before (docs/OBJSTORE-ARENA.md).
//
// Not supported yet: pointers into elements of slices (only fields and array
// elements), and a bulk sync that streams while the active keeps committing
// (Snapshot is one transaction between two commits).
package objstore

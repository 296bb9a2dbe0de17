package objstore

// View is the read side of a Store: what an application may use without
// taking part in the write path (Begin…Commit on the active, Apply on the
// standby), which belongs to the store's owner.
//
// Who may call what, and where:
//
//   - From any goroutine, at any time: Registry, GroupView.Name and
//     GroupView.Len (they take no lock).
//   - From any goroutine, and inside a subscriber or message callback (which
//     run with no lock of the store held), but never inside Read, ReadWith
//     or Each: every other method. They take the store's lock, and a read
//     lock taken again by a goroutine that already holds it deadlocks as
//     soon as a writer waits between the two.
//   - Inside ReadWith: the Reader's methods, which use the lock the call
//     already holds.
//
// On a standby, Apply writes the mirror's objects in place: read their
// fields only inside Read, ReadWith, Each or a subscriber callback, where
// no Apply runs. On the active the application owns its objects and reads
// them as it likes.
type View struct{ s *Store }

// View returns the store's read view. Every call returns the same View.
func (s *Store) View() *View { return &s.view }

// Get returns the committed object with the given ID. Any goroutine, and
// inside a callback; not inside Read, ReadWith or Each.
func (v *View) Get(id uint64) (any, bool) { return v.s.Get(id) }

// IDOf returns the ID of obj, a pointer to a committed object of the store,
// on the active and on a standby alike (objects an open transaction created
// have none yet). A standby builds its address index on the first call, 8
// to 16 bytes per object, and keeps it from then on. Any goroutine, and
// inside a callback; not inside Read, ReadWith or Each (Reader.IDOf there).
func (v *View) IDOf(obj any) (uint64, bool) {
	v.s.mu.RLock()
	defer v.s.mu.RUnlock()
	return v.s.idOfLocked(obj)
}

// Each calls fn for every committed object, in no particular order, until
// fn returns false, holding the read lock: fn may read the objects but must
// not call the View (Registry and GroupView excepted). Any goroutine, and
// inside a callback; not inside Read, ReadWith or Each.
func (v *View) Each(fn func(id uint64, obj any) bool) { v.s.Each(fn) }

// Read runs fn under the read lock: on a standby, fn sees no transaction
// half-applied and may read any object. fn must not call the View (Registry
// and GroupView excepted); to look objects up while reading, use ReadWith.
// Any goroutine, and inside a callback; not inside Read, ReadWith or Each.
func (v *View) Read(fn func()) { v.s.Read(fn) }

// ReadWith is Read with lookups: fn may read any object and use r, which is
// valid only during the call. Any goroutine, and inside a callback; not
// inside Read, ReadWith or Each.
func (v *View) ReadWith(fn func(r Reader)) {
	v.s.mu.RLock()
	defer v.s.mu.RUnlock()
	fn(Reader{v.s})
}

// Reader looks objects up under the read lock that ReadWith holds; use it
// only inside the ReadWith call that handed it over.
type Reader struct{ s *Store }

// Get is View.Get under ReadWith's lock.
func (r Reader) Get(id uint64) (any, bool) { return r.s.getLocked(id) }

// IDOf is View.IDOf under ReadWith's lock.
func (r Reader) IDOf(obj any) (uint64, bool) { return r.s.idOfLocked(obj) }

// Name is View.Name under ReadWith's lock.
func (r Reader) Name(id uint64) string { return r.s.nameOfLocked(id) }

// Len is View.Len under ReadWith's lock.
func (r Reader) Len() int { return r.s.nobj }

// GroupByName is View.GroupByName under ReadWith's lock.
func (r Reader) GroupByName(name string) *GroupView { return r.s.groupViewLocked(name) }

// Len returns the number of objects, static ones included (on the active,
// also those the open transaction created). Any goroutine, and inside a
// callback; not inside Read, ReadWith or Each.
func (v *View) Len() int { return v.s.Len() }

// Name returns the display name of object id ("route-42"). Any goroutine,
// and inside a callback; not inside Read, ReadWith or Each.
func (v *View) Name(id uint64) string { return v.s.Name(id) }

// GroupByName returns a read-only handle on the group called name (on a
// standby, as the active announced it), or nil. Any goroutine, and inside a
// callback; not inside Read, ReadWith or Each (Reader.GroupByName there).
func (v *View) GroupByName(name string) *GroupView {
	v.s.mu.RLock()
	defer v.s.mu.RUnlock()
	return v.s.groupViewLocked(name)
}

func (s *Store) groupViewLocked(name string) *GroupView {
	if g := s.groupsByName[name]; g != nil {
		return &g.view
	}
	return nil
}

// GroupView is a read-only handle on a group.
type GroupView struct{ g *Group }

// Name returns the group's name. Safe anywhere.
func (gv *GroupView) Name() string { return gv.g.name }

// Len returns the number of objects in the group (see Group.Len). Safe
// anywhere.
func (gv *GroupView) Len() int { return gv.g.Len() }

// Subscribe calls fn for every change applied on a standby (see
// Store.Subscribe for when and what fn may call). Any goroutine, and inside
// a callback (the new subscriber hears from the next delivery on); not
// inside Read, ReadWith or Each.
func (v *View) Subscribe(fn func(Change)) (cancel func()) { return v.s.Subscribe(fn) }

// SubscribeGroup is Subscribe restricted to the group called name.
func (v *View) SubscribeGroup(name string, fn func(Change)) (cancel func()) {
	return v.s.SubscribeGroup(name, fn)
}

// OnMessage sets the handler of the active's messages on a standby (see
// Store.OnMessage); the handler may call what a subscriber may. Any
// goroutine, and inside a callback; not inside Read, ReadWith or Each.
func (v *View) OnMessage(fn func(name string, msg any)) { v.s.OnMessage(fn) }

// Seq returns the seq of the last commit made (active) or applied (standby).
// Any goroutine, and inside a callback; not inside Read, ReadWith or Each.
func (v *View) Seq() uint64 { return v.s.Seq() }

// AppliedSeq returns the seq of the last commit a standby has settled
// (Store.AppliedSeq); 0 on an active that never was a standby. Any
// goroutine, and inside a callback; not inside Read, ReadWith or Each.
func (v *View) AppliedSeq() uint64 { return v.s.AppliedSeq() }

// SnapshotID returns the snapshot a standby's state derives from
// (Store.SnapshotID). Any goroutine, and inside a callback; not inside
// Read, ReadWith or Each.
func (v *View) SnapshotID() uint64 { return v.s.SnapshotID() }

// PeerSkew reports how the peer's versions of the types map onto this
// one's (Store.PeerSkew). Any goroutine, and inside a callback; not inside
// Read, ReadWith or Each.
func (v *View) PeerSkew() []SkewReport { return v.s.PeerSkew() }

// Registry returns the store's registry, which is immutable. Safe anywhere.
func (v *View) Registry() *Registry { return v.s.reg }

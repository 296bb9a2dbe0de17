package swha

import "sync"

// owner is the one goroutine that owns the replication cores and the role
// state that goes with them (Node's role, act, sby, progress, ...), as
// etcd-io/raft's node.run owns its RawNode. The other goroutines (the Conn's
// delivery goroutine, the worker, the failover driver, the application's
// own) hand it their input as a closure and wait for it to have run: the
// cores are stepped on one goroutine, one input at a time, in the order the
// inputs arrived, and never under a lock.
//
// A closure must not block (no send, no wait for the write path, applyMu or
// the store's locks) and must not hand the owner another closure: the owner
// would wait for itself. What may block runs on the worker (run.go), which
// asks the owner for the work and reports back through it.
type owner struct {
	calls chan *call    // unbuffered: a call handed over is a call that runs
	stop  chan struct{} // closed by Close
	done  chan struct{} // closed once run has returned
	// Once run has returned, callers take turns on after instead: a Close
	// waits for goroutines that may still need the cores on their way out.
	after sync.Mutex
	pool  sync.Pool // of *call, so that handing over allocates only the closure
	// publish runs after every call, on the owner (or under after): it
	// republishes what other goroutines may read without a call.
	publish func()
	// Posted inputs: run by the owner before the next call (so a goroutine's
	// post and its later call stay in order) or when kicked. closed: the
	// owner is stopping, so post hands over with do instead.
	qmu    sync.Mutex
	q      []func()
	closed bool
	kick   chan struct{}
}

type call struct {
	fn  func()
	ran chan struct{} // buffered: the owner never waits for the caller
}

func newOwner(publish func()) *owner {
	return &owner{calls: make(chan *call), stop: make(chan struct{}), done: make(chan struct{}), publish: publish,
		kick: make(chan struct{}, 1)}
}

// post queues fn for the owner and returns at once: for an input whose
// caller needs no answer (an asynchronous commit's "committed seq N"), so
// that it costs no hand-over.
func (o *owner) post(fn func()) {
	o.qmu.Lock()
	if o.closed {
		o.qmu.Unlock()
		o.do(fn)
		return
	}
	o.q = append(o.q, fn)
	o.qmu.Unlock()
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// runPosted runs what was posted, in order; on the owner.
func (o *owner) runPosted() {
	o.qmu.Lock()
	q := o.q
	o.q = nil
	o.qmu.Unlock()
	for i, fn := range q {
		fn()
		q[i] = nil
	}
}

// do runs fn on the owner and returns once it has run.
func (o *owner) do(fn func()) {
	c, _ := o.pool.Get().(*call)
	if c == nil {
		c = &call{ran: make(chan struct{}, 1)}
	}
	c.fn = fn
	select {
	case o.calls <- c:
		<-c.ran
	case <-o.done:
		o.after.Lock()
		fn()
		o.publish()
		o.after.Unlock()
	}
	c.fn = nil
	o.pool.Put(c)
}

// run is the owner goroutine: it runs the calls handed to it until stop.
func (o *owner) run() {
	defer close(o.done)
	for {
		select {
		case c := <-o.calls:
			o.runPosted()
			c.fn()
			o.publish()
			c.ran <- struct{}{}
		case <-o.kick:
			o.runPosted()
			o.publish()
		case <-o.stop:
			o.qmu.Lock()
			o.closed = true
			o.qmu.Unlock()
			o.runPosted()
			o.publish()
			return
		}
	}
}

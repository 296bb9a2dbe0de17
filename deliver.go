package swha

import "sync"

// deliverer runs the application's callbacks — subscribers, the message
// handler, role-change hooks — one at a time, in the order they were
// queued, on a goroutine of its own. No protocol goroutine ever runs user
// code or waits for it without also watching the node's ctx, so a callback
// may call Close, Promote or Begin: by construction, nothing it could wait
// for is waiting for it.
type deliverer struct {
	mu      sync.Mutex
	q       []func()
	wake    chan struct{}
	stopped chan struct{} // closed by stop
	once    sync.Once
}

func newDeliverer() *deliverer {
	d := &deliverer{wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go d.run()
	return d
}

// queue adds fn to run after everything queued before it. After stop it
// is dropped.
func (d *deliverer) queue(fn func()) {
	d.mu.Lock()
	d.q = append(d.q, fn)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// queueDone queues fn and returns a channel closed once it has run.
func (d *deliverer) queueDone(fn func()) <-chan struct{} {
	done := make(chan struct{})
	d.queue(func() {
		defer close(done)
		fn()
	})
	return done
}

// wait waits for done, or until cancel is closed (the node is closing: what
// done stands for may then never run, or still be running).
func (d *deliverer) wait(done <-chan struct{}, cancel <-chan struct{}) {
	select {
	case <-done:
	case <-cancel:
	case <-d.stopped:
	}
}

// stop drops what is queued and ends the goroutine after the callback
// running now, if any. It does not wait for that callback: it may be the
// caller.
func (d *deliverer) stop() { d.once.Do(func() { close(d.stopped) }) }

func (d *deliverer) run() {
	for {
		select {
		case <-d.wake:
		case <-d.stopped:
			return
		}
		for {
			d.mu.Lock()
			if len(d.q) == 0 {
				d.mu.Unlock()
				break
			}
			fn := d.q[0]
			d.q[0] = nil
			d.q = d.q[1:]
			d.mu.Unlock()
			select {
			case <-d.stopped:
				return
			default:
			}
			fn()
		}
	}
}

package l2transport

import "time"

// readDeadline is an in-memory link's read deadline and the one timer that
// waits for it, reused across waits so that a reader blocking often does
// not allocate a timer each time. Its owner guards it with its own lock.
type readDeadline struct {
	at    time.Time
	timer *time.Timer
}

// arm returns the channel that fires at the deadline (nil when there is
// none, so that a select on it blocks for ever), or passed=true when the
// deadline has already passed.
func (d *readDeadline) arm() (fire <-chan time.Time, passed bool) {
	if d.at.IsZero() {
		return nil, false
	}
	wait := time.Until(d.at)
	if wait <= 0 {
		return nil, true
	}
	if d.timer == nil {
		d.timer = time.NewTimer(wait)
	} else {
		d.timer.Reset(wait)
	}
	return d.timer.C, false
}

// stop releases the timer (at Close).
func (d *readDeadline) stop() {
	if d.timer != nil {
		d.timer.Stop()
	}
}

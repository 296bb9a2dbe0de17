package swha

import "errors"

// ErrFenced: the node learned that another node took over as active (a
// newer generation), so it accepts no commit and no acknowledgement counts
// for it any more. A synchronous commit waiting when it is fenced fails with
// it: the transaction stands locally only until the node demotes and takes
// the new active's state, which does not have it.
var ErrFenced = errors.New("swha: fenced: another node is active")

// fence stops the node accepting commits (Begin fails with ErrFenced) and
// fails the synchronous commits waiting for an acknowledgement. It is the
// first thing a replaced active does, before anything else can run: a
// commit acknowledged after it would be lost when it demotes.
func (n *Node) fence(reason string) {
	n.own.do(func() {
		if n.fenced {
			return
		}
		n.fenced = true
		n.log.Warn("fenced: accepting no commits", "reason", reason)
		n.changed()
	})
}

// unfence lets a node that is active again accept commits.
func (n *Node) unfence() {
	n.own.do(func() {
		n.fenced = false
		n.changed()
	})
}

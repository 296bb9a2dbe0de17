//go:build !linux

package heartbeat

import (
	"time"

	"github.com/swha/swha/l2transport"
)

// poller is Linux only; elsewhere the runner waits in ReadBatch.
type poller struct{}

func newPoller(l2transport.Link) (*poller, error) { return nil, nil }
func (*poller) wait(time.Time) (bool, error)      { return false, nil }
func (*poller) wake()                             {}
func (*poller) close()                            {}

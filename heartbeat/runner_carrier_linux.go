//go:build linux

package heartbeat

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// WatchCarrier follows the carrier (IFF_LOWER_UP) of interface ifname, in the
// network namespace of the calling thread, and reports each change to the runner
// with Carrier, until ctx ends. The kernel's carrier-down then shortens detection
// (Path.Carrier); it never takes the path down alone.
func (r *Runner) WatchCarrier(ctx context.Context, ifname string) error {
	ch := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case <-ctx.Done(): // the subscription ending, not a failure
			case <-r.done:
			default:
				r.log.Warn("heartbeat: carrier watch", "interface", ifname, "err", err)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("heartbeat: watch the carrier of %s: %w", ifname, err)
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.done:
				return
			case u, ok := <-ch:
				if !ok {
					return
				}
				if u.Attrs().Name == ifname {
					r.Carrier(u.Attrs().RawFlags&unix.IFF_LOWER_UP != 0)
				}
			}
		}
	}()
	return nil
}

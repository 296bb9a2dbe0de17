//go:build linux

package netnstest

import (
	"os"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestNICLike checks that a NIC-like pair has what makeNICLike promises on
// both ends: the GRO features that route packet-socket frames through NAPI,
// a pfifo qdisc long enough to absorb a full send buffer, and NAPI kernel
// threads for the interface. A plain pair is checked to have none of it, so
// the test can tell the two apart.
func TestNICLike(t *testing.T) {
	for _, nic := range []bool{false, true} {
		p := NewPair(t, Config{IfName: "nic0", NICLike: nic})
		for _, n := range []*NS{p.A, p.B} {
			err := n.Do(func() error {
				for _, f := range []string{"rx-gro", "rx-gro-list"} {
					on, err := featureActive(n.IfName, f)
					if err != nil {
						return err
					}
					if f == "rx-gro-list" && on != nic {
						t.Errorf("NICLike=%v: %s: %s is %v", nic, n.Label, f, on)
					}
					if nic && !on {
						t.Errorf("NICLike: %s: %s is off", n.Label, f)
					}
				}
				l, err := netlink.LinkByName(n.IfName)
				if err != nil {
					return err
				}
				qs, err := netlink.QdiscList(l)
				if err != nil {
					return err
				}
				pfifo := false
				for _, q := range qs {
					pfifo = pfifo || q.Type() == "pfifo" && q.Attrs().Parent == netlink.HANDLE_ROOT
				}
				if pfifo != nic || nic && l.Attrs().TxQLen != NICLikeTxQueue {
					t.Errorf("NICLike=%v: %s: root pfifo %v, txqueuelen %d", nic, n.Label, pfifo, l.Attrs().TxQLen)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if nic {
			if threads := napiThreads(t, "nic0"); threads < 2 {
				t.Errorf("NICLike: %d NAPI threads for nic0, want one per end", threads)
			}
		}
	}
}

// napiThreads counts the kernel threads polling a NAPI instance of an
// interface named ifname, in any namespace.
func napiThreads(t *testing.T, ifname string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err == nil && strings.HasPrefix(string(comm), "napi/"+ifname+"-") {
			n++
		}
	}
	return n
}

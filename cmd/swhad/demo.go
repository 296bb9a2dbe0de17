package main

import (
	"fmt"
	"io"
)

// components lists what the demo will exercise and whether it is built yet, so the
// demo says plainly what it cannot show instead of pretending.
var components = []struct {
	name  string
	built bool
}{
	{"frame: wire format, CRC32C, HMAC key ring, gopacket layer, Wireshark dissector", true},
	{"l2transport: AF_PACKET/UDP/in-memory links, reliable session", true},
	{"objstore: replicated objects and transactions (core)", true},
	{"heartbeat + failover: detection and promotion", false},
}

func demo(w io.Writer) int {
	fmt.Fprintf(w, "swhad %s demo\n\n", version)
	for _, c := range components {
		mark := "not built yet"
		if c.built {
			mark = "built"
		}
		fmt.Fprintf(w, "  %-14s %s\n", mark, c.name)
	}
	fmt.Fprintln(w, "\nThe failover demo (two nodes, route churn, kill the active) needs the parts above.")
	return 0
}

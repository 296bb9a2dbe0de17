//go:build linux

package netnstest

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// Two hosts behind the pair reach each other through A, their gateway.
func TestAddHost(t *testing.T) {
	p := NewPair(t, Config{})
	pf := netip.MustParsePrefix
	h1 := p.AddHost(t, "H1", "lan1", pf("10.1.0.1/24"), pf("10.1.0.2/24"), pf("10.1.0.10/24"), netip.MustParseAddr("10.1.0.1"))
	h2 := p.AddHost(t, "H2", "lan2", pf("10.2.0.1/24"), pf("10.2.0.2/24"), pf("10.2.0.10/24"), netip.MustParseAddr("10.2.0.1"))
	var srv *net.UDPConn
	if err := h2.Do(func() (err error) {
		srv, err = net.ListenUDP("udp4", &net.UDPAddr{IP: h2.Addr.AsSlice(), Port: 7})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		b := make([]byte, 64)
		for {
			n, from, err := srv.ReadFromUDP(b)
			if err != nil {
				return
			}
			srv.WriteToUDP(b[:n], from)
		}
	}()
	var c *net.UDPConn
	if err := h1.Do(func() (err error) {
		c, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: h2.Addr.AsSlice(), Port: 7})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The first datagrams may go before ARP resolves: retry, bounded.
	b := make([]byte, 64)
	for i := 0; ; i++ {
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, err := c.Read(b); err == nil && string(b[:n]) == "ping" {
			return
		}
		if i == 100 {
			t.Fatal("H1 never reached H2 through A")
		}
	}
}

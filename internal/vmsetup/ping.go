package vmsetup

import (
	"context"
	"net"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// pingOnce waits this long for one echo reply: a gateway on the VM's own network answers
// in well under a millisecond; this only bounds a lost one.
const pingOnce = time.Second

// ping sends one ICMP echo to ip and says whether it was answered.
func ping(ctx context.Context, ip net.IP) bool {
	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return false
	}
	defer c.Close()
	id := os.Getpid() & 0xffff
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("ovn-docker setup")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return false
	}
	if _, err := c.WriteTo(b, &net.IPAddr{IP: ip}); err != nil {
		return false
	}
	deadline := time.Now().Add(pingOnce)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetReadDeadline(deadline)
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return false
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		if e, ok := m.Body.(*icmp.Echo); ok && e.ID == id && from.(*net.IPAddr).IP.Equal(ip) {
			return true
		}
	}
}

// pingSoon gives the gateway a few echoes: right after the move the VM may first have
// to resolve its MAC again.
func pingSoon(ctx context.Context, ip net.IP) bool {
	for range 5 {
		if ping(ctx, ip) {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
	}
	return false
}

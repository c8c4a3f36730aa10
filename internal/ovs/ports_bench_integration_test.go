//go:build integration

package ovs

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPorts lists a bridge of 1,000 access ports from the client's cache: what every
// status, verify and VLAN choice of a VM with a thousand containers pays.
func BenchmarkPorts(b *testing.B) {
	o, c := newOVS(b)
	args := []string{}
	for i := 1; i <= 1000; i++ {
		// Ports without a device: the database rows are what Ports reads.
		args = append(args, "--", "add-port", testBridge, fmt.Sprintf("bp%d", i), fmt.Sprintf("tag=%d", i),
			"--", "set", "Interface", fmt.Sprintf("bp%d", i), "type=internal",
			"--", "set", "Port", fmt.Sprintf("bp%d", i), fmt.Sprintf("external_ids:ovn-docker-attachment=a%d", i))
		if i%250 == 0 {
			o.Vsctl(b, append([]string{"--no-wait"}, args[1:]...)...)
			args = args[:0]
		}
	}
	ctx := testCtx(b)
	// The cache follows the server's monitor: wait until it holds every port.
	for {
		ps, err := c.Ports(ctx, testBridge)
		if err == nil && len(ps) == 1001 {
			break
		}
		select {
		case <-ctx.Done():
			b.Fatalf("%d ports in the cache (%v)", len(ps), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Ports(ctx, testBridge); err != nil {
			b.Fatal(err)
		}
	}
}

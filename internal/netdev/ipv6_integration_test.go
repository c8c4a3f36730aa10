//go:build integration

package netdev

import (
	"os"
	"strings"
	"testing"
)

// sysctl reads one sysctl inside n.
func (n *testNS) sysctl(tb testing.TB, path string) string {
	tb.Helper()
	var v string
	n.must(tb, "read "+path, func() error {
		b, err := os.ReadFile(path)
		v = strings.TrimSpace(string(b))
		return err
	})
	return v
}

// TestCreateWhereIPv6IsOff: Docker makes a container's netns with IPv6 off unless its
// own network asked for IPv6; Create still gives the interface its IPv6 address, turns
// IPv6 on for it alone, ignoring RAs.
func TestCreateWhereIPv6IsOff(t *testing.T) {
	vm, ctr := newNS(t), newNS(t)
	ctr.must(t, "turn IPv6 off as Docker does", func() error {
		for _, k := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+k+"/disable_ipv6", []byte("1"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	s := testSpec(t, 11, ctr.Path())
	if err := create(vm, s); err != nil {
		t.Fatalf("Create with IPv6 off in the container: %v", err)
	}
	if got := globalAddrs(ctr.addrsOf(t, "eth0")); len(got) != 2 {
		t.Fatalf("eth0 addresses %v, want the IPv4 and the IPv6 one", got)
	}
	if gws := ctr.defaultGateways(t, "eth0"); len(gws) != 2 {
		t.Fatalf("default routes via %v, want one per family", gws)
	}
	for path, want := range map[string]string{
		ipv6Conf("eth0", "disable_ipv6"): "0",
		ipv6Conf("eth0", "accept_ra"):    "0",
		ipv6Conf("lo", "disable_ipv6"):   "1", // the rest of the container is left as Docker made it
	} {
		if got := ctr.sysctl(t, path); got != want {
			t.Errorf("container %s = %s, want %s", path, got, want)
		}
	}

	// An IPv4-only interface leaves IPv6 as it was.
	s4 := testSpec(t, 12, ctr.Path())
	s4.IfName, s4.Addrs, s4.Gateways = "eth1", s4.Addrs[:1], nil
	if err := create(vm, s4); err != nil {
		t.Fatalf("Create IPv4 only: %v", err)
	}
	if got := ctr.sysctl(t, ipv6Conf("eth1", "disable_ipv6")); got != "1" {
		t.Errorf("IPv4-only eth1 got IPv6 turned on")
	}
}

//go:build integration

package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// networkModeOf is the container's Docker network mode: a Docker network of the plugin
// through the agent, "container:..." on the sandbox's way.
func networkModeOf(t *testing.T, b *box) string {
	t.Helper()
	return strings.TrimSpace(mustDocker(t, b.vm, "inspect", "-f", "{{.HostConfig.NetworkMode}}", b.name))
}

// waitCleanThrough waits until nothing of ovn-docker is left in the VM (the agent
// releases what Docker gives up off the command's path), then asserts it.
func waitCleanThrough(t *testing.T, s *testutil.Stack, vm *testutil.VM) {
	t.Helper()
	waitUntil(t, "everything released in "+vm.Name, func() (bool, string) {
		f := measure(t, s, vm)
		return f.empty(), fmt.Sprintf("%+v", f)
	})
	assertClean(t, s, vm)
}

// TestAgentIPv6: ovn-docker run through the agent (an agent in each VM). On a dual-stack
// network the container goes on an --ipv6 Docker network of the plugin with both of its
// port's addresses, default routes for both families, pings both ways over each family
// and moves 10 MB over TCP on IPv6; its first command reaches the peer over IPv6; --ip6
// gives exactly that address. On an IPv6-only network (which Docker 20.10 cannot carry)
// the agent takes the sandbox's way, and the container is on IPv6 from its first command.
func TestAgentIPv6(t *testing.T) {
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	startPlugin(t, vm1)
	startPlugin(t, vm2)
	dual, v6only := uniq("agdual"), uniq("ag6only")
	tenantNetwork(t, vm1, dual, "--subnet", "10.151.0.0/24", "--ipv6-subnet", "fd00:151::/64")
	tenantNetwork(t, vm1, v6only, "--ipv4=false", "--ipv6-subnet", "fd00:153::/64",
		"--ipv6-address-mode", "dhcpv6-stateless", "--ipv6-ra-mode", "dhcpv6-stateless")
	t.Cleanup(func() { cleanAgentVM(t, vm1); cleanAgentVM(t, vm2) }) // before the networks go

	// Dual stack: on Docker networks, both families.
	nd := v6Net{label: "agent-dual", v4: true, v6: true}
	a := runBox(t, vm1, "agda", []string{"--network", dual}, nil)
	b := runBox(t, vm2, "agdb", []string{"--network", dual}, nil)
	for _, x := range []*box{a, b} {
		if mode := networkModeOf(t, x); strings.HasPrefix(mode, "container:") || mode == "none" {
			t.Fatalf("%s runs in network mode %q: through the agent it is on a Docker network of the plugin", x, mode)
		}
		checkFamilies(t, x, nd)
	}
	for _, p := range [][2]*box{{a, b}, {b, a}} {
		for _, v6 := range []bool{false, true} {
			var extra []string
			if v6 {
				extra = []string{"-6"}
			}
			dst := addrOf(t, p[1], v6)
			if ok, out := p[0].pings(dst, extra...); !ok {
				t.Fatalf("%s cannot ping %s at %s:\n%s", p[0], p[1], dst, out)
			}
		}
	}
	transfer(t, a, b, addrOf(t, b, true))
	r := ovnDocker(t, vm1, nil, "--network", dual, "run", "--rm", "busybox:local", "ping", "-6", "-c", "1", "-W", "1", addrOf(t, b, true))
	if r.code != 0 || !strings.Contains(r.stdout, "1 packets received") {
		t.Fatalf("dual stack through the agent: first-action ping -6 failed: %s", r)
	}
	// --ip6: exactly that address, the IPv4 one Neutron's; reachable from the other VM.
	const want6 = "fd00:151::99"
	c := runBox(t, vm1, "agdc", []string{"--network", dual}, []string{"--ip6", want6})
	if got := addrOf(t, c, true); got != want6 {
		t.Fatalf("--ip6 %s through the agent: %s got %s", want6, c, got)
	}
	hasAddrs(t, c, addrOf(t, c, false), want6)
	b.mustPing(t, want6)

	// IPv6 only: the sandbox's way, IPv6 from the first command.
	n6 := v6Net{label: "agent-v6only", v6: true}
	a6 := runBox(t, vm1, "ag6a", []string{"--network", v6only}, nil)
	b6 := runBox(t, vm2, "ag6b", []string{"--network", v6only}, nil)
	for _, x := range []*box{a6, b6} {
		if mode := networkModeOf(t, x); !strings.HasPrefix(mode, "container:") {
			t.Fatalf("%s on an IPv6-only network runs in network mode %q, want the sandbox's", x, mode)
		}
		checkFamilies(t, x, n6)
	}
	for _, p := range [][2]*box{{a6, b6}, {b6, a6}} {
		dst := addrOf(t, p[1], true)
		if ok, out := p[0].pings(dst, "-6"); !ok {
			t.Fatalf("%s cannot ping %s at %s:\n%s", p[0], p[1], dst, out)
		}
	}
	r = ovnDocker(t, vm1, nil, "--network", v6only, "run", "--rm", "busybox:local", "ping", "-6", "-c", "1", "-W", "1", addrOf(t, b6, true))
	if r.code != 0 || !strings.Contains(r.stdout, "1 packets received") {
		t.Fatalf("IPv6 only through the agent: first-action ping -6 failed: %s", r)
	}

	mustOVNDocker(t, vm1, "rm", "-f", "agda", "agdc", "ag6a")
	mustOVNDocker(t, vm2, "rm", "-f", "agdb", "ag6b")
	waitCleanThrough(t, s, vm1)
	waitCleanThrough(t, s, vm2)
}

//go:build integration

package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// dockerAddrs is a container's addresses on a Docker network, IPv4 then IPv6, bare.
func dockerAddrs(t *testing.T, vm *testutil.VM, network, container string) (string, string) {
	t.Helper()
	e, ok := inspectEndpoints(t, vm, network)[container]
	if !ok {
		t.Fatalf("docker network inspect %s in %s shows no %s", network, vm.Name, container)
	}
	return strings.SplitN(e.IPv4Address, "/", 2)[0], strings.SplitN(e.IPv6Address, "/", 2)[0]
}

// dockerPings pings dst from a container, over IPv6 when v6.
func dockerPings(vm *testutil.VM, container, dst string, v6 bool) (bool, string) {
	args := []string{"exec", container, "ping", "-c", "3", "-i", "0.2", "-W", "1"}
	if v6 {
		args = append(args, "-6")
	}
	out, err := dockerIn(vm, append(args, dst)...)
	return err == nil, out
}

// TestPluginDualStack: docker network create --ipv6 with the ovn drivers makes a
// dual-stack Neutron network (adopted in a second VM with --ipv6 too); containers get
// the Neutron port's addresses of both families, its MTU and an IPv6 default route, and
// ping each other across the VMs over each family; docker run --ip and --ip6 give exactly
// those addresses (the port's fixed_ips); a taken address fails with Neutron's refusal
// and leaves nothing in the VM that asked.
func TestPluginDualStack(t *testing.T) {
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	startPlugin(t, vm1)
	startPlugin(t, vm2)
	nc := s.Network(t, "tenant-a")

	ls := uniq("DS")
	pluginNetwork(t, vm1, ls, "--ipv6", "--subnet", "10.151.0.0/24", "--subnet", "fd00:151::/64")
	neu := neutronNetworkNamed(t, nc, ls)
	if len(neu.Subnets) != 2 {
		t.Fatalf("Neutron network %s has subnets %v, want an IPv4 and an IPv6 one", ls, neu.Subnets)
	}
	opt := "neutron.net.name=" + ls
	// With its subnets given: Docker takes --ip only on a network with subnets of its own.
	pluginNetwork(t, vm2, ls, "--ipv6", "--subnet", "10.151.0.0/24", "--subnet", "fd00:151::/64", "-o", opt, "--ipam-opt", opt)

	// A taken address, in the VM that has nothing yet: refused, nothing left.
	c1 := uniq("ds1")
	runIn(t, vm1, c1, "--network", ls, "--ip", "10.151.0.50", "--ip6", "fd00:151::50", "busybox:local", "sleep", "600")
	if a4, a6 := dockerAddrs(t, vm1, ls, c1); a4 != "10.151.0.50" || a6 != "fd00:151::50" {
		t.Fatalf("%s: docker shows %s and %s, want 10.151.0.50 and fd00:151::50", c1, a4, a6)
	}
	p := portWithIP(t, nc, neu.ID, "10.151.0.50")
	var fixed []string
	for _, f := range p.FixedIPs {
		fixed = append(fixed, f.IPAddress)
	}
	if strings.Join(fixed, " ") != "10.151.0.50 fd00:151::50" {
		t.Fatalf("port %s has fixed_ips %v, want exactly 10.151.0.50 and fd00:151::50", p.ID, fixed)
	}
	for _, args := range [][]string{{"--ip", "10.151.0.50"}, {"--ip6", "fd00:151::50"}} {
		name := uniq("dstaken")
		out, err := dockerIn(vm2, append(append([]string{"run", "-d", "--name", name, "--network", ls}, args...), "busybox:local", "sleep", "600")...)
		_, _ = dockerIn(vm2, "rm", "-f", name)
		if err == nil || !strings.Contains(out, "already in use") {
			t.Fatalf("docker run %v with a taken address: want Neutron's refusal, got %v:\n%s", args, err, out)
		}
		t.Logf("taken %s: %s", args[1], strings.TrimSpace(dropForwardingWarning(out)))
		assertClean(t, s, vm2)
	}

	c2 := uniq("ds2")
	runIn(t, vm2, c2, "--network", ls, "busybox:local", "sleep", "600")
	b4, b6 := dockerAddrs(t, vm2, ls, c2)
	if !netip.MustParsePrefix("10.151.0.0/24").Contains(netip.MustParseAddr(b4)) || !netip.MustParsePrefix("fd00:151::/64").Contains(netip.MustParseAddr(b6)) {
		t.Fatalf("%s: addresses %s and %s outside the subnets", c2, b4, b6)
	}
	q := portWithIP(t, nc, neu.ID, b4)
	if len(q.FixedIPs) != 2 || q.FixedIPs[1].IPAddress != b6 && q.FixedIPs[0].IPAddress != b6 {
		t.Fatalf("%s's port %s has %v: Docker's IPv6 address %s is not its", c2, q.ID, q.FixedIPs, b6)
	}
	for _, c := range []struct {
		vm   *testutil.VM
		name string
	}{{vm1, c1}, {vm2, c2}} {
		if r := mustDocker(t, c.vm, "exec", c.name, "ip", "-6", "route", "show", "default"); !strings.Contains(r, "via fd00:151::1") {
			t.Fatalf("%s has no IPv6 default route via the subnet's gateway: %q", c.name, r)
		}
		if mtu := mustDocker(t, c.vm, "exec", c.name, "cat", "/sys/class/net/eth0/mtu"); mtu != itoa(mtuOf(t, nc, neu.ID)) {
			t.Fatalf("%s's eth0 MTU %s, the network's %d", c.name, mtu, mtuOf(t, nc, neu.ID))
		}
	}
	for _, tc := range []struct {
		vm       *testutil.VM
		from, to string
		v6       bool
	}{{vm1, c1, b4, false}, {vm1, c1, b6, true}, {vm2, c2, "10.151.0.50", false}, {vm2, c2, "fd00:151::50", true}} {
		if ok, out := dockerPings(tc.vm, tc.from, tc.to, tc.v6); !ok {
			t.Fatalf("%s cannot ping %s:\n%s", tc.from, tc.to, out)
		}
	}
}

// TestPluginIPRange: --ip-range is respected over 20 containers: every address Neutron
// gave is inside the range (Neutron cannot be told a range: the plugin asks for a free
// address of it), and all are distinct.
func TestPluginIPRange(t *testing.T) {
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	startPlugin(t, vm)
	ls := uniq("RNG")
	rng := netip.MustParsePrefix("10.152.0.96/27")
	pluginNetwork(t, vm, ls, "--subnet", "10.152.0.0/24", "--ip-range", rng.String())
	seen := map[string]string{}
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("%s-c%d", ls, i)
		runIn(t, vm, name, "--network", ls, "busybox:local", "sleep", "600")
		a := addressOf(t, vm, ls, name)
		if !rng.Contains(netip.MustParseAddr(a)) {
			t.Fatalf("container %d got %s, outside --ip-range %s", i, a, rng)
		}
		if other, dup := seen[a]; dup {
			t.Fatalf("%s and %s both have %s", other, name, a)
		}
		seen[a] = name
	}
	t.Logf("20 containers, all inside %s: %d distinct addresses", rng, len(seen))
}

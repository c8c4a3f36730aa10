//go:build integration

package e2e

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestAgentPoolFixedIP: on a dual-stack network whose Docker network keeps a pool
// (-o pool.min=2), ovn-docker run --ip X through the agent takes the cold path (its port
// is made with exactly X, and the pool keeps the very interfaces it had ready), while a
// run without --ip takes one of the pool's interfaces, with both families.
func TestAgentPoolFixedIP(t *testing.T) {
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	startPlugin(t, vm)
	nc := s.Network(t, "tenant-"+vm.Env["STACK_VM_TENANT"])
	name := uniq("agpool")
	tenantNetwork(t, vm, name, "--subnet", "10.162.0.0/24", "--ipv6-subnet", "fd00:162::/64")
	t.Cleanup(func() { cleanAgentVM(t, vm) }) // before the network goes
	opt := "neutron.net.name=" + name
	pluginNetwork(t, vm, name, "-o", opt, "--ipam-opt", opt, "-o", "pool.min=2", "-o", "pool.max=3")
	before := waitReady(t, vm, 2)

	const fixed = "10.162.0.50"
	c := runBox(t, vm, "agfix", []string{"--network", name}, []string{"--ip", fixed})
	if before[c.eth0.Port] {
		t.Fatalf("--ip %s took the pool's port %s: want a port made for it", fixed, c.eth0.Port)
	}
	if got := addrOf(t, c, false); got != fixed {
		t.Fatalf("--ip %s: the container has %s", fixed, got)
	}
	if p := portWithIP(t, nc, neutronNetworkNamed(t, nc, name).ID, fixed); p.ID != c.eth0.Port || len(p.FixedIPs) != 2 {
		t.Fatalf("the port with %s is %s (%d fixed IPs), want the container's %s with both families", fixed, p.ID, len(p.FixedIPs), c.eth0.Port)
	}
	after := readyPorts(t, vm)
	if !maps.Equal(before, after) {
		t.Fatalf("the pool's ready interfaces changed with a --ip run: before %v, after %v", slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
	}
	t.Logf("--ip run: port %s made cold; the pool still holds the same %d ready interfaces", c.eth0.Port, len(after))

	w := runBox(t, vm, "agwarm", []string{"--network", name}, nil)
	if !before[w.eth0.Port] {
		t.Fatalf("a run without --ip got port %s, not one of the pool's %v", w.eth0.Port, slices.Sorted(maps.Keys(before)))
	}
	checkFamilies(t, w, v6Net{label: "pool", v4: true, v6: true})
	w.mustPing(t, fixed)
	if ok, out := w.pings(addrOf(t, c, true), "-6"); !ok {
		t.Fatalf("%s cannot ping %s over IPv6:\n%s", w, c, out)
	}

	mustOVNDocker(t, vm, "rm", "-f", "agfix", "agwarm")
	mustDocker(t, vm, "network", "rm", name)
	waitUntil(t, "the pool released with its network", func() (bool, string) {
		f := measure(t, s, vm)
		return f.empty(), fmt.Sprintf("%+v", f)
	})
	assertClean(t, s, vm)
}

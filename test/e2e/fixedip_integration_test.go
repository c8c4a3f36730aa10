//go:build integration

package e2e

import (
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// hasAddrs fails the test unless the container's eth0 (ps, and the kernel inside the
// container) has exactly the addresses given.
func hasAddrs(t *testing.T, b *box, want ...string) {
	t.Helper()
	var got []string
	for _, ip := range b.eth0.IPs {
		got = append(got, strings.SplitN(ip, "/", 2)[0])
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%s: ps shows addresses %v, want exactly %v", b, got, want)
	}
	inside := b.mustExec(t, "ip", "-o", "addr", "show", "dev", "eth0", "scope", "global")
	for _, w := range want {
		if !strings.Contains(inside, " "+w+"/") {
			t.Fatalf("%s: eth0 inside the container lacks %s:\n%s", b, w, inside)
		}
	}
}

// TestFixedAddressesCLI: ovn-docker run --ip A --ip6 B on a dual-stack network gives the
// container exactly A and B (the Neutron port's fixed_ips), reachable over each family
// from another VM; an address already taken fails with one line naming it and leaves
// nothing behind; --ip alone still gets an IPv6 address of Neutron's choice.
func TestFixedAddressesCLI(t *testing.T) {
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	name := uniq("fixip")
	tenantNetwork(t, vm1, name, "--subnet", "10.141.0.0/24", "--ipv6-subnet", "fd00:141::/64")
	t.Cleanup(func() { cleanVM(t, vm1); cleanVM(t, vm2) }) // before the network goes
	const a4, a6 = "10.141.0.77", "fd00:141::77"

	a := runBox(t, vm1, "fixa", []string{"--network", name}, []string{"--ip", a4, "--ip6", a6})
	hasAddrs(t, a, a4, a6)

	// Taken: refused by Neutron, one line, nothing left in the VM that asked.
	for _, args := range [][]string{{"--ip", a4}, {"--ip6", a6}} {
		r := ovnDocker(t, vm2, nil, append([]string{"--network", name, "run", "-d", "--name", "fixtaken"}, append(args, "busybox:local", "sleep", "600")...)...)
		msg := strings.TrimSpace(r.stderr)
		if r.code == 0 || !strings.Contains(msg, "already in use") || !strings.Contains(msg, args[1]) || strings.Contains(msg, "\n") {
			t.Fatalf("run %v with a taken address: want one line saying %s is already in use, got %s", args, args[1], r)
		}
		t.Logf("taken %s: %s", args[1], msg)
		assertClean(t, s, vm2)
	}

	// --ip alone: the IPv6 address is still Neutron's.
	b := runBox(t, vm2, "fixb", []string{"--network", name}, []string{"--ip", "10.141.0.78"})
	if got := addrOf(t, b, false); got != "10.141.0.78" {
		t.Fatalf("%s: IPv4 %s, want 10.141.0.78", b, got)
	}
	addrOf(t, b, true)
	for _, p := range [][3]string{{"", a4, ""}, {"-6", a6, ""}} {
		extra := []string{}
		if p[0] != "" {
			extra = append(extra, p[0])
		}
		if ok, out := b.pings(p[1], extra...); !ok {
			t.Fatalf("%s cannot ping %s at its fixed address %s:\n%s", b, a, p[1], out)
		}
	}
	if ok, out := a.pings(addrOf(t, b, true), "-6"); !ok {
		t.Fatalf("%s cannot ping %s over IPv6:\n%s", a, b, out)
	}
}

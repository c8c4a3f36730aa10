//go:build integration

package e2e

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/subnetpools"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestCreateNetworkSubnetPool: create network --subnet-pool P4 --prefix-length 26
// --ipv6-subnet-pool P6 takes both subnets from shared subnet pools an admin made (a
// tenant may use shared pools), and containers in two VMs ping each other over both
// families on it; a pool that does not exist is one line, and no network is left.
func TestCreateNetworkSubnetPool(t *testing.T) {
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	ctx := context.Background()
	admin := s.Network(t, "admin")
	nc := s.Network(t, "tenant-"+vm1.Env["STACK_VM_TENANT"])
	shared := true
	mkPool := func(name, prefix string, def int) *subnetpools.SubnetPool {
		p, err := subnetpools.Create(ctx, admin, subnetpools.CreateOpts{Name: name, Prefixes: []string{prefix},
			DefaultPrefixLen: def, Shared: shared}).Extract()
		if err != nil {
			t.Fatalf("admin: create subnet pool %s: %v", name, err)
		}
		t.Cleanup(func() {
			if err := subnetpools.Delete(ctx, admin, p.ID).ExtractErr(); err != nil {
				t.Errorf("delete subnet pool %s: %v", name, err)
			}
		})
		return p
	}
	p4 := mkPool(uniq("sp4"), "10.163.0.0/16", 24)
	p6 := mkPool(uniq("sp6"), "fd00:163::/48", 64)

	name := uniq("spnet")
	tenantNetwork(t, vm1, name, "--subnet-pool", p4.Name, "--prefix-length", "26", "--ipv6-subnet-pool", p6.ID)
	t.Cleanup(func() { cleanVM(t, vm1); cleanVM(t, vm2) }) // before the network goes
	n := neutronNetworkNamed(t, nc, name)
	pages, err := subnets.List(nc, subnets.ListOpts{NetworkID: n.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	subs, _ := subnets.ExtractSubnets(pages)
	got := map[int]subnets.Subnet{}
	for _, sn := range subs {
		got[sn.IPVersion] = sn
	}
	in := func(sn subnets.Subnet, pool *subnetpools.SubnetPool, within string, bits int) {
		c := netip.MustParsePrefix(sn.CIDR)
		if sn.SubnetPoolID != pool.ID || !netip.MustParsePrefix(within).Contains(c.Addr()) || c.Bits() != bits {
			t.Fatalf("subnet %s (pool %q): want a /%d of %s from pool %s", sn.CIDR, sn.SubnetPoolID, bits, within, pool.ID)
		}
		t.Logf("IPv%d subnet %s from pool %s", sn.IPVersion, sn.CIDR, pool.Name)
	}
	if len(subs) != 2 {
		t.Fatalf("network %s has %d subnets, want 2: %+v", name, len(subs), subs)
	}
	in(got[4], p4, "10.163.0.0/16", 26)
	in(got[6], p6, "fd00:163::/48", 64)

	a := runBox(t, vm1, "spa", []string{"--network", name}, nil)
	b := runBox(t, vm2, "spb", []string{"--network", name}, nil)
	for _, p := range [][2]*box{{a, b}, {b, a}} {
		for _, v6 := range []bool{false, true} {
			var extra []string
			if v6 {
				extra = []string{"-6"}
			}
			if ok, out := p[0].pings(addrOf(t, p[1], v6), extra...); !ok {
				t.Fatalf("%s cannot ping %s over v6=%v:\n%s", p[0], p[1], v6, out)
			}
		}
	}
	mustOVNDocker(t, vm1, "rm", "-f", "spa")
	mustOVNDocker(t, vm2, "rm", "-f", "spb")
	assertClean(t, s, vm1)
	assertClean(t, s, vm2)

	// A pool that is not there: one line naming it, nothing made.
	missing := uniq("nosuchpool")
	other := uniq("spnone")
	r := ovnDocker(t, vm1, nil, "create", "network", other, "--subnet-pool", missing)
	msg := strings.TrimSpace(r.stderr)
	if r.code == 0 || !strings.Contains(msg, missing) || !strings.Contains(msg, "not found") || strings.Contains(msg, "\n") {
		t.Fatalf("create network with a missing subnet pool: want one line naming %s, got %s", missing, r)
	}
	t.Logf("missing pool: %s", msg)
	if networkNames(t, nc)[other] {
		t.Fatalf("network %s was left behind after the refusal", other)
	}
}

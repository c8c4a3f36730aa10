//go:build integration

package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestIPv6ReadyThroughGateway: where OVN answers no DHCP for a port (a SLAAC subnet, a
// static IPv6 subnet with DHCP off, and its IPv4 twin), a Neutron router on the subnet
// proves the path before the container starts: the log names the proof (OVN's router
// advertisement of the prefix, the gateway's neighbor advertisement, its ARP reply), and
// the container's first command reaches a peer in another VM over IPv6 (and IPv4).
func TestIPv6ReadyThroughGateway(t *testing.T) {
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	nc := s.Network(t, "tenant-a")
	ctx := context.Background()

	nets := []struct {
		label  string
		args   []string
		proofs []string // in the "data path proof" line
		v4     bool
	}{
		{"slaac", []string{"--ipv4=false", "--ipv6-subnet", "fd00:141::/64", "--ipv6-address-mode", "slaac", "--ipv6-ra-mode", "slaac"},
			[]string{"router advertisement of fd00:141::/64 (router port "}, false},
		{"static", []string{"--subnet", "10.142.0.0/24", "--ipv6-subnet", "fd00:142::/64", "--ipv6-address-mode", "none", "--no-dhcp"},
			[]string{"ARP reply of gateway 10.142.0.1 (router port ", "neighbor advertisement of gateway fd00:142::"}, true},
	}
	names := make([]string, len(nets))
	for i, n := range nets {
		names[i] = tenantNetwork(t, vm1, uniq("v6gw"+n.label), n.args...)
	}
	r, err := routers.Create(ctx, nc, routers.CreateOpts{Name: uniq("v6gw-router")}).Extract()
	if err != nil {
		t.Fatalf("create router: %v", err)
	}
	t.Cleanup(func() {
		if err := routers.Delete(ctx, nc, r.ID).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, 404) {
			t.Errorf("delete router %s: %v", r.ID, err)
		}
	})
	for _, name := range names {
		pages, err := subnets.List(nc, subnets.ListOpts{NetworkID: networkID(t, nc, name)}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		subs, err := subnets.ExtractSubnets(pages)
		if err != nil || len(subs) == 0 {
			t.Fatalf("subnets of %s: %v %v", name, err, subs)
		}
		for _, sub := range subs {
			if _, err := routers.AddInterface(ctx, nc, r.ID, routers.AddInterfaceOpts{SubnetID: sub.ID}).Extract(); err != nil {
				t.Fatalf("router interface on %s: %v", sub.CIDR, err)
			}
			t.Cleanup(func() {
				_, err := routers.RemoveInterface(ctx, nc, r.ID, routers.RemoveInterfaceOpts{SubnetID: sub.ID}).Extract()
				if err != nil && !gophercloud.ResponseCodeIs(err, 404) {
					t.Errorf("remove router interface on %s: %v", sub.CIDR, err)
				}
			})
		}
	}
	t.Cleanup(func() { cleanVM(t, vm1); cleanVM(t, vm2) })

	for i, n := range nets {
		peer := runBox(t, vm2, "gwpeer-"+n.label, []string{"--network", names[i]}, nil)
		cmd := "ping -6 -c 1 -W 2 " + addrOf(t, peer, true)
		if n.v4 {
			cmd += " && ping -c 1 -W 2 " + addrOf(t, peer, false)
		}
		// The container's very first action; the log says how its path was proven.
		res := ovnDocker(t, vm1, nil, "--log-level", "info", "--network", names[i], "run", "--rm", "busybox:local", "sh", "-c", cmd)
		var line string
		for _, l := range strings.Split(res.stderr, "\n") {
			if strings.Contains(l, "data path proof") {
				line = l
			}
		}
		for _, p := range n.proofs {
			if !strings.Contains(line, p) || strings.Contains(line, "not proven") {
				t.Errorf("%s: proof line %q, want %q", n.label, line, p)
			}
		}
		if res.code != 0 || strings.Count(res.stdout, "1 packets received") != len(n.proofs) {
			t.Fatalf("%s: first-action ping to %s failed: %s", n.label, peer, res)
		}
		t.Logf("%s: %s", n.label, line)
		mustOVNDocker(t, vm2, "rm", "-f", peer.name)
	}
	assertClean(t, s, vm1)
	assertClean(t, s, vm2)
}

//go:build integration

package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// pingsSoon waits until the container reaches addr, as long as the test may run: OVN
// programs a router it has just been given when it does.
func (b *box) pingsSoon(t *testing.T, addr string) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%s reaches %s", b, addr), func() (bool, string) { return b.pings(addr) })
}

// networkID finds a network the client sees by its name.
func networkID(t *testing.T, nc *gophercloud.ServiceClient, name string) string {
	t.Helper()
	pages, err := networks.List(nc, networks.ListOpts{Name: name}).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all, err := networks.ExtractNetworks(pages)
	if err != nil || len(all) != 1 {
		t.Fatalf("network %s: %v %+v", name, err, all)
	}
	return all[0].ID
}

// subnetOf returns the only subnet of the network, as the tenant sees it.
func subnetOf(t *testing.T, nc *gophercloud.ServiceClient, networkName string) subnets.Subnet {
	t.Helper()
	ctx := context.Background()
	id := networkID(t, nc, networkName)
	pages, err := subnets.List(nc, subnets.ListOpts{NetworkID: id}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	subs, err := subnets.ExtractSubnets(pages)
	if err != nil || len(subs) != 1 {
		t.Fatalf("subnets of %s (%s): %v %+v", networkName, id, err, subs)
	}
	return subs[0]
}

// TestSecurityNetworkIsolation: containers on different networks of one tenant cannot
// talk, in one VM or across VMs; once a Neutron router joins the networks they can,
// through the subnet gateway that is their default route; without it again, they cannot.
func TestSecurityNetworkIsolation(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	netX := tenantNetwork(t, vm1, uniq("isoX"))
	netY := tenantNetwork(t, vm1, uniq("isoY"))
	t.Cleanup(func() { cleanVM(t, vm1); cleanVM(t, vm2) })
	nc := s.Network(t, "tenant-a")
	subX, subY := subnetOf(t, nc, netX), subnetOf(t, nc, netY)

	bs := runBoxes(t,
		boxSpec{vm: vm1, name: "iso-x", global: []string{"--network", netX}},
		boxSpec{vm: vm2, name: "iso-x-peer", global: []string{"--network", netX}},
		boxSpec{vm: vm2, name: "iso-y", global: []string{"--network", netY}},
		boxSpec{vm: vm1, name: "iso-y-local", global: []string{"--network", netY}}) // in x's VM
	x, xPeer, y, yLocal := bs[0], bs[1], bs[2], bs[3]
	for _, b := range []*box{x, xPeer, y, yLocal} {
		sub := subX
		if b == y || b == yLocal {
			sub = subY
		}
		if gw := gatewayOf(t, b); gw != sub.GatewayIP {
			t.Fatalf("%s's default route is via %s, want its subnet's gateway %s", b, gw, sub.GatewayIP)
		}
	}

	x.mustPing(t, xPeer.ip().String()) // control: same network, other VM
	// Each container's mate is on its network in the other VM: their fences to each
	// other cross the hypervisor's bridge as anything between the networks would.
	mate := map[*box]*box{x: xPeer, xPeer: x, y: yLocal, yLocal: y}
	cut := func(when string) {
		t.Helper()
		for _, p := range [][2]*box{{x, y}, {x, yLocal}, {y, x}, {yLocal, xPeer}} {
			from, to := p[0], p[1]
			rx := to.listen(t)
			ok, out := from.pings(to.ip().String())
			// Whatever from sent went through the hypervisor's bridge before its fence
			// to its mate; then to's mate fences to on the way in, after it.
			fence(t, from.queryFence(from.sender(t)), mate[from].listen(t))
			fence(t, mate[to].queryFence(mate[to].sender(t)), rx)
			if ok {
				t.Fatalf("%s: %s on %s reached %s on the other network:\n%s", when, from, from.eth0.Network, to, out)
			}
			if got := rx.seen(fromIdentity(from.mac(), from.ip())); len(got) > 0 {
				t.Fatalf("%s: %s on %s received %d frame(s) of %s on the other network: first %s", when, to, to.eth0.Network, len(got), from, got[0])
			}
		}
	}
	cut("no router")

	// A router of the tenant joins the two subnets.
	ctx := context.Background()
	r, err := routers.Create(ctx, nc, routers.CreateOpts{Name: uniq("sec-router")}).Extract()
	if err != nil {
		t.Fatalf("create router: %v", err)
	}
	t.Cleanup(func() {
		if err := routers.Delete(ctx, nc, r.ID).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, 404) {
			t.Errorf("delete router %s: %v", r.ID, err)
		}
	})
	for _, sub := range []subnets.Subnet{subX, subY} {
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
	for _, p := range [][2]*box{{x, y}, {x, yLocal}, {y, x}, {yLocal, xPeer}} {
		p[0].pingsSoon(t, p[1].ip().String())
	}
	if ok, out := x.pings(subX.GatewayIP); !ok {
		t.Fatalf("%s cannot reach its gateway %s:\n%s", x, subX.GatewayIP, out)
	}

	// The router leaves: the networks are apart again.
	for _, sub := range []subnets.Subnet{subX, subY} {
		if _, err := routers.RemoveInterface(ctx, nc, r.ID, routers.RemoveInterfaceOpts{SubnetID: sub.ID}).Extract(); err != nil {
			t.Fatalf("remove router interface on %s: %v", sub.CIDR, err)
		}
	}
	// OVN takes the router away when it does: until then pings may still pass.
	waitUntil(t, fmt.Sprintf("without the router, %s no longer reaches %s", x, y), func() (bool, string) {
		ok, out := x.pings(y.ip().String())
		return !ok, out
	})
	cut("router removed")
}

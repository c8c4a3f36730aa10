//go:build integration

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/mtu"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestPluginTwoVMsOneNetwork is the example with Docker's own commands: LS1 made
// with docker network create in one VM and adopted under the same name in another,
// containers on it in both VMs talking, Docker showing Neutron's addresses, OVN's rows
// carrying parent and tag, and nothing left in Neutron, OVS, the kernel, the state or
// Docker once the containers and the networks are removed.
func TestPluginTwoVMsOneNetwork(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	startPlugin(t, vm1)
	startPlugin(t, vm2)
	nc := s.Network(t, "tenant-a")
	ctx := context.Background()

	ls1 := uniq("LS1")
	netID1 := pluginNetwork(t, vm1, ls1)
	neu := neutronNetworkNamed(t, nc, ls1)
	if !contains(neu.Tags, "ovn-docker-docker-network="+netID1) {
		t.Fatalf("the Neutron network made for %s lacks the Docker network's tag: %v", ls1, neu.Tags)
	}
	adoptNetwork(t, vm2, ls1)

	// Docker's view of the range is Neutron's.
	sub, err := subnets.Get(ctx, nc, neu.Subnets[0]).Extract()
	if err != nil {
		t.Fatal(err)
	}
	for _, vm := range vms {
		ipam := mustDocker(t, vm, "network", "inspect", ls1, "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}")
		if ipam != sub.CIDR+" "+sub.GatewayIP {
			t.Fatalf("%s: docker's IPAM of %s is %q, Neutron's subnet %s %s", vm.Name, ls1, ipam, sub.CIDR, sub.GatewayIP)
		}
	}

	c1, c2 := uniq("pc1"), uniq("pc2")
	runIn(t, vm1, c1, "--network", ls1, "busybox:local", "sleep", "600")
	runIn(t, vm2, c2, "--network", ls1, "busybox:local", "sleep", "600")
	ip1, ip2 := addressOf(t, vm1, ls1, c1), addressOf(t, vm2, ls1, c2)

	// Each address docker network inspect shows is a Neutron port's; the container's
	// interface has that port's MAC, the address and the network's MTU; the port hangs
	// off the VM's port in OVN with the VLAN of its subport and of its access port.
	for _, tc := range []struct {
		vm        *testutil.VM
		container string
		ip        string
	}{{vm1, c1, ip1}, {vm2, c2, ip2}} {
		p := portWithIP(t, nc, neu.ID, tc.ip)
		mac, addr := ifaceIn(t, tc.vm, tc.container, "eth0")
		if mac != p.MACAddress || addr != tc.ip+"/"+strings.SplitN(sub.CIDR, "/", 2)[1] {
			t.Fatalf("%s's eth0 is %s %s, Neutron's port %s has %s %s", tc.container, mac, addr, p.ID, p.MACAddress, tc.ip)
		}
		if mtu := mustDocker(t, tc.vm, "exec", tc.container, "cat", "/sys/class/net/eth0/mtu"); mtu != itoa(mtuOf(t, nc, neu.ID)) {
			t.Fatalf("%s's eth0 MTU %s, the network's %d", tc.container, mtu, mtuOf(t, nc, neu.ID))
		}
		vlan, ok := subportVLANs(t, nc, tc.vm)[p.ID]
		if !ok {
			t.Fatalf("port %s of %s is not a subport of %s's trunk", p.ID, tc.container, tc.vm.Name)
		}
		parent := strings.TrimSpace(s.NBCtl(t, "--bare", "--columns=parent_name", "find", "logical_switch_port", "name="+p.ID))
		tag := strings.TrimSpace(s.NBCtl(t, "--bare", "--columns=tag", "find", "logical_switch_port", "name="+p.ID))
		if parent != tc.vm.VIFID() || tag != itoa(vlan) {
			t.Fatalf("NB row of %s: parent_name=%q tag=%q, want %s and %d", p.ID, parent, tag, tc.vm.VIFID(), vlan)
		}
		ovsTag := strings.TrimSpace(tc.vm.VSCtl(t, "--bare", "--columns=tag", "find", "port", "external_ids:ovn-docker-port="+p.ID))
		if ovsTag != itoa(vlan) {
			t.Fatalf("access port of %s in %s has tag %q, want %d", p.ID, tc.vm.Name, ovsTag, vlan)
		}
	}
	if ok, out := pingFrom(t, vm1, c1, ip2); !ok {
		t.Fatalf("%s (%s) cannot ping %s (%s) at %s:\n%s", c1, vm1.Name, c2, vm2.Name, ip2, out)
	}
	if ok, out := pingFrom(t, vm2, c2, ip1); !ok {
		t.Fatalf("%s (%s) cannot ping %s (%s) at %s:\n%s", c2, vm2.Name, c1, vm1.Name, ip1, out)
	}

	// connect and disconnect: eth1 and eth2 come and go with their ports and subports.
	ls2, ls3 := uniq("LS2"), uniq("LS3")
	pluginNetwork(t, vm1, ls2)
	pluginNetwork(t, vm1, ls3, "--subnet", "10.123.45.0/24", "--gateway", "10.123.45.254")
	neu2, neu3 := neutronNetworkNamed(t, nc, ls2), neutronNetworkNamed(t, nc, ls3)
	mustDocker(t, vm1, "network", "connect", ls2, c1)
	mustDocker(t, vm1, "network", "connect", ls3, c1)
	gw3 := mustDocker(t, vm1, "network", "inspect", ls3, "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}")
	if gw3 != "10.123.45.254" {
		t.Fatalf("--gateway not kept: %s", gw3)
	}
	subs := subportVLANs(t, nc, vm1)
	seen := map[int]string{}
	var extra []ports.Port
	for i, n := range []struct{ name, id string }{{ls2, neu2.ID}, {ls3, neu3.ID}} {
		ifname := "eth" + itoa(i+1)
		ip := addressOf(t, vm1, n.name, c1)
		p := portWithIP(t, nc, n.id, ip)
		mac, addr := ifaceIn(t, vm1, c1, ifname)
		if mac != p.MACAddress || !strings.HasPrefix(addr, ip+"/") {
			t.Fatalf("%s of %s is %q %q, Neutron's port has %s %s", ifname, c1, mac, addr, p.MACAddress, ip)
		}
		if _, ok := subs[p.ID]; !ok {
			t.Fatalf("%s's port %s is not a subport", ifname, p.ID)
		}
		extra = append(extra, p)
	}
	for id, v := range subs {
		if other, dup := seen[v]; dup {
			t.Fatalf("VLAN %d used by subports %s and %s of one VM", v, other, id)
		}
		seen[v] = id
	}
	for i, n := range []string{ls2, ls3} {
		p := extra[i]
		mustDocker(t, vm1, "network", "disconnect", n, c1)
		if _, addr := ifaceIn(t, vm1, c1, "eth"+itoa(i+1)); addr != "" {
			t.Fatalf("eth%d still in %s after disconnect", i+1, c1)
		}
		// Released off Docker's call: the plugin asks Docker whether the container left
		// the network or stopped once the call has returned.
		took := waitUntil(t, "port "+p.ID+" gone after disconnect", func() (bool, string) {
			_, err := ports.Get(ctx, nc, p.ID).Extract()
			return gophercloud.ResponseCodeIs(err, http.StatusNotFound), fmt.Sprint(err)
		})
		t.Logf("disconnect: port %s released %s after docker network disconnect returned", p.ID, fmtMS(took))
		if _, ok := subportVLANs(t, nc, vm1)[p.ID]; ok {
			t.Fatalf("port %s still a subport after disconnect", p.ID)
		}
		if out := strings.TrimSpace(vm1.VSCtl(t, "--bare", "--columns=name", "find", "port", "external_ids:ovn-docker-port="+p.ID)); out != "" {
			t.Fatalf("access port %s still on the bridge after disconnect", out)
		}
	}
	if ok, out := pingFrom(t, vm1, c1, ip2); !ok {
		t.Fatalf("eth0 broken by connect/disconnect:\n%s", out)
	}

	// Removal: containers, then the networks; the adopted one first, since the network
	// vm1 made is deleted in Neutron with its Docker network.
	mustDocker(t, vm1, "rm", "-f", c1)
	mustDocker(t, vm2, "rm", "-f", c2)
	mustDocker(t, vm2, "network", "rm", ls1)
	if _, err := networks.Get(ctx, nc, neu.ID).Extract(); err != nil {
		t.Fatalf("removing the adopting Docker network touched the Neutron network: %v", err)
	}
	mustDocker(t, vm1, "network", "rm", ls1, ls2, ls3)
	for _, id := range []string{neu.ID, neu2.ID, neu3.ID} {
		assertNetworkGone(t, nc, id)
	}
	assertPluginClean(t, s, vm1)
	assertPluginClean(t, s, vm2)
}

// TestPluginRefusals: what the plugin cannot honour is refused with a clear message,
// and leaves nothing behind.
func TestPluginRefusals(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	d := startPlugin(t, vm)
	nc := s.Network(t, "tenant-a")
	before := provisionalNetworks(t, nc)
	ls := uniq("LSR")
	pluginNetwork(t, vm, ls)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--rm", "--network", ls, "--mac-address", "02:42:ac:11:00:02", "busybox:local", "true"}, "port security"},
		{[]string{"network", "create", "-d", "ovn", uniq("nodriver")}, "--ipam-driver ovn"},
		{[]string{"network", "create", "-d", "ovn", "--ipam-driver", "ovn", "--ipam-opt", "neutron.net.name=" + uniq("missing"), uniq("adopt")}, "not found"},
		{[]string{"network", "create", "-d", "ovn", "--ipam-driver", "ovn", "-o", "neutron.net.nmae=x", uniq("typo")}, "unknown option neutron.net.nmae"},
	} {
		out, err := dockerIn(vm, tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("docker %s: %v, want an error with %q:\n%s", strings.Join(tc.args, " "), err, tc.want, out)
		}
	}
	// --ip (a user-defined subnet in Docker's eyes) makes a port with that address, and
	// --rm lets it go: the checks below find nothing of it.
	ls2 := uniq("LSR2")
	pluginNetwork(t, vm, ls2, "--subnet", "10.124.46.0/24")
	if out, err := dockerIn(vm, "run", "--rm", "--network", ls2, "--ip", "10.124.46.77", "busybox:local", "ip", "-o", "addr", "show", "eth0"); err != nil || !strings.Contains(out, "10.124.46.77/24") {
		t.Errorf("--ip: %v\n%s", err, out)
	}
	mustDocker(t, vm, "network", "rm", ls, ls2)
	// Docker rolled back the networks whose creation failed, and the plugin deleted what
	// it had made for them.
	assertPluginClean(t, s, vm)
	// Only this VM's: another test's plugin, in another VM, may be making a network of
	// its own right now (named docker-pool-ID until its Docker network has a name).
	for id, name := range provisionalNetworks(t, nc) {
		if _, old := before[id]; !old && agentSaid(d, "neutron_network="+id) {
			t.Errorf("Neutron network %s (%s) left behind", name, id)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mtuOf(t *testing.T, nc *gophercloud.ServiceClient, id string) int {
	t.Helper()
	var n struct {
		networks.Network
		mtu.NetworkMTUExt
	}
	if err := networks.Get(context.Background(), nc, id).ExtractInto(&n); err != nil {
		t.Fatal(err)
	}
	if n.MTU == 0 {
		t.Fatalf("network %s: no MTU", id)
	}
	return n.MTU
}

// provisionalNetworks lists the Neutron networks still under the names the plugin gives
// a network it makes before it learns Docker's name for it.
func provisionalNetworks(t *testing.T, nc *gophercloud.ServiceClient) map[string]string {
	t.Helper()
	pages, err := networks.List(nc, networks.ListOpts{}).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all, _ := networks.ExtractNetworks(pages)
	out := map[string]string{}
	for _, n := range all {
		if strings.HasPrefix(n.Name, "docker-") {
			out[n.ID] = n.Name
		}
	}
	return out
}

// TestPluginNetworkRmWithOrphanedPort: a port Neutron made for a daemon killed while it
// waited (made here by hand, with ovn-docker's name and the VM's marker, on a network
// the plugin made) does not keep docker network rm from deleting the Neutron network,
// and nothing of it is left.
func TestPluginNetworkRmWithOrphanedPort(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	startPlugin(t, vm)
	nc := s.Network(t, "tenant-"+vm.Env["STACK_VM_TENANT"])
	ls := uniq("LSO")
	pluginNetwork(t, vm, ls)
	neu := neutronNetworkNamed(t, nc, ls)
	p, err := ports.Create(context.Background(), nc, ports.CreateOpts{NetworkID: neu.ID,
		Name: neutron.PortName("dead0000cafe"), Description: neutron.Description(vm.VIFID())}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	mustDocker(t, vm, "network", "rm", ls)
	assertNetworkGone(t, nc, neu.ID)
	if _, err := ports.Get(context.Background(), nc, p.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("the orphaned port %s: %v", p.ID, err)
	}
	assertPluginClean(t, s, vm)
}

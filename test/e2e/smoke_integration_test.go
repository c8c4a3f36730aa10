//go:build integration

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/mtu"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/trunks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// The stack's smoke tests: each piece answers, and the spec's nested data path carries
// real packets when built by hand with the stack's own CLIs.

func TestSmokeKeystoneIssuesTenantToken(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	pc, _ := s.Provider(t, "tenant-a")
	if pc.TokenID == "" {
		t.Fatal("no token")
	}
	res := tokens.Get(context.Background(), identityClient(t, pc), pc.TokenID)
	project, err := res.ExtractProject()
	if err != nil {
		t.Fatalf("validate token: %v", err)
	}
	if project.Name != "tenant-a" {
		t.Fatalf("token scoped to %q, want tenant-a", project.Name)
	}
}

func TestSmokeNeutronAnswersEachTenant(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	for _, tc := range []struct{ cloud, own, other string }{
		{"tenant-a", "mgmt-a", "mgmt-b"},
		{"tenant-b", "mgmt-b", "mgmt-a"},
	} {
		nc := s.Network(t, tc.cloud)
		names := networkNames(t, nc)
		if tc.cloud == "tenant-a" && !names[tc.own] {
			t.Errorf("%s does not see its network %s (sees %v)", tc.cloud, tc.own, names)
		}
		if names[tc.other] {
			t.Errorf("%s sees the other tenant's network %s", tc.cloud, tc.other)
		}
	}
}

func TestSmokeVMsPingThroughOVN(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	if len(s.VMs) < 2 {
		t.Fatalf("the stack needs 2 VMs, has %d", len(s.VMs))
	}
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	// vm1's eth0 is bound on br-int to its Neutron port: OVN says so.
	chassis := strings.TrimSpace(testutil.MustRun(t, "ovn-sbctl", "--db="+s.Env["STACK_SB"], "--bare",
		"--columns=chassis", "find", "port_binding", "logical_port="+vm1.VIFID()))
	if chassis == "" {
		t.Fatalf("%s's port %s is not bound to a chassis", vm1.Name, vm1.VIFID())
	}
	if ok, out := testutil.Ping(vm1.Name, vm2.Env["STACK_VM_IP"], 3); !ok {
		t.Fatalf("%s cannot ping %s at %s:\n%s", vm1.Name, vm2.Name, vm2.Env["STACK_VM_IP"], out)
	}
}

func TestSmokeTenantBCannotSeeTenantAVMPort(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm1 := s.TenantVMs(t, 1)[0]
	if vm1.Env["STACK_VM_TENANT"] != "a" {
		t.Fatalf("%s belongs to tenant %s, want a", vm1.Name, vm1.Env["STACK_VM_TENANT"])
	}
	ctx := context.Background()
	if _, err := ports.Get(ctx, s.Network(t, "tenant-a"), vm1.VIFID()).Extract(); err != nil {
		t.Fatalf("tenant-a cannot read its own VM port: %v", err)
	}
	_, err := ports.Get(ctx, s.Network(t, "tenant-b"), vm1.VIFID()).Extract()
	if !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("tenant-b reading tenant-a's VM port: got %v, want 404", err)
	}
}

// TestSmokeNestedPortsPingThroughTrunks builds the spec's data path by hand: a tenant
// network, a trunk on each VM's port, a subport per "container" (VLAN 100 in both VMs),
// a namespace per container whose veth is an access port tag=100 on the VM's bridge.
func TestSmokeNestedPortsPingThroughTrunks(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	ctx := context.Background()
	nc := s.Network(t, "tenant-a")
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e6)

	var net struct {
		networks.Network
		mtu.NetworkMTUExt
	}
	if err := networks.Create(ctx, nc, networks.CreateOpts{Name: "smoke-" + suffix}).ExtractInto(&net); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = networks.Delete(ctx, nc, net.ID).ExtractErr() })
	if _, err := subnets.Create(ctx, nc, subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.199.0.0/24",
		IPVersion: gophercloud.IPv4}).Extract(); err != nil {
		t.Fatal(err)
	}

	type ctr struct {
		vm   *testutil.VM
		port *ports.Port
		ns   string
	}
	var ctrs []ctr
	for i, vm := range s.TenantVMs(t, 2) {
		trunkID := ensureTrunk(t, nc, vm.VIFID())
		p, err := ports.Create(ctx, nc, ports.CreateOpts{NetworkID: net.ID, Name: fmt.Sprintf("smoke-%s-c%d", suffix, i)}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ports.Delete(ctx, nc, p.ID).ExtractErr() })
		if _, err := trunks.AddSubports(ctx, nc, trunkID, trunks.AddSubportsOpts{Subports: []trunks.Subport{{
			PortID: p.ID, SegmentationType: "vlan", SegmentationID: 100}}}).Extract(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = trunks.RemoveSubports(ctx, nc, trunkID, trunks.RemoveSubportsOpts{Subports: []trunks.RemoveSubport{{PortID: p.ID}}}).Extract()
		})

		ns := fmt.Sprintf("smoke%s-c%d", suffix, i)
		host := fmt.Sprintf("sm%sh%d", suffix, i)
		testutil.MustRun(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _, _ = runQuiet("ip", "netns", "del", ns) })
		testutil.MustRun(t, "ip", "-n", vm.Name, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
		t.Cleanup(func() { _, _ = runQuiet("ip", "-n", vm.Name, "link", "del", host) })
		testutil.MustRun(t, "ip", "-n", vm.Name, "link", "set", host, "up")
		ip := p.FixedIPs[0].IPAddress
		testutil.MustRun(t, "ip", "-n", ns, "link", "set", "eth0", "address", p.MACAddress, "mtu", fmt.Sprint(net.MTU))
		testutil.MustRun(t, "ip", "-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
		testutil.MustRun(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		vm.VSCtl(t, "add-port", "br0", host, "tag=100")
		t.Cleanup(func() { _, _ = runQuiet("ovs-vsctl", "--db="+vm.OVSDB(), "--if-exists", "del-port", "br0", host) })
		ctrs = append(ctrs, ctr{vm: vm, port: p, ns: ns})
	}

	// Neutron told OVN who the parent is and which tag to strip.
	for _, c := range ctrs {
		parent := strings.TrimSpace(s.NBCtl(t, "--bare", "--columns=parent_name", "find", "logical_switch_port", "name="+c.port.ID))
		tag := strings.TrimSpace(s.NBCtl(t, "--bare", "--columns=tag", "find", "logical_switch_port", "name="+c.port.ID))
		if parent != c.vm.VIFID() || tag != "100" {
			t.Fatalf("NB port %s: parent_name=%q tag=%q, want %s and 100", c.port.ID, parent, tag, c.vm.VIFID())
		}
	}
	if ok, out := waitPing(t, ctrs[0].ns, ctrs[1].port.FixedIPs[0].IPAddress); !ok {
		t.Fatalf("container in %s cannot ping container in %s:\n%s", ctrs[0].vm.Name, ctrs[1].vm.Name, out)
	}
}

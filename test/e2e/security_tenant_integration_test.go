//go:build integration

package e2e

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsbinding"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/trunks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// neutronSnapshot is what admin sees of the VMs' container ports, their trunks and
// subports, and every port of the networks, as one comparable text.
func neutronSnapshot(t *testing.T, admin *gophercloud.ServiceClient, vifs, networkIDs []string) string {
	t.Helper()
	ctx := context.Background()
	var lines []string
	list := func(what string, opts ports.ListOpts) {
		pages, err := ports.List(admin, opts).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := ports.ExtractPorts(pages)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			lines = append(lines, fmt.Sprintf("%s port %s project %s owner %s", what, p.ID, p.ProjectID, p.DeviceOwner))
		}
	}
	for _, vif := range vifs {
		list("vm "+vif, ports.ListOpts{Description: neutron.Description(vif)})
		pages, err := trunks.List(admin, trunks.ListOpts{PortID: vif}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		trs, err := trunks.ExtractTrunks(pages)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range trs {
			lines = append(lines, fmt.Sprintf("vm %s trunk %s project %s", vif, tr.ID, tr.ProjectID))
			for _, sp := range tr.Subports {
				lines = append(lines, fmt.Sprintf("vm %s trunk %s subport %s vlan %d", vif, tr.ID, sp.PortID, sp.SegmentationID))
			}
		}
	}
	for _, n := range networkIDs {
		list("network "+n, ports.ListOpts{NetworkID: n})
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestSecurityTenantIsolation: tenant-b's credentials cannot put a container behind
// tenant-a's VM port, on tenant-a's networks or in its security groups, nor remove
// tenant-a's containers, through ovn-docker (which says so plainly) or through Neutron's
// API directly; admin's credentials, which see every project, cannot carry a container of
// tenant-a's VM onto tenant-b's network either; nothing is created in Neutron or in
// either VM's OVS. And the root of
// tenant-b's VM, tagging frames with every VLAN on its uplink, reaches tenant-a's
// containers with none: it reaches only its own containers' networks.
func TestSecurityTenantIsolation(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vmsA := s.TenantVMs(t, 2)
	vmA, vmA2 := vmsA[0], vmsA[1]
	vmB := s.TenantBVM(t)
	if vmB.Env["STACK_VM_TENANT"] != "b" || vmA.Env["STACK_VM_TENANT"] != "a" {
		t.Fatalf("%s must be tenant-a's and %s tenant-b's", vmA.Name, vmB.Name)
	}
	netA := tenantNetwork(t, vmA, uniq("tenA"))
	netB := tenantNetwork(t, vmB, uniq("tenB"))
	t.Cleanup(func() { cleanVM(t, vmA); cleanVM(t, vmA2); cleanVM(t, vmB) })
	bs := runBoxes(t,
		boxSpec{vm: vmA, name: "ten-a1", global: []string{"--network", netA}},
		boxSpec{vm: vmA2, name: "ten-a2", global: []string{"--network", netA}},
		boxSpec{vm: vmB, name: "ten-b1", global: []string{"--network", netB}},
		boxSpec{vm: vmB, name: "ten-b2", global: []string{"--network", netB}})
	a1, a2, b1, b2 := bs[0], bs[1], bs[2], bs[3]
	a1.mustPing(t, a2.ip().String())
	b1.mustPing(t, b2.ip().String())

	ctx := context.Background()
	admin, ncA, ncB := s.Network(t, "admin"), s.Network(t, "tenant-a"), s.Network(t, "tenant-b")
	netAID, netBID := networkID(t, ncA, netA), networkID(t, ncB, netB)
	vifs, nets := []string{vmA.VIFID(), vmA2.VIFID(), vmB.VIFID()}, []string{netAID, netBID}
	pcB, _ := s.Provider(t, "tenant-b")
	tokenB, passwordB := pcB.TokenID, vmB.Env["OS_PASSWORD"]
	sgA := defaultGroup(t, ncA)

	t.Run("ovn-docker refuses", func(t *testing.T) {
		userB := []string{"OS_USERNAME=user-b", "OS_PASSWORD=" + passwordB, "OS_PROJECT_NAME=tenant-b"}
		cloudB := []string{"OS_CLOUD=tenant-b", "OS_CLIENT_CONFIG_FILE=" + s.CloudsFile(), "OS_USERNAME=", "OS_PASSWORD="}
		run := []string{"run", "-d", "busybox:local", "sleep", "60"}
		// Every case must leave all of this as it is.
		before := neutronSnapshot(t, admin, vifs, nets)
		fpA, fpB := measure(t, s, vmA), measure(t, s, vmB)
		const notVisible = "the VM's port is not visible to this project"
		const otherProject = "a container joins only networks of its VM's project, or shared ones"
		adminEnv := []string{"OS_USERNAME=admin", "OS_PASSWORD=" + s.Env["OS_PASSWORD"], "OS_PROJECT_NAME=admin"}
		for _, tc := range []struct {
			name string
			vm   *testutil.VM
			env  []string
			args []string
			want string
		}{
			{"tenant-b's user, tenant-a's VM port as vif-id", vmA, userB,
				append([]string{"--vif-id", vmA.VIFID(), "--network", netB}, run...), notVisible},
			{"tenant-b's user, the VM's port found by the uplink's MAC", vmA, append(userB, "OVN_DOCKER_VIF_ID="),
				append([]string{"--network", netB}, run...), notVisible},
			{"tenant-b's cloud of clouds.yaml", vmA, cloudB, append([]string{"--network", netB}, run...), notVisible},
			{"tenant-b's token", vmA, nil, append([]string{"--cred=" + tokenB, "--network", netB}, run...), notVisible},
			{"tenant-b's user in binding-profile mode", vmA, userB,
				append([]string{"--mode=binding-profile", "--network", netB}, run...), notVisible},
			{"tenant-b's user removes tenant-a's container", vmA, userB, []string{"rm", "-f", a1.name}, notVisible},
			{"tenant-b's user runs gc in tenant-a's VM", vmA, userB, []string{"gc"}, notVisible},
			{"tenant-a's network by name, from tenant-b's VM", vmB, nil,
				append([]string{"--network", netA}, run...), fmt.Sprintf("network %q: not found (or not visible to this project)", netA)},
			{"tenant-a's network by ID, from tenant-b's VM", vmB, nil,
				append([]string{"--network", netAID}, run...), fmt.Sprintf("network %q: not found (or not visible to this project)", netAID)},
			{"tenant-a's security group, from tenant-b's VM", vmB, nil,
				append([]string{"--network", netB, "--security-group", sgA}, run...), fmt.Sprintf("security group %q: not found", sgA)},
			{"tenant-a's user, tenant-b's VM port as vif-id", vmA, nil,
				append([]string{"--vif-id", vmB.VIFID(), "--network", netA}, run...), notVisible},
			// Credentials that see every project must not carry a container of tenant-a's
			// VM onto tenant-b's network either.
			{"admin, tenant-b's network from tenant-a's VM", vmA, adminEnv,
				append([]string{"--network", netBID}, run...), otherProject},
			{"admin in binding-profile mode, tenant-b's network from tenant-a's VM", vmA, adminEnv,
				append([]string{"--mode=binding-profile", "--network", netBID}, run...), otherProject},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := ovnDocker(t, tc.vm, tc.env, tc.args...)
				if r.code == 0 {
					t.Fatalf("succeeded: %s", r)
				}
				lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
				if len(lines) != 1 || !strings.HasPrefix(lines[0], "ovn-docker: ") || !strings.Contains(lines[0], tc.want) {
					t.Fatalf("want one line \"ovn-docker: ...%s...\", got: %s", tc.want, r)
				}
				t.Log(lines[0])
				for _, secret := range []string{tokenB, passwordB, vmA.Env["OS_PASSWORD"], s.Env["OS_PASSWORD"]} {
					if strings.Contains(r.stdout+r.stderr, secret) {
						t.Fatalf("a secret appears in the output: %s", r)
					}
				}
				if after := neutronSnapshot(t, admin, vifs, nets); after != before {
					t.Fatalf("Neutron changed:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				if after := measure(t, s, vmA); fmt.Sprint(after) != fmt.Sprint(fpA) {
					t.Fatalf("%s changed:\nbefore %+v\nafter  %+v", vmA.Name, fpA, after)
				}
				if after := measure(t, s, vmB); fmt.Sprint(after) != fmt.Sprint(fpB) {
					t.Fatalf("%s changed:\nbefore %+v\nafter  %+v", vmB.Name, fpB, after)
				}
			})
		}
		// tenant-a's container kept its port and its network.
		if _, err := ports.Get(ctx, admin, a1.eth0.Port).Extract(); err != nil {
			t.Fatalf("%s's port: %v", a1, err)
		}
		a1.mustPing(t, a2.ip().String())
	})

	t.Run("Neutron refuses", func(t *testing.T) {
		// Material of tenant-b's own, and a plain port of tenant-a's.
		pB, err := ports.Create(ctx, ncB, ports.CreateOpts{NetworkID: netBID, Name: uniq("sec-b")}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ports.Delete(ctx, ncB, pB.ID).ExtractErr() })
		pA, err := ports.Create(ctx, ncA, ports.CreateOpts{NetworkID: netAID, Name: uniq("sec-a")}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ports.Delete(ctx, ncA, pA.ID).ExtractErr() })
		trA := trunkOf(t, admin, vmA.VIFID())
		before := neutronSnapshot(t, admin, vifs, nets)

		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"add tenant-b's port to tenant-a's VM trunk", func() error {
				_, err := trunks.AddSubports(ctx, ncB, trA, trunks.AddSubportsOpts{Subports: []trunks.Subport{{
					PortID: pB.ID, SegmentationType: "vlan", SegmentationID: 4000}}}).Extract()
				return err
			}},
			{"a trunk whose parent is tenant-a's port", func() error {
				tr, err := trunks.Create(ctx, ncB, trunks.CreateOpts{PortID: pA.ID, Name: uniq("sec-b")}).Extract()
				if err == nil {
					t.Cleanup(func() { _ = trunks.Delete(ctx, admin, tr.ID).ExtractErr() })
				}
				return err
			}},
			{"a port on tenant-a's network", func() error {
				p, err := ports.Create(ctx, ncB, ports.CreateOpts{NetworkID: netAID}).Extract()
				if err == nil {
					t.Cleanup(func() { _ = ports.Delete(ctx, admin, p.ID).ExtractErr() })
				}
				return err
			}},
			{"a port whose binding:profile parent is tenant-a's VM port", func() error {
				p, err := ports.Create(ctx, ncB, portsbinding.CreateOptsExt{
					CreateOptsBuilder: ports.CreateOpts{NetworkID: netBID},
					Profile:           map[string]any{"parent_name": vmA.VIFID(), "tag": 4001},
				}).Extract()
				if err == nil {
					t.Cleanup(func() { _ = ports.Delete(ctx, admin, p.ID).ExtractErr() })
				}
				return err
			}},
			{"rename tenant-a's container port", func() error {
				name := "taken-over"
				_, err := ports.Update(ctx, ncB, a1.eth0.Port, ports.UpdateOpts{Name: &name}).Extract()
				return err
			}},
			{"delete tenant-a's container port", func() error { return ports.Delete(ctx, ncB, a1.eth0.Port).ExtractErr() }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.call()
				if err == nil {
					t.Fatal("Neutron accepted it")
				}
				t.Logf("refused: %v", err)
				if !gophercloud.ResponseCodeIs(err, 404) && !gophercloud.ResponseCodeIs(err, 403) {
					t.Errorf("refused, but not as unknown (404) or forbidden (403): %v", err)
				}
				if after := neutronSnapshot(t, admin, vifs, nets); after != before {
					t.Fatalf("Neutron changed:\nbefore:\n%s\nafter:\n%s", before, after)
				}
			})
		}
		a1.mustPing(t, a2.ip().String())
	})

	t.Run("tenant-b's VM root tags frames with every VLAN", func(t *testing.T) {
		uplink := vmB.Env["OVN_DOCKER_UPLINK"]
		if uplink == "" {
			uplink = "eth0"
		}
		vmMAC, err := net.ParseMAC(vmB.Env["STACK_VM_MAC"])
		if err != nil {
			t.Fatal(err)
		}
		tx := openRaw(t, "/run/netns/"+vmB.Name, uplink, 0)
		// Control: with its own container's VLAN, tenant-b's VM root does speak for that
		// container on tenant-b's network (the VM owns its containers).
		rx := b2.listen(t)
		ok := marker(t, "control")
		tx.send(t, ether(b2.mac(), b1.mac(), 0x0800, icmpEcho(b1.ip(), b2.ip(), 1, ok), dot1q(b1.eth0.VLAN)))
		if !rx.waitSeen(t, withMarker(ok)) {
			t.Fatalf("control: %s did not receive a frame tagged %d from %s's uplink", b2, b1.eth0.VLAN, vmB.Name)
		}
		// The same way, as its container b1, the VM root paces its sweep: its fences to
		// b2 pass the hypervisor's bridge after every frame sent before them.
		asB1 := fencer{stamps: true, send: func(t *testing.T, to *box, m []byte) {
			t.Helper()
			tx.send(t, ether(to.mac(), b1.mac(), 0x0800, icmpTimestamp(b1.ip(), to.ip(), m), dot1q(b1.eth0.VLAN)))
		}}

		m := marker(t, "cross-tenant")
		rx1, rx2 := a1.listen(t), a2.listen(t)
		e1, e2 := a1.snmp(t, "Icmp", "InEchos"), a2.snmp(t, "Icmp", "InEchos")
		var sweep [][]byte
		for v := 1; v <= 4094; v++ {
			sweep = append(sweep,
				ether(a1.mac(), vmMAC, 0x0800, icmpEcho(b1.ip(), a1.ip(), uint16(v), m), dot1q(v)),
				ether(a2.mac(), a1.mac(), 0x0800, icmpEcho(a1.ip(), a2.ip(), uint16(v), m), dot1q(v)))
		}
		tx.sendPaced(t, asB1, rx, sweep...)
		rx.stop()
		// Whatever of the sweep the hypervisor's bridge sent towards tenant-a's VMs, it
		// sent before the last fence reached b2; a1 and a2 fence each other on the rest
		// of the way, which they share with it.
		fence(t, a2.queryFence(a2.sender(t)), rx1)
		fence(t, a1.queryFence(a1.sender(t)), rx2)
		for _, c := range []struct {
			b     *box
			rx    *capture
			echos int
		}{{a1, rx1, e1}, {a2, rx2, e2}} {
			if got := c.rx.seen(withMarker(m)); len(got) > 0 {
				t.Errorf("tenant-a's %s received %d frame(s) from tenant-b's VM: first %s", c.b, len(got), got[0])
			}
			if after := c.b.snmp(t, "Icmp", "InEchos"); after != c.echos {
				t.Errorf("tenant-a's %s counted %d echo request(s)", c.b, after-c.echos)
			}
		}
	})
}

// defaultGroup is the ID of the project's security group "default".
func defaultGroup(t *testing.T, nc *gophercloud.ServiceClient) string {
	t.Helper()
	pages, err := groups.List(nc, groups.ListOpts{Name: "default"}).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gs, err := groups.ExtractGroups(pages)
	if err != nil || len(gs) != 1 {
		t.Fatalf("the project's default security group: %v %+v", err, gs)
	}
	return gs[0].ID
}

// trunkOf is the ID of the trunk whose parent is the port.
func trunkOf(t *testing.T, nc *gophercloud.ServiceClient, portID string) string {
	t.Helper()
	pages, err := trunks.List(nc, trunks.ListOpts{PortID: portID}).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	trs, err := trunks.ExtractTrunks(pages)
	if err != nil || len(trs) != 1 {
		t.Fatalf("trunk of port %s: %v %+v", portID, err, trs)
	}
	return trs[0].ID
}

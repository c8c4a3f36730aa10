//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/trunks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

type psEntry struct {
	Container string   `json:"container"`
	Sandbox   string   `json:"sandbox"`
	Name      string   `json:"name"`
	Network   string   `json:"network"`
	Interface string   `json:"interface"`
	VLAN      int      `json:"vlan"`
	MAC       string   `json:"mac"`
	IPs       []string `json:"ips"`
	Port      string   `json:"port_id"`
	HostIf    string   `json:"host_interface"`
	State     string   `json:"state"`
}

func ps(t *testing.T, vm *testutil.VM) []psEntry {
	t.Helper()
	var rows []psEntry
	if err := json.Unmarshal([]byte(mustOVNDocker(t, vm, "ps", "-f", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// entryOf returns the ps entry of a container's interface.
func entryOf(t *testing.T, vm *testutil.VM, name, ifname string) psEntry {
	t.Helper()
	for _, r := range ps(t, vm) {
		if r.Name == name && r.Interface == ifname {
			return r
		}
	}
	t.Fatalf("ps in %s shows no %s of %s: %+v", vm.Name, ifname, name, ps(t, vm))
	return psEntry{}
}

func ipOf(e psEntry) string { return strings.SplitN(e.IPs[0], "/", 2)[0] }

type netRow struct {
	Name  string   `json:"name"`
	ID    string   `json:"id"`
	CIDRs []string `json:"cidrs"`
	MTU   int      `json:"mtu"`
}

// TestWorkflow is the spec's example end to end, with the spec's own command lines:
// networks made and listed, containers in two VMs on one network talking, a container
// on another network cut off, OVN and OVS holding what the design says, and nothing
// left after rm.
func TestWorkflow(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	t.Cleanup(func() { cleanVM(t, vm1); cleanVM(t, vm2) })
	pc, _ := s.Provider(t, "tenant-a")
	token := pc.TokenID
	cred := "--cred=" + token

	ls1, ls2 := uniq("LS1"), uniq("LS2")
	out := mustOVNDocker(t, vm1, cred, "create", "network", ls1)
	if !strings.Contains(out, "created network "+ls1) || !strings.Contains(out, "/24") {
		t.Fatalf("create network said: %s", out)
	}
	t.Cleanup(func() { ovnDocker(t, vm1, nil, "delete", "network", ls1) })
	mustOVNDocker(t, vm1, cred, "create", "network", ls2, "--subnet", "10.77.0.0/24")
	t.Cleanup(func() { ovnDocker(t, vm1, nil, "delete", "network", ls2) })

	var nets []netRow
	if err := json.Unmarshal([]byte(mustOVNDocker(t, vm1, cred, "list", "networks", "-f", "json")), &nets); err != nil {
		t.Fatal(err)
	}
	seen := map[string]netRow{}
	for _, n := range nets {
		seen[n.Name] = n
	}
	for _, name := range []string{ls1, ls2} {
		n, ok := seen[name]
		if !ok || len(n.CIDRs) != 1 || n.MTU == 0 {
			t.Fatalf("list networks: %s missing or without CIDR/MTU: %+v", name, nets)
		}
	}
	if seen[ls2].CIDRs[0] != "10.77.0.0/24" {
		t.Fatalf("LS2's CIDR is %v", seen[ls2].CIDRs)
	}
	table := mustOVNDocker(t, vm1, cred, "list", "networks")
	if !strings.Contains(table, ls1) || !strings.Contains(table, "MTU") {
		t.Fatalf("list networks table:\n%s", table)
	}

	// The spec's run command, in each VM.
	run := func(vm *testutil.VM, net, name string) {
		t.Helper()
		out := mustOVNDocker(t, vm, cred, "--vif-id="+vm.VIFID(), "--network="+net, "run", "-d", "--net=none",
			"--name", name, "busybox:local", "/bin/sh", "-c", "while true; do echo hello world; sleep 1; done")
		if id := strings.TrimSpace(out); len(id) != 64 {
			t.Fatalf("run printed %q, want a container ID", out)
		}
	}
	run(vm1, ls1, "c1")
	run(vm2, ls1, "c2")
	run(vm1, ls2, "c3")
	c1, c2, c3 := entryOf(t, vm1, "c1", "eth0"), entryOf(t, vm2, "c2", "eth0"), entryOf(t, vm1, "c3", "eth0")
	if c3.VLAN == c1.VLAN {
		t.Fatalf("c1 and c3 share VLAN %d in one VM", c1.VLAN)
	}

	if out, err := dockerIn(vm1, "exec", "c1", "ping", "-c", "3", "-W", "2", ipOf(c2)); err != nil {
		t.Fatalf("c1 (vm1) cannot ping c2 (vm2) at %s: %v\n%s", ipOf(c2), err, out)
	}
	if out, err := dockerIn(vm2, "exec", "c2", "ping", "-c", "3", "-W", "2", ipOf(c1)); err != nil {
		t.Fatalf("c2 (vm2) cannot ping c1 (vm1) at %s: %v\n%s", ipOf(c1), err, out)
	}
	if out, err := dockerIn(vm1, "exec", "c3", "ping", "-c", "2", "-W", "1", ipOf(c1)); err == nil {
		t.Fatalf("c3 on %s reached c1 on %s:\n%s", ls2, ls1, out)
	}
	// Its interface is Neutron's: MAC, address, MTU.
	link, _ := dockerIn(vm1, "exec", "c1", "ip", "addr", "show", "eth0")
	if !strings.Contains(link, c1.MAC) || !strings.Contains(link, c1.IPs[0]) || !strings.Contains(link, "mtu 1442") {
		t.Fatalf("c1's eth0 is not Neutron's (%s %s mtu 1442):\n%s", c1.MAC, c1.IPs[0], link)
	}

	// OVN: the container's port hangs off the VM's port with the container's VLAN.
	parent := strings.TrimSpace(s.NBCtl(t, "--bare", "--columns=parent_name", "find", "logical_switch_port", "name="+c1.Port))
	tag := strings.TrimSpace(s.NBCtl(t, "--bare", "--columns=tag", "find", "logical_switch_port", "name="+c1.Port))
	if parent != vm1.VIFID() || tag != itoa(c1.VLAN) {
		t.Fatalf("NB row of c1's port: parent_name=%q tag=%q, want %s and %d", parent, tag, vm1.VIFID(), c1.VLAN)
	}
	// OVS in the VM: the access port with that tag.
	if got := strings.TrimSpace(vm1.VSCtl(t, "get", "port", c1.HostIf, "tag")); got != itoa(c1.VLAN) {
		t.Fatalf("access port %s has tag %s, want %d", c1.HostIf, got, c1.VLAN)
	}

	// delete network refuses while containers use it.
	if r := ovnDocker(t, vm1, nil, "delete", "network", ls1); r.code == 0 || !strings.Contains(r.stderr, "used by") {
		t.Fatalf("delete network while in use: %s", r)
	}

	// rm releases everything of c1.
	mustOVNDocker(t, vm1, "rm", "-f", "c1")
	nc := s.Network(t, "tenant-a")
	if _, err := ports.Get(context.Background(), nc, c1.Port).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("c1's Neutron port %s still there after rm: %v", c1.Port, err)
	}
	tp, _ := trunks.List(nc, trunks.ListOpts{PortID: vm1.VIFID()}).AllPages(context.Background())
	trs, _ := trunks.ExtractTrunks(tp)
	for _, tr := range trs {
		for _, sp := range tr.Subports {
			if sp.PortID == c1.Port || sp.SegmentationID == c1.VLAN {
				t.Fatalf("trunk still has c1's subport: %+v", sp)
			}
		}
	}
	if out := vm1.VSCtl(t, "--bare", "--columns=name", "find", "port", "name="+c1.HostIf); strings.TrimSpace(out) != "" {
		t.Fatalf("OVS port %s still there", c1.HostIf)
	}
	if _, err := runQuiet("ip", "-n", vm1.Name, "link", "show", c1.HostIf); err == nil {
		t.Fatalf("veth %s still there", c1.HostIf)
	}
	for _, r := range ps(t, vm1) {
		if r.VLAN == c1.VLAN {
			t.Fatalf("VLAN %d still held: %+v", c1.VLAN, r)
		}
	}
	if out, err := dockerIn(vm1, "ps", "-aq", "--filter", "name=c1"); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("c1 or its sandbox still exists: %q %v", out, err)
	}

	mustOVNDocker(t, vm1, "rm", "-f", "c3")
	mustOVNDocker(t, vm2, "rm", "-f", "c2")
	assertClean(t, s, vm1)
	assertClean(t, s, vm2)
	mustOVNDocker(t, vm1, "delete", "network", ls1)
	mustOVNDocker(t, vm1, "delete", "network", ls2)
}

// TestNetworkReadyBeforeCommand: a container whose very first action is to reach a peer
// succeeds, because the network is plumbed and bound by OVN before the command starts.
func TestNetworkReadyBeforeCommand(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	t.Cleanup(func() { cleanVM(t, vm1); cleanVM(t, vm2) })
	ls := uniq("ready")
	mustOVNDocker(t, vm1, "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm1, nil, "delete", "network", ls) })
	mustOVNDocker(t, vm2, "--network", ls, "run", "-d", "--name", "peer", "busybox:local", "sleep", "600")
	peer := entryOf(t, vm2, "peer", "eth0")
	for i := 0; i < 3; i++ {
		// Foreground, --rm: the exit code is ping's, and everything goes away after.
		r := ovnDocker(t, vm1, nil, "--network", ls, "run", "--rm", "busybox:local", "ping", "-c", "1", "-W", "1", ipOf(peer))
		if r.code != 0 || !strings.Contains(r.stdout, "1 packets received") {
			t.Fatalf("first-action ping %d failed: %s", i, r)
		}
	}
	assertClean(t, s, vm1)
	mustOVNDocker(t, vm2, "rm", "-f", "peer")
	assertClean(t, s, vm2)
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// TestNetworkReplacedElsewhere: a VM keeps the networks it found for a minute; one deleted
// and made again under the same name from another VM is found again on the first run
// that meets the old one gone, and the container lands on the new network.
func TestNetworkReplacedElsewhere(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	t.Cleanup(func() { cleanVM(t, vm1) })
	ls := uniq("repl")
	mustOVNDocker(t, vm1, "create", "network", ls, "--subnet", "10.126.0.0/24") // vm1 now knows it
	mustOVNDocker(t, vm2, "delete", "network", ls)
	mustOVNDocker(t, vm2, "create", "network", ls, "--subnet", "10.126.1.0/24")
	t.Cleanup(func() { ovnDocker(t, vm1, nil, "delete", "network", ls) })

	mustOVNDocker(t, vm1, "--network", ls, "run", "-d", "--name", "repl1", "busybox:local", "sleep", "3600")
	var got *psEntry
	for _, e := range ps(t, vm1) {
		if e.Name == "repl1" {
			got = &e
		}
	}
	if got == nil || got.State != "attached" || len(got.IPs) == 0 || !strings.HasPrefix(got.IPs[0], "10.126.1.") {
		t.Fatalf("repl1: %+v, want attached on the new network 10.126.1.0/24", got)
	}
	mustOVNDocker(t, vm1, "rm", "-f", "repl1")
	assertClean(t, s, vm1)
}

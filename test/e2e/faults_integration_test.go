//go:build integration

package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// The steps of `run` after which the fault switch can kill it: the engine's and the
// CLI's own.
var runSteps = []string{"reserved", "port", "veth", "ovs", "subport", "attached",
	"sandbox", "prepared", "plumbed", "container-created", "container-started"}

// And those of `rm`.
var rmSteps = []string{"detach-ovs", "detach-veth", "detach-subport", "detach-port", "rm-released", "rm-container-removed"}

// TestKilledRunThenGC: ovn-docker run killed (SIGKILL) right after each step; gc then
// leaves no Neutron port, subport, OVS port, veth, VLAN or sandbox behind, and a
// container that did start keeps its network.
func TestKilledRunThenGC(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	t.Cleanup(func() { cleanVM(t, vm) })
	ls := uniq("kill")
	mustOVNDocker(t, vm, "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm, nil, "delete", "network", ls) })
	assertClean(t, s, vm)
	for _, step := range runSteps {
		t.Run(step, func(t *testing.T) {
			name := "k-" + step
			r := runBinary(t, binFault, vm, []string{"OVN_DOCKER_FAULT=" + step},
				"--network", ls, "run", "-d", "--name", name, "busybox:local", "sleep", "600")
			if r.code != -1 {
				t.Fatalf("the run was not killed after %s: %s", step, r)
			}
			if r := ovnDocker(t, vm, nil, "gc", "--grace", "1s"); r.code != 0 {
				t.Fatalf("gc: %s", r)
			}
			switch step {
			case "container-started":
				// The container runs: it must have its network still.
				e := entryOf(t, vm, name, "eth0")
				if e.State != "attached" {
					t.Fatalf("after gc the started container's interface is %s", e.State)
				}
				out, err := dockerIn(vm, "exec", name, "ip", "addr", "show", "eth0")
				if err != nil || !strings.Contains(out, e.IPs[0]) {
					t.Fatalf("the started container lost its address %s: %v\n%s", e.IPs[0], err, out)
				}
				mustOVNDocker(t, vm, "rm", "-f", name)
			case "container-created":
				// Made but never started: removing it releases everything.
				mustOVNDocker(t, vm, "rm", "-f", name)
			}
			assertClean(t, s, vm)
		})
	}
}

// TestKilledRmThenGC: ovn-docker rm killed after each step; gc and a second rm leave
// nothing behind.
func TestKilledRmThenGC(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	t.Cleanup(func() { cleanVM(t, vm) })
	ls := uniq("killrm")
	mustOVNDocker(t, vm, "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm, nil, "delete", "network", ls) })
	for _, step := range rmSteps {
		t.Run(step, func(t *testing.T) {
			name := "r-" + step
			mustOVNDocker(t, vm, "--network", ls, "run", "-d", "--name", name, "busybox:local", "sleep", "600")
			r := runBinary(t, binFault, vm, []string{"OVN_DOCKER_FAULT=" + step}, "rm", "-f", name)
			if r.code != -1 {
				t.Fatalf("rm was not killed after %s: %s", step, r)
			}
			if r := ovnDocker(t, vm, nil, "gc", "--grace", "1s"); r.code != 0 {
				t.Fatalf("gc: %s", r)
			}
			// The user asked for the container to go: asking again finishes it.
			if out, _ := dockerIn(vm, "ps", "-aq", "--filter", "name="+name); strings.TrimSpace(out) != "" {
				mustOVNDocker(t, vm, "rm", "-f", name)
			}
			assertClean(t, s, vm)
		})
	}
}

// TestDeleteNetworkWithOrphanedPort: a port Neutron made for a process of this VM that
// died before recording it (made here by hand, with ovn-docker's name and marker) keeps
// "delete network" from deleting the network, with one line that says what it is and
// that gc removes it; after gc the network is deleted.
func TestDeleteNetworkWithOrphanedPort(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	t.Cleanup(func() { cleanVM(t, vm) })
	ls := uniq("orph")
	mustOVNDocker(t, vm, "create", "network", ls, "--subnet", "10.131.0.0/24")
	t.Cleanup(func() { ovnDocker(t, vm, nil, "delete", "network", ls) })
	nc := s.Network(t, "tenant-"+vm.Env["STACK_VM_TENANT"])
	p, err := ports.Create(context.Background(), nc, ports.CreateOpts{NetworkID: networkID(t, nc, ls),
		Name: neutron.PortName("dead0000beef"), Description: neutron.Description(vm.VIFID())}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	r := ovnDocker(t, vm, nil, "delete", "network", ls)
	if r.code == 0 || !strings.Contains(r.stderr, p.ID) || !strings.Contains(r.stderr, `"ovn-docker gc"`) ||
		strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("delete network with an orphaned port of the VM: %s", r)
	}
	if r := ovnDocker(t, vm, nil, "gc", "--grace", "1s"); r.code != 0 {
		t.Fatalf("gc: %s", r)
	}
	mustOVNDocker(t, vm, "delete", "network", ls)
	if _, err := ports.Get(context.Background(), nc, p.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("the orphaned port %s after gc: %v", p.ID, err)
	}
	assertClean(t, s, vm)
}
